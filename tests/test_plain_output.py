"""What a new user reads: one alert rate per run wherever it is shown, the run's summary once, one
"Target post save hook" per Target (not one per alert of its object), extras rounded, plain plurals. On the
emulators and PostgreSQL, the ingester as a process as a TOM runs it."""

from __future__ import annotations

import io
import logging
import re
from collections import Counter

import fastavro
import pytest
from django.core.management import call_command
from tom_dataproducts.models import PhotometryReducedDatum

from tom_pittgoogle.core.targets import create_or_update_target, target_extras
from tom_pittgoogle.demo.sample_alerts import make_packets
from tom_pittgoogle.models import IngesterHeartbeat

from .test_stream_ingester import Ingester, subscribe

ALERTS = 40


def test_one_rate_and_one_summary_per_run_in_the_command_and_the_status(topic_name, publish, transactional_db):
    subscribe(topic_name)
    packets = make_packets(ALERTS, seed=31)
    publish(topic_name, packets)
    ingester = Ingester("--subscription", topic_name, "--max-results", str(ALERTS))
    code, out, err = ingester.finish(timeout=120)
    assert code == 0, err
    summary = out.strip().splitlines()[-1]
    counts = re.sub(r"^done in [\d.]+ s: ", "", summary)
    assert counts != summary and f"stored {ALERTS}" in counts, out
    everything = out + err
    without_rate = counts.rsplit(",", 1)[0]  # "received 40, ..., rejected 0"
    assert everything.count(without_rate) == 1, f"the summary is printed more than once:\n{everything}"

    command_rate = re.search(r"([\d.]+) alerts/s", summary).group(1)
    row = IngesterHeartbeat.objects.get(pid=ingester.process.pid)
    status = io.StringIO()
    call_command("pittgoogle_status", stdout=status)
    status_rate = re.search(r"([\d.]+) alerts/s", status.getvalue()).group(1)
    assert f"{row.rate:.1f}" == command_rate == status_rate, (summary, status.getvalue())


@pytest.fixture
def tom_setup_hooks(settings):
    """The hooks of a TOM made by tom_setup: its target_post_save logs a line for every save of a Target."""
    settings.HOOKS = {"target_post_save": "tom_common.hooks.target_post_save"}


def test_an_object_with_many_alerts_saves_its_target_once_and_gets_every_point(db, tom_setup_hooks, caplog):
    records = [next(iter(fastavro.reader(io.BytesIO(packet)))) for packet in make_packets(60, seed=5)]
    object_id, alerts = Counter(r["objectId"] for r in records).most_common(1)[0]
    assert alerts >= 3
    caplog.set_level(logging.INFO, logger="tom_common.hooks")
    for record in sorted((r for r in records if r["objectId"] == object_id), key=lambda r: r["candidate"]["jd"]):
        target = create_or_update_target(record)
    hook_lines = [r for r in caplog.records if "Target post save hook" in r.getMessage()]
    assert len(hook_lines) == 1, f"{len(hook_lines)} 'Target post save hook' lines for one object of {alerts} alerts"
    newest = max((r for r in records if r["objectId"] == object_id), key=lambda r: r["candidate"]["jd"])
    extras = dict(target.targetextra_set.values_list("key", "value"))
    assert float(extras["latest_jd"]) == round(newest["candidate"]["jd"], 6)
    assert PhotometryReducedDatum.objects.filter(target=target).count() >= alerts


def test_target_extras_are_rounded_to_what_they_mean():
    record = next(iter(fastavro.reader(io.BytesIO(make_packets(1, seed=3)[0]))))
    extras = target_extras(record)
    assert extras["latest_mag"] == round(record["candidate"]["magpsf"], 3)
    for key, value in extras.items():
        if isinstance(value, float):
            assert len(repr(value).split(".")[-1]) <= 6, (key, value)
