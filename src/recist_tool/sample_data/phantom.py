"""Analytic chest and upper-abdomen CT phantom, rasterised on an axial DICOM slice grid.

Coordinates
-----------
* The *body frame* (mm) is fixed to the patient: ``x`` towards the patient's left, ``y`` towards
  the back (posterior), ``z`` towards the head; ``(0, 0, 0)`` lies at the level of the carina on
  the body's axis. Anatomy and lesions are defined in this frame.
* A :class:`Pose` places the body in the scanner's DICOM patient coordinates (LPS, mm) by a rotation
  about ``z`` (yaw) and a translation; it is how a patient lies differently at each visit.
* A :class:`SliceGrid` is an axial acquisition: ``ImageOrientationPatient`` ``[1,0,0, 0,1,0]``,
  pixel ``(row r, column c)`` of slice ``k`` at LPS ``(x0 + c*dx, y0 + r*dy, z[k])``.

Arrays are ``(z, y, x)`` = ``(slice, row, column)`` in Hounsfield units (float32 before noise).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from scipy import ndimage
from scipy.spatial import ConvexHull, distance

__all__ = [
    "Pose",
    "BREATH_TOP_Z",
    "BREATH_BASE_Z",
    "SliceGrid",
    "Ellipsoid",
    "LesionShape",
    "AxialSection",
    "union_section",
    "union_diameter",
    "union_diameter_bound",
    "render_anatomy",
    "paint_lesion",
    "add_noise",
    "ORGAN_HU",
]

#: Tissue densities (HU) without / with intravenous contrast (portal-venous phase).
ORGAN_HU: dict[str, tuple[float, float]] = {
    "air": (-1000.0, -1000.0),
    "fat": (-100.0, -100.0),
    "soft_tissue": (40.0, 45.0),
    "lung": (-850.0, -850.0),
    "liver": (60.0, 105.0),
    "spleen": (50.0, 115.0),
    "blood": (45.0, 170.0),
    "stomach_fluid": (15.0, 15.0),
    "bone_cortex": (700.0, 700.0),
    "bone_cancellous": (250.0, 250.0),
    "disc": (80.0, 80.0),
    "csf": (15.0, 15.0),
}


def _hu(name: str, contrast: bool) -> float:
    return ORGAN_HU[name][1 if contrast else 0]


def _rot_z(deg: float) -> np.ndarray:
    a = np.deg2rad(deg)
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _rot_x(deg: float) -> np.ndarray:
    a = np.deg2rad(deg)
    c, s = np.cos(a), np.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def xyz(values: Iterable[float]) -> tuple[float, float, float]:
    """Three coordinates as a tuple of Python floats."""
    return cast("tuple[float, float, float]", tuple(float(v) for v in values))


def _as_rotation(m: np.ndarray) -> tuple[tuple[float, float, float], ...]:
    return tuple(xyz(row) for row in m)


#: Body-frame heights (mm) of the lung apices and bases between which breathing stretches the
#: anatomy (:attr:`Pose.breath_mm`).
BREATH_TOP_Z = 75.0
BREATH_BASE_Z = -90.0


@dataclass(frozen=True)
class Pose:
    """Rigid placement of the body frame in LPS: ``p_lps = Rz(yaw) @ p_body + translation``.

    Parameters
    ----------
    yaw_deg : float
        Rotation about the scanner's ``z`` axis, degrees.
    translation : tuple of float
        LPS position (mm) of the body frame's origin.
    breath_mm : float
        Inspiration level relative to the design (the full-size profile's breathing): the anatomy
        is displaced along ``z`` by :meth:`breath_shift`, 0 at the lung apices
        (:data:`BREATH_TOP_Z`) growing linearly to ``breath_mm`` caudally at the lung bases
        (:data:`BREATH_BASE_Z`) and below, so lungs stretch and the upper abdomen moves down
        (positive: deeper inspiration). Lesions move rigidly with the displacement at their
        centre (:meth:`lesion_pose`). 0 (the default) is the rigid pose of the small trial.
    """

    yaw_deg: float = 0.0
    translation: tuple[float, float, float] = (0.0, 0.0, 0.0)
    breath_mm: float = 0.0

    def breath_shift(self, z_body: float | np.ndarray) -> float | np.ndarray:
        """Caudal displacement (mm) of the anatomy at body-frame height ``z_body``.

        The content shown at ``z_body`` is the design's content at ``z_body + breath_shift``.
        """
        frac = np.clip((BREATH_TOP_Z - np.asarray(z_body, float)) / (BREATH_TOP_Z - BREATH_BASE_Z),
                       0.0, 1.0)
        return self.breath_mm * frac

    def lesion_pose(self, center_body: Sequence[float]) -> Pose:
        """The rigid pose that places a lesion centred at ``center_body`` (design frame).

        Without breathing this pose itself; with it the lesion is moved along ``z`` to where the
        breathing displacement takes its centre (solving ``z + breath_shift(z) = z_centre``).
        """
        if self.breath_mm == 0.0:
            return self
        zc = float(center_body[2])
        k = self.breath_mm / (BREATH_TOP_Z - BREATH_BASE_Z)
        if zc >= BREATH_TOP_Z:
            zd = zc
        elif zc - self.breath_mm <= BREATH_BASE_Z:
            zd = zc - self.breath_mm
        else:
            zd = (zc - k * BREATH_TOP_Z) / (1.0 - k)
        tx, ty, tz = self.translation
        return Pose(self.yaw_deg, (tx, ty, tz + (zd - zc)))

    @property
    def rotation(self) -> np.ndarray:
        """The 3x3 rotation matrix body → LPS."""
        return _rot_z(self.yaw_deg)

    def to_lps(self, p_body: Sequence[float] | np.ndarray) -> np.ndarray:
        """Map body-frame points ``(..., 3)`` to LPS."""
        return np.asarray(p_body, float) @ self.rotation.T + np.asarray(self.translation, float)

    def to_body(self, p_lps: Sequence[float] | np.ndarray) -> np.ndarray:
        """Map LPS points ``(..., 3)`` to the body frame."""
        return (np.asarray(p_lps, float) - np.asarray(self.translation, float)) @ self.rotation


@dataclass(frozen=True)
class SliceGrid:
    """An axial stack of slices in LPS.

    Parameters
    ----------
    rows, cols : int
        Matrix size.
    pixel_spacing : tuple of float
        ``(row spacing dy, column spacing dx)`` in mm, as DICOM PixelSpacing.
    x0, y0 : float
        LPS ``x`` and ``y`` of the centre of pixel ``(0, 0)``.
    z : tuple of float
        LPS ``z`` of each slice centre, in ascending order (array index order).
    thickness : float
        Nominal reconstructed slice thickness in mm (the ``z`` extent each slice integrates).
    """

    rows: int
    cols: int
    pixel_spacing: tuple[float, float]
    x0: float
    y0: float
    z: tuple[float, ...]
    thickness: float

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(nz, rows, cols)``."""
        return (len(self.z), self.rows, self.cols)

    def ipp(self, k: int) -> tuple[float, float, float]:
        """ImagePositionPatient of slice ``k``."""
        return (self.x0, self.y0, float(self.z[k]))

    def xy(self) -> tuple[np.ndarray, np.ndarray]:
        """LPS ``x`` (columns) and ``y`` (rows) coordinate vectors of pixel centres."""
        dy, dx = self.pixel_spacing
        return self.x0 + dx * np.arange(self.cols), self.y0 + dy * np.arange(self.rows)


@dataclass(frozen=True)
class AxialSection:
    """The analytic cross-section of a shape with an axial plane.

    ``long_axis_mm`` is the longest chord, ``short_axis_mm`` the longest chord perpendicular to
    it (edge to edge, as callipers on the image); ``slice_index`` the grid slice it was taken on.
    """

    slice_index: int
    z: float
    long_axis_mm: float
    short_axis_mm: float
    center_xy: tuple[float, float]


@dataclass(frozen=True)
class Ellipsoid:
    """A solid ellipsoid ``(p - c)^T A (p - c) <= 1``, ``A = R diag(1/s^2) R^T``.

    Parameters
    ----------
    center : tuple of float
        Centre (mm), in whatever frame the ellipsoid is used in.
    semi_axes : tuple of float
        Semi-axes ``s`` (mm) along the shape's own x, y, z.
    rotation : tuple of tuple of float, optional
        ``R``, the 3x3 rotation from the shape's axes to the frame (identity when omitted).
        :meth:`oriented` builds it from a yaw and a tilt.
    """

    center: tuple[float, float, float]
    semi_axes: tuple[float, float, float]
    rotation: tuple[tuple[float, float, float], ...] | None = None

    @classmethod
    def oriented(cls, center: Sequence[float], semi_axes: Sequence[float], yaw_deg: float = 0.0,
                 tilt_deg: float = 0.0) -> Ellipsoid:
        """An ellipsoid tipped by ``tilt_deg`` about x, then turned by ``yaw_deg`` about z."""
        return cls(xyz(center), xyz(semi_axes),
                   _as_rotation(_rot_z(yaw_deg) @ _rot_x(tilt_deg)))

    @property
    def rotation_matrix(self) -> np.ndarray:
        """``R`` as an array."""
        return np.eye(3) if self.rotation is None else np.asarray(self.rotation, float)

    @property
    def matrix(self) -> np.ndarray:
        """The quadratic form ``A`` (1/mm²)."""
        r = self.rotation_matrix
        return r @ np.diag(1.0 / np.asarray(self.semi_axes, float) ** 2) @ r.T

    def placed(self, pose: Pose) -> Ellipsoid:
        """The same ellipsoid expressed in LPS for a body placed by ``pose``."""
        c = xyz(pose.to_lps(self.center))
        return Ellipsoid(c, self.semi_axes, _as_rotation(pose.rotation @ self.rotation_matrix))

    def scaled(self, factor: float) -> Ellipsoid:
        """Concentric copy with every semi-axis multiplied by ``factor``."""
        return Ellipsoid(self.center, xyz(s * factor for s in self.semi_axes), self.rotation)

    def half_extent(self) -> np.ndarray:
        """Half-size of the axis-aligned bounding box (mm): ``sqrt(diag(A^-1))``."""
        return np.sqrt(np.diag(np.linalg.inv(self.matrix)))

    def contains(self, points: np.ndarray) -> np.ndarray:
        """Boolean array: which points ``(..., 3)`` lie inside."""
        d = np.asarray(points, float) - np.asarray(self.center, float)
        return np.einsum("...i,ij,...j->...", d, self.matrix, d) <= 1.0

    def section(self, z: float) -> tuple[np.ndarray, np.ndarray, float] | None:
        """The section with the plane ``z`` as an ellipse ``(u - m)^T B (u - m) <= k``.

        Returns ``(m, B, k)``: the centre ``m`` (in-plane ``x, y``), the form ``B = A[:2, :2]``
        and the level ``k`` (see :meth:`axial_section`), or None when the plane misses the shape.
        """
        a_mat = self.matrix
        b2 = a_mat[:2, :2]
        b = a_mat[:2, 2]
        dz = z - self.center[2]
        b2_inv_b = np.linalg.solve(b2, b)
        k = 1.0 - dz * dz * (a_mat[2, 2] - b @ b2_inv_b)
        if k <= 0.0:
            return None
        m = np.asarray(self.center[:2], float) - dz * b2_inv_b
        return m, b2, float(k)

    def axial_section(self, z: float) -> tuple[float, float, tuple[float, float]] | None:
        """Long axis, short axis (mm) and centre of the section with the plane ``z``.

        The section of an ellipsoid with a plane is an ellipse: with ``u`` the in-plane offset
        and ``dz = z - c_z``, ``u^T B u + 2 dz b.u + a dz^2 <= 1`` where ``B = A[:2,:2]``,
        ``b = A[:2,2]``, ``a = A[2,2]``. Completing the square gives an ellipse of form ``B``
        and level ``k = 1 - dz^2 (a - b^T B^-1 b)`` centred at ``-dz B^-1 b``; its diameters
        are ``2 sqrt(k / eig(B))``. Returns None when the plane misses the shape.
        """
        sec = self.section(z)
        if sec is None:
            return None
        m, b2, k = sec
        lam = np.linalg.eigvalsh(b2)  # ascending
        long_axis = 2.0 * np.sqrt(k / lam[0])
        short_axis = 2.0 * np.sqrt(k / lam[1])
        return float(long_axis), float(short_axis), (float(m[0]), float(m[1]))


@dataclass(frozen=True)
class LesionShape:
    """A lesion: a solid ellipsoid, or a union of ellipsoids, of density ``hu``, optionally with a
    core of ``core_hu``.

    A cavitating nodule is an outer ellipsoid of soft tissue with an air ``core`` inside; a
    necrotic metastasis has a core denser than air but less dense than its rim. ``lobes`` are
    further ellipsoids united with ``outer``: a lobulated mass, or merged lymph nodes (a nodal
    conglomerate). The core lies inside ``outer``.
    """

    outer: Ellipsoid
    hu: float
    core: Ellipsoid | None = None
    core_hu: float = -1000.0
    lobes: tuple[Ellipsoid, ...] = ()

    @property
    def parts(self) -> tuple[Ellipsoid, ...]:
        """``outer`` and the ``lobes``: the ellipsoids whose union is the lesion."""
        return (self.outer, *self.lobes)

    def contains(self, points: np.ndarray) -> np.ndarray:
        """Boolean array: which points ``(..., 3)`` lie inside the lesion (any of its parts)."""
        inside = self.outer.contains(points)
        for lobe in self.lobes:
            inside |= lobe.contains(points)
        return inside

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Corners ``(low, high)`` (mm) of the axis-aligned box holding every part."""
        lows = [np.asarray(e.center) - e.half_extent() for e in self.parts]
        highs = [np.asarray(e.center) + e.half_extent() for e in self.parts]
        return np.min(lows, axis=0), np.max(highs, axis=0)

    def placed(self, pose: Pose) -> LesionShape:
        """The lesion in LPS for a body placed by ``pose``."""
        return LesionShape(self.outer.placed(pose), self.hu,
                           None if self.core is None else self.core.placed(pose), self.core_hu,
                           tuple(lobe.placed(pose) for lobe in self.lobes))

    def section(self, z: float) -> tuple[float, float, tuple[float, float]] | None:
        """Long axis, short axis (mm) and centre of the section with the plane ``z``.

        For one ellipsoid the closed form of :meth:`Ellipsoid.axial_section`; for a union the
        section is a union of ellipses, measured by :func:`union_section`.
        """
        if not self.lobes:
            return self.outer.axial_section(z)
        return union_section(self.parts, z)

    def measure_on(self, grid: SliceGrid, nodal: bool = False) -> AxialSection | None:
        """Ground-truth axes over the grid's slices (the shape must already be in LPS).

        The long axis is the largest in-plane diameter over the sampled slice planes (the slice
        with the largest short axis for a node); the short axis is the longest perpendicular
        chord inside the lesion on that slice. For an ellipsoid both maxima fall on the same
        slice.
        """
        if self.lobes:
            return self._measure_union_on(grid, nodal)
        best: AxialSection | None = None
        for k, z in enumerate(grid.z):
            sec = self.section(float(z))
            if sec is None:
                continue
            key = sec[1] if nodal else sec[0]
            if best is None or key > (best.short_axis_mm if nodal else best.long_axis_mm):
                best = AxialSection(k, float(z), sec[0], sec[1], sec[2])
        return best

    def _measure_union_on(self, grid: SliceGrid, nodal: bool) -> AxialSection | None:
        """:meth:`measure_on` for a union: slices in order of an upper bound of their diameter
        (:func:`union_diameter_bound`), stopping when no slice left can beat the best one (the
        short axis is never longer than the diameter). Same answer as measuring every slice; of
        equal ones the lowest slice."""
        bounds = [(union_diameter_bound(self.parts, float(z)), k) for k, z in enumerate(grid.z)]
        best: AxialSection | None = None
        best_key = 0.0
        for bound, k in sorted(bounds, key=lambda b: (-b[0], b[1])):
            if bound <= 0.0 or (best is not None and bound < best_key):
                break
            sec = union_section(self.parts, float(grid.z[k]))
            if sec is None:
                continue
            key = sec[1] if nodal else sec[0]
            if best is None or key > best_key or (key == best_key and k < best.slice_index):
                best = AxialSection(k, float(grid.z[k]), sec[0], sec[1], sec[2])
                best_key = key
        return best


#: Boundary points per ellipse from which a union's diameter is first sought (then refined).
_UNION_BOUNDARY_POINTS = 720
#: Lines across a union's section from which its longest perpendicular chord is first sought.
_UNION_CHORD_LINES = 801


def _ellipse_map(sec: tuple[np.ndarray, np.ndarray, float]) -> tuple[np.ndarray, np.ndarray]:
    """``(m, M)`` with the boundary of the ellipse ``(m, B, k)`` at ``m + M (cos t, sin t)``."""
    m, b2, k = sec
    lam, q = np.linalg.eigh(b2)
    return m, q * np.sqrt(k / lam)


def _ellipse_points(emap: tuple[np.ndarray, np.ndarray], theta: np.ndarray) -> np.ndarray:
    """Points ``(n, 2)`` of an ellipse's boundary (:func:`_ellipse_map`) at parameters ``theta``."""
    m, mat = emap
    return m + np.cos(theta)[:, None] * mat[:, 0] + np.sin(theta)[:, None] * mat[:, 1]


def _maximise(f: Callable[[np.ndarray], np.ndarray], lo: float, hi: float, n: int = 41,
              rounds: int = 4) -> float:
    """The argument of the largest value of the vectorised ``f`` on ``[lo, hi]``.

    ``n`` evenly spaced samples, then again around the best one on an interval ``(n - 1) / 2``
    times narrower, ``rounds`` times: the argument to ``(hi - lo) / 20^rounds``.
    """
    for _ in range(rounds):
        ts = np.linspace(lo, hi, n)
        i = int(np.argmax(f(ts)))
        step = ts[1] - ts[0]
        lo, hi = ts[i] - step, ts[i] + step
    return float((lo + hi) / 2.0)


def union_diameter(secs: Sequence[tuple[np.ndarray, np.ndarray, float]],
                   ) -> tuple[np.ndarray, np.ndarray]:
    """End points of the diameter (largest distance between two points) of a union of ellipses.

    The diameter of a union joins two boundary points of its parts. The pair is found among
    :data:`_UNION_BOUNDARY_POINTS` points per ellipse (on their convex hull), then each end is
    moved along its ellipse to the farthest point from the other end until neither moves
    (a zooming search on the ellipse parameter): exact to well below 0.001 mm.
    """
    n = _UNION_BOUNDARY_POINTS
    theta = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    maps = [_ellipse_map(s) for s in secs]
    pts = np.concatenate([_ellipse_points(e, theta) for e in maps])
    hull = ConvexHull(pts).vertices if len(pts) > 2 else np.arange(len(pts))
    k = int(np.argmax(distance.pdist(pts[hull])))
    i, j = _pair_of_condensed(k, len(hull))
    ends: list[list[Any]] = [[int(hull[i]) // n, float(theta[int(hull[i]) % n])],
            [int(hull[j]) // n, float(theta[int(hull[j]) % n])]]
    step = 2.0 * np.pi / n

    def at(end: list) -> np.ndarray:
        return _ellipse_points(maps[end[0]], np.array([end[1]]))[0]

    for _ in range(4):
        moved = 0.0
        for a, b in ((0, 1), (1, 0)):
            other = at(ends[b])
            emap = maps[ends[a][0]]
            t = _maximise(lambda ts, emap=emap, other=other: np.linalg.norm(  # type: ignore[misc]
                _ellipse_points(emap, ts) - other, axis=1), ends[a][1] - step, ends[a][1] + step)
            moved = max(moved, abs(t - ends[a][1]))
            ends[a][1] = t
        if moved < 1e-9:
            break
    return at(ends[0]), at(ends[1])


def _pair_of_condensed(k: int, n: int) -> tuple[int, int]:
    """``(i, j)``, ``i < j``, of entry ``k`` of a condensed distance matrix of ``n`` points."""
    i = int(n - 2 - np.floor(np.sqrt(-8 * k + 4 * n * (n - 1) - 7) / 2.0 - 0.5))
    j = int(k + i + 1 - n * (n - 1) // 2 + (n - i) * ((n - i) - 1) // 2)
    return i, j


def _longest_runs(secs: Sequence[tuple[np.ndarray, np.ndarray, float]], u: np.ndarray,
                  w: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """Length of the longest run inside the union along the lines ``{t u + s w}``, per ``t``."""
    s0s, s1s = [], []
    for m, b2, k in secs:
        # (t u + s w - m)^T B (t u + s w - m) <= k: a quadratic in s
        p = ts[:, None] * u - m  # (n, 2)
        qa = float(w @ b2 @ w)
        qb = 2.0 * (p @ b2 @ w)
        qc = np.einsum("ni,ij,nj->n", p, b2, p) - k
        disc = qb * qb - 4.0 * qa * qc
        root = np.sqrt(np.maximum(disc, 0.0))
        ok = disc > 0.0
        s0s.append(np.where(ok, (-qb - root) / (2.0 * qa), np.inf))
        s1s.append(np.where(ok, (-qb + root) / (2.0 * qa), -np.inf))
    s0 = np.array(s0s)
    s1 = np.array(s1s)
    order = np.argsort(s0, axis=0, kind="stable")
    s0 = np.take_along_axis(s0, order, axis=0)
    s1 = np.take_along_axis(s1, order, axis=0)
    best = np.zeros(ts.shape)
    start, end = s0[0].copy(), s1[0].copy()
    for e in range(1, len(secs)):
        valid = np.isfinite(s0[e])
        join = valid & (s0[e] <= end)
        new = valid & ~join
        best = np.where(new, np.maximum(best, end - start), best)
        end = np.where(join, np.maximum(end, s1[e]), end)
        start = np.where(new, s0[e], start)
        end = np.where(new, s1[e], end)
    last = np.where(np.isfinite(start), end - start, 0.0)
    return np.maximum(best, last)


def union_diameter_bound(parts: Sequence[Ellipsoid], z: float) -> float:
    """An upper bound of the diameter of the union's section with the plane ``z`` (0 if none).

    Two points of the section lie in ellipses ``i`` and ``j`` (maybe the same), at most their
    largest semi-axis ``R`` from those ellipses' centres ``m``: ``max |m_i - m_j| + R_i + R_j``.
    """
    cs, rs = [], []
    for e in parts:
        sec = e.section(z)
        if sec is None:
            continue
        m, b2, k = sec
        cs.append(m)
        rs.append(float(np.sqrt(k / np.linalg.eigvalsh(b2)[0])))
    if not cs:
        return 0.0
    c = np.array(cs)
    r = np.array(rs)
    gaps = np.linalg.norm(c[:, None] - c[None], axis=-1)
    return float((gaps + r[:, None] + r[None]).max())


def union_section(parts: Sequence[Ellipsoid], z: float,
                  ) -> tuple[float, float, tuple[float, float]] | None:
    """Long axis, short axis (mm) and long-axis midpoint of a union of ellipsoids at plane ``z``.

    The long axis is the section's diameter (:func:`union_diameter`, edge to edge, as callipers
    on the image: it may cross a notch between lobes); the short axis is the longest chord
    perpendicular to it that lies inside the section (lines across the section every
    1/:data:`_UNION_CHORD_LINES` of its length, the best refined by a zooming search).
    Returns None when the plane misses every part.
    """
    secs = [s for s in (e.section(z) for e in parts) if s is not None]
    if not secs:
        return None
    a, b = union_diameter(secs)
    vec = b - a
    long_axis = float(np.linalg.norm(vec))
    u = vec / long_axis
    w = np.array([-u[1], u[0]])
    t0 = float(a @ u)
    ts = np.linspace(t0, t0 + long_axis, _UNION_CHORD_LINES)
    runs = _longest_runs(secs, u, w, ts)
    i = int(np.argmax(runs))
    step = ts[1] - ts[0]
    t = _maximise(lambda t: _longest_runs(secs, u, w, t), ts[i] - step, ts[i] + step)
    short_axis = max(float(_longest_runs(secs, u, w, np.array([t]))[0]), float(runs[i]))
    mid = (a + b) / 2.0
    return long_axis, short_axis, (float(mid[0]), float(mid[1]))


# ---------------------------------------------------------------------------------- anatomy
def _ell2(x: np.ndarray, y: np.ndarray, cx: float, cy: float, ax: float, ay: float) -> np.ndarray:
    u = (x - np.float32(cx)) * np.float32(1.0 / ax)
    v = (y - np.float32(cy)) * np.float32(1.0 / ay)
    return u * u + v * v


def _ell3(x: np.ndarray, y: np.ndarray, z: float, c: Sequence[float],
          s: Sequence[float]) -> np.ndarray:
    w = ((z - c[2]) / s[2]) ** 2
    return _ell2(x, y, c[0], c[1], s[0], s[1]) + np.float32(w)


def _segment_dist2(x: np.ndarray, y: np.ndarray, z: float, p0: Sequence[float] | np.ndarray,
                   p1: Sequence[float] | np.ndarray) -> np.ndarray:
    """Squared distance of the points ``(x, y, z)`` to the segment ``p0``–``p1``."""
    p0 = np.asarray(p0, float)
    d = np.asarray(p1, float) - p0
    dd = float(d @ d)
    t = ((x - p0[0]) * (d[0] / dd) + (y - p0[1]) * (d[1] / dd) + (z - p0[2]) * (d[2] / dd))
    t = np.clip(t, 0.0, 1.0).astype(np.float32)
    ex = x - np.float32(p0[0]) - t * np.float32(d[0])
    ey = y - np.float32(p0[1]) - t * np.float32(d[1])
    ez = np.float32(z - p0[2]) - t * np.float32(d[2])
    return ex * ex + ey * ey + ez * ez


#: Body-frame anatomy (mm). Kept as data so tests and lesion placement can refer to it; its
#: entries have different shapes (centre and semi-axes, a tube's centre, radius and z range ...).
ANATOMY: dict[str, Any] = {
    "body_semi": (145.0, 100.0),
    "inner_semi": (131.0, 87.0),
    "lung_r": ((-70.0, 5.0, 0.0), (50.0, 65.0, 90.0)),
    "lung_l": ((70.0, 5.0, 0.0), (50.0, 65.0, 90.0)),
    "mediastinum": ((0.0, -15.0), (30.0, 42.0), (-30.0, 95.0)),
    "heart": ((12.0, -35.0, -55.0), (55.0, 45.0, 40.0)),
    "liver": ((-50.0, 0.0, -105.0), (85.0, 80.0, 65.0)),
    "spleen": ((75.0, 45.0, -100.0), (30.0, 40.0, 45.0)),
    "stomach": ((45.0, -35.0, -100.0), (42.0, 32.0, 32.0)),
    "aorta_desc": ((18.0, 32.0), 11.0, (-400.0, 62.0)),
    "aorta_asc": ((5.0, -20.0), 14.0, (-15.0, 62.0)),
    "trachea": ((0.0, 0.0), 9.0, (10.0, 400.0)),
    "vertebra": ((0.0, 55.0), 16.0),
}


def _paint_slice(x: np.ndarray, y: np.ndarray, z: float, contrast: bool) -> np.ndarray:
    """HU of one axial slice from body-frame pixel coordinates ``x``, ``y`` at height ``z``."""
    a = ANATOMY
    out = np.full(x.shape, _hu("air", contrast), np.float32)
    out[_ell2(x, y, 0, 0, *a["body_semi"]) <= 1] = _hu("fat", contrast)
    inner = _ell2(x, y, 0, 0, *a["inner_semi"]) <= 1
    out[inner] = _hu("soft_tissue", contrast)

    def organ(key: str, tissue: str, within: np.ndarray | None = None) -> np.ndarray | None:
        c, s = a[key]
        if abs(z - c[2]) >= s[2]:
            return None
        m = _ell3(x, y, z, c, s) <= 1
        if within is not None:
            m &= within
        out[m] = _hu(tissue, contrast)
        return m

    organ("lung_r", "lung", inner)
    organ("lung_l", "lung", inner)
    (mc, ms, (mz0, mz1)) = a["mediastinum"]
    if mz0 <= z <= mz1:
        out[_ell2(x, y, mc[0], mc[1], *ms) <= 1] = _hu("fat", contrast)
    organ("heart", "blood")
    organ("liver", "liver", inner)
    organ("spleen", "spleen", inner)
    stomach = organ("stomach", "stomach_fluid", inner)
    if stomach is not None:
        c, s = a["stomach"]
        out[stomach & (y < c[1] - 0.45 * s[1])] = _hu("air", contrast)
    for key in ("aorta_desc", "aorta_asc"):
        (cx, cy), r, (z0, z1) = a[key]
        if z0 <= z <= z1:
            out[_ell2(x, y, cx, cy, r, r) <= 1] = _hu("blood", contrast)
    # aortic arch: a tube joining the tops of the ascending and descending aorta
    (ax_, ay_), _, (_, atop) = a["aorta_asc"]
    (dx_, dy_), _, _ = a["aorta_desc"]
    if abs(z - atop) < 12.0:
        arch = _segment_dist2(x, y, z, (ax_, ay_, atop), (dx_, dy_, atop)) <= 12.0**2
        out[arch] = _hu("blood", contrast)
    # airways: trachea, then the two main bronchi below the carina
    (tx, ty), tr, (tz0, tz1) = a["trachea"]
    if tz0 <= z <= tz1:
        out[_ell2(x, y, tx, ty, tr, tr) <= 1] = _hu("air", contrast)
    if -20.0 <= z <= tz0 + 6.0:
        for sx in (-1.0, 1.0):
            br = _segment_dist2(x, y, z, (0.0, 0.0, tz0), (sx * 32.0, 6.0, -14.0))
            out[br <= 6.0**2] = _hu("air", contrast)
    # spine: vertebral body (cortex + cancellous bone, discs every 30 mm), canal, posterior arch
    (vx, vy), vr = a["vertebra"]
    disc = (z % 30.0) < 6.0
    d2 = _ell2(x, y, vx, vy, 1.0, 1.0)
    if disc:
        out[d2 <= vr**2] = _hu("disc", contrast)
    else:
        out[d2 <= vr**2] = _hu("bone_cortex", contrast)
        out[d2 <= (vr - 2.5) ** 2] = _hu("bone_cancellous", contrast)
    canal = _ell2(x, y, vx, vy + 24.0, 1.0, 1.0)
    out[canal <= 12.0**2] = _hu("bone_cortex", contrast)
    out[canal <= 8.0**2] = _hu("csf", contrast)
    out[_ell2(x, y, vx, vy + 42.0, 5.0, 11.0) <= 1] = _hu("bone_cortex", contrast)
    # ribs: short arcs of bone just inside the inner body contour, every 25 mm in z
    if (z % 25.0) < 9.0 and z > -120.0:
        e_in = _ell2(x, y, 0, 0, a["inner_semi"][0] - 2.0, a["inner_semi"][1] - 2.0)
        e_out = _ell2(x, y, 0, 0, a["inner_semi"][0] + 1.0, a["inner_semi"][1] + 1.0)
        rib = (e_in > 1) & (e_out <= 1) & (y > -60.0)
        out[rib] = _hu("bone_cortex", contrast)
    return out


def render_anatomy(grid: SliceGrid, pose: Pose, contrast: bool) -> np.ndarray:
    """Noise-free anatomy on ``grid`` for a body placed by ``pose``.

    Returns
    -------
    numpy.ndarray
        float32 ``(z, y, x)`` in HU.
    """
    xs, ys = grid.xy()
    xl, yl = np.meshgrid(xs, ys)  # (rows, cols)
    rot = pose.rotation
    tx, ty, tz = pose.translation
    # body = R^T (lps - t); rotation is about z only, so z_body = z_lps - tz
    xb = (rot[0, 0] * (xl - tx) + rot[1, 0] * (yl - ty)).astype(np.float32)
    yb = (rot[0, 1] * (xl - tx) + rot[1, 1] * (yl - ty)).astype(np.float32)
    vol = np.empty(grid.shape, np.float32)
    for k, z in enumerate(grid.z):
        zb = float(z) - tz
        if pose.breath_mm != 0.0:
            zb += float(pose.breath_shift(zb))
        vol[k] = _paint_slice(xb, yb, zb, contrast)
    return vol


def _subsample_offsets(n: int, width: float) -> np.ndarray:
    """``n`` evenly spread sample offsets across a cell of ``width`` centred on 0."""
    return (np.arange(n) + 0.5) / n * width - width / 2.0


def _inside_parts(parts: Sequence[Ellipsoid], sx: np.ndarray, sy: np.ndarray,
                  z: float) -> np.ndarray:
    """Which points of the plane grid ``(sy, sx)`` at height ``z`` lie inside any of ``parts``.

    ``sx`` and ``sy`` ascend; each ellipsoid is tested only over its own bounding box (a
    lobulated lesion's box is mostly outside any one of its parts).
    """
    inside = np.zeros((sy.size, sx.size), bool)
    for e in parts:
        c = np.asarray(e.center, float)
        h = e.half_extent() + 1e-6
        if abs(z - c[2]) > h[2]:
            continue
        c0, c1 = np.searchsorted(sx, c[0] - h[0]), np.searchsorted(sx, c[0] + h[0], "right")
        r0, r1 = np.searchsorted(sy, c[1] - h[1]), np.searchsorted(sy, c[1] + h[1], "right")
        if c1 <= c0 or r1 <= r0:
            continue
        gx, gy = np.meshgrid(sx[c0:c1], sy[r0:r1])
        pts = np.stack([gx, gy, np.full_like(gx, z)], axis=-1)
        inside[r0:r1, c0:c1] |= e.contains(pts)
    return inside


def paint_lesion(vol: np.ndarray, grid: SliceGrid, lesion: LesionShape,
                 oversample: tuple[int, int, int] = (5, 3, 3)) -> None:
    """Blend a lesion (already in LPS) into ``vol`` in place, with partial volume.

    Each voxel is the slice-thickness × pixel box around its centre; the fraction of ``oversample``
    ``(z, y, x)`` sub-samples that fall inside the lesion (any of its parts) and its core sets
    the mix
    ``(1 - f_outer) * background + (f_outer - f_core) * hu + f_core * core_hu``.
    """
    dy, dx = grid.pixel_spacing
    xs, ys = grid.xy()
    zs = np.asarray(grid.z, float)
    if lesion.lobes:
        lo, hi = lesion.bounds()
        c = (lo + hi) / 2.0
        h = (hi - lo) / 2.0 + np.array([dx, dy, grid.thickness])
    else:
        c = np.asarray(lesion.outer.center)
        h = lesion.outer.half_extent() + np.array([dx, dy, grid.thickness])
    ix = np.nonzero(np.abs(xs - c[0]) <= h[0])[0]
    iy = np.nonzero(np.abs(ys - c[1]) <= h[1])[0]
    iz = np.nonzero(np.abs(zs - c[2]) <= h[2])[0]
    if ix.size == 0 or iy.size == 0 or iz.size == 0:
        return
    oz = _subsample_offsets(oversample[0], grid.thickness)
    oy = _subsample_offsets(oversample[1], dy)
    ox = _subsample_offsets(oversample[2], dx)
    # sub-sample coordinates of the box, shape (ny*sy, nx*sx)
    sy = (ys[iy][:, None] + oy[None, :]).ravel()
    sx = (xs[ix][:, None] + ox[None, :]).ravel()
    gx, gy = np.meshgrid(sx, sy)
    ny, nx = iy.size, ix.size
    for k in iz:
        f_out = np.zeros((ny, nx))
        f_core = np.zeros((ny, nx))
        for dz in oz:
            if lesion.lobes:  # a union: each part over its own box
                z = float(zs[k] + dz)
                inside = _inside_parts(lesion.parts, sx, sy, z)
                core = None if lesion.core is None else _inside_parts([lesion.core], sx, sy, z)
            else:
                pts = np.stack([gx, gy, np.full_like(gx, zs[k] + dz)], axis=-1)
                inside = lesion.contains(pts)
                core = None if lesion.core is None else lesion.core.contains(pts)
            f_out += inside.reshape(ny, oversample[1], nx, oversample[2]).mean(axis=(1, 3))
            if core is not None:
                f_core += core.reshape(ny, oversample[1], nx, oversample[2]).mean(axis=(1, 3))
        f_out /= len(oz)
        f_core /= len(oz)
        if not f_out.any():
            continue
        sub = vol[k][np.ix_(iy, ix)]
        mixed = (1.0 - f_out) * sub + (f_out - f_core) * lesion.hu + f_core * lesion.core_hu
        vol[k][np.ix_(iy, ix)] = mixed.astype(np.float32)


def add_noise(vol: np.ndarray, rng: np.random.Generator, sigma_hu: float,
              psf_sigma_px: float) -> np.ndarray:
    """Apply an in-plane point-spread blur and add correlated Gaussian noise of ``sigma_hu``.

    The noise is white noise blurred in-plane (a CT-like texture) and rescaled to ``sigma_hu``.
    Returns a new float32 array.
    """
    out = ndimage.gaussian_filter(vol, sigma=(0.0, psf_sigma_px, psf_sigma_px)).astype(np.float32)
    noise = rng.standard_normal(vol.shape, dtype=np.float32)
    noise = ndimage.gaussian_filter(noise, sigma=(0.0, 0.6, 0.6))
    noise *= np.float32(sigma_hu / float(noise.std()))
    out += noise
    return out
