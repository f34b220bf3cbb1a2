"""Settings of the demo TOM (and, with PostgreSQL, of the test TOM): a TOM Toolkit 3.1 site with tom_alerts
and the three Pitt-Google brokers. Everything that differs between runs comes from the environment.
"""

import os
import tempfile
from pathlib import Path

from tom_common.default_settings import *  # noqa: F403
from tom_common.default_settings import (
    TOMTOOLKIT_AUTHENTICATION_BACKENDS,
    TOMTOOLKIT_INSTALLED_APPS,
    TOMTOOLKIT_MIDDLEWARE,
)

from tom_pittgoogle.demo.assets import DEMO_STATIC, bootstrap5_settings

BASE_DIR = Path(os.environ.get("PITTGOOGLE_DEMO_DIR", Path(tempfile.gettempdir()) / "tom-pittgoogle-demo"))

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "demo-only-not-secret")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
TOM_NAME = "Pitt-Google demo TOM"

INSTALLED_APPS = TOMTOOLKIT_INSTALLED_APPS + ["tom_alerts", "tom_pittgoogle"]
SITE_ID = 1
# The request's user is the one whose connected Google account the Pitt-Google queries use.
MIDDLEWARE = TOMTOOLKIT_MIDDLEWARE + ["tom_pittgoogle.middleware.CurrentUserMiddleware"]
ROOT_URLCONF = "tom_pittgoogle.demo.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.debug",
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]
CRISPY_TEMPLATE_PACK = "bootstrap5"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("PITTGOOGLE_DEMO_DB", str(BASE_DIR / "db.sqlite3")),
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"
AUTHENTICATION_BACKENDS = TOMTOOLKIT_AUTHENTICATION_BACKENDS
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "/static/"
STATIC_ROOT = str(BASE_DIR / "_static")
# tom_common/css/custom.css, which every TOM Toolkit page loads (tom_setup makes it for a TOM's own styles), and
# Bootstrap when `make demo` could fetch it (tom_pittgoogle.demo.assets): styled pages offline too.
STATICFILES_DIRS = [str(Path(__file__).resolve().parent / "static")]
if _bootstrap5 := bootstrap5_settings(STATIC_URL):
    STATICFILES_DIRS.append(str(DEMO_STATIC))
    BOOTSTRAP5 = _bootstrap5
MEDIA_ROOT = str(BASE_DIR / "data")
MEDIA_URL = "/data/"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"timestamped": {"format": "[{asctime}] {levelname} {name}: {message}", "style": "{"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "timestamped"}},
    "loggers": {
        "": {"handlers": ["console"], "level": "WARNING"},
        "tom_pittgoogle": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}

# Local memory is per process: RunQueryView caches the alerts it shows for CreateTargetFromAlertView,
# which runs in the same server process.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}

TARGET_TYPE = "SIDEREAL"
TOM_FACILITY_CLASSES = []
EXTRA_FIELDS = []
SELECTION_EXTRA_FIELDS = []
GENERAL_SEARCH_FUNCTIONS = {}
MATCH_MANAGERS = {}
AUTH_STRATEGY = "READ_ONLY"
OPEN_URLS = []
TARGET_PERMISSIONS_ONLY = True
TARGET_DEFAULT_PERMISSION = "PRIVATE"
HOOKS = {}
AUTO_THUMBNAILS = False
HINTS_ENABLED = False
DATA_PRODUCT_TYPES = {"photometry": ("photometry", "Photometry")}
DATA_PROCESSORS = {"photometry": "tom_dataproducts.processors.photometry_processor.PhotometryProcessor"}

TOM_ALERT_CLASSES = [
    "tom_pittgoogle.broker_stream_rest.BrokerStreamRest",
    "tom_pittgoogle.broker_stream_python.BrokerStreamPython",
    "tom_pittgoogle.broker_database_python.BrokerDatabasePython",
]

# The user's Google Cloud project (subscriptions are created there); with the emulators any id works.
GOOGLE_CLOUD_PROJECT = os.environ.get("GOOGLE_CLOUD_PROJECT", "pitt-broker-user-project")
