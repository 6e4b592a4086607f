"""Reader contribution: a DICOM folder / zip / DICOMDIR / file, or a NIfTI / NRRD / MHA volume, opens
as one image layer per CT series, placed in patient millimetres (LPS, the volume's own affine)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from napari_recist._layers import image_layer, summary_text


def _one(path: str | list[str]) -> str | None:
    if isinstance(path, list | tuple):
        return path[0] if len(path) == 1 else None
    return path


def get_reader(path: str | list[str]) -> Callable[[Any], list[tuple]] | None:
    """Return :func:`read_series` when ``path`` looks like something the loader reads."""
    from recist_tool.io import volume_format

    p = _one(path)
    if p is None:
        return None
    q = Path(p)
    if q.is_dir() or q.suffix.lower() in (".zip", ".dcm") or q.name.upper() == "DICOMDIR":
        return read_series
    if q.is_file() and volume_format(q) is not None:
        return read_series
    return None


def read_series(path: str | list[str]) -> list[tuple]:
    """Every CT series under ``path`` as an image layer (name: description and series number).

    The layer metadata holds the :class:`~recist_tool.volume.Volume` (``recist_volume``) and the
    ``recist info`` summary with its warnings (``recist_info``); geometry warnings are shown in
    napari's status bar via the layer name suffix ``⚠``.
    """
    from recist_tool.errors import UsageError
    from recist_tool.io import load_volume, scan

    p = _one(path)
    assert p is not None
    try:
        vols = [load_volume(p)]
    except UsageError:  # several series: one layer each
        vols = [load_volume(p, s.stack_id) for s in scan(p).stacks]
    out = []
    for v in vols:
        m = v.meta
        name = " ".join(x for x in (m.series_description or Path(p).name,
                                    f"#{m.series_number}" if m.series_number else "") if x)
        if m.warnings:
            name += " ⚠"
        layer = image_layer(v, name, recist_source=str(p))
        layer[1]["metadata"]["recist_summary_text"] = summary_text(layer[1]["metadata"]["recist_info"])
        out.append(layer)
    return out
