"""Reading TID 1500 SRs back: our own exports, legacy / foreign forms, and what is refused."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest

from recist_tool.errors import DicomLoadError, GeometryError, InputError
from recist_tool.export.dicom_derived import stable_uid, tracking_uid
from recist_tool.export.dicom_sr import SrLesion, build_sr
from recist_tool.io import load_volume
from recist_tool.io.sr import locate_lesions, read_measurement_report
from tests.export.pacs_fixtures import points_on_slice, tiny_series


def _write_sr(tmp_path: Path, *, zip_ct: bool = False):
    series = tiny_series(tmp_path / "ct")
    vol = series.volume
    long1 = points_on_slice(vol, 3, [(10.2, 8.4), (25.7, 27.1)])
    short1 = points_on_slice(vol, 3, [(22.0, 11.0), (13.5, 22.3)])
    long2 = points_on_slice(vol, 6, [(30.0, 5.0), (30.0, 15.5)])
    lesions = [
        SrLesion("T01", "TARGET", "liver", False, 21.3, 12.6, long1, short1, 3.25,
                 tracking_uid("TR", "S1", "rad1", "T01"), "classic", "1.0"),
        SrLesion("NT01", "NON-TARGET", "lymph node", True, 8.4, None, long2, None, None,
                 tracking_uid("TR", "S1", "rad1", "NT01")),
    ]
    ds = build_sr(series, lesions, observer="Reader One", login="rad1", visit="BL",
                  series_instance_uid=stable_uid("s"), sop_instance_uid=stable_uid("i"))
    path = tmp_path / "sr.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path, series, lesions


def test_own_export_reads_back_to_the_same_lesions_in_patient_space(tmp_path: Path) -> None:
    path, series, lesions = _write_sr(tmp_path)
    rep = read_measurement_report(path)
    assert rep.patient_id == "TEST-001" and rep.observer == "Reader One" and rep.skipped == ()
    assert [(g.lesion_id, g.category, g.organ, g.time_point) for g in rep.groups] == \
        [("T01", "TARGET", "liver", "BL"), ("NT01", "NON-TARGET", "lymph node", "BL")]
    assert rep.groups[0].volume_ml == pytest.approx(3.25)
    got = locate_lesions(rep, series.volume)
    t01, nt01 = got
    np.testing.assert_allclose(t01.long_lps, lesions[0].long_lps, atol=1e-3)
    np.testing.assert_allclose(t01.short_lps, lesions[0].short_lps, atol=1e-3)
    assert (t01.slice_index, t01.long_axis_mm, t01.short_axis_mm) == (3, 21.3, 12.6)
    assert t01.tracking_uid == lesions[0].tracking_uid and not t01.nodal and nt01.nodal
    # the seed is where the axes cross: on both lines
    for seg in (t01.long_lps, t01.short_lps):
        d = seg[1] - seg[0]
        t = float((t01.seed_lps - seg[0]) @ d / (d @ d))
        assert 0 < t < 1
        assert np.linalg.norm(seg[0] + t * d - t01.seed_lps) < 1e-3
    # no short axis: the long axis's midpoint
    np.testing.assert_allclose(nt01.seed_lps, lesions[1].long_lps.mean(axis=0), atol=1e-3)
    assert nt01.short_lps is None and nt01.short_axis_mm is None


def test_works_with_the_ct_loaded_from_a_zip(tmp_path: Path) -> None:
    path, series, lesions = _write_sr(tmp_path)
    archive = shutil.make_archive(str(tmp_path / "ct"), "zip", tmp_path / "ct")
    shutil.rmtree(tmp_path / "ct")
    got = locate_lesions(read_measurement_report(path), load_volume(archive))
    np.testing.assert_allclose(got[0].long_lps, lesions[0].long_lps, atol=1e-3)


def _groups(ds) -> list:
    return list(next(it for it in ds.ContentSequence
                     if it.ConceptNameCodeSequence[0].CodeMeaning == "Imaging Measurements")
                .ContentSequence)


def test_foreign_forms_legacy_codes_cm_units_plain_tracking_ids(tmp_path: Path) -> None:
    path, series, lesions = _write_sr(tmp_path)
    ds = pydicom.dcmread(path)
    g1, g2 = _groups(ds)
    for it in g1.ContentSequence:
        name = it.ConceptNameCodeSequence[0]
        if it.ValueType == "TEXT" and name.CodeValue == "112039":
            it.TextValue = "lesion-a"  # a PACS's own identifier: not a lesion code
        if it.ValueType == "NUM" and name.CodeMeaning == "Long Axis":
            name.CodeValue, name.CodingSchemeDesignator = "G-A185", "SRT"  # legacy code
            mv = it.MeasuredValueSequence[0]
            mv.NumericValue = "2.13"
            mv.MeasurementUnitsCodeSequence[0].CodeValue = "cm"
        if it.ValueType == "CODE" and name.CodeValue == "276214006":
            g1.ContentSequence.remove(it)  # no category: target by default
    for it in g2.ContentSequence:
        if it.ValueType == "TEXT" and it.ConceptNameCodeSequence[0].CodeValue == "112039":
            it.TextValue = "T01"  # already taken by nobody else now; kept
    ds.save_as(tmp_path / "foreign.dcm")
    rep = read_measurement_report(tmp_path / "foreign.dcm")
    assert rep.groups[0].long.length_mm == pytest.approx(21.3)
    got = locate_lesions(rep, series.volume)
    assert [(g.lesion_id, g.category) for g in got] == [("T02", "TARGET"), ("T01", "NON-TARGET")]
    np.testing.assert_allclose(got[0].long_lps, lesions[0].long_lps, atol=1e-3)


def test_not_an_sr_or_no_long_axis_is_refused(tmp_path: Path) -> None:
    path, series, _ = _write_sr(tmp_path)
    with pytest.raises(InputError, match="no such file"):
        read_measurement_report(tmp_path / "missing.dcm")
    (tmp_path / "junk.dcm").write_bytes(b"not dicom at all")
    with pytest.raises(DicomLoadError, match="not a readable DICOM"):
        read_measurement_report(tmp_path / "junk.dcm")
    ct_file = next((tmp_path / "ct").iterdir())
    with pytest.raises(DicomLoadError, match="not a DICOM structured report"):
        read_measurement_report(ct_file)
    ds = pydicom.dcmread(path)
    for g in _groups(ds):
        g.ContentSequence = [it for it in g.ContentSequence if it.ValueType != "NUM"]
    ds.save_as(tmp_path / "empty.dcm")
    with pytest.raises(DicomLoadError, match="no measurement group with a Long Axis"):
        read_measurement_report(tmp_path / "empty.dcm")


def test_an_sr_of_another_series_does_not_locate(tmp_path: Path) -> None:
    path, _, _ = _write_sr(tmp_path)
    other = tiny_series(tmp_path / "other")
    with pytest.raises(GeometryError, match="not in this CT series"):
        locate_lesions(read_measurement_report(path), other.volume)
