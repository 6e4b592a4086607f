"""Read bidirectional lesion measurements from a DICOM SR (TID 1500 Measurement Report).

:func:`read_measurement_report` walks the content tree of a TID 1500 SR (the one
:mod:`recist_tool.export.dicom_sr` writes, or one from a PACS / OHIF read) and returns, per
measurement group, the tracking identifier and UID, finding category and site, time point, and
the *Long Axis* / *Short Axis* NUM items with the coordinates they were inferred from: 2D SCOORD
end points (column, row) on a referenced image, or 3D SCOORD3D end points in patient space.
:func:`locate_lesions` puts them in patient coordinates (LPS mm) on the referenced CT volume and
derives a seed for each lesion (where the two axes cross, else the long axis's midpoint), ready
for ``recist batch``. Files only; no database.

Axis concepts are recognised by code (SCT 103339001 / 103340004, legacy SRT G-A185 / G-A186) or
by code meaning ("Long Axis", "Short Axis", any case); lengths in mm, cm or m are converted to mm.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.multival import MultiValue

from recist_tool.errors import DicomLoadError, GeometryError, InputError
from recist_tool.io.dicom_codes import TRACKING_PREFIXES, category_from_code, organ_from_code
from recist_tool.volume import Volume

__all__ = ["ImportedLesion", "SrAxis", "SrGroup", "SrReport", "locate_lesions",
           "read_measurement_report"]

_LONG = {("103339001", "SCT"), ("G-A185", "SRT")}
_SHORT = {("103340004", "SCT"), ("G-A186", "SRT")}
_VOLUME = {("118565006", "SCT"), ("G-D705", "SRT")}
_UNITS_TO_MM = {"mm": 1.0, "cm": 10.0, "m": 1000.0, "um": 0.001}
_UNITS_TO_ML = {"ml": 1.0, "mL": 1.0, "cm3": 1.0, "l": 1000.0, "mm3": 0.001}
_LESION_CODE = re.compile(r"^(T|NT|NL|NLT|NLNT)\d{1,3}$", re.IGNORECASE)
#: End points farther than this (mm) from the plane of the slice they reference are refused.
PLANE_TOLERANCE_MM = 0.5


@dataclass(frozen=True)
class SrAxis:
    """One axis NUM item and the coordinates it was inferred from.

    Attributes
    ----------
    length_mm : float or None
        The measured value in mm.
    image_coords : ndarray or None
        ``(n, 2)`` SCOORD (column, row) image coordinates (``0.5, 0.5`` = centre of the top-left
        pixel), with ``sop_instance_uid`` / ``frame`` of the image they lie on.
    sop_instance_uid : str or None
    frame : int or None
        1-based frame number for multi-frame images.
    lps : ndarray or None
        ``(n, 3)`` SCOORD3D points in patient coordinates (LPS mm), when the SR gave those.
    """

    length_mm: float | None
    image_coords: np.ndarray | None = None
    sop_instance_uid: str | None = None
    frame: int | None = None
    lps: np.ndarray | None = None


@dataclass(frozen=True)
class SrGroup:
    """One measurement group of the SR."""

    tracking_identifier: str | None
    tracking_uid: str | None
    lesion_id: str | None
    category: str | None
    organ: str
    time_point: str | None
    long: SrAxis
    short: SrAxis | None
    volume_ml: float | None


@dataclass(frozen=True)
class SrReport:
    """What :func:`read_measurement_report` read from one SR file.

    ``patient_id`` is the DICOM PatientID of the SR, for matching a subject in the trial database;
    it is never written into exports.
    """

    path: str
    study_uid: str | None
    study_date: str | None
    patient_id: str | None
    trial_subject_id: str | None
    observer: str | None
    groups: tuple[SrGroup, ...]
    skipped: tuple[str, ...]


@dataclass(frozen=True)
class ImportedLesion:
    """A lesion of the SR placed on the CT: end points and seed in LPS mm.

    Attributes
    ----------
    lesion_id, category, organ, nodal
        ``category`` is ``TARGET`` unless the SR said otherwise; ``nodal`` follows the organ.
    long_axis_mm, short_axis_mm : float or None
        As the SR states them (not re-measured).
    long_lps, short_lps : ndarray or None
        ``(2, 3)`` end points.
    slice_index : int
        Slice of the CT the axes lie on.
    seed_lps : ndarray
        ``(3,)`` where the axes cross (else the long axis's midpoint).
    tracking_uid : str or None
    volume_ml : float or None
    """

    lesion_id: str
    category: str
    organ: str
    nodal: bool
    long_axis_mm: float | None
    short_axis_mm: float | None
    long_lps: np.ndarray
    short_lps: np.ndarray | None
    slice_index: int
    seed_lps: np.ndarray
    tracking_uid: str | None = None
    volume_ml: float | None = None


# --- reading the content tree ---------------------------------------------------------------------

def _code(item, seq: str = "ConceptNameCodeSequence") -> tuple[str, str, str]:
    s = item.get(seq)
    if not s:
        return ("", "", "")
    c = s[0]
    value = str(c.get("CodeValue") or c.get("LongCodeValue") or c.get("URNCodeValue") or "")
    return value, str(c.get("CodingSchemeDesignator", "")), str(c.get("CodeMeaning", ""))


def _is(item, codes: set[tuple[str, str]], meaning: str) -> bool:
    value, scheme, mean = _code(item)
    return (value, scheme) in codes or mean.strip().lower() == meaning


def _children(item) -> list:
    return list(item.get("ContentSequence") or [])


def _find_containers(items, value: str) -> list:
    """Containers with concept ``(value, DCM)`` anywhere below ``items`` (depth first)."""
    out = []
    for it in items:
        if it.get("ValueType") == "CONTAINER" and _code(it)[:2] == (value, "DCM"):
            out.append(it)
        else:
            out.extend(_find_containers(_children(it), value))
    return out


def _num_value(item, table: dict[str, float]) -> float | None:
    mv = item.get("MeasuredValueSequence")
    if not mv:
        return None
    unit = _code(mv[0], "MeasurementUnitsCodeSequence")[0]
    factor = table.get(unit)
    if factor is None:
        return None
    return float(mv[0].NumericValue) * factor


def _axis(item) -> SrAxis:
    length = _num_value(item, _UNITS_TO_MM)
    for ch in _children(item):
        vt = ch.get("ValueType")
        if vt == "SCOORD":
            data = np.asarray([float(v) for v in ch.GraphicData], dtype=np.float64).reshape(-1, 2)
            uid, frame = None, None
            for img in _children(ch):
                ref = img.get("ReferencedSOPSequence")
                if img.get("ValueType") == "IMAGE" and ref:
                    uid = str(ref[0].ReferencedSOPInstanceUID)
                    frames = ref[0].get("ReferencedFrameNumber")
                    if frames is not None and frames != "":
                        vals = list(frames) if isinstance(frames, MultiValue | list | tuple) \
                            else [frames]
                        frame = int(vals[0])
            return SrAxis(length, image_coords=data, sop_instance_uid=uid, frame=frame)
        if vt == "SCOORD3D":
            data = np.asarray([float(v) for v in ch.GraphicData], dtype=np.float64).reshape(-1, 3)
            return SrAxis(length, lps=data)
    return SrAxis(length)


def _lesion_id(tracking: str | None) -> str | None:
    if not tracking:
        return None
    for prefix in TRACKING_PREFIXES:
        if tracking.startswith(prefix + ":"):
            tail = tracking[len(prefix) + 1:].strip()
            return tail.upper() if _LESION_CODE.match(tail) else None
    t = tracking.strip()
    return t.upper() if _LESION_CODE.match(t) else None


def _group(g, n: int) -> tuple[SrGroup | None, str | None]:
    tracking = uid = time_point = category = None
    organ = ""
    long = short = None
    volume = None
    for it in _children(g):
        value, scheme, meaning = _code(it)
        vt = it.get("ValueType")
        if (value, scheme) == ("112039", "DCM") and vt == "TEXT":
            tracking = str(it.TextValue)
        elif (value, scheme) == ("112040", "DCM") and vt == "UIDREF":
            uid = str(it.UID)
        elif meaning.strip().lower() == "time point" and vt == "TEXT":
            time_point = str(it.TextValue)
        elif vt == "CODE" and (value, scheme) == ("276214006", "SCT"):
            category = category_from_code(*_code(it, "ConceptCodeSequence")[:2])
        elif vt == "CODE" and (value, scheme) in {("363698007", "SCT"), ("G-C0E3", "SRT")}:
            organ = organ_from_code(*_code(it, "ConceptCodeSequence"))
        elif vt == "NUM" and _is(it, _LONG, "long axis"):
            long = _axis(it)
        elif vt == "NUM" and _is(it, _SHORT, "short axis"):
            short = _axis(it)
        elif vt == "NUM" and _is(it, _VOLUME, "volume"):
            volume = _num_value(it, _UNITS_TO_ML)
    label = tracking or f"measurement group {n}"
    if long is None:
        return None, f"{label}: no Long Axis measurement"
    if long.image_coords is None and long.lps is None:
        return None, f"{label}: the Long Axis has no coordinates"
    return SrGroup(tracking, uid, _lesion_id(tracking), category, organ, time_point, long, short,
                   volume), None


def read_measurement_report(path: str | os.PathLike[str]) -> SrReport:
    """Read the measurement groups with a Long Axis of a TID 1500 SR.

    Parameters
    ----------
    path : path-like
        A DICOM SR file.

    Returns
    -------
    SrReport
        Groups in document order; ``skipped`` says which groups were left out and why.

    Raises
    ------
    InputError
        Missing file.
    DicomLoadError
        Not a DICOM SR, not a TID 1500 Measurement Report, or no group with a Long Axis.
    """
    import pydicom

    p = Path(path)
    if not p.is_file():
        raise InputError(f"no such file: {p}")
    try:
        ds = pydicom.dcmread(p)
    except Exception as exc:
        raise DicomLoadError(f"{p}: not a readable DICOM file ({exc})") from exc
    if str(ds.get("Modality", "")) != "SR" or "ContentSequence" not in ds:
        raise DicomLoadError(f"{p}: not a DICOM structured report")
    templates = [str(t.get("TemplateIdentifier", "")) for t in ds.get("ContentTemplateSequence") or []]
    title = _code(ds)[:2]
    if "1500" not in templates and title != ("126000", "DCM"):
        raise DicomLoadError(f"{p}: not a TID 1500 Measurement Report (template "
                             f"{', '.join(templates) or 'not given'})")
    groups, skipped = [], []
    for n, g in enumerate(_find_containers(_children(ds), "125007"), start=1):
        got, why = _group(g, n)
        if got is None:
            skipped.append(why or "")
        else:
            groups.append(got)
    if not groups:
        raise DicomLoadError(f"{p}: no measurement group with a Long Axis"
                             + (f" ({'; '.join(skipped)})" if skipped else ""))
    observer = None
    for it in _children(ds):
        if _code(it)[:2] == ("121008", "DCM") and it.get("ValueType") == "PNAME":
            observer = str(it.PersonName).rstrip("^")
            break

    def _s(kw: str) -> str | None:
        v = ds.get(kw)
        return str(v) if v not in (None, "") else None

    return SrReport(str(p), _s("StudyInstanceUID"), _s("StudyDate"), _s("PatientID"),
                    _s("ClinicalTrialSubjectID"), observer, tuple(groups), tuple(skipped))


# --- placing the measurements on the CT -------------------------------------------------------------

def _slice_of(volume: Volume, uid: str | None, frame: int | None) -> int:
    uids = volume.meta.sop_instance_uids
    if not uids:
        raise GeometryError("the CT volume has no SOP Instance UIDs (load it from DICOM)")
    files = volume.meta.extra.get("slice_files") or ()
    for k, u in enumerate(uids):
        if u != uid:
            continue
        if frame is None or not files or files[k][1] is None or int(files[k][1]) + 1 == frame:
            return k
    raise GeometryError(f"the SR references image {uid}"
                        + (f" frame {frame}" if frame else "") + ", which is not in this CT series")


def _to_lps(volume: Volume, axis: SrAxis) -> tuple[np.ndarray, int]:
    if axis.lps is not None:
        idx = volume.lps_to_index(axis.lps)
        k = int(np.rint(idx[0, 0]))
        plane = np.abs(idx[:, 0] - k) * volume.spacing[0]
        if not 0 <= k < volume.shape[0] or np.any(plane > PLANE_TOLERANCE_MM):
            raise GeometryError("3D axis end points do not lie on a slice of the CT series")
        return axis.lps.copy(), k
    k = _slice_of(volume, axis.sop_instance_uid, axis.frame)
    c = axis.image_coords
    idx = np.stack([np.full(len(c), float(k)), c[:, 1] - 0.5, c[:, 0] - 0.5], axis=1)
    return volume.index_to_lps(idx), k


def _seed(long: np.ndarray, short: np.ndarray | None) -> np.ndarray:
    """Where the two axes cross (when they do, within both segments), else the long axis's middle."""
    mid = long.mean(axis=0)
    if short is None:
        return mid
    d1, d2 = long[1] - long[0], short[1] - short[0]
    a = np.stack([d1, -d2], axis=1)
    st, *_ = np.linalg.lstsq(a, short[0] - long[0], rcond=None)
    s, t = float(st[0]), float(st[1])
    p, q = long[0] + s * d1, short[0] + t * d2
    if 0.0 <= s <= 1.0 and 0.0 <= t <= 1.0 and float(np.linalg.norm(p - q)) < 1.0:
        return (p + q) / 2.0
    return mid


def locate_lesions(report: SrReport, volume: Volume) -> list[ImportedLesion]:
    """Place the report's axes on ``volume`` (the CT they were measured on).

    Lesion ids come from the tracking identifier (``...:Bidirectional:T01`` or ``T01``); groups
    without one are numbered ``T01``, ``T02`` ... (``NT01`` ... for non-target) after the ids in
    use.

    Raises
    ------
    GeometryError
        An axis on an image that is not in ``volume``, or end points off its slices.
    """
    used = {g.lesion_id for g in report.groups if g.lesion_id}
    out = []
    for g in report.groups:
        category = g.category or "TARGET"
        lid = g.lesion_id
        if lid is None:
            prefix = {"TARGET": "T", "NON-TARGET": "NT", "NEW": "NL"}[category]
            n = 1
            while f"{prefix}{n:02d}" in used:
                n += 1
            lid = f"{prefix}{n:02d}"
            used.add(lid)
        long, k = _to_lps(volume, g.long)
        short = None
        if g.short is not None and (g.short.image_coords is not None or g.short.lps is not None):
            short, k2 = _to_lps(volume, g.short)
            if k2 != k:
                raise GeometryError(f"{lid}: long and short axes lie on different slices")
        if long.shape != (2, 3) or (short is not None and short.shape != (2, 3)):
            raise GeometryError(f"{lid}: an axis polyline must have exactly two points")
        out.append(ImportedLesion(
            lesion_id=lid, category=category, organ=g.organ, nodal=g.organ == "lymph node",
            long_axis_mm=g.long.length_mm,
            short_axis_mm=None if g.short is None else g.short.length_mm,
            long_lps=long, short_lps=short, slice_index=k, seed_lps=_seed(long, short),
            tracking_uid=g.tracking_uid, volume_ml=g.volume_ml))
    return out
