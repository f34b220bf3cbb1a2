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


def _serve(emulator, variable: str):
    """Start ``emulator``, point Google's ``variable`` (PUBSUB_/BIGQUERY_EMULATOR_HOST) at it, stop it after."""
    emulator.start()
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


@pytest.fixture(scope="session")
def pubsub_emulator(tmp_path_factory):
    from tom_pittgoogle.demo.emulators import PubSubEmulator

    yield from _serve(PubSubEmulator(log_dir=tmp_path_factory.mktemp("pubsub-emulator")), "PUBSUB_EMULATOR_HOST")


@pytest.fixture(scope="session")
def bigquery_emulator(tmp_path_factory):
    from tom_pittgoogle.demo.emulators import BigQueryEmulator

    log_dir = tmp_path_factory.mktemp("bigquery-emulator")
    yield from _serve(BigQueryEmulator(log_dir=log_dir), "BIGQUERY_EMULATOR_HOST")


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
