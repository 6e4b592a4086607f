"""SRs as other tools write them, built in the tests (nothing downloaded).

* :func:`highdicom_sr` — highdicom's ``MeasurementReport`` (PS3.16 TID 1500) holding TID 1410
  planar ROI groups (outline / circle / ellipse image regions, Diameter), TID 1411 volumetric
  groups referencing a DICOM SEG segment (dcmqi's form), and TID 1501 groups (Length; Long / Short
  Axis) with their SCOORD lines.
* :func:`dcmjs_sr` — the content tree dcmjs (OHIF's SR library) writes, built item by item with
  pydicom: TID 1500 root, Image Library, *Imaging Measurements* holding one *Measurement Group* per
  tool annotation; a Length ruler is one NUM (SCT 410668003 "Length") inferred from a 2-point
  SCOORD POLYLINE selected from an image; a Bidirectional is two NUMs (SRT G-A185 "Long Axis",
  G-A186 "Short Axis"); uncalibrated images give the unit UCUM ``1`` with meaning ``px``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.sr.codedict import codes
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

COMPREHENSIVE_3D_SR = "1.2.840.10008.5.1.4.1.1.88.34"
#: dcmjs's unit for an uncalibrated image: UCUM "1" shown as "px".
PX = ("1", "UCUM", "px")


def src_image(header: Any):
    """highdicom ``SourceImageForRegion`` of one CT slice header."""
    import highdicom as hd

    return hd.sr.SourceImageForRegion(referenced_sop_class_uid=header.SOPClassUID,
                                      referenced_sop_instance_uid=header.SOPInstanceUID)


def tracking(code: str):
    import highdicom as hd

    return hd.sr.TrackingIdentifier(identifier=code, uid=generate_uid())


def region_group(code: str, header: Any, graphic_type: str, points: Sequence[Sequence[float]],
                 measurements: Sequence[Any] = ()):
    """A TID 1410 group whose *Image Region* is ``points`` (column, row) on ``header``'s image."""
    import highdicom as hd

    region = hd.sr.ImageRegion(graphic_type=graphic_type,
                               graphic_data=np.asarray(points, dtype=np.float64),
                               source_image=src_image(header))
    return hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=tracking(code), referenced_region=region,
        measurements=list(measurements) or None)


def line_measurement(name: Any, value: float, unit: Any, header: Any,
                     points: Sequence[Sequence[float]]):
    """A TID 300 NUM with the 2-point SCOORD POLYLINE it is inferred from."""
    import highdicom as hd

    coords = hd.sr.CoordinatesForMeasurement(
        graphic_type=hd.sr.GraphicTypeValues.POLYLINE,
        graphic_data=np.asarray(points, dtype=np.float64), source_image=src_image(header))
    return hd.sr.Measurement(name=name, value=value, unit=unit, referenced_coordinates=[coords])


def line_group(code: str, measurements: Sequence[Any]):
    """A TID 1501 group of NUMs."""
    import highdicom as hd

    return hd.sr.MeasurementsAndQualitativeEvaluations(tracking_identifier=tracking(code),
                                                       measurements=list(measurements))


def segment_group(code: str, seg: Any, segment_number: int, source_series_uid: str,
                  measurements: Sequence[Any] = ()):
    """A TID 1411 group referencing segment ``segment_number`` of the SEG ``seg`` (dcmqi's form)."""
    import highdicom as hd

    ref = hd.sr.ReferencedSegment(
        sop_class_uid=seg.SOPClassUID, sop_instance_uid=seg.SOPInstanceUID,
        segment_number=segment_number,
        source_series=hd.sr.SourceSeriesForSegmentation(source_series_uid))
    return hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=tracking(code), referenced_segment=ref,
        finding_sites=[hd.sr.FindingSite(codes.SCT.Liver)],
        measurements=list(measurements) or None)


def highdicom_sr(path: Path, headers: Sequence[Any], groups: Sequence[Any],
                 evidence: Sequence[Any] = ()) -> Path:
    """Write a Comprehensive 3D SR holding ``groups`` (TID 1500) with highdicom."""
    import highdicom as hd

    from recist_tool.export.dicom_derived import conform_source

    ctx = hd.sr.ObservationContext(observer_person_context=hd.sr.ObserverContext(
        observer_type=codes.DCM.Person,
        observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(
            name="Other^Reader")))
    report = hd.sr.MeasurementReport(observation_context=ctx,
                                     procedure_reported=codes.LN.CTUnspecifiedBodyRegion,
                                     imaging_measurements=list(groups))
    sr = hd.sr.Comprehensive3DSR(evidence=[*map(conform_source, headers), *evidence], content=report,
                                 series_instance_uid=generate_uid(), series_number=901,
                                 sop_instance_uid=generate_uid(), instance_number=1,
                                 manufacturer="test")
    sr.save_as(path)
    return path


def blob_seg(series: Any) -> tuple[Any, np.ndarray]:
    """A SEG (our exporter's, written with highdicom) of one blob on slices 2-4 of ``series``
    (``SeriesWithHeaders``), widest on slice 3; SOP Instance UID ``2.25.78``; and its mask."""
    from recist_tool.export.dicom_seg import SegLesion, build_seg

    vol = series.volume
    zz, yy, xx = np.mgrid[0:vol.shape[0], 0:vol.shape[1], 0:vol.shape[2]]
    mask = (((yy - 20) / 7.0) ** 2 + ((xx - 17) / 9.0) ** 2 <= 1.0) & (zz >= 2) & (zz <= 4)
    mask[3] |= ((yy[3] - 20) / 8.0) ** 2 + ((xx[3] - 17) / 11.0) ** 2 <= 1.0
    seg = build_seg(series, [SegLesion("T01", "liver", mask, (0, 0, 0), "2.25.1")],
                    series_instance_uid="2.25.77", sop_instance_uid="2.25.78")
    return seg, mask


# --- dcmjs (OHIF) -----------------------------------------------------------------------------

def _concept(value: str, scheme: str, meaning: str) -> DicomSequence:
    c = Dataset()
    c.CodeValue, c.CodingSchemeDesignator, c.CodeMeaning = value, scheme, meaning
    return DicomSequence([c])


def _item(relationship: str | None, value_type: str, concept: tuple[str, str, str] | None,
          **attrs: Any) -> Dataset:
    it = Dataset()
    if relationship:
        it.RelationshipType = relationship
    it.ValueType = value_type
    if concept is not None:
        it.ConceptNameCodeSequence = _concept(*concept)
    for k, v in attrs.items():
        setattr(it, k, v)
    return it


def _image_ref(header: Any) -> DicomSequence:
    r = Dataset()
    r.ReferencedSOPClassUID = header.SOPClassUID
    r.ReferencedSOPInstanceUID = header.SOPInstanceUID
    return DicomSequence([r])


@dataclass(frozen=True)
class Ruler:
    """One dcmjs annotation: ``kind`` ``Length`` (one line) or ``Bidirectional`` (two)."""

    kind: str
    header: Any
    lines: tuple[tuple[tuple[float, float], tuple[float, float]], ...]
    values: tuple[float, ...]
    unit: tuple[str, str, str] = ("mm", "UCUM", "mm")
    label: str = ""
    lps: tuple[np.ndarray, ...] = ()  # SCOORD3D points instead of image coordinates


_DCMJS_CODES = {"Length": [("410668003", "SCT", "Length")],
                "Bidirectional": [("G-A185", "SRT", "Long Axis"), ("G-A186", "SRT", "Short Axis")]}


def _num(concept: tuple[str, str, str], value: float, unit: tuple[str, str, str], header: Any,
         line: Any, lps: np.ndarray | None, frame_of_reference: str) -> Dataset:
    mv = Dataset()
    u = Dataset()
    u.CodeValue, u.CodingSchemeDesignator, u.CodeMeaning = unit
    u.CodingSchemeVersion = "1.4"
    mv.MeasurementUnitsCodeSequence = DicomSequence([u])
    mv.NumericValue = f"{value:g}"
    if lps is not None:
        sc = _item("INFERRED FROM", "SCOORD3D", None, GraphicType="POLYLINE",
                   GraphicData=[float(v) for v in np.ravel(lps)],
                   ReferencedFrameOfReferenceUID=frame_of_reference)
    else:
        sc = _item("INFERRED FROM", "SCOORD", None, GraphicType="POLYLINE",
                   GraphicData=[float(v) for p in line for v in p])
        sc.ContentSequence = DicomSequence([_item("SELECTED FROM", "IMAGE", None,
                                                  ReferencedSOPSequence=_image_ref(header))])
    num = _item("CONTAINS", "NUM", concept, MeasuredValueSequence=DicomSequence([mv]))
    num.ContentSequence = DicomSequence([sc])
    return num


def dcmjs_sr(path: Path, headers: Sequence[Any], rulers: Sequence[Ruler],
             subject: str | None = None) -> Path:
    """Write an SR with the structure dcmjs gives OHIF's Length / Bidirectional measurements."""
    h0 = headers[0]
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = COMPREHENSIVE_3D_SR
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = COMPREHENSIVE_3D_SR
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "SR"
    for kw in ("PatientID", "PatientName", "StudyInstanceUID", "StudyDate"):
        setattr(ds, kw, getattr(h0, kw))
    if subject:
        ds.ClinicalTrialSubjectID = subject
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = 4700
    ds.InstanceNumber = 1
    ds.ValueType = "CONTAINER"
    ds.ConceptNameCodeSequence = _concept("126000", "DCM", "Imaging Measurement Report")
    ds.ContinuityOfContent = "SEPARATE"
    tpl = Dataset()
    tpl.MappingResource, tpl.TemplateIdentifier = "DCMR", "1500"
    ds.ContentTemplateSequence = DicomSequence([tpl])
    ds.CompletionFlag, ds.VerificationFlag = "COMPLETE", "UNVERIFIED"
    lang = _item("HAS CONCEPT MOD", "CODE", ("121049", "DCM",
                                             "Language of Content Item and Descendants"),
                 ConceptCodeSequence=_concept("eng", "RFC5646", "English"))
    observer = _item("HAS OBS CONTEXT", "PNAME", ("121008", "DCM", "Person Observer Name"),
                     PersonName="unknown^unknown")
    procedure = _item("HAS CONCEPT MOD", "CODE", ("121058", "DCM", "Procedure reported"),
                      ConceptCodeSequence=_concept("1", "99dcmjs", "Unknown procedure"))
    used = {r.header.SOPInstanceUID: r.header for r in rulers}
    library_group = _item("CONTAINS", "CONTAINER", ("126200", "DCM", "Image Library Group"),
                          ContinuityOfContent="SEPARATE")
    library_group.ContentSequence = DicomSequence([
        _item("CONTAINS", "IMAGE", None, ReferencedSOPSequence=_image_ref(h)) for h in used.values()])
    library = _item("CONTAINS", "CONTAINER", ("111028", "DCM", "Image Library"),
                    ContinuityOfContent="SEPARATE")
    library.ContentSequence = DicomSequence([library_group])
    groups = []
    for r in rulers:
        g = _item("CONTAINS", "CONTAINER", ("125007", "DCM", "Measurement Group"),
                  ContinuityOfContent="SEPARATE")
        items = [
            _item("HAS OBS CONTEXT", "TEXT", ("112039", "DCM", "Tracking Identifier"),
                  TextValue=f"Cornerstone3DTools@^0.1.0:{r.kind}" + (f":{r.label}" if r.label
                                                                   else "")),
            _item("HAS OBS CONTEXT", "UIDREF", ("112040", "DCM", "Tracking Unique Identifier"),
                  UID=generate_uid()),
        ]
        for i, concept in enumerate(_DCMJS_CODES[r.kind]):
            items.append(_num(concept, r.values[i], r.unit, r.header,
                              r.lines[i] if r.lines else None, r.lps[i] if r.lps else None,
                              str(h0.FrameOfReferenceUID)))
        g.ContentSequence = DicomSequence(items)
        groups.append(g)
    measurements = _item("CONTAINS", "CONTAINER", ("126010", "DCM", "Imaging Measurements"),
                         ContinuityOfContent="SEPARATE")
    measurements.ContentSequence = DicomSequence(groups)
    ds.ContentSequence = DicomSequence([lang, observer, procedure, library, measurements])
    ds.save_as(path, enforce_file_format=True)
    return path
