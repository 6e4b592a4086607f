"""In-plane geometry of one slice of a lesion mask: boundary, long axis, short axis.

Everything here works in a slice-local physical frame: a point is ``(y_mm, x_mm)`` =
``(row index * row spacing, column index * column spacing)``, so row spacing may differ from
column spacing. Conversion to voxel and patient coordinates is done by the caller.

Boundary convention
-------------------
The lesion outline is the 0.5 iso-contour of the mask smoothed by a Gaussian of
:data:`SIGMA_PX` pixels (per axis, in pixel units; less for thin lesions, see
:func:`adaptive_sigma`), which is an edge-to-edge outline: on a straight edge it lies half-way
between the last pixel centre inside and the first outside, i.e. on the pixel edges, as a caliper
laid on the image would be. Smoothed values at mask pixels are raised to :data:`PIXEL_FLOOR`, so
no mask pixel centre falls outside the outline. Two small, measured corrections are applied at
the two ends of the long axis, each bounded (:data:`END_SHIFT_MAX_IN_PX`,
:data:`END_SHIFT_MAX_OUT_PX`); see ``docs/measurement.md`` for the measurements behind them:

* the smoothing pulls a convex outline inwards by ``sigma_t**2 * kappa / 2`` (``sigma_t`` the
  smoothing width along the tangent, ``kappa`` the curvature); this is added back, with the
  curvature taken from a parabola fitted to the outline around each end;
* the end points of the maximum are the outermost of a slightly noisy (staircase) outline; the
  fitted parabola's apex, not the outermost vertex, is used as the end point.

The search for the diameters themselves (convex hull, farthest pairs, chords across a direction)
is :mod:`recist_tool.measure.diameters`; this module turns a mask slice into an :class:`Outline`
and measures it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage
from skimage.measure import find_contours

from recist_tool.measure.diameters import chords_at, convex_hull_2d, farthest_pairs, hull_diameter

#: Gaussian smoothing (pixels, per axis) applied to a binary slice before contouring.
SIGMA_PX = 1.0
#: Thin lesions get less smoothing: sigma = clip(SIGMA_WIDTH_FRACTION * width_px, 0.5, SIGMA_PX).
SIGMA_WIDTH_FRACTION = 0.15
#: Fallback smoothing widths tried when a part of the mask is too thin for :data:`SIGMA_PX`.
SIGMA_FALLBACK_PX = (0.5, 0.0)
#: Half-width of the window (in units of the tangential smoothing width) of the end-point fit.
FIT_WINDOW_SIGMAS = 6.0
#: The end-point fit window is at most this fraction of the lesion's width across the axis.
FIT_WINDOW_MAX_FRACTION = 0.4
#: ... and at least this many pixels (along the tangent).
FIT_WINDOW_MIN_PX = 1.5
#: Each long-axis end moves at most this far inwards / outwards (pixels along the axis): the
#: corrections are small on smooth outlines and must not eat a narrow tip.
END_SHIFT_MAX_IN_PX = 0.1
END_SHIFT_MAX_OUT_PX = 0.3
#: Short axis: half-width (pixels along the long axis) of the window of the chord-length fit ...
SA_FIT_WINDOW_PX = 5.0
#: ... and at most this fraction of the lesion's extent along the long axis.
SA_FIT_WINDOW_MAX_FRACTION = 0.25
#: A connected part whose smoothed peak stays below this is too thin for the smoothing width
#: (it would shrink or vanish): the next, smaller width is used for the slice.
MIN_PEAK = 0.75
#: Smoothed values at mask pixels are raised to at least this, so the outline encloses every
#: mask pixel centre (and a caliper spans at least the lesion's pixel centres).
PIXEL_FLOOR = 0.51
_PAD = 6


@dataclass(frozen=True)
class Outline:
    """Sub-pixel outline of a 2D mask in slice-local millimetres.

    Attributes
    ----------
    polygons : tuple of numpy.ndarray
        Closed polygons, each ``(n, 2)`` of ``(y_mm, x_mm)``; outer borders and holes alike
        (inside/outside follows the even-odd rule).
    spacing : tuple of float
        ``(row spacing, column spacing)`` in mm.
    sigma_px : float
        Gaussian width (pixels) used for this outline.
    """

    polygons: tuple[np.ndarray, ...]
    spacing: tuple[float, float]
    sigma_px: float
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def points(self) -> np.ndarray:
        """All outline vertices, ``(n, 2)`` mm."""
        if "points" not in self._cache:
            self._cache["points"] = np.concatenate(self.polygons, axis=0)
        return self._cache["points"]

    def hull_vertices(self) -> np.ndarray:
        """Vertices of the convex hull of the outline, counter-clockwise, ``(h, 2)`` mm."""
        if "hull" not in self._cache:
            self._cache["hull"] = convex_hull_2d(self.points)
        return self._cache["hull"]

    def diametral_pairs(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Outline vertex pairs at its diameter (see
        :func:`~recist_tool.measure.diameters.farthest_pairs`)."""
        if "diametral" not in self._cache:
            self._cache["diametral"] = farthest_pairs(self.points)
        return self._cache["diametral"]

    def raw_diameter(self) -> float:
        """Diameter (mm) of the outline, before any end correction."""
        p, q = self.diametral_pairs()[0]
        return float(np.hypot(*(q - p)))


def smooth_slices(mask: np.ndarray, sigma_px: float) -> np.ndarray:
    """Pad a ``(z, y, x)`` or ``(y, x)`` binary mask in-plane and smooth it in-plane.

    Returns a float32 array padded by ``_PAD`` pixels on each in-plane side.
    """
    m = np.asarray(mask, dtype=np.float32)
    pad = [(0, 0)] * (m.ndim - 2) + [(_PAD, _PAD), (_PAD, _PAD)]
    m = np.pad(m, pad)
    if sigma_px <= 0:
        return m
    sig = [0.0] * (m.ndim - 2) + [sigma_px, sigma_px]
    return ndimage.gaussian_filter(m, sig, mode="constant", truncate=4.0)


def _prepare_field(smoothed: np.ndarray, mask: np.ndarray, sigma_px: float) -> bool:
    """Check that every connected part of ``mask`` keeps an outline at this smoothing, and raise
    the smoothed values at mask pixels to :data:`PIXEL_FLOOR` (in place). ``False`` when a part
    is too thin (its smoothed peak stays below :data:`MIN_PEAK`)."""
    if sigma_px <= 0:
        return True
    inner = smoothed[_PAD:-_PAD, _PAD:-_PAD]
    lab, n = ndimage.label(mask, structure=np.ones((3, 3), bool))
    if n == 1:
        if inner.max() < MIN_PEAK:
            return False
    elif n > 1:
        inside = lab > 0
        peaks = np.zeros(n + 1)
        np.maximum.at(peaks, lab[inside], inner[inside])
        if np.min(peaks[1:]) < MIN_PEAK:
            return False
    # keep every mask pixel centre inside the outline (thin spicules are not smoothed away)
    inner[mask & (inner < PIXEL_FLOOR)] = PIXEL_FLOOR
    return True


def contour_outline(field: np.ndarray, spacing: tuple[float, float], sigma_px: float
                    ) -> Outline | None:
    """The 0.5 iso-contour of a prepared padded field (see :func:`outline_field`) as an
    :class:`Outline`; ``None`` when it has no closed polygon."""
    dy, dx = spacing
    polys = [(c - _PAD) * np.array([dy, dx]) for c in find_contours(field, 0.5)
             if c.shape[0] >= 3]
    if not polys:
        return None
    return Outline(tuple(polys), (float(dy), float(dx)), float(sigma_px))


#: Directions over which :func:`field_diameter_bound` takes the outline's widths.
_N_WIDTH_DIRS = 32


def field_diameter_bound(field: np.ndarray, spacing: tuple[float, float]) -> float:
    """An upper bound (mm) of the diameter of the 0.5 iso-contour of a padded field.

    The contour's vertices are the linear-interpolation crossings of 0.5 on the grid edges
    (marching squares); they are found directly, without assembling polygons, and the widest
    of :data:`_N_WIDTH_DIRS` projections divided by ``cos(pi / (2 n))`` bounds their diameter.
    Edges with an end exactly at 0.5 are included, so the bound holds for any tie rule.
    """
    pts = []
    for axis in (0, 1):
        lo = field[:-1] if axis == 0 else field[:, :-1]
        hi = field[1:] if axis == 0 else field[:, 1:]
        iy, ix = np.nonzero((lo - 0.5) * (hi - 0.5) <= 0)
        if iy.size == 0:
            continue
        a, b = lo[iy, ix], hi[iy, ix]
        den = np.where(b != a, b - a, 1.0)
        t = np.clip((0.5 - a) / den, 0.0, 1.0)
        y, x = iy.astype(float), ix.astype(float)
        if axis == 0:
            y = y + t
        else:
            x = x + t
        pts.append(np.column_stack([y * spacing[0], x * spacing[1]]))
    if not pts:
        return 0.0
    p = np.concatenate(pts)
    ang = np.arange(_N_WIDTH_DIRS) * np.pi / _N_WIDTH_DIRS
    proj = p @ np.stack([np.sin(ang), np.cos(ang)])
    width = float((proj.max(axis=0) - proj.min(axis=0)).max())
    return width / float(np.cos(np.pi / (2 * _N_WIDTH_DIRS)))


def row_extremes(mask2d: np.ndarray) -> np.ndarray:
    """``(y, x)`` pixel indices of the first and last mask pixel of every row (float array).

    Their convex hull is the convex hull of all the mask's pixel centres.
    """
    m = np.asarray(mask2d, bool)
    rows = np.flatnonzero(m.any(axis=1))
    if rows.size == 0:
        return np.empty((0, 2))
    sub = m[rows]
    first = np.argmax(sub, axis=1)
    last = sub.shape[1] - 1 - np.argmax(sub[:, ::-1], axis=1)
    y = np.concatenate([rows, rows]).astype(float)
    x = np.concatenate([first, last]).astype(float)
    return np.stack([y, x], axis=1)


def adaptive_sigma(mask2d: np.ndarray, spacing: tuple[float, float]) -> float:
    """Smoothing width (pixels) for one slice: :data:`SIGMA_PX`, less for thin lesions.

    The width is the extent (pixels) of the mask's pixel centres across their longest chord.
    """
    m = np.asarray(mask2d, dtype=bool)
    dy, dx = spacing
    # fast path: pixel area / bounding-box diagonal bounds the width from below (within
    # about half a pixel of the width measured below, hence the extra pixel)
    rows, cols = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
    if rows.size:
        diag = float(np.hypot((rows[-1] - rows[0] + 1) * dy, (cols[-1] - cols[0] + 1) * dx))
        lower_px = np.count_nonzero(m) * dy * dx / (diag * max(dy, dx))
        if lower_px >= SIGMA_PX / SIGMA_WIDTH_FRACTION + 1.0:
            return SIGMA_PX
    pts = row_extremes(m)
    if pts.shape[0] < 3:
        return SIGMA_FALLBACK_PX[0]
    hull = convex_hull_2d(pts * np.array([dy, dx]))
    p, q, d = hull_diameter(hull)
    if d <= 0:
        return SIGMA_FALLBACK_PX[0]
    t = np.array([-(q - p)[1], (q - p)[0]]) / d
    proj = hull @ t
    width_px = float(proj.max() - proj.min()) / float(np.hypot(dy * t[0], dx * t[1])) + 1.0
    return float(np.clip(SIGMA_WIDTH_FRACTION * width_px, SIGMA_FALLBACK_PX[0], SIGMA_PX))


def outline_field(
    mask2d: np.ndarray, spacing: tuple[float, float], sigma_px: float | None = None
) -> tuple[np.ndarray, float]:
    """The padded smoothed slice whose 0.5 iso-contour is the outline, and its smoothing width.

    The smoothing is :func:`adaptive_sigma` (or ``sigma_px``), or the next smaller of
    :data:`SIGMA_FALLBACK_PX` when a part of the mask is too thin for it.
    """
    mask2d = np.asarray(mask2d, dtype=bool)
    first = adaptive_sigma(mask2d, spacing) if sigma_px is None else sigma_px
    for sigma in (first, *[s for s in SIGMA_FALLBACK_PX if s < first]):
        field = smooth_slices(mask2d, sigma)
        if _prepare_field(field, mask2d, sigma):
            return field, float(sigma)
    raise ValueError("empty slice")  # pragma: no cover - sigma 0 always passes


def outline_fields(
    masks: np.ndarray, spacing: tuple[float, float]
) -> list[tuple[np.ndarray, float]]:
    """:func:`outline_field` of every slice of a ``(n, y, x)`` stack, as a list.

    Slices at the full smoothing width :data:`SIGMA_PX` are smoothed in one call (the same
    values as one by one); the others go through :func:`outline_field`.
    """
    masks = np.asarray(masks, dtype=bool)
    out: list[tuple[np.ndarray, float] | None] = [None] * masks.shape[0]
    full = [i for i in range(masks.shape[0]) if adaptive_sigma(masks[i], spacing) == SIGMA_PX]
    if full:
        smoothed = smooth_slices(masks[full], SIGMA_PX)
        for j, i in enumerate(full):
            if _prepare_field(smoothed[j], masks[i], SIGMA_PX):
                out[i] = (smoothed[j], SIGMA_PX)
    return [o if o is not None else outline_field(masks[i], spacing) for i, o in enumerate(out)]


def slice_outline(
    mask2d: np.ndarray, spacing: tuple[float, float], sigma_px: float | None = None
) -> Outline:
    """Sub-pixel outline of a non-empty 2D binary mask (see the module conventions).

    Parameters
    ----------
    mask2d : numpy.ndarray
        Binary ``(y, x)`` slice (a crop is fine: coordinates are relative to it).
    spacing : tuple of float
        ``(row spacing, column spacing)`` mm.
    sigma_px : float, optional
        Smoothing width; default :func:`adaptive_sigma`.
    """
    field, sigma = outline_field(mask2d, spacing, sigma_px)
    out = contour_outline(field, spacing, sigma)
    if out is None:  # pragma: no cover - a prepared field always has a closed contour
        raise ValueError("empty slice")
    return out


@dataclass(frozen=True)
class Axis:
    """A measured segment in slice-local mm: end points ``p``, ``q`` (``(y_mm, x_mm)``)."""

    p: np.ndarray
    q: np.ndarray

    @property
    def length(self) -> float:
        """Length in mm."""
        return float(np.hypot(*(self.q - self.p)))


def _end_correction(
    pts: np.ndarray, e: np.ndarray, u: np.ndarray, t: np.ndarray, var_t: float, px_t: float,
    width: float,
) -> float:
    """Signed shift (mm, outward along ``u``) of one long-axis end point.

    Fits ``s = c0 + c1 r + c2 r**2`` (``s`` outward along ``u``, ``r`` along ``t``) to the outline
    near ``e``; returns the apex offset plus the curvature compensation ``var_t * kappa / 2``.
    """
    w = max(FIT_WINDOW_SIGMAS * np.sqrt(var_t), FIT_WINDOW_MIN_PX * px_t)
    w = min(w, FIT_WINDOW_MAX_FRACTION * width)
    if w <= 0:
        return 0.0
    rel = pts - e
    s = rel @ u
    r = rel @ t
    sel = (np.abs(r) <= w) & (s > -w)
    if np.count_nonzero(sel) < 5:
        return 0.0
    # least squares by the normal equations on r / w (in [-1, 1]: well conditioned)
    x, ss = r[sel] / w, s[sel]
    x2 = x * x
    m = np.array([x.size, x.sum(), x2.sum(), (x2 * x).sum(), (x2 * x2).sum()])
    lhs = np.array([[m[0], m[1], m[2]], [m[1], m[2], m[3]], [m[2], m[3], m[4]]])
    try:
        c = np.linalg.solve(lhs, np.array([ss.sum(), (ss * x).sum(), (ss * x2).sum()]))
    except np.linalg.LinAlgError:  # fewer than three distinct positions: no parabola
        return 0.0
    c = c / np.array([1.0, w, w * w])
    if c[2] < 0:
        apex = c[0] - c[1] ** 2 / (4.0 * c[2])
        kappa = -2.0 * c[2]
    else:
        apex, kappa = c[0], 0.0
    apex = min(float(apex), 0.0)
    return apex + var_t * kappa / 2.0


def long_axis(outline: Outline, correct: bool = True) -> Axis:
    """Longest in-plane diameter of an outline (edge to edge), in slice-local mm.

    The exact maximum over the outline's convex hull (rotating calipers), then, with
    ``correct``, each end moved along the axis by the measured end-point correction (when
    several vertex pairs tie for the maximum, the longest corrected one).
    """
    pairs = outline.diametral_pairs()
    p, q = pairs[0]
    d = float(np.hypot(*(q - p)))
    if d <= 0 or not correct:
        return Axis(p.copy(), q.copy())
    dy, dx = outline.spacing
    sig = outline.sigma_px
    pts = outline.points
    best: Axis | None = None
    for p, q in pairs:
        u = (q - p) / float(np.hypot(*(q - p)))
        t = np.array([-u[1], u[0]])
        var_t = (sig * dy * t[0]) ** 2 + (sig * dx * t[1]) ** 2
        if var_t <= 0:
            return Axis(p.copy(), q.copy())
        proj_t = pts @ t
        width = float(proj_t.max() - proj_t.min())
        px_t = float(np.hypot(dy * t[0], dx * t[1]))
        px_u = float(np.hypot(dy * u[0], dx * u[1]))
        lo, hi = -END_SHIFT_MAX_IN_PX * px_u, END_SHIFT_MAX_OUT_PX * px_u
        cp = float(np.clip(_end_correction(pts, p, -u, t, var_t, px_t, width), lo, hi))
        cq = float(np.clip(_end_correction(pts, q, u, t, var_t, px_t, width), lo, hi))
        ax = Axis(p - cp * u, q + cq * u)
        if best is None or ax.length > best.length:
            best = ax
    assert best is not None
    return best


def _denoised_length(
    a: np.ndarray, b: np.ndarray, u: np.ndarray, v: np.ndarray, t: float, length: float,
    vert_t: np.ndarray, spacing: tuple[float, float],
) -> float:
    """Chord length at the maximum from a parabola fitted to lengths on nearby parallel lines.

    The raw maximum over lines picks up the outline's staircase noise (a positive bias); the
    fitted apex does not. The result is kept within one pixel below the raw maximum.
    """
    dy, dx = spacing
    px_u = float(np.hypot(dy * u[0], dx * u[1]))
    px_v = float(np.hypot(dy * v[0], dx * v[1]))
    extent = float(vert_t[-1] - vert_t[0])
    w = min(SA_FIT_WINDOW_PX * px_u, SA_FIT_WINDOW_MAX_FRACTION * extent)
    if w < px_u:
        return length
    ts = np.linspace(t - w, t + w, 41)
    li, s0, s1 = chords_at(a, b, u, v, ts)
    per_line = np.zeros(ts.size)
    np.maximum.at(per_line, li, s1 - s0)
    ok = per_line > 0
    if np.count_nonzero(ok) < 10:
        return length
    x = ts[ok] - t
    c = np.polyfit(x, per_line[ok], 2)
    if c[0] < 0 and abs(-c[1] / (2 * c[0])) <= w:
        apex = float(np.polyval(c, -c[1] / (2 * c[0])))
    else:
        apex = float(np.mean(per_line[ok]))
    return float(np.clip(apex, length - px_v, length))


def perpendicular_chord(
    outline: Outline, u: np.ndarray, max_lines: int = 400, denoise: bool = True
) -> Axis | None:
    """Longest chord inside the outline perpendicular to the unit direction ``u``.

    The chord lies inside the lesion (even-odd rule over all polygons, so holes and concavities
    split chords). Its length is piecewise linear between outline vertices, so the maximum is
    found among the lines through the vertices (sampled at most ``max_lines`` at a time, then
    refined around the best one).

    Returns ``None`` when no perpendicular line crosses the outline.
    """
    u = np.asarray(u, float) / np.linalg.norm(u)
    v = np.array([-u[1], u[0]])
    a = np.concatenate([p for p in outline.polygons])
    b = np.concatenate([np.roll(p, -1, axis=0) for p in outline.polygons])
    keep = np.any(a != b, axis=1)
    a, b = a[keep], b[keep]
    vert_t = np.unique(a @ u)
    if vert_t.size == 0:
        return None
    def best(ts: np.ndarray) -> tuple[float, float, float, float]:
        li, s0, s1 = chords_at(a, b, u, v, ts)
        if li.size == 0:
            return 0.0, 0.0, 0.0, 0.0
        k = int(np.argmax(s1 - s0))
        return float(s1[k] - s0[k]), float(ts[li[k]]), float(s0[k]), float(s1[k])

    if vert_t.size > max_lines:
        # coarse pass, then the vertex lines around the best few coarse lines
        coarse = np.linspace(vert_t[0], vert_t[-1], max_lines)
        li, c0, c1 = chords_at(a, b, u, v, coarse)
        step = coarse[1] - coarse[0]
        per_line = np.zeros(coarse.size)
        np.maximum.at(per_line, li, c1 - c0)
        top = np.argsort(per_line)[-3:]
        near = np.zeros(vert_t.size, bool)
        for k in top:
            near |= np.abs(vert_t - coarse[k]) <= 2 * step
        ts = np.concatenate([vert_t[near], coarse[top]])
    else:
        ts = vert_t
    # lines just beside each vertex: the half-open rule is exact there
    eps = 1e-9 * max(1.0, float(np.max(np.abs(ts))))
    length, t, s0, s1 = best(np.concatenate([ts + eps, ts - eps]))
    if not length > 0:
        return None
    if denoise:
        fitted = _denoised_length(a, b, u, v, t, length, vert_t, outline.spacing)
        if fitted < length:  # shorten symmetrically: the chord stays inside the lesion
            mid, half = 0.5 * (s0 + s1), 0.5 * fitted
            s0, s1 = mid - half, mid + half
    return Axis(t * u + s0 * v, t * u + s1 * v)
