"""The files of the CT series under a path, read whole (pixel data included).

For writing a series out again (a de-identified copy, :mod:`recist_tool.export.deidentify_ct`):
the same discovery and grouping as :func:`recist_tool.io.load_volume` (folders, zip archives,
DICOMDIR, ``pacs://`` references through the cache), so the objects copied are exactly those the
loader builds a volume from; what is not part of a CT volume (SR, SEG, scouts, secondary
captures) is left out with its reason.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from recist_tool.errors import DicomLoadError
from recist_tool.io.dicom import scan_files
from recist_tool.io.dicom_headers import Skipped
from recist_tool.io.sources import open_source

__all__ = ["iter_ct_datasets"]


def iter_ct_datasets(path: str | os.PathLike[str], series: str | None = None,
                     skipped: list[Skipped] | None = None) -> Iterator[tuple[str, Any]]:
    """Every file of the CT series under ``path``, read whole, in the loader's order.

    Parameters
    ----------
    path : path-like
        A folder, zip archive, DICOMDIR, file or PACS reference (what ``load_volume`` takes).
    series : str, optional
        Only this series (stack id, SeriesInstanceUID or number); default every CT series.
    skipped : list, optional
        Receives the objects left out (not part of a CT volume), with their reason.

    Yields
    ------
    (str, pydicom.Dataset)
        The stack id and each distinct file of it (a multi-frame file once), pixels included;
        the source (a zip's temporary folder, the PACS cache entry) stays open while iterating.

    Raises
    ------
    DicomLoadError
        No CT series, the one named is absent, or a file cannot be read.
    """
    import pydicom

    with open_source(path) as src:
        found = scan_files(src)
        if skipped is not None:
            skipped.extend(found.skipped)
        stacks = [found.select(series)] if series is not None else found.stacks
        if not stacks:
            raise DicomLoadError(f"{path}: {found.nothing_found_message()}")
        for stack in stacks:
            seen: set[Path] = set()
            for fr in stack.frames:
                if fr.path in seen:
                    continue
                seen.add(fr.path)
                try:
                    ds = pydicom.dcmread(fr.path)
                except Exception as exc:  # vanished or damaged since the scan
                    raise DicomLoadError(f"{fr.path}: cannot read ({exc})") from None
                yield stack.stack_id, ds
