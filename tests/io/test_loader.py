"""Loader behaviour on synthetic series: ordering, grouping, geometry warnings, bad input."""

from __future__ import annotations

import os
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recist_tool import io
from recist_tool.cli import main
from recist_tool.errors import DicomLoadError, GeometryError, RecistToolError, UsageError
from tests.io.dicom_factory import ct_slice, write_series


def test_slices_sorted_by_position_not_instance_number(tmp_path: Path) -> None:
    files, stored = write_series(tmp_path / "s", n=7)
    vol = io.load_volume(tmp_path / "s")
    assert vol.shape == (7, 12, 10)
    np.testing.assert_array_equal(vol.array, stored.astype(np.int32) - 1024)
    assert vol.array.dtype == np.int16
    np.testing.assert_allclose(vol.slice_gaps, 2.5)
    assert vol.spacing == pytest.approx((2.5, 0.7, 0.8))
    assert vol.meta.warning_codes == ()
    assert vol.meta.study_date == "2026-01-02"


def test_float_output_when_slope_not_one(tmp_path: Path) -> None:
    _, stored = write_series(tmp_path / "s", n=3, slope=0.5, intercept=-1000.5)
    vol = io.load_volume(tmp_path / "s")
    assert vol.array.dtype == np.float32
    np.testing.assert_allclose(vol.array, stored * 0.5 - 1000.5)


def test_missing_slice_and_nonuniform_reported_and_real_gaps_kept(tmp_path: Path) -> None:
    files, _ = write_series(tmp_path / "s", n=6)
    by_pos = sorted(files, key=lambda f: float(pydicom.dcmread(f).ImagePositionPatient[2]))
    by_pos[3].unlink()
    vol = io.load_volume(tmp_path / "s")
    assert "MISSING_SLICE" in vol.meta.warning_codes
    np.testing.assert_allclose(vol.slice_gaps, [2.5, 2.5, 5.0, 2.5])
    # volume per voxel uses real gaps: slice next to the hole owns more
    assert vol.voxel_volume_ml()[2] > vol.voxel_volume_ml()[1]
    with pytest.raises(GeometryError, match="not uniform"):
        io.save_volume(vol, tmp_path / "x.nii.gz")


def test_tilt_without_tag_detected_and_sheared_affine_exact(tmp_path: Path) -> None:
    write_series(tmp_path / "s", n=5, tilt_shift_mm=0.9)
    vol = io.load_volume(tmp_path / "s")
    assert "GANTRY_TILT" in vol.meta.warning_codes
    assert vol.is_sheared
    assert vol.tilt_degrees == pytest.approx(np.degrees(np.arctan2(0.9, 2.5)), abs=0.01)
    out = io.save_volume(vol, tmp_path / "t.nii.gz")
    back = io.load_volume_file(out)
    np.testing.assert_allclose(back.slice_positions, vol.slice_positions, atol=1e-4)
    with pytest.raises(GeometryError, match="sheared"):
        io.save_volume(vol, tmp_path / "t.nrrd")
    flat = io.load_volume(tmp_path / "s", resample=True)
    assert flat.is_orthogonal_grid
    io.save_volume(flat, tmp_path / "t.mha")
    back = io.load_volume_file(tmp_path / "t.mha")
    np.testing.assert_allclose(back.affine, flat.affine, atol=1e-4)


def test_thick_slices_flagged(tmp_path: Path) -> None:
    write_series(tmp_path / "s", n=3, gap=7.0, thickness=7.0)
    assert "THICK_SLICES" in io.load_volume(tmp_path / "s").meta.warning_codes


def test_one_uid_two_orientations_split(tmp_path: Path) -> None:
    uid = pydicom.uid.generate_uid()
    write_series(tmp_path / "a", n=4, series_uid=uid, seed=1)
    write_series(tmp_path / "b", n=4, series_uid=uid, seed=2, orientation=(1, 0, 0, 0, 0, -1))
    res = io.scan(tmp_path)
    assert len(res.stacks) == 2
    assert {s.stack_id for s in res.stacks} == {uid, f"{uid}#2"}
    assert all("MIXED_ORIENTATION" in s.summary()["warnings"] for s in res.stacks)
    with pytest.raises(UsageError, match="--series"):
        io.load_volume(tmp_path)
    assert io.load_volume(tmp_path, series=f"{uid}#2").shape[0] == 4


def test_lone_orthogonal_slice_is_a_localizer(tmp_path: Path) -> None:
    uid = pydicom.uid.generate_uid()
    write_series(tmp_path, n=5, series_uid=uid)
    ds = ct_slice(np.zeros((12, 10), np.uint16), (0, 0, 0), series_uid=uid,
                  orientation=(0, 1, 0, 0, 0, -1))
    ds.save_as(tmp_path / "scout", enforce_file_format=True)
    res = io.scan(tmp_path)
    assert len(res.stacks) == 1 and res.stacks[0].summary()["n_slices"] == 5
    assert [k.reason for k in res.skipped] == ["LOCALIZER"]


def test_two_acquisitions_at_same_positions_split(tmp_path: Path) -> None:
    uid = pydicom.uid.generate_uid()
    write_series(tmp_path / "a", n=4, series_uid=uid, acquisition=1, seed=1)
    write_series(tmp_path / "b", n=4, series_uid=uid, acquisition=2, seed=2)
    res = io.scan(tmp_path)
    assert len(res.stacks) == 2
    assert all("MULTIPLE_ACQUISITIONS" in s.summary()["warnings"] for s in res.stacks)


def test_zip_and_path_traversal(tmp_path: Path) -> None:
    files, stored = write_series(tmp_path / "s", n=4)
    archive = tmp_path / "study.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in files:
            zf.write(f, f"study/series/{f.name}")
        zf.writestr("../../evil.txt", b"x")
    vol = io.load_volume(archive)
    np.testing.assert_array_equal(vol.array, stored.astype(np.int32) - 1024)
    res = io.scan(archive)
    assert any(k.reason == "UNSAFE_PATH" for k in res.skipped)
    assert not (tmp_path.parent / "evil.txt").exists()


def test_headers_read_in_several_processes_give_the_serial_result(tmp_path: Path) -> None:
    """Enough files for parallel header reading; skipped files among them keep their place."""
    files, stored = write_series(tmp_path, n=70, shape=(6, 5))
    (tmp_path / "IM0035.txt").write_text("not DICOM, between two slices in file order")
    serial = io.load_volume(tmp_path, workers=1)
    parallel = io.load_volume(tmp_path, workers=3)
    np.testing.assert_array_equal(parallel.array, stored.astype(np.int32) - 1024)
    np.testing.assert_array_equal(parallel.array, serial.array)
    np.testing.assert_array_equal(parallel.slice_positions, serial.slice_positions)
    assert parallel.meta.sop_instance_uids == serial.meta.sop_instance_uids
    assert [k.path for k in io.scan(tmp_path).skipped] == [str(tmp_path / "IM0035.txt")]


def test_non_ct_and_non_images_skipped_with_reasons(tmp_path: Path) -> None:
    write_series(tmp_path, n=3)
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "empty").write_bytes(b"")
    mr = ct_slice(np.zeros((12, 10), np.uint16), (0, 0, 0), series_uid="1.2.3", modality="MR")
    mr.save_as(tmp_path / "mr", enforce_file_format=True)
    nopix = ct_slice(np.zeros((12, 10), np.uint16), (0, 0, 0), series_uid="1.2.4")
    del nopix.PixelData
    nopix.save_as(tmp_path / "nopix", enforce_file_format=True)
    reasons = {Path(k.path).name: k.reason for k in io.scan(tmp_path).skipped}
    assert reasons == {"notes.txt": "NOT_DICOM", "empty": "NOT_DICOM", "mr": "NOT_CT",
                       "nopix": "NO_PIXEL_DATA"}


@pytest.mark.parametrize("case", ["empty_dir", "missing", "one_slice", "one_position",
                                  "truncated", "huge_rows", "corrupt_j2k"])
def test_bad_input_one_line_error_exit_3(tmp_path: Path, case: str, capsys,
                                         shared_data: Path) -> None:
    target = tmp_path / "in"
    if case == "empty_dir":
        target.mkdir()
    elif case == "missing":
        pass
    elif case == "one_slice":
        write_series(target, n=1)
    elif case == "one_position":
        write_series(target, n=3, gap=0.0)
    elif case == "truncated":
        files, _ = write_series(target, n=3)
        for f in files:
            f.write_bytes(f.read_bytes()[:-100])
    elif case == "huge_rows":
        files, _ = write_series(target, n=3)
        for f in files:
            ds = pydicom.dcmread(f)
            ds.Rows = 65535
            ds.Columns = 65535
            ds.save_as(f)
    elif case == "corrupt_j2k":
        src = shared_data / "dicom/totalsegmentator_ct_j2k/dicom"
        if not src.is_dir():
            pytest.skip("shared J2K series absent")
        target.mkdir()
        for i, f in enumerate(sorted(src.iterdir())):
            data = bytearray(f.read_bytes())
            if i == 5:  # damage the codestream in the middle of one frame
                mid = len(data) // 2
                data[mid:mid + 4000] = os.urandom(4000)
                data = data[: mid + 5000]
            (target / f.name).write_bytes(bytes(data))
    code = main(["convert", str(target), "-o", str(tmp_path / "o.nii.gz")])
    err = capsys.readouterr().err.strip()
    assert code == 3, err
    assert err.startswith("error:") and "Traceback" not in err
    assert len(err.splitlines()) <= 3  # one logical line (rich may wrap long paths)
    assert not (tmp_path / "o.nii.gz").exists()


def test_enhanced_ct_rescale_in_functional_groups(shared_data: Path) -> None:
    f = shared_data / "dicom/codecs_ct/eCT_Supplemental.dcm"
    if not f.exists():
        pytest.skip("shared eCT sample absent")
    vol = io.load_volume(f)
    assert vol.shape == (2, 512, 512)
    assert (int(vol.array.min()), int(vol.array.max())) == (-1024, 172)
    np.testing.assert_allclose(vol.slice_gaps, [10.0])


def test_uncompressed_equals_jpeg2000_lossless(shared_data: Path) -> None:
    a = shared_data / "dicom/codecs_ct/693_UNCR.dcm"
    b = shared_data / "dicom/codecs_ct/693_J2KR.dcm"
    if not (a.exists() and b.exists()):
        pytest.skip("shared codec pair absent")
    ua, _ = io.load_dicom_file(a)
    ub, _ = io.load_dicom_file(b)
    assert ua.shape == (1, 512, 512)
    np.testing.assert_array_equal(ua, ub)


def test_lossy_jpeg2000_matches_its_uncompressed_twin(shared_data: Path) -> None:
    a = shared_data / "dicom/codecs_ct/693_UNCI.dcm"
    b = shared_data / "dicom/codecs_ct/693_J2KI.dcm"
    if not (a.exists() and b.exists()):
        pytest.skip("shared codec pair absent")
    ua, hdr = io.load_dicom_file(a)
    ub, _ = io.load_dicom_file(b)
    assert hdr[0].bits_stored == 14 and hdr[0].pixel_representation == 1
    assert np.abs(ua.astype(int) - ub.astype(int)).max() <= 2


def test_toshiba_j2k_signedness_mismatch_reads_signed(shared_data: Path) -> None:
    """Codestream signed + PixelRepresentation 0, and the reverse: both read as the same image."""
    a = shared_data / "dicom/codecs_ct/TOSHIBA_J2K_SIZ1_PixRep0.dcm"
    b = shared_data / "dicom/codecs_ct/TOSHIBA_J2K_SIZ0_PixRep1.dcm"
    if not (a.exists() and b.exists()):
        pytest.skip("shared Toshiba pair absent")
    ha, _ = io.load_dicom_file(a)
    hb, _ = io.load_dicom_file(b)
    np.testing.assert_array_equal(ha, hb)
    assert int(ha.min()) == -2048  # CT padding, not 63488


@pytest.mark.parametrize("name", ["CT1_JLSN.dcm", "TOSHIBA_J2K_OpenJPEGv2Regression.dcm"])
def test_other_codecs_decode_to_ct_values(shared_data: Path, name: str) -> None:
    f = shared_data / "dicom/codecs_ct" / name
    if not f.exists():
        pytest.skip(f"{name} absent")
    hu, headers = io.load_dicom_file(f)
    assert hu.shape == (1, headers[0].rows, headers[0].columns)
    # padding/air at or below -1000, soft tissue and bone present, nothing beyond CT range
    assert -3100 <= hu.min() <= -1000 and 200 < hu.max() <= 4100
    assert np.percentile(hu, 99) > -200


def test_bad_sequence_is_a_clear_error(shared_data: Path) -> None:
    f = shared_data / "dicom/codecs_ct/bad_sequence.dcm"
    if not f.exists():
        pytest.skip("bad_sequence.dcm absent")
    res = io.scan(f)
    assert not res.stacks
    with pytest.raises(RecistToolError):
        io.load_volume(f)


_MUTABLE = ["Rows", "Columns", "BitsAllocated", "BitsStored", "PixelRepresentation",
            "SamplesPerPixel", "NumberOfFrames", "ImagePositionPatient",
            "ImageOrientationPatient", "PixelSpacing", "RescaleSlope", "SeriesInstanceUID",
            "Modality", "SOPClassUID"]
_VALUES = st.one_of(st.integers(-(2**31), 2**31 - 1), st.text(max_size=12),
                    st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=7),
                    st.just(None))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutations=st.lists(st.tuples(st.sampled_from(_MUTABLE), _VALUES), min_size=1, max_size=4),
       cut=st.one_of(st.none(), st.integers(0, 3000)))
def test_mutated_headers_only_raise_our_errors(tmp_path_factory, mutations, cut) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    files, _ = write_series(folder, n=3)
    ds = pydicom.dcmread(files[1])
    warnings.simplefilter("ignore")
    for key, value in mutations:
        try:
            if value is None:
                if key in ds:
                    delattr(ds, key)
            else:
                setattr(ds, key, value)
        except Exception:
            continue
    try:
        ds.save_as(files[1])
    except Exception:
        return
    if cut is not None:
        files[1].write_bytes(files[1].read_bytes()[:cut])
    try:
        io.load_volume(folder)
    except (RecistToolError, DicomLoadError):
        pass


def test_header_claims_beyond_memory_refused_before_allocation(tmp_path: Path, monkeypatch) -> None:
    from recist_tool.io import pixels

    write_series(tmp_path / "s", n=3)
    monkeypatch.setattr(pixels, "available_memory", lambda: 1000)
    with pytest.raises(DicomLoadError, match="more than the memory available"):
        io.load_volume(tmp_path / "s")


def test_dicomdir_path_finds_the_series_beside_it(shared_data: Path) -> None:
    dirfile = shared_data / "dicom/dcm_qa_ct/Philips_S21610/DIRFILE"
    if not dirfile.exists():
        pytest.skip("Philips DIRFILE absent")
    res = io.scan(dirfile)
    assert sorted(s.summary()["n_slices"] for s in res.stacks) == [54, 58]


def test_same_text_bytes_in_two_character_sets_decode_differently(tmp_path: Path) -> None:
    """Header values are cached by raw bytes; for text the character set is part of the key."""
    for folder, charset, description in (("latin1", "ISO_IR 100", "é"),
                                         ("cyrillic", "ISO_IR 144", "щ")):
        uid = pydicom.uid.generate_uid()
        for k in range(3):
            ds = ct_slice(np.zeros((4, 4), np.uint16), (0.0, 0.0, 2.0 * k), series_uid=uid,
                          instance=k + 1)
            ds.SpecificCharacterSet = charset
            ds.SeriesDescription = description
            (tmp_path / folder).mkdir(exist_ok=True)
            ds.save_as(tmp_path / folder / f"IM{k}", enforce_file_format=True)
    raw = {pydicom.dcmread(tmp_path / f / "IM0").get_item("SeriesDescription").value
           for f in ("latin1", "cyrillic")}
    assert raw == {b"\xe9 "}  # the same bytes on disk
    found = {s.folder: s.summary()["series_description"] for s in io.scan(tmp_path).stacks}
    assert found == {"latin1": "é", "cyrillic": "щ"}
