"""Makes the request's user the one whose Google account the routes use while the request is served.

TOM Toolkit's ``RunQueryView`` calls ``broker.fetch_alerts(parameters)`` without the request, so the user
travels in a context variable (see :mod:`tom_pittgoogle.core.acting`). Add
``"tom_pittgoogle.middleware.CurrentUserMiddleware"`` to ``MIDDLEWARE`` after Django's
``AuthenticationMiddleware``.

It also makes Django's error page hide what this app marks sensitive even with ``DEBUG`` on
(:func:`hide_sensitive_data`): Django's own filter only hides it with ``DEBUG`` off.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.views.debug import SafeExceptionReporterFilter

from tom_pittgoogle.core.acting import acting_for_request


class SensitiveDataFilter(SafeExceptionReporterFilter):
    """Django's filter, active with ``DEBUG`` on too: variables marked with ``sensitive_variables`` (tokens,
    codes, verifiers, secrets) and ``sensitive_post_parameters`` are never shown on an error page."""

    def is_active(self, request: HttpRequest | None) -> bool:
        return True

    def get_traceback_frame_variables(self, request: HttpRequest | None, tb_frame: Any) -> list:
        # A safety net for frames nobody marked (a client library's, say): hide what is named like a secret (as
        # Django does for settings: token, key, secret, auth...), the same keys of a dict or headers, and bearer
        # tokens.
        return [(name, self._cleanse(name, value))
                for name, value in super().get_traceback_frame_variables(request, tb_frame)]

    def _cleanse(self, name: str, value: Any) -> Any:
        if self.hidden_settings.search(name) or (isinstance(value, str) and value.lower().startswith("bearer ")):
            return self.cleansed_substitute
        if isinstance(value, Mapping) and not isinstance(value, dict):  # requests' headers
            value = dict(value.items())
        if isinstance(value, dict | list | tuple):
            return self.cleanse_setting(name, value)
        return value


def hide_sensitive_data(request: HttpRequest) -> None:
    """Make the error page of ``request`` (a technical 500 page with ``DEBUG`` on, or the admins' report) hide
    the variables this app marks sensitive."""
    request.exception_reporter_filter = SensitiveDataFilter()


class CurrentUserMiddleware:
    """Resolve Google credentials for ``request.user`` (read lazily, only if a route asks)."""

    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        hide_sensitive_data(request)
        with acting_for_request(request):
            return self.get_response(request)
