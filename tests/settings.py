"""The test TOM: the demo TOM's settings on PostgreSQL (this machine's server on 127.0.0.1:5432)."""

import os

from tom_pittgoogle.demo.tom_settings import *  # noqa: F403

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": os.environ.get("PGHOST", "127.0.0.1"),
        "PORT": os.environ.get("PGPORT", "5432"),
        "NAME": os.environ.get("PGDATABASE", "test"),
        "USER": os.environ.get("PGUSER", "postgres"),
        "PASSWORD": os.environ.get("PGPASSWORD", ""),
        # Several checkouts may run their suites at once on one server: each names its own test database.
        "TEST": {"NAME": os.environ.get("PITTGOOGLE_TEST_DB") or None},
    }
}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# The tests of killed and stopped listeners wait for their messages to come back: within the lease, 10 s here
# (the default, 60 s, is for Rubin's bursts; docs/guide/performance.md).
PITTGOOGLE_STREAM_LEASE_SECONDS = 10
