"""``make test`` leaves no test database behind, even when a thread left its database connection open."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.django_db


def test_the_test_database_is_dropped_although_a_thread_left_a_connection_open():
    name = f"test_teardown_{uuid.uuid4().hex[:8]}"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/leaky_thread_session.py"],
        cwd=ROOT, env={**os.environ, "PITTGOOGLE_TEST_DB": name}, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "being accessed by other users" not in result.stdout + result.stderr
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_database WHERE datname = %s", [name])
        assert cursor.fetchone()[0] == 0
