"""Volume geometry: exact voxel <-> LPS conversion on orthogonal, sheared and uneven stacks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recist_tool.errors import GeometryError
from recist_tool.volume import Volume


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def _stack(rng: np.random.Generator, nz: int, shear: float, uneven: bool) -> Volume:
    d = _random_rotation(rng)
    r, c = d[:, 2], d[:, 1]
    gaps = rng.uniform(0.5, 5.0, nz - 1) if uneven else np.full(nz - 1, 2.5)
    locs = np.concatenate([[0], np.cumsum(gaps)])
    origin = rng.uniform(-200, 200, 3)
    pos = origin + locs[:, None] * np.cross(r, c) + shear * locs[:, None] * c
    return Volume.from_slices(np.zeros((nz, 8, 9), np.int16), pos, r, c, (0.7, 0.9))


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 10_000), nz=st.integers(2, 12), shear=st.floats(-0.5, 0.5),
       uneven=st.booleans())
def test_index_lps_round_trip(seed: int, nz: int, shear: float, uneven: bool) -> None:
    rng = np.random.default_rng(seed)
    vol = _stack(rng, nz, shear, uneven)
    idx = np.column_stack([rng.uniform(0, nz - 1, 50), rng.uniform(-2, 10, 50),
                           rng.uniform(-2, 10, 50)])
    back = vol.lps_to_index(vol.index_to_lps(idx))
    np.testing.assert_allclose(back, idx, atol=1e-8)
    # integer indices land exactly on the slice's own position grid
    k = int(rng.integers(0, nz))
    p = vol.index_to_lps([k, 3, 4])
    expect = vol.slice_positions[k] + 3 * 0.7 * vol.direction[:, 1] + 4 * 0.9 * vol.direction[:, 2]
    np.testing.assert_allclose(p, expect, atol=1e-9)


def test_uniform_orthogonal_affine_matches_index_to_lps() -> None:
    vol = Volume.from_grid(np.zeros((5, 6, 7)), (2.0, 0.5, 0.6), origin=(1, 2, 3))
    assert vol.is_orthogonal_grid
    idx = np.array([[4, 5, 6], [1.5, 2.25, 0.1]])
    hom = np.column_stack([idx, np.ones(2)]) @ vol.affine.T
    np.testing.assert_allclose(hom[:, :3], vol.index_to_lps(idx))


def test_sheared_affine_is_exact_and_uneven_has_none() -> None:
    rng = np.random.default_rng(1)
    sheared = _stack(rng, 6, 0.3, uneven=False)
    assert sheared.is_sheared and sheared.is_uniform
    assert sheared.tilt_degrees == pytest.approx(np.degrees(np.arctan(0.3)), abs=1e-6)
    idx = np.array([[5, 7, 8], [2, 0, 0]], float)
    hom = np.column_stack([idx, np.ones(2)]) @ sheared.affine.T
    np.testing.assert_allclose(hom[:, :3], sheared.index_to_lps(idx), atol=1e-9)
    uneven = _stack(rng, 6, 0.0, uneven=True)
    with pytest.raises(GeometryError):
        _ = uneven.affine


def test_voxel_volume_uses_real_gaps() -> None:
    pos = np.array([[0, 0, 0], [0, 0, 1.0], [0, 0, 4.0]])
    vol = Volume.from_slices(np.zeros((3, 2, 2)), pos, (1, 0, 0), (0, 1, 0), (1.0, 1.0))
    np.testing.assert_allclose(vol.voxel_volume_ml() * 1000, [1.0, 2.0, 3.0])


def test_crop_keeps_geometry() -> None:
    rng = np.random.default_rng(3)
    vol = _stack(rng, 8, 0.2, uneven=True)
    sub = vol.crop((2, 1, 3), (6, 5, 8))
    np.testing.assert_allclose(sub.index_to_lps([1, 2, 3]), vol.index_to_lps([3, 3, 6]), atol=1e-9)


def test_resample_sheared_stack_keeps_values_in_place() -> None:
    nz, ny, nx = 5, 20, 20
    arr = np.zeros((nz, ny, nx), np.float32)
    arr[:, 8:12, 8:12] = 100.0  # a column of bright voxels along the sheared slice axis
    pos = np.array([[0.0, 2.0 * k * 0.3, 2.0 * k] for k in range(nz)])
    vol = Volume.from_slices(arr, pos, (1, 0, 0), (0, 1, 0), (1.0, 1.0))
    res = vol.resample_orthogonal()
    assert res.is_orthogonal_grid
    for k in range(nz):
        centre = vol.index_to_lps([k, 9.5, 9.5])
        z, y, x = np.rint(res.lps_to_index(centre)).astype(int)
        assert res.array[z, y, x] == pytest.approx(100.0)


def test_invalid_geometry_rejected() -> None:
    with pytest.raises(GeometryError):
        Volume.from_grid(np.zeros((2, 2)), (1, 1, 1))
    with pytest.raises(GeometryError):
        Volume.from_grid(np.zeros((2, 2, 2)), (0, 1, 1))
    with pytest.raises(GeometryError):
        Volume.from_slices(np.zeros((2, 2, 2)), np.zeros((2, 3)), (1, 0, 0), (0, 1, 0), (1, 1))


def test_slice_thickness_is_the_larger_of_gap_and_recorded_thickness() -> None:
    """An overlapping reconstruction (5 mm slices every 2.5 mm) is 5 mm thick; without a
    recorded thickness (NIfTI, NRRD) the gap stands in for it."""
    import dataclasses

    from recist_tool.volume import VolumeMeta

    vol = Volume.from_grid(np.zeros((4, 3, 3), np.int16), (2.5, 0.7, 0.7))
    assert vol.slice_thickness_mm == 2.5
    thick = dataclasses.replace(vol, meta=VolumeMeta(slice_thickness_mm=5.0))
    assert thick.slice_thickness_mm == 5.0
    thin = dataclasses.replace(vol, meta=VolumeMeta(slice_thickness_mm=1.0))
    assert thin.slice_thickness_mm == 2.5
