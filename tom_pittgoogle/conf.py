"""Every setting of the app with its default, read in one place.

Values come from Django settings when Django is configured, and the emulator hosts also from the
environment, following Google's client libraries (``PUBSUB_EMULATOR_HOST``, ``BIGQUERY_EMULATOR_HOST``).
Nothing here is read at import time, so a test or a TOM can change settings at run time.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

#: Pitt-Google's own project, which publishes the topics and owns the BigQuery tables.
PITTGOOGLE_PROJECT_ID = "ardent-cycling-243415"
#: Pitt-Google's project for Rubin/LSST: its topics (lsst-alerts, lsst-alerts-json...) and tables.
PITTGOOGLE_LSST_PROJECT_ID = "pitt-alert-broker"

DEFAULTS: dict[str, Any] = {
    # The user's project: subscriptions are created there, BigQuery jobs are billed there.
    "GOOGLE_CLOUD_PROJECT": None,
    "PITTGOOGLE_PROJECT_ID": PITTGOOGLE_PROJECT_ID,
    # One BigQuery table every ZTF search reads (project.dataset.table). None: every `alerts_vX_Y` table of
    # Pitt-Google's `ztf` dataset (alerts_v4_02 since October 2023, alerts_v3_3 ... alerts_v1_8 before), or the
    # list PITTGOOGLE_BIGQUERY_TABLES. (The original's `ztf_alerts.alerts` table no longer exists.)
    "PITTGOOGLE_BIGQUERY_TABLE": None,
    "PITTGOOGLE_BIGQUERY_TABLES": None,
    # The dataset whose alerts_vX_Y tables are searched, and where a bare table name is (project.dataset).
    # None: Pitt-Google's, `<PITTGOOGLE_PROJECT_ID>.ztf`.
    "PITTGOOGLE_BIGQUERY_DATASET": None,
    "PITTGOOGLE_DEFAULT_SUBSCRIPTION": "ztf-loop",
    # Rubin/LSST: the same three settings for Pitt-Google's LSST project.
    "PITTGOOGLE_LSST_PROJECT_ID": PITTGOOGLE_LSST_PROJECT_ID,
    # None: every `alerts_vX_Y` table of Pitt-Google's `lsst` dataset (one per schema version), or this list.
    "PITTGOOGLE_LSST_BIGQUERY_TABLE": None,
    "PITTGOOGLE_LSST_BIGQUERY_TABLES": None,
    "PITTGOOGLE_LSST_BIGQUERY_DATASET": None,  # None: `<PITTGOOGLE_LSST_PROJECT_ID>.lsst`
    "PITTGOOGLE_LSST_DEFAULT_SUBSCRIPTION": "lsst-alerts",
    "PITTGOOGLE_PUBSUB_ENDPOINT": "https://pubsub.googleapis.com",
    "PITTGOOGLE_BIGQUERY_ENDPOINT": None,  # None: the client library's default endpoint
    # Cost guard: the most bytes one search may scan (and be billed for) over all the tables it reads; a dry run
    # estimates it first, and every job carries it as maximum_bytes_billed (on demand, BigQuery bills the bytes
    # scanned).
    "PITTGOOGLE_BIGQUERY_MAX_BYTES": 10 * 10**9,
    # How long the list of a dataset's alerts tables, and each table's columns, are kept (seconds).
    "PITTGOOGLE_BIGQUERY_CACHE_SECONDS": 3600,
    # How long a REST pull waits for messages to arrive before it stops with what it has (seconds).
    "PITTGOOGLE_REST_MAX_WAIT": 10.0,
    # Lease of a message pulled by the streaming route (renewed while it is processed); messages held by a
    # listener that stopped or died return to the subscription after at most this long. 60 s: a Rubin visit's
    # 10,000 alerts wait tens of seconds in the client, and a shorter lease renewed a little late on a busy host
    # has Pub/Sub deliver them again and again (docs/guide/performance.md).
    "PITTGOOGLE_STREAM_LEASE_SECONDS": 60,
    # Timeout of one HTTP request to Pub/Sub or of one BigQuery call, retries included (seconds).
    "PITTGOOGLE_REQUEST_TIMEOUT": 30.0,
    # The same while a web request is served: a page must answer within seconds, a command may wait longer.
    "PITTGOOGLE_WEB_REQUEST_TIMEOUT": 5.0,
    # The longest a Pub/Sub query run for a web page pulls, in all, whatever the stream does (seconds): a stream
    # that keeps delivering alerts the filter drops, or a quiet one with no idle timeout, stops here with what it
    # stored. Keep it under the web server's own worker timeout (gunicorn's default is 30 s). Commands have none.
    "PITTGOOGLE_WEB_QUERY_DEADLINE": 20.0,
    # A page a person can open for an object, per survey.
    "PITTGOOGLE_OBJECT_URLS": {"ztf": "https://alerce.online/object/{object_id}"},
    # The streams `manage.py pittgoogle_stream` runs when given no --subscription: a list of dicts such as
    # {"subscription": "ztf-loop", "filter": {"classtar_threshold": 0.5, "classtar_gt_lt": "lt"},
    #  "create_targets": True}. See tom_pittgoogle.core.engine.Stream.from_setting.
    "PITTGOOGLE_STREAMS": [],
    # Form default: the survey a new query reads (each form lets the user pick).
    "PITTGOOGLE_DEFAULT_SURVEY": "ztf",
    # --- Alerts that follow the TOM's Targets (tom_pittgoogle.core.matching) ---
    # An alert within this many arcseconds of a followed Target (or whose object id is its name or an alias)
    # belongs to that Target.
    "PITTGOOGLE_MATCH_RADIUS_ARCSEC": 1.5,
    # The name of the TargetList whose Targets are followed; None: every Target in the TOM.
    "PITTGOOGLE_FOLLOW_TARGET_LIST": None,
    "PUBSUB_EMULATOR_HOST": None,
    "BIGQUERY_EMULATOR_HOST": None,
    # --- The night's alerts in the TOM: status page, pittgoogle_status, pittgoogle_prune ---
    # An ingester that has not stopped and wrote no heartbeat for this long is late (seconds); None: three of its
    # progress intervals, at least 120 s.
    "PITTGOOGLE_HEARTBEAT_LATE_SECONDS": None,
    # "The night" of the status page, `pittgoogle_status` and the heartbeat: from the latest time of day
    # PITTGOOGLE_NIGHT_STARTS_AT ("HH:MM") in PITTGOOGLE_NIGHT_TIME_ZONE (an IANA name; None: the TOM's TIME_ZONE)
    # until now. Noon splits no night anywhere; "12:00" in UTC is Rubin's day boundary (dayObs).
    "PITTGOOGLE_NIGHT_STARTS_AT": "12:00",
    "PITTGOOGLE_NIGHT_TIME_ZONE": None,
    # A stream falls behind when its alerts' p95 from Pitt-Google's publication to the commit here, over the last
    # five minutes, is above this many seconds and above that of the five minutes before (growing, not just slow).
    "PITTGOOGLE_FALLING_BEHIND_SECONDS": 60,
    # `pittgoogle_prune` with no arguments: stored alerts stored more than this many days ago are deleted
    # (except those of a Target's object), and rejected messages received more than this many days ago.
    "PITTGOOGLE_ALERT_RETENTION_DAYS": 30,
    "PITTGOOGLE_REJECTED_RETENTION_DAYS": 30,
    # The most bytes of a rejected message that are kept (the first ones), with its size and checksum.
    "PITTGOOGLE_REJECTED_MAX_BYTES": 256 * 1024,
    # --- A TOM user's own Google account (OAuth 2.0 authorization-code flow with PKCE) ---
    # The OAuth client (type "Web application") created in the Google Cloud console; None: sign-in is off.
    "PITTGOOGLE_OAUTH_CLIENT_ID": None,
    "PITTGOOGLE_OAUTH_CLIENT_SECRET": None,
    "PITTGOOGLE_OAUTH_AUTHORIZATION_URL": "https://accounts.google.com/o/oauth2/v2/auth",
    "PITTGOOGLE_OAUTH_TOKEN_URL": "https://oauth2.googleapis.com/token",
    "PITTGOOGLE_OAUTH_REVOCATION_URL": "https://oauth2.googleapis.com/revoke",
    # Where the connected account's email address is read (openid/email scopes) to show it to the user.
    "PITTGOOGLE_OAUTH_USERINFO_URL": "https://openidconnect.googleapis.com/v1/userinfo",
    # The callback URL registered with the OAuth client; None: built from the request (the TOM's own host).
    # Set it when the TOM runs behind a proxy that changes the host or scheme.
    "PITTGOOGLE_OAUTH_REDIRECT_URI": None,
    # Fernet key(s) that encrypt stored tokens: one key (str) or a list, the first encrypting and all
    # decrypting (to rotate keys). None: a key derived from SECRET_KEY, so changing SECRET_KEY makes stored
    # tokens unreadable (users reconnect).
    "PITTGOOGLE_TOKEN_ENCRYPTION_KEY": None,
    # Username whose connected Google account a command (outside a web request) acts as; None: the site's
    # credentials. Usually given in the environment for one command: PITTGOOGLE_AS_USER=alice manage.py ...
    "PITTGOOGLE_AS_USER": None,
    # --- Decoding limits: a packet over any of them is a DecodeError, found in bounded time and memory ---
    # The largest message data accepted (Pub/Sub carries at most 10 MB; real alerts are 10-100 KB).
    "PITTGOOGLE_DECODE_MAX_PACKET_BYTES": 10 * 1024 * 1024,
    # The largest block an Avro container's codec may decompress to (streamed, stopped at the cap).
    "PITTGOOGLE_DECODE_MAX_DECOMPRESSED_BYTES": 32 * 1024 * 1024,
    # The Avro container codecs read; others (bzip2, xz, snappy, zstandard) are refused unless listed here.
    "PITTGOOGLE_DECODE_CODECS": ("null", "deflate"),
    # The longest array (prv_candidates, prvDiaForcedSources...) and string or bytes value (cutouts) accepted.
    "PITTGOOGLE_DECODE_MAX_ARRAY_ITEMS": 100_000,
    "PITTGOOGLE_DECODE_MAX_STRING_BYTES": 4 * 1024 * 1024,
    # The deepest nesting of JSON objects and arrays (a real alert nests 4 deep).
    "PITTGOOGLE_DECODE_MAX_DEPTH": 32,
    # The most memory a packet may take once read, proven from its size (and Avro writer schema) before it is read:
    # a bigger bound is refused. Real ZTF and Rubin packets are bounded at 10-20 MiB.
    "PITTGOOGLE_DECODE_MAX_DECODED_BYTES": 256 * 1024 * 1024,
    # --- Message attributes kept with a stored alert or a rejected message (Pub/Sub's own limits by default) ---
    # At most this many (by key order; a last entry "\u2026" counts those not kept); longer keys and values are cut
    # and end with "\u2026".
    "PITTGOOGLE_ATTRIBUTES_MAX_COUNT": 100,
    "PITTGOOGLE_ATTRIBUTES_MAX_KEY_CHARS": 256,
    "PITTGOOGLE_ATTRIBUTES_MAX_VALUE_CHARS": 1024,
}

# Google's client libraries read the emulator hosts from the environment, so the environment wins for those
# (and for PITTGOOGLE_AS_USER, which is given per command); the project may come from either, settings first.
_ENVIRONMENT_FIRST = ("PUBSUB_EMULATOR_HOST", "BIGQUERY_EMULATOR_HOST", "PITTGOOGLE_AS_USER")
_ENVIRONMENT_FALLBACK = ("GOOGLE_CLOUD_PROJECT",)


# Which code serves a web request (short timeouts, messages as HTML, no PITTGOOGLE_AS_USER) and which a command.
# Django's WSGI and ASGI handlers (and its test client) send request_started/request_finished whether or not this
# app's middleware is installed (receivers connected in apps.py). They mark the request's own context, and count
# the requests in flight in the process, so that a thread a request started (which does not inherit the
# request's context) counts as serving it too.

#: True while this context serves a web request.
_web_request: ContextVar[bool] = ContextVar("tom_pittgoogle_web_request", default=False)
_requests_in_flight = 0
_requests_lock = threading.Lock()


def in_web_request() -> bool:
    """Whether the code runs for a web request (a page answers) rather than a command or a script."""
    return _web_request.get() or _requests_in_flight > 0


@contextmanager
def web_request() -> Iterator[None]:
    """Within the block, behave as in a web request: short timeouts, messages as HTML."""
    token = _web_request.set(True)
    try:
        yield
    finally:
        _web_request.reset(token)


def request_started(**kwargs: Any) -> None:
    """Receiver of Django's ``request_started``: the context now serves a web request."""
    global _requests_in_flight
    _web_request.set(True)
    with _requests_lock:
        _requests_in_flight += 1


def request_finished(**kwargs: Any) -> None:
    """Receiver of Django's ``request_finished``."""
    global _requests_in_flight
    if not _web_request.get():
        return
    _web_request.set(False)
    with _requests_lock:
        _requests_in_flight = max(0, _requests_in_flight - 1)


def get(name: str) -> Any:
    """Return setting ``name`` from the environment (where Google reads it), Django settings, or the default.

    In a web request ``PITTGOOGLE_REQUEST_TIMEOUT`` is ``PITTGOOGLE_WEB_REQUEST_TIMEOUT`` (if that is shorter):
    a page with an unreachable endpoint fails in seconds, while a command keeps the longer timeout.
    """
    if name == "PITTGOOGLE_REQUEST_TIMEOUT" and in_web_request():
        return min(float(_get("PITTGOOGLE_WEB_REQUEST_TIMEOUT")), float(_get(name)))
    return _get(name)


def _get(name: str) -> Any:
    if name in _ENVIRONMENT_FIRST and os.environ.get(name):
        return os.environ[name]
    value = django_setting(name)
    if value is not None:
        return value
    if name in _ENVIRONMENT_FALLBACK and os.environ.get(name):
        return os.environ[name]
    return DEFAULTS[name]


def django_setting(name: str) -> Any:
    """Setting ``name`` as the TOM's settings.py gives it (None if it does not), whatever the environment says."""
    try:
        from django.conf import settings

        if not settings.configured:
            return None
        return getattr(settings, name, None)
    except ImportError:  # pragma: no cover - Django is a dependency, but the consumers do not need it
        return None


def web_query_deadline() -> float | None:
    """Seconds a Pub/Sub query may pull in all: ``PITTGOOGLE_WEB_QUERY_DEADLINE`` in a web request, None (no
    deadline) in a command or a script."""
    if not in_web_request():
        return None
    return float(get("PITTGOOGLE_WEB_QUERY_DEADLINE"))


def user_project() -> str:
    """The user's Google Cloud project, where subscriptions live and queries are billed."""
    project = get("GOOGLE_CLOUD_PROJECT")
    if not project:
        from tom_pittgoogle.exceptions import ConfigurationError

        raise ConfigurationError(
            "GOOGLE_CLOUD_PROJECT is not set: set it in the TOM's settings.py (or the environment) to the "
            "Google Cloud project that holds your Pub/Sub subscriptions and runs your BigQuery jobs."
        )
    return project


def pubsub_emulator_host() -> str | None:
    return get("PUBSUB_EMULATOR_HOST") or None


def bigquery_emulator_endpoint() -> str | None:
    """``BIGQUERY_EMULATOR_HOST`` as a URL; it may be given as ``host:port`` or ``http://host:port``."""
    host = get("BIGQUERY_EMULATOR_HOST")
    if not host:
        return None
    return host if "://" in host else f"http://{host}"


#: Per survey: the settings naming its Pitt-Google project, BigQuery table and default subscription.
SURVEY_SETTINGS = {
    "ztf": ("PITTGOOGLE_PROJECT_ID", "PITTGOOGLE_BIGQUERY_TABLE", "PITTGOOGLE_DEFAULT_SUBSCRIPTION"),
    "lsst": ("PITTGOOGLE_LSST_PROJECT_ID", "PITTGOOGLE_LSST_BIGQUERY_TABLE", "PITTGOOGLE_LSST_DEFAULT_SUBSCRIPTION"),
}


def _survey_setting(survey: str | None, index: int) -> Any:
    survey = survey or "ztf"
    if survey not in SURVEY_SETTINGS:
        from tom_pittgoogle.exceptions import ConfigurationError

        raise ConfigurationError(f"unknown survey {survey!r}: Pitt-Google serves {', '.join(SURVEY_SETTINGS)}")
    return get(SURVEY_SETTINGS[survey][index])


def survey_project(survey: str | None = None) -> str:
    """Pitt-Google's project publishing ``survey``'s topics and owning its tables."""
    return _survey_setting(survey, 0)


def survey_table(survey: str | None = None) -> str | None:
    """The one BigQuery alert table set for ``survey`` (``project.dataset.table``), or None: every table."""
    return _survey_setting(survey, 1)


#: Per survey: the setting listing its BigQuery tables (None: found in the survey's dataset).
SURVEY_TABLE_LISTS = {"ztf": "PITTGOOGLE_BIGQUERY_TABLES", "lsst": "PITTGOOGLE_LSST_BIGQUERY_TABLES"}
SURVEY_DATASETS = {"ztf": "PITTGOOGLE_BIGQUERY_DATASET", "lsst": "PITTGOOGLE_LSST_BIGQUERY_DATASET"}


def survey_tables(survey: str | None = None) -> list[str] | None:
    """The tables listed for ``survey`` in settings, or None (then they are found in the survey's dataset)."""
    survey_project(survey)  # checks the survey
    tables = get(SURVEY_TABLE_LISTS[survey or "ztf"])
    if tables is None:
        return None
    if isinstance(tables, str):
        tables = [tables]
    return [str(table) for table in tables]


def survey_dataset(survey: str | None = None) -> str:
    """The BigQuery dataset of ``survey``'s alerts tables (``project.dataset``): Pitt-Google's unless set."""
    project = survey_project(survey)
    return get(SURVEY_DATASETS[survey or "ztf"]) or f"{project}.{survey or 'ztf'}"


def survey_default_subscription(survey: str | None = None) -> str:
    """The subscription (and topic) name a form offers for ``survey``."""
    return _survey_setting(survey, 2)


def object_url(survey: str, object_id: str) -> str:
    template = get("PITTGOOGLE_OBJECT_URLS").get(survey)
    return template.format(object_id=object_id) if template else ""
