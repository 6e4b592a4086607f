"""Measure a lesion mask: RECIST long axis, short axis, volume and maximal 3D diameter."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
from scipy import ndimage
from scipy.spatial import ConvexHull, QhullError

from recist_tool.errors import MeasurementError
from recist_tool.measure.diameters import far_candidates
from recist_tool.measure.planar import (
    END_SHIFT_MAX_IN_PX,
    END_SHIFT_MAX_OUT_PX,
    Axis,
    Outline,
    contour_outline,
    field_diameter_bound,
    long_axis,
    outline_field,
    outline_fields,
    perpendicular_chord,
    slice_outline,
)
from recist_tool.measure.result import AxisMeasurement, ComponentAxes, Segment3
from recist_tool.stages import timed
from recist_tool.volume import Volume

_EIGHT = np.ones((3, 3), bool)

#: Output of :func:`_line_ends`: line indices, first and last mask positions.
_LineEnds = tuple[np.ndarray, np.ndarray, np.ndarray]


@dataclass
class _SliceAxes:
    k: int  # slice index within the crop
    outline: Outline
    la: Axis
    sa: Axis | None = None

    @property
    def ld(self) -> float:
        return self.la.length

    @property
    def sd(self) -> float:
        return 0.0 if self.sa is None else self.sa.length

    def direction(self) -> np.ndarray:
        d = self.la.q - self.la.p
        n = float(np.hypot(*d))
        return d / n if n > 0 else np.array([1.0, 0.0])

    def compute_sa(self) -> None:
        if self.sa is None:
            self.sa = perpendicular_chord(self.outline, self.direction())


def _resolve_mask(
    volume: Volume, mask: np.ndarray | None, label: int | None
) -> np.ndarray:
    arr = volume.array if mask is None else np.asarray(mask)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise MeasurementError(f"a lesion mask must be 3D (z, y, x), got shape {arr.shape}")
    if label is not None:
        return arr == label
    if arr.dtype == bool:
        return arr
    return arr != 0


def _slice_axes(mask2d: np.ndarray, k: int, spacing: tuple[float, float]) -> _SliceAxes:
    outline = slice_outline(mask2d, spacing)
    return _SliceAxes(k, outline, long_axis(outline))


#: Directions (in-plane) used to bound each slice's diameter before measuring it exactly.
_N_BOUND_DIRS = 16
#: Margin (pixels) between the pixel-centre diameter and the measured (edge to edge, corrected)
#: long axis: the outline lies within about half a pixel outside the centres' hull, each end
#: correction adds at most 0.3 pixel (a test checks the bound on random shapes).
_BOUND_MARGIN_PX = 2.0


def _slice_bounds(sub: np.ndarray, spacing: tuple[float, float],
                  rows: _LineEnds | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Per slice, numbers no larger and no smaller than the long axis measured on it (mm).

    The pixel-centre diameter lies between the widest of :data:`_N_BOUND_DIRS` projections of
    the slice's row ends and that width divided by ``cos(pi / (2 n))``. The outline encloses the
    pixel centres and each end correction moves an end inwards by at most
    ``END_SHIFT_MAX_IN_PX``, which gives the lower bound; the upper bound adds
    :data:`_BOUND_MARGIN_PX`. Empty slices get 0 and 0.
    """
    zy, x0, x1 = _line_ends(sub, 2) if rows is None else rows
    upper = np.zeros(sub.shape[0])
    lower = np.zeros(sub.shape[0])
    if zy.shape[0] == 0:
        return lower, upper
    dy, dx = spacing
    ang = np.arange(_N_BOUND_DIRS) * np.pi / _N_BOUND_DIRS
    cu, su = np.cos(ang), np.sin(ang)
    z = zy[:, 0].astype(int)
    ymm = zy[:, 1] * dy
    pa = ymm[:, None] * su[None, :] + (x0 * dx)[:, None] * cu[None, :]
    pb = ymm[:, None] * su[None, :] + (x1 * dx)[:, None] * cu[None, :]
    # lines come sorted by slice (np.nonzero order): reduce each slice's block
    starts = np.flatnonzero(np.r_[True, z[1:] != z[:-1]])
    hi = np.maximum.reduceat(np.maximum(pa, pb), starts, axis=0)
    lo = np.minimum.reduceat(np.minimum(pa, pb), starts, axis=0)
    width = (hi - lo).max(axis=1)
    px = max(dy, dx)
    upper[z[starts]] = width / np.cos(np.pi / (2 * _N_BOUND_DIRS)) + _BOUND_MARGIN_PX * px
    lower[z[starts]] = np.maximum(width - 2.0 * END_SHIFT_MAX_IN_PX * px, 0.0)
    return lower, upper


def _line_ends(m: np.ndarray, axis: int) -> _LineEnds:
    """For every line of ``m`` along ``axis`` that holds mask voxels: its index tuple (other
    axes), and the first and last mask position along ``axis``."""
    mm = np.moveaxis(m, axis, -1)
    has = mm.any(axis=-1)
    lines = np.nonzero(has)
    sub = mm[lines]
    first = np.argmax(sub, axis=-1)
    last = sub.shape[-1] - 1 - np.argmax(sub[..., ::-1], axis=-1)
    return np.stack(lines, axis=1).astype(float), first.astype(float), last.astype(float)


_CHAIN_MIN_POINTS = 400


def _convex_chain(group: np.ndarray, a: np.ndarray, b: np.ndarray, side: float) -> np.ndarray:
    """Mask of the points to keep on monotone chains ``b(a)`` (one chain per ``group`` value).

    Each chain holds the extreme ``b`` of a line-wise scan (e.g. the first mask pixel of every
    row), sorted by ``a``; ``side`` is -1 for minima, +1 for maxima. A point that does not turn
    outwards with respect to its kept neighbours lies inside the convex hull of the chain's
    slice and is dropped; chain ends are always kept. Points are removed at alternating parity
    so that no two neighbours go in one pass.
    """
    keep = np.ones(a.size, bool)
    if a.size < _CHAIN_MIN_POINTS:  # small sets: the convex hull is cheaper than filtering
        return keep
    for it in range(24):
        idx = np.flatnonzero(keep)
        if idx.size < 3:
            break
        i0, i1, i2 = idx[:-2], idx[1:-1], idx[2:]
        same = (group[i0] == group[i1]) & (group[i1] == group[i2])
        # outward turn of the middle point: b above the chord of its neighbours (times side)
        t = (a[i1] - a[i0]) / np.where(a[i2] != a[i0], a[i2] - a[i0], 1.0)
        chord = b[i0] + t * (b[i2] - b[i0])
        inner = same & (side * (b[i1] - chord) <= 1e-12)
        inner &= (np.arange(inner.size) % 2) == (it % 2)
        if not inner.any() and it % 2 == 1:
            break
        keep[i1[inner]] = False
    return keep


def _edge_points(sub: np.ndarray, rows: _LineEnds | None = None
                 ) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """Boundary points of a 3D mask for its maximal diameter, as monotone chains.

    Each entry is ``(idx, chain, side)``: ``(n, 3)`` ``(z, y, x)`` index points and ``(n, 3)``
    ``(group, a, b)`` chain coordinates for :func:`_convex_chain`. In-plane points are pixel
    edges at the two ends of every row and column of each slice; where a slice's mask is not
    covered by the next (previous) slice, the row ends there are placed half a slice above
    (below) the plane, each slice owning half the gap to its neighbours.
    """
    out = []
    for axis in (2, 1):
        lines, first, last = rows if axis == 2 and rows is not None else _line_ends(sub, axis)
        z, other = lines[:, 0], lines[:, 1]
        for ext, shift, side in ((first, -0.5, -1.0), (last, 0.5, 1.0)):
            e = ext + shift
            idx = (np.column_stack([z, other, e]) if axis == 2
                   else np.column_stack([z, e, other]))
            out.append((idx, np.column_stack([z, other, ext]), side))
    up = sub.copy()
    up[:-1] &= ~sub[1:]
    down = sub.copy()
    down[1:] &= ~sub[:-1]
    for cap, dz in ((up, 0.5), (down, -0.5)):
        lines, first, last = _line_ends(cap, 2)
        for ext, side in ((first, -1.0), (last, 1.0)):
            idx = np.column_stack([lines[:, 0] + dz, lines[:, 1], ext])
            out.append((idx, np.column_stack([lines[:, 0], lines[:, 1], ext]), side))
    return out


def _max_3d_diameter(volume: Volume, sub: np.ndarray, origin: np.ndarray,
                     rows: _LineEnds | None = None) -> float:
    """Largest distance (mm, LPS) between boundary points of the 3D mask (see
    :func:`_edge_points`).

    Points that cannot end a pair longer than a first lower bound are dropped (see
    :func:`point_set_diameter`); of the rest, points inside their slice's convex chains are
    dropped, then the exact diameter is taken.
    """
    sets = _edge_points(sub, rows)
    lps = volume.index_to_lps(np.concatenate([idx for idx, _, _ in sets]) + origin[None, :])
    far = far_candidates(lps)[0]
    kept = []
    start = 0
    for idx, chain, side in sets:
        sel = np.flatnonzero(far[start:start + idx.shape[0]])
        c = chain[sel]
        keep = _convex_chain(c[:, 0], c[:, 1], c[:, 2], side)
        kept.append(start + sel[keep])
        start += idx.shape[0]
    return point_set_diameter(lps[np.concatenate(kept)])


#: From this many voxels on, 3D components are counted by SimpleITK (run-length labelling, about
#: twice as fast as scipy's on lesion crops); below, its fixed cost (~0.6 ms) is larger.
_SITK_LABEL_FROM = 200_000


def _runs_connected(mask: np.ndarray) -> bool:
    """True when the row runs of a 3D mask prove it one 26-connected piece (``False``: unknown).

    The proof holds when every row holds one run of voxels, the rows of each slice are
    consecutive and each overlaps the next (8-connected), the slices are consecutive and each
    shares an overlapping row with the next. Compact lesions pass it; the rest are labelled.
    """
    nx = mask.shape[2]
    has = np.asarray(mask.any(axis=2))
    first = np.argmax(mask, axis=2)
    last = nx - 1 - np.argmax(mask[:, :, ::-1], axis=2)
    if np.any(np.count_nonzero(mask, axis=2)[has] != (last - first + 1)[has]):
        return False  # a row with a gap
    per_slice = has.sum(axis=1)
    zs = np.flatnonzero(per_slice)
    if zs[-1] - zs[0] + 1 != zs.size:
        return False  # an empty slice between others
    z, y = np.nonzero(has)
    y_lo = np.full(mask.shape[0], mask.shape[1])
    y_hi = np.full(mask.shape[0], -1)
    np.minimum.at(y_lo, z, y)
    np.maximum.at(y_hi, z, y)
    if np.any((y_hi - y_lo + 1)[zs] != per_slice[zs]):
        return False  # rows of a slice not consecutive

    def overlap(fa: np.ndarray, la: np.ndarray, fb: np.ndarray, lb: np.ndarray) -> np.ndarray:
        return (fb <= la + 1) & (fa <= lb + 1)

    inplane = has[:, :-1] & has[:, 1:]
    if np.any(inplane & ~overlap(first[:, :-1], last[:, :-1], first[:, 1:], last[:, 1:])):
        return False
    across = has[:-1] & has[1:] & overlap(first[:-1], last[:-1], first[1:], last[1:])
    return bool(np.all(across[zs[:-1]].any(axis=1)))


def count_components_3d(mask: np.ndarray) -> int:
    """Number of 26-connected components of a 3D binary mask.

    A compact mask whose row runs prove it one piece gives 1 without labelling; otherwise
    large masks go through SimpleITK's connected-component filter (one thread), small ones
    through :func:`scipy.ndimage.label`; the count is the same.
    """
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return 0
    if _runs_connected(mask):
        return 1
    if mask.size < _SITK_LABEL_FROM:
        return int(ndimage.label(mask, structure=np.ones((3, 3, 3), bool))[1])
    import SimpleITK as sitk

    cc = sitk.ConnectedComponentImageFilter()
    cc.SetFullyConnected(True)
    cc.SetNumberOfThreads(1)
    cc.Execute(sitk.GetImageFromArray(np.ascontiguousarray(mask, dtype=np.uint8)))
    return int(cc.GetObjectCount())


_HULL_ABOVE = 512


def point_set_diameter(points: np.ndarray) -> float:
    """Exact largest distance between 3D points.

    Points that cannot end a pair longer than a first lower bound are dropped first (most of
    them, for any elongated lesion; see
    :func:`~recist_tool.measure.diameters.far_candidates`). Of the rest, only convex-hull
    vertices can be ends of the diameter (the hull is taken when many points remain); their
    pairs are searched blockwise.
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.shape[0] < 2:
        return 0.0
    keep, c, best = far_candidates(pts)
    pts = pts[keep] - c
    if pts.shape[0] > _HULL_ABOVE:
        try:
            pts = pts[ConvexHull(pts).vertices]
        except QhullError:  # flat or degenerate point sets: keep them all
            pass
    sq = np.einsum("ij,ij->i", pts, pts)
    for k in range(0, pts.shape[0], 256):
        d2 = sq[k:k + 256, None] + sq[None, k:] - 2.0 * (pts[k:k + 256] @ pts[k:].T)
        best = max(best, float(d2.max()))
    return float(np.sqrt(max(best, 0.0)))


def _to_voxel_lps(
    volume: Volume, axis: Axis | None, z: int, origin_yx: np.ndarray, spacing: tuple[float, float]
) -> tuple[Segment3 | None, Segment3 | None]:
    if axis is None:
        return None, None
    yx = np.stack([axis.p, axis.q]) / np.asarray(spacing) + origin_yx[None, :]
    idx = np.column_stack([np.full(2, float(z)), yx])
    lps = volume.index_to_lps(idx)
    as_t = lambda a: (tuple(float(c) for c in a[0]), tuple(float(c) for c in a[1]))  # noqa: E731
    return cast(Segment3, as_t(idx)), cast(Segment3, as_t(lps))


@timed("measure")
def measure_mask(
    volume: Volume,
    mask: np.ndarray | None = None,
    node: bool = False,
    *,
    offset: Sequence[int] = (0, 0, 0),
    label: int | None = None,
) -> AxisMeasurement:
    """RECIST long axis, short axis, volume and maximal 3D diameter of a lesion mask.

    Parameters
    ----------
    volume : Volume
        Gives the geometry (spacing, slice positions, orientation). Either the CT the mask was
        drawn on, or a mask volume itself (then ``mask`` may be omitted).
    mask : numpy.ndarray, optional
        ``(z, y, x)`` lesion mask: boolean, or labels (non-zero = lesion unless ``label``).
        Either on the whole grid of ``volume`` or a crop of it placed at ``offset``.
        Default: ``volume.array``.
    node : bool
        Lymph node: measure on the slice with the largest short axis (RECIST follows the node's
        short axis) instead of the slice with the longest long axis.
    offset : sequence of int
        ``(z, y, x)`` index in ``volume`` of the crop's first voxel.
    label : int, optional
        Measure only voxels equal to this label.

    Returns
    -------
    AxisMeasurement
        End points are reported in the full volume's voxel indices and in LPS.

    Raises
    ------
    MeasurementError
        When the mask is empty or does not fit the volume.

    Notes
    -----
    *Long axis*: for every axial slice of the acquisition (the volume's own slices; no
    reformatting) the exact longest diameter of the lesion's sub-pixel outline in physical
    in-plane millimetres (row and column spacing may differ), edge to edge as a caliper on the
    image; the longest over slices is reported. The outline is the 0.5 iso-contour of the slice
    mask smoothed by a 1-pixel Gaussian, with the measured end corrections described in
    :mod:`recist_tool.measure.planar` and ``docs/measurement.md``.

    *Short axis*: on the same slice, the longest chord perpendicular to the long axis that lies
    inside the lesion (concavities and holes split chords; it is not a hull width).

    *Volume*: voxel count times the voxel volume of each slice with the real slice gaps
    (:meth:`Volume.voxel_volume_ml`). *Maximal 3D diameter*: in LPS with the exact slice
    positions (tilted and unevenly spaced stacks included), each slice spanning half the gap to
    its neighbours; pixel-edge boundary, so at most about one pixel longer than the truth; never
    less than the long axis.
    """
    m = _resolve_mask(volume, mask, label)
    off = np.asarray(offset, dtype=int)
    if off.shape != (3,):
        raise MeasurementError(f"offset must be 3 integers (z, y, x), got {offset!r}")
    if np.any(off < 0) or np.any(off + np.asarray(m.shape) > np.asarray(volume.shape)):
        raise MeasurementError(
            f"mask of shape {m.shape} at offset {tuple(int(o) for o in off)} does not fit the "
            f"volume of shape {volume.shape}"
        )
    if not m.any():
        raise MeasurementError("the lesion mask is empty: nothing to measure")

    # crop to the bounding box
    nzidx = [np.flatnonzero(m.any(axis=tuple(a for a in range(3) if a != ax))) for ax in range(3)]
    lo = np.array([i[0] for i in nzidx])
    hi = np.array([i[-1] + 1 for i in nzidx])
    sub = m[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
    origin = (off + lo).astype(float)
    spacing2 = (volume.spacing[1], volume.spacing[2])
    present = [k for k in range(sub.shape[0]) if sub[k].any()]
    rows = _line_ends(sub, 2)  # every row's first and last mask pixel, shared below

    chosen: _SliceAxes | None
    if node:
        slices = []
        for k in present:
            s = _slice_axes(sub[k], k, spacing2)
            s.compute_sa()
            slices.append(s)
        chosen = max(slices, key=lambda s: (round(s.sd, 9), round(s.ld, 9), -s.k))
    else:
        lb_all, ub_all = _slice_bounds(sub, spacing2, rows)
        bounds = sorted(((float(ub_all[k]), k) for k in present), reverse=True)
        # only slices whose upper bound reaches the best lower bound can hold the long axis:
        # their outline fields are prepared together
        floor = float(lb_all.max())
        cands = [k for ub, k in bounds if ub >= floor]
        fields = dict(zip(cands, outline_fields(sub[cands], spacing2), strict=True))
        chosen = None
        corr_max = 2.0 * END_SHIFT_MAX_OUT_PX * max(spacing2) + 1e-9
        for ub, k in bounds:
            if chosen is not None and ub < chosen.ld:
                break
            # the end corrections add at most corr_max to the outline's raw diameter
            field, sigma = fields[k] if k in fields else outline_field(sub[k], spacing2)
            if chosen is not None and field_diameter_bound(field, spacing2) + corr_max < chosen.ld:
                continue
            outline = contour_outline(field, spacing2, sigma)
            assert outline is not None  # a prepared field always has a closed contour
            if chosen is not None and outline.raw_diameter() + corr_max < chosen.ld:
                continue
            s = _SliceAxes(k, outline, long_axis(outline))
            if chosen is None or (round(s.ld, 9), -s.k) > (round(chosen.ld, 9), -chosen.k):
                chosen = s
        assert chosen is not None
        chosen.compute_sa()
    assert chosen is not None  # mypy: both branches choose a slice

    z = int(origin[0]) + chosen.k
    oyx = origin[1:]
    la_vox, la_lps = _to_voxel_lps(volume, chosen.la, z, oyx, spacing2)
    sa_vox, sa_lps = _to_voxel_lps(volume, chosen.sa, z, oyx, spacing2)

    # split lesions: every connected part on the measured slice
    lab, ncomp = ndimage.label(sub[chosen.k], structure=_EIGHT)
    pix_area = spacing2[0] * spacing2[1]
    comps: list[ComponentAxes] = []
    for c in range(1, ncomp + 1):
        part = lab == c
        if ncomp == 1:
            s = chosen
        else:
            s = _slice_axes(part, chosen.k, spacing2)
            s.compute_sa()
        cl_vox, cl_lps = _to_voxel_lps(volume, s.la, z, oyx, spacing2)
        cs_vox, cs_lps = _to_voxel_lps(volume, s.sa, z, oyx, spacing2)
        comps.append(ComponentAxes(
            long_axis_mm=s.ld, short_axis_mm=s.sd,
            long_axis_endpoints_voxel=cl_vox, long_axis_endpoints_lps=cl_lps,  # type: ignore[arg-type]
            short_axis_endpoints_voxel=cs_vox, short_axis_endpoints_lps=cs_lps,
            area_mm2=float(np.count_nonzero(part)) * pix_area,
        ))
    comps.sort(key=lambda c: -c.long_axis_mm)

    counts = sub.reshape(sub.shape[0], -1).sum(axis=1)
    vml = volume.voxel_volume_ml()[int(origin[0]):int(origin[0]) + sub.shape[0]]
    volume_ml = float(np.dot(counts, vml))
    n3d = count_components_3d(sub)
    d3 = max(_max_3d_diameter(volume, sub, origin, rows), chosen.ld)

    return AxisMeasurement(
        long_axis_mm=chosen.ld,
        short_axis_mm=chosen.sd,
        slice_index=z,
        long_axis_endpoints_voxel=la_vox,  # type: ignore[arg-type]
        long_axis_endpoints_lps=la_lps,  # type: ignore[arg-type]
        short_axis_endpoints_voxel=sa_vox,
        short_axis_endpoints_lps=sa_lps,
        volume_ml=volume_ml,
        max_3d_diameter_mm=d3,
        n_components=ncomp,
        components=tuple(comps),
        n_components_3d=int(n3d),
        method="mask",
        node=bool(node),
        spacing_mm=volume.spacing,
    )
