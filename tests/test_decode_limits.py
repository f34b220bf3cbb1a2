"""Decoding has limits, each a setting, and a packet over one is a DecodeError found in bounded time and memory
(issue 11 item 3): the memory bombs of the audit run in a subprocess limited to 1 GiB of address space."""

from __future__ import annotations

import bz2
import io
import json
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import fastavro
import pytest

from tom_pittgoogle.core.alerts import decode_alert, lighten_alert
from tom_pittgoogle.core.alerts.decode import AlertDecoder, DecodeLimits
from tom_pittgoogle.demo import pittgoogle_formats as pgf
from tom_pittgoogle.demo.sample_alerts import ZTF_ALERT_SCHEMA
from tom_pittgoogle.exceptions import DecodeError

from .hostile_packets import container
from .hostile_packets import varint as _varint

ROOT = Path(__file__).resolve().parents[1]
MEMORY_LIMIT = 1 << 30  # 1 GiB of address space for the decoding subprocess
CHUNK = b"\0" * (1 << 24)


def stream_compress(compressor, total: int) -> bytes:
    parts = [compressor.compress(CHUNK) for _ in range(total // len(CHUNK))]
    return b"".join(parts) + compressor.flush()


@pytest.fixture(scope="module")
def bombs(tmp_path_factory) -> dict[str, Path]:
    """The audit's three bombs, written to files for the subprocess."""
    directory = tmp_path_factory.mktemp("bombs")
    record = {"type": "record", "name": "bomb", "fields": [{"name": "items", "type": {"type": "array",
                                                                                        "items": "null"}}]}
    blob = {"type": "record", "name": "blob", "fields": [{"name": "data", "type": "bytes"}]}
    packets = {
        # ~2 MB of raw deflate that inflates to 2 GiB
        "deflate-2GiB": container(blob, stream_compress(zlib.compressobj(9, zlib.DEFLATED, -15), 2 << 30),
                                  codec="deflate"),
        # well under 1 KB of bzip2 that inflates to 1 GiB
        "bzip2-1GiB": container(blob, stream_compress(bz2.BZ2Compressor(9), 1 << 30), codec="bzip2"),
        # an array of 10^9 nulls in a few hundred bytes
        "array-of-nulls": container(record, _varint(10**9) + b"\x00"),
    }
    paths = {}
    for name, packet in packets.items():
        paths[name] = directory / f"{name}.avro"
        paths[name].write_bytes(packet)
    return paths


_DECODE_UNDER_A_MEMORY_LIMIT = textwrap.dedent("""
    import resource, sys
    resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
    from tom_pittgoogle.core.alerts import lighten_alert
    from tom_pittgoogle.core.alerts.decode import AlertDecoder, DecodeLimits
    from tom_pittgoogle.exceptions import DecodeError
    data = open(sys.argv[1], "rb").read()
    codecs = tuple(sys.argv[2].split(","))
    try:
        lighten_alert(AlertDecoder().decode(data, limits=DecodeLimits(codecs=codecs)))
    except DecodeError as error:
        print("DecodeError:", error)
        sys.exit(0)
    except MemoryError:
        print("MemoryError")
        sys.exit(3)
    print("decoded")
    sys.exit(4)
""")


def decode_in_subprocess(path: Path, codecs: str) -> subprocess.CompletedProcess:
    # The timeout bounds a hang (a failure), it does not measure speed.
    return subprocess.run(
        [sys.executable, "-c", _DECODE_UNDER_A_MEMORY_LIMIT.format(limit=MEMORY_LIMIT), str(path), codecs],
        capture_output=True, text=True, timeout=300, cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin"},
    )


@pytest.mark.parametrize(("bomb", "codecs", "says"), [
    # Stopped at the decompression cap, or sooner: at the most bytes its schema may be within the memory bound.
    ("deflate-2GiB", "null,deflate", "decompresses to more than "),
    ("bzip2-1GiB", "null,deflate", "codec 'bzip2' is not accepted"),
    ("bzip2-1GiB", "null,deflate,bzip2", "decompresses to more than "),
    ("array-of-nulls", "null,deflate", "array of null"),
])
def test_memory_bombs_end_in_a_decode_error_under_a_1_gib_memory_limit(bombs, bomb, codecs, says):
    result = decode_in_subprocess(bombs[bomb], codecs)
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr[-2000:])
    assert result.stdout.startswith("DecodeError:") and says in result.stdout


def test_the_bombs_are_what_the_audit_sent(bombs):
    assert bombs["deflate-2GiB"].stat().st_size < 3_000_000
    assert bombs["bzip2-1GiB"].stat().st_size < 1_000
    assert bombs["array-of-nulls"].stat().st_size < 400


def _ztf_packet() -> bytes:
    return pgf.messages("ztf-alerts", 1, seed=2)[0][0]


def test_a_packet_larger_than_the_setting_is_refused(settings):
    packet = _ztf_packet()
    settings.PITTGOOGLE_DECODE_MAX_PACKET_BYTES = len(packet) - 1
    with pytest.raises(DecodeError, match="PITTGOOGLE_DECODE_MAX_PACKET_BYTES"):
        decode_alert(packet)
    settings.PITTGOOGLE_DECODE_MAX_PACKET_BYTES = len(packet)
    assert lighten_alert(decode_alert(packet))["survey"] == "ztf"


def test_a_deflate_block_inflating_past_the_setting_is_refused_and_one_within_it_read(settings):
    record = next(iter(fastavro.reader(io.BytesIO(_ztf_packet()))))
    buffer = io.BytesIO()
    fastavro.writer(buffer, ZTF_ALERT_SCHEMA, [record], codec="deflate")
    packet = buffer.getvalue()
    assert decode_alert(packet)["candid"] == record["candid"]
    settings.PITTGOOGLE_DECODE_MAX_DECOMPRESSED_BYTES = 1000
    with pytest.raises(DecodeError, match="PITTGOOGLE_DECODE_MAX_DECOMPRESSED_BYTES"):
        decode_alert(packet)


@pytest.mark.parametrize("codec", ["snappy", "zstandard", "xz", "lz4"])
def test_codecs_not_in_the_setting_are_refused_with_the_reason(codec):
    packet = container(ZTF_ALERT_SCHEMA, b"\x00" * 10, codec=codec)
    with pytest.raises(DecodeError, match=f"codec '{codec}' is not accepted"):
        decode_alert(packet)


def test_a_codec_that_cannot_be_bounded_is_refused_even_if_listed(settings):
    settings.PITTGOOGLE_DECODE_CODECS = ["null", "deflate", "snappy"]
    with pytest.raises(DecodeError, match="cannot be read with a bound"):
        decode_alert(container(ZTF_ALERT_SCHEMA, b"\x00" * 10, codec="snappy"))


def test_arrays_strings_and_nesting_over_the_settings_are_refused(settings):
    lite = json.loads(pgf.messages("lsst-lite", 1, seed=4)[0][0])
    n_prv = len(lite["alert_lite"]["prvDiaSources"])
    settings.PITTGOOGLE_DECODE_MAX_ARRAY_ITEMS = n_prv - 1
    with pytest.raises(DecodeError, match="prvDiaSources holds .* PITTGOOGLE_DECODE_MAX_ARRAY_ITEMS"):
        decode_alert(json.dumps(lite).encode())
    settings.PITTGOOGLE_DECODE_MAX_ARRAY_ITEMS = 100_000
    lite["alert_lite"]["diaSource"]["band"] = "g" * 5000
    settings.PITTGOOGLE_DECODE_MAX_STRING_BYTES = 4096
    with pytest.raises(DecodeError, match="diaSource.band .* PITTGOOGLE_DECODE_MAX_STRING_BYTES"):
        decode_alert(json.dumps(lite).encode())
    settings.PITTGOOGLE_DECODE_MAX_DEPTH = 3
    with pytest.raises(DecodeError, match="PITTGOOGLE_DECODE_MAX_DEPTH"):
        decode_alert(b'{"a": {"b": {"c": {"d": 1}}}}')


def test_avro_records_are_held_to_the_same_array_limit():
    packet = _ztf_packet()
    record = decode_alert(packet)
    longest = max(len(record["prv_candidates"]), len(record.get("fp_hists") or []))
    limits = DecodeLimits(max_array_items=longest - 1)
    with pytest.raises(DecodeError, match=r"\w+ holds \d+ items, more than PITTGOOGLE_DECODE_MAX_ARRAY_ITEMS"):
        AlertDecoder().decode(packet, limits=limits)


def test_a_writer_schema_nested_past_what_json_can_read_is_a_decode_error():
    schema = b'{"type": ' * 50_000 + b'"null"' + b"}" * 50_000
    with pytest.raises(DecodeError, match="Avro writer schema .*nested"):
        decode_alert(container(schema, b""))


def test_a_limit_setting_that_is_not_a_positive_number_is_a_configuration_error(settings):
    from tom_pittgoogle.exceptions import ConfigurationError

    settings.PITTGOOGLE_DECODE_MAX_DEPTH = "deep"
    with pytest.raises(ConfigurationError, match="PITTGOOGLE_DECODE_MAX_DEPTH"):
        decode_alert(b"{}")
