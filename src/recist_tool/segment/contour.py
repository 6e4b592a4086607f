"""``contour``: a weight-free segmenter for large lesions, from a caliper line (or a click).

Method (all lengths in mm on the volume's own slices):

1. **The measured slice.** On the slice of the prompt, the lesion's outline is a closed curve
   ``r(theta)`` around the prompt's centre, found by dynamic programming over a polar image
   (:func:`polar_outline`): at each angle the curve sits where the image changes (radial
   gradient) and the tissue inside resembles the lesion, its radius changes by a bounded step
   between angles (a smooth, star-shaped outline), and it closes on itself; each angle's radius
   is then moved, by at most :data:`HALF_LEVEL_MM`, to where the density crosses halfway between
   the tissue just inside and just outside (the half-contrast edge). A line's two ends are
   two points of the outline, and its length bounds the outline's radius (no diameter on the slice
   of the long axis is longer than it).
2. **Slice by slice.** The outline is carried to the slices above and below: each slice's outline
   is sought around the centroid of the previous one, within a band around the previous radii, so
   that a lesion whose edge fades against tissue of the same density keeps its shape; from a
   line, no farther out than the line's slice allows (the line spans the lesion where it is
   longest, as a reader draws it). The lesion
   ends where an outline no longer separates lesion-like tissue from its surroundings (the
   contrast across it drops below :data:`END_CONTRAST_SHARE` of that on the measured slice, or
   the tissue inside no longer matches the lesion), where it shrinks below
   :data:`MIN_RADIUS_MM`, or at the end of the scan (the mask is then ``leak_bounded``).
3. A box bounds the outline's radius (half its in-plane diagonal) and clips the mask. From a
   click or a box (no line), an outline whose contrast is below ``classic``'s
   :data:`~recist_tool.segment.seed.MIN_CONTRAST_HU` is no lesion
   (:class:`~recist_tool.segment.base.NoLesionError`): a click on normal tissue finds no outline.
   A line is the reader's statement that a lesion is there, and is always outlined.
4. The working region grows with the lesion: it is sized from the line (or the click's first
   outline) and has no fixed field of view; only a lesion longer than :data:`MAX_EXTENT_FACTOR`
   times its long axis in the slice direction is stopped there, and says so.
5. **Rims.** A lesion that is not a node and whose outline has a rim round it (a necrotic
   metastasis prompted in its core: :func:`~recist_tool.segment.layers.outer_layer`) is grown
   to the rim's outer edge (``info["outer_layer"]``); from a line, only when the line's ends
   lie there (:func:`~recist_tool.segment.layers.with_outer_layer`).
6. **Lobules.** The smooth, star-shaped outline cuts across a lobule behind a notch (the sample
   trial's 80 mm lobulated central primary read 74.7 mm, true 80.4 mm). On each slice, tissue
   of the lesion's density next to the outline (:func:`with_lobules`) is added where it ends
   within :data:`LOBULE_MM` of the outline on every side and the outline lies in aerated lung;
   tissue of the lesion's density that runs on farther (the chest wall, a vessel), or that lies
   next to a lesion in soft tissue, is a neighbour, not a lobule, and is left out.
7. **Cavities.** A click on air inside a cavitating lesion's cavity (:func:`cavity_wall`) is
   outlined round the click with the wall's density; a click on the wall whose outline leaves
   out a cavity next to it (:func:`cavity_near`) is outlined again from the cavity, and that
   outline is kept when it comes within :data:`CAVITY_CLICK_MM` of the click
   (``info["from_cavity_at"]``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import numpy as np
from scipy import ndimage
from scipy.ndimage import map_coordinates

from recist_tool.segment.base import LesionMask, NoLesionError, Prompt, clip_to_box
from recist_tool.segment.layers import with_outer_layer
from recist_tool.segment.seed import AIR_MAX_HU, MIN_CONTRAST_HU, check_seed, seed_statistics
from recist_tool.volume import Volume

__version__ = "0.5"

#: Cost of the outline's radius, per share of the largest radius: of two edges alike, the inner
#: one is taken.
OUTWARD_COST = 0.3
#: The in-plane working region reaches this many mm beyond the largest outline radius sought
#: (or three quarters of the line's length); it grows by half while the mask touches its side.
CROP_MARGIN_MM = 15.0
#: Cost, per squared tolerance (12 % of its radius, at least 2 mm), of an outline that misses a
#: caliper line's end.
ANCHOR_COST = 2.0
#: Angles of the polar outline.
N_ANGLES = 96
#: Largest change of the outline's radius between neighbouring angles, per mm of arc at the
#: largest radius sought (smoothness). 0.3 followed elongated sarcomas better but let a phantom
#: metastasis's outline follow a neighbour of its own density (long axis 9 % long).
MAX_STEP_PER_MM = 0.12
#: Cost, per ``band_mm``, of an outline's distance from the previous slice's radii.
PRIOR_COST = 0.06
#: The lesion ends on a slice where the contrast across its outline falls below this share of
#: the contrast on the measured slice.
END_CONTRAST_SHARE = 0.35
#: The lesion ends after faint outlines over more than this many mm of slices (a faint slice
#: followed by a clear one is kept).
WEAK_MM = 6.0
#: Outlines smaller than this mean radius (mm) end the lesion.
MIN_RADIUS_MM = 2.0
#: The lesion is followed at most this many times its long axis above and below its slice
#: (the 26 soft-tissue sarcomas of the training data reach 0.5-1.1 times it on either side).
MAX_EXTENT_FACTOR = 1.0
#: Density (HU) above which a voxel inside an outline is bone (with the marrow it encloses) and
#: is left out of the lesion.
BONE_HU = 300.0
#: A click on air is in a lesion's cavity when the air around it ends within this many mm in
#: every direction, in 3D (:func:`cavity_wall`): a cavitating lung lesion, whose carried centre
#: lies in its cavity at a follow-up (anlotinib cavitates lung lesions). The trachea and bronchi
#: run on farther, and aerated lung reaches the box's sides.
CAVITY_RADIUS_MM = 40.0
#: A click on a cavitating lesion's wall is outlined again from the cavity when one lies within
#: this many mm of it on its slice (:func:`cavity_near`) and the outline round the click leaves
#: it out: drawn round a point of a thick wall, it takes the cavity for the lesion's outside.
CAVITY_NEAR_MM = 10.0
#: The outline from the cavity is kept when it comes this near the click (mm): a click on the
#: wall's outer edge lies in its partial-volume fringe, which an outline may leave out.
CAVITY_CLICK_MM = 2.0
#: Share of the shell around a cavity that must be tissue (its wall), not air.
CAVITY_WALL_SHARE = 0.9
#: Thickness (mm) of that shell.
CAVITY_WALL_MM = 3.0
#: A slice's outline may grow by at most this many mm (plus half the slice gap) over the one
#: before at any angle.
GROW_MM = 2.0
#: The outline's radius at each angle moves at most this far (mm) to the half-contrast level.
HALF_LEVEL_MM = 1.0
#: A lobule ends within this many mm of the smooth outline (:func:`with_lobules`).
LOBULE_MM = 15.0
#: Lobules are sought on the slices where at least this share of the tissue 1-3 mm outside the
#: outline is aerated lung (a lung lesion, lobulated as lung cancers are). On the sarcomas
#: (muscle around) and 3D-IRCADb's retroperitoneal mass, tissue of the lesion's density that
#: ends near the outline was a neighbour: sought on every slice, the mass read 131.7 mm for
#: 121.2 mm, and 4 of 9 sarcomas 1.3-5.2 mm longer than before, already too long.
LOBULE_AIR_SHARE = 0.5
#: A lobule's tissue lies within this many of the lesion's robust spreads of its density (and
#: at least :data:`~recist_tool.segment.seed.MIN_CONTRAST_HU`), averaged over 3 x 3 pixels.
LOBULE_SPREADS = 2.5


def box_extent_mm(volume: Volume, box) -> tuple[float, float]:
    """In-plane size of a prompt's box (inclusive voxel corners): its longer side and its
    diagonal, in mm."""
    lo, hi = (np.asarray(b, float) for b in box)
    side = (hi[1:] - lo[1:] + 1.0) * np.asarray(volume.spacing[1:], float)
    return float(side.max()), float(np.hypot(*side))


def _smooth(img: np.ndarray, spacing_yx) -> np.ndarray:
    sigma = np.maximum(0.8 / np.asarray(spacing_yx, float), 0.5)
    return ndimage.gaussian_filter(img.astype(np.float32), sigma, mode="nearest")


def polar_outline(img: np.ndarray, spacing_yx, centre_yx, r_max_mm: float, lesion_hu: float,
                  spread_hu: float, prior_mm: np.ndarray | None = None,
                  band_mm: float | None = None,
                  anchors: Sequence[tuple[float, float]] = ()) -> tuple[np.ndarray, dict[str, float]]:
    """The lesion's closed outline on one (smoothed) slice, as radii per angle.

    Parameters
    ----------
    img : numpy.ndarray
        The slice (HU), smoothed.
    spacing_yx : tuple of float
        Pixel spacing (mm).
    centre_yx : tuple of float
        Centre (pixel indices) the radii are measured from.
    r_max_mm : float
        Largest radius considered.
    lesion_hu, spread_hu : float
        The lesion's typical density and its spread.
    prior_mm : numpy.ndarray, optional
        Radii (mm, :data:`N_ANGLES`) of the outline on the neighbouring slice; the outline stays
        within ``band_mm`` of them (shrinking freely, growing by at most ``band_mm``).
    anchors : list of (angle, radius_mm)
        Points the outline should pass through (a caliper line's ends).

    Returns
    -------
    radii : numpy.ndarray
        Outline radius (mm) per angle.
    quality : dict
        ``contrast``: how much farther from the lesion's density the tissue just outside the
        outline is than the tissue just inside it (HU, mean over the angles);
        ``inside_hu``: median density just inside it.
    """
    sp = np.asarray(spacing_yx, float)
    dr = float(np.clip(r_max_mm / 90.0, 0.5, 2.0))
    r = np.arange(dr, r_max_mm + dr, dr)
    th = np.linspace(0.0, 2 * np.pi, N_ANGLES, endpoint=False)
    dy, dx = np.sin(th), np.cos(th)
    yy = centre_yx[0] + dy[:, None] * r[None, :] / sp[0]
    xx = centre_yx[1] + dx[:, None] * r[None, :] / sp[1]
    prof = map_coordinates(img, [yy.ravel(), xx.ravel()], order=1, mode="nearest"
                           ).reshape(N_ANGLES, len(r))
    # mean density over 3 mm just inside and just outside each candidate radius, 1 mm away from
    # it (the partial-volume fringe of the edge itself belongs to neither side)
    w = max(1, int(round(3.0 / dr)))
    g = max(1, int(round(1.0 / dr)))
    n = len(r)
    csum = np.concatenate([np.zeros((N_ANGLES, 1)), np.cumsum(prof, axis=1)], axis=1)
    idx = np.arange(n)
    b_in = np.clip(idx - g, 0, None)
    a_in = np.clip(idx - g - w + 1, 0, None)
    inside = (csum[:, b_in + 1] - csum[:, a_in]) / (b_in + 1 - a_in)
    a_out = np.clip(idx + g, None, n - 1)
    b_out = np.clip(idx + g + w - 1, None, n - 1)
    outside = (csum[:, b_out + 1] - csum[:, a_out]) / (b_out + 1 - a_out)
    tau = max(2.0 * spread_hu, 30.0)
    dev_in = np.abs(inside - lesion_hu) / tau
    dev_out = np.abs(outside - lesion_hu) / tau
    # edge: a radial change of density, where the inside resembles the lesion and the outside
    # departs from it; the radial gradient, in units of tau/2 per mm, is compressed by a
    # logarithm rather than cut off, so that the steepest point of a strong edge, not its blurred
    # foot, scores highest, and a faint edge still counts
    grad = np.log1p(np.abs(np.gradient(prof, dr, axis=1)) * 2.0 / tau)
    edge = grad * np.exp(-0.5 * dev_in**2) * np.clip(dev_out, 0.0, 1.0)
    # a profile that has already left the lesion (beyond a clear boundary) costs more, and of
    # two edges alike the inner one is taken
    left = np.maximum.accumulate(np.clip(dev_in - 1.0, 0.0, 3.0), axis=1)
    cost = -edge + 0.5 * left + OUTWARD_COST * r[None, :] / r_max_mm
    if prior_mm is not None and band_mm is not None:
        over = r[None, :] - (prior_mm[:, None] + band_mm)
        cost = cost + np.where(over > 0, 10.0 + over, 0.0)
        cost = cost + PRIOR_COST * np.abs(r[None, :] - prior_mm[:, None]) / max(band_mm, 1.0)
    for ang, rad in anchors:
        k = int(round(ang / (2 * np.pi) * N_ANGLES)) % N_ANGLES
        tol = max(0.12 * rad, 2.0)
        for j in (-1, 0, 1):
            cost[(k + j) % N_ANGLES] += ANCHOR_COST * ((r - rad) / tol) ** 2
    radii_idx = _closed_path(cost, r, dr)
    radii = _half_level(prof, r, radii_idx, inside, outside)
    ins = inside[np.arange(N_ANGLES), radii_idx]
    outs = outside[np.arange(N_ANGLES), radii_idx]
    quality = {"contrast": float(np.mean(np.abs(outs - lesion_hu))
                                 - np.mean(np.abs(ins - lesion_hu))),
               "inside_hu": float(np.median(ins))}
    return radii, quality


def _half_level(prof: np.ndarray, r: np.ndarray, idx: np.ndarray, inside: np.ndarray,
                outside: np.ndarray) -> np.ndarray:
    """Each angle's radius moved, within :data:`HALF_LEVEL_MM` of the path's, to where its
    profile crosses halfway between the densities just inside and just outside the path (the
    half-contrast edge, as a reader's window shows it), linearly between samples; kept where
    the profile does not cross there."""
    dr = float(r[1] - r[0]) if len(r) > 1 else 1.0
    k = max(1, int(np.ceil(HALF_LEVEL_MM / dr)))
    out = r[idx].astype(float)
    n = len(r)
    for a, i in enumerate(idx):
        level = 0.5 * (inside[a, i] + outside[a, i])
        lo, hi = max(i - k, 0), min(i + k, n - 1)
        seg = prof[a, lo:hi + 1] - level
        cross = np.flatnonzero(np.sign(seg[:-1]) != np.sign(seg[1:]))
        if cross.size == 0:
            continue
        j = int(cross[np.argmin(np.abs(cross + lo - i))])
        f = seg[j] / (seg[j] - seg[j + 1])
        out[a] = r[lo + j] + f * dr
    return out


def _closed_path(cost: np.ndarray, r: np.ndarray, dr: float) -> np.ndarray:
    """Radius indices (one per angle) of the cheapest closed smooth path through ``cost``.

    An open path is found first (any start); the closed path is then sought among starts near
    the open path's own start, where a closed optimum lies unless the image holds two outlines
    of about equal cost.
    """
    n_r = cost.shape[1]
    step = max(1, int(np.ceil(MAX_STEP_PER_MM * r.max() * 2 * np.pi / cost.shape[0] / dr)))
    open_path = _dp(cost, np.arange(n_r), step, closed=False)
    s0 = int(open_path[0])
    starts = np.arange(max(s0 - 2 * step, 0), min(s0 + 2 * step, n_r - 1) + 1)
    return _dp(cost, starts, step, closed=True)


def _dp(cost: np.ndarray, starts: np.ndarray, step: int, closed: bool) -> np.ndarray:
    """Dynamic programming over angles: the cheapest path whose radius index changes by at most
    ``step`` between angles, beginning at one of ``starts`` (all at once for an open path) and,
    when ``closed``, ending within ``step`` of where it began."""
    n_a, n_r = cost.shape
    big = 1e9
    rows = len(starts) if closed else 1
    d = np.full((rows, n_r), big)
    if closed:
        d[np.arange(rows), starts] = cost[0, starts]
    else:
        d[0, starts] = cost[0, starts]
    back = np.zeros((n_a, rows, n_r), np.int8)
    for a in range(1, n_a):
        best = d.copy()
        arg = np.zeros(d.shape, np.int8)
        for s in range(1, step + 1):
            for sign in (1, -1):
                shifted = np.full_like(d, big)
                if sign > 0:
                    shifted[:, s:] = d[:, :n_r - s]
                else:
                    shifted[:, :-s] = d[:, s:]
                better = shifted < best
                best[better] = shifted[better]
                arg[better] = sign * s
        d = best + cost[a][None, :]
        back[a] = arg
    if closed:
        d = np.where(np.abs(np.arange(n_r)[None, :] - starts[:, None]) <= step, d, big)
    si, ri = np.unravel_index(int(np.argmin(d)), d.shape)
    path = np.zeros(n_a, int)
    path[-1] = ri
    for a in range(n_a - 1, 0, -1):
        path[a - 1] = path[a] - back[a, si, path[a]]
    return path


def _fill_outline(shape_yx, spacing_yx, centre_yx, radii_mm: np.ndarray) -> np.ndarray:
    """Boolean slice of the star-shaped region inside the outline."""
    sp = np.asarray(spacing_yx, float)
    yy, xx = np.indices(shape_yx, dtype=np.float64)
    ry = (yy - centre_yx[0]) * sp[0]
    rx = (xx - centre_yx[1]) * sp[1]
    dist = np.hypot(ry, rx)
    ang = np.mod(np.arctan2(ry, rx), 2 * np.pi)
    pos = ang / (2 * np.pi) * N_ANGLES
    k0 = np.floor(pos).astype(int) % N_ANGLES
    f = pos - np.floor(pos)
    rad = (1 - f) * radii_mm[k0] + f * radii_mm[(k0 + 1) % N_ANGLES]
    return dist <= rad


def _centre(mask2d: np.ndarray, spacing_yx) -> tuple[float, float]:
    """Where the next slice's outline is centred: the slice mask's centroid when it lies well
    inside the mask (at least half as deep as its deepest pixel), else the deepest pixel (a
    crescent's centroid lies outside it)."""
    cy, cx = ndimage.center_of_mass(mask2d)
    edt = ndimage.distance_transform_edt(np.pad(mask2d, 1), sampling=spacing_yx)[1:-1, 1:-1]
    if edt[int(round(cy)), int(round(cx))] >= 0.5 * edt.max():
        return float(cy), float(cx)
    iy, ix = np.unravel_index(int(np.argmax(edt)), edt.shape)
    return float(iy), float(ix)


def _bone(img: np.ndarray, lesion_hu: float) -> np.ndarray:
    """Bone on a slice (above :data:`BONE_HU`, or the lesion's density when it is denser) with
    the marrow it encloses."""
    bone = img > max(BONE_HU, lesion_hu + 150.0)
    return ndimage.binary_fill_holes(bone) if bone.any() else bone


def _holds(out: dict[str, Any], at: np.ndarray, spacing: np.ndarray | None = None,
           within_mm: float = 0.0) -> bool:
    """Whether :meth:`ContourSegmenter._follow`'s mask holds the voxel ``at`` (or, with
    ``within_mm``, a voxel of its slice that near it)."""
    i = np.asarray(at, int) - np.asarray(out["lo"], int)
    mask = out["mask"]
    if not (0 <= i[0] < mask.shape[0]):
        return False
    if within_mm <= 0.0 or spacing is None:
        return bool(np.all(i >= 0) and np.all(i < mask.shape) and mask[tuple(i)])
    ys, xs = np.nonzero(mask[i[0]])
    d = np.hypot((ys - i[1]) * spacing[1], (xs - i[2]) * spacing[2])
    return bool(d.size and d.min() <= within_mm)


def _radii_of(mask2d: np.ndarray, spacing_yx, centre_yx, r_max_mm: float) -> np.ndarray:
    """Radius (mm) per angle of a slice mask seen from ``centre_yx`` (last inside sample)."""
    sp = np.asarray(spacing_yx, float)
    r = np.arange(0.0, r_max_mm, 0.5)
    th = np.linspace(0.0, 2 * np.pi, N_ANGLES, endpoint=False)
    yy = centre_yx[0] + np.sin(th)[:, None] * r[None, :] / sp[0]
    xx = centre_yx[1] + np.cos(th)[:, None] * r[None, :] / sp[1]
    inside = map_coordinates(mask2d.astype(np.uint8), [yy.ravel(), xx.ravel()], order=0,
                             mode="constant").reshape(N_ANGLES, len(r)) > 0
    last = np.where(inside.any(axis=1), len(r) - 1 - np.argmax(inside[:, ::-1], axis=1), 0)
    return r[last]


def with_lobules(volume: Volume, mask: np.ndarray, offset: Sequence[int], lesion_hu: float,
                 spread_hu: float, reach_mm: float = LOBULE_MM
                 ) -> tuple[np.ndarray, tuple[int, int, int], int]:
    """``mask`` with the lobules its smooth outline cut off, slice by slice, in the lung.

    On each slice of the mask mostly surrounded by aerated lung (:data:`LOBULE_AIR_SHARE`), the
    pixels whose 3 x 3 mean lies within ``LOBULE_SPREADS``
    spreads (at least ``MIN_CONTRAST_HU``) of ``lesion_hu`` and within ``reach_mm`` of the mask
    form pieces; a piece that touches the mask and ends short of ``reach_mm`` on every side
    is a lobule and is added. A piece that reaches ``reach_mm`` runs on into a neighbour of the
    lesion's density and is left out whole.

    Returns
    -------
    tuple
        The mask, its offset (grown by ``reach_mm`` in-plane, clipped to the volume) and the
        number of pixels added.

    Examples
    --------
    >>> import numpy as np
    >>> from recist_tool.volume import Volume
    >>> yy, xx = np.mgrid[:60, :60]
    >>> body = np.hypot(yy - 30, xx - 30) < 10                   # the outline's disc
    >>> lobule = np.hypot(yy - 30, xx - 42) < 4                  # ends 4 mm outside it
    >>> wall = (xx > 26) & (xx < 34) & (yy < 20)                 # runs on to the image's edge
    >>> img = np.where(body | lobule | wall, 40, -800).astype(np.int16)[None]
    >>> vol = Volume.from_grid(img, spacing=(2.0, 1.0, 1.0))
    >>> grown, lo, added = with_lobules(vol, body[None], (0, 0, 0), 40.0, 10.0)
    >>> bool(grown[0, 30 - lo[1], 44 - lo[2]]), bool(grown[0, 5 - lo[1], 30 - lo[2]])
    (True, False)
    """
    sp = np.asarray(volume.spacing, float)
    pad = np.ceil(reach_mm / sp[1:]).astype(int) + 2
    off = np.asarray(offset, int)
    lo = np.array([off[0], *np.maximum(off[1:] - pad, 0)])
    hi = np.array([off[0] + mask.shape[0],
                   *np.minimum(off[1:] + np.asarray(mask.shape[1:]) + pad, volume.shape[1:])])
    img = np.asarray(volume.array[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]], np.float32)
    big = np.zeros(img.shape, bool)
    at = off - lo
    big[:, at[1]:at[1] + mask.shape[1], at[2]:at[2] + mask.shape[2]] = mask
    half = max(LOBULE_SPREADS * spread_hu, MIN_CONTRAST_HU)
    added = 0
    for z in np.flatnonzero(big.any(axis=(1, 2))):
        dist = ndimage.distance_transform_edt(~big[z], sampling=sp[1:])
        ring = img[z][(dist > 1.0) & (dist <= 3.0)]
        if ring.size == 0 or np.mean(ring < AIR_MAX_HU) < LOBULE_AIR_SHARE:
            continue  # in soft tissue, tissue of the lesion's density next to it is a neighbour
        alike = np.abs(ndimage.uniform_filter(img[z], 3) - lesion_hu) <= half
        pieces, n = ndimage.label(alike & ~big[z] & (dist <= reach_mm))
        if n == 0:
            continue
        touching = set(np.unique(pieces[ndimage.binary_dilation(big[z]) & (pieces > 0)]))
        far = set(np.unique(pieces[(dist > reach_mm - 1.5) & (pieces > 0)]))
        # a piece cut by the region's side runs on beyond it too
        edge = set(np.unique(np.concatenate([pieces[0], pieces[-1], pieces[:, 0],
                                             pieces[:, -1]])))
        keep = sorted(touching - far - edge - {0})
        if keep:
            lobes = np.isin(pieces, keep)
            big[z] |= lobes
            added += int(lobes.sum())
    return big, (int(lo[0]), int(lo[1]), int(lo[2])), added


def cavity_wall(volume: Volume, seed: Sequence[int] | np.ndarray,
                radius_mm: float = CAVITY_RADIUS_MM) -> tuple[float, float] | None:
    """The density of a cavity's wall, for a click on air inside a lesion's cavity.

    The click is in a cavity when the air (below
    :data:`~recist_tool.segment.seed.AIR_MAX_HU`) connected to it ends within ``radius_mm`` in
    every direction (it touches no side of a box of that half-size, in 3D) and at least
    :data:`CAVITY_WALL_SHARE` of a :data:`CAVITY_WALL_MM` shell around it is tissue.

    Parameters
    ----------
    volume : Volume
        The CT.
    seed : sequence of int
        The click ``(z, y, x)``.
    radius_mm : float
        Half-size of the box the cavity must end within.

    Returns
    -------
    tuple of float or None
        Median and robust spread (HU) of the wall's tissue; None when the click is not on air
        or the air is not an enclosed cavity.
    """
    sp = np.asarray(volume.spacing, float)
    s = np.asarray(seed, int)
    half = np.maximum(np.ceil(radius_mm / sp).astype(int), 1)
    lo = np.maximum(s - half, 0)
    hi = np.minimum(s + half + 1, volume.shape)
    block = np.asarray(volume.array[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]], np.float32)
    air = block < AIR_MAX_HU
    at = tuple(s - lo)
    if not air[at]:
        return None
    labels, _ = ndimage.label(air)
    cavity = labels == labels[at]
    sides = (cavity[0].any() or cavity[-1].any() or cavity[:, 0].any() or cavity[:, -1].any()
             or cavity[:, :, 0].any() or cavity[:, :, -1].any())
    if sides:
        return None
    shell = (ndimage.distance_transform_edt(~cavity, sampling=sp) <= CAVITY_WALL_MM) & ~cavity
    wall = block[shell]
    if wall.size == 0 or np.mean(wall >= AIR_MAX_HU) < CAVITY_WALL_SHARE:
        return None
    tissue = wall[wall >= AIR_MAX_HU]
    mu = float(np.median(tissue))
    return mu, float(np.median(np.abs(tissue - mu)) * 1.4826)


def cavity_near(volume: Volume, seed: Sequence[int] | np.ndarray,
                near_mm: float = CAVITY_NEAR_MM) -> tuple[np.ndarray, tuple[float, float]] | None:
    """A lesion's cavity next to a click on its wall: the cavity's deepest point on the click's
    slice (``(z, y, x)``) and its wall's density (:func:`cavity_wall`), or None.

    The air on the click's slice within ``near_mm`` of it is tried, nearest first, each piece
    of it at its deepest point (farthest from its own edge).
    """
    sp = np.asarray(volume.spacing, float)
    s = np.asarray(seed, int)
    half = np.maximum(np.ceil(near_mm / sp[1:]).astype(int), 1)
    lo = np.maximum(s[1:] - half, 0)
    hi = np.minimum(s[1:] + half + 1, volume.shape[1:])
    img = np.asarray(volume.array[s[0], lo[0]:hi[0], lo[1]:hi[1]], np.float32)
    labels, n = ndimage.label(img < AIR_MAX_HU)
    if n == 0:
        return None
    yy, xx = np.indices(img.shape)
    dist = np.hypot((yy + lo[0] - s[1]) * sp[1], (xx + lo[1] - s[2]) * sp[2])
    pieces = sorted(range(1, n + 1), key=lambda k: float(dist[labels == k].min()))
    for k in pieces:
        if float(dist[labels == k].min()) > near_mm:
            break
        depth = ndimage.distance_transform_edt(labels == k, sampling=sp[1:])
        y, x = np.unravel_index(int(np.argmax(depth)), depth.shape)
        at = np.array([s[0], y + lo[0], x + lo[1]])
        wall = cavity_wall(volume, at)
        if wall is not None:
            return at, wall
    return None


class ContourSegmenter:
    """Large lesions from a caliper line or a click: a smooth outline per slice, carried from
    the measured slice to its neighbours (see the module docstring).

    Parameters
    ----------
    click_radius_mm : float
        Without a line, the largest radius searched for the outline on the click's slice.
    """

    name = "contour"
    version = __version__

    def __init__(self, click_radius_mm: float = 80.0) -> None:
        self.click_radius_mm = float(click_radius_mm)

    def segment(self, volume: Volume, prompt: Prompt, *, node: bool = False) -> LesionMask:
        """Segment the lesion of the prompt (see the module docstring)."""
        sp = np.asarray(volume.spacing, float)
        anchors: list[tuple[float, float]] = []
        cavity: tuple[np.ndarray, tuple[float, float]] | None = None
        if prompt.line_zyx is not None:
            a, b = (np.asarray(p, float) for p in prompt.line_zyx)
            z0 = int(round(0.5 * (a[0] + b[0])))
            centre = 0.5 * (a[1:] + b[1:])
            length: float | None = float(np.hypot(*((a[1:] - b[1:]) * sp[1:])))
            for end in (a, b):
                v = (end[1:] - centre) * sp[1:]
                anchors.append((float(np.mod(np.arctan2(v[0], v[1]), 2 * np.pi)),
                                float(np.hypot(*v))))
            r_max = 0.5 * cast(float, length) * 1.15 + 2.0
            # the lesion's density, first from the inner part of the line
            t = np.linspace(0.15, 0.85, 60)
            pts = (1 - t)[:, None] * a[None, :] + t[:, None] * b[None, :]
            vals = map_coordinates(np.asarray(volume.array[z0], np.float32),
                                   [pts[:, 1], pts[:, 2]], order=1)
            mu = float(np.median(vals))
            spread = float(np.median(np.abs(vals - mu)) * 1.4826)
        else:
            seed = np.asarray(prompt.seed_voxel(volume))
            wall = cavity_wall(volume, seed)
            if wall is None:
                check_seed(volume, seed)
                mu, spread = seed_statistics(volume, seed, radius_mm=3.0)
                cavity = cavity_near(volume, seed)
            else:  # a click in a cavitating lesion's cavity outlines the lesion round it
                mu, spread = wall
            z0, centre = int(seed[0]), seed[1:].astype(float)
            r_max = self.click_radius_mm
            length = None
            if prompt.box_zyx is not None:  # no outline reaches beyond the box's corners
                r_max = min(r_max, box_extent_mm(volume, prompt.box_zyx)[1] / 2.0 + 2.0)
        out, half_mm = self._grown(volume, z0, centre, r_max, length, anchors, mu, spread)
        if cavity is not None:
            # a click on a cavitating lesion's wall: an outline round the click that leaves the
            # cavity out took the cavity for the lesion's outside; outlined from the cavity
            at, (mu_wall, spread_wall) = cavity
            if not _holds(out, at):
                again, half_again = self._grown(volume, int(at[0]), at[1:].astype(float), r_max,
                                                length, anchors, mu_wall, spread_wall)
                if _holds(again, seed, sp, CAVITY_CLICK_MM):  # the lesion that was clicked
                    out, half_mm = again, half_again
                    out["from_cavity_at"] = [int(v) for v in at]
        mask, lo = out.pop("mask"), out.pop("lo")
        mask, lo, out["lobule_pixels"] = with_lobules(volume, mask, lo, out["lesion_hu"],
                                                      out["spread_hu"])
        if not node:
            # a necrotic lesion prompted in its core: grown to the outer edge of its rim, from a
            # line only when its ends lie there
            mask, lo, rim = with_outer_layer(volume, mask, lo, prompt.line_zyx)
            if rim is not None and anchors:
                # the outline drawn towards the line's ends runs into the rim there: the rim is
                # grown round the core's own outline instead, when that reaches the ends nearer
                try:
                    core, _ = self._grown(volume, z0, centre, r_max, length, [], mu, spread)
                    m2, lo2, core["lobule_pixels"] = with_lobules(
                        volume, core.pop("mask"), core.pop("lo"), core["lesion_hu"],
                        core["spread_hu"])
                    m2, lo2, rim2 = with_outer_layer(volume, m2, lo2, prompt.line_zyx)
                except NoLesionError:
                    rim2 = None
                if rim2 is not None and (abs(rim2["reach_with_rim_mm"] - rim2["line_mm"])
                                         < abs(rim["reach_with_rim_mm"] - rim["line_mm"])):
                    mask, lo, rim = m2, lo2, {**rim2, "round": "the core's own outline"}
                    out = {**out, **core}
            if rim is not None:
                out["outer_layer"] = rim
        leak = any(v in ("scan end", "extent limit") for v in out["ended_by"].values())
        warn: tuple[str, ...] = ()
        if "extent limit" in out["ended_by"].values():
            warn = (f"the lesion was followed {out['reach_mm']:.0f} mm above and below its "
                    f"slice ({MAX_EXTENT_FACTOR:g} x its long axis), and the outline was "
                    "stopped there",)
        if out["touches_side"]:
            leak = True
            warn += (f"the lesion reaches the side of a working region {2 * half_mm:.0f} mm "
                     "wide; the mask was bounded there",)
        kind = "line" if prompt.line_zyx is not None else (
            "box" if prompt.point_zyx is None and prompt.point_lps is None
            and prompt.box_zyx is not None else "click")
        info: dict[str, Any] = {**out, "from": kind}
        if prompt.box_zyx is not None:
            mask = clip_to_box(mask, lo, prompt.box_zyx, refuse_empty=True)
        return LesionMask(mask, lo, volume.shape, self.name, self.version, prompt,
                          leak_bounded=leak, warnings=warn, info=info).tight()

    def _grown(self, volume: Volume, z0: int, centre: np.ndarray, r_max: float,
               length: float | None, anchors: list[tuple[float, float]], mu: float,
               spread: float) -> tuple[dict[str, Any], float]:
        """:meth:`_follow` in a working region that grows while the mask touches its side;
        its result and the region's half-width (mm)."""
        half_mm = max(r_max, 0.75 * (length or 0.0)) + CROP_MARGIN_MM
        for _ in range(3):
            out = self._follow(volume, z0, centre, r_max, length, anchors, mu,
                               max(spread, 8.0), half_mm)
            if not out["touches_side"]:
                break
            half_mm *= 1.5
        return out, half_mm

    def _follow(self, volume: Volume, z0: int, centre: np.ndarray, r_max: float,
                length: float | None, anchors: list[tuple[float, float]], mu: float,
                spread: float, half_mm: float) -> dict[str, Any]:
        """Outline on slice ``z0``, then slice by slice above and below, in an in-plane
        working region ``2 * half_mm`` wide around ``centre``."""
        sp = np.asarray(volume.spacing, float)
        nz, ny, nx = volume.shape
        half = np.ceil(half_mm / sp[1:]).astype(int)
        ylo, xlo = np.maximum(np.floor(centre).astype(int) - half, 0)
        yhi, xhi = np.minimum(np.floor(centre).astype(int) + half + 1, (ny, nx))
        c = centre - np.array([ylo, xlo], float)

        def slice_at(z: int) -> tuple[np.ndarray, np.ndarray]:
            raw = np.asarray(volume.array[z, ylo:yhi, xlo:xhi], np.float32)
            return raw, _smooth(raw, sp[1:])

        raw0, img0 = slice_at(z0)
        radii, q0 = polar_outline(img0, sp[1:], c, r_max, mu, spread, anchors=anchors)
        first = _fill_outline(img0.shape, sp[1:], c, radii) & ~_bone(img0, mu)
        if first.sum() > 20:
            # the lesion's density is that inside its outline on the measured slice (a line
            # or a click samples only part of a heterogeneous lesion); the outline is drawn
            # again with it
            vals = raw0[first]
            if np.median(vals) < AIR_MAX_HU and np.any(vals >= AIR_MAX_HU):
                vals = vals[vals >= AIR_MAX_HU]  # mostly a cavity's air: its wall's tissue
            mu = float(np.median(vals))
            spread = max(float(np.median(np.abs(vals - mu)) * 1.4826), 8.0)
            radii, q0 = polar_outline(img0, sp[1:], c, r_max, mu, spread, anchors=anchors)
            first = _fill_outline(img0.shape, sp[1:], c, radii) & ~_bone(img0, mu)
        if not first.any():
            raise NoLesionError(f"no lesion at this prompt: no outline found on slice {z0}",
                                reason="no_boundary")
        if not anchors and q0["contrast"] < MIN_CONTRAST_HU:
            # a click asserts no lesion (a reader's line does): normal tissue has no outline
            raise NoLesionError(
                f"no lesion at this point: the outline around (y, x) = "
                f"{tuple(round(float(v)) for v in centre)} on slice {z0} separates tissue of "
                f"{q0['contrast']:.0f} HU contrast only", reason="no_boundary")
        if length is None:
            length = 2.0 * float(np.percentile(radii, 90))
        mask = np.zeros((nz, *first.shape), bool)
        mask[z0] = first
        c0_contrast = max(q0["contrast"], 1.0)
        reach = MAX_EXTENT_FACTOR * length
        ended: dict[str, str] = {}
        for direction in (1, -1):
            prev = first
            z = z0 + direction
            weak: list[int] = []  # slices of a faint outline, kept only if a clear one follows
            while True:
                if z < 0 or z >= nz:
                    ended[str(direction)] = "scan end"
                    break
                if abs(z - z0) * sp[0] > reach:
                    ended[str(direction)] = "extent limit"
                    break
                cy, cx = _centre(prev, sp[1:])
                prior = _radii_of(prev, sp[1:], (cy, cx), r_max * 1.5)
                band = GROW_MM + 0.5 * sp[0]
                raw, img = slice_at(z)
                out_to = float(prior.max() + band + 1.0)
                if anchors:  # a reader's line spans the lesion where it is longest
                    out_to = min(out_to, r_max)
                rad, q = polar_outline(img, sp[1:], (cy, cx), out_to, mu, spread,
                                       prior_mm=prior, band_mm=band)
                cur = _fill_outline(img.shape, sp[1:], (cy, cx), rad) & ~_bone(img, mu)
                if np.mean(rad) < MIN_RADIUS_MM or not cur.any():
                    ended[str(direction)] = "size"
                    break
                weak = weak + [z] if q["contrast"] < END_CONTRAST_SHARE * c0_contrast else []
                if len(weak) * sp[0] > WEAK_MM:
                    ended[str(direction)] = "contrast"
                    break
                mask[z] = cur
                prev = cur
                z += direction
            for zw in weak:
                mask[zw] = False
        sides = [(0, ylo > 0), (-1, yhi < ny)]
        touches = any(flag and mask[:, k, :].any() for k, flag in sides) or any(
            flag and mask[:, :, k].any() for k, flag in [(0, xlo > 0), (-1, xhi < nx)])
        return {"mask": mask, "lo": (0, int(ylo), int(xlo)), "touches_side": bool(touches),
                "lesion_hu": mu, "spread_hu": spread, "slice": z0,
                "contrast_hu": q0["contrast"], "ended_by": ended, "reach_mm": reach,
                "working_region_mm": 2 * half_mm}
