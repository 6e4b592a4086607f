"""The loader benchmark's input: one large series, uncompressed or JPEG 2000 lossless."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless

from recist_tool.sample_data import write_benchmark_series


def _read(folder):
    dss = sorted((pydicom.dcmread(f) for f in folder.iterdir()),
                 key=lambda d: float(d.ImagePositionPatient[2]))
    return dss, np.stack([d.pixel_array for d in dss])


@pytest.mark.parametrize("workers", [1, 2])
def test_jpeg2000_series_is_lossless_copy_of_explicit(tmp_path, workers):
    shape = (6, 128, 128)
    a = write_benchmark_series(tmp_path / "e", shape=shape, transfer_syntax="explicit", seed=2)
    b = write_benchmark_series(tmp_path / "j", shape=shape, transfer_syntax="jpeg2000", seed=2,
                               workers=workers)
    assert a["n_files"] == b["n_files"] == 6
    assert b["bytes"] < a["bytes"]
    dse, pe = _read(tmp_path / "e")
    dsj, pj = _read(tmp_path / "j")
    assert {d.file_meta.TransferSyntaxUID for d in dse} == {ExplicitVRLittleEndian}
    assert {d.file_meta.TransferSyntaxUID for d in dsj} == {JPEG2000Lossless}
    assert pe.shape == shape and np.array_equal(pe, pj)
    # compression keeps the deterministic instance UIDs and the geometry
    assert [d.SOPInstanceUID for d in dse] == [d.SOPInstanceUID for d in dsj]
    assert [d.ImagePositionPatient for d in dse] == [d.ImagePositionPatient for d in dsj]
    gaps = np.diff([float(d.ImagePositionPatient[2]) for d in dse])
    assert np.allclose(gaps, 1.0)
    assert float(dse[0].PixelSpacing[0]) == pytest.approx(350.0 / 128)
    # a phantom, not noise: the body and air are both there
    hu = pe.astype(float) - 1024.0
    assert (hu < -900).mean() > 0.1 and (np.abs(hu - 40) < 60).mean() > 0.1


def test_bad_benchmark_arguments(tmp_path):
    with pytest.raises(ValueError, match="transfer_syntax"):
        write_benchmark_series(tmp_path, shape=(2, 32, 32), transfer_syntax="jpegls")
    with pytest.raises(ValueError, match="square"):
        write_benchmark_series(tmp_path, shape=(2, 32, 48))
