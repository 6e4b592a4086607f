"""Click → mask → measurement: the one function the CLI and the GUI both call."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from recist_tool.segment.base import LesionMask, Prompt, Segmenter
from recist_tool.volume import Volume


def segment_and_measure(volume: Volume, prompt: Prompt, segmenter: Segmenter, node: bool = False
                        ) -> tuple[LesionMask, Any]:
    """Segment the lesion under the prompt and measure its RECIST axes.

    Returns
    -------
    (LesionMask, AxisMeasurement or None)
        The measurement is ``None`` only where :mod:`recist_tool.measure` is not installed.

        A mask that reaches the edge of the scanned volume (its first or last slice, or the
        edge of the images) is returned with ``leak_bounded`` set, a warning, and
        ``info["scan_edge"]`` naming the edges (see :func:`scan_edges`): the lesion may extend
        beyond the scan, and its diameters may then be too short. This holds for every
        segmenter, plug-ins included.

    Raises
    ------
    NoLesionError
        The click is not on a lesion.
    SegmentationError
        A prompt that does not fit the volume (:meth:`Prompt.check`): a line or box reaching
        outside it, a seed outside its box.
    """
    prompt.check(volume)
    lesion = segmenter.segment(volume, prompt, node=node)
    edges = scan_edges(lesion)
    if edges:
        lesion = replace(
            lesion, leak_bounded=True, info={**lesion.info, "scan_edge": edges},
            warnings=(*lesion.warnings, f"the lesion reaches the {' and the '.join(edges)} of the "
                      "scanned volume: it may extend beyond the scan, and its diameters may be "
                      "too short"))
    try:
        from recist_tool.measure import measure_mask
    except ImportError:  # pragma: no cover - measurement ships with the package on main
        return lesion, None
    return lesion, measure_mask(volume, lesion.mask, node=node, offset=lesion.offset)


def scan_edges(lesion: LesionMask) -> list[str]:
    """The edges of the scanned volume that a lesion mask reaches.

    Parameters
    ----------
    lesion : LesionMask
        A mask on its volume's grid.

    Returns
    -------
    list of str
        ``"first slice"``, ``"last slice"`` and ``"image edge"`` (a row or column at the border
        of the slices), in that order, for those reached; empty when none is.
    """
    if lesion.is_empty:
        return []
    box = lesion.tight()  # the mask's bounding box on the volume grid
    lo = np.asarray(box.offset)
    hi = lo + np.asarray(box.mask.shape)
    shape = np.asarray(box.volume_shape)
    out = []
    if lo[0] == 0:
        out.append("first slice")
    if hi[0] == shape[0]:
        out.append("last slice")
    if np.any(lo[1:] == 0) or np.any(hi[1:] == shape[1:]):
        out.append("image edge")
    return out
