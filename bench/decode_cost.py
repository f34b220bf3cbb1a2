"""Benchmark: CPU per packet of decoding real alerts, this checkout against a baseline checkout, in the same run.

    .venv/bin/python bench/decode_cost.py --baseline /path/to/other/checkout [--rounds 5] [--n 2000]

Each round decodes, in a fresh child process per checkout (alternating, so both see the same machine load), N
packets of each kind: the real ZTF packets (``../shared/data/ztf/alerts/``, else generated v4.02 packets), Rubin
packets in the Confluent wire format, and ``lsst-alerts-json`` packets. It prints the CPU microseconds per packet
(``time.process_time()``, the median over rounds) of each checkout and their ratio. No test asserts a time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_CHILD = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from tom_pittgoogle.core.alerts.decode import AlertDecoder
    from tom_pittgoogle.demo import pittgoogle_formats as pgf
    n = int(sys.argv[1])
    real = sorted(Path(sys.argv[2]).glob("*.avro")) if Path(sys.argv[2]).is_dir() else []
    kinds = {
        "ZTF Avro": [p.read_bytes() for p in real] or [m for m, _ in pgf.messages("ztf-alerts", 6, seed=1)],
        "Rubin wire format": [m for m, _ in pgf.messages("lsst-alerts", 6, seed=1)],
        "Rubin JSON": [m for m, _ in pgf.messages("lsst-alerts-json", 6, seed=1)],
    }
    decoder = AlertDecoder()
    out = {}
    for kind, packets in kinds.items():
        for packet in packets:
            decoder.decode(packet)  # schemas parsed and cached first, as on a stream
        start = time.process_time()
        for i in range(n):
            decoder.decode(packets[i % len(packets)])
        out[kind] = (time.process_time() - start) / n * 1e6
    print(json.dumps(out))
""")


def run(checkout: Path, n: int, data: Path) -> dict[str, float]:
    result = subprocess.run([sys.executable, "-c", _CHILD, str(n), str(data)], cwd=checkout, capture_output=True,
                            text=True, check=True, env={"PYTHONPATH": str(checkout), "PATH": "/usr/bin"})
    return json.loads(result.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, required=True, help="another checkout of tom-pittgoogle")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--n", type=int, default=2000)
    args = parser.parse_args()
    data = ROOT.parent / "shared" / "data" / "ztf" / "alerts"
    if not data.is_dir():
        data = Path("/work/shared/data/ztf/alerts")
    rounds: dict[str, list[dict[str, float]]] = {"baseline": [], "this": []}
    for _ in range(args.rounds):
        rounds["baseline"].append(run(args.baseline.resolve(), args.n, data))
        rounds["this"].append(run(ROOT, args.n, data))
    print(f"{'packets':20s} {'baseline us':>12s} {'this us':>10s} {'this/baseline':>14s}")
    for kind in rounds["this"][0]:
        base = statistics.median(r[kind] for r in rounds["baseline"])
        this = statistics.median(r[kind] for r in rounds["this"])
        print(f"{kind:20s} {base:12.1f} {this:10.1f} {this / base:14.3f}")


if __name__ == "__main__":
    main()
