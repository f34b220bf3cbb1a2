"""The BigQuery SQL builder on its own: a table's columns and a search in, SQL and query parameters out.

No BigQuery and no emulator: :func:`tom_pittgoogle.routes.bigquery.sql.table_query` is pure. The route's tests
(test_bigquery_tables, test_route_database_python) run the same SQL on the BigQuery emulator.
"""

from __future__ import annotations

import pytest

from tom_pittgoogle.exceptions import ConfigurationError
from tom_pittgoogle.routes.bigquery.sql import selection_of, table_query

ZTF_COLUMNS = frozenset({"objectId", "candid", "candidate", "candidate.jd", "candidate.ra", "candidate.dec",
                         "candidate.classtar", "prv_candidates"})
LSST_COLUMNS = frozenset({"diaSource", "diaSource.diaSourceId", "diaSource.diaObjectId", "diaSource.ra",
                          "diaSource.dec", "diaSource.midpointMjdTai", "diaObject", "diaObject.diaObjectId",
                          "prvDiaSources", "healpix9", "healpix19", "kafkaPublishTimestamp"})


def build(survey: str, columns: frozenset[str], **parameters):
    return table_query(survey, "p.d.alerts_v4_02", columns, parameters, selection_of(parameters))


def parameters_of(query) -> dict:
    return {p.name: getattr(p, "value", None) if hasattr(p, "value") else p.values
            for p in query.job_config.query_parameters}


def test_an_object_id_is_a_parameter_and_only_the_tables_columns_are_selected():
    query = build("ztf", ZTF_COLUMNS, objectId="x' OR '1'='1", max_results=5)
    assert "x' OR" not in query.sql
    assert query.sql == ("SELECT objectId, candid, candidate, prv_candidates FROM `p.d.alerts_v4_02` "
                         "WHERE objectId = @objectId ORDER BY candidate.jd DESC LIMIT @max_results")
    assert parameters_of(query) == {"max_results": 5, "objectId": "x' OR '1'='1"}
    older = build("ztf", ZTF_COLUMNS - {"prv_candidates"}, max_results=5)
    assert "prv_candidates" not in older.sql


def test_an_lsst_cone_and_time_window_use_the_clustering_and_partition_columns():
    query = build("lsst", LSST_COLUMNS, cone_ra=150.0, cone_dec=2.0, cone_radius_arcsec=2,
                  start_time="2026-01-01T00:00:00", end_time="2026-01-02T00:00:00", max_results=3)
    params = parameters_of(query)
    assert "healpix9 IN UNNEST(@cone_healpix9)" in query.sql and params["cone_healpix9"]
    assert "healpix19 IN UNNEST(@cone_healpix19)" in query.sql
    assert "kafkaPublishTimestamp >= @start_published" in query.sql
    assert "diaSource.midpointMjdTai >= @start_time" in query.sql
    # A table without them is still searched, on ra/dec and the MJD alone.
    plain = build("lsst", LSST_COLUMNS - {"healpix9", "healpix19", "kafkaPublishTimestamp"}, cone_ra=150.0,
                  cone_dec=2.0, cone_radius_arcsec=10, start_time="2026-01-01T00:00:00", max_results=3)
    assert "healpix" not in plain.sql and "kafkaPublishTimestamp" not in plain.sql
    assert "diaSource.dec BETWEEN @cone_dec_min AND @cone_dec_max" in plain.sql


def test_a_table_without_the_score_has_no_query_and_one_with_it_filters_on_it():
    assert build("ztf", ZTF_COLUMNS, score_name="drb", score_min=0.5) is None
    query = build("ztf", ZTF_COLUMNS, score_name="classtar", score_min=0.5)
    assert "candidate.classtar >= @score_min" in query.sql and parameters_of(query)["score_min"] == 0.5


def test_columns_are_not_read_for_a_search_no_table_can_answer():
    def unreadable():
        raise AssertionError("the table's columns were read")

    parameters = {"predicted_class": "Ia"}
    assert table_query("ztf", "p.d.t", unreadable, parameters, selection_of(parameters)) is None


@pytest.mark.parametrize("parameters, message", [
    ({"objectId": "ZTF1", "candid": 1}, "either objectId or candid"),
    ({"max_results": "many"}, "whole number"),
    ({"max_results": -1}, "at least 1"),
    ({"candid": "abc"}, "integer"),
])
def test_a_search_that_is_not_one_is_a_configuration_error(parameters, message):
    with pytest.raises(ConfigurationError, match=message):
        build("ztf", ZTF_COLUMNS, **parameters)
