"""The demo's synthetic ZTF packets: ZTF's 4.02 schema, real-size Avro container files, the same bytes for a seed,
light curves whose detections, upper limits, forced photometry and cutouts agree."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import subprocess
import sys
from collections import defaultdict

import fastavro
import numpy as np
import pytest
from astropy.io import fits

from tom_pittgoogle.demo.sample_alerts import (
    DEFAULT_NIGHT_JD,
    PUBLISHER,
    SCHEMA_VERSION,
    ZTF_ALERT_SCHEMA,
    make_alert,
    make_alerts,
    make_packets,
    serialize_alert,
)

from .conftest import SHARED_ZTF_ALERTS

#: ZTF's own v4.02 .avsc files, read in place where ../shared exists (this machine and CI).
ZTF_SCHEMA_DIR = SHARED_ZTF_ALERTS.parent / "schema" / "v4.02"
RECORDS = ("candidate", "prv_candidate", "fp_hist", "cutout")

ALERTS = make_alerts(120, seed=5, null_classtar_every=4)


def named_records(schema) -> dict[str, dict]:
    """Every record defined in ``schema``, by full name."""
    found = {}
    if isinstance(schema, dict):
        if schema.get("type") == "record":
            found[f"{schema['namespace']}.{schema['name']}"] = schema
        for value in schema.values():
            found.update(named_records(value))
    elif isinstance(schema, list):
        for value in schema:
            found.update(named_records(value))
    return found


def shape(fields: list[dict]) -> list[tuple]:
    """(name, type with records by name) of each field, in order: what a reader relies on."""

    def by_name(kind):
        if isinstance(kind, dict) and kind.get("type") == "record":
            return f"{kind['namespace']}.{kind['name']}"
        if isinstance(kind, dict):
            return {key: by_name(value) for key, value in kind.items()}
        return [by_name(k) for k in kind] if isinstance(kind, list) else kind

    return [(f["name"], by_name(f["type"])) for f in fields]


def test_schema_has_ztf_4_02_records_fields_types_and_order():
    mine = named_records(ZTF_ALERT_SCHEMA)
    assert set(mine) == {"ztf.alert", *(f"ztf.alert.{name}" for name in RECORDS)}
    assert ZTF_ALERT_SCHEMA["version"] == SCHEMA_VERSION == "4.02"
    fastavro.parse_schema(ZTF_ALERT_SCHEMA)  # a valid Avro schema, named types resolved
    if ZTF_SCHEMA_DIR.is_dir():
        for name in ("alert", *RECORDS):
            real = json.loads((ZTF_SCHEMA_DIR / f"{name}.avsc").read_text())
            full_name = f"{real['namespace']}.{real['name']}"
            assert shape(mine[full_name]["fields"]) == shape(real["fields"]), full_name
    else:  # without ZTF's files: the field counts of ZTF's 4.02 records
        assert [len(mine[f"ztf.alert.{name}"]["fields"]) for name in RECORDS] == [103, 57, 29, 2]


def test_packets_are_avro_container_files_with_codec_null_that_decode_to_their_records():
    records, packets = make_alerts(12, seed=5), make_packets(12, seed=5)
    for record, packet in zip(records, packets, strict=True):
        assert packet[:4] == b"Obj\x01"
        reader = fastavro.reader(io.BytesIO(packet))
        assert reader.codec == "null" and json.loads(reader.metadata["avro.schema"]) == ZTF_ALERT_SCHEMA
        assert list(reader) == [record]
        assert serialize_alert(record) == packet


def test_packets_are_50_to_80_kb_like_real_ones():
    sizes = [len(packet) for packet in make_packets(40, seed=11)]
    assert all(50_000 <= size <= 80_000 for size in sizes), sizes


def test_the_same_seed_gives_the_same_bytes_in_another_process():
    code = ("import hashlib; from tom_pittgoogle.demo.sample_alerts import make_packets; "
            "print(hashlib.sha256(b''.join(make_packets(8, seed=3))).hexdigest())")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    other = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert other.stdout.strip() == hashlib.sha256(b"".join(make_packets(8, seed=3))).hexdigest()
    assert make_packets(8, seed=4) != make_packets(8, seed=3)


def test_alerts_of_a_night_in_time_order_with_unique_ids_and_classtar_nulls_where_asked():
    candidates = [alert["candidate"] for alert in ALERTS]
    jds = [c["jd"] for c in candidates]
    assert jds == sorted(jds) and all(DEFAULT_NIGHT_JD + 0.1 < jd < DEFAULT_NIGHT_JD + 0.55 for jd in jds)
    assert len({a["candid"] for a in ALERTS}) == len(ALERTS)
    assert all(a["candid"] == a["candidate"]["candid"] and len(str(a["candid"])) == 19 for a in ALERTS)
    assert all(re.fullmatch(r"ZTF\d\d[a-z]{7}", a["objectId"]) for a in ALERTS)
    assert all(a["schemavsn"] == SCHEMA_VERSION and a["publisher"] == PUBLISHER for a in ALERTS)
    assert 40 <= len({a["objectId"] for a in ALERTS}) <= 70
    nulls = [i for i, c in enumerate(candidates, start=1) if c["classtar"] is None]
    assert nulls == list(range(4, len(ALERTS) + 1, 4))
    scores = [c["classtar"] for c in candidates if c["classtar"] is not None]
    assert all(0 <= s <= 1 for s in scores) and min(scores) < 0.9 < max(scores)
    for seed in range(5):  # what the filter tests rely on: from 3 alerts on, scores on both sides of 0.9
        scores = [alert["candidate"]["classtar"] for alert in make_alerts(3, seed=seed)]
        assert min(scores) < 0.9 < max(scores)
    assert make_alerts(0) == [] and len(make_alerts(3, seed=1)) == 3
    with pytest.raises(ValueError):
        make_alerts(-1)


def test_detections_upper_limits_and_forced_photometry_agree():
    for alert in ALERTS:
        candidate, history, forced = alert["candidate"], alert["prv_candidates"], alert["fp_hists"]
        detections = [p for p in history if p["candid"] is not None]
        limits = [p for p in history if p["candid"] is None]
        if candidate["ssnamenr"] == "null":  # not an asteroid: seen before, detected and not
            assert detections and limits
        assert all(p["magpsf"] is None and p["isdiffpos"] is None and p["diffmaglim"] > 0 for p in limits)
        # A detection is at least 5 sigma: brighter than the 5-sigma limit, with sigmapsf <= 1.0857 / 5.
        for entry in [candidate, *detections]:
            assert 14 < entry["magpsf"] <= entry["diffmaglim"] + 1e-4 and 0 < entry["sigmapsf"] < 0.22
        # One forced measurement per exposure, newest first, on the same exposures as the history.
        assert [f["pid"] for f in forced] == [p["pid"] for p in reversed(history)]
        assert [p["jd"] for p in history] == sorted(p["jd"] for p in history) and history[-1]["jd"] < candidate["jd"]
        for f, p in zip(reversed(forced), history, strict=True):
            snr = f["forcediffimflux"] / f["forcediffimfluxunc"]
            if p["candid"] is not None:
                assert abs(snr) >= 4.99 and (snr > 0) == (p["isdiffpos"] == "t")


def test_a_later_alert_of_an_object_carries_the_earlier_ones_in_its_history():
    by_object = defaultdict(list)
    for alert in ALERTS:
        by_object[alert["objectId"]].append(alert)
    repeated = [alerts for alerts in by_object.values() if len(alerts) > 1]
    assert repeated
    for alerts in repeated:
        for earlier, later in zip(alerts, alerts[1:], strict=False):
            assert later["candidate"]["jd"] - earlier["candidate"]["jd"] >= 0.0208  # >= 30 min
            assert earlier["candid"] in {p["candid"] for p in later["prv_candidates"]}
            assert later["candidate"]["ndethist"] == earlier["candidate"]["ndethist"] + 1
            assert (later["candidate"]["field"], later["candidate"]["rcid"]) == (
                earlier["candidate"]["field"], earlier["candidate"]["rcid"])


def test_cutouts_are_gzip_fits_stamps_showing_the_candidate_with_its_sign():
    for alert in ALERTS[:20]:
        candid, sign = alert["candid"], 1 if alert["candidate"]["isdiffpos"] == "t" else -1
        stamps = {}
        for field in ("cutoutScience", "cutoutTemplate", "cutoutDifference"):
            cutout = alert[field]
            assert cutout["fileName"].startswith(f"candid{candid}_") and cutout["fileName"].endswith(".fits.gz")
            with fits.open(io.BytesIO(gzip.decompress(cutout["stampData"]))) as hdus:
                stamps[field] = hdus[0].data.astype(float)
            assert stamps[field].shape == (63, 63)
        # A matched filter at the centre of the difference stamp measures the candidate's flux, sign included.
        axis = np.arange(63) - 31
        psf = np.exp(-0.5 * (axis[:, None] ** 2 + axis[None, :] ** 2))
        assert sign * (stamps["cutoutDifference"] * psf).sum() > 0


def test_make_alert_takes_an_object_id_candid_classtar_and_jd():
    alert = make_alert(np.random.default_rng(3), object_id="ZTF25aaabcde", candid=1234, classtar=None,
                       jd=DEFAULT_NIGHT_JD + 0.3)
    assert alert["objectId"] == "ZTF25aaabcde" and alert["candid"] == alert["candidate"]["candid"] == 1234
    assert alert["cutoutScience"]["fileName"].startswith("candid1234_")
    assert alert["candidate"]["classtar"] is None and alert["candidate"]["jd"] == DEFAULT_NIGHT_JD + 0.3
    assert make_alert(np.random.default_rng(3), classtar=0.25)["candidate"]["classtar"] == 0.25
    assert make_alert(np.random.default_rng(8)) == make_alert(np.random.default_rng(8))
    record = make_alert(np.random.default_rng(8))
    assert next(iter(fastavro.reader(io.BytesIO(serialize_alert(record))))) == record
