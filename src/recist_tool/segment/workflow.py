"""Click → mask → measurement: the one function the CLI and the GUI both call."""

from __future__ import annotations

from typing import TYPE_CHECKING

from recist_tool.segment.base import LesionMask, Prompt, Segmenter, scan_edges, with_scan_edges
from recist_tool.volume import Volume

if TYPE_CHECKING:  # measure is imported when the function runs (scipy is heavy)
    from recist_tool.measure import AxisMeasurement


def segment_and_measure(volume: Volume, prompt: Prompt, segmenter: Segmenter, node: bool = False
                        ) -> tuple[LesionMask, AxisMeasurement]:
    """Segment the lesion under the prompt and measure its RECIST axes.

    Returns
    -------
    (LesionMask, AxisMeasurement)
        A mask that reaches the edge of the scanned volume (its first or last slice, or the
        edge of the images) is returned with ``leak_bounded`` set, a warning, and
        ``info["scan_edge"]`` naming the edges (:func:`~recist_tool.segment.base.with_scan_edges`):
        the lesion may extend beyond the scan, and its diameters may then be too short. This
        holds for every segmenter, plug-ins included.

    Raises
    ------
    NoLesionError
        The click is not on a lesion.
    SegmentationError
        A prompt that does not fit the volume (:meth:`Prompt.check`): a line or box reaching
        outside it, a seed outside its box.
    """
    prompt.check(volume)
    lesion = with_scan_edges(segmenter.segment(volume, prompt, node=node))
    from recist_tool.measure import measure_mask

    return lesion, measure_mask(volume, lesion.mask, node=node, offset=lesion.offset)


__all__ = ["scan_edges", "segment_and_measure", "with_scan_edges"]
