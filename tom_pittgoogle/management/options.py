"""Command options that take a number: each parsed with its bounds, an impossible value refused in one line.

``argparse`` prints an ``ArgumentTypeError``'s message as the command's error (``call_command`` raises it as a
``CommandError``): ``--older-than inf`` is an error naming the option, never a traceback from deeper in.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def number_option(kind: type[int] | type[float], low: float | None = None, high: float | None = None, *,
                  above: bool = False, unit: str = "") -> Callable[[str], int | float]:
    """A ``type=`` for ``add_argument``: a whole number (``int``) or a finite number (``float``) from ``low``
    (or ``above`` it) to ``high``; None: no bound but finiteness. NaN and infinity are never in range."""
    what = "a whole number" if kind is int else "a number" + (f" of {unit}" if unit else "")
    if low is not None and high is not None:
        what += f" {'above' if above else 'from'} {low:g} {'and at most' if above else 'to'} {high:g}"
    elif low is not None:
        what += f" {'above' if above else 'from'} {low:g}"
    else:
        what = f"a finite {what.removeprefix('a ')}"

    def parse(value: str) -> int | float:
        try:
            number = kind(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not {what}") from None
        in_range = (kind is int or math.isfinite(number)) and (
            low is None or (number > low if above else number >= low)) and (high is None or number <= high)
        if not in_range:
            raise argparse.ArgumentTypeError(f"{value!r} is not {what}")
        return number

    return parse
