"""Which of the TOM's Targets an alert belongs to: by position and by name.

An alert belongs to a followed Target when it lies within ``PITTGOOGLE_MATCH_RADIUS_ARCSEC`` of it, or when its
object id (or the name this app gives a Target made from it, ``LSST-<id>``) is the Target's name or one of its
aliases. Which Targets are followed: every Target, or those of the TargetList named in
``PITTGOOGLE_FOLLOW_TARGET_LIST`` (or given to :func:`match_alerts`).

The cost of matching must not grow with the number of Targets, so Targets are indexed by their nested HEALPix
pixel (:class:`~tom_pittgoogle.models.TargetPosition`, kept current by :func:`index_target` and
:func:`unindex_target`, which the app connects to the Target's ``post_save`` and ``post_delete``). A batch of
alerts asks the index once for the pixels around its alerts, and the exact separation is measured only on the
few Targets found there. Names are looked up in TOM Toolkit's own tables, whose name and alias columns are
unique and so indexed already.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tom_pittgoogle import conf

logger = logging.getLogger(__name__)

#: HEALPix order of the index: pixels of about 12.9 arcsec, so that a 1.5 arcsec cone lies in a pixel and its
#: neighbours, and a pixel holds few Targets even in a crowded TOM.
HEALPIX_ORDER = 14
#: Up to this radius (arcsec) a position's pixel and its eight neighbours hold every point of the cone (the
#: smallest pixel at this order is wider than this); beyond it the cone is searched pixel by pixel.
NEIGHBOUR_RADIUS_ARCSEC = 5.0


def _healpix():
    from astropy_healpix import HEALPix

    return HEALPix(nside=2**HEALPIX_ORDER, order="nested")


_HEALPIX = None


def healpix():
    """The index's HEALPix grid (made once)."""
    global _HEALPIX
    if _HEALPIX is None:
        _HEALPIX = _healpix()
    return _HEALPIX


def pixels(ra: Sequence[float], dec: Sequence[float]) -> np.ndarray:
    """Nested HEALPix pixels of positions in degrees."""
    import astropy.units as u

    return np.asarray(healpix().lonlat_to_healpix(np.asarray(ra, float) * u.deg, np.asarray(dec, float) * u.deg),
                      dtype=np.int64)


def cone_pixels(ra: Sequence[float], dec: Sequence[float], radius_arcsec: float) -> set[int]:
    """Every pixel that a cone of ``radius_arcsec`` around any of the positions touches."""
    import astropy.units as u

    if not len(ra):
        return set()
    grid = healpix()
    if radius_arcsec <= NEIGHBOUR_RADIUS_ARCSEC:
        centre = pixels(ra, dec)
        around = grid.neighbours(centre)  # shape (8, n); -1 where a pixel has only seven neighbours
        found = set(centre.tolist()) | set(np.asarray(around).ravel().tolist())
        found.discard(-1)
        return found
    found: set[int] = set()
    for one_ra, one_dec in zip(ra, dec, strict=True):
        found.update(grid.cone_search_lonlat(one_ra * u.deg, one_dec * u.deg, radius_arcsec * u.arcsec).tolist())
    return found


def separation_arcsec(ra1: Any, dec1: Any, ra2: Any, dec2: Any) -> np.ndarray:
    """Angular separation in arcsec (haversine, exact at small angles), vectorised over numpy arrays."""
    ra1, dec1, ra2, dec2 = (np.radians(np.asarray(value, float)) for value in (ra1, dec1, ra2, dec2))
    half = np.sin((dec2 - dec1) / 2) ** 2 + np.cos(dec1) * np.cos(dec2) * np.sin((ra2 - ra1) / 2) ** 2
    return np.degrees(2 * np.arcsin(np.sqrt(np.clip(half, 0.0, 1.0)))) * 3600.0


def index_target(target) -> None:
    """Put ``target`` in the positional index at its current coordinates (or out of it, without coordinates)."""
    from tom_pittgoogle.models import TargetPosition

    ra, dec = getattr(target, "ra", None), getattr(target, "dec", None)
    if ra is None or dec is None or not (np.isfinite(ra) and np.isfinite(dec)) or not -90 <= dec <= 90:
        TargetPosition.objects.filter(target_id=target.pk).delete()
        return
    TargetPosition.objects.update_or_create(
        target_id=target.pk, defaults={"pixel": int(pixels([ra], [dec])[0]), "ra": float(ra), "dec": float(dec)}
    )


def unindex_target(target) -> None:
    """Take a deleted ``target`` out of the index (the cascade does it too; this keeps raw deletes honest)."""
    from tom_pittgoogle.models import TargetPosition

    TargetPosition.objects.filter(target_id=target.pk).delete()


@dataclass(frozen=True)
class IndexReport:
    """What :func:`reindex_targets` did: how many Targets are indexed now, and how many rows it changed."""

    indexed: int
    added: int
    moved: int
    removed: int

    @property
    def unchanged(self) -> int:
        return self.indexed - self.added - self.moved

    def line(self) -> str:
        from tom_pittgoogle.core.words import count

        return (f"{count(self.indexed, 'Target')} with coordinates indexed: {self.added} added, {self.moved} moved, "
                f"{self.removed} removed, {self.unchanged} unchanged.")


def reindex_targets(batch_size: int = 5000) -> IndexReport:
    """Bring the index in line with every Target's coordinates (Targets saved without signals, raw SQL, a restore).

    Idempotent: a second run changes nothing. One transaction: an ingester matching meanwhile sees the old index
    or the new one, never a half-built one.
    """
    from django.db import transaction
    from tom_targets.models import Target

    from tom_pittgoogle.models import TargetPosition

    with transaction.atomic():
        rows = [(pk, ra, dec) for pk, ra, dec in Target.objects.values_list("pk", "ra", "dec")
                if ra is not None and dec is not None and np.isfinite(ra) and np.isfinite(dec) and -90 <= dec <= 90]
        found = pixels([r[1] for r in rows], [r[2] for r in rows]) if rows else []
        wanted = {pk: (int(pixel), float(ra), float(dec)) for (pk, ra, dec), pixel in zip(rows, found, strict=True)}
        have = {pk: (pixel, ra, dec) for pk, pixel, ra, dec in
                TargetPosition.objects.values_list("target_id", "pixel", "ra", "dec")}
        gone = [pk for pk in have if pk not in wanted]
        new = [pk for pk in wanted if pk not in have]
        moved = [pk for pk in wanted if pk in have and have[pk] != wanted[pk]]
        for start in range(0, len(gone), batch_size):
            TargetPosition.objects.filter(target_id__in=gone[start:start + batch_size]).delete()
        TargetPosition.objects.bulk_create(
            [TargetPosition(target_id=pk, pixel=wanted[pk][0], ra=wanted[pk][1], dec=wanted[pk][2]) for pk in new],
            batch_size=batch_size)
        TargetPosition.objects.bulk_update(
            [TargetPosition(target_id=pk, pixel=wanted[pk][0], ra=wanted[pk][1], dec=wanted[pk][2]) for pk in moved],
            ["pixel", "ra", "dec"], batch_size=batch_size)
    report = IndexReport(indexed=len(wanted), added=len(new), moved=len(moved), removed=len(gone))
    logger.info("Target index: %s", report.line())
    return report


def index_all_targets() -> int:
    """(Re)build the index from every Target with coordinates; return how many are indexed."""
    return reindex_targets().indexed


def object_names(alert: Mapping[str, Any]) -> set[str]:
    """Names under which a Target may know the alert's object: the survey's id and this app's Target name."""
    from tom_pittgoogle.core.targets import name_of_object

    object_id = alert.get("object_id")
    if object_id in (None, ""):
        return set()
    return {str(object_id), name_of_object(str(alert.get("survey")), object_id, alert.get("object_kind"))}


def followed_list(target_list: str | None = None) -> str | None:
    """The name of the TargetList whose Targets are followed (the argument, else the setting); None: all."""
    return target_list if target_list is not None else conf.get("PITTGOOGLE_FOLLOW_TARGET_LIST")


def match_alerts(
    alerts: Sequence[Mapping[str, Any]],
    *,
    radius_arcsec: float | None = None,
    target_list: str | None = None,
) -> list[list[int]]:
    """For each lightened alert, the ids of the followed Targets it belongs to (by position or by name).

    Two queries per batch, whatever the number of Targets: the index for the pixels around the alerts, and
    the names. A Target whose TargetList does not follow it is left out; the list named must exist.
    """
    from tom_targets.models import Target, TargetList, TargetName

    from tom_pittgoogle.models import TargetPosition

    radius = float(conf.get("PITTGOOGLE_MATCH_RADIUS_ARCSEC") if radius_arcsec is None else radius_arcsec)
    matched: list[set[int]] = [set() for _ in alerts]
    if not alerts:
        return []
    list_name = followed_list(target_list)
    followed = None
    if list_name:
        chosen = TargetList.objects.filter(name=list_name).first()
        if chosen is None:
            raise ValueError(f"There is no TargetList named {list_name!r} to follow.")
        followed = chosen

    placed = [i for i, alert in enumerate(alerts) if _position(alert) is not None]
    if placed and radius > 0:
        ra = np.array([_position(alerts[i])[0] for i in placed])
        dec = np.array([_position(alerts[i])[1] for i in placed])
        candidates = TargetPosition.objects.filter(pixel__in=cone_pixels(ra, dec, radius))
        if followed is not None:
            candidates = candidates.filter(target__targetlist=followed)
        found = list(candidates.values_list("target_id", "ra", "dec"))
        if found:
            ids = np.array([row[0] for row in found])
            t_ra = np.array([row[1] for row in found])
            t_dec = np.array([row[2] for row in found])
            for slot, index in enumerate(placed):
                close = separation_arcsec(ra[slot], dec[slot], t_ra, t_dec) <= radius
                matched[index].update(int(pk) for pk in ids[close])

    names = [object_names(alert) for alert in alerts]
    wanted = set().union(*names)
    if wanted:
        by_name = Target.objects.filter(name__in=wanted)
        by_alias = TargetName.objects.filter(name__in=wanted)
        if followed is not None:
            by_name = by_name.filter(targetlist=followed)
            by_alias = by_alias.filter(target__targetlist=followed)
        owners: dict[str, set[int]] = {}
        for name, pk in [*by_name.values_list("name", "pk"), *by_alias.values_list("name", "target_id")]:
            owners.setdefault(name, set()).add(pk)
        for index, alert_names in enumerate(names):
            for name in alert_names:
                matched[index].update(owners.get(name, ()))
    return [sorted(ids) for ids in matched]


def _position(alert: Mapping[str, Any]) -> tuple[float, float] | None:
    ra, dec = alert.get("ra"), alert.get("dec")
    try:
        ra, dec = float(ra), float(dec)
    except (TypeError, ValueError):
        return None
    if not (np.isfinite(ra) and np.isfinite(dec)) or not -90 <= dec <= 90:
        return None
    return ra % 360.0, dec


def connect_index(sender_base: Any) -> None:
    """Keep the index current: connect the receivers to every save and delete of a ``sender_base`` subclass."""
    from django.db.models.signals import post_delete, post_save

    def saved(sender, instance, **kwargs):
        if isinstance(instance, sender_base):
            index_target(instance)

    def deleted(sender, instance, **kwargs):
        if isinstance(instance, sender_base):
            unindex_target(instance)

    post_save.connect(saved, weak=False, dispatch_uid="tom_pittgoogle.matching.index_target")
    post_delete.connect(deleted, weak=False, dispatch_uid="tom_pittgoogle.matching.unindex_target")


def matched_pairs(alerts: Sequence[Mapping[str, Any]], **kwargs: Any) -> Iterable[tuple[int, int]]:
    """(alert index, Target id) for every match of :func:`match_alerts`."""
    for index, ids in enumerate(match_alerts(alerts, **kwargs)):
        for pk in ids:
            yield index, pk
