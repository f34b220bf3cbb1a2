"""A TOM Toolkit 3 TOM with tom_pittgoogle and tom_dataservices only: no tom_alerts, no tom-alertstreams.

Both are made unimportable here, so that any import of them by tom_pittgoogle (outside the brokers and the
alert stream, which such a TOM does not use) fails the tests that run with these settings
(``tests/dataservices_only_flow.py``, run by ``tests/test_tom_without_tom_alerts.py``).
"""

import sys
from importlib.abc import MetaPathFinder

from tests.settings import *  # noqa: F403
from tests.settings import INSTALLED_APPS

ABSENT = ("tom_alerts", "tom_alertstreams")


class _Absent(MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in ABSENT:
            raise ModuleNotFoundError(f"No module named {fullname!r} (absent from this TOM)", name=fullname)
        return None


sys.meta_path.insert(0, _Absent())

INSTALLED_APPS = [app for app in INSTALLED_APPS if app not in ABSENT]
TOM_ALERT_CLASSES = []
ROOT_URLCONF = "tests.urls_dataservices_only"
# An optional DATA_SERVICES entry: the query form starts on these.
DATA_SERVICES = {"Pitt-Google": {"survey": "ztf", "route": "bigquery"}}
