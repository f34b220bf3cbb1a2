"""The test TOM with a short heartbeat limit, for the status command run as a process."""

from .settings import *  # noqa: F403

PITTGOOGLE_HEARTBEAT_LATE_SECONDS = 3
