"""The phantom's analytic geometry: ellipsoid sections, poses and partial-volume rasterisation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import ConvexHull

from recist_tool.sample_data.phantom import Ellipsoid, LesionShape, Pose, SliceGrid, paint_lesion


def _numeric_section(ell: Ellipsoid, z: float, n: int = 721) -> tuple[float, float]:
    """Long and short axis of the plane section by brute force on boundary points."""
    c = np.asarray(ell.center)
    h = ell.half_extent()
    # boundary of the section: for each direction, bisect the radius where the point leaves
    angles = np.linspace(0, 2 * np.pi, n, endpoint=False)
    pts = []
    # a point inside the section: the analytic centre is not used; scan a grid for one
    xs = np.linspace(c[0] - h[0], c[0] + h[0], 201)
    ys = np.linspace(c[1] - h[1], c[1] + h[1], 201)
    gx, gy = np.meshgrid(xs, ys)
    inside = ell.contains(np.stack([gx, gy, np.full_like(gx, z)], -1))
    assert inside.any()
    p0 = np.array([gx[inside].mean(), gy[inside].mean()])
    for a in angles:
        d = np.array([np.cos(a), np.sin(a)])
        lo, hi = 0.0, 2.0 * float(h.max())
        for _ in range(50):
            mid = (lo + hi) / 2
            q = p0 + mid * d
            if ell.contains(np.array([q[0], q[1], z])):
                lo = mid
            else:
                hi = mid
        pts.append(p0 + lo * d)
    pts = np.array(pts)
    hull = pts[ConvexHull(pts).vertices]
    dist = np.linalg.norm(hull[:, None] - hull[None], axis=-1)
    i, j = np.unravel_index(np.argmax(dist), dist.shape)
    la = dist[i, j]
    u = (hull[j] - hull[i]) / la
    perp = np.array([-u[1], u[0]])
    proj = pts @ perp
    return float(la), float(proj.max() - proj.min())


@pytest.mark.parametrize(
    ("semi", "yaw", "tilt", "dz"),
    [((14.0, 11.0, 12.0), 30.0, 15.0, 0.0), ((20.0, 15.5, 17.0), -20.0, 10.0, 4.0),
     ((12.5, 9.0, 14.0), 15.0, 0.0, -6.0), ((8.0, 8.0, 8.0), 0.0, 0.0, 3.0),
     ((16.0, 9.0, 20.0), 70.0, 35.0, 7.0)],
)
def test_axial_section_matches_brute_force(semi, yaw, tilt, dz):
    ell = Ellipsoid.oriented((3.0, -7.0, 11.0), semi, yaw, tilt)
    la, sa, _ = ell.axial_section(11.0 + dz)
    la_num, sa_num = _numeric_section(ell, 11.0 + dz)
    assert la == pytest.approx(la_num, abs=0.02)
    assert sa == pytest.approx(sa_num, abs=0.05)
    assert la >= sa


def test_section_misses_plane_outside_shape():
    ell = Ellipsoid.oriented((0.0, 0.0, 0.0), (5.0, 4.0, 3.0), 10.0, 20.0)
    assert ell.axial_section(50.0) is None


def test_pose_round_trip_and_placed_ellipsoid():
    pose = Pose(1.3, (2.5, -4.0, -151.0))
    p = np.array([[10.0, -20.0, 30.0], [0.0, 0.0, 0.0]])
    assert np.allclose(pose.to_body(pose.to_lps(p)), p)
    ell = Ellipsoid.oriented((10.0, -20.0, 30.0), (9.0, 6.0, 5.0), 25.0, 12.0)
    placed = ell.placed(pose)
    rng = np.random.default_rng(3)
    pts = rng.uniform(-12, 12, size=(2000, 3)) + np.array([10.0, -20.0, 30.0])
    assert np.array_equal(ell.contains(pts), placed.contains(pose.to_lps(pts)))


def test_partial_volume_preserves_lesion_volume():
    grid = SliceGrid(64, 64, (0.8, 0.8), -25.2, -25.2, tuple(-20.0 + 2.5 * k for k in range(17)),
                     2.5)
    vol = np.zeros(grid.shape, np.float32)
    ell = Ellipsoid.oriented((0.3, -1.1, 0.7), (9.0, 7.0, 8.0), 33.0, 21.0)
    paint_lesion(vol, grid, LesionShape(ell, 100.0))
    vox_ml = 0.8 * 0.8 * 2.5 / 1000.0
    true_ml = 4.0 / 3.0 * np.pi * 9.0 * 7.0 * 8.0 / 1000.0
    assert vol.sum() / 100.0 * vox_ml == pytest.approx(true_ml, rel=0.01)
    # partial volume: boundary voxels hold fractions, the inside is full
    assert ((vol > 0) & (vol < 100)).any()
    assert vol.max() == pytest.approx(100.0)


def test_cavity_core_is_air():
    grid = SliceGrid(48, 48, (0.7, 0.7), -16.45, -16.45, tuple(-10.0 + 1.25 * k for k in range(17)),
                     1.25)
    vol = np.full(grid.shape, -850.0, np.float32)
    outer = Ellipsoid((0.0, 0.0, 0.0), (10.0, 8.0, 9.0))
    paint_lesion(vol, grid, LesionShape(outer, 40.0, outer.scaled(0.45), -1000.0))
    k = int(np.argmin(np.abs(np.asarray(grid.z))))
    assert vol[k, 23:25, 23:25].max() < -900  # the air core
    ring = vol[k, 24, 24 + 8]  # 5.6 mm from the centre: between core (4.5) and wall (10)
    assert ring == pytest.approx(40.0, abs=1.0)
