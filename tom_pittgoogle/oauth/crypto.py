"""The earlier home of the token encryption, kept importable: it is :mod:`tom_pittgoogle.core.tokens`."""

from tom_pittgoogle.core.tokens import InvalidToken, check_key, decrypt, encrypt, needs_rotation, rotate

__all__ = ["InvalidToken", "check_key", "decrypt", "encrypt", "needs_rotation", "rotate"]
