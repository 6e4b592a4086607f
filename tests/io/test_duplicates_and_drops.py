"""Copies of one instance, and slices a series loses on the way to its volume (issue #37, 5 and 6)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest

from recist_tool import io
from recist_tool.cli import main
from recist_tool.errors import DicomLoadError
from tests.io.dicom_factory import write_series


def _by_position(files: list[Path]) -> list[Path]:
    return sorted(files, key=lambda f: float(pydicom.dcmread(f).ImagePositionPatient[2]))


def _copy_with_other_pixels(src: Path, dst: Path) -> None:
    """``dst``: the instance ``src`` (same SOPInstanceUID, same position), one pixel changed."""
    ds = pydicom.dcmread(src)
    px = np.frombuffer(ds.PixelData, "<u2").copy()
    px[0] += 1
    ds.PixelData = px.tobytes()
    dst.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(dst)


def test_identical_copy_dropped_with_duplicate_file_warning(tmp_path: Path) -> None:
    files, stored = write_series(tmp_path / "a", n=4)
    (tmp_path / "b").mkdir()
    shutil.copy(files[2], tmp_path / "b" / "copy")
    vol = io.load_volume(tmp_path)
    assert vol.shape == (4, 12, 10)
    np.testing.assert_array_equal(vol.array, stored.astype(np.int32) - 1024)
    assert vol.meta.warning_codes == ("DUPLICATE_FILE",)


def test_same_instance_same_position_other_pixels_is_an_error_naming_both(tmp_path: Path) -> None:
    files, _ = write_series(tmp_path / "a", n=4)
    first = _by_position(files)[1]
    other = tmp_path / "b" / "IM_OTHER"
    _copy_with_other_pixels(first, other)
    with pytest.raises(DicomLoadError) as exc:
        io.load_volume(tmp_path)
    text = str(exc.value)
    assert "\n" not in text
    assert str(first) in text and str(other) in text
    assert "CONFLICTING_DUPLICATE" in text
    # the loader never picks one of them by file order
    assert [k.reason for k in io.scan(tmp_path).skipped] == ["CONFLICTING_DUPLICATE"]


def test_conflicting_copy_reported_and_other_series_still_listed(tmp_path: Path, capsys) -> None:
    files, _ = write_series(tmp_path / "bad", n=4, seed=1)
    _copy_with_other_pixels(files[0], tmp_path / "bad-copy" / "IM")
    write_series(tmp_path / "good", n=3, seed=2)
    res = io.scan(tmp_path)
    assert [s.folder for s in res.stacks] == ["good"]
    (conflict,) = res.skipped
    assert conflict.reason == "CONFLICTING_DUPLICATE"
    assert conflict.series_uid == pydicom.dcmread(files[0]).SeriesInstanceUID
    with pytest.raises(DicomLoadError, match="CONFLICTING_DUPLICATE"):
        io.load_volume(tmp_path, series=conflict.series_uid)
    assert main(["info", str(tmp_path), "--json"]) == 0
    out = capsys.readouterr().out
    assert "CONFLICTING_DUPLICATE" in out and '"good"' in out
    assert main(["info", str(tmp_path)]) == 0  # the table: the good series and the skipped one
    out = capsys.readouterr().out
    assert "good" in out and "CONFLICTING_DUPLICATE" in out


def _even_slices(files: list[Path], change) -> list[Path]:
    """Apply ``change(ds)`` to every other slice (in position order); returns those files."""
    changed = _by_position(files)[::2]
    for f in changed:
        ds = pydicom.dcmread(f)
        change(ds)
        ds.save_as(f)
    return changed


def test_slices_skipped_from_a_built_series_are_a_warning(tmp_path: Path, capsys) -> None:
    """Even slices claim 32 bits over 16-bit data: the volume of the odd ones says so."""
    files, _ = write_series(tmp_path / "s", n=6)

    def to_32_bits(ds: pydicom.Dataset) -> None:
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 32, 32, 31

    _even_slices(files, to_32_bits)
    vol = io.load_volume(tmp_path / "s")
    assert vol.shape[0] == 3
    assert "DROPPED_SLICES" in vol.meta.warning_codes
    detail = next(w.message for w in vol.meta.warnings if w.code == "DROPPED_SLICES")
    assert "3 " in detail and "TRUNCATED" in detail
    (entry,) = io.scan(tmp_path / "s").to_dict()["series"]
    assert "DROPPED_SLICES" in entry["warnings"]
    assert main(["convert", str(tmp_path / "s"), "-o", str(tmp_path / "o.nii.gz")]) == 0
    assert "warnings: DROPPED_SLICES" in capsys.readouterr().out


def test_eight_bit_slices_among_sixteen_bit_ones_all_kept(tmp_path: Path) -> None:
    """Another BitsAllocated with matching pixel data is an encoding, not another stack."""
    files, stored = write_series(tmp_path / "s", n=6)
    k_of = {f: k for k, f in enumerate(_by_position(files))}

    def to_8_bits(ds: pydicom.Dataset) -> None:
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
        k = round((float(ds.ImagePositionPatient[2]) - 10.0) / 2.5)
        ds.PixelData = (stored[k] % 256).astype(np.uint8).tobytes()

    changed = _even_slices(files, to_8_bits)
    vol = io.load_volume(tmp_path / "s")
    assert vol.shape[0] == 6 and vol.meta.warning_codes == ()
    for f in changed:
        k = k_of[f]
        np.testing.assert_array_equal(vol.array[k], (stored[k] % 256).astype(np.int32) - 1024)


def test_eight_bit_header_over_sixteen_bit_data_is_not_read_as_half_an_image(tmp_path: Path) -> None:
    """BitsAllocated 8 over 16-bit pixel data: skipped (BAD_HEADER), and the volume warns."""
    files, _ = write_series(tmp_path / "s", n=6)

    def to_8_bits(ds: pydicom.Dataset) -> None:
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7

    _even_slices(files, to_8_bits)
    res = io.scan(tmp_path / "s")
    assert sorted(k.reason for k in res.skipped) == ["BAD_HEADER"] * 3
    (stack,) = res.stacks
    assert len(stack.frames) == 3
    assert "DROPPED_SLICES" in stack.summary()["warnings"]


def test_lone_orthogonal_slice_of_the_series_is_counted(tmp_path: Path) -> None:
    files, _ = write_series(tmp_path / "s", n=5)
    last = _by_position(files)[-1]
    ds = pydicom.dcmread(last)
    ds.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]
    ds.save_as(last)
    vol = io.load_volume(tmp_path / "s")
    assert vol.shape[0] == 4
    assert "DROPPED_SLICES" in vol.meta.warning_codes
