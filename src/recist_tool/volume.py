"""`Volume`: a CT array with its exact patient-space geometry.

Conventions
-----------
* Arrays are indexed ``(z, y, x)``: ``z`` the slice, ``y`` the image row, ``x`` the image column.
* Patient coordinates are DICOM LPS in millimetres, written ``(x, y, z)``.
* ``direction`` is an orthonormal 3x3 matrix whose **columns** are the LPS unit vectors of the
  index axes in array order: ``direction[:, 0]`` the slice normal (``row × column`` of the DICOM
  ImageOrientationPatient, slices sorted along it), ``direction[:, 1]`` the direction in which the
  row index ``y`` grows (the DICOM column cosine), ``direction[:, 2]`` the direction in which the
  column index ``x`` grows (the DICOM row cosine).
* ``slice_positions[k]`` is the exact LPS position of voxel ``(k, 0, 0)`` (the slice's
  ImagePositionPatient). It is the geometric truth: a gantry-tilted stack has slice positions that
  drift in-plane (a sheared grid), and a stack with variable gaps has unequal steps along the
  normal. ``spacing[0]`` is the mean gap between slice *planes* along the normal.

All voxel ↔ patient conversions live here (:meth:`Volume.index_to_lps`,
:meth:`Volume.lps_to_index`) and are exact for any stack whose slices are parallel planes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, cast

import numpy as np

from recist_tool.errors import GeometryError

#: Slice gaps that differ by less than this (mm) count as uniform.
UNIFORM_TOLERANCE_MM = 0.02
#: In-plane drift of slice positions below this (mm) does not count as shear.
SHEAR_TOLERANCE_MM = 0.02


@dataclass(frozen=True)
class GeometryWarning:
    """A finding about a series that a reader should know of.

    Parameters
    ----------
    code : str
        Stable machine-readable code, e.g. ``GANTRY_TILT``, ``NONUNIFORM_SPACING``,
        ``MISSING_SLICE``, ``THICK_SLICES``.
    message : str
        One sentence for people.
    """

    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


@dataclass(frozen=True)
class VolumeMeta:
    """Identifying and acquisition metadata carried with a :class:`Volume`.

    Dates are ISO strings (``YYYY-MM-DD``); lengths in millimetres.
    """

    modality: str = "CT"
    patient_id: str | None = None
    study_uid: str | None = None
    series_uid: str | None = None
    frame_of_reference_uid: str | None = None
    study_date: str | None = None
    series_description: str | None = None
    series_number: int | None = None
    slice_thickness_mm: float | None = None
    kernel: str | None = None
    contrast: str | None = None
    manufacturer: str | None = None
    sop_instance_uids: tuple[str, ...] = ()
    warnings: tuple[GeometryWarning, ...] = ()
    source: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def warning_codes(self) -> tuple[str, ...]:
        """The codes of :attr:`warnings`, in order."""
        return tuple(w.code for w in self.warnings)


def _as_vec(v: Sequence[float] | np.ndarray, n: int, name: str) -> np.ndarray:
    a = np.asarray(v, dtype=np.float64)
    if a.shape != (n,) or not np.all(np.isfinite(a)):
        raise GeometryError(f"{name} must be {n} finite numbers, got {v!r}")
    return a


@dataclass(frozen=True, eq=False)
class Volume:
    """A 3D image on a (possibly sheared or unevenly spaced) stack of parallel slices.

    Parameters
    ----------
    array : numpy.ndarray
        Image values, shape ``(z, y, x)``; Hounsfield units for CT.
    spacing : tuple of float
        ``(dz, dy, dx)`` in mm: mean gap between slice planes along the normal, row spacing
        (between rows), column spacing (between columns).
    origin : numpy.ndarray
        LPS position (mm) of voxel ``(0, 0, 0)``.
    direction : numpy.ndarray
        Orthonormal 3x3; columns are the LPS unit vectors of the ``z`` (slice normal), ``y`` and
        ``x`` index axes.
    slice_positions : numpy.ndarray
        ``(nz, 3)`` LPS position of voxel ``(k, 0, 0)`` of each slice.
    meta : VolumeMeta
        Identifiers, acquisition parameters and warnings.

    Notes
    -----
    Build orthogonal volumes with :meth:`from_grid` and DICOM stacks with :meth:`from_slices`.
    """

    array: np.ndarray
    spacing: tuple[float, float, float]
    origin: np.ndarray
    direction: np.ndarray
    slice_positions: np.ndarray
    meta: VolumeMeta = field(default_factory=VolumeMeta)

    def __post_init__(self) -> None:
        if self.array.ndim != 3:
            raise GeometryError(f"a volume needs a 3D (z, y, x) array, got shape {self.array.shape}")
        sp = _as_vec(self.spacing, 3, "spacing")
        if np.any(sp <= 0):
            raise GeometryError(f"spacing must be positive, got {tuple(sp)}")
        object.__setattr__(self, "spacing", tuple(float(s) for s in sp))
        object.__setattr__(self, "origin", _as_vec(self.origin, 3, "origin"))
        d = np.asarray(self.direction, dtype=np.float64)
        if d.shape != (3, 3) or not np.allclose(d.T @ d, np.eye(3), atol=1e-4):
            raise GeometryError("direction must be an orthonormal 3x3 matrix")
        object.__setattr__(self, "direction", d)
        pos = np.asarray(self.slice_positions, dtype=np.float64)
        if pos.shape != (self.array.shape[0], 3):
            raise GeometryError(
                f"slice_positions must have shape ({self.array.shape[0]}, 3), got {pos.shape}"
            )
        object.__setattr__(self, "slice_positions", pos)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_grid(
        cls,
        array: np.ndarray,
        spacing: Sequence[float],
        origin: Sequence[float] | np.ndarray = (0.0, 0.0, 0.0),
        direction: np.ndarray | None = None,
        meta: VolumeMeta | None = None,
    ) -> Volume:
        """Volume on a regular orthogonal grid (NIfTI/NRRD-like).

        Parameters
        ----------
        array : numpy.ndarray
            ``(z, y, x)`` values.
        spacing : sequence of float
            ``(dz, dy, dx)`` in mm.
        origin : sequence of float
            LPS of voxel ``(0, 0, 0)``.
        direction : numpy.ndarray, optional
            Columns: LPS unit vectors of the ``z``, ``y``, ``x`` axes. Default: axial, so that
            ``x`` runs to patient left, ``y`` to posterior and ``z`` to superior.
        meta : VolumeMeta, optional
        """
        d = np.array([[0, 0, 1], [0, 1, 0], [1, 0, 0]], float) if direction is None else direction
        d = np.asarray(d, dtype=np.float64)
        o = _as_vec(origin, 3, "origin")
        k = np.arange(array.shape[0], dtype=np.float64)[:, None]
        positions = o[None, :] + k * float(spacing[0]) * d[:, 0][None, :]
        return cls(array, cast("tuple[float, float, float]", tuple(spacing)), o, d, positions,
                   meta or VolumeMeta())

    @classmethod
    def from_slices(
        cls,
        array: np.ndarray,
        positions: np.ndarray,
        row_cosine: Sequence[float] | np.ndarray,
        column_cosine: Sequence[float] | np.ndarray,
        pixel_spacing: Sequence[float],
        meta: VolumeMeta | None = None,
        single_slice_thickness: float | None = None,
    ) -> Volume:
        """Volume from a DICOM-style stack of parallel slices, already sorted along the normal.

        Parameters
        ----------
        array : numpy.ndarray
            ``(z, y, x)`` values.
        positions : numpy.ndarray
            ``(nz, 3)`` ImagePositionPatient of each slice (LPS).
        row_cosine, column_cosine : sequence of float
            The two triplets of ImageOrientationPatient.
        pixel_spacing : sequence of float
            DICOM PixelSpacing ``(row spacing, column spacing)``.
        meta : VolumeMeta, optional
        single_slice_thickness : float, optional
            ``dz`` to use when the stack has one slice.
        """
        r = _as_vec(row_cosine, 3, "row cosine")
        c = _as_vec(column_cosine, 3, "column cosine")
        r, c = r / np.linalg.norm(r), c / np.linalg.norm(c)
        n = np.cross(r, c)
        direction = np.stack([n, c, r], axis=1)
        pos = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
        if pos.shape[0] > 1:
            locs = (pos - pos[0]) @ n
            gaps = np.diff(locs)
            if np.any(gaps <= 0):
                raise GeometryError("slice positions are not strictly increasing along the normal")
            dz = float(np.mean(gaps))
        else:
            dz = float(single_slice_thickness or 1.0)
        ps = _as_vec(pixel_spacing, 2, "pixel spacing")
        return cls(array, (dz, float(ps[0]), float(ps[1])), pos[0], direction, pos,
                   meta or VolumeMeta())

    def with_array(self, array: np.ndarray, meta: VolumeMeta | None = None) -> Volume:
        """Same geometry, other values (e.g. a mask or a probability map)."""
        if array.shape != self.array.shape:
            raise GeometryError(f"array shape {array.shape} differs from volume {self.array.shape}")
        return replace(self, array=array, meta=self.meta if meta is None else meta)

    # ------------------------------------------------------------------ geometry
    @property
    def shape(self) -> tuple[int, int, int]:
        """``(nz, ny, nx)``."""
        return tuple(int(s) for s in self.array.shape)  # type: ignore[return-value]

    @property
    def normal(self) -> np.ndarray:
        """LPS unit normal of the slice planes (direction of increasing ``z``)."""
        return self.direction[:, 0]

    @property
    def slice_locations(self) -> np.ndarray:
        """Distance (mm) of each slice plane from slice 0 along the normal, shape ``(nz,)``."""
        return (self.slice_positions - self.origin) @ self.normal

    @property
    def slice_gaps(self) -> np.ndarray:
        """Gaps (mm) between consecutive slice planes, shape ``(nz - 1,)``."""
        return np.diff(self.slice_locations)

    @property
    def slice_thickness_mm(self) -> float:
        """How thick the slices are (mm): the larger of the mean slice gap (``spacing[0]``) and
        the recorded slice thickness (``meta.slice_thickness_mm``, DICOM ``SliceThickness``);
        an overlapping reconstruction is spaced closer than it is thick."""
        recorded = self.meta.slice_thickness_mm
        return max(float(self.spacing[0]), float(recorded) if recorded else 0.0)

    @property
    def in_plane_drift(self) -> np.ndarray:
        """In-plane offset (mm, along ``y`` then ``x``) of each slice's first voxel from slice 0.

        Non-zero for gantry-tilted (sheared) stacks; shape ``(nz, 2)``.
        """
        d = self.slice_positions - self.origin
        return np.stack([d @ self.direction[:, 1], d @ self.direction[:, 2]], axis=1)

    @property
    def is_uniform(self) -> bool:
        """True when all slice gaps are equal within :data:`UNIFORM_TOLERANCE_MM`."""
        g = self.slice_gaps
        return g.size == 0 or float(np.ptp(g)) <= UNIFORM_TOLERANCE_MM

    @property
    def is_sheared(self) -> bool:
        """True when slice positions drift in-plane (gantry tilt)."""
        return bool(np.max(np.abs(self.in_plane_drift), initial=0.0) > SHEAR_TOLERANCE_MM)

    @property
    def is_orthogonal_grid(self) -> bool:
        """True for a regular, unsheared grid that an orthonormal affine describes exactly."""
        return self.is_uniform and not self.is_sheared

    @property
    def tilt_degrees(self) -> float:
        """Angle (degrees) between the slice normal and the line through the slice positions."""
        if self.shape[0] < 2:
            return 0.0
        step = self.slice_positions[-1] - self.slice_positions[0]
        cosang = abs(float(step @ self.normal)) / float(np.linalg.norm(step))
        return float(np.degrees(np.arccos(min(1.0, cosang))))

    @property
    def affine(self) -> np.ndarray:
        """4x4 matrix mapping homogeneous ``(z, y, x, 1)`` indices to LPS ``(x, y, z, 1)``.

        Exact for uniform stacks, sheared (tilted) ones included: the ``z`` column is the real
        slice step vector. Raises :class:`GeometryError` for non-uniform gaps, which no affine
        can describe.
        """
        if not self.is_uniform:
            raise GeometryError(
                "slice gaps are not uniform; no affine describes this stack (resample it first)"
            )
        nz = self.shape[0]
        if nz > 1:
            step = (self.slice_positions[-1] - self.slice_positions[0]) / (nz - 1)
        else:
            step = self.normal * self.spacing[0]
        a = np.eye(4)
        a[:3, 0] = step
        a[:3, 1] = self.direction[:, 1] * self.spacing[1]
        a[:3, 2] = self.direction[:, 2] * self.spacing[2]
        a[:3, 3] = self.origin
        return a

    def _slice_origin(self, z: np.ndarray) -> np.ndarray:
        """LPS of voxel ``(z, 0, 0)`` for fractional ``z``: linear between slices."""
        pos = self.slice_positions
        nz = pos.shape[0]
        if nz == 1:
            return pos[0][None, :] + z[:, None] * self.spacing[0] * self.normal[None, :]
        k0 = np.clip(np.floor(z), 0, nz - 2).astype(np.intp)
        t = (z - k0)[:, None]
        return pos[k0] + t * np.diff(pos, axis=0)[k0]

    def index_to_lps(self, index: np.ndarray | Sequence[float]) -> np.ndarray:
        """Convert ``(z, y, x)`` voxel indices (fractional allowed) to LPS millimetres.

        Parameters
        ----------
        index : array_like, shape (..., 3)

        Returns
        -------
        numpy.ndarray, shape (..., 3)
            ``(x, y, z)`` LPS positions. Exact for sheared and unevenly spaced stacks.
        """
        idx = np.asarray(index, dtype=np.float64)
        flat = idx.reshape(-1, 3)
        inplane = (self.direction[:, 1:] * np.asarray(self.spacing[1:])[None, :]).T  # (2, 3)
        lps = self._slice_origin(flat[:, 0])
        lps += flat[:, 1:] @ inplane
        return lps.reshape(idx.shape)

    def lps_to_index(self, lps: np.ndarray | Sequence[float]) -> np.ndarray:
        """Convert LPS millimetres to fractional ``(z, y, x)`` voxel indices.

        The exact inverse of :meth:`index_to_lps` (linear extrapolation beyond the end slices).
        """
        p = np.asarray(lps, dtype=np.float64)
        flat = p.reshape(-1, 3)
        s = (flat - self.origin[None, :]) @ self.normal
        locs = self.slice_locations
        nz = locs.size
        if nz == 1:
            z = s / self.spacing[0]
        else:
            k0 = np.clip(np.searchsorted(locs, s, side="right") - 1, 0, nz - 2)
            z = k0 + (s - locs[k0]) / (locs[k0 + 1] - locs[k0])
        d = flat - self._slice_origin(z)
        y = d @ self.direction[:, 1] / self.spacing[1]
        x = d @ self.direction[:, 2] / self.spacing[2]
        return np.stack([z, y, x], axis=-1).reshape(p.shape)

    def voxel_volume_ml(self) -> np.ndarray:
        """Volume (mL) represented by one voxel of each slice, shape ``(nz,)``.

        Uses the real gaps: each slice owns half the gap to each neighbour (the end slices own
        a whole gap on their open side).
        """
        nz = self.shape[0]
        if nz == 1:
            thick = np.array([self.spacing[0]])
        else:
            g = self.slice_gaps
            thick = np.empty(nz)
            thick[0] = g[0]
            thick[-1] = g[-1]
            thick[1:-1] = 0.5 * (g[:-1] + g[1:])
        return thick * self.spacing[1] * self.spacing[2] / 1000.0

    # ------------------------------------------------------------------ derived volumes
    def crop(self, start: Sequence[int] | np.ndarray, stop: Sequence[int] | np.ndarray) -> Volume:
        """Sub-volume ``array[z0:z1, y0:y1, x0:x1]`` with consistent geometry.

        Parameters
        ----------
        start, stop : sequence of int
            ``(z, y, x)`` bounds, clipped to the volume.
        """
        lo = np.clip(np.asarray(start, int), 0, self.shape)
        hi = np.clip(np.asarray(stop, int), lo, self.shape)
        if np.any(hi <= lo):
            raise GeometryError(f"empty crop {tuple(lo)}..{tuple(hi)}")
        arr = self.array[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
        shift = (lo[1] * self.spacing[1] * self.direction[:, 1]
                 + lo[2] * self.spacing[2] * self.direction[:, 2])
        pos = self.slice_positions[lo[0]:hi[0]] + shift[None, :]
        spacing = self.spacing
        if arr.shape[0] > 1:
            spacing = (float(np.mean(np.diff((pos - pos[0]) @ self.normal))),) + spacing[1:]
        uids = self.meta.sop_instance_uids
        meta = replace(self.meta, sop_instance_uids=uids[lo[0]:hi[0]]) if uids else self.meta
        return Volume(arr, spacing, pos[0], self.direction, pos, meta)

    def resample_orthogonal(
        self, dz: float | None = None, order: int = 1, fill: float | None = None
    ) -> Volume:
        """Resample onto a regular orthogonal grid in the same slice orientation.

        Slice planes stay parallel to the originals, so each output slice is an in-plane shifted
        blend of the two nearest input slices. The in-plane field of view grows to cover every
        input slice of a sheared stack.

        Parameters
        ----------
        dz : float, optional
            Output slice gap (mm); default the smallest input gap.
        order : int
            Spline order for :func:`scipy.ndimage.map_coordinates` (1 = linear).
        fill : float, optional
            Value outside the input; default the array minimum.

        Returns
        -------
        Volume
            With ``is_orthogonal_grid`` true and the warning codes of the input kept.
        """
        from scipy.ndimage import map_coordinates

        locs = self.slice_locations
        if dz is None:
            dz = float(np.min(self.slice_gaps)) if locs.size > 1 else self.spacing[0]
        if dz <= 0:
            raise GeometryError(f"resample slice gap must be positive, got {dz}")
        nz_out = int(np.floor((locs[-1] - locs[0]) / dz + 1e-6)) + 1
        drift = self.in_plane_drift  # (nz, 2) mm
        ny, nx = self.shape[1:]
        dy, dx = self.spacing[1:]
        y0 = min(0.0, float(drift[:, 0].min()))
        x0 = min(0.0, float(drift[:, 1].min()))
        y1 = max((ny - 1) * dy, float(drift[:, 0].max()) + (ny - 1) * dy)
        x1 = max((nx - 1) * dx, float(drift[:, 1].max()) + (nx - 1) * dx)
        ny_out = int(round((y1 - y0) / dy)) + 1
        nx_out = int(round((x1 - x0) / dx)) + 1
        origin = self.origin + y0 * self.direction[:, 1] + x0 * self.direction[:, 2]
        out = Volume.from_grid(
            np.empty((nz_out, ny_out, nx_out), dtype=np.float32),
            (dz, dy, dx), origin, self.direction, self.meta,
        )
        fill_value = float(self.array.min()) if fill is None else float(fill)
        yy, xx = np.meshgrid(np.arange(ny_out), np.arange(nx_out), indexing="ij")
        plane = np.stack([np.zeros(yy.size), yy.ravel(), xx.ravel()], axis=1).astype(float)
        data = np.empty(out.shape, dtype=np.float32)
        for k in range(nz_out):
            plane[:, 0] = k
            src = self.lps_to_index(out.index_to_lps(plane))
            # Points on the first/last slice plane must not fall outside through round-off.
            for ax, n in enumerate(self.shape):
                col = src[:, ax]
                col[(col < 0) & (col > -1e-6)] = 0.0
                col[(col > n - 1) & (col < n - 1 + 1e-6)] = n - 1
            data[k] = map_coordinates(self.array, src.T, order=order, mode="constant",
                                      cval=fill_value).reshape(ny_out, nx_out)
        if np.issubdtype(self.array.dtype, np.integer):
            info = np.iinfo(self.array.dtype)
            data = np.clip(np.rint(data), info.min, info.max).astype(self.array.dtype)
        return out.with_array(data)
