"""Who acts: on whose behalf Google is called while a web request or a command runs.

- a web request acts for its own user, set by :class:`~tom_pittgoogle.middleware.CurrentUserMiddleware` (TOM
  Toolkit calls a broker without the request, so the user travels in a context variable);
- a command acts for the user it names (:func:`acting_as`, ``manage.py pittgoogle_as``), or for
  ``PITTGOOGLE_AS_USER`` (refused while a web request is served);
- otherwise nobody: the site's credentials are used.

A visitor who is not logged in is refused any query that uses credentials (:func:`refuse_anonymous`). Which
credentials the actor has is decided by :mod:`tom_pittgoogle.core.credentials`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from tom_pittgoogle import conf
from tom_pittgoogle.exceptions import CredentialsError


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


@contextmanager
def acting_as(user: Any) -> Iterator[None]:
    """Within the block, the routes use ``user``'s connected Google account (a User or a username).

    For commands and scripts: ``with acting_as("alice"): call_command("runbrokerquery", "my query")``.
    Without a connection the routes raise :class:`CredentialsError` rather than use the site's credentials.
    """
    with acting_for(Actor(named_user=_user_named(user), required=True)):
        yield


def _user_named(user: Any) -> Any:
    if not isinstance(user, str):
        return user
    found = find_user(user)
    if found is None:
        raise CredentialsError(f"There is no user {user!r} in this TOM to act as.")
    return found


def find_user(username: str) -> Any | None:
    """The TOM user whose username (the user model's ``USERNAME_FIELD``) is ``username``, or None."""
    from django.contrib.auth import get_user_model

    model = get_user_model()
    try:
        return model._default_manager.get_by_natural_key(username)
    except model.DoesNotExist:
        return None


def current_actor() -> Actor | None:
    """Who the routes act for now: the request's or command's user, else ``PITTGOOGLE_AS_USER``, else nobody.

    ``PITTGOOGLE_AS_USER`` is for commands: while this process serves a web request (with or without the
    middleware) it is refused, so that no web visitor ever gets the named user's Google account.
    """
    actor = _actor.get()
    if actor is not None:
        return actor
    username = conf.get("PITTGOOGLE_AS_USER")
    if username:
        if in_web_request():
            raise CredentialsError(
                "PITTGOOGLE_AS_USER is set where this TOM serves web pages: it is for management commands only "
                "(a web request acts for its own user). Its administrator removes it from the web server's "
                "settings and environment, and adds tom_pittgoogle.middleware.CurrentUserMiddleware to MIDDLEWARE."
            )
        return Actor(named_user=_user_named(username), required=True)
    return None


def in_web_request() -> bool:
    """True while this context (or, for a thread a request started, this process) serves a web request."""
    actor = _actor.get()
    return (actor is not None and actor.request is not None) or conf.in_web_request()


class LoginRequiredError(CredentialsError):
    """A web visitor who is not logged in asked for a query that uses Google credentials or stores alerts."""


def refuse_anonymous(what: str, user: Any = None) -> None:
    """Raise :class:`LoginRequiredError` if a visitor who is not logged in is running ``what`` from a web page.

    ``user``: the request's user when the caller knows it (a DataService is given it by TOM Toolkit's views);
    otherwise the middleware's. Commands and scripts (no web request) are not refused.
    """
    if not in_web_request():
        return
    actor = _actor.get()
    if user is None and actor is not None and actor.request is not None:
        user = getattr(actor.request, "user", None)
    # user None: a web request without the middleware, whose user is unknown here (TOM Toolkit's broker views
    # require a login themselves).
    if user is None or getattr(user, "is_authenticated", False):
        return
    login = _login_url()
    raise LoginRequiredError(
        f"Log in to run {what}: it uses the TOM's Google credentials and stores the alerts it gets, so visitors "
        f"who are not logged in may not run it{f' (log in at {login})' if login else ''}.",
        link=login,
    )


def _login_url() -> str | None:
    from django.conf import settings
    from django.shortcuts import resolve_url

    try:
        return str(resolve_url(settings.LOGIN_URL))
    except Exception:  # noqa: BLE001 - an unresolvable LOGIN_URL only loses the link
        return None
