"""The Google sign-in pages: see the connected account, connect (OAuth 2.0 authorization code with state and
PKCE), Google's callback, and disconnect (revoke, then delete).

The state and the PKCE verifier live in the user's session between ``connect`` and ``callback``; they are
used once. Nothing here logs or shows a token, code or secret: every function holding one is marked with
``sensitive_variables``, and each view makes Django's error page hide those even with ``DEBUG`` on. The
encryption key is checked before the browser goes to Google; if the tokens Google issued cannot be stored, they
are revoked at once.
"""

from __future__ import annotations

import logging
import secrets

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.debug import SafeExceptionReporterFilter
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_GET, require_POST

from tom_pittgoogle import conf
from tom_pittgoogle.core.tokens import InvalidToken, check_key
from tom_pittgoogle.exceptions import ConfigurationError
from tom_pittgoogle.middleware import hide_sensitive_data
from tom_pittgoogle.models import GoogleConnection
from tom_pittgoogle.oauth import client

logger = logging.getLogger(__name__)

#: The session key holding the pending sign-in (state, PKCE verifier, redirect URI).
SESSION_KEY = "tom_pittgoogle_oauth_pending"
#: Where a user removes a TOM's access by hand when revocation failed.
GOOGLE_PERMISSIONS_PAGE = "https://myaccount.google.com/permissions"


def _redirect_uri(request: HttpRequest) -> str:
    return conf.get("PITTGOOGLE_OAUTH_REDIRECT_URI") or request.build_absolute_uri(
        reverse("tom_pittgoogle:oauth-callback")
    )


def _failure(request: HttpRequest, message: str, status: int = 400) -> HttpResponse:
    return render(request, "tom_pittgoogle/oauth_failed.html", {"message": message}, status=status)


@login_required
@require_GET
def connection(request: HttpRequest) -> HttpResponse:
    """Which Google account is connected (if any), and the buttons to connect, reconnect or disconnect."""
    context = {
        "connection": GoogleConnection.objects.filter(user=request.user).first(),
        "configured": client.is_configured(),
        "redirect_uri": _redirect_uri(request),
    }
    return render(request, "tom_pittgoogle/oauth_connection.html", context)


@login_required
@require_GET
@sensitive_variables()
def connect(request: HttpRequest) -> HttpResponse:
    """Start the sign-in: remember a new state and PKCE verifier, send the browser to Google's consent page."""
    hide_sensitive_data(request)
    try:
        # Before Google issues anything: tokens that could not be stored would be a grant nobody can use.
        check_key()
        url = _start(request)
    except ConfigurationError as error:
        return _failure(request, f"{error} Nothing was sent to Google.", status=503)
    logger.info("user %s started connecting a Google account", request.user.pk)
    return HttpResponseRedirect(url)


@sensitive_variables()
def _start(request: HttpRequest) -> str:
    state = client.new_state()
    verifier, challenge = client.pkce_pair()
    redirect_uri = _redirect_uri(request)
    url = client.authorization_url(redirect_uri, state, challenge)
    request.session[SESSION_KEY] = {"state": state, "verifier": verifier, "redirect_uri": redirect_uri}
    return url


def _forget_query_string(request: HttpRequest) -> None:
    """Take the code and state out of the request, so that no error page or request repr shows them."""
    request.GET = request.GET.copy()
    for name in ("code", "state"):
        if name in request.GET:
            request.GET[name] = SafeExceptionReporterFilter.cleansed_substitute
    request.META["QUERY_STRING"] = request.GET.urlencode()


@login_required
@require_GET
@sensitive_variables()
def callback(request: HttpRequest) -> HttpResponse:
    """Google sends the browser back here with a code (or an error) and the state it was given."""
    hide_sensitive_data(request)
    pending = request.session.pop(SESSION_KEY, None)  # used once, whatever happens next
    state = request.GET.get("state", "")
    code = request.GET.get("code")
    _forget_query_string(request)
    if not pending or not state or not secrets.compare_digest(state.encode(), pending["state"].encode()):
        logger.warning("Google sign-in callback for user %s with a missing or mismatched state", request.user.pk)
        return _failure(
            request,
            "This answer from Google does not belong to a sign-in started here (its state is missing or does not "
            "match), so it was ignored and nothing was stored. Start again with Connect Google account.",
        )
    if request.GET.get("error"):
        error = request.GET["error"][:80]
        return _failure(request, f"Google did not connect your account ({error}). Nothing was stored.")
    if not code:
        return _failure(request, "Google's answer holds no authorization code. Nothing was stored.")
    try:
        tokens = client.exchange_code(code, pending["redirect_uri"], pending["verifier"])
    except (client.OAuthError, ConfigurationError) as error:
        logger.warning("Google sign-in of user %s failed: %s", request.user.pk, error)
        return _failure(request, f"{error} Nothing was stored.", status=502)
    if not tokens.refresh_token:
        _revoke_issued(tokens)
        return _failure(
            request,
            "Google granted access but sent no refresh token, so the TOM could not keep the connection. Remove "
            f"this TOM at {GOOGLE_PERMISSIONS_PAGE} and connect again.",
            status=502,
        )
    try:
        email = _store(request.user, tokens)
    except (ConfigurationError, InvalidToken, DatabaseError) as error:
        # Google issued tokens the TOM cannot keep: revoke them rather than leave a grant nobody can use.
        revoked = _revoke_issued(tokens)
        reason = str(error) if isinstance(error, ConfigurationError) else type(error).__name__
        logger.error("could not store the Google connection of user %s (%s): tokens revoked: %s",
                     request.user.pk, reason, revoked)
        return _failure(
            request,
            f"Google connected your account, but the TOM could not store the connection ({reason}), so the access "
            f"was {'revoked at Google' if revoked else f'not kept: remove this TOM at {GOOGLE_PERMISSIONS_PAGE}'}"
            ". Nothing was stored; tell the TOM's administrator.",
            status=503,
        )
    except BaseException:
        _revoke_issued(tokens)
        raise
    logger.info("user %s connected a Google account", request.user.pk)
    messages.success(request, f"Connected Google account {email or ''}. Your Pitt-Google queries now use it.")
    return redirect("tom_pittgoogle:oauth-connection")


@sensitive_variables()
def _store(user, tokens: client.Tokens) -> str:
    """Save ``tokens`` as ``user``'s connection (encrypted); returns the account's email."""
    email = client.fetch_email(tokens.access_token)
    connection = GoogleConnection.objects.filter(user=user).first() or GoogleConnection(user=user)
    connection.email = email
    connection.scopes = " ".join(tokens.scopes)
    connection.store_tokens(tokens.access_token, tokens.expiry, tokens.refresh_token)
    connection.save()
    return email


@sensitive_variables()
def _revoke_issued(tokens: client.Tokens) -> bool:
    """Revoke the grant of freshly issued tokens (its refresh token, else its access token)."""
    try:
        return client.revoke(tokens.refresh_token or tokens.access_token)
    except ConfigurationError:
        return False


@login_required
@require_POST
@sensitive_variables()
def disconnect(request: HttpRequest) -> HttpResponse:
    """Revoke the grant at Google, then forget the tokens (even if revocation failed)."""
    hide_sensitive_data(request)
    connection = GoogleConnection.objects.filter(user=request.user).first()
    if connection is None:
        messages.info(request, "No Google account was connected.")
        return redirect("tom_pittgoogle:oauth-connection")
    try:
        revoked = client.revoke(connection.refresh_token)
    except (InvalidToken, ConfigurationError):
        revoked = False
    connection.delete()
    logger.info("user %s disconnected their Google account (revoked at Google: %s)", request.user.pk, revoked)
    if revoked:
        messages.success(request, "Disconnected your Google account: the TOM's access was revoked at Google.")
    else:
        messages.warning(
            request,
            "Disconnected your Google account here, but Google did not confirm the revocation: remove this TOM's "
            f"access at {GOOGLE_PERMISSIONS_PAGE}.",
        )
    return redirect("tom_pittgoogle:oauth-connection")
