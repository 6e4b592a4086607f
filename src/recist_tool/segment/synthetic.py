"""Synthetic CT lesions with exact masks, for tests and the ``synthetic`` evaluation dataset.

A small torso-like phantom (soft tissue, fat, two lungs, liver, a vertebra) on an anisotropic grid
with one lesion of known shape: a solid lung nodule, a part-solid nodule, a cavitating nodule, a
hypodense liver metastasis or a lymph node in fat. The truth mask is the analytic shape sampled at
voxel centres; the image has partial-volume blur and noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np
from scipy import ndimage

from recist_tool.volume import Volume

KINDS = ("lung_solid", "lung_partsolid", "lung_cavity", "liver_met", "node")


@dataclass(frozen=True)
class SyntheticCase:
    """One synthetic lesion: the CT, its truth mask, a click and the lesion's parameters."""

    name: str
    volume: Volume
    mask: np.ndarray
    kind: str
    radii_mm: tuple[float, float, float]
    centre_zyx: tuple[int, int, int]


def _ellipsoid(shape, spacing, centre, radii, rot=None) -> np.ndarray:
    zz, yy, xx = (np.arange(n) - c for n, c in zip(shape, centre, strict=True))
    p = np.stack(np.meshgrid(zz * spacing[0], yy * spacing[1], xx * spacing[2], indexing="ij"), -1)
    if rot is not None:
        p = p @ rot
    return np.sum((p / np.asarray(radii)) ** 2, axis=-1)


def phantom(shape=(40, 160, 160), spacing=(2.5, 0.75, 0.75), seed: int = 0) -> tuple[np.ndarray, dict]:
    """A torso-like HU array and the centres (voxel) of its organs."""
    rng = np.random.default_rng(seed)
    nz, ny, nx = shape
    c = (nz / 2, ny / 2, nx / 2)
    img = np.full(shape, -1000.0, np.float32)
    body = _ellipsoid(shape, spacing, c, (1e6, 0.47 * ny * spacing[1], 0.49 * nx * spacing[2]))
    img[body <= 1] = -100.0  # fat
    inner = _ellipsoid(shape, spacing, c, (1e6, 0.42 * ny * spacing[1], 0.45 * nx * spacing[2]))
    img[inner <= 1] = 40.0  # muscle / soft tissue
    organs = {}
    for side in (-1, 1):
        lc = (nz / 2, ny * 0.45, nx / 2 + side * nx * 0.22)
        lung = _ellipsoid(shape, spacing, lc, (nz * spacing[0], 0.3 * ny * spacing[1],
                                               0.17 * nx * spacing[2]))
        img[lung <= 1] = -850.0
        organs["lung_left" if side > 0 else "lung_right"] = lc
    med = (nz / 2, ny * 0.42, nx / 2)
    fat = _ellipsoid(shape, spacing, med, (nz * spacing[0], 0.16 * ny * spacing[1],
                                           0.1 * nx * spacing[2]))
    img[fat <= 1] = -100.0
    organs["mediastinum"] = med
    lv = (nz / 2, ny * 0.75, nx * 0.5)
    liver = _ellipsoid(shape, spacing, lv, (nz * spacing[0], 0.14 * ny * spacing[1],
                                            0.3 * nx * spacing[2]))
    img[liver <= 1] = 105.0
    organs["liver"] = lv
    vb = (nz / 2, ny * 0.9, nx / 2)
    img[_ellipsoid(shape, spacing, vb, (1e6, 8.0, 9.0)) <= 1] = 600.0
    organs["vertebra"] = vb
    del rng
    return img, organs


def make_case(kind: str, radius_mm: float, seed: int = 0, spacing=(2.5, 0.75, 0.75),
              shape=(40, 160, 160), noise_hu: float = 12.0) -> SyntheticCase:
    """A phantom with one lesion of ``kind`` (see :data:`KINDS`) and mean radius ``radius_mm``."""
    rng = np.random.default_rng(seed)
    img, organs = phantom(shape, spacing)
    if kind.startswith("lung"):
        base = organs["lung_left" if rng.random() < 0.5 else "lung_right"]
        jitter = rng.uniform(-4, 4, 3) / np.asarray(spacing)
    elif kind == "liver_met":
        base = organs["liver"]
        jitter = rng.uniform(-3, 3, 3) / np.asarray(spacing)
    else:
        base = organs["mediastinum"]
        jitter = np.array([rng.uniform(-3, 3) / spacing[0], 0.0, 0.0])
    centre = np.rint(np.asarray(base) + jitter).astype(int)
    if kind == "node":
        radii = (radius_mm * 1.3, radius_mm, min(radius_mm * 0.7, 8.0))
    else:
        radii = tuple(radius_mm * rng.uniform(0.85, 1.15, 3))
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    rho = _ellipsoid(shape, spacing, centre, radii, q if kind != "node" else None)
    mask = rho <= 1.0
    lesion = img.copy()
    if kind == "lung_solid":
        lesion[mask] = 35.0
    elif kind == "lung_partsolid":
        lesion[mask] = -450.0
        lesion[rho <= 0.3] = 20.0
    elif kind == "lung_cavity":
        lesion[mask] = 40.0
        lesion[rho <= 0.3] = -950.0
    elif kind == "liver_met":
        lesion[mask] = 45.0
    elif kind == "node":
        lesion[mask] = 35.0
    else:
        raise ValueError(f"unknown synthetic lesion kind {kind!r}")
    blur = np.array([0.4, 0.6, 0.6])
    out = ndimage.gaussian_filter(lesion, blur) + rng.normal(0, noise_hu, shape)
    vol = Volume.from_grid(np.rint(out).astype(np.int16), spacing, origin=(-60.0, -60.0, -50.0))
    return SyntheticCase(f"{kind}_{radius_mm:.0f}mm_s{seed}", vol, mask, kind,
                         cast("tuple[float, float, float]", tuple(float(r) for r in radii)),
                         cast("tuple[int, int, int]", tuple(int(v) for v in centre)))


def synthetic_dataset(n: int = 20, seed: int = 7) -> list[SyntheticCase]:
    """``n`` cases cycling through :data:`KINDS` with radii 4–15 mm (fixed seed)."""
    rng = np.random.default_rng(seed)
    return [make_case(KINDS[i % len(KINDS)], float(rng.uniform(4.0, 15.0)),
                      seed=seed * 1000 + i) for i in range(n)]
