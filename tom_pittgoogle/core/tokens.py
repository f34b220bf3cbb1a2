"""Encryption at rest of the stored OAuth tokens (Fernet: AES-128-CBC with an HMAC-SHA256).

The key is ``PITTGOOGLE_TOKEN_ENCRYPTION_KEY`` (a key made by ``Fernet.generate_key()``, or a list of them: the
first encrypts, all decrypt, so keys can be rotated); without it, a key derived from Django's ``SECRET_KEY``
with HKDF, so that a TOM works without one more secret, at the price that changing ``SECRET_KEY`` makes the
stored tokens unreadable and users connect again.

A malformed key is found before anyone connects: a Django system check (``tom_pittgoogle.E001``) and the Connect
page call :func:`check_key`. Whatever decrypts a token with an older key re-encrypts it under the first
(:func:`needs_rotation`, :func:`rotate`; ``manage.py pittgoogle_reencrypt_tokens`` does all of them), so that the
old key can then be removed.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.views.decorators.debug import sensitive_variables

from tom_pittgoogle import conf
from tom_pittgoogle.exceptions import ConfigurationError

__all__ = ["InvalidToken", "check_key", "decrypt", "encrypt", "needs_rotation", "rotate"]

_HKDF_INFO = b"tom_pittgoogle oauth token encryption"


@sensitive_variables()
def _derived_key() -> bytes:
    from django.conf import settings

    secret = settings.SECRET_KEY
    if not secret:
        raise ConfigurationError("SECRET_KEY is empty: set it, or PITTGOOGLE_TOKEN_ENCRYPTION_KEY.")
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(secret.encode())
    return base64.urlsafe_b64encode(key)


@sensitive_variables()
def _fernets() -> list[Fernet]:
    """The configured keys, the encrypting one first; :class:`ConfigurationError` if one is not a Fernet key."""
    configured = conf.get("PITTGOOGLE_TOKEN_ENCRYPTION_KEY")
    keys = [configured] if isinstance(configured, str | bytes) else configured
    try:
        keys = list(keys or [])
        return [Fernet(key) for key in keys] or [Fernet(_derived_key())]
    except (ValueError, TypeError):
        # Fernet's message would not quote the key, but say nothing about it anyway.
        raise ConfigurationError(
            "PITTGOOGLE_TOKEN_ENCRYPTION_KEY is not a Fernet key or a list of them (each 32 url-safe "
            "base64-encoded bytes, as made by `python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())'`)."
        ) from None


def _fernet() -> MultiFernet:
    return MultiFernet(_fernets())


def check_key() -> None:
    """Raise :class:`ConfigurationError` if the configured key(s) cannot encrypt tokens."""
    _fernets()


@sensitive_variables()
def encrypt(value: str) -> str:
    """``value`` encrypted, as text; the empty string stays empty."""
    return _fernet().encrypt(value.encode()).decode() if value else ""


@sensitive_variables()
def decrypt(value: str) -> str:
    """The text encrypted in ``value``; raises :class:`InvalidToken` if no configured key opens it."""
    return _fernet().decrypt(value.encode()).decode() if value else ""


@sensitive_variables()
def needs_rotation(value: str) -> bool:
    """True if ``value`` was encrypted with a key other than the first (the one that encrypts)."""
    if not value:
        return False
    try:
        _fernets()[0].decrypt(value.encode())
    except InvalidToken:
        return True
    return False


@sensitive_variables()
def rotate(value: str) -> str:
    """``value`` re-encrypted under the first key; raises :class:`InvalidToken` if no configured key opens it."""
    return _fernet().rotate(value.encode()).decode() if value else ""
