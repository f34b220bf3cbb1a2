"""What both Pub/Sub routes share: names, the emulator-safe gRPC clients, and turning a message into an alert.

Turning a message into an alert is the same whatever carried it (REST or gRPC): decode once, lighten,
filter. :func:`unpack_message` returns what happened so that each route acknowledges the right messages.
"""

from __future__ import annotations

import logging
import re
import threading
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tom_pittgoogle import conf
from tom_pittgoogle.core.alerts import decode_alert, lighten_alert
from tom_pittgoogle.core.alerts.surveys import SURVEYS, detect_survey
from tom_pittgoogle.core.attribute_filter import AttributeFilter
from tom_pittgoogle.exceptions import ConfigurationError, DecodeError

logger = logging.getLogger(__name__)

# Pub/Sub's own rule for subscription and topic ids.
_RESOURCE_ID = re.compile(r"^[A-Za-z][A-Za-z0-9\-_.~+%]{2,254}$")

#: A filter in the original's callback contract: the alert if it passes, else None.
AlertCallback = Callable[..., Mapping | None]


def validate_resource_id(name: str, kind: str = "subscription") -> str:
    """Return ``name`` if it is a valid Pub/Sub id, else raise :class:`ConfigurationError`."""
    if not isinstance(name, str) or not _RESOURCE_ID.match(name) or name.lower().startswith("goog"):
        raise ConfigurationError(
            f"{name!r} is not a valid Pub/Sub {kind} name: 3-255 characters, starting with a letter, "
            "of letters, digits and - _ . ~ + %"
        )
    return name


def subscription_path(name: str, project: str | None = None) -> str:
    return f"projects/{project or conf.user_project()}/subscriptions/{validate_resource_id(name)}"


def topic_path(name: str, project: str | None = None, survey: str | None = None) -> str:
    """Pitt-Google's topic ``name``: in ``project`` if given, else in the project serving ``survey`` (ZTF's)."""
    return f"projects/{project or conf.survey_project(survey)}/topics/{validate_resource_id(name, 'topic')}"


def survey_of_topic(topic: str | None) -> str | None:
    """The survey a topic's name announces (``lsst-alerts`` -> ``lsst``), or None."""
    name = (topic or "").rsplit("/", 1)[-1].lower()
    for survey in SURVEYS:
        if name.startswith(survey):
            return survey
    return None


@dataclass
class Unpacked:
    """What became of one message: an alert that passed, an alert filtered out, or a rejection.

    ``alert`` is what the caller asked for (lightened or the full record), ``lightened`` what is stored, and
    ``attributes`` the message's Pub/Sub attributes, kept with the stored alert. ``filtered_out_server``: the
    subscription's filter drops it (Pub/Sub would not have delivered it; the emulator does); it is then
    ``filtered_out`` too.
    """

    alert: dict | None = None
    filtered_out: bool = False
    filtered_out_server: bool = False
    rejected_reason: str | None = None
    lightened: dict | None = None
    attributes: dict = field(default_factory=dict)


#: Longest text of an error kept in a rejection's reason.
MAX_ERROR_TEXT = 500


def safe_text(text: object, limit: int = MAX_ERROR_TEXT) -> str:
    """``text`` on one line, at most ``limit`` characters, storable anywhere (no NUL, no lone surrogate)."""
    text = " ".join(str(text).split())
    text = text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe_error(error: BaseException) -> str:
    """``Type: message`` of an exception, safe to store and show (packet content is quoted, never run)."""
    message = safe_text(error)
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


_logged_filter_errors: set[tuple] = set()
_logged_filter_errors_lock = threading.Lock()


def _log_filter_error_once(error: Exception) -> None:
    """Log a filter's traceback the first time an error of that type comes from that line, not per message."""
    frames = traceback.extract_tb(error.__traceback__)
    where = (frames[-1].filename, frames[-1].lineno) if frames else ("", 0)
    key = (type(error).__name__, *where)
    with _logged_filter_errors_lock:
        if key in _logged_filter_errors:
            return
        if len(_logged_filter_errors) < 1000:  # bounded: a filter cannot grow this without end
            _logged_filter_errors.add(key)
    logger.error("the filter raised %s; every message it raises on is recorded as rejected (logged once)",
                 describe_error(error), exc_info=error)


def unpack_message(
    data: bytes,
    *,
    lighten_alerts: bool = True,
    callback: AlertCallback | None = None,
    callback_kwargs: Mapping[str, Any] | None = None,
    topic: str | None = None,
    attributes: Mapping[str, str] | None = None,
    server_filter: AttributeFilter | None = None,
) -> Unpacked:
    """Decode, optionally lighten, and filter one message's data; never raises on a message's content.

    ``topic`` (where the message came from) names the survey to try first and appears in error messages; the
    bytes decide the format. ``attributes`` are the message's Pub/Sub attributes. ``server_filter`` is the
    subscription's filter: a message it drops is filtered out before it is decoded, as Pub/Sub would have
    dropped it (the emulator delivers it anyway). The callback sees the lightened alert (or the full record
    when ``lighten_alerts`` is False).

    Any error while decoding or mapping the packet, and any error the callback raises, is a rejection whose
    reason names it: the message is then recorded and acknowledged, never handed back to come again.
    """
    attributes = dict(attributes or {})
    if server_filter is not None and not server_filter.matches(attributes):
        return Unpacked(filtered_out=True, filtered_out_server=True, attributes=attributes)
    try:
        record = decode_alert(data, topic, attributes=attributes)
        survey = detect_survey(record, hint=survey_of_topic(topic), attributes=attributes)
        lightened = lighten_alert(record, survey, attributes=attributes)
    except DecodeError as error:
        return Unpacked(rejected_reason=safe_text(error), attributes=attributes)
    except Exception as error:  # noqa: BLE001 - a packet can break a decoder in any way; none may stop a stream
        return Unpacked(rejected_reason=f"the packet could not be read: {describe_error(error)}",
                        attributes=attributes)
    alert = lightened if lighten_alerts else record
    if callback is not None:
        try:
            result = callback(alert, **(callback_kwargs or {}))
        except Exception as error:  # noqa: BLE001 - the user's code: recorded, so that it cannot loop
            _log_filter_error_once(error)
            return Unpacked(rejected_reason=f"the filter raised {describe_error(error)}", attributes=attributes)
        if result is None:
            return Unpacked(filtered_out=True, attributes=attributes)
    return Unpacked(alert=alert, lightened=lightened, attributes=attributes)


def _emulator_channel(host: str):
    import grpc

    # google-cloud-pubsub opens the emulator's channel with gRPC's 4 MiB receive cap; the emulator packs ~100
    # messages in one response, so real-size (60 KB) alerts exceed it and the streaming pull silently
    # reconnects forever. Against Google the library already lifts the cap.
    return grpc.insecure_channel(
        host, options=[("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)]
    )


def subscriber_client(credentials=None):
    """A ``SubscriberClient`` for Google or, with ``PUBSUB_EMULATOR_HOST``, the emulator (no credentials)."""
    from google.cloud import pubsub_v1
    from google.pubsub_v1.services.subscriber.transports.grpc import SubscriberGrpcTransport

    from tom_pittgoogle.core.credentials import get_credentials

    host = conf.pubsub_emulator_host()
    if host:
        return pubsub_v1.SubscriberClient(transport=SubscriberGrpcTransport(channel=_emulator_channel(host)))
    return pubsub_v1.SubscriberClient(credentials=credentials or get_credentials("pubsub"))


def close_client(client) -> None:
    """Close a Pub/Sub client's channel (the next client opens a new one).

    Closing the channel ends the streaming RPC on the server too; the Pub/Sub emulator otherwise keeps routing
    the subscription's messages, redeliveries included, to a stream that was cancelled.
    """
    client.close()


def publisher_client(credentials=None):
    """A ``PublisherClient`` built like :func:`subscriber_client` (the demo and tests publish with it)."""
    from google.cloud import pubsub_v1
    from google.pubsub_v1.services.publisher.transports.grpc import PublisherGrpcTransport

    from tom_pittgoogle.core.credentials import get_credentials

    host = conf.pubsub_emulator_host()
    if host:
        return pubsub_v1.PublisherClient(transport=PublisherGrpcTransport(channel=_emulator_channel(host)))
    return pubsub_v1.PublisherClient(credentials=credentials or get_credentials("pubsub"))
