"""``manage.py pittgoogle_emulators``: a TOM of your own on Pitt-Google's services, emulated. It prints the two
lines to export; a TOM's ingester run with them stores ZTF and Rubin/LSST alerts (the samples, then the ones it
keeps publishing); SIGTERM stops both emulators, leaving no JVM or bqemulator behind."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from tom_pittgoogle.demo.emulators import port_is_free
from tom_pittgoogle.models import Alert

from .conftest import USER_PROJECT

ROOT = Path(__file__).resolve().parents[1]
EMULATOR_VARIABLES = ("PUBSUB_EMULATOR_HOST", "BIGQUERY_EMULATOR_HOST")


def tom_environment(**extra: str) -> dict[str, str]:
    """The test TOM's environment as a maintainer's shell has it, before exporting anything."""
    environment = {k: v for k, v in os.environ.items() if k not in EMULATOR_VARIABLES}
    return {**environment, "DJANGO_SETTINGS_MODULE": "tests.settings", "PGDATABASE": connection.settings_dict["NAME"],
            "GOOGLE_CLOUD_PROJECT": USER_PROJECT, "PYTHONUNBUFFERED": "1", **extra}


def read_exports(process: subprocess.Popen, timeout: float = 180) -> tuple[dict[str, str], str]:
    """The ``export NAME=VALUE`` lines the command prints, read until both came (bounded)."""
    exports, seen = {}, []
    deadline = time.monotonic() + timeout
    while len(exports) < 2 and time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        seen.append(line)
        found = re.fullmatch(r"\s*export (PUBSUB_EMULATOR_HOST|BIGQUERY_EMULATOR_HOST)=(\S+)\s*", line)
        if found:
            exports[found.group(1)] = found.group(2)
    return exports, "".join(seen)


def processes_mentioning(text: str) -> list[str]:
    """Command lines of this machine's processes that contain ``text`` (a port of an emulator we started)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if text in command:
                found.append(f"{entry.name}: {command}")
    return found


@pytest.mark.django_db(transaction=True)
def test_pittgoogle_emulators_serves_a_tom_of_your_own_then_stops_cleanly(tmp_path):
    command = subprocess.Popen(
        [sys.executable, "-m", "django", "pittgoogle_emulators", "--alerts", "5", "--log-dir", str(tmp_path)],
        cwd=ROOT, env=tom_environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        exports, output = read_exports(command)
        assert set(exports) == set(EMULATOR_VARIABLES), output
        ports = [int(host.rsplit(":", 1)[1]) for host in exports.values()]

        # The maintainer's TOM, with the two lines exported: its ingester stores the ZTF samples and what keeps
        # coming (the 5 samples, then more), and Rubin/LSST's.
        for arguments, survey, wanted in ((["--subscription", "ztf-loop"], "ztf", 8),
                                          (["--survey", "lsst", "--subscription", "lsst-alerts"], "lsst", 12)):
            ingester = subprocess.run(
                [sys.executable, "-m", "django", "pittgoogle_stream", *arguments, "--max-results", str(wanted),
                 "--timeout", "30"],
                cwd=ROOT, env=tom_environment(**exports), capture_output=True, text=True, timeout=180,
            )
            assert ingester.returncode == 0, ingester.stdout + ingester.stderr
            assert Alert.objects.filter(survey=survey).count() == wanted, ingester.stdout + ingester.stderr
    finally:
        command.send_signal(signal.SIGTERM)
        rest, _ = command.communicate(timeout=120)
    assert command.returncode == 0, rest
    assert "Stopped both emulators." in rest
    assert all(port_is_free(port) for port in ports), rest
    pubsub_port = int(exports["PUBSUB_EMULATOR_HOST"].rsplit(":", 1)[1])
    bigquery_port = int(exports["BIGQUERY_EMULATOR_HOST"].rsplit(":", 1)[1])
    left = processes_mentioning(f"--port={pubsub_port}") + processes_mentioning(f"--rest-port {bigquery_port}")
    assert not left, f"an emulator outlived the command: {left}"
