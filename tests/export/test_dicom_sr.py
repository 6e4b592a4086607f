"""DICOM SR export: geometry of the SCOORDs, OHIF's bidirectional layout, dciodvfy, read-back."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from recist_tool.errors import GeometryError, InputError
from recist_tool.export.dicom_derived import (
    person_name,
    stable_uid,
    tracking_identifier,
    tracking_uid,
)
from recist_tool.export.dicom_sr import SrLesion, build_sr, image_coordinates
from tests.export.pacs_fixtures import (
    ScoredTrial,
    dciodvfy_errors,
    points_on_slice,
    tiny_series,
)


def _lesions(vol) -> list[SrLesion]:
    long1 = points_on_slice(vol, 3, [(10.2, 8.4), (25.7, 27.1)])
    short1 = points_on_slice(vol, 3, [(22.0, 11.0), (13.5, 22.3)])
    long2 = points_on_slice(vol, 5, [(30.0, 5.0), (30.0, 15.5)])
    return [
        SrLesion("T01", "TARGET", "liver", False, 21.3, 12.6, long1, short1, 3.25,
                 tracking_uid("TR", "S1", "rad1", "T01"), "classic", "1.0"),
        SrLesion("NT01", "NON-TARGET", "lymph node", True, 8.4, None, long2, None, None,
                 tracking_uid("TR", "S1", "rad1", "NT01")),
    ]


def _build(series, lesions, **kw):
    return build_sr(series, lesions, observer="Reader One", login="rad1", visit="BL",
                    series_instance_uid=stable_uid("s"), sop_instance_uid=stable_uid("i"), **kw)


def _groups(ds) -> list:
    ims = next(it for it in ds.ContentSequence
               if it.ConceptNameCodeSequence[0].CodeMeaning == "Imaging Measurements")
    return list(ims.ContentSequence)


def _item(group, meaning: str):
    return next(it for it in group.ContentSequence
                if it.ConceptNameCodeSequence[0].CodeMeaning == meaning)


def test_image_coordinates_match_highdicoms_reference_to_image_transform(tmp_path: Path) -> None:
    import highdicom as hd

    series = tiny_series(tmp_path / "ct")
    vol = series.volume
    assert vol.is_sheared  # tilted and oblique: the slice's own IPP matters
    pts = points_on_slice(vol, 4, [(0.0, 0.0), (10.25, 3.5), (39.0, 35.0)])
    k, coords = image_coordinates(vol, pts)
    h = series.headers[k]
    tf = hd.spatial.ReferenceToImageTransformer(
        image_position=[float(v) for v in h.ImagePositionPatient],
        image_orientation=[float(v) for v in h.ImageOrientationPatient],
        pixel_spacing=[float(v) for v in h.PixelSpacing])
    ref = tf(pts)
    assert k == 4
    np.testing.assert_allclose(coords, ref[:, :2], atol=1e-4)
    np.testing.assert_allclose(ref[:, 2], 0.0, atol=1e-4)  # on the slice plane
    np.testing.assert_allclose(coords[0], [0.5, 0.5], atol=1e-6)  # pixel centre (0, 0)


def test_end_points_off_a_slice_are_refused(tmp_path: Path) -> None:
    vol = tiny_series(tmp_path / "ct").volume
    pts = vol.index_to_lps(np.array([(3.0, 5.0, 5.0), (3.4, 9.0, 9.0)]))
    with pytest.raises(GeometryError, match="one slice"):
        image_coordinates(vol, pts)


def test_sr_layout_is_the_one_ohif_reloads_as_bidirectional(tmp_path: Path) -> None:
    series = tiny_series(tmp_path / "ct")
    lesions = _lesions(series.volume)
    ds = _build(series, lesions)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.34"  # Comprehensive 3D SR
    assert ds.ContentTemplateSequence[0].TemplateIdentifier == "1500"
    g1, g2 = _groups(ds)
    assert _item(g1, "Tracking Identifier").TextValue == \
        "Cornerstone3DTools@^0.1.0:Bidirectional:T01"
    assert _item(g1, "Tracking Unique Identifier").UID == lesions[0].tracking_uid
    nums = [it for it in g1.ContentSequence if it.ValueType == "NUM"]
    # cornerstone takes the first NUM as the one holding the SCOORD: Long Axis comes first
    assert [n.ConceptNameCodeSequence[0].CodeMeaning for n in nums] == \
        ["Long Axis", "Short Axis", "Volume"]
    long = nums[0]
    assert float(long.MeasuredValueSequence[0].NumericValue) == pytest.approx(21.3)
    assert long.MeasuredValueSequence[0].MeasurementUnitsCodeSequence[0].CodeValue == "mm"
    sc = long.ContentSequence[0]
    assert (sc.ValueType, sc.RelationshipType, sc.GraphicType) == ("SCOORD", "INFERRED FROM",
                                                                   "POLYLINE")
    ref = sc.ContentSequence[0].ReferencedSOPSequence[0]
    assert ref.ReferencedSOPInstanceUID == series.sop_instance_uid(3)
    _, want = image_coordinates(series.volume, lesions[0].long_lps)
    np.testing.assert_allclose(np.reshape(sc.GraphicData, (-1, 2)), want, atol=1e-3)
    assert _item(g1, "Finding Site").ConceptCodeSequence[0].CodeMeaning == "Liver"
    assert _item(g1, "Finding").ConceptCodeSequence[0].CodeValue == "52988006"
    assert _item(g1, "Algorithm Name").TextValue == "classic"
    assert _item(g2, "Finding category").ConceptCodeSequence[0].CodeValue == "112075"
    assert [n.ConceptNameCodeSequence[0].CodeMeaning for n in g2.ContentSequence
            if n.ValueType == "NUM"] == ["Long Axis"]
    # the SR files under the CT's patient and study
    h = series.headers[0]
    assert (ds.PatientID, str(ds.PatientName), ds.StudyInstanceUID) == \
        (h.PatientID, str(h.PatientName), h.StudyInstanceUID)
    assert ds.CompletionFlag == "PARTIAL" and ds.PreliminaryFlag == "PRELIMINARY"


def test_person_observer_and_verification_flags(tmp_path: Path) -> None:
    series = tiny_series(tmp_path / "ct")
    ds = _build(series, _lesions(series.volume), final=True)
    assert ds.CompletionFlag == "COMPLETE" and ds.PreliminaryFlag == "FINAL"
    names = [str(it.PersonName) for it in ds.ContentSequence if it.ValueType == "PNAME"]
    assert names == ["Reader One^"]
    assert person_name("Doe^Jane") == "Doe^Jane" and person_name("  Jane   Doe ") == "Jane Doe^"


def test_tracking_uids_are_stable_and_distinct() -> None:
    a = tracking_uid("TR", "S1", "rad1", "t01")
    assert a == tracking_uid("TR", "S1", "rad1", "T01")
    assert len({a, tracking_uid("TR", "S1", "rad1", "T02"), tracking_uid("TR", "S2", "rad1", "T01"),
                tracking_uid("TR", "S1", "rad2", "T01")}) == 4
    assert a.startswith("2.25.") and len(a) <= 64
    assert tracking_identifier("t01").endswith(":Bidirectional:T01")


def test_no_lesion_is_an_input_error(tmp_path: Path) -> None:
    series = tiny_series(tmp_path / "ct")
    with pytest.raises(InputError, match="no measured lesion"):
        _build(series, [])


def test_tiny_sr_passes_dciodvfy_and_reads_back(tmp_path: Path) -> None:
    import highdicom as hd

    series = tiny_series(tmp_path / "ct")
    ds = _build(series, _lesions(series.volume))
    path = tmp_path / "sr.dcm"
    ds.save_as(path, enforce_file_format=True)
    errors, _ = dciodvfy_errors(path)
    assert errors == []
    back = hd.sr.srread(path)
    groups = back.content.get_planar_roi_measurement_groups() + \
        list(back.content.get_measurement_groups() if hasattr(back.content, "get_measurement_groups")
             else [])
    assert isinstance(back, hd.sr.Comprehensive3DSR) and len(_groups(back)) == 2
    del groups


def test_a_lesion_with_a_seg_segment_gets_a_tid_1411_group_referencing_it(tmp_path: Path) -> None:
    """A lesion with a segment in the read's SEG: its TID 1501 group as before, then a TID 1411
    group with the same Tracking UID whose *Referenced Segment* names the SEG instance and
    segment (source series: the CT), with the Volume; the SEG is in the evidence; dciodvfy
    passes; highdicom reads the reference; import-sr gives the same lesions and lines."""
    import dataclasses

    import highdicom as hd

    from recist_tool.io.sr import locate_lesions, read_measurement_report

    series = tiny_series(tmp_path / "ct")
    plain = _lesions(series.volume)
    lesions = [dataclasses.replace(plain[0], segment_number=2), plain[1]]
    seg_series, seg_sop = stable_uid("seg-series-test"), stable_uid("seg-test")
    ds = _build(series, lesions, seg_uids=(seg_series, seg_sop))
    path = tmp_path / "sr.dcm"
    ds.save_as(path, enforce_file_format=True)
    errors, _ = dciodvfy_errors(path)
    assert errors == []
    g1, g2, g3 = _groups(ds)
    assert [g.ContentTemplateSequence[0].TemplateIdentifier for g in (g1, g2, g3)] == \
        ["1501", "1501", "1411"]
    assert _item(g3, "Tracking Unique Identifier").UID == lesions[0].tracking_uid
    assert _item(g3, "Tracking Identifier").TextValue == "T01"  # no cornerstone tool prefix
    ref = _item(g3, "Referenced Segment")
    sop = ref.ReferencedSOPSequence[0]
    assert (sop.ReferencedSOPClassUID, sop.ReferencedSOPInstanceUID,
            int(sop.ReferencedSegmentNumber)) == ("1.2.840.10008.5.1.4.1.1.66.4", seg_sop, 2)
    assert _item(g3, "Source Series for Segmentation").UID == \
        series.headers[0].SeriesInstanceUID
    vol = _item(g3, "Volume").MeasuredValueSequence[0]
    assert float(vol.NumericValue) == pytest.approx(3.25)
    evidence = {(s.SeriesInstanceUID, i.ReferencedSOPInstanceUID)
                for e in ds.CurrentRequestedProcedureEvidenceSequence
                for s in e.ReferencedSeriesSequence for i in s.ReferencedSOPSequence}
    assert (seg_series, seg_sop) in evidence
    back = hd.sr.srread(path)
    (vg,) = back.content.get_volumetric_roi_measurement_groups()
    assert (vg.referenced_segment.referenced_sop_instance_uid, vg.tracking_uid) == \
        (seg_sop, lesions[0].tracking_uid)
    # import-sr: one record per lesion (the 1411 group folded into T01's), same lines as without
    plain_path = tmp_path / "plain.dcm"
    _build(series, plain).save_as(plain_path, enforce_file_format=True)
    rep = read_measurement_report(path)
    assert [(g.lesion_id, g.template) for g in rep.groups] == [("T01", "1501"), ("NT01", "1501")]
    assert (rep.groups[0].segment.sop_instance_uid, rep.groups[0].segment.segment_number) == \
        (seg_sop, 2)
    got = locate_lesions(rep, series.volume)
    want = locate_lesions(read_measurement_report(plain_path), series.volume)
    for a, b in zip(got, want, strict=True):
        assert (a.lesion_id, a.long_axis_mm, a.short_axis_mm, a.volume_ml, a.slice_index) == \
            (b.lesion_id, b.long_axis_mm, b.short_axis_mm, b.volume_ml, b.slice_index)
        np.testing.assert_array_equal(a.long_lps, b.long_lps)


# --- the whole export on a scored trial ------------------------------------------------------------

@pytest.mark.slow
def test_export_per_timepoint_passes_dciodvfy_and_reads_back(scored_trial: ScoredTrial,
                                                             tmp_path: Path) -> None:
    import highdicom as hd

    from recist_tool.export import run_export
    from recist_tool.export.dicom_sr import image_coordinates as coords_of
    from recist_tool.io.dicom_refs import load_series_with_headers
    from recist_tool.store import TrialStore

    with TrialStore(scored_trial.db_path, read_only=True) as store:
        paths = run_export(store, "dicom-sr", tmp_path / "out", subjects=["SYN-001"],
                           include_unsigned=True)
        reads = {v: store.get_read("SYN-001", v, reader="batch") for v in ("BL", "W06", "W12")}
        tps = {t.visit: t for t in store.timepoint_infos("SYN-001")}
    assert [p.name for p in paths] == ["SYN-001_BL_SR.dcm", "SYN-001_W06_SR.dcm",
                                       "SYN-001_W12_SR.dcm"]
    uids: dict[str, set[str]] = {}
    for path in paths:
        errors, _ = dciodvfy_errors(path)
        assert errors == [], (path.name, errors)
        visit = path.stem.split("_")[1]
        series = load_series_with_headers(tps[visit].series_path, tps[visit].series_uid)
        sr = hd.sr.srread(path)
        assert sr.StudyInstanceUID == series.headers[0].StudyInstanceUID
        measured = {m.lesion_id: m for m in reads[visit].measurements if m.state == "MEASURED"}
        groups = [g for g in _groups(sr) if g.ContentTemplateSequence[0].TemplateIdentifier
                  == "1501"]  # then one TID 1411 per lesion in the SEG (test_dicom_seg.py)
        assert len(groups) == len(measured) > 0
        for g in groups:
            lid = _item(g, "Tracking Identifier").TextValue.rsplit(":", 1)[1]
            uids.setdefault(lid, set()).add(_item(g, "Tracking Unique Identifier").UID)
            m = measured[lid]
            for meaning, value, key in (("Long Axis", m.long_axis_mm, "long"),
                                        ("Short Axis", m.short_axis_mm, "short")):
                num = _item(g, meaning)
                got = Decimal(str(num.MeasuredValueSequence[0].NumericValue))
                assert abs(got - value) <= Decimal("0.1")
                sc = num.ContentSequence[0]
                k, want = coords_of(series.volume, np.array(m.endpoints_lps[key]))
                assert k == m.endpoints_lps["slice_index"]
                np.testing.assert_allclose(np.reshape(sc.GraphicData, (-1, 2)), want, atol=1e-3)
                # the polyline's length is the measured axis (to 0.1 mm)
                d = np.diff(np.reshape(sc.GraphicData, (-1, 2)), axis=0)[0]
                px = series.volume.spacing
                assert np.hypot(d[0] * px[2], d[1] * px[1]) == pytest.approx(float(value), abs=0.1)
    # one UID per lesion across the three timepoints
    assert uids and all(len(u) == 1 for u in uids.values())
    assert len({next(iter(u)) for u in uids.values()}) == len(uids)


def test_reads_without_images_or_end_points(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from recist_tool.export import run_export
    from recist_tool.export.dicom_sr import lesions_for_sr
    from recist_tool.store import TrialStore
    from tests.store.conftest import make_trial, read_subject

    monkeypatch.setenv("RECIST_SCRYPT_N", "1024")
    with TrialStore(tmp_path / "recist.db") as store:
        make_trial(store)
        read_subject(store, "alice", t01_w6="20.0", t02_w6="12")
        for fmt in ("dicom-sr", "dicom-seg"):
            with pytest.raises(InputError, match="S001 BL: the database does not say where the CT"):
                run_export(store, fmt, tmp_path / fmt, include_unsigned=True)
            assert not any((tmp_path / fmt).rglob("*.dcm"))
        bl = store.get_read("S001", "BL", reader="alice")
    got, skipped = lesions_for_sr(bl.measurements, trial="T", subject="S001", reader="alice",
                                  visit="BL")
    assert [g.lesion_id for g in got] == ["T01"] and got[0].segmenter == "classic"
    assert sorted(skipped) == ["S001 BL NT01: not in the SR (PRESENT)",
                               "S001 BL T02: not in the SR (no long-axis end points)"]


def test_headers_of_a_zipped_series_outlive_the_extraction(tmp_path: Path) -> None:
    import shutil

    from recist_tool.io.dicom_refs import load_series_with_headers

    folder = tiny_series(tmp_path / "ct")
    archive = shutil.make_archive(str(tmp_path / "ct"), "zip", tmp_path / "ct")
    zipped = load_series_with_headers(archive)
    assert [h.SOPInstanceUID for h in zipped.headers] == list(zipped.volume.meta.sop_instance_uids)
    assert [h.SOPInstanceUID for h in zipped.headers] == [h.SOPInstanceUID for h in folder.headers]
    ds = _build(zipped, _lesions(zipped.volume))
    assert ds.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0] \
        .SeriesInstanceUID == folder.headers[0].SeriesInstanceUID
    from recist_tool.errors import DicomLoadError
    from recist_tool.io import save_volume

    save_volume(zipped.volume, tmp_path / "ct.nii.gz")
    with pytest.raises(DicomLoadError, match="no DICOM headers"):
        load_series_with_headers(tmp_path / "ct.nii.gz")
