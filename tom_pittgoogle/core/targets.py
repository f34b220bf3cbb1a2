"""Targets and light curves from alerts: the one path the brokers, the stream ingester and a DataService share.

From a lightened alert (or a full record, lightened here):

- :func:`target_name`, :func:`target_extras`, :func:`target_aliases`: what a Target made from the alert is
  called and carries (survey, latest magnitude, band and time, quality and classifier scores);
- :func:`save_photometry`: the alert's light curve (its ``photometry`` points) as TOM Toolkit 3.1
  ``PhotometryReducedDatum`` rows, the model its light-curve plot reads; idempotent, so that the same point
  delivered in several alerts (ZTF's ``prv_candidates``, LSST's ``prvDiaSources``) is stored once;
- :func:`create_or_update_target`: all of the above in one call, for a Target that may exist already.

Django models are imported inside the functions: importing this module needs no configured Django.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from tom_pittgoogle.core.alerts import SURVEYS, lighten_alert, validate

logger = logging.getLogger(__name__)

#: ``source_name`` of the photometry this app stores.
SOURCE_NAME = "Pitt-Google"
#: Extras every Target made from an alert carries (plus the survey's scores that the alert has).
EXTRA_KEYS = ("survey", "latest_mag", "latest_band", "latest_jd")
#: Decimals an extra keeps: magnitudes to a thousandth (the surveys' own precision), times to about a tenth of a
#: second, scores and probabilities to four places; more digits are float noise on the target page.
EXTRA_DECIMALS = {"latest_mag": 3, "latest_jd": 6}
SCORE_DECIMALS = 4


def _rounded(key: str, value: Any) -> Any:
    if isinstance(value, float) and not isinstance(value, bool):
        return round(value, EXTRA_DECIMALS.get(key, SCORE_DECIMALS))
    return value


def target_name(alert: Mapping[str, Any]) -> str:
    """ZTF: the objectId (``ZTF18abfkwnk``). Rubin/LSST: ``LSST-<diaObjectId>``, or ``LSST-SS-<ssObjectId>``
    for a solar-system object; a bare 19-digit number would be a poor name to read in a list of targets."""
    alert = lighten_alert(alert)
    return name_of_object(alert["survey"], alert["object_id"], alert.get("object_kind"))


def name_of_object(survey: str, object_id: Any, object_kind: str | None = None) -> str:
    """The Target name of a survey's object (see :func:`target_name`), from its survey, id and kind."""
    if survey == "lsst":
        prefix = "LSST-SS-" if object_kind == "ssObject" else "LSST-"
        return f"{prefix}{object_id}"
    return str(object_id)


def target_aliases(alert: Mapping[str, Any]) -> list[str]:
    """The survey's object id, where the name is not already that id (TOM refuses an alias equal to the name)."""
    alert = lighten_alert(alert)
    object_id = str(alert["object_id"])
    return [] if object_id == target_name(alert) else [object_id]


def target_extras(alert: Mapping[str, Any]) -> dict[str, Any]:
    """Survey, latest magnitude, band and time (UTC JD), every score the alert has (ZTF classtar, drb; LSST
    reliability, extendedness; each classifier's numeric outputs, ``supernnova_prob_class0``...), and each
    classifier's predicted class as ``<classifier>_class`` (``supernnova_class``: ``Ia``)."""
    alert = lighten_alert(alert)
    extras = {
        "survey": alert["survey"],
        "latest_mag": alert.get("mag"),
        "latest_band": alert.get("band"),
        "latest_jd": alert.get("jd"),
        **(alert.get("scores") or {}),
        **{f"{name}_class": summary.get("class") for name, summary in (alert.get("classifiers") or {}).items()},
    }
    return {key: _rounded(key, value) for key, value in extras.items() if value is not None}


def _timestamps(jds: list[float]) -> list[datetime]:
    if not jds:
        return []
    from astropy.time import Time

    return [t.replace(tzinfo=UTC) for t in Time(jds, format="jd", scale="utc").to_datetime()]


def photometry_rows(target, alert: Mapping[str, Any]) -> list:
    """Unsaved ``PhotometryReducedDatum`` objects for the alert's light-curve points."""
    from tom_dataproducts.models import PhotometryReducedDatum

    alert = lighten_alert(alert)
    survey = SURVEYS[alert["survey"]]
    points = [p for p in alert.get("photometry") or [] if p.get("jd") is not None]
    rows = []
    for point, timestamp in zip(points, _timestamps([p["jd"] for p in points]), strict=True):
        value = {"survey": survey.name, "kind": point.get("kind")}
        if point.get("flux") is not None:  # LSST: the measured flux, kept beside the magnitude
            value.update(flux=point["flux"], flux_err=point.get("flux_err"), flux_unit="nJy")
        rows.append(
            PhotometryReducedDatum(
                target=target,
                timestamp=timestamp,
                bandpass=point.get("band") or "",
                brightness=point.get("mag"),
                brightness_error=point.get("mag_err"),
                limit=point.get("limit"),
                unit="AB mag",
                telescope=survey.telescope,
                instrument=survey.instrument,
                source_name=SOURCE_NAME,
                source_location=f"{survey.name}:{alert['object_id']}",
                value=value,
            )
        )
    return rows


def save_photometry(target, alert: Mapping[str, Any]) -> int:
    """Store the alert's light curve on ``target``; return how many points were new.

    PhotometryReducedDatum is unique on (target, bandpass, timestamp, brightness or limit, instrument,
    reduction version), so a point already stored (the same alert twice, or a detection that reappears in the
    next alert's history) is skipped by the database: ``ON CONFLICT DO NOTHING``.
    """
    from django.db import transaction
    from tom_dataproducts.models import PhotometryReducedDatum

    rows = photometry_rows(target, alert)
    if not rows:
        return 0
    with transaction.atomic():
        before = PhotometryReducedDatum.objects.filter(target=target).count()
        PhotometryReducedDatum.objects.bulk_create(rows, ignore_conflicts=True)
        new = PhotometryReducedDatum.objects.filter(target=target).count() - before
    logger.debug("stored %d of %d photometry points for %s", new, len(rows), target)
    return new


def find_target(alert: Mapping[str, Any]):
    """The Target of the alert's object if the TOM has one (by name, or by an alias), else None."""
    from tom_targets.models import Target

    alert = lighten_alert(alert)
    aliases = target_aliases(alert)
    return (
        Target.objects.filter(name=target_name(alert)).first()
        or (Target.objects.filter(aliases__name__in=aliases).first() if aliases else None)
    )


def survey_and_object_id(target) -> tuple[str, str] | None:
    """Which survey's object a Target is and its id there (the inverse of :func:`target_name`), from the
    ``survey`` extra or the name; None for a Target that is not a Pitt-Google survey object."""
    name = str(target.name)
    survey = target.targetextra_set.filter(key="survey").values_list("value", flat=True).first()
    for prefix in ("LSST-SS-", "LSST-"):
        if name.startswith(prefix) and validate.is_decimal_id(name[len(prefix):]):
            return "lsst", name[len(prefix):]
    if survey == "ztf" or (survey is None and name.startswith("ZTF")):
        return "ztf", name
    return None


def newer_than_stored(target, alert: Mapping[str, Any]) -> bool:
    """Whether the alert is at least as new as the one the Target's ``latest_*`` extras came from."""
    stored = target.targetextra_set.filter(key="latest_jd").values_list("value", flat=True).first()
    try:
        return (stored is None or alert.get("jd") is None
                or round(float(alert["jd"]), EXTRA_DECIMALS["latest_jd"]) >= float(stored))
    except (TypeError, ValueError):
        return True


def update_extras(target, extras: Mapping[str, Any], aliases: list[str]) -> None:
    """Set an existing Target's extras and add its aliases, as ``Target.save(extras=..., names=...)`` does, without
    saving the Target again: its fields have not changed, and each save runs the TOM's ``target_post_save`` hook
    (which logs a line and may start work) once per alert of an object that sends many."""
    for key, value in extras.items():
        extra, _ = target.targetextra_set.get_or_create(target=target, key=key)
        extra.value = value
        extra.save()
    for alias in aliases:
        name, created = target.aliases.get_or_create(target=target, name=alias)
        if created:
            name.full_clean()


def create_or_update_target(alert: Mapping[str, Any], user=None):
    """The Target of the alert's object, created if new, with its extras, aliases and photometry updated.

    An existing Target is found by name or by alias; its ``latest_*`` extras and scores change only when the
    alert is at least as new as the one they came from, so alerts arriving out of order do not roll them back.
    Safe when two processes create the same Target at once: the loser uses the winner's. ``user`` (optional) is
    given access to the Target, as TOM Toolkit's own create-target view does for the user who clicked.
    """
    from django.db import IntegrityError, transaction
    from tom_targets.models import Target

    alert = lighten_alert(alert)
    name, aliases = target_name(alert), target_aliases(alert)

    target = find_target(alert)
    if target is None:
        target = Target(name=name, type="SIDEREAL", ra=alert.get("ra"), dec=alert.get("dec"))
        try:
            with transaction.atomic():
                target.save(extras=target_extras(alert), names=aliases)
        except IntegrityError:
            target = find_target(alert)
            if target is None:
                raise
    elif newer_than_stored(target, alert):
        update_extras(target, target_extras(alert), aliases)
    save_photometry(target, alert)
    if user is not None:
        target.give_user_access(user)
    return target
