"""``make demo`` shows what the app does while it serves: an ingester runs (the status page says so) and stores
the alerts that keep coming (the stored route has them), the pages are styled as a TOM's are, and a second run
shows new alerts and Targets, not "0 new" everywhere. The demo as a user runs it, in a process of its own."""

from __future__ import annotations

import http.cookiejar
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

from tom_pittgoogle.demo.assets import bootstrap5_settings
from tom_pittgoogle.demo.emulators import free_port, port_is_free

from .helpers import wait_until

ROOT = Path(__file__).resolve().parents[1]


def demo(*args: str) -> subprocess.Popen:
    environment = {k: v for k, v in os.environ.items() if k not in ("PUBSUB_EMULATOR_HOST", "BIGQUERY_EMULATOR_HOST")}
    return subprocess.Popen([sys.executable, "-m", "tom_pittgoogle.demo", *args], cwd=ROOT,
                            env={**environment, "PYTHONUNBUFFERED": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def read_until(process: subprocess.Popen, text: str, timeout: float = 300) -> str:
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        seen.append(line)
        if text in line:
            return "".join(seen)
    raise AssertionError(f"no {text!r} from the demo within {timeout} s:\n{''.join(seen)[-5000:]}")


class Browser:
    """The demo's pages as its user (demo/demo) sees them."""

    def __init__(self, site: str) -> None:
        self.site = site
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        login = self.get("/accounts/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login).group(1)
        data = urllib.parse.urlencode({"login": "demo", "password": "demo", "csrfmiddlewaretoken": token})
        self.opener.open(urllib.request.Request(f"{site}/accounts/login/", data=data.encode(),
                                                headers={"Referer": f"{site}/accounts/login/"}), timeout=60)

    def get(self, path: str) -> str:
        with self.opener.open(f"{self.site}{path}", timeout=60) as response:
            return response.read().decode()


def stored_by_the_ingester(workdir: Path) -> int:
    with sqlite3.connect(f"file:{workdir / 'db.sqlite3'}?mode=ro", uri=True, timeout=30) as db:
        return db.execute("SELECT count(*) FROM tom_pittgoogle_alert WHERE subscription LIKE "
                          "'%ztf-loop-demo-ingester'").fetchone()[0]


def test_the_demo_runs_an_ingester_is_styled_and_a_second_run_shows_new_alerts(tmp_path):
    workdir, port = tmp_path / "demo", free_port()
    process = demo("--port", str(port), "--dir", str(workdir))
    try:
        output = read_until(process, "Ctrl-C stops the server")
        ingester_pid = int(re.search(r"pittgoogle_stream --subscription ztf-loop-demo-ingester, pid (\d+)",
                                     output).group(1))
        emulator_ports = [int(p) for p in re.findall(r"(?:pubsub-emulator|bqemulator) ready on 127\.0\.0\.1:(\d+)",
                                                     output)]
        assert len(emulator_ports) == 2, output
        assert "Alerts -> Queries" not in output and f"http://127.0.0.1:{port}/alerts/query/list/" in output
        assert "fetched 1 alerts" not in output

        assert wait_until(lambda: not port_is_free(port), timeout=60), "the demo TOM never listened"
        site = Browser(f"http://127.0.0.1:{port}")
        # The ingester stores what keeps coming, and the status page shows it running.
        assert wait_until(lambda: stored_by_the_ingester(workdir) > 40, timeout=120), stored_by_the_ingester(workdir)
        status = site.get("/pittgoogle/status/")
        assert f"{ingester_pid} <small>(pittgoogle_stream)</small>" in status and "<td>running</td>" in status
        assert "No ingester has run yet" not in status

        # Styled as a TOM is: Bootstrap from the demo's own static files when `make demo` fetched it (else the
        # CDN's link), and the custom.css every TOM Toolkit page asks for.
        home = site.get("/")
        css = re.search(r'<link href="([^"]+bootstrap[^"]*\.css)"', home).group(1)
        if bootstrap5_settings("/static/") is not None:
            assert css == "/static/bootstrap/css/bootstrap.min.css"
            assert "Bootstrap" in site.get(css)[:200]
        else:
            assert css.startswith("https://cdn.jsdelivr.net/npm/bootstrap@")
        site.get("/static/tom_common/css/custom.css")  # a 404 raises
    finally:
        process.send_signal(signal.SIGTERM)
        rest, _ = process.communicate(timeout=180)
    assert process.returncode == 0, rest[-3000:]
    assert wait_until(lambda: not Path(f"/proc/{ingester_pid}").exists(), timeout=30), "the ingester outlived the demo"
    assert all(port_is_free(p) for p in emulator_ports), rest[-3000:]

    # A second run in the same folder: other alerts, new Targets, and Last Run set on each saved query.
    second = subprocess.run([sys.executable, "-m", "tom_pittgoogle.demo", "--no-serve", "--dir", str(workdir)],
                            cwd=ROOT, env={k: v for k, v in os.environ.items() if "EMULATOR_HOST" not in k},
                            capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    streams = re.findall(r"== Pitt-Google Stream\w+ :: .*\n   fetched (\d+) alerts?; stored (\d+) new alerts?",
                         second.stdout)
    assert streams and all(int(stored) > 0 for _, stored in streams), second.stdout
    assert second.stdout.count("(none new)") < len(streams), second.stdout
    with sqlite3.connect(workdir / "db.sqlite3") as db:
        assert db.execute("SELECT count(*) FROM tom_alerts_brokerquery WHERE last_run IS NULL").fetchone()[0] == 0
