"""Click → mask → measurement: the one function the CLI and the GUI both call."""

from __future__ import annotations

from typing import Any

from recist_tool.segment.base import LesionMask, Prompt, Segmenter
from recist_tool.volume import Volume


def segment_and_measure(volume: Volume, prompt: Prompt, segmenter: Segmenter, node: bool = False
                        ) -> tuple[LesionMask, Any]:
    """Segment the lesion under the prompt and measure its RECIST axes.

    Returns
    -------
    (LesionMask, AxisMeasurement or None)
        The measurement is ``None`` only where :mod:`recist_tool.measure` is not installed.

    Raises
    ------
    NoLesionError
        The click is not on a lesion.
    """
    lesion = segmenter.segment(volume, prompt, node=node)
    try:
        from recist_tool.measure import measure_mask
    except ImportError:  # pragma: no cover - measurement ships with the package on main
        return lesion, None
    return lesion, measure_mask(volume, lesion.mask, node=node, offset=lesion.offset)
