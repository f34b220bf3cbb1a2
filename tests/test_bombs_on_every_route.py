"""The second audit's packet bombs between good alerts, on every Pub/Sub route (emulator and PostgreSQL).

Each bomb (a recursive schema that segfaulted the readers, zero-size items behind a namespace, a few kilobytes
that became gigabytes of objects, ids in non-ASCII digits) sits between real alerts. On every route every good
alert is stored, each bomb is recorded as rejected exactly once with its reason, nothing is left unacknowledged
(a listener that waits past the ack deadline gets nothing back), the run ends on its own and the process lives.
The test prints the peak memory and CPU of decoding each bomb (in a child process) and of each route's run.
Message attributes are stored cut to their bounds, on an alert and on a rejected message alike.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import textwrap
import time
import tracemalloc

import pytest
from django.db import connection

from tom_pittgoogle.core.engine import Stream, StreamIngester
from tom_pittgoogle.demo.sample_lsst import make_lsst_alert, to_json_packet
from tom_pittgoogle.models import Alert, RejectedMessage
from tom_pittgoogle.routes.stream_python import ConsumerStreamPython
from tom_pittgoogle.routes.stream_rest import ConsumerStreamRest

from .conftest import USER_PROJECT
from .hostile_packets import ONE_FIELD, ROOT, bombs, decode_in_child, one_byte_items
from .test_dataservice import run_query
from .test_poison_messages import GOOD, GOOD_ZTF, assert_nothing_comes_back, source_id_of, ztf_changed

ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


def lsst_with_non_ascii_source_id() -> bytes:
    """A good LSST alert republished with its diaSourceId partly in Arabic-Indic digits (text, as JSON allows)."""
    record = make_lsst_alert(10, 0, index=0)  # the same detection as GOOD_LSST[0]
    digits = str(record["diaSource"]["diaSourceId"])
    record["diaSource"]["diaSourceId"] = digits[:-3] + digits[-3:].translate(ARABIC_INDIC)
    return to_json_packet(record)


def route_bombs() -> dict[str, tuple[bytes, str]]:
    """name -> (packet, a pattern its rejection's reason matches)."""
    audit = bombs()
    # Pub/Sub carries at most 10 MB of data: the uncompressed one is cut to what it carries.
    del audit["10 MiB of one-field records, uncompressed"]
    audit["10 MB of one-field records, uncompressed"] = one_byte_items(ONE_FIELD, 9_900_000, "null")
    reasons = {name: r"PITTGOOGLE_DECODE_MAX_DECODED_BYTES" for name in audit}
    reasons.update({"recursive record (segfault)": r"recursive \(Node -> Node\)",
                    "ns.Empty x 10^8": r"array of ns\.Empty", "ns.Zero x 5*10^7": r"array of ns\.Zero"})
    out = {name: (packet, reasons[name]) for name, packet in audit.items()}
    base = GOOD_ZTF[0]
    out["ZTF objectId in Arabic-Indic digits"] = (
        ztf_changed(base, source_id_int(base) + 7, "objectId", "ZTF١٨abcdefg"), r"not a ZTF object id")
    out["LSST diaSourceId partly in Arabic-Indic digits"] = (lsst_with_non_ascii_source_id(),
                                                            r"source_id \(diaSourceId\) .* not a positive")
    return out


def source_id_int(packet: bytes) -> int:
    return int(source_id_of(packet))


BOMBS = route_bombs()
BIG = "x" * 1_000_000  # an attribute value Pub/Sub's emulator carries whole


def publish_interleaved(publish, topic: str) -> tuple[list[str], dict[str, str]]:
    good_ids, bomb_ids = [], {}
    names = list(BOMBS)
    for index in range(max(len(GOOD), len(names))):
        if index < len(GOOD):
            good_ids += publish(topic, [GOOD[index]], origin="good")
        if index < len(names):
            packet = BOMBS[names[index]][0]
            big = {"big": BIG} if len(packet) + len(BIG) < 9_000_000 else {}  # a request carries at most 10 MB
            bomb_ids[names[index]] = publish(topic, [packet], origin="bomb", **big)[0]
    return good_ids, bomb_ids


def assert_every_good_alert_stored_and_each_bomb_rejected_once(subscription: str, bomb_ids: dict[str, str]):
    stored = Alert.objects.filter(subscription=subscription)
    assert sorted(stored.values_list("source_id", flat=True)) == sorted({source_id_of(p) for p in GOOD})
    assert all(row.attributes == {"origin": "good"} for row in stored)
    rows = list(RejectedMessage.objects.filter(subscription=subscription))
    assert sorted(row.message_id for row in rows) == sorted(bomb_ids.values()), "each bomb recorded once"
    by_id = {row.message_id: row for row in rows}
    for name, message_id in bomb_ids.items():
        row, (packet, reason) = by_id[message_id], BOMBS[name]
        assert re.search(reason, row.reason), f"{name}: {row.reason}"
        assert row.size == len(packet) and row.sha256 == hashlib.sha256(packet).hexdigest()
        # The attributes are kept, the million-character one cut to PITTGOOGLE_ATTRIBUTES_MAX_VALUE_CHARS.
        assert row.attributes["origin"] == "bomb", name
        if len(packet) < 1_000_000:
            assert len(row.attributes["big"]) == 1024 and row.attributes["big"].endswith("\u2026"), name


def test_each_bombs_decoding_cost_in_a_child(tmp_path):
    """Peak memory and CPU of decoding each bomb alone (a child limited to 1 GiB and 10 CPU seconds)."""
    for name, (packet, reason) in BOMBS.items():
        result = decode_in_child(packet, tmp_path, memory_bytes=1 << 30, cpu_seconds=10)
        print(f"\n{name}: {len(packet)} bytes -> peak {result.peak_mib:.0f} MiB, CPU {result.cpu_s:.3f} s: "
              f"{result.outcome[:90]}")
        assert result.returncode == 0 and result.outcome.startswith("DecodeError:"), (name, result)
        assert re.search(reason, result.outcome), (name, result.outcome)


def run_ingester(topic: str) -> None:
    StreamIngester([Stream(topic)]).run(timeout=3)


def run_stream_rest(topic: str) -> None:
    ConsumerStreamRest(topic).pull_alerts(max_results=len(GOOD) + len(BOMBS) + 5, max_wait=2)


def run_stream_python(topic: str) -> None:
    ConsumerStreamPython(topic).stream_alerts(lighten_alerts=True, parameters={"timeout": 3})


@pytest.mark.parametrize("route", ["ingester", "StreamRest", "StreamPython", "DataService"])
def test_bombs_between_good_alerts_on_a_route_in_this_process(route, topic_name, publish, client,
                                                               django_user_model):
    if route == "DataService":
        client.force_login(django_user_model.objects.create_user("astronomer", password="not-used"))

        def run(topic: str) -> None:
            run_query(client, route="pubsub", subscription_name=topic, max_results=len(GOOD) + 5, timeout=2)
    else:
        run = {"ingester": run_ingester, "StreamRest": run_stream_rest, "StreamPython": run_stream_python}[route]
    ConsumerStreamRest(topic_name)  # the subscription exists before anything is published
    _, bomb_ids = publish_interleaved(publish, topic_name)

    tracemalloc.start()
    cpu = time.process_time()
    try:
        run(topic_name)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    print(f"\n{route}: {len(GOOD)} good alerts and {len(BOMBS)} bombs in {time.process_time() - cpu:.2f} s of CPU, "
          f"peak {peak / 2**20:.0f} MiB allocated")

    assert_every_good_alert_stored_and_each_bomb_rejected_once(
        f"projects/{USER_PROJECT}/subscriptions/{topic_name}", bomb_ids)
    assert_nothing_comes_back(topic_name)


_COMMAND_WITH_ITS_USAGE = textwrap.dedent("""
    import resource, sys
    from django.core.management import execute_from_command_line
    try:
        execute_from_command_line(["manage.py", "pittgoogle_stream", *sys.argv[1:]])
    finally:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        # The peak resident memory of this program (ru_maxrss would count the forking parent's too).
        peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
        print(f"USAGE {peak / 1024:.0f} MiB {usage.ru_utime + usage.ru_stime:.2f} s", file=sys.stderr)
""")


@pytest.mark.django_db(transaction=True)
def test_bombs_between_good_alerts_through_pittgoogle_stream_in_its_own_process(topic_name, publish):
    ConsumerStreamRest(topic_name)
    _, bomb_ids = publish_interleaved(publish, topic_name)
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="tests.settings", PGDATABASE=connection.settings_dict["NAME"],
               GOOGLE_CLOUD_PROJECT=USER_PROJECT)
    result = subprocess.run(
        [sys.executable, "-c", _COMMAND_WITH_ITS_USAGE, "--subscription", topic_name, "--timeout", "8"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,  # bounds a hang (a failure)
    )
    usage = re.search(r"USAGE (\d+) MiB ([\d.]+) s", result.stderr)
    print(f"\npittgoogle_stream: exit {result.returncode}, {usage and usage.group(0)}; "
          f"{result.stdout.strip().splitlines()[-1:]}")
    assert result.returncode == 0, (result.returncode, result.stderr[-3000:])  # alive: ended on its own, no signal
    assert_every_good_alert_stored_and_each_bomb_rejected_once(
        f"projects/{USER_PROJECT}/subscriptions/{topic_name}", bomb_ids)
    assert_nothing_comes_back(topic_name)
