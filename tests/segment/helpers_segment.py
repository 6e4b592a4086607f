"""Shared helpers of the segmentation tests: sheared volumes and real LIDC cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from recist_tool.volume import Volume

#: The first six validation-split LIDC crops (by name) whose reference long axis is >= 10 mm;
#: not hand-picked: two of them are hard for ``classic`` (Dice 0.26 and 0.49 when chosen).
LIDC_VALIDATION_CASES = (
    "LIDC-IDRI-0012_R_4", "LIDC-IDRI-0043_R_1", "LIDC-IDRI-0043_R_2", "LIDC-IDRI-0043_R_3",
    "LIDC-IDRI-0056_R_1", "LIDC-IDRI-0057_R_1",
)


def sheared_volume(array: np.ndarray, spacing=(2.0, 0.8, 0.8), tilt_deg: float = 15.0,
                   uneven: bool = False) -> Volume:
    """An axial stack with gantry tilt (slice origins drift along y) and optionally uneven gaps."""
    nz = array.shape[0]
    gaps = np.full(nz, spacing[0])
    if uneven:
        gaps[nz // 2:] *= 1.5
    z = np.concatenate([[0.0], np.cumsum(gaps[:-1])])
    drift = np.tan(np.radians(tilt_deg)) * z
    positions = np.stack([np.full(nz, -40.0), -40.0 + drift, z - 20.0], axis=1)
    return Volume.from_slices(array, positions, (1, 0, 0), (0, 1, 0), spacing[1:])


def lidc_paths(shared: Path, key: str) -> tuple[Path, Path]:
    base = shared / "lesions" / "lidc_nodules"
    return base / "image" / f"{key}.nii.gz", base / "mask" / f"{key}.nii.gz"
