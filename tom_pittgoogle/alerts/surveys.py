"""Survey-aware field maps: each survey's own field names -> the common fields the TOM needs.

A *lightened* alert is a flat, JSON-safe dict holding

- the common fields every route, filter and the TOM use: ``survey``, ``object_id``, ``source_id``, ``jd``,
  ``ra``, ``dec``, ``band``, ``mag``, ``mag_err``;
- the survey's own fields listed in :attr:`Survey.keep`, flattened, under their own names (for ZTF the
  original's ``objectId``, ``candid``, ``jd``, ``ra``, ``dec``, ``magpsf``, ``classtar`` and a few more), so that
  filters written for the original keep working.

A new survey (Rubin/LSST) is one more :class:`Survey` in :data:`SURVEYS`; the brokers do not change.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..exceptions import DecodeError

COMMON_FIELDS = ("survey", "object_id", "source_id", "jd", "ra", "dec", "band", "mag", "mag_err")


@dataclass(frozen=True)
class Survey:
    """Where a survey keeps each common field (dotted paths into its alert record)."""

    name: str
    object_id: str
    source_id: str
    jd: str
    ra: str
    dec: str
    band: str
    mag: str
    mag_err: str
    #: Survey fields copied, flattened, into the lightened alert (dotted paths; the last part names the key).
    keep: tuple[str, ...] = ()
    #: The survey's band codes -> band names.
    band_names: Mapping[Any, str] = field(default_factory=dict)

    def is_its_record(self, record: Mapping) -> bool:
        return _get(record, self.object_id) is not None and _get(record, self.source_id) is not None


ZTF = Survey(
    name="ztf",
    object_id="objectId",
    source_id="candid",
    jd="candidate.jd",
    ra="candidate.ra",
    dec="candidate.dec",
    band="candidate.fid",
    mag="candidate.magpsf",
    mag_err="candidate.sigmapsf",
    keep=(
        "objectId",
        "candid",
        "schemavsn",
        "candidate.jd",
        "candidate.ra",
        "candidate.dec",
        "candidate.fid",
        "candidate.magpsf",
        "candidate.sigmapsf",
        "candidate.classtar",
        "candidate.rb",
        "candidate.drb",
        "candidate.isdiffpos",
        "candidate.programid",
        "candidate.ndethist",
        "candidate.sgscore1",
        "candidate.distpsnr1",
        "candidate.ssnamenr",
    ),
    band_names={1: "g", 2: "r", 3: "i"},
)

SURVEYS: dict[str, Survey] = {ZTF.name: ZTF}


def _get(record: Mapping, path: str) -> Any:
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _json_safe(value: Any) -> Any:
    # NaN and infinity are not JSON (PostgreSQL's jsonb refuses them, and so does a page's JSON).
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def detect_survey(record: Mapping) -> Survey:
    """The survey whose fields ``record`` has; :class:`DecodeError` if none."""
    for survey in SURVEYS.values():
        if survey.is_its_record(record):
            return survey
    keys = ", ".join(sorted(record)[:8]) if isinstance(record, Mapping) else type(record).__name__
    raise DecodeError(f"not an alert of a known survey (fields: {keys})")


def is_lightened(alert: Mapping) -> bool:
    return "survey" in alert and "source_id" in alert and alert.get("survey") in SURVEYS


def lighten_alert(record: Mapping, survey: Survey | None = None) -> dict:
    """Flatten ``record`` to the common fields plus the survey's kept fields (JSON-safe, picklable)."""
    if is_lightened(record):
        return dict(record)
    survey = survey or detect_survey(record)
    alert = {path.rsplit(".", 1)[-1]: _json_safe(_get(record, path)) for path in survey.keep}
    band = _get(record, survey.band)
    alert.update(
        survey=survey.name,
        object_id=str(_get(record, survey.object_id)),
        source_id=str(_get(record, survey.source_id)),
        jd=_json_safe(_get(record, survey.jd)),
        ra=_json_safe(_get(record, survey.ra)),
        dec=_json_safe(_get(record, survey.dec)),
        band=survey.band_names.get(band, band),
        mag=_json_safe(_get(record, survey.mag)),
        mag_err=_json_safe(_get(record, survey.mag_err)),
    )
    return alert
