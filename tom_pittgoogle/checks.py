"""Django system checks (``manage.py check``, ``runserver``, ``migrate``): settings that would fail later, found
before anyone relies on them."""

from __future__ import annotations

from typing import Any

from django.core.checks import Error, Warning, register

from tom_pittgoogle import conf
from tom_pittgoogle.core.tokens import check_key
from tom_pittgoogle.exceptions import ConfigurationError


@register("tom_pittgoogle")
def check_token_encryption_key(app_configs: Any = None, **kwargs: Any) -> list:
    """A malformed ``PITTGOOGLE_TOKEN_ENCRYPTION_KEY`` would fail only after Google issued a user's tokens."""
    try:
        check_key()
    except ConfigurationError as error:
        return [Error(str(error), hint="Fix the setting, then restart the TOM.", id="tom_pittgoogle.E001")]
    return []


@register("tom_pittgoogle")
def check_as_user_not_in_settings(app_configs: Any = None, **kwargs: Any) -> list:
    """``PITTGOOGLE_AS_USER`` in settings.py would reach the web server too, where it is refused."""
    if conf.django_setting("PITTGOOGLE_AS_USER"):
        return [Warning(
            "PITTGOOGLE_AS_USER is set in settings.py: it is for management commands only (a web request acts "
            "for its own user, and without the middleware refuses to run a Pitt-Google query while it is set).",
            hint="Remove it from settings.py and give it in a command's environment "
            "(PITTGOOGLE_AS_USER=alice python manage.py ...) or use `manage.py pittgoogle_as alice ...`.",
            id="tom_pittgoogle.W001",
        )]
    return []


@register("tom_pittgoogle")
def check_status_settings(app_configs: Any = None, **kwargs: Any) -> list:
    """The night's start and time zone, and the falling-behind threshold, would fail only when the status is read."""
    from tom_pittgoogle.core.latency import check_settings

    return [Error(problem, hint="Fix the setting, then restart the TOM.", id="tom_pittgoogle.E002")
            for problem in check_settings()]
