"""Concave shapes, split lesions, nodes, crops, tilted and unevenly spaced stacks, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from recist_tool.errors import MeasurementError
from recist_tool.measure import measure_mask
from recist_tool.measure.planar import long_axis, slice_outline
from recist_tool.volume import Volume

from .shapes import Ellipsoid, random_rotation


def _disk(shape, cy, cx, r, dy=1.0, dx=1.0):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return ((yy - cy) * dy) ** 2 + ((xx - cx) * dx) ** 2 <= r * r


def _assert_chord_inside(mask2d: np.ndarray, seg_voxel, margin_px: float = 0.75) -> None:
    """Every point of the chord farther than ``margin_px`` from its ends is in the lesion.

    A chord may graze a concave edge, so "in" means: the nearest pixel is a mask pixel or
    touches one (sub-pixel outline); a chord through a cavity or a concavity fails by far.
    """
    p, q = np.asarray(seg_voxel[0])[1:], np.asarray(seg_voxel[1])[1:]
    n = max(int(np.hypot(*(q - p)) * 20), 2)
    t = np.linspace(0, 1, n)
    pts = p[None] + t[:, None] * (q - p)[None]
    away = np.minimum(np.hypot(*(pts - p).T), np.hypot(*(pts - q).T)) > margin_px
    iy, ix = np.rint(pts[away]).astype(int).T
    outside = ndimage.distance_transform_edt(~mask2d)
    assert outside[iy, ix].max() <= 1.0, "short axis leaves the lesion"
    assert mask2d[iy, ix].mean() > 0.95


def _one_slice(m2d: np.ndarray, dy=1.0, dx=1.0) -> Volume:
    return Volume.from_grid(m2d[None].astype(np.uint8), (5.0, dy, dx))


def test_crescent_short_axis_lies_inside() -> None:
    m = _disk((120, 120), 60, 60, 40) & ~_disk((120, 120), 60, 78, 32)
    r = measure_mask(_one_slice(m))
    _assert_chord_inside(m, r.short_axis_endpoints_voxel)
    assert r.long_axis_mm > 70
    # the convex hull's width across the long axis crosses the concavity and is longer
    from recist_tool.measure.planar import slice_outline

    hull = slice_outline(m, (1.0, 1.0)).hull_vertices()
    ends = np.asarray(r.long_axis_endpoints_voxel)[:, 1:]
    u = (ends[1] - ends[0]) / np.linalg.norm(ends[1] - ends[0])
    proj = hull @ np.array([-u[1], u[0]])
    assert r.short_axis_mm < float(proj.max() - proj.min()) - 5.0


def test_dumbbell_short_axis_is_a_lobe_not_the_bar() -> None:
    m = _disk((80, 160), 40, 40, 25) | _disk((80, 160), 40, 120, 18)
    m[37:44, 40:120] = True  # 7-pixel bar
    r = measure_mask(_one_slice(m))
    assert r.long_axis_mm == pytest.approx(25 + 80 + 18, abs=1.0)
    assert r.short_axis_mm == pytest.approx(50, abs=1.0)
    _assert_chord_inside(m, r.short_axis_endpoints_voxel)
    assert r.n_components == 1


def test_cavity_splits_chords() -> None:
    ring = _disk((100, 100), 50, 50, 30) & ~_disk((100, 100), 50, 50, 18)
    ring[:, :50] |= _disk((100, 100), 50, 50, 30)[:, :50]  # fill left half: a C with a cavity
    r = measure_mask(_one_slice(ring))
    _assert_chord_inside(ring, r.short_axis_endpoints_voxel)


def test_split_lesion_components() -> None:
    m = _disk((80, 140), 40, 35, 20) | _disk((80, 140), 40, 105, 12)
    r = measure_mask(_one_slice(m, 0.7, 0.7))
    assert r.n_components == 2
    big, small = r.components
    assert big.long_axis_mm == pytest.approx(40 * 0.7, abs=0.7)
    assert small.long_axis_mm == pytest.approx(24 * 0.7, abs=0.7)
    assert big.area_mm2 > small.area_mm2
    assert r.long_axis_mm > big.long_axis_mm + small.long_axis_mm  # spans the gap


def test_node_uses_slice_with_largest_short_axis() -> None:
    m = np.zeros((3, 80, 80), bool)
    yy, xx = np.mgrid[:80, :80]
    m[0] = ((yy - 40) / 12) ** 2 + ((xx - 40) / 35) ** 2 <= 1  # long and thin
    m[2] = ((yy - 40) / 20) ** 2 + ((xx - 40) / 22) ** 2 <= 1  # round, shorter
    vol = Volume.from_grid(m.astype(np.uint8), (2.0, 1.0, 1.0), origin=(0, 0, -30))
    lesion = measure_mask(vol)
    node = measure_mask(vol, node=True)
    assert lesion.slice_index == 0 and not lesion.node
    assert node.slice_index == 2 and node.node
    assert node.short_axis_mm == pytest.approx(40, abs=1.0)
    assert node.recist_diameter_mm == node.short_axis_mm
    assert lesion.recist_diameter_mm == lesion.long_axis_mm


def test_crop_with_offset_gives_identical_result() -> None:
    rng = np.random.default_rng(5)
    ell = Ellipsoid((12.0, 8.0, 6.0), random_rotation(rng), np.array([30.0, 40.0, 20.0]))
    vol = Volume.from_grid(np.zeros((40, 90, 80), np.int16), (1.0, 0.8, 0.9))
    full = ell.rasterise(vol)
    zs, ys, xs = (np.flatnonzero(full.any(axis=ax)) for ax in ((1, 2), (0, 2), (0, 1)))
    off = (zs[0] - 2, ys[0] - 3, xs[0] - 1)
    crop = full[off[0]:zs[-1] + 3, off[1]:ys[-1] + 2, off[2]:xs[-1] + 4]
    a = measure_mask(vol, full)
    b = measure_mask(vol, crop, offset=off)
    assert b.long_axis_mm == pytest.approx(a.long_axis_mm, abs=1e-9)
    assert b.short_axis_mm == pytest.approx(a.short_axis_mm, abs=1e-9)
    assert b.slice_index == a.slice_index
    np.testing.assert_allclose(b.long_axis_endpoints_lps, a.long_axis_endpoints_lps, atol=1e-9)
    np.testing.assert_allclose(b.long_axis_endpoints_voxel, a.long_axis_endpoints_voxel,
                               atol=1e-9)
    assert b.volume_ml == pytest.approx(a.volume_ml)
    assert b.max_3d_diameter_mm == pytest.approx(a.max_3d_diameter_mm)
    # end points are on the lesion's boundary in LPS: inside a slightly grown ellipsoid
    big = Ellipsoid(tuple(ell.axes + 1.0), ell.rot, ell.centre)
    assert big.inside(np.asarray(a.long_axis_endpoints_lps)).all()


def _tilted_volume(shape, spacing_yx, positions) -> Volume:
    return Volume.from_slices(np.zeros(shape, np.uint8), positions, (1, 0, 0), (0, 1, 0),
                              spacing_yx)


def test_tilted_and_uneven_stacks() -> None:
    rng = np.random.default_rng(11)
    nz, ny, nx = 30, 70, 60
    dy, dx = 0.7, 0.8
    gaps = rng.uniform(1.0, 2.5, nz - 1)
    locs = np.concatenate([[0.0], np.cumsum(gaps)])
    shear = np.tan(np.radians(20.0))  # gantry tilt: slices drift along y
    tilted = _tilted_volume((nz, ny, nx), (dy, dx),
                            np.stack([np.zeros(nz), locs * shear, locs], axis=1))
    straight = _tilted_volume((nz, ny, nx), (dy, dx),
                              np.stack([np.zeros(nz), np.zeros(nz), locs], axis=1))
    assert tilted.is_sheared and not tilted.is_uniform
    ell = Ellipsoid((20.0, 13.0, 9.0), random_rotation(rng),
                    np.array([24.0, 24.0 + locs[-1] / 2 * shear, locs[-1] / 2]))
    mask = ell.rasterise(tilted)
    a = measure_mask(tilted, mask)
    b = measure_mask(straight, mask)
    # in-plane results do not depend on where the slices sit
    assert a.long_axis_mm == b.long_axis_mm and a.short_axis_mm == b.short_axis_mm
    assert a.slice_index == b.slice_index
    np.testing.assert_allclose(a.long_axis_endpoints_voxel, b.long_axis_endpoints_voxel)
    # volume: voxel count with the real gaps
    counts = mask.reshape(nz, -1).sum(axis=1)
    assert a.volume_ml == pytest.approx(float(counts @ tilted.voxel_volume_ml()))
    assert a.volume_ml == pytest.approx(ell.volume_ml, rel=0.04)
    # 3D: exact LPS positions recover the true diameter; ignoring the tilt does not
    assert a.max_3d_diameter_mm == pytest.approx(40.0, abs=1.5)
    # brute-force reference on the exact LPS voxel centres: the 3D diameter is edge to edge,
    # so it exceeds the centre-to-centre maximum by less than a voxel
    from scipy.spatial.distance import pdist

    for vol, res in ((tilted, a), (straight, b)):
        centres = vol.index_to_lps(np.argwhere(mask).astype(float))
        ref = pdist(centres).max()
        assert ref < res.max_3d_diameter_mm < ref + max(gaps)
    assert abs(a.max_3d_diameter_mm - b.max_3d_diameter_mm) > 0.3
    # LPS end points lie on the tilted slice plane they were measured on
    lps = np.asarray(a.long_axis_endpoints_lps)
    np.testing.assert_allclose(lps[:, 2], locs[a.slice_index])


def test_long_axis_is_exact_maximum_of_the_outline() -> None:
    rng = np.random.default_rng(2)
    from scipy.spatial.distance import pdist

    for _ in range(20):
        m = rng.random((40, 50)) < 0.5
        m[:5] = False
        o = slice_outline(m, (0.6, 0.9))
        assert long_axis(o, correct=False).length == pytest.approx(pdist(o.points).max())


def test_errors() -> None:
    vol = Volume.from_grid(np.zeros((4, 20, 20), np.uint8), (1.0, 1.0, 1.0))
    with pytest.raises(MeasurementError, match="empty"):
        measure_mask(vol)
    m = np.ones((2, 5, 5), bool)
    with pytest.raises(MeasurementError, match="does not fit"):
        measure_mask(vol, m, offset=(3, 0, 0))
    with pytest.raises(MeasurementError, match="does not fit"):
        measure_mask(vol, m, offset=(0, -1, 0))
    labels = np.zeros((4, 20, 20), np.uint8)
    labels[1, 5:9, 5:9] = 2
    with pytest.raises(MeasurementError, match="empty"):
        measure_mask(vol.with_array(labels), label=1)
    r = measure_mask(vol.with_array(labels), label=2)
    assert 4.0 < r.long_axis_mm < 4 * np.sqrt(2)  # a 4 x 4 pixel block: side < LD < diagonal


def test_tiny_masks_are_measured() -> None:
    vol = Volume.from_grid(np.zeros((1, 9, 9), np.uint8), (2.0, 0.7, 0.7))
    for pix in ([(4, 4)], [(4, 4), (4, 5)], [(4, 4), (5, 5)], [(2, 2), (6, 6)]):
        m = np.zeros((1, 9, 9), bool)
        for y, x in pix:
            m[0, y, x] = True
        r = measure_mask(vol, m)
        assert r.long_axis_mm > 0
        assert r.short_axis_mm is not None and r.short_axis_mm > 0
        assert r.n_components == (2 if len(pix) == 2 and pix[1] == (6, 6) else 1)
    one = measure_mask(vol, np.pad(np.ones((1, 1, 1), bool), ((0, 0), (4, 4), (4, 4))))
    assert 0.5 < one.long_axis_mm < 1.5 * 0.7 * np.sqrt(2)


def test_slice_search_bounds_hold_on_random_shapes() -> None:
    """The per-slice bounds that prune the slice search enclose the measured axis."""
    from recist_tool.measure.mask import _slice_bounds

    rng = np.random.default_rng(8)
    for _ in range(60):
        dy, dx = rng.uniform(0.5, 1.0, 2)
        m = rng.random((2, 30, 30)) < rng.uniform(0.2, 0.7)
        m[:, :5] = m[:, -5:] = m[:, :, :5] = m[:, :, -5:] = False
        m[1] = ndimage.binary_opening(m[1])
        lb, ub = _slice_bounds(m, (dy, dx))
        for k in range(2):
            if m[k].any():
                ld = long_axis(slice_outline(m[k], (dy, dx))).length
                assert lb[k] <= ld < ub[k]


def test_json_round_trip() -> None:
    import json

    from recist_tool.measure import AxisMeasurement, measure_line

    m = _disk((80, 140), 40, 35, 20) | _disk((80, 140), 40, 105, 12)
    vol = _one_slice(m, 0.7, 0.8)
    for r in (measure_mask(vol, node=True),
              measure_line(vol, (0, 10, 10), (0, 30, 50)),
              measure_line(vol, (0, 10, 10), (0, 30, 50), short_axis=((0, 25, 10), (0, 15, 30)))):
        back = AxisMeasurement.from_dict(json.loads(json.dumps(r.to_dict())))
        assert back == r
