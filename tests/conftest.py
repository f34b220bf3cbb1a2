"""Fixtures of the test TOM: the real emulators (started once per session on free ports) and alert packets."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from tom_pittgoogle.demo.sample_alerts import make_packets

#: The real ZTF packets (schema 3.1 to 4.02), read in place; absent on machines without ../shared.
SHARED_ZTF_ALERTS = Path(
    os.environ.get("PITTGOOGLE_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared")
) / "data" / "ztf" / "alerts"

PITTGOOGLE_PROJECT = "ardent-cycling-243415"
USER_PROJECT = "pitt-broker-user-project"


def real_ztf_packets() -> list[tuple[str, bytes]]:
    if not SHARED_ZTF_ALERTS.is_dir():
        return []
    return [(path.name, path.read_bytes()) for path in sorted(SHARED_ZTF_ALERTS.glob("*.avro"))]


def sample_packets() -> list[tuple[str, bytes]]:
    """Every real packet there is, plus generated ones, so that the suite runs without ../shared."""
    generated = [(f"generated-{i}", packet) for i, packet in enumerate(make_packets(6, seed=7))]
    return real_ztf_packets() + generated


SAMPLE_PACKETS = sample_packets()


@pytest.fixture(params=SAMPLE_PACKETS, ids=[name for name, _ in SAMPLE_PACKETS])
def packet(request) -> bytes:
    return request.param[1]


@pytest.fixture
def packets() -> list[bytes]:
    return [packet for _, packet in SAMPLE_PACKETS]


@pytest.fixture
def astronomer(client, django_user_model):
    """A client logged in as a TOM user with no Google account of their own (``client.user``)."""
    user = django_user_model.objects.create_user("astronomer", password="not-used")
    client.force_login(user)
    client.user = user
    return client


@pytest.fixture(autouse=True)
def _settings_project(settings):
    settings.GOOGLE_CLOUD_PROJECT = USER_PROJECT


@pytest.fixture(scope="session", autouse=True)
def _close_other_connections_to_the_test_database(django_db_setup, django_db_blocker):
    """Before the test database is dropped, end the connections that threads of this session left open.

    A stream ingester's or an alert stream's thread opens its own connection (Django's connections are per
    thread); one that is not closed makes PostgreSQL refuse to drop the database ("being accessed by other
    users"), which pytest-django then leaves behind. Processes the tests started have exited by now.
    """
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    connection.close()


def _serve(make_emulator, variable: str):
    """Start an emulator, point Google's ``variable`` (PUBSUB_/BIGQUERY_EMULATOR_HOST) at it, stop it after.

    Each pytest-xdist worker starts its own on ports the OS called free; another worker's emulator may take such
    a port between the pick and the bind, so a start refused for a taken port is tried again on new ports.
    """
    from tom_pittgoogle.demo.emulators import EmulatorError

    for attempt in range(3):
        emulator = make_emulator()
        try:
            emulator.start()
            break
        except EmulatorError as error:
            if attempt == 2 or not any(word in str(error) for word in ("in use", "taken")):
                raise
    previous = os.environ.get(variable)
    os.environ[variable] = emulator.host
    try:
        yield emulator
    finally:
        emulator.stop()
        if previous is None:
            os.environ.pop(variable, None)
        else:
            os.environ[variable] = previous


@pytest.fixture
def no_site_credentials(monkeypatch, tmp_path):
    """No emulator; the TOM's server has no service-account key or gcloud credentials, and probes no metadata
    server. (Clients of fixtures set up before this one still talk to the emulators.)"""
    names = ("GOOGLE_APPLICATION_CREDENTIALS", "PUBSUB_EMULATOR_HOST", "BIGQUERY_EMULATOR_HOST", "PITTGOOGLE_AS_USER")
    for name in names:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NO_GCE_CHECK", "True")


@pytest.fixture(scope="session")
def pubsub_emulator(tmp_path_factory):
    from tom_pittgoogle.demo.emulators import PubSubEmulator

    log_dir = tmp_path_factory.mktemp("pubsub-emulator")
    yield from _serve(lambda: PubSubEmulator(log_dir=log_dir), "PUBSUB_EMULATOR_HOST")


@pytest.fixture(scope="session")
def bigquery_emulator(tmp_path_factory):
    from tom_pittgoogle.demo.emulators import BigQueryEmulator

    log_dir = tmp_path_factory.mktemp("bigquery-emulator")
    yield from _serve(lambda: BigQueryEmulator(log_dir=log_dir), "BIGQUERY_EMULATOR_HOST")


def create_topic(project: str, prefix: str) -> str:
    """A fresh topic in one of Pitt-Google's (emulated) projects; the product subscribes to it by that name."""
    from tom_pittgoogle.core.pubsub import publisher_client

    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    publisher_client().create_topic(name=f"projects/{project}/topics/{name}")
    return name


def publisher(project: str):
    """publish(topic_name, [bytes, ...], **attributes): publish to ``project`` and wait until it has them all."""
    from tom_pittgoogle.core.pubsub import publisher_client

    client = publisher_client()

    def _publish(name: str, payloads: list[bytes], **attributes: str) -> list[str]:
        path = f"projects/{project}/topics/{name}"
        futures = [client.publish(path, payload, **attributes) for payload in payloads]
        return [future.result(timeout=30) for future in futures]

    return _publish


@pytest.fixture
def topic_name(pubsub_emulator) -> str:
    return create_topic(PITTGOOGLE_PROJECT, "ztf-test")


@pytest.fixture
def publish(pubsub_emulator):
    return publisher(PITTGOOGLE_PROJECT)


@pytest.fixture
def in_flight_packets() -> list[bytes]:
    """Fewer alerts than the flow control admits (1000), so that all of them can be in flight at once."""
    import time

    return make_packets(300, seed=int(time.monotonic_ns() % 10**6))


ZTF_TABLE = f"{PITTGOOGLE_PROJECT}.ztf.alerts_v4_02"


@pytest.fixture(scope="session")
def ztf_table(bigquery_emulator) -> list[dict]:
    """Pitt-Google's current ZTF table on the emulator, holding every sample packet; returns the records."""
    import io

    import fastavro

    from tom_pittgoogle.demo.bigquery_tables import bigquery_client, create_alerts_table, load_alerts
    from tom_pittgoogle.demo.sample_alerts import ZTF_ALERT_SCHEMA

    records = [next(iter(fastavro.reader(io.BytesIO(packet)))) for _, packet in SAMPLE_PACKETS]
    client = bigquery_client(bigquery_emulator.endpoint, PITTGOOGLE_PROJECT)
    table = create_alerts_table(client, ZTF_TABLE, ZTF_ALERT_SCHEMA)
    load_alerts(client, table, records)
    return records


# --- Rubin/LSST on the emulators (session fixtures live here only, or each importing module would load twice) --


@pytest.fixture
def lsst_topic(pubsub_emulator) -> str:
    from .lsst_samples import LSST_PROJECT

    return create_topic(LSST_PROJECT, "lsst-test")


@pytest.fixture
def publish_lsst(pubsub_emulator):
    from .lsst_samples import LSST_PROJECT

    return publisher(LSST_PROJECT)


@pytest.fixture(scope="session")
def lsst_table(bigquery_emulator) -> list[dict]:
    """Pitt-Google's LSST table (v10.0 columns) on the emulator, holding every LSST sample packet."""
    from tom_pittgoogle.demo.bigquery_tables import bigquery_client, create_alerts_table, load_alerts
    from tom_pittgoogle.demo.sample_lsst import lsst_alert_schema

    from .lsst_samples import LSST_PACKETS, LSST_PROJECT, LSST_TABLE, wire_record

    records = [wire_record(packet) for _, packet in LSST_PACKETS]
    client = bigquery_client(bigquery_emulator.endpoint, LSST_PROJECT)
    table = create_alerts_table(client, LSST_TABLE, lsst_alert_schema(10, 0))
    load_alerts(client, table, records)
    return records


# --- Running in parallel (`make test`: pytest-xdist, each worker with its own emulators and test database) -------

#: The tests that wait longest (on the emulator's redeliveries, on processes they start and stop), longest first,
#: as measured: a worker that starts one of them last would keep the run going after the others are done. A test
#: missing here still runs, only later; a name here that no longer exists changes nothing.
LONGEST_FIRST = (
    "tests/test_ingest_readme_claims.py::test_a_database_that_cannot_store_alerts_ends_the_stream",
    "tests/test_stream_ingester.py::test_kill_9_mid_stream",
    "tests/test_route_stream_python.py::test_a_storage_failure_acknowledges_nothing",
    "tests/test_tom_without_tom_alerts.py",
    "tests/test_migrations_sqlite.py",
    "tests/test_alertstream.py::test_a_second_signal",
    "tests/test_stream_ingester.py::test_a_second_signal",
    "tests/test_decode_limits.py",
    "tests/test_poison_messages.py",
    "tests/test_test_database_teardown.py",
    "tests/test_alertstream.py",
    "tests/test_stream_ingester.py",
    "tests/test_ingest_readme_claims.py",
    "tests/test_ingester_status.py",
    "tests/test_permission_denied.py",
    "tests/test_route_stream_python.py",
    "tests/test_route_stream_rest.py",
    "tests/test_lsst.py",
    "tests/test_demo_exits.py",
    "tests/test_command_line_messages.py",
    "tests/test_browser.py",
)


def _transactional(item: pytest.Item) -> bool:
    """Whether pytest-django runs ``item`` in a committed database that it empties after the test."""
    marker = item.get_closest_marker("django_db")
    if marker is not None and (marker.kwargs.get("transaction") or marker.kwargs.get("reset_sequences")
                               or any(marker.args[:1]) or any(marker.args[1:2])):
        return True
    return bool({"transactional_db", "live_server"} & set(getattr(item, "fixturenames", ())))


def _rank(item: pytest.Item) -> int:
    return next((i for i, prefix in enumerate(LONGEST_FIRST) if item.nodeid.startswith(prefix)), len(LONGEST_FIRST))


#: Modules whose tests share a costly module-scoped fixture (memory bombs compressed from gigabytes; BigQuery tables
#: of every schema version): each runs whole in one worker, so the fixture is built once.
SHARED_FIXTURE_MODULES = ("tests/test_decode_limits.py", "tests/test_bigquery_tables.py")


def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """``--dist loadgroup``, with each module of :data:`SHARED_FIXTURE_MODULES` one group.

    pytest-xdist marks a test's group by suffixing its node id, which pytest 9.2 no longer lets a plugin change
    (pytest-dev/pytest-xdist#1386): ``xdist_group`` marks are silently ignored there. The groups are told to the
    scheduler instead.
    """
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class ModuleFixtureGroups(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return path if path in SHARED_FIXTURE_MODULES else super()._split_scope(nodeid)

    return ModuleFixtureGroups(config, log)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In an xdist worker, the longest tests first, keeping one rule of pytest-django's order.

    The rule: every transactional test (its database emptied after it) comes after every test that expects the
    migrated database, in each worker. A worker runs a group whole where its first test is, so a group holds no
    transactional test.
    """
    if not hasattr(config, "workerinput"):
        return
    for item in items:
        if item.nodeid.split("::", 1)[0] in SHARED_FIXTURE_MODULES and _transactional(item):
            raise pytest.UsageError(f"{item.nodeid} is transactional: it cannot run in its module's group")
    items.sort(key=lambda item: (_transactional(item), _rank(item)))
