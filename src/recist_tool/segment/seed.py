"""Checks every segmenter applies to a click before segmenting: is there tissue a lesion can be?"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from recist_tool.segment.base import NoLesionError
from recist_tool.volume import Volume

#: Median HU below which the click is on air or aerated lung (or outside the body).
AIR_MAX_HU = -600.0
#: Median HU above which the click is on bone, calcification or dense contrast.
BONE_MIN_HU = 250.0
#: Median HU range of fat (no lesion).
FAT_RANGE_HU = (-160.0, -60.0)
#: HU range of fat with partial volume (adipose tissue about -150 to -50 HU on CT): what a
#: lesion's surroundings or a rim must not be taken for.
FAT_HU = (-200.0, -30.0)
#: Lesion/surroundings contrast (HU) below which a prompt has no lesion boundary.
MIN_CONTRAST_HU = 30.0
#: Radius (mm) of the ball around the seed whose median decides.
SEED_RADIUS_MM = 1.5
#: A click below :data:`AIR_MAX_HU` is still a (ground-glass) lesion when its median is at least
#: this much denser than the aerated lung around it ...
GROUND_GLASS_CONTRAST_HU = 150.0
#: ... and not below this.
GROUND_GLASS_MIN_HU = -800.0
#: Half-size (mm) of the box around the click in which the aerated lung's level is taken.
LUNG_LEVEL_RADIUS_MM = 15.0


class _Grid(Protocol):
    """What :func:`seed_statistics` reads of a volume (a crop's stand-in has only this)."""

    @property
    def array(self) -> np.ndarray: ...

    @property
    def spacing(self) -> tuple[float, ...]: ...

    @property
    def shape(self) -> tuple[int, ...]: ...


def seed_statistics(volume: Volume | _Grid, seed: Sequence[int] | np.ndarray,
                    radius_mm: float = SEED_RADIUS_MM) -> tuple[float, float]:
    """Median and robust spread (1.4826 x MAD) of HU in a small ball around ``seed``."""
    sp = np.asarray(volume.spacing)
    r = np.maximum(np.floor(radius_mm / sp).astype(int), 0)
    s = np.asarray(seed, int)
    lo = np.maximum(s - r, 0)
    hi = np.minimum(s + r + 1, volume.shape)
    block = np.asarray(volume.array[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]], np.float32)
    zz, yy, xx = np.indices(block.shape)
    d2 = (((zz + lo[0] - s[0]) * sp[0]) ** 2 + ((yy + lo[1] - s[1]) * sp[1]) ** 2
          + ((xx + lo[2] - s[2]) * sp[2]) ** 2)
    vals = block[d2 <= radius_mm**2 + 1e-6]
    if vals.size == 0:
        vals = block.ravel()
    med = float(np.median(vals))
    mad = float(np.median(np.abs(vals - med))) * 1.4826
    return med, mad


def check_seed(volume: Volume, seed: Sequence[int] | np.ndarray) -> float:
    """Reject clicks on air, fat or bone; return the median HU around the seed.

    A click below :data:`AIR_MAX_HU` is accepted when it is a ground-glass opacity: at least
    :data:`GROUND_GLASS_CONTRAST_HU` denser than the surrounding aerated lung.

    Raises
    ------
    NoLesionError
        With reason ``air``, ``fat`` or ``bone``.
    """
    med, _ = seed_statistics(volume, seed)
    where = f"(z, y, x) = {tuple(int(v) for v in seed)}"
    if med < AIR_MAX_HU and not _ground_glass(volume, seed, med):
        raise NoLesionError(f"no lesion at this point: {where} is air or aerated lung "
                            f"({med:.0f} HU)", reason="air")
    if med > BONE_MIN_HU and not _in_lung(volume, seed, fraction=0.35):
        raise NoLesionError(f"no lesion at this point: {where} is bone or calcification "
                            f"({med:.0f} HU)", reason="bone")
    if FAT_RANGE_HU[0] <= med <= FAT_RANGE_HU[1] and not _in_lung(volume, seed, 15.0, 0.1):
        raise NoLesionError(f"no lesion at this point: {where} is fat ({med:.0f} HU)",
                            reason="fat")
    return med


def _box(volume: Volume, seed: Sequence[int] | np.ndarray, radius_mm: float) -> np.ndarray:
    sp = np.asarray(volume.spacing)
    r = np.maximum(np.floor(radius_mm / sp).astype(int), 0)
    s = np.asarray(seed, int)
    lo = np.maximum(s - r, 0)
    hi = np.minimum(s + r + 1, volume.shape)
    return np.asarray(volume.array[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]])


def _ground_glass(volume: Volume, seed: Sequence[int] | np.ndarray, median_hu: float) -> bool:
    """True when a click below :data:`AIR_MAX_HU` is clearly denser than the aerated lung
    around it (a ground-glass nodule), not the lung itself.

    The lung's level is the 30th percentile of the values below :data:`AIR_MAX_HU` in a box of
    half-size :data:`LUNG_LEVEL_RADIUS_MM` (mostly parenchyma, even when a ground-glass nodule
    fills part of the box).
    """
    if median_hu < GROUND_GLASS_MIN_HU:
        return False
    block = _box(volume, seed, LUNG_LEVEL_RADIUS_MM)
    aerated = block[block < AIR_MAX_HU]
    if aerated.size < 50:
        return False
    return median_hu >= float(np.percentile(aerated, 30)) + GROUND_GLASS_CONTRAST_HU


def _in_lung(volume: Volume, seed: Sequence[int] | np.ndarray, radius_mm: float = 6.0,
             fraction: float = 0.15) -> bool:
    """True when aerated lung (< -600 HU) fills over ``fraction`` of a box around the seed.

    A fat-like value in lung is the partial-volume edge of a small or ground-glass nodule, and a
    very dense spot surrounded by lung is a calcified nodule, not fat or bone.
    """
    block = _box(volume, seed, radius_mm)
    return bool(np.mean(block < AIR_MAX_HU) > fraction)
