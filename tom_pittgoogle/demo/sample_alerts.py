"""Synthetic ZTF alert packets, so the demo and the tests run on a machine without real ZTF data.

Each packet is what ZTF publishes: an Avro Object Container File (``b"Obj\\x01"``, codec ``null``, the
writer schema in the header, one record) holding an alert in the shape of ZTF alert schema 4.02, with a
30-day ``prv_candidates`` history that mixes detections and upper limits, a forced-photometry history
(``fp_hists``) and three 63x63 gzip-compressed FITS cutouts. Packets are 50-80 KB, like real ones.

The schema is defined here in Python (:data:`ZTF_ALERT_SCHEMA`): the same fields, order, types and
record names as ZTF's v4.02 ``.avsc`` files, with shorter docs of our own. Nullable fields all default to
null. Nothing is read from disk at run time.

Output depends only on the seed (or on the generator passed in): the Avro sync marker and the gzip
timestamps, which are random or wall-clock by default, are derived from the alert instead.

Typical use::

    packets = make_packets(200, seed=1, null_classtar_every=10)   # list[bytes]
    record = make_alert(numpy.random.default_rng(3), classtar=None)
    packet = serialize_alert(record)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import functools
import gzip
import hashlib
import io
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

import fastavro
import numpy as np
from astropy.io import fits

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

# --------------------------------------------------------------------------------------------------------
# Schema
# --------------------------------------------------------------------------------------------------------
# One line per field: name, Avro type ("?" = nullable, i.e. ["null", type] with default null), doc.
# Order and types follow ZTF's v4.02 candidate.avsc; prv_candidate reuses these docs.
_CANDIDATE_SPEC = """
jd double Julian date of the observation [days]
fid int Filter: 1 = g, 2 = r, 3 = i
pid long Processing ID of the science image
diffmaglim float? 5-sigma limiting magnitude of the difference image [mag]
pdiffimfilename string? File name of the positive difference image
programpi string? PI of the observing program
programid int Program: 1 = public, 2 = partnership, 3 = Caltech
candid long Candidate ID (unique per detection)
isdiffpos string t: from the sci minus ref subtraction; f: from ref minus sci
tblid long? Pipeline table extraction ID
nid int? Night ID
rcid int? Readout channel [0 .. 63]
field int? ZTF field ID
xpos float? x position on the image [pixels]
ypos float? y position on the image [pixels]
ra double Right ascension, J2000 [deg]
dec double Declination, J2000 [deg]
magpsf float PSF-fit magnitude [mag]
sigmapsf float 1-sigma error of magpsf [mag]
chipsf float? Reduced chi-square of the PSF fit
magap float? Aperture magnitude, 14 pixel diameter [mag]
sigmagap float? 1-sigma error of magap [mag]
distnr float? Distance to the nearest source of the reference-image catalog [pixels]
magnr float? Magnitude of that nearest reference source [mag]
sigmagnr float? 1-sigma error of magnr [mag]
chinr float? DAOPhot chi of the nearest reference source
sharpnr float? DAOPhot sharp of the nearest reference source
sky float? Local sky background [DN]
magdiff float? magap - magpsf [mag]
fwhm float? FWHM of a Gaussian core, SExtractor [pixels]
classtar float? SExtractor star/galaxy score
mindtoedge float? Distance to the nearest image edge [pixels]
magfromlim float? diffmaglim - magap [mag]
seeratio float? FWHM ratio, difference image / science image
aimage float? Major-axis RMS of the profile, SExtractor [pixels]
bimage float? Minor-axis RMS of the profile, SExtractor [pixels]
aimagerat float? aimage / fwhm
bimagerat float? bimage / fwhm
elong float? aimage / bimage
nneg int? Negative pixels in the 5x5 stamp
nbad int? Bad pixels in the 5x5 stamp
rb float? RealBogus score, random forest (1 = real)
ssdistnr float? Distance to the nearest known solar-system object, -999 if none [arcsec]
ssmagnr float? Magnitude of that solar-system object, -999 if none [mag]
ssnamenr string? Name of that solar-system object, the string null if none
sumrat float? sum(pixels) / sum(|pixels|) in the 5x5 stamp
magapbig float? Aperture magnitude, 18 pixel diameter [mag]
sigmagapbig float? 1-sigma error of magapbig [mag]
ranr double Right ascension of the nearest reference source [deg]
decnr double Declination of the nearest reference source [deg]
sgmag1 float? PS1 g magnitude of the closest PS1 source [mag]
srmag1 float? PS1 r magnitude of the closest PS1 source [mag]
simag1 float? PS1 i magnitude of the closest PS1 source [mag]
szmag1 float? PS1 z magnitude of the closest PS1 source [mag]
sgscore1 float? Star/galaxy score of the closest PS1 source (1 = star)
distpsnr1 float? Distance to the closest PS1 source [arcsec]
ndethist int Detections at this position since the survey began
ncovhist int Times this position was observed since the survey began
jdstarthist double? Julian date of the first of the ndethist detections [days]
jdendhist double? Julian date of the last of the ndethist detections [days]
scorr double? Peak signal-to-noise in the matched-filter image
tooflag int? 1 = target-of-opportunity exposure
objectidps1 long? PS1 objID of the closest PS1 source
objectidps2 long? PS1 objID of the second closest PS1 source
sgmag2 float? PS1 g magnitude of the second closest PS1 source [mag]
srmag2 float? PS1 r magnitude of the second closest PS1 source [mag]
simag2 float? PS1 i magnitude of the second closest PS1 source [mag]
szmag2 float? PS1 z magnitude of the second closest PS1 source [mag]
sgscore2 float? Star/galaxy score of the second closest PS1 source
distpsnr2 float? Distance to the second closest PS1 source [arcsec]
objectidps3 long? PS1 objID of the third closest PS1 source
sgmag3 float? PS1 g magnitude of the third closest PS1 source [mag]
srmag3 float? PS1 r magnitude of the third closest PS1 source [mag]
simag3 float? PS1 i magnitude of the third closest PS1 source [mag]
szmag3 float? PS1 z magnitude of the third closest PS1 source [mag]
sgscore3 float? Star/galaxy score of the third closest PS1 source
distpsnr3 float? Distance to the third closest PS1 source [arcsec]
nmtchps int PS1 sources within 30 arcsec
rfid long Processing ID of the reference image
jdstartref double Julian date of the first exposure in the reference image [days]
jdendref double Julian date of the last exposure in the reference image [days]
nframesref int Exposures stacked into the reference image
rbversion string Version of the rb model
dsnrms float? D / stddev(D) at the candidate, D = difference image
ssnrms float? S / stddev(S) at the candidate, S = D convolved with its PSF
dsdiff float? dsnrms - ssnrms
magzpsci float? Photometric zero point of the science image [mag]
magzpsciunc float? Uncertainty of magzpsci [mag]
magzpscirms float? RMS of the calibrator residuals [mag]
nmatches int PS1 calibrators used for the science image
clrcoeff float? Colour coefficient of the photometric calibration
clrcounc float? Uncertainty of clrcoeff
zpclrcov float? Covariance of magzpsci and clrcoeff [mag^2]
zpmed float? Median zero point over the calibrators [mag]
clrmed float? Median PS1 colour of the calibrators [mag]
clrrms float? RMS PS1 colour of the calibrators [mag]
neargaia float? Distance to the closest Gaia source, -999 if none within 90 arcsec [arcsec]
neargaiabright float? Distance to the closest Gaia source with G < 14, -999 if none [arcsec]
maggaia float? G magnitude of the closest Gaia source [mag]
maggaiabright float? G magnitude of the closest Gaia source with G < 14 [mag]
exptime float? Exposure time [s]
drb float? RealBogus score, deep learning (1 = real)
drbversion string Version of the drb model
"""

# A prv_candidate is a candidate without the history, PS1, reference and calibration extras; in ZTF it
# is also a non-detection (upper limit), so every measured quantity is nullable. Docs: _CANDIDATE_SPEC.
_PRV_CANDIDATE_SPEC = """
jd double
fid int
pid long
diffmaglim float?
pdiffimfilename string?
programpi string?
programid int
candid long? Candidate ID; null for an upper limit (non-detection)
isdiffpos string?
tblid long?
nid int?
rcid int?
field int?
xpos float?
ypos float?
ra double?
dec double?
magpsf float?
sigmapsf float?
chipsf float?
magap float?
sigmagap float?
distnr float?
magnr float?
sigmagnr float?
chinr float?
sharpnr float?
sky float?
magdiff float?
fwhm float?
classtar float?
mindtoedge float?
magfromlim float?
seeratio float?
aimage float?
bimage float?
aimagerat float?
bimagerat float?
elong float?
nneg int?
nbad int?
rb float?
ssdistnr float?
ssmagnr float?
ssnamenr string?
sumrat float?
magapbig float?
sigmagapbig float?
ranr double?
decnr double?
scorr double?
magzpsci float?
magzpsciunc float?
magzpscirms float?
clrcoeff float?
clrcounc float?
rbversion string
"""

_FP_HIST_SPEC = """
field int?
rcid int?
fid int
pid long
rfid long
sciinpseeing float? Effective FWHM of the science image [pixels]
scibckgnd float? Background of the science image [DN]
scisigpix float? Robust per-pixel sigma of the science image [DN]
magzpsci float?
magzpsciunc float?
magzpscirms float?
clrcoeff float?
clrcounc float?
exptime float?
adpctdif1 float? Astrometric RMS along RA with respect to Gaia [arcsec]
adpctdif2 float? Astrometric RMS along Dec with respect to Gaia [arcsec]
diffmaglim float?
programid int
jd double
forcediffimflux float? Forced PSF-fit flux on the difference image [DN]
forcediffimfluxunc float? 1-sigma error of forcediffimflux [DN]
procstatus string? Forced-photometry status code, 0 = no warning
distnr float?
ranr double
decnr double
magnr float?
sigmagnr float?
chinr float?
sharpnr float?
"""


def _parse_spec(spec: str, docs: dict[str, str] | None = None) -> list[dict[str, Any]]:
    fields: list[dict[str, Any]] = []
    for line in spec.strip().splitlines():
        name, avro_type, *words = line.split()
        doc = " ".join(words) or (docs or {}).get(name)
        entry: dict[str, Any] = {"name": name}
        if avro_type.endswith("?"):
            entry["type"] = ["null", avro_type[:-1]]
            entry["default"] = None
        else:
            entry["type"] = avro_type
        if doc:
            entry["doc"] = doc
        fields.append(entry)
    return fields


def _record_schema(name: str, fields: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "namespace": "ztf.alert",
        "type": "record",
        "name": name,
        "doc": "avro alert schema",
        "version": SCHEMA_VERSION,
        "fields": fields,
    }


_CANDIDATE_FIELDS = _parse_spec(_CANDIDATE_SPEC)
_CANDIDATE_DOCS = {f["name"]: f["doc"] for f in _CANDIDATE_FIELDS}
_PRV_CANDIDATE_FIELDS = _parse_spec(_PRV_CANDIDATE_SPEC, _CANDIDATE_DOCS)
_FP_HIST_FIELDS = _parse_spec(_FP_HIST_SPEC, _CANDIDATE_DOCS)
_CUTOUT_FIELDS = [
    {"name": "fileName", "type": "string"},
    {"name": "stampData", "type": "bytes", "doc": "fits.gz"},
]

#: The alert schema (ZTF 4.02 shape) as a dict for :func:`fastavro.parse_schema`. Do not mutate it.
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
        {"name": "candidate", "type": _record_schema("candidate", _CANDIDATE_FIELDS)},
        {
            "name": "prv_candidates",
            "type": [
                "null",
                {"type": "array", "items": _record_schema("prv_candidate", _PRV_CANDIDATE_FIELDS)},
            ],
            "default": None,
        },
        {
            "name": "fp_hists",
            "type": ["null", {"type": "array", "items": _record_schema("fp_hist", _FP_HIST_FIELDS)}],
            "default": None,
        },
        # The cutout record is defined at its first use and referred to by name afterwards, as in ZTF.
        {
            "name": "cutoutScience",
            "type": ["null", _record_schema("cutout", _CUTOUT_FIELDS)],
            "default": None,
        },
        {"name": "cutoutTemplate", "type": ["null", "ztf.alert.cutout"], "default": None},
        {"name": "cutoutDifference", "type": ["null", "ztf.alert.cutout"], "default": None},
    ],
}


def _float_names(fields: list[dict[str, Any]]) -> frozenset[str]:
    return frozenset(f["name"] for f in fields if f["type"] in ("float", ["null", "float"]))


# Avro "float" is 32-bit: values are rounded to float32 when generated, so a decoded packet equals its record.
_CANDIDATE_FLOATS = _float_names(_CANDIDATE_FIELDS)
_PRV_FLOATS = _float_names(_PRV_CANDIDATE_FIELDS)
_FP_FLOATS = _float_names(_FP_HIST_FIELDS)
_PRV_NAMES = tuple(f["name"] for f in _PRV_CANDIDATE_FIELDS)


# --------------------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------------------
_MAX_PRV = 30  # ZTF sends the last 30 days of history; our history never exceeds 30 entries either
_MIN_PRV = 5
_NIGHT_UT_START, _NIGHT_UT_END = 0.13, 0.50  # Palomar's night, as a fraction of the UT day (~03h-12h UT)
_JD_UNIX_EPOCH = 2440587.5
_NID_EPOCH_JD = 2457754.5  # nid = whole days since this JD; matches the nid of the real packets
_ZTF_START_JD = 2458194.5  # 2018-03-20, start of the ZTF survey: earliest possible first detection
_PIXEL_SCALE = 1.012  # arcsec per pixel
_CCD_SHAPE = (3072, 3080)  # quadrant image size, x and y [pixels]
_STAMP = 63
_STAMP_AXIS = np.arange(_STAMP, dtype=np.float64)
_FILTER_CODES = {1: "zg", 2: "zr", 3: "zi"}
_RB_VERSION = "t17_f5_c3"
_DRB_VERSION = "d6_m7"
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


class _Draw:
    """Scalar draws from a numpy Generator, returned as builtin Python types (Avro and ``==`` want them)."""

    __slots__ = ("gen",)

    def __init__(self, gen: np.random.Generator) -> None:
        self.gen = gen

    def u(self, low: float, high: float) -> float:
        return float(self.gen.uniform(low, high))

    def n(self, mean: float, sigma: float) -> float:
        return float(self.gen.normal(mean, sigma))

    def i(self, low: int, high: int) -> int:
        """Integer in [low, high], both ends included."""
        return int(self.gen.integers(low, high, endpoint=True))

    def p(self, probability: float) -> bool:
        return bool(self.gen.random() < probability)

    def pick(self, items: Sequence[Any], weights: Sequence[float] | None = None) -> Any:
        return items[int(self.gen.choice(len(items), p=weights))]


def _f32(value: float) -> float:
    return float(np.float32(value))


def _round_floats(record: dict[str, Any], names: frozenset[str]) -> dict[str, Any]:
    for name in names:
        value = record.get(name)
        if value is not None:
            record[name] = _f32(value)
    return record


def _clip(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


def _jd_to_datetime(jd: float) -> dt.datetime:
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(days=jd - _JD_UNIX_EPOCH)


def _night_start(jd: float) -> float:
    """00:00 UT of the UT date of ``jd`` (ZTF's nights lie within one UT date)."""
    return math.floor(jd - 0.5) + 0.5


def _offset_radec(ra: float, dec: float, dist_arcsec: float, angle: float) -> tuple[float, float]:
    ddec = dist_arcsec * math.sin(angle) / 3600.0
    dra = dist_arcsec * math.cos(angle) / 3600.0 / max(math.cos(math.radians(dec)), 1e-3)
    return round((ra + dra) % 360.0, 7), round(_clip(dec + ddec, -90.0, 90.0), 7)


def _ps1_objid(draw: _Draw, ra: float, dec: float) -> int:
    # PS1 objID layout: 1/120-degree declination zone, then RA in micro-degrees, then 4 more digits.
    zone = int((dec + 90.0) * 120.0)
    return zone * 10**13 + int(ra * 1e6) * 10**4 + draw.i(0, 9999)


def _object_id(draw: _Draw, year: int, taken: set[str]) -> str:
    # ZTF names objects sequentially within a year, so the first letters are mostly "aa" or "ab".
    while True:
        prefix = draw.pick(("aa", "ab", "ac"), (0.6, 0.3, 0.1))
        name = f"ZTF{year % 100:02d}{prefix}" + "".join(draw.pick(_LETTERS) for _ in range(5))
        if name not in taken:
            taken.add(name)
            return name


# --------------------------------------------------------------------------------------------------------
# Objects, exposures, detections
# --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Exposure:
    """One ZTF exposure of the object's field and readout channel."""

    jd: float
    fid: int
    field: int
    rcid: int
    programid: int
    diffmaglim: float
    magzpsci: float
    magzpsciunc: float
    magzpscirms: float
    clrcoeff: float
    clrcounc: float
    fwhm: float  # seeing [pixels]
    scibckgnd: float
    scisigpix: float
    exptime: float = 30.0

    @property
    def nid(self) -> int:
        return int(math.floor(self.jd - _NID_EPOCH_JD))

    @property
    def fracday(self) -> int:
        return min(round(((self.jd - 0.5) % 1.0) * 1e6), 999999)  # round: 0.3 days is 299999.99...

    @property
    def pid(self) -> int:
        # As in the real packets: nid, fraction of the UT day (6 digits), last digit of rcid, then "15"
        # (13 digits today, so that candid = pid * 10**6 + 6 more digits has 19).
        return (self.nid * 10**6 + self.fracday) * 10**3 + (self.rcid % 10) * 100 + 15

    @property
    def rfid(self) -> int:
        return self.field * 10**6 + 120000 + self.fid * 100 + self.rcid

    def diffim_filename(self, *, archive: bool = False) -> str:
        date = _jd_to_datetime(self.jd)
        stem = f"{date:%Y%m%d}{self.fracday:06d}"
        ccd, quadrant = self.rcid // 4 + 1, self.rcid % 4 + 1
        band = _FILTER_CODES[self.fid]
        name = f"ztf_{stem}_{self.field:06d}_{band}_c{ccd:02d}_o_q{quadrant}_scimrefdiffimg.fits"
        if archive:
            # The history holds full archive paths of compressed images, as in real packets.
            return f"/ztf/archive/sci/{date:%Y/%m%d}/{stem[8:]}/{name}.fz"
        return name


@dataclass
class _Neighbour:
    """A catalogued source near the object (reference-image, PS1 or Gaia)."""

    dist: float  # arcsec
    angle: float  # position angle on the stamp [rad]
    mag: float
    sigma_extra: float = 0.0  # intrinsic Gaussian width added to the PSF [pixels]; 0 for a star


@dataclass
class _Profile:
    """What stays the same about one object from alert to alert."""

    object_id: str
    kind: str  # "transient" (supernova-like), "variable" (a star) or "asteroid"
    ra: float
    dec: float
    field: int
    rcid: int
    xpos: float
    ypos: float
    peak_mag: float
    t_start: float  # transient: first light; variable: phase origin [JD]
    rise: float
    decline: float
    period: float
    amplitude: float
    colours: dict[int, float]
    det_probability: float
    classtar: float
    nearest: _Neighbour
    nr_chi: float
    nr_sharp: float
    nr_sigmag: float
    ps1: list[dict[str, Any]]
    nmtchps: int
    gaia: tuple[float, float, float, float]
    refs: dict[int, tuple[float, float, int]]
    first_detection_jd: float | None
    ndethist_base: int
    ncovhist_base: int
    ssnamenr: str
    ssmagnr: float
    field_stars: list[tuple[float, float, float]]
    prv: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    fp: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    @property
    def ranr_decnr(self) -> tuple[float, float]:
        return _offset_radec(self.ra, self.dec, self.nearest.dist, self.nearest.angle)

    def model_mag(self, jd: float, fid: int) -> float:
        """Magnitude of the difference-image source at ``jd`` (inf before a transient's first light)."""
        if self.kind == "transient":
            age = jd - self.t_start
            if age < 0:
                return math.inf
            if age < self.rise:
                mag = self.peak_mag + 2.0 * (1.0 - age / self.rise) ** 2
            else:
                mag = self.peak_mag + self.decline * (age - self.rise)
        elif self.kind == "variable":
            phase = 2.0 * math.pi * (jd - self.t_start) / self.period
            mag = self.peak_mag + self.amplitude * 0.5 * (1.0 + math.sin(phase))
        else:
            mag = self.peak_mag
        return mag + self.colours[fid]


def _make_exposure(draw: _Draw, profile: _Profile, jd: float, fid: int | None = None) -> _Exposure:
    fid = fid if fid is not None else draw.pick((1, 2, 3), (0.47, 0.47, 0.06))
    return _Exposure(
        jd=round(jd, 7),
        fid=fid,
        field=profile.field,
        rcid=profile.rcid,
        programid=draw.pick((1, 2, 3), (0.75, 0.2, 0.05)),
        diffmaglim=_clip(draw.n(20.3 if fid != 3 else 19.8, 0.45), 18.8, 21.4),
        magzpsci={1: 26.3, 2: 26.2, 3: 25.7}[fid] + draw.n(0.0, 0.1),
        magzpsciunc=10 ** draw.u(-6.0, -4.8),
        magzpscirms=draw.u(0.01, 0.05),
        clrcoeff={1: -0.06, 2: 0.1, 3: -0.02}[fid] + draw.n(0.0, 0.01),
        clrcounc=10 ** draw.u(-6.0, -4.5),
        fwhm=_clip(draw.n(2.2, 0.4), 1.4, 4.0),
        scibckgnd=draw.u(60.0, 350.0),
        scisigpix=draw.u(5.0, 12.0),
    )


def _make_profile(draw: _Draw, night_jd: float, n_alerts: int, taken_ids: set[str]) -> _Profile:
    """A new object with a 30-day history before ``night_jd``, room left for ``n_alerts`` alerts."""
    # Asteroids move on: only an object seen once tonight may be one.
    weights = (0.5, 0.4, 0.1) if n_alerts == 1 else (0.55, 0.45, 0.0)
    kind = draw.pick(("transient", "variable", "asteroid"), weights)
    # Uniform on the sky north of -30 deg, the part Palomar sees.
    dec = math.degrees(math.asin(draw.u(math.sin(math.radians(-30.0)), 1.0)))
    dec = round(min(dec, 89.0), 7)
    ra = round(draw.u(0.0, 360.0), 7)
    is_star = kind == "variable"
    if is_star:
        nearest = _Neighbour(dist=draw.u(0.05, 0.8), angle=draw.u(0, 2 * math.pi), mag=draw.u(12.5, 18.5))
        peak_mag = draw.u(15.2, 19.5)
    elif kind == "transient":
        # The nearest reference source of a supernova is usually its host galaxy, an extended blob.
        nearest = _Neighbour(
            dist=draw.u(0.5, 6.0),
            angle=draw.u(0, 2 * math.pi),
            mag=draw.u(17.0, 21.5),
            sigma_extra=draw.u(1.0, 3.0),
        )
        peak_mag = draw.u(16.5, 19.5)
    else:
        nearest = _Neighbour(dist=draw.u(3.0, 15.0), angle=draw.u(0, 2 * math.pi), mag=draw.u(17.0, 21.5))
        peak_mag = draw.u(17.5, 20.5)

    ps1: list[dict[str, Any]] = []
    dists = sorted([nearest.dist + abs(draw.n(0.0, 0.1))] + [draw.u(1.5, 20.0) for _ in range(2)])
    for rank, dist in enumerate(dists):
        own = rank == 0 and kind != "asteroid"
        r_mag = nearest.mag + draw.n(0.0, 0.05) if own else draw.u(18.5, 22.5)
        sgscore = (draw.u(0.9, 1.0) if is_star else draw.u(0.0, 0.3)) if own else draw.u(0.0, 1.0)
        gr = draw.u(0.2, 1.2)
        ps_ra, ps_dec = _offset_radec(ra, dec, dist, draw.u(0, 2 * math.pi))
        ps1.append(
            {
                "objectidps": _ps1_objid(draw, ps_ra, ps_dec),
                "sgmag": r_mag + gr,
                "srmag": r_mag,
                "simag": r_mag - 0.3 * gr,
                "szmag": r_mag - 0.45 * gr,
                "sgscore": sgscore,
                "distpsnr": dist,
            }
        )
    if is_star:
        neargaia, maggaia = ps1[0]["distpsnr"] + draw.n(0.0, 0.05), nearest.mag - draw.u(0.0, 0.3)
    else:
        neargaia, maggaia = draw.u(3.0, 60.0), draw.u(15.0, 20.5)
    if maggaia < 14.0:
        gaia = (abs(neargaia), abs(neargaia), maggaia, maggaia)
    else:
        gaia = (abs(neargaia), draw.u(20.0, 90.0), maggaia, draw.u(9.0, 14.0))

    field_no = draw.i(245, 880)
    first_detection = None
    if is_star:
        # A variable star has been detected for years: an old objectId and a long history.
        first_detection = _ZTF_START_JD + draw.u(0.0, 1.0) * max(night_jd - 60.0 - _ZTF_START_JD, 0.0)
        first_detection = min(first_detection, night_jd - 30.0)  # for dates before the survey, too
    refs = {}
    for fid in (1, 2, 3):
        start = draw.u(2458150.0, 2458450.0)
        refs[fid] = (round(start, 6), round(start + draw.u(20.0, 300.0), 6), draw.i(15, 40))

    profile = _Profile(
        object_id="",
        kind=kind,
        ra=ra,
        dec=dec,
        field=field_no,
        rcid=draw.i(0, 63),
        xpos=draw.u(20.0, _CCD_SHAPE[0] - 20.0),
        ypos=draw.u(20.0, _CCD_SHAPE[1] - 20.0),
        peak_mag=peak_mag,
        t_start=night_jd - draw.u(0.0, 100.0),
        rise=draw.u(8.0, 18.0),
        decline=draw.u(0.02, 0.08),
        period=draw.u(0.2, 40.0),
        amplitude=draw.u(0.2, 1.5),
        colours={1: draw.u(-0.3, 0.5), 2: 0.0, 3: -draw.u(0.0, 0.4)},
        det_probability=draw.u(0.3, 0.8),
        classtar=draw.u(0.9, 1.0) if kind != "transient" else _clip(draw.n(0.85, 0.15), 0.0, 1.0),
        nearest=nearest,
        nr_chi=draw.u(0.2, 1.5) if is_star else draw.u(1.0, 6.0),
        nr_sharp=draw.n(0.0, 0.02) if is_star else draw.u(0.1, 0.6),
        nr_sigmag=draw.u(0.008, 0.03) if nearest.mag < 18 else draw.u(0.03, 0.15),
        ps1=ps1,
        nmtchps=draw.i(3, 30),
        gaia=gaia,
        refs=refs,
        first_detection_jd=first_detection,
        ndethist_base=draw.i(50, 600) if is_star else 0,
        ncovhist_base=draw.i(300, 1500),
        ssnamenr=str(draw.i(1000, 600000)) if kind == "asteroid" else "null",
        ssmagnr=draw.u(18.0, 21.0),
        field_stars=[(draw.u(2.0, 60.0), draw.u(2.0, 60.0), draw.u(16.0, 21.0)) for _ in range(draw.i(1, 6))],
    )
    _make_history(draw, profile, night_jd, max(_MIN_PRV, min(25, _MAX_PRV - (n_alerts - 1))))

    detections = [p["jd"] for p in profile.prv if p["candid"] is not None]
    start = first_detection or (min(detections) if detections else night_jd)
    profile.object_id = _object_id(draw, _jd_to_datetime(start).year, taken_ids)
    return profile


def _make_history(draw: _Draw, profile: _Profile, night_jd: float, max_epochs: int) -> None:
    """Fill ``profile.prv`` and ``profile.fp`` with epochs of the 30 nights before ``night_jd``."""
    n_epochs = draw.i(_MIN_PRV, max_epochs)
    nights = draw.gen.integers(1, 31, size=n_epochs)
    times = draw.gen.uniform(_NIGHT_UT_START, _NIGHT_UT_END, size=n_epochs)
    jds = sorted(float(night_jd - k + t) for k, t in zip(nights, times, strict=True))
    if profile.kind == "transient":
        # First light inside the window: the history starts with upper limits, then detections.
        profile.t_start = draw.u(jds[0] + 1e-3, jds[-1])

    exposures = [_make_exposure(draw, profile, jd, draw.pick((1, 2, 3), (0.48, 0.48, 0.04))) for jd in jds]
    mags = [profile.model_mag(e.jd, e.fid) + draw.n(0.0, 0.04) for e in exposures]
    if profile.kind == "transient":
        detected = [m < e.diffmaglim and draw.p(0.9) for m, e in zip(mags, exposures, strict=True)]
    elif profile.kind == "variable":
        detected = [draw.p(profile.det_probability) for _ in exposures]
    else:
        detected = [False] * n_epochs  # an asteroid was elsewhere on the sky before tonight
    if profile.kind != "asteroid":
        # Guarantee the mix the consumers are written for: at least one upper limit and one detection.
        detected[0], detected[-1] = False, True

    for exposure, mag, is_detection in zip(exposures, mags, detected, strict=True):
        if is_detection:
            magpsf = _clip(mag, 15.0, 21.0)
            if magpsf > exposure.diffmaglim - 0.15:
                exposure = replace(exposure, diffmaglim=magpsf + draw.u(0.15, 0.6))
            candidate = _make_candidate(draw, profile, exposure, magpsf, tblid=draw.i(0, 300))
            profile.prv.append(_as_prv(profile, candidate, exposure))
        else:
            profile.prv.append(_upper_limit(exposure))
        profile.fp.append(_make_fp_hist(draw, profile, exposure, mag, is_detection))


def _make_candidate(
    draw: _Draw,
    profile: _Profile,
    exposure: _Exposure,
    magpsf: float,
    *,
    tblid: int,
    classtar: float | _Random | None = RANDOM,
) -> dict[str, Any]:
    """A full candidate record for a detection of ``profile`` at ``magpsf`` on ``exposure``."""
    e = exposure
    # Photometric error from the signal-to-noise implied by the 5-sigma limit.
    snr = 5.0 * 10 ** (0.4 * (e.diffmaglim - magpsf))
    # Bounds kept just inside [0.02, 0.2] so that they still hold after rounding to float32.
    sigmapsf = _clip(1.0857 / snr * draw.u(0.9, 1.2), 0.02001, 0.19999)
    magap = magpsf + draw.n(0.03, 0.08)
    sigmagap = max(sigmapsf * draw.u(0.3, 1.2), 0.005)
    xpos = _clip(profile.xpos + draw.n(0.0, 1.5), 1.0, _CCD_SHAPE[0] - 1.0)
    ypos = _clip(profile.ypos + draw.n(0.0, 1.5), 1.0, _CCD_SHAPE[1] - 1.0)
    # Astrometric scatter of ~0.1 arcsec between detections of one object.
    ra, dec = _offset_radec(profile.ra, profile.dec, abs(draw.n(0.0, 0.1)), draw.u(0.0, 2 * math.pi))
    aimage = e.fwhm * draw.u(0.38, 0.5)
    elong = draw.u(1.0, 1.4)
    bimage = aimage / elong
    if classtar is RANDOM:
        classtar = _clip(profile.classtar + draw.n(0.0, 0.02), 0.0, 1.0)
    dsnrms = draw.u(5.0, 150.0)
    ssnrms = draw.u(10.0, 300.0)
    ranr, decnr = profile.ranr_decnr
    near = profile.nearest
    candidate: dict[str, Any] = {
        "jd": e.jd,
        "fid": e.fid,
        "pid": e.pid,
        "diffmaglim": e.diffmaglim,
        "pdiffimfilename": e.diffim_filename(),
        "programpi": "Kulkarni",
        "programid": e.programid,
        "candid": e.pid * 10**6 + 10000 + tblid,
        "isdiffpos": "t" if profile.kind != "variable" or draw.p(0.5) else "f",
        "tblid": tblid,
        "nid": e.nid,
        "rcid": e.rcid,
        "field": e.field,
        "xpos": xpos,
        "ypos": ypos,
        "ra": ra,
        "dec": dec,
        "magpsf": magpsf,
        "sigmapsf": sigmapsf,
        "chipsf": math.exp(draw.n(0.7, 0.8)),
        "magap": magap,
        "sigmagap": sigmagap,
        "distnr": abs(near.dist + draw.n(0.0, 0.05)),
        "magnr": near.mag,
        "sigmagnr": profile.nr_sigmag,
        "chinr": profile.nr_chi,
        "sharpnr": profile.nr_sharp,
        "sky": draw.n(0.0, 1.5),
        "magdiff": magap - magpsf,
        "fwhm": e.fwhm,
        "classtar": None if classtar is None else float(classtar),
        "mindtoedge": min(xpos, ypos, _CCD_SHAPE[0] - xpos, _CCD_SHAPE[1] - ypos),
        "magfromlim": e.diffmaglim - magap,
        "seeratio": draw.u(0.7, 2.0),
        "aimage": aimage,
        "bimage": bimage,
        "aimagerat": aimage / e.fwhm,
        "bimagerat": bimage / e.fwhm,
        "elong": elong,
        "nneg": draw.i(0, 8),
        "nbad": 0 if draw.p(0.9) else draw.i(1, 3),
        "rb": float(draw.gen.beta(5.0, 1.5)),
        "ssdistnr": draw.u(0.0, 3.0) if profile.kind == "asteroid" else -999.0,
        "ssmagnr": profile.ssmagnr if profile.kind == "asteroid" else -999.0,
        "ssnamenr": profile.ssnamenr,
        "sumrat": draw.u(0.8, 1.0),
        "magapbig": magap + draw.n(0.0, 0.02),
        "sigmagapbig": sigmagap * 1.07,
        "ranr": ranr,
        "decnr": decnr,
        "ndethist": 1,
        "ncovhist": 1,
        "jdstarthist": e.jd,
        "jdendhist": e.jd,
        "scorr": round(snr * draw.u(0.8, 1.3), 6),
        "tooflag": 0 if draw.p(0.98) else 1,
        "nmtchps": profile.nmtchps,
        "rfid": e.rfid,
        "jdstartref": profile.refs[e.fid][0],
        "jdendref": profile.refs[e.fid][1],
        "nframesref": profile.refs[e.fid][2],
        "rbversion": _RB_VERSION,
        "dsnrms": dsnrms,
        "ssnrms": ssnrms,
        "dsdiff": dsnrms - ssnrms,
        "magzpsci": e.magzpsci,
        "magzpsciunc": e.magzpsciunc,
        "magzpscirms": e.magzpscirms,
        "nmatches": draw.i(300, 3000),
        "clrcoeff": e.clrcoeff,
        "clrcounc": e.clrcounc,
        "zpclrcov": draw.n(0.0, 5e-6),
        "zpmed": e.magzpsci + draw.u(0.0, 0.1),
        "clrmed": draw.u(0.4, 1.0),
        "clrrms": draw.u(0.1, 0.3),
        "neargaia": profile.gaia[0],
        "neargaiabright": profile.gaia[1],
        "maggaia": profile.gaia[2],
        "maggaiabright": profile.gaia[3],
        "exptime": e.exptime,
        "drb": float(draw.gen.beta(6.0, 1.0)),
        "drbversion": _DRB_VERSION,
    }
    for rank, ps in enumerate(profile.ps1, start=1):
        for key, value in ps.items():
            candidate[f"{key}{rank}"] = value
    return _round_floats(candidate, _CANDIDATE_FLOATS)


def _as_prv(profile: _Profile, candidate: dict[str, Any], exposure: _Exposure) -> dict[str, Any]:
    """A detection as it appears in a later alert's ``prv_candidates``."""
    prv = {name: candidate[name] for name in _PRV_NAMES}
    prv["pdiffimfilename"] = exposure.diffim_filename(archive=True)
    if profile.kind != "asteroid":
        # Real histories carry null, not the -999 / "null" placeholders of the candidate.
        prv["ssdistnr"] = prv["ssmagnr"] = prv["ssnamenr"] = None
    return prv


def _upper_limit(exposure: _Exposure) -> dict[str, Any]:
    """A non-detection: the exposure's identity and limit, every measured quantity null."""
    e = exposure
    prv: dict[str, Any] = dict.fromkeys(_PRV_NAMES)
    prv.update(
        jd=e.jd,
        fid=e.fid,
        pid=e.pid,
        diffmaglim=e.diffmaglim,
        pdiffimfilename=e.diffim_filename(archive=True),
        programpi="Kulkarni",
        programid=e.programid,
        nid=e.nid,
        rcid=e.rcid,
        field=e.field,
        magzpsci=e.magzpsci,
        magzpsciunc=e.magzpsciunc,
        magzpscirms=e.magzpscirms,
        clrcoeff=e.clrcoeff,
        clrcounc=e.clrcounc,
        rbversion=_RB_VERSION,
    )
    return _round_floats(prv, _PRV_FLOATS)


def _make_fp_hist(
    draw: _Draw, profile: _Profile, exposure: _Exposure, mag: float, positive: bool | None
) -> dict[str, Any]:
    """Forced photometry at the object's position on ``exposure`` (a flux even when not detected)."""
    e = exposure
    true_flux = 0.0 if not math.isfinite(mag) else 10 ** (-0.4 * (mag - e.magzpsci))
    if profile.kind == "asteroid":
        true_flux = 0.0
    if profile.kind == "variable" and not positive and draw.p(0.5):
        true_flux = -true_flux  # a variable star can be fainter than in the reference image
    # diffmaglim is a 5-sigma limit, so the flux error is a fifth of the flux at the limit.
    flux_unc = 10 ** (-0.4 * (e.diffmaglim - e.magzpsci)) / 5.0 * draw.u(0.6, 1.0)
    ranr, decnr = profile.ranr_decnr
    fp = {
        "field": e.field,
        "rcid": e.rcid,
        "fid": e.fid,
        "pid": e.pid,
        "rfid": e.rfid,
        "sciinpseeing": e.fwhm * draw.u(1.0, 1.4),
        "scibckgnd": e.scibckgnd,
        "scisigpix": e.scisigpix,
        "magzpsci": e.magzpsci,
        "magzpsciunc": e.magzpsciunc,
        "magzpscirms": e.magzpscirms,
        "clrcoeff": e.clrcoeff,
        "clrcounc": e.clrcounc,
        "exptime": e.exptime,
        "adpctdif1": draw.u(0.03, 0.1),
        "adpctdif2": draw.u(0.03, 0.12),
        "diffmaglim": e.diffmaglim,
        "programid": e.programid,
        "jd": e.jd,
        "forcediffimflux": true_flux + draw.n(0.0, flux_unc),
        "forcediffimfluxunc": flux_unc,
        "procstatus": "0",
        "distnr": profile.nearest.dist,
        "ranr": ranr,
        "decnr": decnr,
        "magnr": profile.nearest.mag,
        "sigmagnr": profile.nr_sigmag,
        "chinr": profile.nr_chi,
        "sharpnr": profile.nr_sharp,
    }
    return _round_floats(fp, _FP_FLOATS)


# --------------------------------------------------------------------------------------------------------
# Cutouts
# --------------------------------------------------------------------------------------------------------
@functools.cache
def _fits_header_bytes() -> bytes:
    # Writing each stamp with astropy costs ~1.3 ms (0.8 s for 200 alerts); the header never changes, so
    # astropy builds it once and each stamp is header + big-endian data + zero padding, the same bytes
    # astropy's writeto would produce.
    header = fits.PrimaryHDU(np.zeros((_STAMP, _STAMP), dtype=np.float32)).header
    header["BUNIT"] = "DN"
    return header.tostring().encode("ascii")


def _fits_gz(image: np.ndarray, mtime: int) -> bytes:
    data = image.astype(">f4").tobytes()
    padding = b"\0" * (-len(data) % 2880)  # FITS data units fill whole 2880-byte blocks
    # gzip stamps the current time by default; the exposure time keeps the bytes reproducible.
    return gzip.compress(_fits_header_bytes() + data + padding, compresslevel=9, mtime=mtime)


def _add_source(image: np.ndarray, x0: float, y0: float, flux: float, sigma: float) -> None:
    if not (-4 * sigma < x0 < _STAMP + 4 * sigma and -4 * sigma < y0 < _STAMP + 4 * sigma):
        return
    gx = np.exp(-0.5 * ((_STAMP_AXIS - x0) / sigma) ** 2)
    gy = np.exp(-0.5 * ((_STAMP_AXIS - y0) / sigma) ** 2)
    image += np.outer(gy, gx) * (flux / (2.0 * math.pi * sigma * sigma))


def _make_cutouts(
    draw: _Draw, profile: _Profile, exposure: _Exposure, candidate: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """Science, reference and difference stamps: sky noise, the neighbours, and the candidate's PSF."""
    e = exposure
    gen = draw.gen
    centre_x = (_STAMP - 1) / 2 + (candidate["xpos"] % 1.0) - 0.5
    centre_y = (_STAMP - 1) / 2 + (candidate["ypos"] % 1.0) - 0.5
    sci_sigma = e.fwhm / 2.355
    ref_sigma = _clip(draw.n(2.0, 0.2), 1.6, 2.6) / 2.355
    ref_noise = e.scisigpix * draw.u(0.3, 0.6)  # the reference is a stack of 15-40 exposures
    ref_level = draw.u(150.0, 300.0)

    def flux(mag: float) -> float:
        return 10 ** (-0.4 * (mag - e.magzpsci))

    sci = gen.normal(e.scibckgnd, e.scisigpix, size=(_STAMP, _STAMP))
    ref = gen.normal(ref_level, ref_noise, size=(_STAMP, _STAMP))
    diff = gen.normal(0.0, math.hypot(e.scisigpix, ref_noise), size=(_STAMP, _STAMP))
    near = profile.nearest
    sources = [
        (
            centre_x + near.dist / _PIXEL_SCALE * math.cos(near.angle),
            centre_y + near.dist / _PIXEL_SCALE * math.sin(near.angle),
            near.mag,
            near.sigma_extra,
        )
    ]
    sources += [(x, y, mag, 0.0) for x, y, mag in profile.field_stars]
    for x, y, mag, extra in sources:
        _add_source(sci, x, y, flux(mag), math.hypot(sci_sigma, extra))
        _add_source(ref, x, y, flux(mag), math.hypot(ref_sigma, extra))
    sign = 1.0 if candidate["isdiffpos"] == "t" else -1.0
    candidate_flux = flux(candidate["magpsf"])
    _add_source(sci, centre_x, centre_y, sign * candidate_flux, sci_sigma)
    _add_source(diff, centre_x, centre_y, sign * candidate_flux, sci_sigma)

    mtime = int((e.jd - _JD_UNIX_EPOCH) * 86400.0) + 600  # written ~10 min after the exposure
    candid, pid = candidate["candid"], candidate["pid"]
    return {
        "cutoutScience": {
            "fileName": f"candid{candid}_pid{pid}_targ_sci.fits.gz",
            "stampData": _fits_gz(sci, mtime),
        },
        "cutoutTemplate": {"fileName": f"candid{candid}_ref.fits.gz", "stampData": _fits_gz(ref, mtime)},
        "cutoutDifference": {
            "fileName": f"candid{candid}_pid{pid}_targ_refmsci.fits.gz",
            "stampData": _fits_gz(diff, mtime),
        },
    }


# --------------------------------------------------------------------------------------------------------
# Alerts and packets
# --------------------------------------------------------------------------------------------------------
def _build_alert(
    draw: _Draw,
    profile: _Profile,
    jd: float,
    *,
    classtar: float | _Random | None = RANDOM,
    candid: int | None = None,
    taken_candids: set[int] | None = None,
) -> dict[str, Any]:
    """The alert of a new detection of ``profile`` at ``jd``; it then joins the object's history."""
    exposure = _make_exposure(draw, profile, jd)
    magpsf = _clip(profile.model_mag(exposure.jd, exposure.fid) + draw.n(0.0, 0.03), 15.0, 21.0)
    if magpsf > exposure.diffmaglim - 0.15:
        # An alert is a detection, so the image must reach deeper than the source.
        exposure = replace(exposure, diffmaglim=magpsf + draw.u(0.15, 0.6))
    candidate = _make_candidate(draw, profile, exposure, magpsf, tblid=draw.i(0, 300), classtar=classtar)
    if candid is not None:
        candidate["candid"] = int(candid)
    elif taken_candids is not None:
        while candidate["candid"] in taken_candids:  # same exposure and table slot: take the next slot
            candidate["candid"] += 1
            candidate["tblid"] += 1
    if taken_candids is not None:
        taken_candids.add(candidate["candid"])

    prv = [dict(entry) for entry in profile.prv[-_MAX_PRV:]]
    detection_jds = [entry["jd"] for entry in prv if entry["candid"] is not None]
    candidate["ndethist"] = profile.ndethist_base + len(detection_jds) + 1
    candidate["ncovhist"] = profile.ncovhist_base + len(prv) + 1
    if profile.first_detection_jd is not None:
        candidate["jdstarthist"] = round(profile.first_detection_jd, 7)
    else:
        candidate["jdstarthist"] = min([*detection_jds, exposure.jd])
    candidate["jdendhist"] = exposure.jd

    record: dict[str, Any] = {
        "schemavsn": SCHEMA_VERSION,
        "publisher": PUBLISHER,
        "objectId": profile.object_id,
        "candid": candidate["candid"],
        "candidate": candidate,
        "prv_candidates": prv,
        "fp_hists": [dict(entry) for entry in profile.fp[-_MAX_PRV:]],
        **_make_cutouts(draw, profile, exposure, candidate),
    }
    # A later alert of the same object carries this detection in its history, as ZTF's would.
    profile.prv.append(_as_prv(profile, candidate, exposure))
    profile.fp.append(_make_fp_hist(draw, profile, exposure, magpsf, candidate["isdiffpos"] == "t"))
    return record


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
    draw = _Draw(rng if rng is not None else np.random.default_rng())
    if jd is None:
        jd = DEFAULT_NIGHT_JD + draw.u(_NIGHT_UT_START, _NIGHT_UT_END)
    jd = float(jd)
    profile = _make_profile(draw, _night_start(jd), 1, set())
    if object_id is not None:
        profile.object_id = object_id
    return _build_alert(draw, profile, jd, classtar=classtar, candid=candid)


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
    draw = _Draw(np.random.default_rng(seed))
    n_objects = (n + 1) // 2
    counts = np.ones(n_objects, dtype=np.int64)
    np.add.at(counts, draw.gen.integers(0, n_objects, size=n - n_objects), 1)
    taken_ids: set[str] = set()
    profiles = [_make_profile(draw, night_jd, int(count), taken_ids) for count in counts]

    schedule: list[tuple[float, int]] = []
    for index, count in enumerate(counts):
        times = sorted(draw.u(_NIGHT_UT_START, _NIGHT_UT_END) for _ in range(count))
        for k in range(1, len(times)):
            times[k] = max(times[k], times[k - 1] + 0.021)  # ZTF revisits a field after >= 30 min
        schedule += [(round(night_jd + t, 7), index) for t in times]
    schedule.sort()

    taken_candids: set[int] = set()
    alerts = []
    for position, (jd, index) in enumerate(schedule, start=1):
        null = null_classtar_every > 0 and position % null_classtar_every == 0
        classtar: _Random | None = None if null else RANDOM
        alerts.append(_build_alert(draw, profiles[index], jd, classtar=classtar, taken_candids=taken_candids))
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
    # reads like ZTF's (namespaces, named reference to the cutout record). Parsing it costs ~0.5 ms.
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
