"""A lesion's outer layer: the rim of a necrotic or cystic lesion round its core.

A necrotic metastasis is a hypodense core inside a rim of viable tumour whose density lies
between the core's and the organ's, or above both where the rim enhances. Clicked in its core,
a segmenter that follows the strongest change of density outlines the core, and the lesion's
long axis comes out short by twice the rim (the sample trial's 50 mm necrotic liver metastasis,
SYN-003 T04 of ``recist sample-data --large-lesions``: 38.4 mm). Readers measure a lesion to
the outer edge of its rim.

:func:`outer_layer` looks for such a rim round a mask on its widest slice: the median CT value
of 1 mm shells outside the outline forms a plateau (the rim) that differs from the core's by at
least :data:`~recist_tool.segment.seed.MIN_CONTRAST_HU`, is soft tissue (not
fat or air), surrounds the core on most sides, and then steps to another level (the organ) a
few millimetres out. :func:`with_outer_layer` grows the mask by the rim's thickness.

A caliper line says which outline the reader measures: a line across the whole lesion ends at
the rim's outer edge, one across the core at the core's. From a line the rim is added only when
the grown mask reaches along the line nearer to the line's length than the core does; a
follow-up outlined from the baseline's line carried to it is so measured as the baseline was.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import ndimage

from recist_tool.segment.edge import widest_slice
from recist_tool.segment.seed import FAT_HU, MIN_CONTRAST_HU
from recist_tool.volume import Volume

#: The rim is sought in 1 mm shells out to this distance (mm) from the outline.
SEARCH_MM = 15
#: Shell medians within this many HU of the rim's median belong to its plateau.
PLATEAU_HU = 8.0
#: Fewest 1 mm shells of plateau beyond the first (the outline's own partial-volume fringe).
MIN_SHELLS = 2
#: The tissue beyond the rim differs from the rim by at least this (HU).
STEP_HU = 15.0
#: Share of the directions round the core (of :data:`N_SECTORS`) in which the rim is found.
MIN_COVERAGE = 0.75
N_SECTORS = 16
#: A rim is at most this share of the core's equivalent radius thick (a layer, not a neighbour).
MAX_THICKNESS_SHARE = 0.5


def outer_layer(volume: Volume, mask: np.ndarray, offset: Sequence[int]) -> dict[str, Any] | None:
    """The rim round a mask, or None (see the module docstring).

    Parameters
    ----------
    volume, mask, offset
        The CT, and a boolean mask on a crop of its grid whose first voxel is at ``offset``
        (as for :func:`~recist_tool.segment.edge.outline_contrast`).

    Returns
    -------
    dict or None
        ``thickness_mm`` (from the outline to the middle of the rim's outer step),
        ``core_hu``, ``rim_hu``, ``beyond_hu``, ``coverage``; None when there is no rim.

    Examples
    --------
    >>> import numpy as np
    >>> from recist_tool.volume import Volume
    >>> yy, xx = np.mgrid[:80, :80]
    >>> r = np.hypot(yy - 40, xx - 40)                 # mm (1 mm pixels)
    >>> img = np.where(r < 12, 30, np.where(r < 17, 75, 105)).astype(np.int16)
    >>> vol = Volume.from_grid(np.stack([img] * 3), spacing=(2.0, 1.0, 1.0))
    >>> core = np.stack([r < 12] * 3)
    >>> rim = outer_layer(vol, core, (0, 0, 0))
    >>> rim["rim_hu"], rim["beyond_hu"], rim["thickness_mm"]
    (75.0, 105.0, 5.5)
    >>> outer_layer(vol, np.stack([r < 17] * 3), (0, 0, 0)) is None    # the whole lesion
    True
    """
    if not mask.any():
        return None
    inside, img = widest_slice(volume, mask, offset, SEARCH_MM + 2.0)
    sp = np.asarray(volume.spacing[1:], float)
    dist = ndimage.distance_transform_edt(~inside, sampling=sp)
    shell = np.ceil(dist).astype(int)  # 1: (0, 1] mm outside, 2: (1, 2] mm ...
    medians = []
    for k in range(1, SEARCH_MM + 1):
        vals = img[shell == k]
        if vals.size < 8:
            return None
        medians.append(float(np.median(vals)))
    core = float(np.median(img[inside]))
    # the plateau: from the second shell (the first is the outline's fringe) while the shells
    # stay within PLATEAU_HU of their running median
    end = 1
    while end + 1 < len(medians) and abs(medians[end + 1] - np.median(medians[1:end + 1])) \
            <= PLATEAU_HU:
        end += 1
    if end < MIN_SHELLS:
        return None
    rim = float(np.median(medians[1:end + 1]))
    beyond = float(np.median(medians[end + 1:end + 5])) if end + 1 < len(medians) else rim
    radius = float(np.sqrt(inside.sum() * sp.prod() / np.pi))
    thickness = end + 1 + 0.5
    if (abs(rim - core) < MIN_CONTRAST_HU or rim < FAT_HU[1] or abs(beyond - rim) < STEP_HU
            or thickness > MAX_THICKNESS_SHARE * radius):
        return None
    # all round: the share of directions in which the rim band holds the rim's density
    band = (shell >= 2) & (shell <= end + 1)
    cy, cx = (np.argwhere(inside).mean(axis=0))
    yy, xx = np.nonzero(band)
    sector = (np.floor((np.arctan2(yy - cy, xx - cx) + np.pi) / (2 * np.pi) * N_SECTORS)
              .astype(int) % N_SECTORS)
    hits = [abs(float(np.median(img[yy[sector == k], xx[sector == k]])) - rim) <= 2 * PLATEAU_HU
            for k in range(N_SECTORS) if np.any(sector == k)]
    coverage = float(np.mean(hits)) if hits else 0.0
    if coverage < MIN_COVERAGE:
        return None
    return {"thickness_mm": thickness, "core_hu": round(core, 1), "rim_hu": round(rim, 1),
            "beyond_hu": round(beyond, 1), "coverage": round(coverage, 2)}


def reach_along(mask: np.ndarray, offset: Sequence[int], line_zyx: Any,
                spacing: Sequence[float] | np.ndarray) -> float:
    """How far (mm) a mask reaches along a line: the extent, on the line and up to half its
    length beyond either end, between the first and the last point inside the mask.

    Examples
    --------
    >>> import numpy as np
    >>> m = np.zeros((1, 1, 40), bool); m[0, 0, 10:30] = True      # 20 voxels of 1 mm
    >>> reach_along(m, (0, 0, 0), ((0, 0, 5), (0, 0, 35)), (1.0, 1.0, 1.0))
    19.9
    """
    a, b = (np.asarray(p, float) for p in line_zyx)
    sp = np.asarray(spacing, float)
    length = float(np.linalg.norm((b - a) * sp))
    n = max(int(np.ceil(2.0 * length / 0.1)), 2)  # samples 0.1 mm apart over twice the line
    t = np.linspace(-0.5, 1.5, n + 1)
    idx = np.rint(a[None, :] + t[:, None] * (b - a)[None, :]).astype(int) - np.asarray(offset)
    ok = np.all((idx >= 0) & (idx < np.asarray(mask.shape)), axis=1)
    inside = np.zeros(len(t), bool)
    inside[ok] = mask[tuple(idx[ok].T)]
    if not inside.any():
        return 0.0
    on = t[inside]
    return round(float(on.max() - on.min()) * length, 2)


def with_outer_layer(volume: Volume, mask: np.ndarray, offset: Sequence[int],
                     line_zyx: Any = None
                     ) -> tuple[np.ndarray, tuple[int, int, int], dict[str, Any] | None]:
    """``mask`` grown by the thickness of its rim (:func:`outer_layer`) in 3D, or unchanged.

    Parameters
    ----------
    volume, mask, offset
        As for :func:`outer_layer`.
    line_zyx : pair of (z, y, x), optional
        The prompt's caliper line (voxel indices): the rim is added only when the grown mask
        reaches along it (:func:`reach_along`) nearer to its length than ``mask`` does.

    Returns
    -------
    tuple
        The mask, its offset and the rim's description (None when there is none); the
        description has ``line_mm``, ``reach_mm`` and ``reach_with_rim_mm`` from a line.
    """
    rim = outer_layer(volume, mask, offset)
    if rim is None:
        return mask, (int(offset[0]), int(offset[1]), int(offset[2])), None
    sp = np.asarray(volume.spacing, float)
    pad = np.ceil(rim["thickness_mm"] / sp).astype(int) + 1
    lo = np.maximum(np.asarray(offset, int) - pad, 0)
    hi = np.minimum(np.asarray(offset, int) + np.asarray(mask.shape) + pad, volume.shape)
    big = np.zeros(tuple(hi - lo), bool)
    at = np.asarray(offset, int) - lo
    big[at[0]:at[0] + mask.shape[0], at[1]:at[1] + mask.shape[1],
        at[2]:at[2] + mask.shape[2]] = mask
    grown = ndimage.distance_transform_edt(~big, sampling=sp) <= rim["thickness_mm"]
    lo_t = (int(lo[0]), int(lo[1]), int(lo[2]))
    if line_zyx is not None:
        a, b = (np.asarray(p, float) for p in line_zyx)
        rim["line_mm"] = round(float(np.linalg.norm((b - a) * sp)), 2)
        rim["reach_mm"] = reach_along(mask, offset, line_zyx, sp)
        rim["reach_with_rim_mm"] = reach_along(grown, lo_t, line_zyx, sp)
        if abs(rim["reach_with_rim_mm"] - rim["line_mm"]) >= abs(rim["reach_mm"] - rim["line_mm"]):
            # the line ends at the core's edge: the reader measures the core
            return mask, (int(offset[0]), int(offset[1]), int(offset[2])), None
    return grown, lo_t, rim
