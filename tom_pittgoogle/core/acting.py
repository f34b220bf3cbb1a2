"""The current user: on whose behalf Google is called while a web request or a command runs.

A web request's user is set by :class:`~tom_pittgoogle.middleware.CurrentUserMiddleware` (TOM Toolkit calls a
broker without the request, so the user travels in a context variable); the credentials are then resolved for
them by :mod:`tom_pittgoogle.core.credentials`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, repr=False)
class Actor:
    """On whose behalf Google is called: a web request's user (read lazily) or a user a command names.

    ``required``: the user was named explicitly (a command), so their connection must be used; a web user
    without one falls back to the site's credentials instead.
    """

    request: Any = None
    named_user: Any = None
    required: bool = False

    def __repr__(self) -> str:
        # Not the request's: its repr holds the query string, which on the OAuth callback is a code.
        user = self.named_user if self.request is None else None
        source = "web request" if self.request is not None else f"user {getattr(user, 'pk', None)}"
        return f"<Actor {source} required={self.required}>"

    @property
    def user(self) -> Any:
        if self.request is not None:
            user = getattr(self.request, "user", None)
            return user if user is not None and user.is_authenticated else None
        return self.named_user

    @property
    def connect_url(self) -> str | None:
        """The page where this user connects a Google account: absolute in a web request, else the path."""
        from django.urls import NoReverseMatch, reverse

        try:
            path = reverse("tom_pittgoogle:oauth-connection")
        except NoReverseMatch:  # the TOM did not include tom_pittgoogle.urls
            return None
        return self.request.build_absolute_uri(path) if self.request is not None else path


_actor: ContextVar[Actor | None] = ContextVar("tom_pittgoogle_actor", default=None)


def actor_in_context() -> Actor | None:
    """The actor set for this context (a web request's or a command's), or None."""
    return _actor.get()


@contextmanager
def acting_for(actor: Actor) -> Iterator[None]:
    """Within the block, credentials are resolved for ``actor``."""
    token = _actor.set(actor)
    try:
        yield
    finally:
        _actor.reset(token)


@contextmanager
def acting_for_request(request: Any) -> Iterator[None]:
    """Within the block, credentials are resolved for ``request.user`` (used by the middleware)."""
    with acting_for(Actor(request=request)):
        yield
