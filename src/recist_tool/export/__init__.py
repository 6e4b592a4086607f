"""Exports of the trial database: EDC (CDISC ODM, SDTM, Dataset-JSON, REDCap) and PACS (DICOM SR, SEG).

Every exporter reads the same :class:`~recist_tool.store.snapshot.TrialExport` (collected once from
the store, pseudonymous) and writes its files through :mod:`recist_tool.io.outputs`, so a failure
leaves no partial file behind and no file lands outside the output folder.

Public API
----------
FORMATS : dict
    Format name → ``"module:function"`` of its exporter, each
    ``export_X(data: TrialExport, out_dir: Path, *, options: Mapping[str, Any]) -> list[Path]``.
run_export(store, fmt, out_dir, ...) -> list[Path]
    Collect and dispatch (what ``recist export`` and the napari plugin call).
collect(store, ...) -> TrialExport
    See :mod:`recist_tool.store.snapshot`.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recist_tool.errors import UsageError
from recist_tool.store.snapshot import SubjectExport, TrialExport, collect

if TYPE_CHECKING:
    from recist_tool.store import TrialStore

__all__ = ["FORMATS", "SubjectExport", "TrialExport", "available_formats", "collect", "exporter",
           "run_export"]

#: Format name → ``"module:function"``; modules are imported only when their format is used.
FORMATS: dict[str, str] = {
    "odm": "recist_tool.export.odm:export_odm",
    "sdtm": "recist_tool.export.sdtm:export_sdtm",
    "dataset-json": "recist_tool.export.sdtm:export_dataset_json",
    "redcap": "recist_tool.export.redcap:export_redcap",
    "dicom-sr": "recist_tool.export.dicom_sr:export_dicom_sr",
    "dicom-seg": "recist_tool.export.dicom_seg:export_dicom_seg",
}


def exporter(fmt: str) -> Callable[..., list[Path]]:
    """The exporter function of format ``fmt``.

    Raises
    ------
    UsageError
        Unknown format, or one whose module is not part of this install.
    """
    spec = FORMATS.get(fmt)
    if spec is None:
        raise UsageError(f"unknown export format {fmt!r}; one of {', '.join(FORMATS)}")
    module, _, name = spec.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise UsageError(f"export format {fmt!r} is not available in this install ({exc})") from exc


def available_formats() -> list[str]:
    """The formats whose exporter can be imported here."""
    out = []
    for fmt in FORMATS:
        try:
            exporter(fmt)
        except UsageError:
            continue
        out.append(fmt)
    return out


def run_export(store: TrialStore, fmt: str, out_dir: str | os.PathLike[str], *,
               subjects: Sequence[str] | None = None, reader: str | None = None,
               include_unsigned: bool = False, trial: str | None = None,
               options: Mapping[str, Any] | None = None) -> list[Path]:
    """Export the trial (or some subjects) from ``store`` in format ``fmt`` into ``out_dir``.

    Parameters
    ----------
    store : TrialStore
        The trial database.
    fmt : str
        One of :data:`FORMATS`.
    out_dir : path-like
        Output folder (created by the exporter; left absent when the export fails).
    subjects, reader, include_unsigned, trial
        Which reads: see :func:`recist_tool.store.snapshot.collect`.
    options : mapping, optional
        Format-specific options (e.g. ``mapping`` for ODM/REDCap item and visit OIDs).

    Returns
    -------
    list of Path
        The files written.
    """
    fn = exporter(fmt)
    data = collect(store, subjects=subjects, reader=reader, include_unsigned=include_unsigned,
                   trial=trial)
    return fn(data, Path(out_dir), options=dict(options or {}))
