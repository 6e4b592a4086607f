"""The fast geometric kernels behind the measurement equal their brute-force definitions."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial.distance import pdist, squareform

from recist_tool.measure.mask import count_components_3d
from recist_tool.measure.planar import (
    antipodal_pairs,
    contour_outline,
    convex_hull_2d,
    farthest_pairs,
    field_diameter_bound,
    outline_field,
)


def _point_sets(rng: np.random.Generator) -> list[np.ndarray]:
    th = np.sort(rng.uniform(0, 2 * np.pi, 500))
    return [
        rng.normal(size=(300, 2)) * rng.uniform(0.1, 10, 2),  # random cloud
        np.round(rng.normal(size=(200, 2)) * 5) * (0.7, 0.9),  # lattice: ties
        np.column_stack([30 * np.cos(th), 30 * np.sin(th)]),  # circle: every point on the hull
        np.column_stack([30 * np.cos(th), 8 * np.sin(th)]),  # elongated
        np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]),  # square: two diagonals tie
        np.repeat(rng.normal(size=(30, 2)), 3, axis=0),  # duplicates
    ]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_hull_antipodal_pairs_reach_the_diameter(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for pts in _point_sets(rng):
        hull = convex_hull_2d(pts)
        if hull.shape[0] < 3:
            continue
        _, _, d2 = antipodal_pairs(hull)
        assert np.sqrt(d2.max()) == pytest.approx(pdist(pts).max(), rel=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_farthest_pairs_are_every_pair_at_the_diameter(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for pts in _point_sets(rng):
        pts = pts @ np.linalg.qr(rng.normal(size=(2, 2)))[0]
        pairs = farthest_pairs(pts)
        u = np.unique(pts, axis=0)
        d2 = squareform(pdist(u, "sqeuclidean"))
        expected = {tuple(sorted((tuple(u[i]), tuple(u[j]))))
                    for i, j in zip(*np.nonzero(d2 >= d2.max() * (1 - 2e-9)), strict=True) if i < j}
        got = {tuple(sorted((tuple(p), tuple(q)))) for p, q in pairs}
        assert got == expected
        for p, q in pairs:
            assert tuple(p) > tuple(q)


def test_field_bound_is_never_below_the_outline_diameter() -> None:
    rng = np.random.default_rng(4)
    n_tight = 0
    for _ in range(80):
        dy, dx = rng.uniform(0.5, 1.0, 2)
        m = ndimage.gaussian_filter(rng.normal(size=(40, 40)), rng.uniform(1, 4)) > 0.05
        m[:3] = m[-3:] = m[:, :3] = m[:, -3:] = False
        if not m.any():
            continue
        field, sigma = outline_field(m, (dy, dx))
        bound = field_diameter_bound(field, (dy, dx))
        outline = contour_outline(field, (dy, dx), sigma)
        assert outline is not None
        diameter = pdist(outline.points).max() if len(outline.points) > 1 else 0.0
        assert bound >= diameter - 1e-9
        n_tight += bound <= diameter * 1.002 + 1e-9  # 32 directions: within 0.2 %
    assert n_tight > 60


@pytest.mark.parametrize("shape", [(12, 30, 30), (40, 80, 80)])  # scipy's and SimpleITK's sizes
def test_3d_component_count_equals_scipy_label(shape: tuple[int, int, int]) -> None:
    rng = np.random.default_rng(5)
    for _ in range(10):
        m = ndimage.gaussian_filter(rng.normal(size=shape), 1.2) > rng.uniform(0.1, 0.4)
        expected = ndimage.label(m, structure=np.ones((3, 3, 3), bool))[1]
        assert count_components_3d(m) == expected
    diagonal = np.zeros((3, 3, 3), bool)
    diagonal[0, 0, 0] = diagonal[1, 1, 1] = diagonal[2, 2, 2] = True  # corner contacts only
    assert count_components_3d(diagonal) == 1
    assert count_components_3d(np.zeros((2, 2, 2), bool)) == 0
