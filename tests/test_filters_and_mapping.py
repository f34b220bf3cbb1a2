"""The classtar filter both stream forms offer, and the mapping of an alert to TOM Toolkit's GenericAlert."""

from __future__ import annotations

import io
import pickle
from datetime import datetime

import fastavro
import pytest

from tom_pittgoogle.adapters.broker_database_python import BrokerDatabasePython
from tom_pittgoogle.adapters.broker_stream_python import BrokerStreamPython
from tom_pittgoogle.adapters.broker_stream_rest import BrokerStreamRest
from tom_pittgoogle.core.alerts import lighten_alert
from tom_pittgoogle.core.filters import ClasstarFilter


def alerts_with(*classtars):
    return [{"classtar": value, "objectId": f"ZTF{i}"} for i, value in enumerate(classtars)]


def kept(parameters, alerts):
    return [alert["classtar"] for alert in alerts if BrokerStreamRest.user_filter(alert, parameters) is not None]


def test_less_than_keeps_only_alerts_below_the_threshold():
    alerts = alerts_with(0.1, 0.5, 0.9)
    assert kept({"classtar_threshold": 0.5, "classtar_gt_lt": "lt"}, alerts) == [0.1]


def test_greater_or_equal_keeps_only_alerts_at_or_above_the_threshold():
    # The original's `~` on a bool let every alert through here.
    alerts = alerts_with(0.1, 0.5, 0.9)
    assert kept({"classtar_threshold": 0.5, "classtar_gt_lt": "gt"}, alerts) == [0.5, 0.9]


def test_no_threshold_keeps_every_alert_even_without_classtar():
    alerts = alerts_with(0.1, None) + [{"objectId": "ZTFx"}]
    assert len([a for a in alerts if BrokerStreamPython.user_filter(a, {"classtar_threshold": None})]) == 3


@pytest.mark.parametrize("comparison", ["lt", "gt"])
def test_missing_null_or_nan_classtar_fails_a_threshold_instead_of_crashing(comparison):
    parameters = {"classtar_threshold": 0.5, "classtar_gt_lt": comparison}
    for alert in [{"classtar": None}, {}, {"classtar": float("nan")}]:
        assert BrokerStreamRest.user_filter(alert, parameters) is None


def test_a_comparison_other_than_lt_or_gt_is_refused():
    with pytest.raises(ValueError):
        ClasstarFilter(0.5, "eq")


def record_of(packet: bytes) -> dict:
    return next(iter(fastavro.reader(io.BytesIO(packet))))


@pytest.mark.parametrize("broker_class", [BrokerStreamRest, BrokerStreamPython, BrokerDatabasePython])
def test_to_generic_alert_is_a_pure_function_of_a_cached_alert(packet, broker_class):
    """TOM Toolkit re-maps a cached (pickled) alert on a *new* broker instance when it creates a Target."""
    record = record_of(packet)
    alert = lighten_alert(record)
    cached = pickle.loads(pickle.dumps(alert))
    generic = broker_class().to_generic_alert(cached)
    assert generic == broker_class().to_generic_alert(record)  # full record or lightened: the same alert
    assert generic.name == record["objectId"]
    assert generic.id == record["candid"]
    assert generic.ra == record["candidate"]["ra"] and generic.dec == record["candidate"]["dec"]
    assert generic.mag == record["candidate"]["magpsf"]
    assert generic.score == record["candidate"]["classtar"]
    assert isinstance(generic.timestamp, datetime) and generic.timestamp.tzinfo is not None
    # JD 2440587.5 is the Unix epoch.
    expected_unix = (record["candidate"]["jd"] - 2440587.5) * 86400
    assert abs(generic.timestamp.timestamp() - expected_unix) < 0.01
    assert generic.url == f"https://alerce.online/object/{record['objectId']}"


def test_object_page_is_a_setting(settings, packet):
    settings.PITTGOOGLE_OBJECT_URLS = {"ztf": "https://fink-portal.org/{object_id}"}
    record = record_of(packet)
    assert BrokerStreamRest().to_generic_alert(record).url == f"https://fink-portal.org/{record['objectId']}"
