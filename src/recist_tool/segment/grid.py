"""A working grid around a click: sample a volume onto it and map results back to the native grid.

The working grid is a regular orthogonal box in patient space, aligned with the volume's own axes
(slice normal, column and row directions) and centred on a point. Sampling goes through
:meth:`Volume.lps_to_index` and mapping back through :meth:`Volume.index_to_lps`, so sheared
(gantry-tilt) and unevenly spaced stacks are handled exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
from scipy.ndimage import affine_transform, map_coordinates

from recist_tool.volume import Volume


@dataclass(frozen=True)
class WorkGrid:
    """A box of ``shape`` voxels of ``spacing`` mm in patient space.

    Attributes
    ----------
    origin : numpy.ndarray
        LPS of working voxel ``(0, 0, 0)``.
    direction : numpy.ndarray
        3x3; columns the LPS unit vectors of the working ``z``, ``y``, ``x`` axes.
    spacing : tuple of float
        ``(dz, dy, dx)`` mm.
    shape : tuple of int
        ``(nz, ny, nx)``.
    """

    origin: np.ndarray
    direction: np.ndarray
    spacing: tuple[float, float, float]
    shape: tuple[int, int, int]

    @classmethod
    def centred(cls, volume: Volume, centre_lps: Sequence[float] | np.ndarray,
                spacing: Sequence[float], shape: Sequence[int]) -> WorkGrid:
        """Grid aligned with ``volume``'s axes whose centre is ``centre_lps``."""
        d = volume.direction
        sp = np.asarray(spacing, float)
        half = (np.asarray(shape, float) - 1.0) / 2.0 * sp
        origin = np.asarray(centre_lps, float) - d @ half
        return cls(origin, d, cast("tuple[float, float, float]", tuple(float(s) for s in sp)),
                   cast("tuple[int, int, int]", tuple(int(n) for n in shape)))

    def points_lps(self) -> np.ndarray:
        """LPS of every working voxel, shape ``(nz*ny*nx, 3)`` in C order."""
        idx = np.indices(self.shape, dtype=np.float64).reshape(3, -1).T
        return self.origin[None, :] + (idx * np.asarray(self.spacing)[None, :]) @ self.direction.T

    def lps_to_work(self, lps: np.ndarray) -> np.ndarray:
        """LPS ``(..., 3)`` → fractional working indices ``(..., 3)``."""
        p = np.asarray(lps, float)
        return ((p - self.origin) @ self.direction) / np.asarray(self.spacing)

    def work_to_lps(self, idx: np.ndarray) -> np.ndarray:
        """Fractional working indices ``(..., 3)`` → LPS ``(..., 3)``."""
        i = np.asarray(idx, float)
        return self.origin + (i * np.asarray(self.spacing)) @ self.direction.T

    def corners_lps(self) -> np.ndarray:
        """LPS of the 8 corner voxels, shape ``(8, 3)``."""
        hi = np.asarray(self.shape, float) - 1.0
        c = np.array([[a, b, e] for a in (0, hi[0]) for b in (0, hi[1]) for e in (0, hi[2])])
        return self.work_to_lps(c)

    def native_bounds(self, volume: Volume, margin: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Native index box ``[lo, hi)`` (clipped) covering the grid, plus ``margin`` voxels."""
        idx = volume.lps_to_index(self.corners_lps())
        lo = np.floor(idx.min(axis=0)).astype(int) - margin
        hi = np.ceil(idx.max(axis=0)).astype(int) + 1 + margin
        shape = np.asarray(volume.shape)
        return np.clip(lo, 0, shape), np.clip(hi, 0, shape)

    def sample(self, volume: Volume, array: np.ndarray | None = None, order: int = 1,
               mode: str = "nearest", cval: float = 0.0, mirror_ends: bool = False
               ) -> np.ndarray:
        """Values of ``array`` (default the volume's) at the working voxels, float32.

        Only the native sub-block under the grid is read and converted, so a large series is
        never copied. Outside the volume: ``mode`` of :func:`scipy.ndimage.map_coordinates`
        (``nearest`` repeats the edge). ``mirror_ends``: beyond the first and last slice the
        stack is mirrored instead (slice ``-k`` reads slice ``k``), so that a lesion cut by the
        end of the scan looks whole rather than drawn out.
        """
        arr = volume.array if array is None else array
        lo, hi = self.native_bounds(volume)
        if np.any(hi <= lo):  # grid entirely outside: use the nearest edge voxel block
            lo = np.minimum(lo, np.asarray(volume.shape) - 1)
            hi = lo + 1
        lin = None if mirror_ends else _linear_index_map(volume)
        if lin is not None:  # evenly spaced stack: native index is affine in working index
            m = np.linalg.solve(lin[:3, :3], self.direction * np.asarray(self.spacing)[None, :])
            off = np.linalg.solve(lin[:3, :3], self.origin - lin[:3, 3]) - lo
            sub = np.asarray(arr[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]], dtype=np.float32)
            return affine_transform(sub, m, off, output_shape=self.shape, order=order,
                                    mode=mode, cval=cval, output=np.float32)
        src = volume.lps_to_index(self.points_lps())
        if mirror_ends:
            n = volume.shape[0]
            period = 2 * (n - 1)
            src[:, 0] = (n - 1) - np.abs(np.mod(src[:, 0], period) - (n - 1)) if n > 1 else 0.0
            lo[0], hi[0] = 0, n
        sub = np.asarray(arr[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]], dtype=np.float32)
        out = map_coordinates(sub, (src - lo[None, :]).T, order=order, mode=mode, cval=cval,
                              output=np.float32)
        return out.reshape(self.shape)

    def to_native(self, volume: Volume, values: np.ndarray, threshold: float = 0.5,
                  ) -> tuple[np.ndarray, tuple[int, int, int]]:
        """Map a working-grid map (e.g. probabilities) back onto the native grid.

        Returns
        -------
        mask : numpy.ndarray
            Boolean crop of the native grid: voxels whose interpolated value is ``> threshold``.
        offset : tuple of int
            Native index of the crop's first voxel.
        """
        lo, hi = self.native_bounds(volume, margin=0)
        if np.any(hi <= lo):
            return np.zeros((1, 1, 1), bool), (0, 0, 0)
        sub_shape = tuple(int(v) for v in hi - lo)
        lin = _linear_index_map(volume)
        if lin is not None:  # evenly spaced stack: working index is affine in native index
            to_work = self.direction.T / np.asarray(self.spacing)[:, None]
            m = to_work @ lin[:3, :3]
            off = to_work @ (lin[:3, :3] @ lo.astype(float) + lin[:3, 3] - self.origin)
            vals = affine_transform(np.asarray(values, np.float32), m, off, output_shape=sub_shape,
                                    order=1, mode="constant", cval=0.0, output=np.float32)
            return vals > threshold, (int(lo[0]), int(lo[1]), int(lo[2]))
        idx = np.indices(sub_shape, dtype=np.float64).reshape(3, -1).T + lo[None, :]
        w = self.lps_to_work(volume.index_to_lps(idx))
        vals = map_coordinates(np.asarray(values, np.float32), w.T, order=1, mode="constant",
                               cval=0.0, output=np.float32)
        return (vals.reshape(sub_shape) > threshold), (int(lo[0]), int(lo[1]), int(lo[2]))


#: Largest distance (mm) of a slice from the straight line through the first and last slice
#: at even steps for which :func:`_linear_index_map` still calls the stack linear.
LINEAR_TOLERANCE_MM = 1e-4


def _linear_index_map(volume: Volume) -> np.ndarray | None:
    """:attr:`Volume.affine` (native ``(z, y, x, 1)`` index to LPS) when it reproduces every
    slice position within :data:`LINEAR_TOLERANCE_MM` (slices at even steps along a straight
    line, sheared or not), else ``None``: the exact per-slice map of
    :meth:`Volume.lps_to_index` is used instead."""
    if not volume.is_uniform:
        return None
    a = volume.affine
    line = a[:3, 3] + np.arange(volume.shape[0])[:, None] * a[:3, 0]
    if np.max(np.abs(np.asarray(volume.slice_positions) - line)) > LINEAR_TOLERANCE_MM:
        return None
    return a


def gaussian_click(shape: Sequence[int], spacing: Sequence[float], centre: Sequence[float] | np.ndarray,
                   sigma_mm: float = 3.0) -> np.ndarray:
    """Gaussian heat map (peak 1) of a click at working index ``centre``; float32 ``shape``."""
    axes = [((np.arange(n, dtype=np.float32) - c) * s) ** 2
            for n, c, s in zip(shape, centre, spacing, strict=True)]
    d2 = axes[0][:, None, None] + axes[1][None, :, None] + axes[2][None, None, :]
    return np.exp(-d2 / (2.0 * sigma_mm**2)).astype(np.float32)


def normalise_hu(a: np.ndarray) -> np.ndarray:
    """Map HU to the network's input range: clip to [-1000, 500], centre -250, scale 500."""
    return ((np.clip(a, -1000.0, 500.0) + 250.0) / 500.0).astype(np.float32)
