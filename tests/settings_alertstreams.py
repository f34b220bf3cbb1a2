"""The test TOM with tom-alertstreams: ``readstreams`` runs ``settings.ALERT_STREAMS``, which a test passes as
JSON in ``PITTGOOGLE_TEST_ALERT_STREAMS`` (the command runs in its own process)."""

import json
import os

from tests.settings import *  # noqa: F403
from tests.settings import INSTALLED_APPS

INSTALLED_APPS = INSTALLED_APPS + ["tom_alertstreams"]
ALERT_STREAMS = json.loads(os.environ.get("PITTGOOGLE_TEST_ALERT_STREAMS", "[]"))
