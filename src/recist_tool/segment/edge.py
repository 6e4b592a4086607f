"""Where a lesion's outline is drawn: the half-contrast edge of a lung lesion.

Readers do not all draw a lung lesion's outline in the same place. The LIDC-IDRI consensus, on
which the ``unet`` network learnt, keeps every voxel of a hazy rim or ground-glass halo. Other
outlines stop at the *half-contrast* edge: where the CT value is half-way between the lesion's
outermost tissue and the aerated lung around it. On thick slices (5 mm) that is where a voxel of
a solid lesion is about half lesion, the outline of the pyradiomics lung1 tumour for instance.
:func:`half_contrast_edge` cuts a mask back to that edge; ``UNetSegmenter(edge="half-contrast")``
applies it to the network's masks, and the default ``edge="auto"`` on slices thicker than the
LIDC outlines' (:data:`~recist_tool.segment.unet.THIN_SLICE_MAX_MM`). It is a convention, not a
correction: on the LIDC validation nodules >= 10 mm it costs Dice (0.807 -> 0.756), on the
lung1 tumour it gains (0.651 -> 0.880); see ``docs/segmentation.md``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import ndimage

from recist_tool.segment.morphology import fill_cavities
from recist_tool.segment.seed import AIR_MAX_HU, GROUND_GLASS_CONTRAST_HU, MIN_CONTRAST_HU
from recist_tool.volume import Volume

#: The outline conventions a lung lesion's mask can follow.
EDGES = ("learnt", "half-contrast")
#: Shell outside the mask (mm from it) whose aerated voxels give the surrounding lung's level.
SURROUND_SHELL_MM = (1.0, 6.0)
#: Fewest aerated voxels in that shell for the lung's level to be taken.
SURROUND_MIN_VOXELS = 20
#: Depth (mm) of the shells inside the mask whose median CT values give its depth profile.
SHELL_MM = 0.5
#: An outer tissue layer is a plateau of the depth profile: shells over at least this depth
#: (mm) whose medians differ by at most :data:`PLATEAU_SPREAD` of the lesion's contrast (the
#: ground glass around a part-solid nodule's core; a partial-volume fringe is a ramp).
PLATEAU_MM = 1.0
PLATEAU_SPREAD = 0.1
#: A layer is at most this share of the way from the lung to the core (denser: the core).
LAYER_MAX_SHARE = 0.75
#: The depth profile is taken on the slices whose in-plane depth is at least this share of the
#: deepest slice's.
WIDE_SLICE_SHARE = 0.75
#: Fewest voxels in a shell for its median to count.
SHELL_MIN_VOXELS = 10
#: :func:`outline_contrast` compares the tissue this far (mm) inside and outside a mask's
#: outline; the first millimetre either side, the partial-volume fringe of the edge itself, belongs
#: to neither side (as in ``contour``'s polar outline).
OUTLINE_BANDS_MM = (1.0, 4.0)


def half_contrast_edge(volume: Volume, mask: np.ndarray, offset: Sequence[int],
                       seed: Sequence[int]) -> tuple[np.ndarray, tuple[int, int, int],
                                                     dict[str, Any]]:
    """Cut a lung lesion's mask back to its half-contrast edge.

    The surrounding lung's level is the median CT value of the aerated voxels
    (< :data:`~recist_tool.segment.seed.AIR_MAX_HU`) in a shell :data:`SURROUND_SHELL_MM`
    outside the mask; the core's is the median of the mask's tissue (at least
    :data:`~recist_tool.segment.seed.GROUND_GLASS_CONTRAST_HU` above the lung) that lies at
    least half as deep as its deepest point. The lesion's level is that of its outermost
    tissue layer (the ground glass of a part-solid nodule), or the core's when it has none
    (:func:`_outer_layer_level`). The mask keeps its voxels at or above the level half-way
    between the lesion's and the lung's, then its enclosed holes (cavities, in 3D and slice by
    slice) are filled, and the part holding the seed is kept (the largest part when the seed
    was cut).

    Parameters
    ----------
    volume : Volume
        The CT volume (HU).
    mask : numpy.ndarray
        Boolean mask crop of the native grid ...
    offset : sequence of int
        ... placed at this native index ``(z, y, x)``.
    seed : sequence of int
        The click, a native voxel index.

    Returns
    -------
    mask : numpy.ndarray
        The cut mask (a crop of the native grid) ...
    offset : tuple of int
        ... and its native index.
    info : dict
        ``rule``, and ``core_hu``, ``outer_layer_hu``, ``surround_hu``, ``level_hu`` when the
        cut was made, or ``kept`` with the reason when the mask was left as it was (no aerated
        lung around it, no contrast, or nothing left above the level).
    """
    sp = np.asarray(volume.spacing, float)
    mask = np.asarray(mask, bool)
    off = np.asarray(offset, int)
    if mask.any():  # work on the mask's bounding box (plus the shell), not the crop it came in
        nz = np.nonzero(mask)
        first = np.array([int(v.min()) for v in nz])
        last = np.array([int(v.max()) + 1 for v in nz])
        mask = mask[first[0]:last[0], first[1]:last[1], first[2]:last[2]]
        off = off + first
    pad = np.ceil(SURROUND_SHELL_MM[1] / sp).astype(int) + 1
    lo = np.maximum(off - pad, 0)
    hi = np.minimum(off + np.asarray(mask.shape) + pad, volume.shape)
    img = np.asarray(volume.array[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]], np.float32)
    inside = np.zeros(img.shape, bool)
    a = off - lo
    inside[a[0]:a[0] + mask.shape[0], a[1]:a[1] + mask.shape[1], a[2]:a[2] + mask.shape[2]] = mask
    info: dict[str, Any] = {"rule": "half-contrast"}

    def kept(why: str) -> tuple[np.ndarray, tuple[int, int, int], dict[str, Any]]:
        return mask, (int(off[0]), int(off[1]), int(off[2])), {**info, "kept": why}

    if not inside.any():
        return kept("empty mask")
    outside_mm = ndimage.distance_transform_edt(~inside, sampling=sp)
    shell = ((outside_mm > SURROUND_SHELL_MM[0]) & (outside_mm <= SURROUND_SHELL_MM[1])
             & (img < AIR_MAX_HU))
    if np.count_nonzero(shell) < SURROUND_MIN_VOXELS:
        return kept("no aerated lung around the mask")
    surround = float(np.median(img[shell]))
    tissue = inside & (img >= surround + GROUND_GLASS_CONTRAST_HU)
    if not tissue.any():
        return kept("no contrast with the lung")
    depth = ndimage.distance_transform_edt(np.pad(tissue, 1), sampling=sp)[1:-1, 1:-1, 1:-1]
    core = float(np.median(img[depth >= 0.5 * depth.max()]))
    outer = _outer_layer_level(img, inside, sp, surround, core)
    level = 0.5 * (outer + surround)
    keep = inside & (img >= level)
    keep = fill_cavities(keep) & inside
    lab, n = ndimage.label(keep)
    if n == 0:
        return kept("nothing above the half-contrast level")
    s = np.clip(np.asarray(seed, int) - lo, 0, np.asarray(img.shape) - 1)
    k = lab[tuple(s)]
    if k == 0:
        k = int(np.argmax(ndimage.sum_labels(keep, lab, range(1, n + 1)))) + 1
    keep = lab == k
    info.update(core_hu=round(core, 1), outer_layer_hu=round(outer, 1),
                surround_hu=round(surround, 1), level_hu=round(level, 1))
    return keep, (int(lo[0]), int(lo[1]), int(lo[2])), info


def _outer_layer_level(img: np.ndarray, inside: np.ndarray, spacing: np.ndarray,
                       surround: float, core: float) -> float:
    """CT level of the lesion's outermost tissue layer: the first plateau of its depth profile
    that is tissue, e.g. the ground glass around a part-solid nodule's solid core; ``core`` when
    the profile reaches the core without one (a solid lesion, whose partial-volume fringe rises
    as a ramp).

    The profile is the median CT value of each :data:`SHELL_MM` shell of in-plane depth, from
    the outline inwards, over the lesion's widest slices (in-plane depth at least
    :data:`WIDE_SLICE_SHARE` of the deepest): a thick slice that grazes the lesion's top or
    bottom is a uniform partial-volume disc, which would pass for a layer of ground glass.
    """
    depth = np.zeros(inside.shape)
    for z in np.flatnonzero(inside.any(axis=(1, 2))):
        depth[z] = ndimage.distance_transform_edt(np.pad(inside[z], 1),
                                                  sampling=spacing[1:])[1:-1, 1:-1]
    widest = depth.max(axis=(1, 2)) >= WIDE_SLICE_SHARE * depth.max()
    shell = np.floor(depth / SHELL_MM).astype(int)
    sel = inside & widest[:, None, None]
    counts = np.bincount(shell[sel])
    medians = [(k * SHELL_MM, float(np.median(img[sel & (shell == k)])))
               for k in np.flatnonzero(counts >= SHELL_MIN_VOXELS)]
    spread = PLATEAU_SPREAD * (core - surround)
    for i, (d, value) in enumerate(medians):
        if value < surround + GROUND_GLASS_CONTRAST_HU:
            continue
        if value > surround + LAYER_MAX_SHARE * (core - surround):
            break  # the profile reached the core without a layer on the way
        window = [v for e, v in medians[i:] if e < d + PLATEAU_MM]
        if medians[-1][0] >= d + PLATEAU_MM - SHELL_MM and len(window) >= 2 \
                and max(window) - min(window) <= spread:
            return float(np.median(window))
    return core


def widest_slice(volume: Volume, mask: np.ndarray, offset: Sequence[int], margin_mm: float
                 ) -> tuple[np.ndarray, np.ndarray]:
    """A mask's widest slice (most voxels) and the CT under it, cropped to the mask's box grown
    by ``margin_mm`` in plane (within the volume).

    Returns
    -------
    tuple of numpy.ndarray
        The slice's mask (bool) and CT values (float), on the same crop.
    """
    z = int(np.argmax(mask.sum(axis=(1, 2))))
    sp = np.asarray(volume.spacing[1:], float)
    pad = np.ceil(margin_mm / sp).astype(int)
    y0, x0 = int(offset[1]), int(offset[2])
    ny, nx = volume.shape[1:]
    ylo, xlo = max(y0 - pad[0], 0), max(x0 - pad[1], 0)
    yhi = min(y0 + mask.shape[1] + pad[0], ny)
    xhi = min(x0 + mask.shape[2] + pad[1], nx)
    inside = np.zeros((yhi - ylo, xhi - xlo), bool)
    inside[y0 - ylo:y0 - ylo + mask.shape[1], x0 - xlo:x0 - xlo + mask.shape[2]] = mask[z]
    return inside, np.asarray(volume.array[int(offset[0]) + z, ylo:yhi, xlo:xhi], float)


def outline_contrast(volume: Volume, mask: np.ndarray, offset: Sequence[int]) -> dict[str, float]:
    """How clearly a mask's outline separates it from the tissue around it.

    On the mask's widest slice, with the lesion's density ``mu`` the median inside the mask,
    ``contrast_hu`` is the mean distance from ``mu`` of the tissue in a band
    :data:`OUTLINE_BANDS_MM` outside the outline, less that of the tissue in the same band
    inside it: the measure ``contour``'s polar outline takes on its measured slice
    (``info["contrast_hu"]``). A lung nodule against aerated lung reads several hundred HU; a
    mask that stopped inside a larger lesion of its own density (one lobe of a lobulated mass)
    reads about 0, below :data:`~recist_tool.segment.seed.MIN_CONTRAST_HU`,
    and so does a mask drawn well beyond a nodule into the lung around it; ``outside_hu``, the
    median of the band outside, tells the two apart. ``lesion_beyond`` is the share of the band
    outside whose tissue has the lesion's density (within
    :data:`~recist_tool.segment.seed.MIN_CONTRAST_HU` of ``mu``): about 0 for a nodule in the
    lung, over half for a lobe of a larger lesion whose other sides face the lung (its mean
    contrast is then that of the lung sides, hundreds of HU).

    Parameters
    ----------
    volume : Volume
        The CT the mask was drawn on.
    mask : numpy.ndarray
        Boolean mask, a crop of the volume's grid starting at ``offset``.
    offset : sequence of int
        ``(z, y, x)`` index of the crop's first voxel.

    Returns
    -------
    dict
        ``contrast_hu`` (``inf`` for an empty mask or one with no tissue around it inside the
        scan: nothing tells it apart from a lesion), ``outside_hu`` (nan then),
        ``lesion_beyond`` (0 then).

    Examples
    --------
    >>> import numpy as np
    >>> from recist_tool.volume import Volume
    >>> img = np.full((3, 40, 40), -850, np.int16)
    >>> img[:, 10:30, 10:30] = 40                     # a 20 mm lesion in aerated lung
    >>> vol = Volume.from_grid(img, spacing=(2.0, 1.0, 1.0))
    >>> m = np.zeros((3, 40, 40), bool)
    >>> m[:, 10:30, 10:30] = True
    >>> outline_contrast(vol, m, (0, 0, 0))
    {'contrast_hu': 890.0, 'outside_hu': -850.0, 'lesion_beyond': 0.0}
    >>> part = np.zeros_like(m)
    >>> part[:, 15:25, 15:25] = True                  # a part of it, against more of itself
    >>> outline_contrast(vol, part, (0, 0, 0))
    {'contrast_hu': 0.0, 'outside_hu': 40.0, 'lesion_beyond': 1.0}
    >>> lobe = np.zeros_like(m)
    >>> lobe[:, 10:30, 10:20] = True                  # half of it: lung on three sides
    >>> outline_contrast(vol, lobe, (0, 0, 0))
    {'contrast_hu': 638.1, 'outside_hu': -850.0, 'lesion_beyond': 0.283}
    """
    if not mask.any():
        return {"contrast_hu": float("inf"), "outside_hu": float("nan"), "lesion_beyond": 0.0}
    near, far = OUTLINE_BANDS_MM
    inside, img = widest_slice(volume, mask, offset, far + 1.0)
    sp = np.asarray(volume.spacing[1:], float)
    d_out = ndimage.distance_transform_edt(~inside, sampling=sp)
    d_in = ndimage.distance_transform_edt(np.pad(inside, 1), sampling=sp)[1:-1, 1:-1]
    outs = img[(d_out > near) & (d_out <= far)]
    ins = img[(d_in > near) & (d_in <= far)]
    if outs.size == 0:
        return {"contrast_hu": float("inf"), "outside_hu": float("nan"), "lesion_beyond": 0.0}
    mu = float(np.median(img[inside]))
    inner = float(np.mean(np.abs(ins - mu))) if ins.size else 0.0
    return {"contrast_hu": round(float(np.mean(np.abs(outs - mu))) - inner, 1),
            "outside_hu": round(float(np.median(outs)), 1),
            "lesion_beyond": round(float(np.mean(np.abs(outs - mu) < MIN_CONTRAST_HU)), 3)}


def describe_outline(edge: dict[str, Any]) -> str:
    """One line on where a ``unet`` mask's outline was drawn, from its ``info["edge"]``.

    Parameters
    ----------
    edge : dict
        ``rule`` (``learnt`` or ``half-contrast``) and, when present, ``level_hu``, ``kept``,
        ``chosen_by``.

    Returns
    -------
    str
        e.g. ``half-contrast edge at -410 HU (auto: slices 5 mm thick, > 2.5 mm)``.
    """
    rule = edge.get("rule", "learnt")
    text = "learnt (LIDC consensus)" if rule == "learnt" else f"{rule} edge"
    if "level_hu" in edge:
        text += f" at {edge['level_hu']:.0f} HU"
    if "kept" in edge:
        text += f", mask kept as predicted: {edge['kept']}"
    if "chosen_by" in edge:
        text += f" ({edge['chosen_by']})"
    return text
