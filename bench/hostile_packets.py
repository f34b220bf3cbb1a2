"""The second audit's packet bombs decoded by a checkout, each in a child under address-space and CPU limits.

    .venv/bin/python bench/hostile_packets.py [--checkout PATH] [--memory-mib 3072] [--cpu-seconds 20]

For each bomb (tests/hostile_packets.py builds them as the audit describes) it prints how decoding ended (a
DecodeError and its reason, a signal, a MemoryError, or the CPU limit), the child's peak resident memory and its
CPU time. Run it against an older checkout to see what the bombs did there; the limits keep the machine safe.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.hostile_packets import bombs, decode_in_child  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkout", type=Path, default=ROOT, help="the tom-pittgoogle checkout whose decoder runs")
    parser.add_argument("--memory-mib", type=int, default=3072)
    parser.add_argument("--cpu-seconds", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        for name, packet in bombs().items():
            result = decode_in_child(packet, Path(directory), memory_bytes=args.memory_mib << 20,
                                     cpu_seconds=args.cpu_seconds, root=args.checkout.resolve())
            print(f"{name:42s} {len(packet):9d} B  peak {result.peak_mib:6.0f} MiB  CPU {result.cpu_s:6.2f} s  "
                  f"{result.outcome[:100]}", flush=True)


if __name__ == "__main__":
    main()
