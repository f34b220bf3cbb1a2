"""Synthetic ZTF alert packets, so the demo and the tests run on a machine without real ZTF data.

Each packet is what ZTF publishes: an Avro Object Container File (``b"Obj\\x01"``, codec ``null``, the
writer schema in the header, one record) holding an alert of ZTF alert schema 4.02, with a 30-day
``prv_candidates`` history that mixes detections and upper limits, a forced-photometry history
(``fp_hists``) and three 63x63 gzip-compressed FITS cutouts. Packets are 50-80 KB, like real ones.

:data:`ZTF_ALERT_SCHEMA` has the fields, order, types and record names of ZTF's v4.02 ``.avsc`` files
(https://github.com/ZwickyTransientFacility/ztf-avro-alert, where each field is documented); nullable
fields default to null. Each object has a light curve in flux (a supernova-like transient, a variable
star, or an asteroid seen tonight only); every exposure measures it with noise from its 5-sigma limit, so
detections, upper limits and forced photometry agree. The fields that carry this physics, and those the app
reads, are set here; every other field is null, or a plain value of its type where the schema forbids null.

Output depends only on the seed (or on the generator passed in): the Avro sync marker and the gzip
timestamps, which are random or wall-clock by default, are derived from the alert instead.

Typical use::

    packets = make_packets(200, seed=1, null_classtar_every=10)   # list[bytes]
    record = make_alert(numpy.random.default_rng(3), classtar=None)
    packet = serialize_alert(record)
"""

from __future__ import annotations

import enum
import functools
import gzip
import hashlib
import io
import logging
import math
from typing import Any, Final

import fastavro
import numpy as np
from astropy.io import fits
from astropy.time import Time

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_NIGHT_JD",
    "PUBLISHER",
    "RANDOM",
    "SCHEMA_VERSION",
    "ZTF_ALERT_SCHEMA",
    "make_alert",
    "make_alerts",
    "make_packets",
    "serialize_alert",
]

SCHEMA_VERSION: Final = "4.02"
PUBLISHER: Final = "ZTF (www.ztf.caltech.edu)"

#: 2025-03-02 00:00 UT, the UT date of the real v4.02 sample packet; alerts fall in that night by default.
DEFAULT_NIGHT_JD: Final = 2460736.5


class _Random(enum.Enum):
    RANDOM = "random"

    def __repr__(self) -> str:
        return "RANDOM"

    __str__ = __repr__


#: Sentinel for :func:`make_alert`'s ``classtar``: draw a value (``None`` means "make it null").
RANDOM: Final = _Random.RANDOM

# --- Schema: name:type, "?" = nullable (["null", type], default null), in ZTF's order -----------------------
_CANDIDATE_SPEC = """
jd:double fid:int pid:long diffmaglim:float? pdiffimfilename:string? programpi:string? programid:int candid:long
isdiffpos:string tblid:long? nid:int? rcid:int? field:int? xpos:float? ypos:float? ra:double dec:double
magpsf:float sigmapsf:float chipsf:float? magap:float? sigmagap:float? distnr:float? magnr:float?
sigmagnr:float? chinr:float? sharpnr:float? sky:float? magdiff:float? fwhm:float? classtar:float?
mindtoedge:float? magfromlim:float? seeratio:float? aimage:float? bimage:float? aimagerat:float?
bimagerat:float? elong:float? nneg:int? nbad:int? rb:float? ssdistnr:float? ssmagnr:float? ssnamenr:string?
sumrat:float? magapbig:float? sigmagapbig:float? ranr:double decnr:double sgmag1:float? srmag1:float?
simag1:float? szmag1:float? sgscore1:float? distpsnr1:float? ndethist:int ncovhist:int jdstarthist:double?
jdendhist:double? scorr:double? tooflag:int? objectidps1:long? objectidps2:long? sgmag2:float? srmag2:float?
simag2:float? szmag2:float? sgscore2:float? distpsnr2:float? objectidps3:long? sgmag3:float? srmag3:float?
simag3:float? szmag3:float? sgscore3:float? distpsnr3:float? nmtchps:int rfid:long jdstartref:double
jdendref:double nframesref:int rbversion:string dsnrms:float? ssnrms:float? dsdiff:float? magzpsci:float?
magzpsciunc:float? magzpscirms:float? nmatches:int clrcoeff:float? clrcounc:float? zpclrcov:float? zpmed:float?
clrmed:float? clrrms:float? neargaia:float? neargaiabright:float? maggaia:float? maggaiabright:float?
exptime:float? drb:float? drbversion:string
"""
_FP_HIST_SPEC = """
field:int? rcid:int? fid:int pid:long rfid:long sciinpseeing:float? scibckgnd:float? scisigpix:float?
magzpsci:float? magzpsciunc:float? magzpscirms:float? clrcoeff:float? clrcounc:float? exptime:float?
adpctdif1:float? adpctdif2:float? diffmaglim:float? programid:int jd:double forcediffimflux:float?
forcediffimfluxunc:float? procstatus:string? distnr:float? ranr:double decnr:double magnr:float? sigmagnr:float?
chinr:float? sharpnr:float?
"""


def _fields(spec: str) -> list[dict[str, Any]]:
    fields = [token.split(":") for token in spec.split()]
    return [_nullable(name, kind[:-1]) if kind.endswith("?") else {"name": name, "type": kind} for name, kind in fields]


def _record(name: str, fields: list[dict[str, Any]]) -> dict[str, Any]:
    return {"namespace": "ztf.alert", "type": "record", "name": name, "doc": "avro alert schema",
            "version": SCHEMA_VERSION, "fields": fields}


def _nullable(name: str, schema: Any) -> dict[str, Any]:
    return {"name": name, "type": ["null", schema], "default": None}


_CANDIDATE_FIELDS = _fields(_CANDIDATE_SPEC)
_BY_NAME = {f["name"]: f for f in _CANDIDATE_FIELDS}
# A prv_candidate (a detection or an upper limit) has the candidate's fields up to decnr, then scorr, the
# photometric calibration and rbversion; all nullable but the exposure's jd, fid, pid, programid and rbversion.
_PRV_NAMES = [*list(_BY_NAME)[: list(_BY_NAME).index("decnr") + 1],
              *"scorr magzpsci magzpsciunc magzpscirms clrcoeff clrcounc rbversion".split()]
_PRV_FIELDS = [
    _BY_NAME[name] if name in ("jd", "fid", "pid", "programid", "rbversion") or "default" in _BY_NAME[name]
    else _nullable(name, _BY_NAME[name]["type"])
    for name in _PRV_NAMES
]
_FP_FIELDS = _fields(_FP_HIST_SPEC)


#: The alert schema (ZTF 4.02) as a dict for :func:`fastavro.parse_schema`. Do not mutate it.
ZTF_ALERT_SCHEMA: dict[str, Any] = {
    "namespace": "ztf",
    "type": "record",
    "name": "alert",
    "doc": "avro alert schema for ZTF (www.ztf.caltech.edu)",
    "version": SCHEMA_VERSION,
    "fields": [
        {"name": "schemavsn", "type": "string", "doc": "schema version used"},
        {"name": "publisher", "type": "string", "doc": "origin of alert packet"},
        {"name": "objectId", "type": "string", "doc": "object identifier or name"},
        {"name": "candid", "type": "long"},
        {"name": "candidate", "type": _record("candidate", _CANDIDATE_FIELDS)},
        _nullable("prv_candidates", {"type": "array", "items": _record("prv_candidate", _PRV_FIELDS)}),
        _nullable("fp_hists", {"type": "array", "items": _record("fp_hist", _FP_FIELDS)}),
        # The cutout record is defined at its first use and referred to by name afterwards, as in ZTF.
        _nullable("cutoutScience", _record("cutout", [
            {"name": "fileName", "type": "string"}, {"name": "stampData", "type": "bytes", "doc": "fits.gz"}])),
        _nullable("cutoutTemplate", "ztf.alert.cutout"),
        _nullable("cutoutDifference", "ztf.alert.cutout"),
    ],
}

# --- Filling a record from the schema ------------------------------------------------------------------------
# Avro "float" is 32-bit: values are rounded to float32 here, so a decoded packet equals its record.
_CAST = {"int": int, "long": int, "float": lambda v: float(np.float32(v)), "double": float, "string": str}
_ZERO = {"int": 0, "long": 0, "float": 0.0, "double": 0.0, "string": ""}
# Non-nullable fields nothing here computes: ZTF's values for them (a plain zero for the rest).
_TYPICAL = {"rbversion": "t17_f5_c3", "drbversion": "d6_m7", "nframesref": 15, "nmatches": 1000, "nmtchps": 10,
            "jdstartref": 2458200.7, "jdendref": 2458437.9}


def _plan(fields: list[dict[str, Any]]) -> list[tuple[str, Any, Any]]:
    """(name, cast, value when not given) per field: null where nullable, else a typical value of its type."""
    plan = []
    for f in fields:
        kind = f["type"] if isinstance(f["type"], str) else f["type"][1]
        fallback = None if "default" in f else _TYPICAL.get(f["name"], _ZERO[kind])
        plan.append((f["name"], _CAST[kind], fallback))
    return plan


_PLANS = {name: _plan(fields) for name, fields in
          (("candidate", _CANDIDATE_FIELDS), ("prv_candidate", _PRV_FIELDS), ("fp_hist", _FP_FIELDS))}


def _fill(record_name: str, values: dict[str, Any]) -> dict[str, Any]:
    """A complete record: ``values`` (cast to the field's Avro type) where given, the fallback elsewhere."""
    record = {}
    for name, cast, fallback in _PLANS[record_name]:
        value = values.get(name)
        record[name] = fallback if value is None else cast(value)
    return record


# --- Objects and what ZTF sees of them -------------------------------------------------------------------
_MAX_PRV = 30  # ZTF sends the last 30 days of history, and so many entries at the most here
_NIGHT = (0.13, 0.50)  # Palomar's night, as a fraction of the UT day (~03h-12h UT)
_NID_EPOCH_JD = 2457754.5  # nid = whole days since this JD, as in real packets
_ZEROPOINT = {1: 26.3, 2: 26.2, 3: 25.7}  # typical magzpsci per filter (1 = g, 2 = r, 3 = i)
_STAMP = 63
_AXIS = np.arange(_STAMP, dtype=np.float64)


class _Object:
    """One source on the sky: where it is, how its flux varies, and ZTF's history of it so far."""

    def __init__(self, gen: np.random.Generator, night_jd: float, alerts_tonight: int, taken_ids: set[str],
                 kind: str | None = None):
        self.gen = gen
        u = gen.uniform
        # Asteroids move on: only an object seen once tonight may be one.
        weights = (0.5, 0.4, 0.1) if alerts_tonight == 1 else (0.55, 0.45, 0.0)
        self.kind = kind or str(gen.choice(["transient", "variable", "asteroid"], p=weights))
        self.ra = u(0.0, 360.0)
        self.dec = min(math.degrees(math.asin(u(-0.5, 1.0))), 89.0)  # uniform on the sky Palomar sees
        self.field, self.rcid = int(gen.integers(245, 881)), int(gen.integers(0, 64))
        self.colour = {1: u(-0.3, 0.5), 2: 0.0, 3: -u(0.0, 0.4)}  # magnitude in filter fid minus r [mag]
        self.ssnamenr, years_known, self.ndethist = "null", 0, 0
        # near_*: the nearest source of the reference image (and of PS1): distance [arcsec], magnitude, extent [pixels]
        if self.kind == "transient":  # a supernova: its host galaxy is the nearest source
            self.mag, self.rise, self.decline = u(16.5, 19.5), u(8.0, 18.0), u(0.02, 0.08)
            self.classtar, self.sgscore = u(0.3, 0.85), u(0.0, 0.3)  # blended with its host: not star-like
            self.near_dist, self.near_mag, self.near_width = u(0.5, 6.0), u(17.0, 21.5), 2.0
        elif self.kind == "variable":  # a star, brighter and fainter than in the reference image
            self.mag, self.period, self.phase = u(15.5, 19.5), u(0.2, 40.0), u(0.0, 2 * math.pi)
            self.classtar, self.sgscore = u(0.95, 1.0), u(0.9, 1.0)
            self.near_dist, self.near_mag, self.near_width = u(0.05, 0.8), self.mag - u(0.0, 2.0), 0.0
            years_known, self.ndethist = int(gen.integers(1, 7)), int(gen.integers(50, 600))
        else:  # a known asteroid, tonight only
            self.mag, self.ssnamenr = u(17.5, 20.5), str(gen.integers(1000, 600000))
            self.classtar, self.sgscore = u(0.95, 1.0), u(0.0, 1.0)
            self.near_dist, self.near_mag, self.near_width = u(3.0, 15.0), u(17.0, 21.5), 0.0
        self.ncovhist = self.ndethist + int(gen.integers(300, 1500))
        self.night_jd = night_jd
        self.angle = u(0, 2 * math.pi)  # the direction of the nearest source
        ranr = self.ra + self.near_dist * math.cos(self.angle) / 3600 / math.cos(math.radians(self.dec))
        decnr = self.dec + self.near_dist * math.sin(self.angle) / 3600
        self.reference = {"ranr": round(ranr % 360, 7), "decnr": round(decnr, 7), "distnr": self.near_dist,
                          "magnr": self.near_mag}
        # PS1's three closest sources (what Pitt-Google's xmatch reads): the nearest one, then two further out.
        ps1_id = int((self.dec + 90) * 120) * 10**13 + int(self.ra * 1e6) * 10**4  # zone, RA, then 4 digits
        dists, scores = [self.near_dist, *np.sort(u(1.5, 20.0, 2))], [self.sgscore, *u(0.0, 1.0, 2)]
        self.ps1 = {}
        for k in (1, 2, 3):
            self.ps1 |= {f"objectidps{k}": ps1_id + int(gen.integers(0, 10**4)), f"distpsnr{k}": dists[k - 1],
                         f"sgscore{k}": scores[k - 1]}
        # The solar-system cross-match: -999 where there is none, as in ZTF's candidates.
        self.ss = {"ssnamenr": self.ssnamenr, "ssdistnr": u(0.0, 3.0) if self.kind == "asteroid" else -999.0,
                   "ssmagnr": self.mag if self.kind == "asteroid" else -999.0}
        year = max(Time(night_jd, format="jd").datetime.year - years_known, 2017)
        self.object_id = _object_id(gen, year, taken_ids)
        self.prv: list[dict[str, Any]] = []
        self.fp: list[dict[str, Any]] = []
        # 5 to 24 exposures in the 30 nights before tonight, leaving room for tonight's alerts.
        self._observe_history(int(gen.integers(5, _MAX_PRV - 4 - min(alerts_tonight, 5))))

    def _observe_history(self, n: int) -> None:
        gen = self.gen
        jds = np.sort(self.night_jd - gen.integers(1, 31, n) + gen.uniform(*_NIGHT, n))
        self.t_start = gen.uniform(jds[0] + 1e-3, jds[-1])  # a transient's first light: limits, then detections
        for i, jd in enumerate(jds):
            # The mix the consumers are written for: an upper limit first, a detection last (an asteroid was
            # elsewhere: upper limits only).
            last = i == n - 1 and self.kind != "asteroid"
            exposure, flux, unc = self._observe(float(jd), must_detect=last)
            detected = last or (i > 0 and abs(flux) >= 5 * unc and gen.random() < 0.9)
            detection = self._detection(exposure, flux, unc, RANDOM, int(gen.integers(0, 300))) if detected else None
            self._remember(exposure, flux, unc, detection)

    def flux(self, jd: float, fid: int) -> float:
        """Signed flux on the difference image, in units of a 0 mag source."""
        if self.kind == "transient":
            age = jd - self.t_start
            if age < 0:
                return 0.0
            mag = self.mag + (2.0 * (1 - age / self.rise) ** 2 if age < self.rise else self.decline * (age - self.rise))
            return 10 ** (-0.4 * (mag + self.colour[fid]))
        if self.kind == "variable":
            return math.sin(2 * math.pi * jd / self.period + self.phase) * 10 ** (-0.4 * (self.mag + self.colour[fid]))
        return 10 ** (-0.4 * (self.mag + self.colour[fid])) if jd >= self.night_jd else 0.0

    def _observe(self, jd: float, must_detect: bool = False) -> tuple[dict[str, Any], float, float]:
        """An exposure of the object's field at ``jd``: its identity fields, and the measured flux and error [DN].

        ``must_detect``: the flux is at least 5 sigma (an alert is a detection, even of a source below the limit).
        """
        gen, u = self.gen, self.gen.uniform
        fid = int(gen.choice([1, 2, 3], p=[0.47, 0.47, 0.06]))
        nid = math.floor(jd - _NID_EPOCH_JD)
        fracday = min(round(((jd - 0.5) % 1.0) * 1e6), 999999)
        exposure = {
            "jd": round(jd, 7), "fid": fid, "nid": nid, "field": self.field, "rcid": self.rcid,
            # As in real packets: nid, fraction of the UT day, last digit of rcid, "15".
            "pid": ((nid * 10**6 + fracday) * 10 + self.rcid % 10) * 100 + 15,
            "rfid": self.field * 10**6 + 120000 + fid * 100 + self.rcid,
            "programid": int(gen.choice([1, 2, 3], p=[0.75, 0.2, 0.05])),
            "diffmaglim": float(np.clip(gen.normal(20.3 if fid < 3 else 19.8, 0.45), 18.8, 21.4)),
            "magzpsci": _ZEROPOINT[fid] + gen.normal(0.0, 0.1), "magzpsciunc": 10 ** u(-6.0, -4.8),
        }
        # diffmaglim is the 5-sigma limit of the difference image: the flux error is a fifth of its flux.
        unc = 10 ** (0.4 * (exposure["magzpsci"] - exposure["diffmaglim"])) / 5
        flux = self.flux(jd, fid) * 10 ** (0.4 * exposure["magzpsci"]) + gen.normal(0.0, unc)
        if must_detect and abs(flux) < 5 * unc:
            flux = math.copysign(gen.uniform(5.0, 10.0) * unc, flux)
        return exposure, flux, unc

    def _detection(self, exposure: dict, flux: float, unc: float, classtar: Any, tblid: int) -> dict[str, Any]:
        gen = self.gen
        if classtar is RANDOM:
            classtar = float(np.clip(self.classtar + gen.normal(0.0, 0.01), 0.0, 1.0))
        dra, ddec = gen.normal(0.0, 0.1 / 3600, 2)  # 0.1 arcsec of astrometric scatter
        return {
            **exposure, **self.reference, "candid": exposure["pid"] * 10**6 + 10000 + tblid, "tblid": tblid,
            "ra": round((self.ra + dra / math.cos(math.radians(self.dec))) % 360, 7), "dec": round(self.dec + ddec, 7),
            "isdiffpos": "t" if flux > 0 else "f", "magpsf": exposure["magzpsci"] - 2.5 * math.log10(abs(flux)),
            "sigmapsf": max(1.0857 * unc / abs(flux), 0.01),  # the error of a magnitude from its flux's S/N
            "classtar": classtar, "rb": gen.beta(5.0, 1.5), "drb": gen.beta(6.0, 1.0), **self.ps1, **self.ss,
            # The image-quality fields of Pitt-Google's is_pure tag: seeing, shape, bad pixels, magap - magpsf.
            "fwhm": float(np.clip(gen.normal(2.2, 0.4), 1.4, 4.0)), "elong": gen.uniform(1.0, 1.4),
            "nbad": 0 if gen.random() < 0.9 else int(gen.integers(1, 4)), "magdiff": gen.normal(0.05, 0.1),
            "programpi": "Kulkarni", "exptime": 30.0,
        }

    def _remember(self, exposure: dict[str, Any], flux: float, unc: float, detection: dict[str, Any] | None) -> None:
        """Add an exposure to the history: a detection, or an upper limit (identity and limit only)."""
        if detection is not None:
            self.ndethist += 1
        self.ncovhist += 1
        no_ss = {"ssnamenr": None, "ssdistnr": None, "ssmagnr": None}  # null in real histories
        prv = {**detection, **no_ss} if detection is not None else {**exposure, "programpi": "Kulkarni"}
        self.prv.append(_fill("prv_candidate", prv))
        self.fp.append(_fill("fp_hist", {**exposure, **self.reference, "forcediffimflux": flux,
                                          "forcediffimfluxunc": unc, "procstatus": "0", "exptime": 30.0}))

    def alert(self, jd: float, *, tblid: int, classtar: Any = RANDOM, candid: int | None = None) -> dict[str, Any]:
        """The alert of a detection at ``jd``; it then joins the history that later alerts carry."""
        exposure, flux, unc = self._observe(jd, must_detect=True)
        detection = self._detection(exposure, flux, unc, classtar, tblid)
        if candid is not None:
            detection["candid"] = candid
        candidate = _fill("candidate", {**detection, "ndethist": self.ndethist + 1, "ncovhist": self.ncovhist + 1})
        record = {
            "schemavsn": SCHEMA_VERSION,
            "publisher": PUBLISHER,
            "objectId": self.object_id,
            "candid": candidate["candid"],
            "candidate": candidate,
            "prv_candidates": [dict(entry) for entry in self.prv[-_MAX_PRV:]],
            "fp_hists": [dict(entry) for entry in reversed(self.fp[-_MAX_PRV:])],  # newest first, as ZTF's
            **self._cutouts(candidate, unc),
        }
        self._remember(exposure, flux, unc, detection)
        return record

    def _cutouts(self, candidate: dict[str, Any], unc: float) -> dict[str, dict[str, Any]]:
        """Science, template and difference stamps: sky noise, the nearest reference source, the candidate's PSF."""
        gen, zp = self.gen, candidate["magzpsci"]
        sigma = candidate["fwhm"] / 2.355  # seeing [pixels]
        noise = unc / (math.sqrt(4 * math.pi) * sigma)  # per pixel, for a PSF-fit flux error of unc
        x, y = (_STAMP - 1) / 2 + gen.uniform(-0.5, 0.5, 2)
        offset = self.near_dist / 1.012  # [pixels]
        neighbour = _psf(x + offset * math.cos(self.angle), y + offset * math.sin(self.angle),
                         math.hypot(sigma, self.near_width), 10 ** (0.4 * (zp - self.near_mag)))
        sign = 1.0 if candidate["isdiffpos"] == "t" else -1.0
        source = _psf(x, y, sigma, sign * 10 ** (0.4 * (zp - candidate["magpsf"])))
        sci = gen.normal(gen.uniform(60.0, 350.0), noise * 0.9, (_STAMP, _STAMP)) + neighbour + source
        ref = gen.normal(gen.uniform(150.0, 300.0), noise * 0.4, (_STAMP, _STAMP)) + neighbour  # a stack: less noise
        diff = gen.normal(0.0, noise, (_STAMP, _STAMP)) + source
        mtime = int((candidate["jd"] - 2440587.5) * 86400) + 600  # written ~10 min after the exposure
        candid, pid = candidate["candid"], candidate["pid"]
        return {
            "cutoutScience": _cutout(f"candid{candid}_pid{pid}_targ_sci.fits.gz", sci, mtime),
            "cutoutTemplate": _cutout(f"candid{candid}_ref.fits.gz", ref, mtime),
            "cutoutDifference": _cutout(f"candid{candid}_pid{pid}_targ_refmsci.fits.gz", diff, mtime),
        }


def _object_id(gen: np.random.Generator, year: int, taken: set[str]) -> str:
    # ZTF names objects in order within a year, so the first letters are mostly "aa" or "ab".
    while True:
        letters = "".join(gen.choice(list("abcdefghijklmnopqrstuvwxyz"), 5))
        name = f"ZTF{year % 100:02d}{gen.choice(['aa', 'ab', 'ac'], p=[0.6, 0.3, 0.1])}{letters}"
        if name not in taken:
            taken.add(name)
            return name


def _psf(x: float, y: float, sigma: float, flux: float) -> np.ndarray:
    gx, gy = np.exp(-0.5 * ((_AXIS - x) / sigma) ** 2), np.exp(-0.5 * ((_AXIS - y) / sigma) ** 2)
    return np.outer(gy, gx) * (flux / (2.0 * math.pi * sigma * sigma))


@functools.cache
def _fits_header() -> bytes:
    # astropy builds the header once (writeto would build it for every stamp); a stamp is header + big-endian data
    # + padding, the same bytes astropy's writeto would produce.
    header = fits.PrimaryHDU(np.zeros((_STAMP, _STAMP), dtype=np.float32)).header
    header["BUNIT"] = "DN"
    return header.tostring().encode("ascii")


def _cutout(file_name: str, image: np.ndarray, mtime: int) -> dict[str, Any]:
    """A cutout record: ``image`` as a gzip-compressed FITS file."""
    data = image.astype(">f4").tobytes()
    padding = b"\0" * (-len(data) % 2880)  # FITS data units fill whole 2880-byte blocks
    # gzip stamps the current time by default; the exposure's time keeps the bytes reproducible.
    return {"fileName": file_name, "stampData": gzip.compress(_fits_header() + data + padding, 9, mtime=mtime)}


# --- Alerts and packets ----------------------------------------------------------------------------------
def make_alert(
    rng: np.random.Generator | None = None,
    *,
    object_id: str | None = None,
    candid: int | None = None,
    classtar: float | _Random | None = RANDOM,
    jd: float | None = None,
) -> dict[str, Any]:
    """Return one synthetic ZTF alert record (a dict matching :data:`ZTF_ALERT_SCHEMA`) of a new object.

    Args:
        rng: Source of randomness; the same generator state gives the same alert. ``None``: a fresh,
            unseeded generator.
        object_id: ``objectId`` to use instead of a generated ``ZTFyyaaxxxxx`` name.
        candid: ``candid`` to use (top level, ``candidate`` and cutout file names) instead of the one
            derived from the exposure. ``pid`` is left as generated.
        classtar: :data:`RANDOM` (default) draws a star/galaxy score fitting the object; ``None`` makes
            ``candidate.classtar`` null; a float is used as given.
        jd: Julian date of the detection; default: a random time in the night of :data:`DEFAULT_NIGHT_JD`.
            ``candid`` has the 19 digits of real ones for dates from September 2019 on.

    Float fields are already rounded to 32 bits, so a packet decodes back to a record equal to this one.
    """
    gen = rng if rng is not None else np.random.default_rng()
    jd = float(jd if jd is not None else DEFAULT_NIGHT_JD + gen.uniform(*_NIGHT))
    obj = _Object(gen, math.floor(jd - 0.5) + 0.5, 1, set())  # the night: 00:00 UT of jd's UT date
    if object_id is not None:
        obj.object_id = object_id
    return obj.alert(jd, tblid=int(gen.integers(0, 300)), classtar=classtar, candid=candid)


def make_alerts(
    n: int,
    seed: int = 0,
    *,
    null_classtar_every: int = 0,
    night_jd: float = DEFAULT_NIGHT_JD,
) -> list[dict[str, Any]]:
    """Return ``n`` alert records of one night, in time order, as a ZTF stream would deliver them.

    About ``n / 2`` distinct objects: every object has at least one alert and the rest are spread at
    random, so some objects have several (at least 30 minutes apart, same field, maybe another filter),
    and each later alert of an object carries the earlier ones in ``prv_candidates`` and ``fp_hists``.
    ``objectId`` and ``candid`` are unique per object and per alert.

    Args:
        n: Number of alerts (0 gives an empty list).
        seed: Seed of the generator; the same arguments always give the same alerts.
        null_classtar_every: When ``k > 0``, the k-th, 2k-th, ... alerts (1-based, in the returned order)
            have ``candidate.classtar`` null; the others a random score.
        night_jd: 00:00 UT of the night's UT date; alerts fall between about 03:00 and 12:00 UT.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, not {n}")
    if null_classtar_every < 0:
        raise ValueError(f"null_classtar_every must be >= 0, not {null_classtar_every}")
    if n == 0:
        return []
    gen = np.random.default_rng(seed)
    counts = np.ones((n + 1) // 2, dtype=np.int64)
    np.add.at(counts, gen.integers(0, len(counts), size=n - len(counts)), 1)
    taken_ids: set[str] = set()
    # The first two objects are a transient and a variable star: from 3 alerts on, classtar is on both sides of 0.9.
    kinds = ["transient", "variable", *[None] * (len(counts) - 2)]
    objects = [_Object(gen, night_jd, int(count), taken_ids, kind) for count, kind in zip(counts, kinds, strict=False)]
    schedule = []
    for index, count in enumerate(counts):
        gaps = 0.021 * np.arange(count)  # ZTF revisits a field after 30 min or more
        times = np.maximum.accumulate(np.sort(gen.uniform(*_NIGHT, count)) - gaps) + gaps
        schedule += [(round(night_jd + float(t), 7), index) for t in times]
    schedule.sort()
    alerts = []
    for position, (jd, index) in enumerate(schedule, start=1):
        null = null_classtar_every > 0 and position % null_classtar_every == 0
        # tblid = the alert's place in the night keeps candid (pid, then tblid) unique within the night.
        alerts.append(objects[index].alert(jd, tblid=position, classtar=None if null else RANDOM))
    return alerts


def serialize_alert(record: dict[str, Any]) -> bytes:
    """Return ``record`` as a ZTF packet: an Avro container file, codec null, schema in the header.

    Fields with a default (the nullable ones) may be missing from ``record``; unknown keys are ignored.
    The sync marker is derived from ``objectId`` and ``candid`` (fastavro's default is random), so equal
    records give equal bytes, in any process.
    """
    key = f"{record.get('objectId')}/{record.get('candid')}".encode()
    marker = hashlib.blake2b(key, digest_size=16).digest()
    buffer = io.BytesIO()
    # fastavro puts json.dumps(<the schema it is given>) in the header. A parsed schema's key order depends
    # on PYTHONHASHSEED, so the unparsed dict is passed: the header is then the same in every process, and
    # reads like ZTF's (namespaces, named reference to the cutout record). (fastavro parses it on each call.)
    fastavro.writer(buffer, ZTF_ALERT_SCHEMA, [record], codec="null", sync_marker=marker)
    return buffer.getvalue()


def make_packets(
    n: int,
    seed: int = 0,
    *,
    null_classtar_every: int = 0,
    night_jd: float = DEFAULT_NIGHT_JD,
) -> list[bytes]:
    """Return ``n`` serialized alert packets: :func:`make_alerts` then :func:`serialize_alert` on each."""
    packets = [
        serialize_alert(record)
        for record in make_alerts(n, seed, null_classtar_every=null_classtar_every, night_jd=night_jd)
    ]
    logger.debug("generated %d synthetic ZTF packets (seed %d, %d bytes)", n, seed, sum(map(len, packets)))
    return packets
