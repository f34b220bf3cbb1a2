"""An alert's photometry history as compact points: what the light curve in the TOM is drawn from.

The lightened alert drops the full packet (``prv_candidates``, ``prvDiaSources``...), so lightening keeps its
light curve as a list of small dicts under ``photometry``; storing it as TOM photometry then needs nothing but
the lightened alert, whichever route delivered it. Each point is::

    {"jd": 2460000.5, "band": "r", "mag": 19.2, "mag_err": 0.05, "limit": None,
     "flux": 72443.6, "flux_err": 3300.1, "kind": "detection"}

``kind`` is ``detection`` (a source the survey detected), ``forced`` (LSST forced photometry, a magnitude only
when the flux is positive at S/N >= 3) or ``limit`` (a non-detection: ``limit`` holds the 5-sigma magnitude limit
and ``mag`` is None). Times are UTC Julian Dates; magnitudes AB for LSST (from psfFlux in nJy).
Nothing here imports Django.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import Any

import numpy

#: AB magnitude of 1 nJy: m = -2.5 log10(f / 3631 Jy) = -2.5 log10(f_nJy) + 31.4.
NJY_ZERO_POINT = 31.4
#: 2.5 / ln(10): a flux's relative error -> a magnitude error.
MAG_ERR_PER_RELATIVE_FLUX_ERR = 2.5 / math.log(10)
#: Forced photometry below this S/N is shown as an upper limit, not as a magnitude.
FORCED_MIN_SNR = 3.0
#: Limits are drawn at this many sigma of the flux error.
LIMIT_SIGMA = 5.0

ZTF_BANDS = {1: "g", 2: "r", 3: "i"}


_isfinite = math.isfinite


def _finite(value: Any) -> float | None:
    if type(value) is float:  # what Avro and JSON give: the common case first
        return value if _isfinite(value) else None
    if value is None or isinstance(value, (str, bool)):  # text where a number belongs is not a measurement
        return None
    try:
        value = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return value if math.isfinite(value) else None


def flux_to_mag(flux_njy: float | None) -> float | None:
    """AB magnitude of a flux in nJy; None for a flux that is missing, zero or negative."""
    flux = _finite(flux_njy)
    if flux is None or flux <= 0:
        return None
    return -2.5 * math.log10(flux) + NJY_ZERO_POINT


def flux_err_to_mag_err(flux_njy: float | None, flux_err_njy: float | None) -> float | None:
    flux, err = _finite(flux_njy), _finite(flux_err_njy)
    if flux is None or err is None or flux <= 0:
        return None
    return MAG_ERR_PER_RELATIVE_FLUX_ERR * err / flux


def _point(jd, band, *, mag=None, mag_err=None, limit=None, flux=None, flux_err=None, kind="detection") -> dict:
    return {
        "jd": jd,
        "band": band,
        "mag": mag,
        "mag_err": mag_err,
        "limit": limit,
        "flux": flux,
        "flux_err": flux_err,
        "kind": kind,
    }


# --- ZTF ----------------------------------------------------------------------------------------------


def ztf_points(record: Mapping[str, Any], common: Mapping[str, Any] | None = None) -> list[dict]:
    """``candidate`` and every ``prv_candidates`` entry: detections (magpsf), and non-detections (null magpsf,
    ``diffmaglim`` set) as upper limits. Entries with neither are not photometry and are left out."""
    points = []
    entries = [record.get("candidate") or {}, *(record.get("prv_candidates") or [])]
    for entry in entries:
        jd = _finite(entry.get("jd"))
        if jd is None:
            continue
        fid = entry.get("fid")
        band = ZTF_BANDS.get(fid, str(fid)[:16]) if isinstance(fid, int) else str(fid)[:16]
        mag = _finite(entry.get("magpsf"))
        if mag is not None:
            points.append(_point(jd, band, mag=mag, mag_err=_finite(entry.get("sigmapsf"))))
            continue
        limit = _finite(entry.get("diffmaglim"))
        if limit is not None:
            points.append(_point(jd, band, limit=limit, kind="limit"))
    return points


# --- Rubin/LSST ---------------------------------------------------------------------------------------


#: MJDs outside these bounds (before 1900, after 2200) are not converted: astropy's ERFA refuses or warns on
#: dates it cannot place, and no alert lies there (callers validate the range they accept).
_MJD_BOUNDS = (15020.0, 124593.0)


@functools.cache
def _tai_to_utc() -> tuple[Any, Any]:
    """ERFA's TAI -> UTC and astropy's exact two-float sum, once astropy has checked ERFA's leap-second table.

    ``Time(mjds, format="mjd", scale="tai").utc.jd`` is this arithmetic (``TimeMJD.set_jds``, ``Time._set_scale``,
    ``TimeJD``'s float value) under a ``Time`` object that costs about 0.15 ms to build per call; the same steps on
    the arrays give the same floats for a fraction of that (``tests/test_alert_photometry.py`` compares both)."""
    import erfa
    from astropy.time import Time
    from astropy.time.utils import day_frac

    Time(51544.0, format="mjd", scale="tai").utc  # noqa: B018 - astropy updates ERFA's leap seconds if stale, once
    return erfa, day_frac


def mjd_tai_to_jd_utc(mjds: list[float], known: Mapping[float, float] | None = None) -> list[float]:
    """UTC Julian Dates of TAI MJDs (Rubin's ``midpointMjdTai``), as astropy's ``Time(...).utc.jd`` gives them.

    ``known``: conversions already made (the alert's own diaSource, converted when its time was checked).
    An MJD outside 1900-2200 is returned as NaN rather than given to ERFA (which raises ``ErfaError`` on 1e300):
    callers drop or reject it."""
    if not mjds:
        return []
    low, high = _MJD_BOUNDS
    known = known or {}
    out = [known.get(mjd, math.nan) for mjd in mjds]
    ok = [i for i, mjd in enumerate(mjds) if low <= mjd <= high and mjd not in known]
    if ok:
        erfa, day_frac = _tai_to_utc()
        # TimeMJD.set_jds: day_frac(mjd, 0), which for a finite MJD is its nearest integer (ties to even, as
        # numpy rounds) and the exact rest; then moved to JD and normalised again.
        mjd = numpy.array([mjds[i] for i in ok], dtype=numpy.float64)
        jd1 = numpy.round(mjd)
        jd2 = mjd - jd1
        jd1 += erfa.DJM0
        jd1, jd2 = day_frac(jd1, jd2)
        # Time._set_scale("utc"): ERFA's conversion, normalised; TimeJD's value: the two floats' sum.
        jd1, jd2 = day_frac(*erfa.taiutc(jd1, jd2))
        for i, jd in zip(ok, (jd1 + jd2).tolist(), strict=True):
            out[i] = jd
    return out


def _lsst_point(source: Mapping[str, Any], kind: str) -> dict | None:
    flux, err = _finite(source.get("psfFlux")), _finite(source.get("psfFluxErr"))
    band = source.get("band")
    if not isinstance(band, str):
        band = ""
    # flux_to_mag and flux_err_to_mag_err, inlined: flux and err are already finite floats or None.
    mag = -2.5 * math.log10(flux) + NJY_ZERO_POINT if flux is not None and flux > 0 else None
    if kind == "forced" and (mag is None or err is None or err <= 0 or flux / err < FORCED_MIN_SNR):
        mag = None
    if mag is not None:
        return _point(None, band, mag=mag, mag_err=None if err is None else MAG_ERR_PER_RELATIVE_FLUX_ERR * err / flux,
                      flux=flux, flux_err=err, kind=kind)
    limit = flux_to_mag(LIMIT_SIGMA * err) if err is not None and err > 0 else None
    if limit is None:
        return None
    return _point(None, band, limit=limit, flux=flux, flux_err=err, kind="limit")


def lsst_points(record: Mapping[str, Any], common: Mapping[str, Any] | None = None) -> list[dict]:
    """``diaSource``, ``prvDiaSources`` and ``prvDiaForcedSources`` (and 7.x ``prvDiaNondetectionLimits``).

    A source whose flux gives no magnitude (negative difference flux, or forced photometry below S/N 3) becomes
    a 5-sigma upper limit from its flux error; the flux is kept either way. ``common``: the alert's common
    fields if already read (its ``mjd`` and ``jd`` spare converting the diaSource's time twice).
    """
    points, mjds = [], []
    sources = [(record.get("diaSource"), "detection")]
    sources += [(source, "detection") for source in record.get("prvDiaSources") or []]
    sources += [(source, "forced") for source in record.get("prvDiaForcedSources") or []]
    for source, kind in sources:
        if not source or _finite(source.get("midpointMjdTai")) is None:
            continue
        point = _lsst_point(source, kind)
        if point is not None:
            points.append(point)
            mjds.append(float(source["midpointMjdTai"]))
    for limit in record.get("prvDiaNondetectionLimits") or []:
        noise, mjd = _finite(limit.get("diaNoise")), _finite(limit.get("midpointMjdTai"))
        if noise is None or noise <= 0 or mjd is None:
            continue
        band = limit.get("band") if isinstance(limit.get("band"), str) else ""
        points.append(_point(None, band, limit=flux_to_mag(LIMIT_SIGMA * noise), kind="limit"))
        mjds.append(mjd)
    known = {common["mjd"]: common["jd"]} if common and "mjd" in common and "jd" in common else None
    for point, jd in zip(points, mjd_tai_to_jd_utc(mjds, known), strict=True):
        point["jd"] = jd
    return points
