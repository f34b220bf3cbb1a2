"""The BigQuery route over every alerts table of a survey, on the BigQuery emulator.

Each test reads datasets of this module's own (``PITTGOOGLE_BIGQUERY_DATASET`` /
``PITTGOOGLE_LSST_BIGQUERY_DATASET``), shaped as Pitt-Google's: ZTF ``alerts_v4_02`` and older versions with
fewer columns, LSST ``alerts_v10_0`` ... ``alerts_v11_1``
with healpix and publish-time columns, partitioned and clustered.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.time import Time
from django.core.management import call_command
from django.core.management.base import CommandError

from tom_pittgoogle.adapters.broker_base import BrokerQueryError
from tom_pittgoogle.adapters.broker_database_python import BrokerDatabasePython
from tom_pittgoogle.core.alerts import lighten_alert
from tom_pittgoogle.core.filters import ConeFilter
from tom_pittgoogle.demo.bigquery_tables import (
    bigquery_client,
    create_alerts_table,
    create_lsst_alerts_table,
    load_alerts,
    lsst_table_columns,
    ztf_schema_of_version,
)
from tom_pittgoogle.demo.sample_alerts import ZTF_ALERT_SCHEMA, make_alert
from tom_pittgoogle.demo.sample_lsst import lsst_alert_schema, make_lsst_alert
from tom_pittgoogle.exceptions import ConfigurationError, QueryTooLargeError
from tom_pittgoogle.routes.database_python import (
    ConsumerDatabasePython,
    clear_caches,
    healpix_cone,
)

# The emulator keeps datasets by name whatever their project: each module's datasets have names of their own.
ZTF_PROJECT, ZTF_DATASET = "ardent-cycling-243415", f"ztf_{uuid.uuid4().hex[:8]}"
LSST_PROJECT, LSST_DATASET = "pitt-alert-broker", f"lsst_{uuid.uuid4().hex[:8]}"
#: ZTF tables, newest first, and the JD at which each one's alerts start (older tables hold older alerts).
ZTF_VERSIONS = {(4, 2): 2460300.5, (3, 3): 2459800.5, (3, 1): 2459300.5, (1, 8): 2458700.5}
LSST_VERSIONS = [(11, 1), (11, 0), (10, 0)]
CONE = (150.0, 2.0)  # the centre of the cone searches (degrees)
OBJECT = "ZTF18aaaaaaa"


def offset(ra: float, dec: float, arcsec: float, angle_deg: float) -> tuple[float, float]:
    """The point ``arcsec`` from (ra, dec) towards position angle ``angle_deg`` (exact, astropy)."""
    import astropy.units as u

    moved = SkyCoord(ra * u.deg, dec * u.deg).directional_offset_by(angle_deg * u.deg, arcsec * u.arcsec)
    return float(moved.ra.deg), float(moved.dec.deg)


def distance_arcsec(ra: float, dec: float) -> float:
    import astropy.units as u

    return float(SkyCoord(ra * u.deg, dec * u.deg).separation(SkyCoord(*CONE, unit="deg")).arcsec)


def ztf_records(version: tuple[int, int], start_jd: float) -> list[dict]:
    """Alerts of one table: two of OBJECT, and six around the cone at 1" to 30", a day apart each."""
    rng = np.random.default_rng(hash(version) % 2**32)
    records = []
    for i, arcsec in enumerate([1.0, 3.0, 4.9, 5.1, 12.0, 30.0, 2.0, 60.0]):
        record = make_alert(rng, jd=start_jd + i + 0.25, object_id=OBJECT if i >= 6 else None)
        ra, dec = offset(*CONE, arcsec, 37.0 * i)
        record["candidate"]["ra"], record["candidate"]["dec"] = ra, dec
        record["schemavsn"] = f"{version[0]}.{version[1]}"
        records.append(record)
    return records


def lsst_records(version: tuple[int, int]) -> list[dict]:
    """Six LSST alerts of one schema version around the cone, at distinct times."""
    records = []
    for i, arcsec in enumerate([0.5, 2.5, 4.0, 6.0, 20.0, 300.0]):
        record = make_lsst_alert(*version, index=i)
        ra, dec = offset(*CONE, arcsec, 53.0 * i)
        for source in [record["diaSource"], *record["prvDiaSources"]]:
            source["ra"], source["dec"] = ra, dec
        records.append(record)
    return records


@pytest.fixture(scope="module")
def ztf_tables(bigquery_emulator) -> dict[str, list[dict]]:
    """ZTF tables of four versions, each with its own column set, and a table that is not an alerts table."""
    client = bigquery_client(bigquery_emulator.endpoint, ZTF_PROJECT)
    tables = {}
    for (major, minor), start_jd in ZTF_VERSIONS.items():
        name = f"alerts_v{major}_{minor:02d}" if (major, minor) == (4, 2) else f"alerts_v{major}_{minor}"
        table = create_alerts_table(client, f"{ZTF_PROJECT}.{ZTF_DATASET}.{name}",
                                    ztf_schema_of_version(ZTF_ALERT_SCHEMA, major, minor))
        records = ztf_records((major, minor), start_jd)
        load_alerts(client, table, records)
        tables[name] = records
    create_alerts_table(client, f"{ZTF_PROJECT}.{ZTF_DATASET}.objects_summary",
                        ztf_schema_of_version(ZTF_ALERT_SCHEMA, 4, 2))
    return tables


@pytest.fixture(scope="module")
def lsst_tables(bigquery_emulator) -> dict[str, list[dict]]:
    client = bigquery_client(bigquery_emulator.endpoint, LSST_PROJECT)
    tables = {}
    for major, minor in LSST_VERSIONS:
        name = f"alerts_v{major}_{minor}"
        table = create_lsst_alerts_table(client, f"{LSST_PROJECT}.{LSST_DATASET}.{name}",
                                         lsst_alert_schema(major, minor))
        records = lsst_records((major, minor))
        load_alerts(client, table, records, extra=lsst_table_columns)
        tables[name] = records
    return tables


@pytest.fixture(autouse=True)
def _projects(settings):
    settings.PITTGOOGLE_BIGQUERY_DATASET = f"{ZTF_PROJECT}.{ZTF_DATASET}"
    settings.PITTGOOGLE_LSST_BIGQUERY_DATASET = f"{LSST_PROJECT}.{LSST_DATASET}"
    clear_caches()


def source_ids(alerts) -> list[str]:
    return [str(alert["source_id"]) for alert in alerts]


def lightened(tables: dict[str, list[dict]]) -> list[dict]:
    return [lighten_alert(record) for records in tables.values() for record in records]


def tables_of(alerts, tables: dict[str, list[dict]]) -> set[str]:
    """The tables whose records the alerts are."""
    where = {str(lighten_alert(r)["source_id"]): name for name, records in tables.items() for r in records}
    return {where[str(alert["source_id"])] for alert in alerts}


def newest_first(alerts) -> list[str]:
    return source_ids(sorted(alerts, key=lambda a: (a["jd"], str(a["source_id"])), reverse=True))


# -- which tables ------------------------------------------------------------------------------------------------


def test_a_ztf_search_reads_every_alerts_table_newest_version_first(ztf_tables):
    consumer = ConsumerDatabasePython()
    assert [path.rsplit(".", 1)[1] for path in consumer.tables] == [
        "alerts_v4_02", "alerts_v3_3", "alerts_v3_1", "alerts_v1_8"
    ]  # objects_summary is not an alerts table


def test_an_objects_alerts_from_every_table_come_merged_newest_first_up_to_max_results(ztf_tables):
    expected = [a for a in lightened(ztf_tables) if a["object_id"] == OBJECT]
    assert len(expected) == 8  # two per table

    alerts = ConsumerDatabasePython().query_alerts({"objectId": OBJECT, "max_results": 5})

    assert source_ids(alerts) == newest_first(expected)[:5]
    everything = ConsumerDatabasePython().query_alerts({"objectId": OBJECT, "max_results": 100})
    assert source_ids(everything) == newest_first(expected)
    assert tables_of(everything, ztf_tables) == set(ztf_tables)


def test_each_table_is_read_with_only_the_columns_it_has(ztf_tables):
    consumer = ConsumerDatabasePython()
    old = next(path for path in consumer.tables if path.endswith("alerts_v1_8"))
    assert "candidate.drb" not in consumer.table_columns(old)
    # drb exists from 3.3 on: a search on it reads only the tables that have it, and finds theirs.
    queries = consumer.plan({"score_name": "drb", "score_min": 0, "max_results": 100})
    assert [q.table.rsplit(".", 1)[1] for q in queries] == ["alerts_v4_02", "alerts_v3_3"]
    alerts = consumer.query_alerts({"score_name": "drb", "score_min": 0.5, "max_results": 100})
    expected = [a for a in lightened({k: ztf_tables[k] for k in ("alerts_v4_02", "alerts_v3_3")})
                if a["scores"].get("drb") is not None and a["scores"]["drb"] >= 0.5]
    assert sorted(source_ids(alerts)) == sorted(source_ids(expected))


def test_a_named_table_is_the_only_one_read(ztf_tables, settings, db):
    # db: the broker attaches what it finds to the Targets it belongs to.
    expected = [a for a in lightened({"alerts_v3_3": ztf_tables["alerts_v3_3"]}) if a["object_id"] == OBJECT]

    by_argument = ConsumerDatabasePython("alerts_v3_3").query_alerts({"objectId": OBJECT, "max_results": 10})
    by_form = list(BrokerDatabasePython().fetch_alerts(
        {"objectId": OBJECT, "max_results": 10, "table_name": "alerts_v3_3", "survey": "ztf"}))
    settings.PITTGOOGLE_BIGQUERY_TABLE = f"{ZTF_PROJECT}.{ZTF_DATASET}.alerts_v3_3"
    by_setting = ConsumerDatabasePython().query_alerts({"objectId": OBJECT, "max_results": 10})

    for alerts in (by_argument, by_form, by_setting):
        assert source_ids(alerts) == newest_first(expected)


def test_the_tables_listed_in_settings_are_the_ones_read(ztf_tables, settings):
    settings.PITTGOOGLE_BIGQUERY_TABLES = ["alerts_v1_8", f"{ZTF_PROJECT}.{ZTF_DATASET}.alerts_v3_1"]
    consumer = ConsumerDatabasePython()
    assert consumer.tables == [f"{ZTF_PROJECT}.{ZTF_DATASET}.alerts_v3_1", f"{ZTF_PROJECT}.{ZTF_DATASET}.alerts_v1_8"]
    alerts = consumer.query_alerts({"objectId": OBJECT, "max_results": 10})
    assert tables_of(alerts, ztf_tables) == {"alerts_v3_1", "alerts_v1_8"}


def test_a_user_cannot_name_a_table_outside_the_surveys_dataset(ztf_tables):
    with pytest.raises(BrokerQueryError, match="table_name: A table of Pitt-Google"):
        BrokerDatabasePython().fetch_alerts({"max_results": 10, "table_name": "other-project.private.secrets"})


def test_lsst_searches_read_the_current_schema_versions_table_too(lsst_tables):
    consumer = ConsumerDatabasePython(survey="lsst")
    assert [path.rsplit(".", 1)[1] for path in consumer.tables] == ["alerts_v11_1", "alerts_v11_0", "alerts_v10_0"]
    alerts = consumer.query_alerts({"max_results": 100})
    assert sorted(source_ids(alerts)) == sorted(source_ids(lightened(lsst_tables)))
    assert source_ids(alerts) == newest_first(lightened(lsst_tables))


# -- cone and time window ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("radius", [5.0, 25.0])
def test_a_ztf_cone_returns_exactly_the_alerts_within_the_radius(ztf_tables, radius):
    expected = [a for a in lightened(ztf_tables) if distance_arcsec(a["ra"], a["dec"]) <= radius]
    assert 0 < len(expected) < len(lightened(ztf_tables))

    alerts = ConsumerDatabasePython().query_alerts(
        {"cone_ra": CONE[0], "cone_dec": CONE[1], "cone_radius_arcsec": radius, "max_results": 1000})

    assert sorted(source_ids(alerts)) == sorted(source_ids(expected))


def test_an_lsst_cone_filters_the_healpix_clustering_columns_and_returns_exactly_the_alerts_inside(lsst_tables):
    params = {"cone_ra": CONE[0], "cone_dec": CONE[1], "cone_radius_arcsec": 5.0, "max_results": 1000}
    expected = [a for a in lightened(lsst_tables) if distance_arcsec(a["ra"], a["dec"]) <= 5.0]
    assert len(expected) == 3 * len(LSST_VERSIONS)

    consumer = ConsumerDatabasePython(survey="lsst")
    for query in consumer.plan(params):
        assert "healpix9 IN UNNEST(@cone_healpix9)" in query.sql
        assert "healpix19 IN UNNEST(@cone_healpix19)" in query.sql
    alerts = consumer.query_alerts(params)

    assert sorted(source_ids(alerts)) == sorted(source_ids(expected))


def test_the_covering_pixels_hold_every_alert_inside_the_cone(lsst_tables):
    cone = ConeFilter(*CONE, 6.0)
    for records in lsst_tables.values():
        for record in records:
            columns = lsst_table_columns(record)
            if cone.passes(lighten_alert(record)):
                assert columns["healpix9"] in healpix_cone(cone, 9)
                assert columns["healpix19"] in healpix_cone(cone, 19)


def window(jd_start: float, jd_end: float) -> dict:
    as_iso = [Time(jd, format="jd", scale="utc").to_datetime(timezone=dt.UTC).isoformat() for jd in (jd_start, jd_end)]
    return {"start_time": as_iso[0], "end_time": as_iso[1]}


def test_a_ztf_time_window_returns_exactly_the_alerts_observed_in_it(ztf_tables):
    start = ZTF_VERSIONS[(3, 3)] + 2.0
    params = {**window(start, start + 3.0), "max_results": 1000}
    every = lightened(ztf_tables)
    expected = [a for a in every if start <= a["jd"] < start + 3.0]
    assert len(expected) == 3

    alerts = ConsumerDatabasePython().query_alerts(params)

    assert source_ids(alerts) == newest_first(expected)


def test_an_lsst_time_window_filters_the_partition_column_and_returns_exactly_the_alerts_in_it(lsst_tables):
    every = lightened(lsst_tables)
    jds = sorted(a["jd"] for a in every)
    start, end = (jds[2] + jds[3]) / 2, (jds[9] + jds[10]) / 2
    expected = [a for a in every if start <= a["jd"] < end]
    params = {**window(start, end), "max_results": 1000}

    consumer = ConsumerDatabasePython(survey="lsst")
    for query in consumer.plan(params):
        assert "kafkaPublishTimestamp >= @start_published" in query.sql
        assert "kafkaPublishTimestamp < @end_published" in query.sql
    alerts = consumer.query_alerts(params)

    assert source_ids(alerts) == newest_first(expected)
    assert len(expected) == 7


def test_an_lsst_time_window_finds_alerts_published_up_to_two_days_after_its_end_and_not_later(bigquery_emulator,
                                                                                               settings):
    """README: on LSST tables a time window filters the day partitions of kafkaPublishTimestamp up to 2 days after
    the end (an alert is published after its exposure), and the exact midpointMjdTai."""
    dataset = f"lsst_lag_{uuid.uuid4().hex[:8]}"
    client = bigquery_client(bigquery_emulator.endpoint, LSST_PROJECT)
    table = create_lsst_alerts_table(client, f"{LSST_PROJECT}.{dataset}.alerts_v10_0", lsst_alert_schema(10, 0))
    start = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    end = start + dt.timedelta(days=1)
    hour = dt.timedelta(hours=1)
    # name -> (exposure (UTC), publish delay after it)
    cases = {
        "published at once": (end - hour, dt.timedelta(minutes=2)),
        "published a day after the end": (end - hour, dt.timedelta(days=1)),
        "published just within two days after the end": (end - hour, 2 * dt.timedelta(days=1) + 0.5 * hour),
        "published three days after the end": (end - hour, dt.timedelta(days=3)),
        "exposed after the end": (end + hour, dt.timedelta(minutes=2)),
    }
    records, delays, source_of = [], {}, {}
    for index, (name, (exposure, delay)) in enumerate(cases.items()):
        record = make_lsst_alert(10, 0, index=index)
        record["diaSource"]["midpointMjdTai"] = Time(exposure).tai.mjd
        records.append(record)
        source_of[name] = str(lighten_alert(record)["source_id"])
        delays[source_of[name]] = delay
    load_alerts(client, table, records,
                extra=lambda alert: lsst_table_columns(alert, delays[str(lighten_alert(alert)["source_id"])]))
    settings.PITTGOOGLE_LSST_BIGQUERY_DATASET = f"{LSST_PROJECT}.{dataset}"
    clear_caches()

    found = set(source_ids(ConsumerDatabasePython(survey="lsst").query_alerts(
        {"start_time": start.isoformat(), "end_time": end.isoformat(), "max_results": 100})))

    within = ["published at once", "published a day after the end", "published just within two days after the end"]
    missing = [name for name in within if source_of[name] not in found]
    assert not missing, (f"alerts exposed in the window and published less than 2 days after its end were not "
                         f"found: {missing}")
    outside = ["published three days after the end", "exposed after the end"]
    beyond = [name for name in outside if source_of[name] in found]
    assert not beyond, (f"alerts outside the window's partitions (published more than 2 days after its end) or "
                        f"exposed after its end were found: {beyond}")


def test_a_cone_and_a_time_window_together_keep_what_passes_both(ztf_tables):
    start = ZTF_VERSIONS[(4, 2)]
    params = {**window(start, start + 10), "cone_ra": CONE[0], "cone_dec": CONE[1], "cone_radius_arcsec": 5.0,
              "max_results": 1000}
    expected = [a for a in lightened(ztf_tables)
                if start <= a["jd"] < start + 10 and distance_arcsec(a["ra"], a["dec"]) <= 5.0]
    assert len(expected) == 4

    assert sorted(source_ids(ConsumerDatabasePython().query_alerts(params))) == sorted(source_ids(expected))


def test_a_predicted_class_on_the_alerts_tables_is_refused_with_a_reason(ztf_tables):
    with pytest.raises(ConfigurationError, match="no classifier results"):
        ConsumerDatabasePython().query_alerts({"predicted_class": "SN Ia", "max_results": 10})


# -- cost guard ----------------------------------------------------------------------------------------------------


class RecordingConnection:
    """Wraps the client's connection to keep every request body BigQuery receives (the client still sends it)."""

    def __init__(self, client) -> None:
        self.requests: list[dict] = []
        self._api_request = client._connection.api_request
        client._connection.api_request = self

    def __call__(self, *args, **kwargs):
        if kwargs.get("method") == "POST" and str(kwargs.get("path", "")).endswith("/jobs"):
            self.requests.append(kwargs.get("data") or {})
        return self._api_request(*args, **kwargs)


def test_every_table_is_dry_run_first_and_the_jobs_together_may_bill_at_most_the_limit(ztf_tables, settings):
    """The cost guard holds for the search as a whole: the jobs' maximum_bytes_billed add up to at most
    PITTGOOGLE_BIGQUERY_MAX_BYTES, however many tables the search reads (each one got all of it before)."""
    settings.PITTGOOGLE_BIGQUERY_MAX_BYTES = 123_456_789_000
    consumer = ConsumerDatabasePython()
    recorded = RecordingConnection(consumer.client)

    assert consumer.query_alerts({"objectId": OBJECT, "max_results": 10})

    configs = [body["configuration"] for body in recorded.requests]
    assert len(configs) == 2 * len(ZTF_VERSIONS)
    dry, real = configs[: len(ZTF_VERSIONS)], configs[len(ZTF_VERSIONS):]
    assert all(c.get("dryRun") is True and c["query"].get("useQueryCache") is False for c in dry)
    caps = [int(c["query"]["maximumBytesBilled"]) for c in real if not c.get("dryRun")]
    assert len(caps) == len(ZTF_VERSIONS)
    assert sum(caps) <= 123_456_789_000
    assert min(caps) >= 10 * 1024 * 1024  # BigQuery bills at least 10 MiB a table: a smaller cap fails the job
    assert consumer.estimated_bytes == 0  # what the emulator's dry run reports


def test_the_shares_of_the_billing_limit_follow_the_estimates_and_add_up_to_at_most_the_limit():
    from tom_pittgoogle.routes.database_python import share_budget

    for limit, estimates in [(10**10, [0, 0, 0, 0]), (10**10, [4 * 10**9, 10**9, 0]), (10**8, [10**7] * 9),
                             (10**9, [999_999_999]), (3 * 10**7, [0, 0, 0, 0, 0])]:
        shares = share_budget(limit, estimates)
        assert sum(shares) <= limit, (limit, estimates, shares)
        if sum(max(e, 10 * 1024 * 1024) for e in estimates) <= limit:
            assert all(share >= max(e, 10 * 1024 * 1024) for share, e in zip(shares, estimates, strict=True))


def test_a_search_that_would_scan_too_much_is_refused_before_anything_runs(ztf_tables, settings):
    settings.PITTGOOGLE_BIGQUERY_MAX_BYTES = 10 * 10**9
    estimates = []

    def estimate(sql, job_config):  # the test double of the dry run's estimate: 40 GB per table
        estimates.append(sql)
        return 40 * 10**9

    consumer = ConsumerDatabasePython(estimate_bytes=estimate)
    recorded = RecordingConnection(consumer.client)
    with pytest.raises(QueryTooLargeError) as refused:
        consumer.query_alerts({"max_results": 10})

    message = str(refused.value)
    assert "160.0 GB" in message and "10.0 GB" in message and "PITTGOOGLE_BIGQUERY_MAX_BYTES" in message
    assert "time window" in message and "cone" in message and "one table" in message
    assert len(estimates) == len(ZTF_VERSIONS)
    assert recorded.requests == []  # nothing was run


def test_a_search_estimated_at_exactly_the_limit_runs_and_one_byte_more_is_refused(ztf_tables, settings):
    """README: nothing runs when the tables together would scan *more than* PITTGOOGLE_BIGQUERY_MAX_BYTES."""
    limit = 4 * 10**9
    settings.PITTGOOGLE_BIGQUERY_MAX_BYTES = limit
    per_table = limit // len(ZTF_VERSIONS)
    expected = newest_first([a for a in lightened(ztf_tables) if a["object_id"] == OBJECT])

    at_limit = ConsumerDatabasePython(estimate_bytes=lambda sql, job_config: per_table)
    try:
        alerts = at_limit.query_alerts({"objectId": OBJECT, "max_results": 100})
    except QueryTooLargeError as error:
        pytest.fail(f"a search estimated at exactly PITTGOOGLE_BIGQUERY_MAX_BYTES was refused: {error}")
    assert at_limit.estimated_bytes == limit and source_ids(alerts) == expected

    estimates = iter([per_table + 1] + [per_table] * (len(ZTF_VERSIONS) - 1))
    over = ConsumerDatabasePython(estimate_bytes=lambda sql, job_config: next(estimates))
    recorded = RecordingConnection(over.client)
    with pytest.raises(QueryTooLargeError, match="PITTGOOGLE_BIGQUERY_MAX_BYTES") as refused:
        over.query_alerts({"objectId": OBJECT, "max_results": 100})
    assert refused.value.estimated_bytes == limit + 1 and refused.value.max_bytes == limit
    assert recorded.requests == [], "a search one byte over the limit ran a job"


def test_with_a_limit_of_zero_a_search_the_dry_run_estimates_at_zero_bytes_runs(ztf_tables, settings):
    """The emulator's dry run reports 0 bytes: at a limit of 0 the real estimate is exactly at the limit."""
    settings.PITTGOOGLE_BIGQUERY_MAX_BYTES = 0
    consumer = ConsumerDatabasePython()
    try:
        alerts = consumer.query_alerts({"objectId": OBJECT, "max_results": 100})
    except QueryTooLargeError as error:
        pytest.fail(f"a search whose dry run estimates 0 bytes was refused at a limit of 0 bytes: {error}")
    assert consumer.estimated_bytes == 0
    assert source_ids(alerts) == newest_first([a for a in lightened(ztf_tables) if a["object_id"] == OBJECT])


def test_the_refusal_is_shown_on_the_page_and_by_runbrokerquery(ztf_tables, settings, monkeypatch, db):
    from tom_alerts.models import BrokerQuery

    monkeypatch.setattr(ConsumerDatabasePython, "dry_run_bytes", lambda self, sql, job_config: 4 * 10**9)
    with pytest.raises(BrokerQueryError, match=r"would scan 16\.0 GB"):
        BrokerDatabasePython().fetch_alerts({"max_results": 10})
    BrokerQuery.objects.create(name="everything", broker="Pitt-Google DatabasePython",
                               parameters={"max_results": 10, "survey": "ztf"})
    with pytest.raises(CommandError, match=r"would scan 16\.0 GB .*Narrow the search"):
        call_command("runbrokerquery", "everything")
    # Narrowed to one table, the same search fits.
    assert BrokerDatabasePython().fetch_alerts({"max_results": 3, "table_name": "alerts_v1_8"})


# -- unreadable rows -------------------------------------------------------------------------------------------------


def test_a_row_that_cannot_be_read_is_skipped_and_reported_and_the_others_returned(bigquery_emulator, settings,
                                                                                    caplog):
    client = bigquery_client(bigquery_emulator.endpoint, LSST_PROJECT)
    name = f"{LSST_PROJECT}.{LSST_DATASET}_bad.alerts_v11_1"
    table = create_lsst_alerts_table(client, name, lsst_alert_schema(11, 1))
    good = lsst_records((11, 1))[:3]
    bad = make_lsst_alert(11, 1, index=9)
    bad_id = bad["diaSource"]["diaSourceId"]
    load_alerts(client, table, good, extra=lsst_table_columns)
    impossible = {**bad, "diaSource": {**bad["diaSource"], "midpointMjdTai": 1e300}}
    load_alerts(client, table, [impossible], extra=lambda alert: lsst_table_columns(bad))
    settings.PITTGOOGLE_LSST_BIGQUERY_TABLE = name

    consumer = ConsumerDatabasePython(survey="lsst")
    alerts = consumer.query_alerts({"max_results": 10})

    assert sorted(source_ids(alerts)) == sorted(source_ids(lighten_alert(r) for r in good))
    assert len(consumer.skipped_rows) == 1
    assert consumer.skipped_rows[0].table == name and str(bad_id) in consumer.skipped_rows[0].ids
    assert f"diaSource.diaSourceId={bad_id}" in caplog.text and name in caplog.text


def test_a_ztf_row_without_ids_is_skipped_by_unpack_query(bigquery_emulator, settings):
    client = bigquery_client(bigquery_emulator.endpoint, ZTF_PROJECT)
    name = f"{ZTF_PROJECT}.{ZTF_DATASET}_bad.alerts_v4_02"
    table = create_alerts_table(client, name, ZTF_ALERT_SCHEMA)
    records = ztf_records((4, 2), 2460400.5)[:2]
    nameless = {**records[0], "objectId": None, "candid": None,
                "candidate": {**records[0]["candidate"], "candid": None}}
    load_alerts(client, table, [records[1], nameless])

    consumer = ConsumerDatabasePython(name)
    sql, job_config = consumer.create_sql_stmnt({"max_results": 10})
    alerts = consumer.unpack_query(consumer.client.query(sql, job_config=job_config))

    assert source_ids(alerts) == [str(records[1]["candid"])]
    assert len(consumer.skipped_rows) == 1 and "not an alert" in consumer.skipped_rows[0].reason.lower()


def test_distances_in_this_file_agree_with_the_filters_haversine():
    cone = ConeFilter(*CONE, 5.0)
    for arcsec in (4.999, 5.001):
        ra, dec = offset(*CONE, arcsec, 120.0)
        assert cone.passes({"ra": ra, "dec": dec}) is (arcsec <= 5.0)
        assert math.isclose(distance_arcsec(ra, dec), arcsec, rel_tol=1e-9)


def test_an_alert_a_table_holds_twice_is_returned_once(bigquery_emulator, settings):
    # Pitt-Google's BigQuery subscriptions deliver at least once, so its tables can hold a row twice.
    client = bigquery_client(bigquery_emulator.endpoint, ZTF_PROJECT)
    name = f"{ZTF_PROJECT}.{ZTF_DATASET}_twice.alerts_v4_02"
    table = create_alerts_table(client, name, ZTF_ALERT_SCHEMA)
    records = ztf_records((4, 2), 2460500.5)[6:]
    load_alerts(client, table, records + records[:1])

    alerts = ConsumerDatabasePython(name).query_alerts({"objectId": OBJECT, "max_results": 10})

    assert source_ids(alerts) == newest_first([lighten_alert(r) for r in records])
