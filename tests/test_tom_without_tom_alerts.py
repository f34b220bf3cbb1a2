"""A TOM Toolkit 3 TOM whose settings have tom_dataservices and no tom_alerts (nor tom-alertstreams): its own
pytest session (Django is configured once per process), on its own test database, as part of this run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_a_tom_with_dataservices_and_no_tom_alerts_queries_creates_targets_and_streams():
    test_db = (os.environ.get("PITTGOOGLE_TEST_DB") or f"test_{os.environ.get('PGDATABASE', 'test')}") + "_noalerts"
    env = dict(os.environ, PITTGOOGLE_TEST_DB=test_db)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/dataservices_only_flow.py", "--ds", "tests.settings_dataservices_only",
         "-p", "no:cacheprovider", "-q", "-W", "ignore", "--create-db"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert " passed" in summary and "failed" not in summary and "skipped" not in summary, summary
