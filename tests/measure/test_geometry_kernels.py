"""The fast geometric kernels behind the measurement equal their brute-force definitions."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial.distance import pdist, squareform

from recist_tool.measure.diameters import antipodal_pairs, convex_hull_2d, farthest_pairs, unique_rows
from recist_tool.measure.mask import _runs_connected, count_components_3d
from recist_tool.measure.planar import (
    Outline,
    contour_outline,
    field_diameter_bound,
    outline_field,
    outline_fields,
    perpendicular_chord,
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


def test_run_proof_of_one_piece_agrees_with_labelling() -> None:
    """The row-run shortcut answers "one piece" only for masks that are one piece, and does so
    for compact ones."""
    rng = np.random.default_rng(9)
    proved = 0
    for _ in range(1500):
        shape = tuple(int(v) for v in rng.integers(1, 9, 3))
        m = ndimage.gaussian_filter(rng.normal(size=shape), rng.uniform(0.3, 2.0)) > rng.uniform(
            -0.5, 0.5)
        if not m.any():
            continue
        n = ndimage.label(m, structure=np.ones((3, 3, 3), bool))[1]
        if _runs_connected(m):
            proved += 1
            assert n == 1
        assert count_components_3d(m) == n
    assert proved > 300
    ball = np.linalg.norm(np.indices((9, 15, 15)) - np.array([4, 7, 7])[:, None, None, None],
                          axis=0) <= 4
    assert _runs_connected(ball)
    assert not _runs_connected(np.concatenate([ball, ball], axis=2))  # two separate balls


def test_unique_rows_is_numpy_unique() -> None:
    rng = np.random.default_rng(10)
    for _ in range(300):
        a = rng.integers(-3, 3, (int(rng.integers(1, 30)), 2)) * 0.5
        assert np.array_equal(unique_rows(a), np.unique(a, axis=0))


def test_stacked_outline_fields_equal_single_ones() -> None:
    rng = np.random.default_rng(11)
    m = ndimage.gaussian_filter(rng.normal(size=(6, 40, 40)), (0, 3, 3)) > 0.02
    m[1] = False
    m[2] = np.zeros((40, 40), bool)
    m[2, 20, 5:35] = True  # a thin line: smaller smoothing width
    m[:, :3] = m[:, -3:] = m[:, :, :3] = m[:, :, -3:] = False
    for k, (field, sigma) in enumerate(outline_fields(m, (0.7, 0.8))):
        if not m[k].any():
            continue
        single, single_sigma = outline_field(m[k], (0.7, 0.8))
        assert sigma == single_sigma
        assert np.array_equal(field, single)


def _chord_broadcast(outline: Outline, u: np.ndarray) -> float:
    """Longest inside chord perpendicular to ``u`` on lines just beside every vertex, by
    testing every line against every edge."""
    v = np.array([-u[1], u[0]])
    a = np.concatenate(outline.polygons)
    b = np.concatenate([np.roll(p, -1, axis=0) for p in outline.polygons])
    ts = np.unique(a @ u)
    ts = np.concatenate([ts + 1e-9 * max(1.0, np.abs(ts).max()),
                         ts - 1e-9 * max(1.0, np.abs(ts).max())])
    best = 0.0
    for t in ts:
        au, bu = a @ u, b @ u
        hit = (np.minimum(au, bu) <= t) & (t < np.maximum(au, bu))
        s = np.sort((a @ v + (t - au) / np.where(bu != au, bu - au, 1) * ((b - a) @ v))[hit])
        if s.size:
            best = max(best, float((s[1::2] - s[0::2]).max()))
    return best


def test_short_axis_chord_search_equals_line_by_line_search() -> None:
    rng = np.random.default_rng(12)
    for _ in range(8):
        m = ndimage.gaussian_filter(rng.normal(size=(40, 40)), 3.0) > 0.0
        m[:3] = m[-3:] = m[:, :3] = m[:, -3:] = False
        if not m.any():
            continue
        field, sigma = outline_field(m, (0.7, 0.8))
        outline = contour_outline(field, (0.7, 0.8), sigma)
        th = rng.uniform(0, np.pi)
        u = np.array([np.sin(th), np.cos(th)])
        chord = perpendicular_chord(outline, u, max_lines=10_000, denoise=False)
        assert chord is not None
        assert chord.length == pytest.approx(_chord_broadcast(outline, u), abs=1e-9)
