"""Tiny synthetic CT series for loader tests (written with pydicom, a few KB each)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid


def ct_slice(
    pixels: np.ndarray,
    position: tuple[float, float, float],
    *,
    series_uid: str,
    orientation: tuple[float, ...] = (1, 0, 0, 0, 1, 0),
    spacing: tuple[float, float] = (0.7, 0.8),
    instance: int = 1,
    intercept: float = -1024.0,
    slope: float = 1.0,
    thickness: float | None = 2.5,
    modality: str = "CT",
    image_type: tuple[str, ...] = ("ORIGINAL", "PRIMARY", "AXIAL"),
    acquisition: int = 1,
) -> FileDataset:
    """One CT slice; ``pixels`` are stored values (uint16)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset("slice", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = modality
    ds.PatientID = "TEST-001"
    ds.PatientName = "Test^Phantom"
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = "1.2.826.0.1.3680043.8.498.2"
    ds.StudyDate = "20260102"
    ds.SeriesNumber = 3
    ds.InstanceNumber = instance
    ds.AcquisitionNumber = acquisition
    ds.ImageType = list(image_type)
    ds.ImagePositionPatient = [f"{v:.6f}" for v in position]
    ds.ImageOrientationPatient = [f"{v:.6f}" for v in orientation]
    ds.PixelSpacing = [f"{v:.6f}" for v in spacing]
    if thickness is not None:
        ds.SliceThickness = thickness
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.RescaleIntercept = intercept
    ds.RescaleSlope = slope
    ds.PixelData = pixels.astype("<u2").tobytes()
    return ds


def write_series(
    folder: Path,
    n: int = 6,
    shape: tuple[int, int] = (12, 10),
    gap: float = 2.5,
    tilt_shift_mm: float = 0.0,
    seed: int = 0,
    **kw,
) -> tuple[list[Path], np.ndarray]:
    """Write an ``n``-slice series; returns the files (shuffled names) and stored values."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    uid = kw.pop("series_uid", None) or generate_uid()
    stored = rng.integers(0, 2000, size=(n, *shape)).astype(np.uint16)
    order = rng.permutation(n)
    files = []
    iop = np.array(kw.get("orientation", (1, 0, 0, 0, 1, 0)), float)
    normal = np.cross(iop[:3], iop[3:])
    for k in range(n):
        # slices step along the normal; a tilted gantry adds an in-plane drift along the column
        pos = tuple(np.array([-50.0, -60.0, 10.0]) + k * gap * normal + k * tilt_shift_mm * iop[3:])
        ds = ct_slice(stored[k], pos, series_uid=uid, instance=int(order[k]) + 1, **kw)
        path = folder / f"IM{order[k]:04d}"
        ds.save_as(path, enforce_file_format=True)
        files.append(path)
    return files, stored
