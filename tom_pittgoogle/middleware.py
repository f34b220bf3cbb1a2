"""Makes the request's user the one whose Google account the routes use while the request is served.

TOM Toolkit's ``RunQueryView`` calls ``broker.fetch_alerts(parameters)`` without the request, so the user
travels in a context variable (see :func:`tom_pittgoogle.credentials.acting_for_request`). Add
``"tom_pittgoogle.middleware.CurrentUserMiddleware"`` to ``MIDDLEWARE`` after Django's
``AuthenticationMiddleware``.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from .credentials import acting_for_request


class CurrentUserMiddleware:
    """Resolve Google credentials for ``request.user`` (read lazily, only if a route asks)."""

    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with acting_for_request(request):
            return self.get_response(request)
