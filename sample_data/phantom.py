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

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

__all__ = [
    "Pose",
    "SliceGrid",
    "Ellipsoid",
    "LesionShape",
    "AxialSection",
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


def _as_rotation(m: np.ndarray) -> tuple[tuple[float, float, float], ...]:
    return tuple(tuple(float(v) for v in row) for row in m)


@dataclass(frozen=True)
class Pose:
    """Rigid placement of the body frame in LPS: ``p_lps = Rz(yaw) @ p_body + translation``.

    Parameters
    ----------
    yaw_deg : float
        Rotation about the scanner's ``z`` axis, degrees.
    translation : tuple of float
        LPS position (mm) of the body frame's origin.
    """

    yaw_deg: float = 0.0
    translation: tuple[float, float, float] = (0.0, 0.0, 0.0)

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
        return cls(tuple(float(v) for v in center), tuple(float(v) for v in semi_axes),
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
        c = tuple(float(v) for v in pose.to_lps(self.center))
        return Ellipsoid(c, self.semi_axes, _as_rotation(pose.rotation @ self.rotation_matrix))

    def scaled(self, factor: float) -> Ellipsoid:
        """Concentric copy with every semi-axis multiplied by ``factor``."""
        return Ellipsoid(self.center, tuple(s * factor for s in self.semi_axes), self.rotation)

    def half_extent(self) -> np.ndarray:
        """Half-size of the axis-aligned bounding box (mm): ``sqrt(diag(A^-1))``."""
        return np.sqrt(np.diag(np.linalg.inv(self.matrix)))

    def contains(self, points: np.ndarray) -> np.ndarray:
        """Boolean array: which points ``(..., 3)`` lie inside."""
        d = np.asarray(points, float) - np.asarray(self.center, float)
        return np.einsum("...i,ij,...j->...", d, self.matrix, d) <= 1.0

    def axial_section(self, z: float) -> tuple[float, float, tuple[float, float]] | None:
        """Long axis, short axis (mm) and centre of the section with the plane ``z``.

        The section of an ellipsoid with a plane is an ellipse: with ``u`` the in-plane offset
        and ``dz = z - c_z``, ``u^T B u + 2 dz b.u + a dz^2 <= 1`` where ``B = A[:2,:2]``,
        ``b = A[:2,2]``, ``a = A[2,2]``. Completing the square gives an ellipse of form ``B``
        and level ``k = 1 - dz^2 (a - b^T B^-1 b)`` centred at ``-dz B^-1 b``; its diameters
        are ``2 sqrt(k / eig(B))``. Returns None when the plane misses the shape.
        """
        a_mat = self.matrix
        b2 = a_mat[:2, :2]
        b = a_mat[:2, 2]
        dz = z - self.center[2]
        b2_inv_b = np.linalg.solve(b2, b)
        k = 1.0 - dz * dz * (a_mat[2, 2] - b @ b2_inv_b)
        if k <= 0.0:
            return None
        lam = np.linalg.eigvalsh(b2)  # ascending
        long_axis = 2.0 * np.sqrt(k / lam[0])
        short_axis = 2.0 * np.sqrt(k / lam[1])
        off = -dz * b2_inv_b
        return (float(long_axis), float(short_axis),
                (float(self.center[0] + off[0]), float(self.center[1] + off[1])))


@dataclass(frozen=True)
class LesionShape:
    """A lesion: a solid ellipsoid of density ``hu``, optionally with a core of ``core_hu``.

    A cavitating nodule is an outer ellipsoid of soft tissue with an air ``core`` inside.
    """

    outer: Ellipsoid
    hu: float
    core: Ellipsoid | None = None
    core_hu: float = -1000.0

    def placed(self, pose: Pose) -> LesionShape:
        """The lesion in LPS for a body placed by ``pose``."""
        return LesionShape(self.outer.placed(pose), self.hu,
                           None if self.core is None else self.core.placed(pose), self.core_hu)

    def measure_on(self, grid: SliceGrid, nodal: bool = False) -> AxialSection | None:
        """Ground-truth axes over the grid's slices (the shape must already be in LPS).

        The long axis is the largest in-plane diameter over the sampled slice planes (the slice
        with the largest short axis for a node); the short axis is the longest perpendicular
        chord on that slice. For an ellipsoid both maxima fall on the same slice.
        """
        best: AxialSection | None = None
        for k, z in enumerate(grid.z):
            sec = self.outer.axial_section(float(z))
            if sec is None:
                continue
            key = sec[1] if nodal else sec[0]
            if best is None or key > (best.short_axis_mm if nodal else best.long_axis_mm):
                best = AxialSection(k, float(z), sec[0], sec[1], sec[2])
        return best


# ---------------------------------------------------------------------------------- anatomy
def _ell2(x: np.ndarray, y: np.ndarray, cx: float, cy: float, ax: float, ay: float) -> np.ndarray:
    u = (x - np.float32(cx)) * np.float32(1.0 / ax)
    v = (y - np.float32(cy)) * np.float32(1.0 / ay)
    return u * u + v * v


def _ell3(x: np.ndarray, y: np.ndarray, z: float, c: Sequence[float],
          s: Sequence[float]) -> np.ndarray:
    w = ((z - c[2]) / s[2]) ** 2
    return _ell2(x, y, c[0], c[1], s[0], s[1]) + np.float32(w)


def _segment_dist2(x: np.ndarray, y: np.ndarray, z: float, p0: Sequence[float],
                   p1: Sequence[float]) -> np.ndarray:
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


#: Body-frame anatomy (mm). Kept as data so tests and lesion placement can refer to it.
ANATOMY = {
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
        vol[k] = _paint_slice(xb, yb, float(z) - tz, contrast)
    return vol


def _subsample_offsets(n: int, width: float) -> np.ndarray:
    """``n`` evenly spread sample offsets across a cell of ``width`` centred on 0."""
    return (np.arange(n) + 0.5) / n * width - width / 2.0


def paint_lesion(vol: np.ndarray, grid: SliceGrid, lesion: LesionShape,
                 oversample: tuple[int, int, int] = (5, 3, 3)) -> None:
    """Blend a lesion (already in LPS) into ``vol`` in place, with partial volume.

    Each voxel is the slice-thickness × pixel box around its centre; the fraction of ``oversample``
    ``(z, y, x)`` sub-samples that fall inside the outer (and core) ellipsoid sets the mix
    ``(1 - f_outer) * background + (f_outer - f_core) * hu + f_core * core_hu``.
    """
    dy, dx = grid.pixel_spacing
    xs, ys = grid.xy()
    zs = np.asarray(grid.z, float)
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
            pts = np.stack([gx, gy, np.full_like(gx, zs[k] + dz)], axis=-1)
            inside = lesion.outer.contains(pts).reshape(ny, oversample[1], nx, oversample[2])
            f_out += inside.mean(axis=(1, 3))
            if lesion.core is not None:
                core = lesion.core.contains(pts).reshape(ny, oversample[1], nx, oversample[2])
                f_core += core.mean(axis=(1, 3))
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
