"""The TOM's database as the routes see it: down (stop, acknowledge nothing) or refusing one row (record it).

:func:`database_is_down` tells the two apart, :class:`guard_database` turns the first into
:class:`DatabaseUnavailableError` with a clear message, and :func:`json_safe_text` makes text storable in a
JSON column.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import DatabaseError, DataError, IntegrityError, OperationalError, ProgrammingError

from tom_pittgoogle.core.pubsub import describe_error
from tom_pittgoogle.exceptions import PittGoogleError


class DatabaseUnavailableError(PittGoogleError):
    """The TOM's database cannot be reached (refused or lost connection): nothing of the call was stored."""


def database_is_down(error: BaseException) -> bool:
    """True for an error that says the database cannot store alerts at all, not that it refused one row.

    A row's fault: a value the database refuses (``DataError``), a constraint it breaks (``IntegrityError``),
    PostgreSQL's "program limit exceeded" class 54 (a row too big to index, an ``OperationalError``), and a value
    the driver cannot send (a ``ProgrammingError`` raised before the server saw it, so without a SQLSTATE).
    Anything else stops the route without acknowledging: the connection is gone (``InterfaceError``,
    ``OperationalError``), or the table cannot be written (``ProgrammingError`` from the server: a migration not
    applied, a privilege missing; ``InternalError``, ``NotSupportedError``). Rejecting every message of the night
    for such a reason would lose the night's alerts.
    """
    if isinstance(error, DataError | IntegrityError):
        return False
    sqlstate = getattr(error.__cause__, "sqlstate", None) or ""
    if isinstance(error, OperationalError):
        return not sqlstate.startswith("54")
    if isinstance(error, ProgrammingError):
        return bool(sqlstate)
    return isinstance(error, DatabaseError)


class guard_database:
    """Turn a database that is down into :class:`DatabaseUnavailableError` (a clear message, no SQL)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, error, tb) -> bool:
        if error is not None and not isinstance(error, PittGoogleError) and database_is_down(error):
            raise DatabaseUnavailableError(
                f"the TOM's database is unavailable or cannot store alerts ({describe_error(error)}); nothing was "
                "acknowledged, "
                "Pub/Sub will deliver the messages again"
            ) from error
        return False


def storable(text: str) -> bool:
    return "\x00" not in text and not any("\ud800" <= c <= "\udfff" for c in text)


def json_safe_text(value: Any) -> Any:
    """``value`` with its strings storable in a JSON column (no NUL, no lone surrogate)."""
    if isinstance(value, str):
        if not storable(value):
            return value.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")
        return value
    if isinstance(value, Mapping):
        return {json_safe_text(str(key)): json_safe_text(item) for key, item in value.items()}
    return value
