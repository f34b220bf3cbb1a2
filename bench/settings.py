"""The benchmark's TOM: the demo TOM's settings on a PostgreSQL database of its own (created by the bench)."""

import os

from tom_pittgoogle.demo.tom_settings import *  # noqa: F403

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": os.environ.get("PGHOST", "127.0.0.1"),
        "PORT": os.environ.get("PGPORT", "5432"),
        "NAME": os.environ.get("PITTGOOGLE_BENCH_DB", "pittgoogle_bench"),
        "USER": os.environ.get("PGUSER", "postgres"),
        "PASSWORD": os.environ.get("PGPASSWORD", ""),
    }
}
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
if os.environ.get("PITTGOOGLE_BENCH_LEASE_SECONDS"):  # to compare leases (the product's default otherwise)
    PITTGOOGLE_STREAM_LEASE_SECONDS = int(os.environ["PITTGOOGLE_BENCH_LEASE_SECONDS"])
