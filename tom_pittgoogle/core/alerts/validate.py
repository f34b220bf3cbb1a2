"""What a value must be to reach the database or a page, per field and per survey.

Each check returns the normalised value or raises :class:`DecodeError` naming the field. Required fields (the
ids, time, position) reject the alert when wrong; optional ones (magnitude, error, kept survey fields, scores)
are dropped to None with a warning that names them, so that one odd measurement does not lose the alert. Wrong
*types* (a band given as a list, text where a number belongs) are always a rejection: they mean the packet is not
what its survey publishes.

========================  =========================================================================  ==========
field                     allowed                                                                     if not
========================  =========================================================================  ==========
``object_id`` ZTF         ``ZTF`` + 2 digits + 7 lowercase letters (``ZTF18abfkwnk``)                  rejected
``object_id`` LSST        a positive 64-bit integer (diaObjectId or ssObjectId), as decimal text       rejected
``source_id``             a positive 64-bit integer (ZTF candid, LSST diaSourceId), as decimal text    rejected
``jd``                    UTC Julian Date from 2015-01-01 (JD 2457023.5, before ZTF and Rubin) to      rejected
                          one day after now
``ra`` / ``dec``          finite degrees; ra in [0, 360) (360 wraps to 0), dec in [-90, 90]            rejected
``band``                  the survey's bands (ZTF g r i, LSST u g r i z y), at most 16 characters       rejected
``mag``                   finite, in [-5, 40]                                                          dropped
``mag_err``               finite, in [0, 20]                                                           dropped
strings                   no NUL, no lone surrogate, at most :data:`MAX_TEXT` characters               dropped
========================  =========================================================================  ==========

Nothing here imports Django.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tom_pittgoogle.exceptions import DecodeError

logger = logging.getLogger(__name__)

INT64_MAX = 2**63 - 1
#: JD of 2015-01-01 UTC: no Pitt-Google alert (ZTF from 2018, Rubin from 2025) is older.
MIN_JD = 2457023.5
#: Seconds after now a time may lie (clocks, and the day boundary of a night's processing).
FUTURE_SLACK_DAYS = 1.0
JD_UNIX_EPOCH = 2440587.5
MAG_RANGE = (-5.0, 40.0)
MAG_ERR_RANGE = (0.0, 20.0)
#: Longest id (the model's columns are 64) and band (16).
MAX_ID = 64
MAX_BAND = 16
#: Longest kept string value (ssnamenr, band names, class labels...).
MAX_TEXT = 256

# ASCII digits only: ``\d`` and ``str.isdigit`` take any Unicode digit (Arabic-Indic, fullwidth...), and ``int()``
# reads them, so one id could be written many ways and pass the database's unique keys.
ZTF_OBJECT_ID = re.compile(r"ZTF[0-9]{2}[a-z]{7}")
_DIGITS = re.compile(r"[1-9][0-9]{0,18}")
DECIMAL_ID = re.compile(r"[0-9]{1,19}")
SURVEY_BANDS = {"ztf": ("g", "r", "i"), "lsst": ("u", "g", "r", "i", "z", "y")}


def max_jd() -> float:
    return JD_UNIX_EPOCH + time.time() / 86400.0 + FUTURE_SLACK_DAYS


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def clean_text(value: Any, field: str, *, limit: int = MAX_TEXT) -> str:
    """``value`` as text without NUL or lone surrogates, at most ``limit`` characters; DecodeError otherwise."""
    if not isinstance(value, str):
        raise DecodeError(f"{field} is {type(value).__name__}, not text")
    if "\x00" in value:
        raise DecodeError(f"{field} holds a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise DecodeError(f"{field} holds a lone surrogate (not valid Unicode)") from None
    if len(value) > limit:
        raise DecodeError(f"{field} is {len(value)} characters long, more than {limit}")
    return value


def positive_int64(value: Any, field: str) -> str:
    """A positive 64-bit integer given as int or decimal text, returned as text (how the models store ids)."""
    if isinstance(value, bool) or value is None:
        raise DecodeError(f"{field} is missing" if value is None else f"{field} is a boolean, not an id")
    if isinstance(value, float):
        if not value.is_integer():
            raise DecodeError(f"{field} is {value!r}, not a whole number")
        value = int(value)
    if isinstance(value, int):
        if not 0 < value <= INT64_MAX:
            raise DecodeError(f"{field} is {value}, not a positive 64-bit integer")
        return str(value)
    text = clean_text(value, field, limit=MAX_ID)
    if not _DIGITS.fullmatch(text) or int(text) > INT64_MAX:
        raise DecodeError(f"{field} is {text[:40]!r}, not a positive 64-bit integer")
    return text


def is_decimal_id(text: str) -> bool:
    """Whether ``text`` is an id written in ASCII decimal digits (at most 19: a 64-bit integer's)."""
    return DECIMAL_ID.fullmatch(text) is not None


def object_id(survey: str, value: Any) -> str:
    if survey == "ztf":
        if value is None:
            raise DecodeError("object_id (objectId) is missing")
        text = clean_text(value, "object_id (objectId)", limit=MAX_ID) if not is_number(value) else str(value)
        if not ZTF_OBJECT_ID.fullmatch(text):
            raise DecodeError(f"object_id (objectId) {text[:40]!r} is not a ZTF object id (ZTF + 2 digits + 7 "
                              "lowercase letters)")
        return text
    return positive_int64(value, "object_id (diaObjectId/ssObjectId)")


def source_id(survey: str, value: Any) -> str:
    return positive_int64(value, "source_id (candid)" if survey == "ztf" else "source_id (diaSourceId)")


def number(value: Any, field: str) -> float | None:
    """A float from an int or float (None stays None); text, lists, booleans are a DecodeError."""
    if value is None:
        return None
    if not is_number(value):
        raise DecodeError(f"{field} is {type(value).__name__}, not a number")
    try:
        return float(value)
    except OverflowError:
        raise DecodeError(f"{field} is too large a number") from None


def finite(value: Any, field: str) -> float | None:
    """:func:`number`, with NaN and infinity as None (how Pitt-Google's JSON carries them)."""
    value = number(value, field)
    return value if value is not None and math.isfinite(value) else None


def jd(value: Any, field: str = "jd") -> float:
    result = number(value, field)
    if result is None:
        raise DecodeError(f"{field} (the time) is missing")
    if not math.isfinite(result) or not MIN_JD <= result <= max_jd():
        raise DecodeError(f"{field} {result!r} is not a possible time (UTC JD from {MIN_JD}, 2015, to tomorrow)")
    return result


def ra(value: Any) -> float:
    result = finite(value, "ra")
    if result is None or not 0.0 <= result <= 360.0:
        raise DecodeError(f"ra {value!r} is not a right ascension in [0, 360) degrees")
    return 0.0 if result == 360.0 else result


def dec(value: Any) -> float:
    result = finite(value, "dec")
    if result is None or not -90.0 <= result <= 90.0:
        raise DecodeError(f"dec {value!r} is not a declination in [-90, 90] degrees")
    return result


def band(survey: str, value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise DecodeError(f"band is {type(value).__name__}, not a band name")
    text = clean_text(value, "band", limit=MAX_BAND)
    if text not in SURVEY_BANDS.get(survey, (text,)):
        raise DecodeError(f"band {text!r} is not a {survey.upper()} band ({' '.join(SURVEY_BANDS[survey])})")
    return text


def bounded(value: Any, field: str, low: float, high: float, warnings: list[str]) -> float | None:
    """An optional number: wrong type is a DecodeError, out of range or not finite becomes None (warned)."""
    result = number(value, field)
    if result is None:
        return None
    if not math.isfinite(result) or not low <= result <= high:
        warnings.append(f"{field} {result!r} is outside [{low}, {high}]: dropped")
        return None
    return result


def json_scalar(value: Any, field: str, warnings: list[str]) -> Any:
    """A kept survey field as a JSON-safe scalar: finite numbers, bounded clean text, booleans, None.

    Anything else (NaN, a NUL, a list where a value belongs...) is dropped to None with a warning naming it.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if abs(value) <= INT64_MAX else _drop(field, "is too large", warnings)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            return clean_text(value, field)
        except DecodeError as error:
            return _drop(field, str(error), warnings)
    return _drop(field, f"is a {type(value).__name__}", warnings)


def _drop(field: str, why: str, warnings: list[str]) -> None:
    warnings.append(f"{field}: {why}: dropped" if not why.startswith(field) else f"{why}: dropped")
    return None


@dataclass(frozen=True)
class AttributeLimits:
    """How much of a message's attributes is kept (``PITTGOOGLE_ATTRIBUTES_*`` settings; the defaults are Pub/Sub's
    own limits: 100 attributes, keys of 256 bytes, values of 1024 bytes)."""

    max_count: int = 100
    max_key: int = 256
    max_value: int = 1024

    @classmethod
    def from_settings(cls) -> AttributeLimits:
        from tom_pittgoogle import conf
        from tom_pittgoogle.exceptions import ConfigurationError

        values = []
        for name in ("PITTGOOGLE_ATTRIBUTES_MAX_COUNT", "PITTGOOGLE_ATTRIBUTES_MAX_KEY_CHARS",
                     "PITTGOOGLE_ATTRIBUTES_MAX_VALUE_CHARS"):
            value = conf.get(name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(f"{name} must be a positive whole number, not {value!r}")
            values.append(value)
        return cls(*values)


#: Ends a key or value that was cut short, and names the entry that counts the attributes not kept.
TRUNCATED = "\u2026"


def attributes(value: Any, limits: AttributeLimits = AttributeLimits()) -> dict[str, str]:  # noqa: B008 - frozen
    """Message attributes as a bounded ``{str: str}`` (Pub/Sub's are strings; anything else is made one).

    Attributes are kept, cut to ``limits``, rather than the message refused: they are metadata beside the alert
    (Pub/Sub itself never delivers more than its own limits, which are the defaults), so a message that exceeds them
    comes from elsewhere and is still recorded, as an alert or a rejected message, with what fits. At most
    ``max_count`` entries are kept (by key order); if there were more, the last is ``{"\u2026": "N attributes not
    kept"}``. A key over ``max_key`` characters or a value over ``max_value`` is cut and ends with ``\u2026``. NULs
    and lone surrogates are replaced.
    """
    if not isinstance(value, Mapping):
        try:  # gRPC's message.attributes is a protobuf ScalarMapContainer
            value = dict(value.items()) if hasattr(value, "items") else {}
        except Exception:
            return {}
    out: dict[str, str] = {}
    keys = sorted(value, key=str)
    kept = keys if len(keys) <= limits.max_count else keys[:limits.max_count - 1]
    for key in kept:
        item = value[key]
        out[_cut(_plain(str(key)), limits.max_key)] = _cut(_plain(item if isinstance(item, str) else str(item)),
                                                           limits.max_value)
    if len(kept) < len(keys):
        out[TRUNCATED] = f"{len(keys) - len(kept)} attributes not kept"
    return out


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:max(limit - 1, 0)] + TRUNCATED


def _plain(text: str) -> str:
    return text.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")


def warn(alert_ids: str, warnings: list[str]) -> None:
    if warnings:
        logger.warning("alert %s: %s", alert_ids, "; ".join(warnings[:10]))


def check_mapping(value: Any, field: str) -> Mapping | None:
    """``value`` if it is a record or None; a DecodeError naming ``field`` otherwise."""
    if value is None or isinstance(value, Mapping):
        return value
    raise DecodeError(f"{field} is {type(value).__name__}, not a record")


def check_records(value: Any, field: str) -> list:
    """``value`` as a list of records (None: empty); a DecodeError naming ``field`` if it is anything else."""
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        raise DecodeError(f"{field} is {type(value).__name__}, not a list of records")
    for index, item in enumerate(value):
        if not isinstance(item, Mapping):
            raise DecodeError(f"{field}[{index}] is {type(item).__name__}, not a record")
    return list(value)
