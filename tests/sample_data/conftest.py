"""A generated two-subject trial shared by the sample-data tests, and a plain DICOM reader."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pydicom
import pytest

from recist_tool.sample_data import generate_trial


@pytest.fixture(scope="session")
def trial(tmp_path_factory) -> tuple[Path, dict]:
    """``(folder, ground truth)`` of the trial with seed 0 and two subjects."""
    out = tmp_path_factory.mktemp("trial")
    gt = generate_trial(out, seed=0, n_subjects=2)
    return out, gt


def read_series(folder: Path, series_uid: str) -> tuple[np.ndarray, list[pydicom.Dataset]]:
    """HU array ``(z, y, x)`` of one series, slices sorted by position along the normal.

    Independent of the project's loader: plain pydicom, geometry from the headers.
    """
    dss = []
    for f in sorted(folder.iterdir()):
        ds = pydicom.dcmread(f)
        if ds.SeriesInstanceUID == series_uid:
            dss.append(ds)
    iop = np.asarray(dss[0].ImageOrientationPatient, float)
    normal = np.cross(iop[:3], iop[3:])
    dss.sort(key=lambda d: float(np.dot(np.asarray(d.ImagePositionPatient, float), normal)))
    hu = np.stack([d.pixel_array * float(d.RescaleSlope) + float(d.RescaleIntercept) for d in dss])
    return hu, dss


def lps_to_voxel(dss: list[pydicom.Dataset], p: list[float]) -> tuple[int, int, int]:
    """Nearest voxel ``(k, row, col)`` of LPS point ``p`` from IPP, IOP and PixelSpacing."""
    iop = np.asarray(dss[0].ImageOrientationPatient, float)
    row_cos, col_cos = iop[:3], iop[3:]
    normal = np.cross(row_cos, col_cos)
    p = np.asarray(p, float)
    ipps = np.array([np.asarray(d.ImagePositionPatient, float) for d in dss])
    k = int(np.argmin(np.abs(ipps @ normal - p @ normal)))
    dy, dx = (float(v) for v in dss[k].PixelSpacing)  # row spacing, column spacing
    d = p - ipps[k]
    return k, int(round(d @ col_cos / dy)), int(round(d @ row_cos / dx))


def load_ground_truth(folder: Path) -> dict:
    return json.loads((folder / "ground_truth.json").read_text())


class _Helpers:
    read_series = staticmethod(read_series)
    lps_to_voxel = staticmethod(lps_to_voxel)
    load_ground_truth = staticmethod(load_ground_truth)


@pytest.fixture(scope="session")
def dcm() -> type[_Helpers]:
    """The plain-pydicom helpers above, for test modules (no relative imports needed)."""
    return _Helpers
