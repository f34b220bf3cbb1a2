"""The app's migrations apply, and unapply, on SQLite too (the demo TOM's database, and many a small TOM's)."""

from __future__ import annotations

import os
import subprocess
import sys


def _django(tmp_path, *args: str) -> subprocess.CompletedProcess:
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tom_pittgoogle.demo.tom_settings",
        "PITTGOOGLE_DEMO_DIR": str(tmp_path),
        "PITTGOOGLE_DEMO_DB": str(tmp_path / "db.sqlite3"),
    }
    return subprocess.run([sys.executable, "-m", "django", *args], env=environment, capture_output=True, text=True,
                          timeout=300)


def test_every_migration_applies_and_unapplies_on_sqlite(tmp_path):
    applied = _django(tmp_path, "migrate", "--no-input")
    assert applied.returncode == 0, applied.stderr[-2000:]
    plan = _django(tmp_path, "showmigrations", "tom_pittgoogle")
    assert "[ ]" not in plan.stdout and "[X] 0005_stored_route_and_heartbeat" in plan.stdout, plan.stdout
    reverted = _django(tmp_path, "migrate", "tom_pittgoogle", "0003", "--no-input")
    assert reverted.returncode == 0, reverted.stderr[-2000:]
