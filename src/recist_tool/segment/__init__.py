"""Lesion segmentation: volume + prompt (a click) → lesion mask with provenance.

Public API
----------
:class:`Prompt`, :class:`LesionMask`, :class:`Segmenter` (protocol)
    Core types.
:class:`NoLesionError`
    Raised when a click is not on a lesion (air, bone, fat, outside the volume, no boundary).
:func:`get_segmenter`, :func:`available_segmenters`, :func:`register_segmenter`
    Registry; plug-ins register under the entry-point group ``recist_tool.segmenters``.
:func:`default_segmenter_name`
    ``unet`` when its weights are present, else ``classic``.
:func:`segment`
    One call: ``segment(volume, prompt, segmenter="classic")``.
:func:`segment_and_measure`
    Click → mask → RECIST axes (:mod:`recist_tool.segment.workflow`): what the CLI, the reading
    workstation and the batch call.
"""

from __future__ import annotations

from recist_tool.segment.base import LesionMask, NoLesionError, Prompt, Segmenter, dice
from recist_tool.segment.registry import (
    ENTRY_POINT_GROUP,
    available_segmenters,
    get_segmenter,
    parse_segmenter_spec,
    register_segmenter,
    unregister_segmenter,
)
from recist_tool.segment.workflow import segment_and_measure
from recist_tool.volume import Volume


def default_segmenter_name() -> str:
    """``unet`` when its weight file is present (shipped or via ``$RECIST_UNET_WEIGHTS``), else
    ``classic``."""
    from recist_tool.segment.unet import default_weights_path

    return "unet" if default_weights_path().is_file() else "classic"


def segment(volume: Volume, prompt: Prompt, segmenter: str | Segmenter | None = None,
            node: bool = False) -> LesionMask:
    """Segment the lesion the prompt points at.

    Parameters
    ----------
    volume : Volume
    prompt : Prompt
    segmenter : str or Segmenter, optional
        Registry name or instance; default :func:`default_segmenter_name`.
    node : bool
        The lesion is a lymph node.

    Returns
    -------
    LesionMask
        Flagged when it reaches an edge of the scan
        (:func:`~recist_tool.segment.base.with_scan_edges`).
    """
    from recist_tool.segment.base import with_scan_edges

    seg = get_segmenter(segmenter or default_segmenter_name()) if not hasattr(
        segmenter, "segment") else segmenter
    return with_scan_edges(seg.segment(volume, prompt, node=node))  # type: ignore[union-attr]


__all__ = ["ENTRY_POINT_GROUP", "LesionMask", "NoLesionError", "Prompt", "Segmenter",
           "available_segmenters", "default_segmenter_name", "dice", "get_segmenter",
           "parse_segmenter_spec", "register_segmenter", "segment", "segment_and_measure",
           "unregister_segmenter"]
