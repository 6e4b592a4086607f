"""Read lesion measurements from a DICOM SR (PS3.16 TID 1500 Measurement Report).

:func:`read_measurement_report` walks the content tree of a TID 1500 SR (the one
:mod:`recist_tool.export.dicom_sr` writes, or one from a PACS, OHIF/dcmjs, highdicom or dcmqi)
and turns every measurement group into one :class:`SrGroup` record: tracking identifier and UID,
finding category and site, time point, and where the lesion's axes come from. One parser per
template of PS3.16 fills the same record:

* **TID 1501** *Measurement Group* (OHIF/dcmjs, our own export): *Long Axis* / *Short Axis* NUM
  items (a Bidirectional), or a single *Length* / *Diameter* NUM (a ruler: a long-axis-only
  target), each inferred from a 2-point SCOORD (column, row on a referenced image) or SCOORD3D
  (LPS mm) polyline.
* **TID 1410** *Planar ROI Measurements* (highdicom): the group's *Image Region* (DCM 111030) is
  a closed POLYLINE / POLYGON outline, a CIRCLE or an ELLIPSE; the long axis is the outline's
  longest chord (its diameter, the ellipse's major axis), the short axis the longest chord
  perpendicular to it. A *Long Axis* / *Diameter* / *Length* NUM gives the stated value.
* **TID 1411** *Volumetric ROI Measurements* (dcmqi): a *Referenced Segment* (DCM 121191) of a
  DICOM SEG, measured on the CT like a mask (:func:`recist_tool.measure.mask.measure_mask`), or
  one *Image Region* outline per slice (the slice with the longest chord is measured).

Lengths in mm, cm, m or µm (UCUM ``um``) are converted to mm; a length in any other unit (``1``,
``px``: an uncalibrated image) is refused with a one-line error naming the group, never imported
as an empty value. Groups that hold no length or region at all (angles, arrows, intensity
statistics) are left out and listed in :attr:`SrReport.skipped`.

:func:`locate_lesions` puts the records in patient coordinates (LPS mm) on the referenced CT and
derives a seed for each lesion (where the two axes cross, else the long axis's midpoint), ready
for ``recist batch``. Files only; no database.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import cast

import numpy as np
from pydicom.multival import MultiValue

from recist_tool.errors import DicomLoadError, GeometryError, InputError
from recist_tool.io.dicom_codes import TRACKING_PREFIXES, category_from_code, organ_from_code
from recist_tool.volume import Volume

__all__ = ["PLANE_TOLERANCE_MM", "ImportedLesion", "SegmentRef", "SrAxis", "SrGroup", "SrReport",
           "find_seg", "length_to_mm", "locate_lesions", "longest_chord", "perpendicular_chord",
           "read_measurement_report"]

_LONG = {("103339001", "SCT"), ("G-A185", "SRT"), ("C0522487", "UMLS")}
_SHORT = {("103340004", "SCT"), ("G-A186", "SRT"), ("C0522488", "UMLS")}
_MAJOR = {("131187009", "SCT"), ("G-A193", "SRT")}
_MINOR = {("131188004", "SCT"), ("G-A194", "SRT")}
_LENGTH = {("410668003", "SCT"), ("G-D7FE", "SRT"), ("C1444754", "UMLS")}
_DIAMETER = {("81827009", "SCT"), ("M-02550", "SRT"), ("C1301886", "UMLS")}
_VOLUME = {("118565006", "SCT"), ("G-D705", "SRT")}
_IMAGE_REGION = ("111030", "DCM")
_REFERENCED_SEGMENT = ("121191", "DCM")
_SEGMENTATION_FRAME = ("121214", "DCM")
_SOURCE_SERIES = ("121232", "DCM")
#: UCUM length units (and the spellings seen in the wild) → mm.
_UNITS_TO_MM = {"mm": 1.0, "cm": 10.0, "m": 1000.0, "um": 0.001, "µm": 0.001, "μm": 0.001}
_UNITS_TO_ML = {"ml": 1.0, "mL": 1.0, "cm3": 1.0, "l": 1000.0, "L": 1000.0, "mm3": 0.001}
_LESION_CODE = re.compile(r"^(T|NT|NL|NLT|NLNT)\d{1,3}$", re.IGNORECASE)
#: End points farther than this (mm) from the plane of the slice they reference are refused.
PLANE_TOLERANCE_MM = 0.5
#: At most this many files are opened looking for a referenced SEG.
SEG_SEARCH_LIMIT = 20000


@dataclass(frozen=True)
class SrAxis:
    """One length measurement (or region) and the coordinates it was inferred from.

    Attributes
    ----------
    length_mm : float or None
        The measured value in mm (None: none stated; an outline's is measured on the CT).
    image_coords : ndarray or None
        ``(n, 2)`` SCOORD (column, row) image coordinates (``0.5, 0.5`` = centre of the top-left
        pixel), with ``sop_instance_uid`` / ``frame`` of the image they lie on.
    sop_instance_uid : str or None
    frame : int or None
        1-based frame number for multi-frame images.
    lps : ndarray or None
        ``(n, 3)`` SCOORD3D points in patient coordinates (LPS mm), when the SR gave those.
    graphic_type : str
        ``POLYLINE`` (a 2-point caliper line, or a closed outline for a region), ``POLYGON``,
        ``CIRCLE`` (centre, a point on the circle), ``ELLIPSE`` (major then minor axis end
        points), ``POINT`` or ``MULTIPOINT``.
    """

    length_mm: float | None
    image_coords: np.ndarray | None = None
    sop_instance_uid: str | None = None
    frame: int | None = None
    lps: np.ndarray | None = None
    graphic_type: str = "POLYLINE"

    @property
    def has_coords(self) -> bool:
        """True when the item carries SCOORD or SCOORD3D points."""
        return self.image_coords is not None or self.lps is not None


@dataclass(frozen=True)
class SegmentRef:
    """A segment of a DICOM SEG that a TID 1411 group references (*Referenced Segment*)."""

    sop_instance_uid: str
    segment_number: int
    sop_class_uid: str | None = None


@dataclass(frozen=True)
class SrGroup:
    """One measurement group of the SR, whichever template it follows.

    Attributes
    ----------
    tracking_identifier, tracking_uid : str or None
    lesion_id : str or None
        A lesion code read from the tracking identifier (``T01``, ``…:Bidirectional:T01``).
    category : str or None
        ``TARGET``, ``NON-TARGET`` or ``NEW`` from the finding category; None when not stated.
    organ : str
    time_point : str or None
    long : SrAxis
        The long axis (TID 1501: *Long Axis*, or a *Length* / *Diameter* ruler). For a region or a
        segment the stated value only (no coordinates; ``sop_instance_uid`` names the image the
        region lies on).
    short : SrAxis or None
    volume_ml : float or None
    template : str
        ``"1501"``, ``"1410"`` or ``"1411"``.
    label : str
        How errors name the group: ``measurement group N (tracking identifier)``.
    regions : tuple of SrAxis
        TID 1410 / 1411 *Image Region* outlines (SCOORD / SCOORD3D); the longest is measured.
    segment : SegmentRef or None
        TID 1411 (or 1410) reference to a SEG segment.
    source_series_uid : str or None
        TID 1411 *Source series for segmentation*.
    """

    tracking_identifier: str | None
    tracking_uid: str | None
    lesion_id: str | None
    category: str | None
    organ: str
    time_point: str | None
    long: SrAxis
    short: SrAxis | None
    volume_ml: float | None
    template: str = "1501"
    label: str = ""
    regions: tuple[SrAxis, ...] = ()
    segment: SegmentRef | None = None
    source_series_uid: str | None = None


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
        As the SR states them (not re-measured); measured on the CT from an outline or a SEG
        segment when the SR states none. ``short_axis_mm`` is None for a single-line (Length)
        measurement: a long-axis-only target.
    long_lps, short_lps : ndarray or None
        ``(2, 3)`` end points.
    slice_index : int
        Slice of the CT the axes lie on.
    seed_lps : ndarray
        ``(3,)`` where the axes cross (else the long axis's midpoint).
    tracking_uid : str or None
    volume_ml : float or None
    template : str
        The PS3.16 template of the group it came from (``1501``, ``1410``, ``1411``).
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
    template: str = "1501"


# --- reading the content tree ---------------------------------------------------------------------

def _code(item, seq: str = "ConceptNameCodeSequence") -> tuple[str, str, str]:
    s = item.get(seq)
    if not s:
        return ("", "", "")
    c = s[0]
    value = str(c.get("CodeValue") or c.get("LongCodeValue") or c.get("URNCodeValue") or "")
    return value, str(c.get("CodingSchemeDesignator", "")), str(c.get("CodeMeaning", ""))


def _is(item, codes: set[tuple[str, str]], *meanings: str) -> bool:
    value, scheme, mean = _code(item)
    return (value, scheme) in codes or mean.strip().lower() in meanings


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


def length_to_mm(value: float, unit: str) -> float | None:
    """``value`` in UCUM length ``unit`` (mm, cm, m, um/µm) in mm; None for any other unit."""
    factor = _UNITS_TO_MM.get(unit.strip())
    return None if factor is None else float(value) * factor


def _measured(item) -> tuple[float, str, str] | None:
    """``(value, unit code, unit meaning)`` of a NUM item; None without a measured value."""
    mv = item.get("MeasuredValueSequence")
    if not mv or mv[0].get("NumericValue") in (None, ""):
        return None
    unit, _, meaning = _code(mv[0], "MeasurementUnitsCodeSequence")
    return float(mv[0].NumericValue), unit, meaning


def _length(item, label: str) -> float | None:
    """A length NUM's value in mm; a unit that is not a length (``1``, ``px``) is refused."""
    got = _measured(item)
    if got is None:
        return None
    value, unit, meaning = got
    mm = length_to_mm(value, unit)
    if mm is None:
        name = _code(item)[2] or "length"
        shown = f"'{unit}'" + (f" ({meaning})" if meaning and meaning != unit else "")
        raise DicomLoadError(f"{label}: {name} {value:g} is in unit {shown}, not a length "
                             "(mm, cm, m, um); measure on calibrated images or leave the group out")
    return mm


def _volume_ml(item) -> float | None:
    got = _measured(item)
    if got is None:
        return None
    factor = _UNITS_TO_ML.get(got[1].strip())
    return None if factor is None else got[0] * factor


def _frame(ref) -> int | None:
    frames = ref.get("ReferencedFrameNumber")
    if frames is None or frames == "":
        return None
    vals = list(frames) if isinstance(frames, MultiValue | list | tuple) else [frames]
    return int(vals[0])


def _scoord(ch, length: float | None) -> SrAxis | None:
    """An SCOORD / SCOORD3D item as an :class:`SrAxis` (None for other value types)."""
    vt = ch.get("ValueType")
    gtype = str(ch.get("GraphicType", "POLYLINE")).upper()
    if vt == "SCOORD":
        data = np.asarray([float(v) for v in ch.GraphicData], dtype=np.float64).reshape(-1, 2)
        uid, frame = None, None
        for img in _children(ch):
            ref = img.get("ReferencedSOPSequence")
            if img.get("ValueType") == "IMAGE" and ref:
                uid = str(ref[0].ReferencedSOPInstanceUID)
                frame = _frame(ref[0])
        return SrAxis(length, image_coords=data, sop_instance_uid=uid, frame=frame,
                      graphic_type=gtype)
    if vt == "SCOORD3D":
        data = np.asarray([float(v) for v in ch.GraphicData], dtype=np.float64).reshape(-1, 3)
        return SrAxis(length, lps=data, graphic_type=gtype)
    return None


def _axis(item, label: str) -> SrAxis:
    """A length NUM (TID 300) with the SCOORD / SCOORD3D it is INFERRED FROM, if any."""
    length = _length(item, label)
    for ch in _children(item):
        got = _scoord(ch, length)
        if got is not None:
            return got
    return SrAxis(length)


def _lesion_id(tracking: str | None) -> str | None:
    if not tracking:
        return None
    for prefix in TRACKING_PREFIXES:
        if tracking.startswith(prefix + ":"):
            tail = tracking[len(prefix) + 1:].strip()
            return tail.upper() if _LESION_CODE.match(tail) else None
    # other tools' "<tool>:<kind>:<code>" identifiers (a Length ruler named T02)
    t = tracking.rsplit(":", 1)[-1].strip() if tracking.count(":") >= 2 else tracking.strip()
    return t.upper() if _LESION_CODE.match(t) else None


@dataclass(frozen=True)
class _Head:
    """What every template's group states about the lesion (TID 1501 / 1410 / 1411 rows 1-10)."""

    tracking: str | None
    uid: str | None
    time_point: str | None
    category: str | None
    organ: str
    label: str


@dataclass(frozen=True)
class _Lengths:
    """A group's length NUM items (TID 300), each with its inferring coordinates."""

    long: SrAxis | None = None
    short: SrAxis | None = None
    ruler: SrAxis | None = None
    volume_ml: float | None = None

    @property
    def any(self) -> bool:
        return self.long is not None or self.short is not None or self.ruler is not None


def _head(g, n: int) -> _Head:
    tracking = uid = time_point = category = None
    organ = ""
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
        elif vt == "CONTAINER" and meaning.strip().lower() == "time point context":
            for ch in _children(it):
                if _code(ch)[2].strip().lower() == "time point" and ch.get("ValueType") == "TEXT":
                    time_point = str(ch.TextValue)
    label = f"measurement group {n}" + (f" ({tracking})" if tracking else "")
    return _Head(tracking, uid, time_point, category, organ, label)


def _lengths(g, label: str) -> _Lengths:
    """Long / Short Axis (Major / Minor Axis), the first Length or Diameter, and the Volume."""
    long = short = major = minor = ruler = None
    volume = None
    for it in _children(g):
        if it.get("ValueType") != "NUM":
            continue
        if _is(it, _LONG, "long axis"):
            long = _axis(it, label)
        elif _is(it, _SHORT, "short axis"):
            short = _axis(it, label)
        elif _is(it, _MAJOR, "major axis"):
            major = _axis(it, label)
        elif _is(it, _MINOR, "minor axis"):
            minor = _axis(it, label)
        elif _is(it, _LENGTH | _DIAMETER, "length", "diameter"):
            if ruler is None:
                ruler = _axis(it, label)
        elif _is(it, _VOLUME, "volume") and volume is None:
            volume = _volume_ml(it)
    return _Lengths(long or major, short or minor, ruler, volume)


def _group_record(head: _Head, long: SrAxis, short: SrAxis | None, volume: float | None,
                  template: str, **kw) -> SrGroup:
    return SrGroup(head.tracking, head.uid, _lesion_id(head.tracking), head.category, head.organ,
                   head.time_point, long, short, volume, template, head.label, **kw)


def _parse_1501(g, head: _Head) -> tuple[SrGroup | None, str | None]:
    """PS3.16 TID 1501 Measurement Group: a Bidirectional (Long Axis + Short Axis) or a single
    Length / Diameter line, each NUM inferred from its own 2-point SCOORD / SCOORD3D."""
    m = _lengths(g, head.label)
    long = m.long or m.ruler
    if long is None:
        if m.short is not None:
            raise DicomLoadError(f"{head.label}: a Short Axis without a Long Axis")
        return None, f"{head.label}: no Long Axis, Length or Diameter measurement"
    if not long.has_coords:
        raise DicomLoadError(f"{head.label}: the {'Long Axis' if m.long else 'Length'} has no "
                             "image coordinates (SCOORD / SCOORD3D) to place it on the CT")
    n = len(long.image_coords if long.image_coords is not None else cast(np.ndarray, long.lps))
    if m.long is None and n > 2:  # a path length along an open polyline, not a caliper
        return None, f"{head.label}: a Length along a {n}-point path, not a caliper line"
    short = m.short if m.long is not None else None
    return _group_record(head, long, short, m.volume_ml, "1501"), None


def _segment_ref(g) -> tuple[SegmentRef | None, str | None]:
    """The *Referenced Segment* / *Referenced Segmentation Frame* IMAGE item and the *Source
    series for segmentation* UID below it (TID 1411 rows 7-9, TID 1410 row 8)."""
    seg = series = None
    for it in _children(g):
        if _code(it)[:2] not in (_REFERENCED_SEGMENT, _SEGMENTATION_FRAME):
            continue
        ref = (it.get("ReferencedSOPSequence") or [None])[0]
        if it.get("ValueType") != "IMAGE" or ref is None:
            continue
        num = ref.get("ReferencedSegmentNumber")
        if isinstance(num, MultiValue | list | tuple):
            num = num[0] if len(num) else None
        seg = SegmentRef(str(ref.ReferencedSOPInstanceUID), int(num) if num not in (None, "")
                         else 0, str(ref.get("ReferencedSOPClassUID", "")) or None)
        for ch in _children(it):
            if _code(ch)[:2] == _SOURCE_SERIES and ch.get("ValueType") == "UIDREF":
                series = str(ch.UID)
    for it in _children(g):
        if series is None and _code(it)[:2] == _SOURCE_SERIES and it.get("ValueType") == "UIDREF":
            series = str(it.UID)
    return seg, series


def _parse_roi(g, head: _Head, template: str) -> tuple[SrGroup | None, str | None]:
    """TID 1410 / 1411: the lesion is the group's region(s) or referenced segment; the Long Axis /
    Diameter / Length NUM, when present, states its value."""
    m = _lengths(g, head.label)
    regions = tuple(r for r in (_scoord(it, None) for it in _children(g)
                                if _code(it)[:2] == _IMAGE_REGION) if r is not None)
    seg, series = _segment_ref(g)
    stated = m.long or m.ruler
    if stated is not None and stated.has_coords and stated.graphic_type == "POLYLINE":
        # explicit axis lines (as in TID 1501) win over the outline they were measured on
        return _group_record(head, stated, m.short if m.long is not None else None, m.volume_ml,
                             template, regions=regions, segment=seg,
                             source_series_uid=series), None
    if not regions and seg is None:
        if m.any:
            raise DicomLoadError(f"{head.label}: TID {template} group with a length measurement "
                                 "but no image region or segment to place it on the CT")
        return None, f"{head.label}: TID {template} group without region, segment or length"
    flat = [r for r in regions if r.graphic_type in ("POINT", "MULTIPOINT")]
    if regions and len(flat) == len(regions) and seg is None:
        if m.any:
            raise DicomLoadError(f"{head.label}: the region is a {flat[0].graphic_type}; it gives "
                                 "no line for the stated length")
        return None, f"{head.label}: a {flat[0].graphic_type} region without a length"
    regions = tuple(r for r in regions if r.graphic_type not in ("POINT", "MULTIPOINT"))
    if template == "1410" and len(regions) > 1:
        raise DicomLoadError(f"{head.label}: TID 1410 allows one image region; the group has "
                             f"{len(regions)}")
    where = regions[0] if regions else SrAxis(None)
    long = SrAxis(None if stated is None else stated.length_mm,
                  sop_instance_uid=where.sop_instance_uid, frame=where.frame)
    short = None if m.short is None else SrAxis(m.short.length_mm)
    return _group_record(head, long, short, m.volume_ml, template, regions=regions, segment=seg,
                         source_series_uid=series), None


def _parse_1410(g, head: _Head) -> tuple[SrGroup | None, str | None]:
    """PS3.16 TID 1410 Planar ROI Measurements and Qualitative Evaluations: one *Image Region*
    (closed polyline / polygon, circle, ellipse) or a referenced segmentation frame."""
    return _parse_roi(g, head, "1410")


def _parse_1411(g, head: _Head) -> tuple[SrGroup | None, str | None]:
    """PS3.16 TID 1411 Volumetric ROI Measurements and Qualitative Evaluations: a *Referenced
    Segment* of a DICOM SEG, or one *Image Region* per slice."""
    return _parse_roi(g, head, "1411")


_PARSERS = {"1501": _parse_1501, "1410": _parse_1410, "1411": _parse_1411}


def _template_of(g) -> str:
    """The group's template: its Content Template Sequence, else what it holds."""
    for t in g.get("ContentTemplateSequence") or []:
        tid = str(t.get("TemplateIdentifier", "")).strip()
        if tid in _PARSERS:
            return tid
    names = [_code(it)[:2] for it in _children(g)]
    if _REFERENCED_SEGMENT in names or names.count(_IMAGE_REGION) > 1:
        return "1411"
    if _IMAGE_REGION in names or _SEGMENTATION_FRAME in names:
        return "1410"
    return "1501"


def _one_record_per_lesion(groups: list[SrGroup]) -> list[SrGroup]:
    """Fold a TID 1410 / 1411 group that only references the SEG segment of a lesion a TID 1501
    group measures (the same Tracking UID; recist-tool's export writes both) into that record:
    the segment joins the lesion's lines instead of making a second lesion."""
    lines: dict[str | None, int] = {g.tracking_uid: i for i, g in enumerate(groups)
                                    if g.template == "1501" and g.tracking_uid}
    out, folded = list(groups), set()
    for i, g in enumerate(groups):
        j = lines.get(g.tracking_uid) if g.template != "1501" else None
        if j is not None and g.segment is not None and not g.regions and not g.long.has_coords:
            out[j] = replace(out[j], segment=g.segment, source_series_uid=g.source_series_uid)
            folded.add(i)
    return [g for i, g in enumerate(out) if i not in folded]


def read_measurement_report(path: str | os.PathLike[str]) -> SrReport:
    """Read the lesion measurement groups of a PS3.16 TID 1500 Measurement Report.

    Parameters
    ----------
    path : path-like
        A DICOM SR file.

    Returns
    -------
    SrReport
        One :class:`SrGroup` per usable group (TID 1501, 1410 or 1411), in document order (a
        TID 1411 group referencing the SEG segment of a TID 1501 group's lesion, same Tracking
        UID, folded into that one's record);
        ``skipped`` says which groups hold no lesion measurement (angles, arrows, statistics).

    Raises
    ------
    InputError
        Missing file.
    DicomLoadError
        Not a DICOM SR, not a TID 1500 Measurement Report, no group with a lesion measurement, or
        a group whose measurement cannot be imported: a length in a unit that is not one (``1``,
        ``px``), a line without coordinates, a region that is a point. One line, naming the
        measurement group.
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
        head = _head(g, n)
        try:
            got, why = _PARSERS[_template_of(g)](g, head)
        except (DicomLoadError, ValueError, TypeError, AttributeError) as exc:
            text = str(exc) if isinstance(exc, DicomLoadError) else f"{head.label}: malformed ({exc})"
            raise DicomLoadError(f"{p}: {text}") from exc
        if got is None:
            skipped.append(why or "")
        else:
            groups.append(got)
    groups = _one_record_per_lesion(groups)
    if not groups:
        raise DicomLoadError(f"{p}: no measurement group with a Long Axis, Length, Diameter, "
                             "region or segment" + (f" ({'; '.join(skipped)})" if skipped else ""))
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
    c = cast(np.ndarray, axis.image_coords)  # an axis without 3D points has image ones
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


def _plane(volume: Volume, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Origin and orthonormal in-plane directions (row, column) of slice ``k`` in LPS."""
    a = volume.index_to_lps(np.array([[k, 0.0, 0.0], [k, 0.0, 1.0], [k, 1.0, 0.0]]))
    e1 = (a[1] - a[0]) / np.linalg.norm(a[1] - a[0])
    e2 = a[2] - a[0]
    e2 = e2 - (e2 @ e1) * e1
    return a[0], e1, e2 / np.linalg.norm(e2)


def longest_chord(poly: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two vertices of a 2D polygon (mm) farthest apart: its longest chord (diameter)."""
    from recist_tool.measure.diameters import convex_hull_2d

    hull = convex_hull_2d(poly)
    d = hull[:, None, :] - hull[None, :, :]
    i, j = np.unravel_index(int(np.argmax(np.einsum("ijk,ijk->ij", d, d))), d.shape[:2])
    return hull[i], hull[j]


def perpendicular_chord(poly: np.ndarray, p: np.ndarray, q: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray] | None:
    """Longest segment inside the closed 2D polygon ``poly`` perpendicular to ``p``–``q``.

    The inside of a line across a polygon changes length linearly between the lines through its
    vertices, so the longest one lies on (just beside) a vertex: each is tried. Concavities split
    a line into several inside segments; the longest one counts (not a hull width).
    """
    d = q - p
    length = float(np.linalg.norm(d))
    if length == 0.0:
        return None
    u = d / length
    v = np.array([-u[1], u[0]])
    t, s = (poly - p) @ u, (poly - p) @ v
    t2, s2 = np.roll(t, -1), np.roll(s, -1)
    eps = 1e-7 * length
    best, out = 0.0, None
    for tt in np.unique(np.concatenate([t - eps, t + eps])):
        cross = (t <= tt) != (t2 <= tt)
        if not np.any(cross):
            continue
        f = (tt - t[cross]) / (t2[cross] - t[cross])
        sv = np.sort(s[cross] + f * (s2[cross] - s[cross]))
        lens = sv[1::2] - sv[0::2]
        if lens.size and float(lens.max()) > best:
            i = int(np.argmax(lens))
            best = float(lens[i])
            base = p + tt * u
            out = (base + sv[2 * i] * v, base + sv[2 * i + 1] * v)
    return out


def _region_axes(volume: Volume, region: SrAxis, label: str
                 ) -> tuple[np.ndarray, np.ndarray | None, int]:
    """Long and short axis (LPS, ``(2, 3)`` each) of an outline, circle or ellipse region."""
    pts, k = _to_lps(volume, region)
    o, e1, e2 = _plane(volume, k)
    xy = np.stack([(pts - o) @ e1, (pts - o) @ e2], axis=1)
    gtype = region.graphic_type
    short2: np.ndarray | None
    if gtype == "CIRCLE" and len(xy) == 2:
        c, r = xy[0], xy[1] - xy[0]
        w = np.array([-r[1], r[0]])
        long2, short2 = np.stack([c - r, c + r]), np.stack([c - w, c + w])
    elif gtype == "ELLIPSE" and len(xy) == 4:
        long2, short2 = xy[:2], xy[2:]
        if np.linalg.norm(short2[1] - short2[0]) > np.linalg.norm(long2[1] - long2[0]):
            long2, short2 = short2, long2
    elif gtype in ("POLYLINE", "POLYGON") and len(xy) >= 3:
        poly = xy[:-1] if np.allclose(xy[0], xy[-1]) else xy
        if len(poly) < 3:
            raise GeometryError(f"{label}: the outline has fewer than 3 distinct points")
        p, q = longest_chord(poly)
        long2 = np.stack([p, q])
        got = perpendicular_chord(poly, p, q)
        short2 = None if got is None else np.stack(got)
    else:
        raise GeometryError(f"{label}: a {gtype} region of {len(xy)} points is not an outline, "
                            "circle or ellipse")

    def back(a: np.ndarray) -> np.ndarray:
        return o[None, :] + a[:, :1] * e1[None, :] + a[:, 1:2] * e2[None, :]

    return back(long2), None if short2 is None else back(short2), k


def _seg_files(places: Iterable[Path]) -> Iterable[Path]:
    n = 0
    for place in places:
        if place.is_file():
            n += 1
            yield place
            continue
        if not place.is_dir():
            continue
        for root, _dirs, files in os.walk(place):
            for f in sorted(files):
                n += 1
                if n > SEG_SEARCH_LIMIT:
                    return
                yield Path(root) / f


def find_seg(uid: str, places: Sequence[str | os.PathLike[str]]) -> Path | None:
    """The DICOM SEG file with SOP Instance UID ``uid`` in the given files / folders (walked)."""
    import pydicom

    seen: set[Path] = set()
    for f in _seg_files(Path(p) for p in places):
        r = f.resolve()
        if r in seen:
            continue
        seen.add(r)
        try:
            ds = pydicom.dcmread(f, stop_before_pixels=True,
                                 specific_tags=["SOPInstanceUID", "Modality"])
        except Exception:
            continue
        if str(ds.get("Modality", "")) == "SEG" and str(ds.get("SOPInstanceUID", "")) == uid:
            return f
    return None


def _segment_axes(volume: Volume, g: SrGroup, places: Sequence[str | os.PathLike[str]]):
    """RECIST axes of the referenced SEG segment measured on ``volume`` (an AxisMeasurement)."""
    from recist_tool.errors import MeasurementError
    from recist_tool.io.seg import read_seg
    from recist_tool.measure.mask import measure_mask

    assert g.segment is not None
    path = find_seg(g.segment.sop_instance_uid, places)
    if path is None:
        raise InputError(f"{g.label}: the SEG it references ({g.segment.sop_instance_uid}) is "
                         f"not in {', '.join(str(p) for p in places)}")
    number = g.segment.segment_number or None
    mask = read_seg(path, number, reference=volume)
    try:
        return measure_mask(volume, mask.array > 0, node=g.organ == "lymph node")
    except MeasurementError as exc:
        raise GeometryError(f"{g.label}: segment {number or 'any'} of {path.name}: {exc}") from exc


def _placed(volume: Volume, g: SrGroup, places: Sequence[str | os.PathLike[str]]):
    """``(long, short, slice, long mm, short mm, volume mL)`` of one record on the CT."""
    stated_long = g.long.length_mm
    stated_short = None if g.short is None else g.short.length_mm
    if g.long.has_coords:  # TID 1501 lines (or explicit lines in a ROI group)
        long, k = _to_lps(volume, g.long)
        short = None
        if g.short is not None and g.short.has_coords:
            short, k2 = _to_lps(volume, g.short)
            if k2 != k:
                raise GeometryError(f"{g.label}: long and short axes lie on different slices")
        if long.shape != (2, 3) or (short is not None and short.shape != (2, 3)):
            raise GeometryError(f"{g.label}: an axis polyline must have exactly two points")
        return long, short, k, stated_long, stated_short, g.volume_ml
    if g.regions:
        best = None
        for r in g.regions:
            long, short, k = _region_axes(volume, r, g.label)
            n = float(np.linalg.norm(long[1] - long[0]))
            if best is None or n > best[0]:
                best = (n, long, short, k)
        assert best is not None
        n, long, short, k = best
        ns = None if short is None else float(np.linalg.norm(short[1] - short[0]))
        return (long, short, k, n if stated_long is None else stated_long,
                ns if stated_short is None else stated_short, g.volume_ml)
    if g.segment is not None:
        m = _segment_axes(volume, g, places)
        short = None if m.short_axis_endpoints_lps is None else np.asarray(m.short_axis_endpoints_lps)
        return (np.asarray(m.long_axis_endpoints_lps, dtype=np.float64), short, m.slice_index,
                m.long_axis_mm if stated_long is None else stated_long,
                m.short_axis_mm if stated_short is None else stated_short,
                m.volume_ml if g.volume_ml is None else g.volume_ml)
    raise GeometryError(f"{g.label}: nothing to place on the CT")


def locate_lesions(report: SrReport, volume: Volume, *,
                   seg_places: Sequence[str | os.PathLike[str]] = ()) -> list[ImportedLesion]:
    """Place the report's records on ``volume`` (the CT they were measured on).

    TID 1501 lines are converted as they are; a TID 1410 / 1411 outline gives its longest chord as
    long axis and the longest chord perpendicular to it as short axis (in mm on the CT's geometry;
    a circle its diameters, an ellipse its axes); a TID 1411 SEG segment is measured on the CT
    like a mask. Values the SR states win over the measured ones.

    Lesion ids come from the tracking identifier (``...:Bidirectional:T01`` or ``T01``); groups
    without one are numbered ``T01``, ``T02`` ... (``NT01`` ... for non-target) after the ids in
    use.

    Parameters
    ----------
    report : SrReport
    volume : Volume
    seg_places : sequence of path-like
        Files / folders searched first for the SEG a TID 1411 group references; then the SR's
        folder and the CT's (``volume.meta.source``) are.

    Raises
    ------
    GeometryError
        An axis on an image that is not in ``volume``, or end points off its slices.
    InputError
        A referenced SEG that is not found.
    """
    places: list[str | os.PathLike[str]] = [*seg_places, Path(report.path).parent]
    src = volume.meta.source
    if src and Path(src).is_dir():
        places.append(src)
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
        long, short, k, long_mm, short_mm, vol_ml = _placed(volume, replace(g, label=g.label or lid),
                                                            places)
        out.append(ImportedLesion(
            lesion_id=lid, category=category, organ=g.organ, nodal=g.organ == "lymph node",
            long_axis_mm=long_mm, short_axis_mm=short_mm,
            long_lps=long, short_lps=short, slice_index=k, seed_lps=_seed(long, short),
            tracking_uid=g.tracking_uid, volume_ml=vol_ml, template=g.template))
    return out
