"""Measurements from user-drawn caliper lines, returned like automatic ones."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from recist_tool.errors import MeasurementError
from recist_tool.measure.result import AxisMeasurement, Segment3
from recist_tool.volume import Volume

#: End points may lie this far (in slices) from an acquired slice plane.
SLICE_TOLERANCE = 0.05


def _as_index(volume: Volume, point: Sequence[float], coords: str, what: str) -> np.ndarray:
    """``point`` as fractional ``(z, y, x)`` voxel indices; voxel points must lie on the grid."""
    p = np.asarray(point, dtype=np.float64)
    if p.shape != (3,) or not np.all(np.isfinite(p)):
        raise MeasurementError(f"{what} must be 3 finite numbers, got {point!r}")
    if coords == "lps":
        return volume.lps_to_index(p)
    if coords != "voxel":
        raise MeasurementError(f"coords must be 'voxel' or 'lps', got {coords!r}")
    shape = np.asarray(volume.shape, dtype=np.float64)
    if np.any(p < -0.5) or np.any(p > shape - 0.5):
        # typically LPS millimetres given without coords='lps'
        given = ", ".join(f"{c:g}" for c in p)
        raise MeasurementError(
            f"{what} ({given}) is outside the volume's voxel indices (z 0-{volume.shape[0] - 1}, "
            f"y 0-{volume.shape[1] - 1}, x 0-{volume.shape[2] - 1}): points are (z, y, x) voxel "
            "indices unless coords='lps' (LPS millimetres)")
    return p


def _segment(
    volume: Volume, a: Sequence[float], b: Sequence[float], coords: str, what: str
) -> tuple[np.ndarray, int, float]:
    ia = _as_index(volume, a, coords, f"{what} start")
    ib = _as_index(volume, b, coords, f"{what} end")
    z = int(round(float(ia[0])))
    if max(abs(ia[0] - z), abs(ib[0] - z)) > SLICE_TOLERANCE:
        raise MeasurementError(
            f"the {what} must lie on one acquired slice (z = {ia[0]:.2f} and {ib[0]:.2f})"
        )
    if not 0 <= z < volume.shape[0]:
        raise MeasurementError(f"the {what} lies on slice {z}, outside the volume")
    idx = np.stack([ia, ib])
    idx[:, 0] = z
    dy, dx = volume.spacing[1], volume.spacing[2]
    d = idx[1] - idx[0]
    length = float(np.hypot(d[1] * dy, d[2] * dx))
    if not length > 0:
        raise MeasurementError(f"the {what} has zero length")
    return idx, z, length


def _pair(a: np.ndarray) -> Segment3:
    return (tuple(float(c) for c in a[0]), tuple(float(c) for c in a[1]))  # type: ignore[return-value]


def measure_line(
    volume: Volume,
    p0: Sequence[float],
    p1: Sequence[float],
    short_axis: tuple[Sequence[float], Sequence[float]] | None = None,
    *,
    coords: Literal["voxel", "lps"] = "voxel",
    node: bool = False,
) -> AxisMeasurement:
    """Measurement from caliper lines drawn on one slice (manual RECIST measurement).

    Points are voxel indices in ``(z, y, x)`` order by default; patient coordinates (LPS
    millimetres, ``(x, y, z)``, as in manifests, DICOM SR and ``recist segment --line``) need
    ``coords='lps'``. LPS points given as voxel indices fall outside the grid and raise a
    :class:`MeasurementError` saying so.

    Parameters
    ----------
    volume : Volume
        The image the lines were drawn on (geometry only).
    p0, p1 : sequence of float
        End points of the long-axis line: ``(z, y, x)`` voxel indices (fractional allowed, each
        within -0.5 to n - 0.5 of its axis) or, with ``coords='lps'``, LPS ``(x, y, z)``
        millimetres.
    short_axis : pair of points, optional
        End points of the short-axis line, on the same slice, given like ``p0`` and ``p1``.
    coords : {'voxel', 'lps'}
        How the points are given: ``'voxel'`` (default) or ``'lps'``.
    node : bool
        Marks a lymph-node measurement (RECIST then uses the short axis).

    Returns
    -------
    AxisMeasurement
        ``method='line'``, lengths exact in physical in-plane mm (row and column spacing may
        differ), end points in voxel indices and LPS; no volume or 3D diameter.

    Raises
    ------
    MeasurementError
        Zero-length lines, lines off an acquired slice or outside the volume (voxel points off
        the grid, e.g. LPS millimetres without ``coords='lps'``), a short axis on another slice
        than the long axis.
    """
    la_idx, z, la_len = _segment(volume, p0, p1, coords, "long-axis line")
    sa_vox = sa_lps = None
    sa_len = None
    if short_axis is not None:
        if len(short_axis) != 2:
            raise MeasurementError("the short axis needs exactly two end points")
        sa_idx, zs, sa_len = _segment(volume, short_axis[0], short_axis[1], coords,
                                      "short-axis line")
        if zs != z:
            raise MeasurementError(
                f"the short-axis line (slice {zs}) is not on the long-axis slice ({z})"
            )
        sa_vox, sa_lps = _pair(sa_idx), _pair(volume.index_to_lps(sa_idx))
    return AxisMeasurement(
        long_axis_mm=la_len,
        short_axis_mm=sa_len,
        slice_index=z,
        long_axis_endpoints_voxel=_pair(la_idx),
        long_axis_endpoints_lps=_pair(volume.index_to_lps(la_idx)),
        short_axis_endpoints_voxel=sa_vox,
        short_axis_endpoints_lps=sa_lps,
        volume_ml=None,
        max_3d_diameter_mm=None,
        n_components=1,
        components=(),
        n_components_3d=1,
        method="line",
        node=bool(node),
        spacing_mm=volume.spacing,
    )
