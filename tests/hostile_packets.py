"""Hostile Avro packets, built as the second audit describes them (a few hundred bytes each), and a way to decode a
packet in a child process under address-space and CPU limits, reporting how it ended, its peak memory and CPU.

Only the child runs a packet: a packet that crashes the interpreter (a segfault), exhausts memory or CPU ends the
child, never the test process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import zlib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKER = b"m" * 16


def varint(value: int) -> bytes:
    """Avro's zig-zag varint of a long."""
    value = (value << 1) ^ (value >> 63)
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def container(schema: dict | bytes, block: bytes, codec: str = "null", count: int = 1) -> bytes:
    """An Avro Object Container File (Avro 1.11 spec) holding one block of ``count`` records as given."""
    def text(value: bytes) -> bytes:
        return varint(len(value)) + value

    schema_json = schema if isinstance(schema, bytes) else json.dumps(schema).encode()
    header = (b"Obj\x01" + varint(2) + text(b"avro.schema") + text(schema_json) + text(b"avro.codec")
              + text(codec.encode()) + varint(0) + MARKER)
    return header + varint(count) + varint(len(block)) + block + MARKER


def deflate(data: bytes) -> bytes:
    """Raw deflate, as Avro's ``deflate`` codec writes it."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


def repeated_deflate(unit: bytes, times: int, head: bytes = b"", tail: bytes = b"") -> bytes:
    """``deflate(head + unit * times + tail)`` without holding the inflated bytes."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk_units = max(1, (1 << 20) // len(unit))
    parts = [compressor.compress(head)]
    done = 0
    chunk = unit * chunk_units
    while done + chunk_units <= times:
        parts.append(compressor.compress(chunk))
        done += chunk_units
    parts.append(compressor.compress(unit * (times - done) + tail))
    parts.append(compressor.flush())
    return b"".join(parts)


NODE = {"type": "record", "name": "Node", "fields": [{"name": "next", "type": ["null", "Node"]}]}


def recursive_segfault() -> bytes:
    """The 279-byte segfault: a recursive record (written by ``json.dumps``), its block ``b"\\x02" * 100000 +
    b"\\x00"`` deflated."""
    return container(NODE, deflate(b"\x02" * 100_000 + b"\x00"), codec="deflate")


def namespaced_zero(kind: str, count: int, codec: str = "null") -> bytes:
    """A zero-size type declared in a record of namespace ``ns``, and an array of ``count`` of them named
    ``ns.Empty`` (an empty record) or ``ns.Zero`` (a fixed of size 0): the qualified reference the first zero-size
    check did not resolve."""
    declared = ({"type": "record", "name": "Empty", "fields": []} if kind == "Empty"
                else {"type": "fixed", "name": "Zero", "size": 0})
    schema = {"type": "record", "name": "Bomb", "namespace": "ns", "fields": [
        {"name": "declared", "type": declared},
        {"name": "items", "type": {"type": "array", "items": f"ns.{kind}"}},
    ]}
    block = varint(count) + b"\x00"  # the declared value takes no bytes; then one block of items; then the end
    return container(schema, deflate(block) if codec == "deflate" else block, codec=codec)


ONE_FIELD = {"type": "record", "name": "Many", "fields": [{"name": "items", "type": {"type": "array", "items": {
    "type": "record", "name": "One", "fields": [{"name": "x", "type": "int"}]}}}]}
EMPTY_ARRAYS = {"type": "record", "name": "Many", "fields": [{"name": "items", "type": {"type": "array", "items": {
    "type": "array", "items": "int"}}}]}
EMPTY_MAPS = {"type": "record", "name": "Many", "fields": [{"name": "items", "type": {"type": "array", "items": {
    "type": "map", "values": "int"}}}]}


def one_byte_items(schema: dict, count: int, codec: str = "deflate") -> bytes:
    """``count`` array items of one byte each (a 0: an int 0, or an empty array or map) in one block."""
    head, tail = varint(count), b"\x00"
    if codec == "deflate":
        return container(schema, repeated_deflate(b"\x00", count, head, tail), codec="deflate")
    return container(schema, head + b"\x00" * count + tail)


def bombs() -> dict[str, bytes]:
    """name -> packet: every bomb of the second audit (items 1 and 2)."""
    return {
        "recursive record (segfault)": recursive_segfault(),
        "ns.Empty x 10^8": namespaced_zero("Empty", 10**8, "deflate"),
        "ns.Zero x 5*10^7": namespaced_zero("Zero", 5 * 10**7),
        "32 MiB of one-field records, deflated": one_byte_items(ONE_FIELD, 32 * 1024 * 1024 - 16),
        "32 MiB of empty arrays, deflated": one_byte_items(EMPTY_ARRAYS, 32 * 1024 * 1024 - 16),
        "32 MiB of empty maps, deflated": one_byte_items(EMPTY_MAPS, 32 * 1024 * 1024 - 16),
        "10 MiB of one-field records, uncompressed": one_byte_items(ONE_FIELD, 10 * 1024 * 1024 - 4096, "null"),
    }


@dataclass
class ChildResult:
    """How a decode in a limited child ended: ``outcome`` is "DecodeError: ...", "decoded", "MemoryError", or
    "killed by signal N" / "exit N"; ``peak_mib`` its peak resident memory, ``cpu_s`` its CPU time."""

    outcome: str
    peak_mib: float
    cpu_s: float
    returncode: int


_CHILD = textwrap.dedent("""
    import resource, sys, time
    limit_bytes, limit_cpu = int(sys.argv[2]), int(sys.argv[3])
    if limit_bytes:
        resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (limit_cpu, limit_cpu))
    from tom_pittgoogle.core.alerts import lighten_alert
    from tom_pittgoogle.core.alerts.decode import AlertDecoder, DecodeLimits
    from tom_pittgoogle.exceptions import DecodeError
    data = open(sys.argv[1], "rb").read()
    decoder, limits = AlertDecoder(), DecodeLimits()
    before = resource.getrusage(resource.RUSAGE_SELF)
    try:
        lighten_alert(decoder.decode(data, limits=limits))
        outcome = "decoded"
    except DecodeError as error:
        outcome = f"DecodeError: {error}"
    except MemoryError:
        outcome = "MemoryError"
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    # The peak resident memory of this program (ru_maxrss would count the forking parent's too).
    peak = next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:"))
    print(f"{cpu:.3f} {peak} {outcome}")
""")


def decode_in_child(packet: bytes, tmp_path: Path, *, memory_bytes: int = 1 << 30, cpu_seconds: int = 60,
                    root: Path = ROOT) -> ChildResult:
    """Decode and lighten ``packet`` with the code of ``root`` (a checkout) in a child limited to ``memory_bytes``
    of address space (0: unlimited) and ``cpu_seconds`` of CPU; its peak memory is its maximum resident set (not
    known if it died: NaN)."""
    import os
    import threading

    path = tmp_path / f"packet-{os.getpid()}-{threading.get_ident()}.avro"
    path.write_bytes(packet)
    out_path, err_path = path.with_suffix(".out"), path.with_suffix(".err")
    with out_path.open("w") as out_file, err_path.open("w") as err_file:
        process = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(path), str(memory_bytes), str(cpu_seconds)],
            stdout=out_file, stderr=err_file, cwd=root, env={"PYTHONPATH": str(root), "PATH": "/usr/bin"},
        )
    # A wall-clock bound on a hang (a failure of the test, not a measure of speed).
    timer = threading.Timer(cpu_seconds * 3 + 60, process.kill)
    timer.start()
    try:
        _, status, usage = os.wait4(process.pid, 0)
    finally:
        timer.cancel()
    process.returncode = os.waitstatus_to_exitcode(status)
    out, err = out_path.read_text(), err_path.read_text()
    for leftover in (path, out_path, err_path):
        leftover.unlink()
    code = process.returncode
    if code == 0 and out.count(" ") >= 2:
        cpu_text, peak_kib, outcome = out.strip().split(" ", 2)
        return ChildResult(outcome, int(peak_kib) / 1024, float(cpu_text), code)
    outcome = (f"killed by signal {-code}" if code < 0
               else f"exit {code}: {err.strip().splitlines()[-1] if err.strip() else out.strip()}")
    return ChildResult(outcome, float("nan"), usage.ru_utime + usage.ru_stime, code)


_BATCH_CHILD = textwrap.dedent("""
    import resource, sys, time
    from pathlib import Path
    limit_bytes, limit_cpu = int(sys.argv[2]), int(sys.argv[3])
    resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (limit_cpu, limit_cpu))
    from tom_pittgoogle.core.alerts.decode import AlertDecoder, DecodeLimits
    from tom_pittgoogle.exceptions import DecodeError
    decoder, limits = AlertDecoder(), DecodeLimits()
    for path in sorted(Path(sys.argv[1]).glob("*.avro")):
        start = time.process_time()
        try:
            decoder.decode(path.read_bytes(), limits=limits)
            outcome = "decoded"
        except DecodeError as error:
            outcome = f"DecodeError: {error}"
        except MemoryError:
            outcome = "MemoryError"
        print(f"{path.stem} {time.process_time() - start:.3f} {outcome}", flush=True)
""")


def decode_batch_in_child(packets: list[bytes], directory: Path, *, memory_bytes: int = 1 << 30,
                          cpu_seconds: int = 10) -> tuple[int, list[str], str]:
    """Decode ``packets`` one after another in one child limited to ``memory_bytes`` of address space and
    ``cpu_seconds`` of CPU in all; (its exit code, one line per packet decoded: ``index cpu outcome``, stderr)."""
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("*.avro"):
        old.unlink()
    for index, packet in enumerate(packets):
        (directory / f"{index:03d}.avro").write_bytes(packet)
    result = subprocess.run(
        [sys.executable, "-c", _BATCH_CHILD, str(directory), str(memory_bytes), str(cpu_seconds)],
        capture_output=True, text=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin"},
        timeout=cpu_seconds * 5 + 60,  # bounds a hang (a failure), it does not measure speed
    )
    return result.returncode, result.stdout.splitlines(), result.stderr
