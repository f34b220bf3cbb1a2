"""Targets that TOM Toolkit's ``runbrokerquery`` makes from Pitt-Google alerts come with their light curves.

The command saves each Target and never calls the broker's ``process_reduced_data``; the light curve must come
with the Target anyway, on every route (Pub/Sub REST, streaming pull, BigQuery).
"""

from __future__ import annotations

import io

import fastavro
import pytest
from django.core.management import call_command
from tom_alerts.models import BrokerQuery
from tom_dataproducts.models import PhotometryReducedDatum
from tom_targets.models import Target

from tom_pittgoogle.adapters.broker_database_python import BrokerDatabasePython
from tom_pittgoogle.adapters.broker_stream_python import BrokerStreamPython
from tom_pittgoogle.adapters.broker_stream_rest import BrokerStreamRest
from tom_pittgoogle.demo.sample_alerts import make_packets
from tom_pittgoogle.routes.stream_rest import ConsumerStreamRest

pytestmark = pytest.mark.django_db


def one_packet_per_object(packets: list[bytes]) -> dict[str, tuple[bytes, dict]]:
    by_object: dict[str, tuple[bytes, dict]] = {}
    for packet in packets:
        record = next(iter(fastavro.reader(io.BytesIO(packet))))
        by_object.setdefault(record["objectId"], (packet, record))
    return by_object


def points_in(record: dict) -> int:
    """The alert's light curve as ZTF sends it: the candidate and each previous detection or upper limit."""
    return 1 + len(record["prv_candidates"] or [])


def run(name: str, broker, parameters: dict) -> str:
    BrokerQuery.objects.create(name=name, broker=broker.name, parameters=parameters)
    output = io.StringIO()
    call_command("runbrokerquery", name, stdout=output)
    return output.getvalue()


def assert_each_target_has_its_light_curve(records: dict[str, tuple[bytes, dict]]) -> None:
    for object_id, (_, record) in records.items():
        target = Target.objects.get(name=object_id)
        datums = PhotometryReducedDatum.objects.filter(target=target)
        assert datums.count() == points_in(record) > 1, object_id
        assert set(datums.values_list("telescope", flat=True)) == {"ZTF"}


@pytest.mark.parametrize("broker", [BrokerStreamRest, BrokerStreamPython], ids=["StreamRest", "StreamPython"])
def test_runbrokerquery_targets_from_a_stream_have_their_light_curves(broker, topic_name, publish):
    records = one_packet_per_object(make_packets(12, seed=31))
    ConsumerStreamRest(topic_name)  # the subscription exists before the alerts are published
    publish(topic_name, [packet for packet, _ in records.values()])
    parameters = {"subscription_name": topic_name, "survey": "ztf", "classtar_threshold": None,
                  "classtar_gt_lt": "lt", "max_results": len(records), "timeout": 5, "max_backlog": 100}
    output = run(f"{broker.name} light curves", broker, parameters)
    assert output.count("Created target") == len(records)
    assert_each_target_has_its_light_curve(records)


def test_runbrokerquery_targets_from_bigquery_have_their_light_curves(ztf_table):
    record = ztf_table[0]
    parameters = {"survey": "ztf", "objectId": record["objectId"], "candid": None, "max_results": 1}
    output = run("history light curve", BrokerDatabasePython, parameters)
    assert "Created target" in output
    newest = max((r for r in ztf_table if r["objectId"] == record["objectId"]), key=lambda r: r["candidate"]["jd"])
    assert_each_target_has_its_light_curve({record["objectId"]: (b"", newest)})
