"""Stored values → HU on uncompressed slices: unused high bits, signed data, int16 wrap, upgrade."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydicom.uid import generate_uid

from recist_tool import io
from tests.io.dicom_factory import ct_slice


def _write(folder: Path, raw: np.ndarray, *, bits_stored: int = 16, signed: bool = False,
           intercept: float = -1024.0) -> None:
    """Write ``raw`` (uint16 bit patterns, (z, y, x)) as a series, one file per slice."""
    folder.mkdir(parents=True)
    uid = generate_uid()
    for k, plane in enumerate(raw):
        ds = ct_slice(plane, (0.0, 0.0, 2.0 * k), series_uid=uid, instance=k + 1,
                      intercept=intercept)
        ds.BitsStored = bits_stored
        ds.HighBit = bits_stored - 1
        ds.PixelRepresentation = 1 if signed else 0
        ds.save_as(folder / f"IM{k:03d}", enforce_file_format=True)


def test_unused_high_bits_are_ignored(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    values = rng.integers(0, 4096, size=(3, 6, 5)).astype(np.uint16)
    overlay = rng.integers(0, 16, size=values.shape).astype(np.uint16) << 12
    _write(tmp_path / "s", values | overlay, bits_stored=12)
    vol = io.load_volume(tmp_path / "s")
    assert vol.array.dtype == np.int16
    np.testing.assert_array_equal(vol.array, values.astype(np.int32) - 1024)


def test_signed_12_bit_values_are_sign_extended(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    values = rng.integers(-2048, 2048, size=(3, 6, 5))
    garbage = rng.integers(0, 16, size=values.shape) << 12
    raw = ((values & 0xFFF) | garbage).astype(np.uint16)
    _write(tmp_path / "s", raw, bits_stored=12, signed=True, intercept=-24.0)
    vol = io.load_volume(tmp_path / "s")
    assert vol.array.dtype == np.int16
    np.testing.assert_array_equal(vol.array, values - 24)


def test_unsigned_16_bit_above_int16_range_is_exact_after_intercept(tmp_path: Path) -> None:
    values = np.array([0, 1, 32767, 32768, 40000, 65535], dtype=np.uint16).reshape(1, 2, 3)
    _write(tmp_path / "s", np.repeat(values, 3, axis=0), intercept=-32768.0)
    vol = io.load_volume(tmp_path / "s")
    assert vol.array.dtype == np.int16
    np.testing.assert_array_equal(vol.array[1], values[0].astype(np.int32) - 32768)


@pytest.mark.parametrize("where", [0, 2])
def test_values_beyond_int16_give_exact_float32(tmp_path: Path, where: int) -> None:
    rng = np.random.default_rng(3)
    values = rng.integers(0, 3000, size=(3, 6, 5)).astype(np.uint16)
    values[where, 1, 2] = 60000  # 60000 - 1024 does not fit in int16
    _write(tmp_path / "s", values)
    vol = io.load_volume(tmp_path / "s")
    assert vol.array.dtype == np.float32
    np.testing.assert_array_equal(vol.array, values.astype(np.float32) - 1024)
