"""Alerts reach the TOM's Targets: every stored alert that belongs to a followed Target is attached to it.

:func:`attach_alerts` runs inside the transaction that stores the alerts (:func:`tom_pittgoogle.core.settle.settle`,
the one path every stream route takes). For each alert and each Target it belongs to
(:func:`tom_pittgoogle.core.matching.match_alerts`), once:

- the alert's light curve becomes ``PhotometryReducedDatum`` rows on the Target (detections, upper limits, Rubin's
  forced photometry, with the flux in nJy where the survey gives flux;
  :func:`tom_pittgoogle.core.targets.save_photometry`);
- the survey's object id becomes an alias of the Target (unless it is its name, or another Target's alias);
- the latest magnitude, band, time, scores and classifier classes become its extras (from the newest alert);
- :data:`alert_attached` is sent after the transaction commits.

"Once" holds under redelivery and under two ingesters at once: an :class:`~tom_pittgoogle.models.AttachedAlert`
row, unique on (Target, survey, source id), is created first; whoever does not create it does nothing more.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from django.db import IntegrityError, transaction
from django.dispatch import Signal

from tom_pittgoogle.core.database import database_is_down, guard_database
from tom_pittgoogle.core.matching import match_alerts

logger = logging.getLogger(__name__)

#: Sent once per alert newly attached to a Target, after the transaction that attached it commits.
#: Keyword arguments: ``target`` (the TOM Target), ``alert`` (the lightened alert: ``survey``, ``object_id``,
#: ``jd``, ``mag``, ``band``, ``classifiers``...) and ``route`` (the subscription or table it came from).
#: ``sender`` is :class:`tom_pittgoogle.models.AttachedAlert`.
alert_attached = Signal()

#: Extras an attached alert does not set: ``survey`` says which survey a Target made from an alert is an object
#: of, and a Target that only follows a position is none.
EXTRAS_NOT_SET = frozenset({"survey"})


def attach_alerts(alerts: Sequence[Mapping[str, Any]], *, route: str = "",
                  target_list: str | None = None, only_target: Any = None) -> int:
    """Attach each lightened alert to the followed Targets it belongs to; return how many attachments are new.

    Call inside the transaction that stores the alerts: the attachments commit with them, or not at all.
    ``only_target``: attach to this Target alone, whether a followed TargetList holds it or not (a user asked for
    its history), each alert that belongs to it by position or by name.
    """

    def matched(batch: Sequence[Mapping[str, Any]]) -> list[list[int]]:
        if only_target is not None:
            return belonging_to(batch, only_target)
        return match_alerts(batch, target_list=target_list)

    try:
        matches = matched(alerts)
    except ValueError as error:  # a followed TargetList that is not there: the alerts are stored all the same
        logger.warning("no alerts attached to Targets: %s", error)
        return 0
    new, attached_objects = _attach_matches(alerts, matches, route)
    # An alert matched by position gives its object id to the Target as an alias; a later alert of that object in
    # the same batch that lies a little farther away belongs to the Target by that name, as it would in the next
    # batch: the outcome does not depend on how the alerts were batched.
    again = [i for i, (alert, ids) in enumerate(zip(alerts, matches, strict=True))
             if not ids and str(alert.get("object_id")) in attached_objects]
    if again:
        more, _ = _attach_matches([alerts[i] for i in again], matched([alerts[i] for i in again]), route)
        new += more
    if new:
        logger.info("attached %d alerts to followed Targets from %s", new, route or "a query")
    return new


def attach_found(alerts_by_route: Mapping[str, Sequence[Mapping[str, Any]]], *, only_target: Any = None) -> int:
    """Attach what a search found (a route that stores no alert: a BigQuery search, a Target's history), in a
    transaction of its own; ``alerts_by_route``: the lightened alerts of each table or subscription they came
    from. Return how many attachments are new."""
    new = 0
    with guard_database(), transaction.atomic():
        for route, alerts in alerts_by_route.items():
            if alerts:
                new += attach_alerts(alerts, route=route, only_target=only_target)
    return new


def belonging_to(alerts: Sequence[Mapping[str, Any]], target: Any) -> list[list[int]]:
    """For each lightened alert, ``[target.pk]`` when it lies within ``PITTGOOGLE_MATCH_RADIUS_ARCSEC`` of the
    Target or its object is the Target's name or an alias, else ``[]``: the rule of
    :func:`~tom_pittgoogle.core.matching.match_alerts`, for one Target, without the index."""
    from tom_pittgoogle import conf
    from tom_pittgoogle.core.matching import object_names, separation_arcsec

    radius = float(conf.get("PITTGOOGLE_MATCH_RADIUS_ARCSEC"))
    names = {str(target.name), *target.aliases.values_list("name", flat=True)}
    placed = target.ra is not None and target.dec is not None
    found = []
    for alert in alerts:
        try:
            near = placed and bool(
                separation_arcsec(float(alert["ra"]), float(alert["dec"]), target.ra, target.dec) <= radius)
        except (KeyError, TypeError, ValueError):  # an alert without a position belongs by name alone
            near = False
        found.append([target.pk] if near or object_names(alert) & names else [])
    return found


def _attach_matches(alerts: Sequence[Mapping[str, Any]], matches: Sequence[Sequence[int]],
                    route: str) -> tuple[int, set[str]]:
    """Attach each alert to its matched Targets; return how many attachments are new and the objects attached."""
    from tom_targets.models import Target

    from tom_pittgoogle.models import AttachedAlert

    wanted = {pk for ids in matches for pk in ids}
    if not wanted:
        return 0, set()
    # Locked in one order: two ingesters attaching alerts of one Target take turns (and never deadlock on its
    # extras and aliases); the second sees the first's AttachedAlert rows once the first commits.
    targets = {target.pk: target for target in Target.objects.select_for_update().filter(pk__in=wanted).order_by("pk")}
    new, objects = 0, set()
    for alert, ids in zip(alerts, matches, strict=True):
        for pk in ids:
            target = targets.get(pk)
            if target is None:
                continue
            try:
                with transaction.atomic():  # one savepoint per attachment: a failure undoes it alone
                    _, created = AttachedAlert.objects.get_or_create(
                        target_id=pk, survey=str(alert["survey"]), source_id=str(alert["source_id"])[:64],
                        defaults={"object_id": str(alert.get("object_id") or "")[:64], "route": route[:255]},
                    )
                    if created:
                        _attach(target, alert)
            except Exception as error:
                if database_is_down(error):
                    raise
                # The alert stays stored (and the message is acknowledged); only this attachment is left out.
                logger.exception("could not attach %s %s to %s", alert.get("survey"), alert.get("source_id"), target)
                continue
            objects.add(str(alert.get("object_id")))
            if not created:
                continue
            new += 1
            transaction.on_commit(
                lambda target=target, alert=alert: alert_attached.send(
                    sender=AttachedAlert, target=target, alert=alert, route=route),
                robust=True,
            )
    return new, objects


def _attach(target, alert: Mapping[str, Any]) -> None:
    from tom_targets.models import TargetName

    from tom_pittgoogle.core.targets import newer_than_stored, save_photometry, target_extras, update_extras

    save_photometry(target, alert)
    alias = str(alert.get("object_id") or "")
    if alias and alias != target.name and not TargetName.objects.filter(name=alias).exists():
        try:
            with transaction.atomic():
                TargetName.objects.get_or_create(target=target, name=alias)
        except IntegrityError:  # another process gave it to this or another Target meanwhile
            logger.debug("alias %s of %s is taken", alias, target)
    if newer_than_stored(target, alert):
        extras = {key: value for key, value in target_extras(alert).items() if key not in EXTRAS_NOT_SET}
        update_extras(target, extras, [])
