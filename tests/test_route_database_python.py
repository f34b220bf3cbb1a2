"""DatabasePython against the BigQuery emulator (bqemulator), with google-cloud-bigquery."""

from __future__ import annotations

import pytest

from tom_pittgoogle.adapters.broker_base import BrokerQueryError
from tom_pittgoogle.adapters.broker_database_python import BrokerDatabasePython, FilterAlertsForm
from tom_pittgoogle.exceptions import ConfigurationError, EndpointError, TableNotFoundError
from tom_pittgoogle.routes.database_python import ConsumerDatabasePython


def newest_first(records):
    return sorted(records, key=lambda r: r["candidate"]["jd"], reverse=True)


def test_default_table_is_pittgoogles_current_ztf_table(ztf_table):
    assert ConsumerDatabasePython().table_path == "ardent-cycling-243415.ztf.alerts_v4_02"


def test_query_by_object_id_returns_that_objects_alerts_newest_first(ztf_table):
    object_id = ztf_table[0]["objectId"]
    alerts = ConsumerDatabasePython().query_alerts({"objectId": object_id, "max_results": 10})
    expected = newest_first([r for r in ztf_table if r["objectId"] == object_id])
    assert [a["candid"] for a in alerts] == [r["candid"] for r in expected]
    assert all(a["object_id"] == object_id and a["survey"] == "ztf" for a in alerts)
    assert alerts[0]["ra"] == expected[0]["candidate"]["ra"]
    assert alerts[0]["classtar"] == pytest.approx(expected[0]["candidate"]["classtar"])


def test_query_by_candid_returns_exactly_that_alert(ztf_table):
    record = ztf_table[-1]
    alerts = ConsumerDatabasePython().query_alerts({"candid": record["candid"], "max_results": 10})
    assert [a["candid"] for a in alerts] == [record["candid"]]


def test_without_a_filter_the_newest_alerts_come_first_up_to_max_results(ztf_table):
    alerts = ConsumerDatabasePython().query_alerts({"max_results": 3})
    assert [a["candid"] for a in alerts] == [r["candid"] for r in newest_first(ztf_table)[:3]]


def test_user_values_are_query_parameters_not_sql(ztf_table):
    consumer = ConsumerDatabasePython()
    sql, job_config = consumer.create_sql_stmnt({"objectId": "x' OR '1'='1", "max_results": 5})
    assert "'1'='1" not in sql and "@objectId" in sql and "@max_results" in sql
    assert {p.name: p.value for p in job_config.query_parameters} == {"objectId": "x' OR '1'='1", "max_results": 5}
    assert consumer.query_alerts({"objectId": "x' OR '1'='1", "max_results": 5}) == []


def test_the_originals_documented_workflow_still_works(ztf_table):
    consumer = ConsumerDatabasePython()
    sql_stmnt, job_config = consumer.create_sql_stmnt({"objectId": ztf_table[0]["objectId"], "max_results": 1})
    query_job = consumer.client.query(sql_stmnt, job_config=job_config)
    alerts = consumer.unpack_query(query_job)
    assert alerts[0]["objectId"] == ztf_table[0]["objectId"]


def test_a_missing_table_is_a_clear_error(ztf_table):
    with pytest.raises(TableNotFoundError, match="ztf_alerts.alerts does not exist"):
        ConsumerDatabasePython("ardent-cycling-243415.ztf_alerts.alerts")


def test_a_table_name_that_is_not_one_is_refused_before_any_sql(ztf_table):
    with pytest.raises(ConfigurationError):
        ConsumerDatabasePython("ardent-cycling-243415.ztf.alerts` WHERE 1=1 --")


def test_both_object_id_and_candid_is_a_form_error_and_a_consumer_error(ztf_table):
    form = FilterAlertsForm(data={"query_name": "q", "broker": BrokerDatabasePython.name, "objectId": "ZTF18abc",
                                  "candid": 123, "max_results": 5})
    assert not form.is_valid() and "not both" in str(form.errors)
    with pytest.raises(ConfigurationError):
        ConsumerDatabasePython().create_sql_stmnt({"objectId": "ZTF18abc", "candid": 123, "max_results": 5})


def test_a_bad_max_results_is_a_form_error():
    form = FilterAlertsForm(data={"query_name": "q", "broker": BrokerDatabasePython.name, "max_results": 0})
    assert not form.is_valid() and "max_results" in form.errors


def test_broker_reports_a_missing_table_as_a_query_error(ztf_table, settings):
    settings.PITTGOOGLE_BIGQUERY_TABLE = "ardent-cycling-243415.ztf.no_such_table"
    with pytest.raises(BrokerQueryError, match="no_such_table does not exist"):
        BrokerDatabasePython().fetch_alerts({"objectId": "", "candid": None, "max_results": 5})


def test_an_unreachable_endpoint_is_a_clear_error(monkeypatch, settings):
    settings.PITTGOOGLE_REQUEST_TIMEOUT = 2
    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", "127.0.0.1:9")
    with pytest.raises(EndpointError, match="unreachable"):
        ConsumerDatabasePython()
