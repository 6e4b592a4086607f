"""Analytic test shapes rasterised by voxel-centre sampling, with their exact measurements."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from recist_tool.volume import Volume


def ellipse_slice(
    rng: np.random.Generator, a: float, b: float, theta: float, dy: float, dx: float
) -> np.ndarray:
    """A 2D ellipse (semi-axes ``a`` >= ``b`` mm, angle ``theta``) at a random sub-pixel shift."""
    r = a + 4.0
    ny, nx = int(np.ceil(2 * r / dy)) + 4, int(np.ceil(2 * r / dx)) + 4
    y = (np.arange(ny) - ny / 2 + rng.uniform()) * dy
    x = (np.arange(nx) - nx / 2 + rng.uniform()) * dx
    yy, xx = np.meshgrid(y, x, indexing="ij")
    c, s = np.cos(theta), np.sin(theta)
    u, v = xx * c + yy * s, -xx * s + yy * c
    return (u / a) ** 2 + (v / b) ** 2 <= 1.0


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random 3D rotation matrix."""
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    w, x, y, z = q
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


class Ellipsoid:
    """``p^T A p <= 1`` around ``centre`` (LPS mm), semi-axes ``axes``, rotation ``rot``."""

    def __init__(self, axes: tuple[float, float, float], rot: np.ndarray, centre: np.ndarray):
        self.axes = np.asarray(axes, float)
        self.rot = rot
        self.centre = np.asarray(centre, float)
        self.A = rot @ np.diag(1.0 / self.axes**2) @ rot.T

    def inside(self, lps: np.ndarray) -> np.ndarray:
        d = lps - self.centre
        return np.einsum("...i,ij,...j->...", d, self.A, d) <= 1.0

    def rasterise(self, volume: Volume) -> np.ndarray:
        """Mask of the voxels of ``volume`` whose centre (exact LPS) is inside."""
        zz, yy, xx = np.meshgrid(*[np.arange(n) for n in volume.shape], indexing="ij")
        idx = np.stack([zz, yy, xx], axis=-1).reshape(-1, 3)
        return self.inside(volume.index_to_lps(idx)).reshape(volume.shape)

    def section_axes(self, volume: Volume, k: int) -> tuple[float, float]:
        """Exact long and short diameters (mm) of the section by the plane of slice ``k``."""
        n = volume.normal
        e1, e2 = volume.direction[:, 1], volume.direction[:, 2]
        basis = np.stack([e1, e2, n], axis=1)
        a = basis.T @ self.A @ basis  # in (e1, e2, n) coordinates
        z0 = float((volume.slice_positions[k] - self.centre) @ n)
        aww, awz, azz = a[:2, :2], a[:2, 2], a[2, 2]
        r2 = 1.0 - z0 * z0 * (azz - awz @ np.linalg.solve(aww, awz))
        if r2 <= 0:
            return 0.0, 0.0
        lam = np.linalg.eigvalsh(aww)
        r = np.sqrt(r2)
        return 2 * r / np.sqrt(lam[0]), 2 * r / np.sqrt(lam[1])

    @property
    def volume_ml(self) -> float:
        return 4.0 / 3.0 * np.pi * float(np.prod(self.axes)) / 1000.0


def volume_from_sitk(img: sitk.Image) -> Volume:
    """A :class:`Volume` on the grid of a SimpleITK image (LPS, orthogonal grid)."""
    arr = sitk.GetArrayFromImage(img)
    sx, sy, sz = img.GetSpacing()
    d = np.asarray(img.GetDirection(), float).reshape(3, 3)
    return Volume.from_grid(arr, (sz, sy, sx), img.GetOrigin(), d[:, [2, 1, 0]])
