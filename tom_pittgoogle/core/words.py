"""Counts in plain words: "1 alert", "2 alerts"."""

from __future__ import annotations


def count(number: int, word: str, plural: str | None = None) -> str:
    """``number`` and ``word``, in the plural unless the number is one: ``count(1, "alert")`` is ``1 alert``."""
    return f"{number} {word if number == 1 else (plural or word + 's')}"
