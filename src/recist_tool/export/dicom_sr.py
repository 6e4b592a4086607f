"""DICOM Structured Report export: one TID 1500 Measurement Report per subject timepoint.

Each measured lesion becomes one measurement group (TID 1501) that an OHIF / cornerstone viewer
reloads as an editable *Bidirectional* measurement:

* Tracking Identifier ``Cornerstone3DTools@^0.1.0:Bidirectional:<lesion id>`` and a Tracking
  Unique Identifier derived from trial, subject, reader and lesion id, so the same lesion carries
  the same UID at every timepoint (and in the DICOM SEG of :mod:`recist_tool.export.dicom_seg`);
* Finding (SCT *Lesion*), Finding Category (target / non-target at baseline, new finding),
  Finding Site (the organ's SNOMED CT code), Time Point (the visit);
* NUM *Long Axis* then NUM *Short Axis* in mm, each INFERRED FROM an SCOORD POLYLINE of its two
  end points in image coordinates (column, row; ``0.5, 0.5`` is the centre of the top-left pixel)
  on the referenced CT slice, then NUM *Volume* in mL;
* Algorithm Identification (segmenter and version) for automatic measurements.

The report's observer context names the reader (person, printed name and login) and recist-tool
(device); the reads of a ``recist batch`` account have the device alone as observer (TID 1002
observer type Device): no person made them.
The SR carries the patient and study modules of the CT it references: a DICOM object sent back to
a PACS must match the images' patient and study to be filed (see ``docs/export_pacs.md``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from recist_tool.errors import GeometryError, InputError
from recist_tool.export.dicom_derived import (
    SR_SERIES_NUMBER,
    conform_source,
    copy_trial_modules,
    person_name,
    stable_uid,
    tracking_identifier,
    tracking_uid,
)
from recist_tool.export.dicom_seg import planned_seg, seg_key
from recist_tool.io.dicom_codes import (
    FINDING,
    LONG_AXIS,
    SHORT_AXIS,
    UNIT_ML,
    UNIT_MM,
    VOLUME,
    category_code,
    organ_code,
)
from recist_tool.store.snapshot import visit_series
from recist_tool.volume import Volume

__all__ = ["SrLesion", "build_sr", "export_dicom_sr", "image_coordinates", "lesions_for_sr"]

log = logging.getLogger(__name__)

#: End points farther than this from the slice plane (in slices) are refused.
SLICE_TOLERANCE = 0.05


@dataclass(frozen=True)
class SrLesion:
    """One measured lesion as it goes into the SR.

    Attributes
    ----------
    lesion_id, category, organ, nodal
        As in the store (category ``target``, ``non-target`` or ``new``).
    long_axis_mm, short_axis_mm, volume_ml : float or None
    long_lps, short_lps : ndarray or None
        ``(2, 3)`` end points in LPS mm.
    tracking_uid : str
    segmenter, segmenter_version : str or None
        Set for automatic measurements (Algorithm Identification).
    segment_number : int, optional
        The lesion's segment in the DICOM SEG of the read (``build_sr(..., seg_uids=...)``);
        the SR then also holds a TID 1411 group referencing it.
    """

    lesion_id: str
    category: str
    organ: str
    nodal: bool
    long_axis_mm: float
    short_axis_mm: float | None
    long_lps: np.ndarray
    short_lps: np.ndarray | None
    volume_ml: float | None
    tracking_uid: str
    segmenter: str | None = None
    segmenter_version: str | None = None
    segment_number: int | None = None


def _pair(v: Any) -> np.ndarray | None:
    if v is None:
        return None
    a = np.asarray(v, dtype=np.float64)
    return a if a.shape == (2, 3) and np.all(np.isfinite(a)) else None


def lesions_for_sr(measurements: Sequence[Any], *, trial: str, subject: str, reader: str,
                   visit: str = "") -> tuple[list[SrLesion], list[str]]:
    """The measurements of a read that can go into an SR, and why the others cannot.

    Parameters
    ----------
    measurements : sequence of MeasurementInfo
        A read's measurements (store rows).
    trial, subject, reader : str
        For the tracking UIDs.
    visit : str
        For the messages only.

    Returns
    -------
    (list of SrLesion, list of str)
        The lesions (store order) and one line per measurement left out.
    """
    out: list[SrLesion] = []
    skipped: list[str] = []
    for m in measurements:
        ends = m.endpoints_lps or {}
        long_lps = _pair(ends.get("long"))
        if m.state != "MEASURED" or m.long_axis_mm is None or long_lps is None:
            why = m.state if m.state != "MEASURED" else "no long-axis end points"
            skipped.append(f"{subject} {visit} {m.lesion_id}: not in the SR ({why})")
            continue
        auto = m.method == "automatic" and bool(m.segmenter)
        out.append(SrLesion(
            lesion_id=m.lesion_id, category=m.category, organ=m.organ, nodal=bool(m.nodal),
            long_axis_mm=float(m.long_axis_mm),
            short_axis_mm=None if m.short_axis_mm is None else float(m.short_axis_mm),
            long_lps=long_lps, short_lps=_pair(ends.get("short")),
            volume_ml=None if m.volume_ml is None else float(m.volume_ml),
            tracking_uid=tracking_uid(trial, subject, reader, m.lesion_id),
            segmenter=m.segmenter if auto else None,
            segmenter_version=(m.segmenter_version or "unknown") if auto else None))
    return out, skipped


def image_coordinates(volume: Volume, points_lps: np.ndarray) -> tuple[int, np.ndarray]:
    """Slice index and SCOORD image coordinates of points lying on one slice of ``volume``.

    Parameters
    ----------
    volume : Volume
    points_lps : ndarray, shape (n, 3)

    Returns
    -------
    (int, ndarray)
        The slice ``k`` and ``(n, 2)`` (column, row) image coordinates in DICOM's convention:
        ``(0, 0)`` is the top-left corner of the top-left pixel, so a pixel centre at index
        ``(y, x)`` is ``(x + 0.5, y + 0.5)``.

    Raises
    ------
    GeometryError
        Points not on one acquired slice (within :data:`SLICE_TOLERANCE` slice).
    """
    idx = volume.lps_to_index(np.asarray(points_lps, dtype=np.float64).reshape(-1, 3))
    k = int(np.rint(idx[0, 0]))
    if np.any(np.abs(idx[:, 0] - k) > SLICE_TOLERANCE) or not 0 <= k < volume.shape[0]:
        raise GeometryError("axis end points do not lie on one slice of the series "
                            f"(slice indices {np.round(idx[:, 0], 3).tolist()})")
    return k, np.stack([idx[:, 2] + 0.5, idx[:, 1] + 0.5], axis=1)


def _source(series: Any, k: int):  # -> hd.sr.SourceImageForRegion
    import highdicom as hd

    frame = series.frames[k]
    return hd.sr.SourceImageForRegion(series.sop_class_uid(k), series.sop_instance_uid(k),
                                      referenced_frame_numbers=None if frame is None else [frame])


def _axis(name: Any, value: float, series: Any, points_lps: np.ndarray, used: set[int]):
    import highdicom as hd

    k, coords = image_coordinates(series.volume, points_lps)
    used.add(k)
    coord = hd.sr.CoordinatesForMeasurement(
        graphic_type=hd.sr.GraphicTypeValues.POLYLINE,
        graphic_data=coords.astype(np.float32), source_image=_source(series, k))
    return hd.sr.Measurement(name=name, value=round(float(value), 3), unit=UNIT_MM,
                             referenced_coordinates=[coord])


def _group(les: SrLesion, series: Any, visit: str, used: set[int]):
    import highdicom as hd

    measurements = [_axis(LONG_AXIS, les.long_axis_mm, series, les.long_lps, used)]
    if les.short_axis_mm is not None and les.short_lps is not None:
        measurements.append(_axis(SHORT_AXIS, les.short_axis_mm, series, les.short_lps, used))
    if les.volume_ml is not None:
        measurements.append(hd.sr.Measurement(name=VOLUME, value=round(les.volume_ml, 4),
                                              unit=UNIT_ML))
    algo = None
    if les.segmenter:
        algo = hd.sr.AlgorithmIdentification(name=les.segmenter[:64],
                                             version=(les.segmenter_version or "unknown")[:64])
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=les.tracking_uid, identifier=tracking_identifier(les.lesion_id)),
        time_point_context=hd.sr.TimePointContext(time_point=visit) if visit else None,
        finding_type=FINDING,
        finding_category=category_code(les.category),
        algorithm_id=algo,
        finding_sites=[hd.sr.FindingSite(organ_code(les.organ))],
        measurements=measurements)


def _segment_group(les: SrLesion, series: Any, visit: str, seg_uid: str):
    """TID 1411 for a lesion with a SEG segment: *Referenced Segment* (the SEG instance and
    segment number, *Source series for segmentation* the CT), its Volume, the lesion's Tracking
    UID. The Tracking Identifier is the bare lesion id, so a viewer that loads the TID 1501 group
    by its ``...:Bidirectional:`` identifier takes this one for no tool of its own."""
    import highdicom as hd
    from pydicom.uid import SegmentationStorage

    assert les.segment_number is not None
    ref = hd.sr.ReferencedSegment(
        SegmentationStorage, seg_uid, les.segment_number,
        source_series=hd.sr.SourceSeriesForSegmentation(series.headers[0].SeriesInstanceUID))
    volume = None if les.volume_ml is None else [
        hd.sr.Measurement(name=VOLUME, value=round(les.volume_ml, 4), unit=UNIT_ML)]
    return hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=les.tracking_uid,
                                                     identifier=les.lesion_id),
        referenced_segment=ref,
        time_point_context=hd.sr.TimePointContext(time_point=visit) if visit else None,
        finding_type=FINDING, finding_category=category_code(les.category),
        finding_sites=[hd.sr.FindingSite(organ_code(les.organ))], measurements=volume)


def build_sr(series: Any, lesions: Sequence[SrLesion], *, observer: str, visit: str,
             series_instance_uid: str, sop_instance_uid: str,
             series_number: int = SR_SERIES_NUMBER, login: str | None = None,
             final: bool = False, series_description: str | None = None,
             automated: bool = False, seg_uids: tuple[str, str] | None = None):
    """Build the TID 1500 Measurement Report of one timepoint.

    Parameters
    ----------
    series : SeriesWithHeaders
        The CT the lesions were measured on (:func:`recist_tool.io.dicom_refs.load_series_with_headers`).
    lesions : sequence of SrLesion
        Measured lesions; end points must lie on slices of ``series``. Each gives a TID 1501
        group (axes as lines); one with a ``segment_number`` also a TID 1411 group referencing
        that segment of the SEG ``seg_uids`` names.
    observer : str
        The reader's printed name (Person Observer Name); unused when ``automated``.
    visit : str
        Time point (e.g. ``BL``).
    series_instance_uid, sop_instance_uid : str
    series_number : int
    login : str, optional
        The reader's account name (Person Observer's Login Name).
    final : bool
        Completion and preliminary flags: a signed read is COMPLETE and FINAL, otherwise PARTIAL
        and PRELIMINARY.
    series_description : str, optional
    automated : bool
        The reads were made by ``recist batch``, not a person: the observer context holds the
        Device observer (recist-tool) alone, with no Person Observer Name or login.
    seg_uids : tuple of (str, str), optional
        Series and SOP Instance UID of the read's DICOM SEG (in the CT's study) that the lesions'
        ``segment_number`` refer to; it is listed in the evidence with the CT slices.

    Returns
    -------
    highdicom.sr.Comprehensive3DSR

    Raises
    ------
    InputError
        No lesion to report.
    GeometryError
        End points that do not lie on one slice of the series.
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes

    from recist_tool import __version__

    if not lesions:
        raise InputError(f"{visit}: no measured lesion to put in an SR")
    used: set[int] = set()
    groups = [_group(les, series, visit, used) for les in lesions]
    if seg_uids is not None:
        groups += [_segment_group(les, series, visit, seg_uids[1]) for les in lesions
                   if les.segment_number is not None]
    person = None if automated else hd.sr.ObserverContext(
        observer_type=codes.DCM.Person,
        observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(
            name=person_name(observer), login_name=login))
    device = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=stable_uid("device", "recist-tool"), name="recist-tool",
            manufacturer_name="recist-tool", model_name=f"recist-tool {__version__}"))
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_person_context=person,
                                                     observer_device_context=device),
        procedure_reported=codes.LN.CTUnspecifiedBodyRegion,
        imaging_measurements=groups,
        title=codes.DCM.ImagingMeasurementReport)
    evidence, seen = [], set()
    for k in sorted(used):
        uid = series.sop_instance_uid(k)
        if uid not in seen:
            seen.add(uid)
            evidence.append(conform_source(series.headers[k]))
    if seg_uids is not None and any(les.segment_number is not None for les in lesions):
        from pydicom.dataset import Dataset
        from pydicom.uid import SegmentationStorage

        seg = Dataset()
        seg.SOPClassUID, seg.SOPInstanceUID = SegmentationStorage, seg_uids[1]
        seg.StudyInstanceUID, seg.SeriesInstanceUID = evidence[0].StudyInstanceUID, seg_uids[0]
        evidence.append(seg)
    sr = hd.sr.Comprehensive3DSR(
        evidence=evidence, content=report[0], series_instance_uid=series_instance_uid,
        series_number=series_number, sop_instance_uid=sop_instance_uid, instance_number=1,
        manufacturer="recist-tool", is_complete=final, is_final=final, is_verified=False,
        series_description=(series_description or f"RECIST measurements {visit}")[:64],
        software_versions=__version__)
    copy_trial_modules(sr, evidence[0])
    return sr


def export_dicom_sr(data: Any, out_dir: Path, *, options: Mapping[str, Any]) -> list[Path]:
    """Write one DICOM SR (TID 1500, Comprehensive 3D SR) per subject timepoint.

    Files: ``OUT/<subject>/<subject>_<visit>_SR.dcm``. Reads without a measured lesion give no
    file; measurements without end points are left out; both are logged.

    Parameters
    ----------
    data : TrialExport
    out_dir : Path
    options : mapping
        ``series_number`` (default :data:`SR_SERIES_NUMBER`); ``deidentify``: a
        :class:`recist_tool.export.deidentify.DeidSettings` to write de-identified SRs (PS3.15
        Annex E Basic Profile with the Clean Structured Content Option, see that module).

    Returns
    -------
    list of Path
        The files written (all or none).
    """
    from recist_tool.export.deidentify import deidentify_dataset
    from recist_tool.io.outputs import atomic_outputs

    number = int(options.get("series_number", SR_SERIES_NUMBER))
    deid = options.get("deidentify")
    evaluators = {**data.evaluator_ids, **dict(options.get("evaluator_ids") or {})}
    built = []
    for subj in data.subjects:
        for read in subj.reads:
            lesions, skipped = lesions_for_sr(read.measurements, trial=subj.trial,
                                              subject=subj.code, reader=subj.reader,
                                              visit=read.visit)
            for line in skipped:
                log.warning(line)
            if not lesions:
                log.warning("%s %s: no measured lesion, no SR written", subj.code, read.visit)
                continue
            key = seg_key(subj, read)
            series = visit_series(subj, read.visit)
            try:
                seg = planned_seg(subj, read, series)
            except (InputError, GeometryError) as exc:
                log.warning("%s %s: the SR references no SEG: %s", subj.code, read.visit, exc)
                seg = None
            if seg is not None:
                lesions = [replace(les, segment_number=seg.segments.get(les.lesion_id))
                           for les in lesions]
            try:
                sr = build_sr(
                    series, lesions,
                    observer=subj.reader_full_name or subj.reader, login=subj.reader,
                    visit=read.visit, final=subj.is_signed(read.visit) and read.status == "signed",
                    automated=subj.automated_reader,
                    series_instance_uid=stable_uid("sr-series", *key),
                    sop_instance_uid=stable_uid("sr", *key), series_number=number,
                    seg_uids=None if seg is None else (seg.series_instance_uid,
                                                       seg.sop_instance_uid))
            except GeometryError as exc:
                raise GeometryError(f"{subj.code} {read.visit}: {exc}") from exc
            if deid is not None:
                deidentify_dataset(sr, deid, subject=subj.code, trial=subj.trial, visit=read.visit,
                                   evaluator=evaluators.get(subj.reader, "READER"),
                                   clean_structured_content=True)
            built.append((Path(subj.code) / f"{subj.code}_{read.visit}_SR.dcm", sr))
    with atomic_outputs(out_dir) as out:
        for name, ds in built:
            ds.save_as(out.path(name), enforce_file_format=True)
    return [Path(out_dir) / name for name, _ in built]
