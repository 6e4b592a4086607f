"""The half-contrast edge: a generous mask of a lung lesion cut back to where voxels are half lesion."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from recist_tool.segment import dice
from recist_tool.segment.edge import half_contrast_edge
from recist_tool.segment.evaluate import thick_slices
from recist_tool.volume import Volume

LUNG_HU, LESION_HU, GROUND_GLASS_HU = -850.0, 20.0, -450.0


def _sphere_in_lung(radius_mm: float, spacing=(0.5, 0.5, 0.5), shape=(80, 64, 64),
                    background: float = LUNG_HU, cavity_mm: float = 0.0,
                    solid_core_mm: float | None = None) -> tuple[Volume, np.ndarray]:
    """A solid sphere in aerated lung, thin slices; with a central air cavity, or part-solid:
    ground glass (-450 HU) around a solid core of ``solid_core_mm``."""
    zz, yy, xx = np.indices(shape, dtype=float)
    c = (np.asarray(shape) - 1) / 2
    r = np.sqrt(((zz - c[0]) * spacing[0]) ** 2 + ((yy - c[1]) * spacing[1]) ** 2
                + ((xx - c[2]) * spacing[2]) ** 2)
    mask = r <= radius_mm
    arr = np.where(mask, LESION_HU, background).astype(np.float32)
    if cavity_mm:
        arr[r <= cavity_mm] = -1000.0
    if solid_core_mm is not None:
        arr[mask & (r > solid_core_mm)] = GROUND_GLASS_HU
    rng = np.random.default_rng(0)
    arr += rng.normal(0, 15, arr.shape).astype(np.float32)
    return Volume.from_grid(arr, spacing), mask


def _cut(vol: Volume, generous: np.ndarray):
    seed = tuple(int(v) for v in ndimage.center_of_mass(generous))
    nz = np.argwhere(generous)
    lo, hi = nz.min(axis=0), nz.max(axis=0) + 1
    crop = generous[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
    mask, off, info = half_contrast_edge(vol, crop, tuple(lo), seed)
    full = np.zeros(vol.shape, bool)
    full[off[0]:off[0] + mask.shape[0], off[1]:off[1] + mask.shape[1],
         off[2]:off[2] + mask.shape[2]] = mask
    return full, info


def test_thick_slice_lesion_is_cut_back_to_its_half_lesion_voxels() -> None:
    """On 5 mm slices, a mask of every voxel at least 10 % lesion (the partial-volume fringe
    and the slices that graze the lesion's top and bottom; Dice 0.74 with the voxels at
    least half lesion) is cut back to those voxels."""
    thin, mask = _sphere_in_lung(7.0)
    vol, ref = thick_slices(thin, mask, 10)  # 5 mm slices
    fringe = np.asarray(vol.array) >= LUNG_HU + 0.1 * (LESION_HU - LUNG_HU)
    lab, _ = ndimage.label(fringe)
    generous = lab == lab[tuple(np.argwhere(ref)[0])]
    assert dice(generous, ref) < 0.75 and generous[[0, -1]].sum() == 0
    assert (generous.any(axis=(1, 2)) & ~ref.any(axis=(1, 2))).sum() == 2  # the grazing slices
    cut, info = _cut(vol, generous)
    assert dice(cut, ref) >= 0.93
    assert info["level_hu"] == pytest.approx(0.5 * (LESION_HU + LUNG_HU), abs=40)
    assert "kept" not in info


def test_cavity_of_a_cavitating_lesion_stays_in_the_mask() -> None:
    """The air of a cavity is below the level, but it is enclosed: it stays lesion."""
    vol, mask = _sphere_in_lung(8.0, cavity_mm=4.0)
    generous = ndimage.binary_dilation(mask, iterations=3)
    cut, _ = _cut(vol, generous)
    assert dice(cut, mask) >= 0.95
    c = tuple(int(v) for v in (np.asarray(vol.shape) - 1) // 2)
    assert cut[c]


def test_ground_glass_of_a_part_solid_nodule_is_its_outer_layer() -> None:
    """Around a part-solid nodule's solid core, the ground glass is a layer of even density (a
    plateau of the depth profile, not a partial-volume ramp): the edge is drawn half-way from
    it to the lung, and the ground glass stays lesion."""
    vol, mask = _sphere_in_lung(9.0, solid_core_mm=5.0, shape=(80, 72, 72))
    generous = ndimage.binary_dilation(mask, iterations=3)
    cut, info = _cut(vol, generous)
    assert info["core_hu"] == pytest.approx(LESION_HU, abs=60)
    assert info["outer_layer_hu"] == pytest.approx(GROUND_GLASS_HU, abs=30)
    assert dice(cut, mask) >= 0.97


def test_lesion_without_lung_around_it_is_left_as_it_was() -> None:
    """No aerated lung around the mask (a soft-tissue lesion): no level to cut to."""
    vol, mask = _sphere_in_lung(7.0, background=40.0)
    generous = ndimage.binary_dilation(mask, iterations=2)
    cut, info = _cut(vol, generous)
    assert np.array_equal(cut, generous)
    assert info["kept"] == "no aerated lung around the mask"
