"""``python -m tom_pittgoogle.demo`` refuses a taken port before starting anything, says in one line what to do
when the BigQuery emulator is missing, and stops both emulators however it ends (here: Ctrl-C while it runs)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tom_pittgoogle.demo.emulators import port_is_free

ROOT = Path(__file__).resolve().parents[1]


def demo(*args: str, **env: str) -> subprocess.Popen:
    environment = {k: v for k, v in os.environ.items() if k not in ("PUBSUB_EMULATOR_HOST", "BIGQUERY_EMULATOR_HOST")}
    return subprocess.Popen([sys.executable, "-m", "tom_pittgoogle.demo", *args], cwd=ROOT,
                            env={**environment, "PYTHONUNBUFFERED": "1", **env},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.fixture
def taken_port():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    yield sock.getsockname()[1]
    sock.close()


def test_a_taken_port_is_refused_before_any_emulator_starts(taken_port, tmp_path):
    process = demo("--port", str(taken_port), "--dir", str(tmp_path / "demo"))
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 2
    assert f"Port {taken_port} is already in use" in output and "--port" in output
    assert "starting pubsub-emulator" not in output and "Traceback" not in output


def test_a_missing_bigquery_emulator_is_one_line_saying_what_to_run(tmp_path):
    process = demo("--no-serve", "--dir", str(tmp_path / "demo"), BQEMULATOR_BIN=str(tmp_path / "no-bqemulator"))
    output, _ = process.communicate(timeout=180)
    assert process.returncode == 1
    assert "bqemulator not found" in output and "make demo" in output
    assert "Traceback" not in output


def test_ctrl_c_while_the_demo_runs_stops_both_emulators(tmp_path):
    process = demo("--no-serve", "--dir", str(tmp_path / "demo"))
    ports: list[int] = []
    seen = []
    deadline = time.monotonic() + 180
    for line in process.stdout:  # wait until both emulators serve (bounded by the deadline)
        seen.append(line)
        found = re.search(r"(pubsub-emulator|bqemulator) ready on 127\.0\.0\.1:(\d+)", line)
        if found:
            ports.append(int(found.group(2)))
        if len(ports) == 2 or time.monotonic() > deadline:
            break
    assert len(ports) == 2, "".join(seen)
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output
    assert all(port_is_free(port) for port in ports), output
    assert output.count("stopped") >= 2, output
