"""Where a series lies, as manifests and the store keep it: a file path (folder, zip, volume file)
or a PACS reference ``pacs://SERVER/STUDY_UID[/SERIES_UID]`` (:mod:`recist_tool.io.pacs`).

Code above ``io`` asks these two functions instead of testing for ``pacs://`` itself; opening
either kind is :func:`recist_tool.io.load_volume`'s business.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from recist_tool.io.pacs.config import is_pacs_ref, parse_ref

__all__ = ["series_found", "series_location"]


def series_location(value: str | os.PathLike[str],
                    path: Callable[[str], str | os.PathLike[str]] = os.path.abspath) -> str:
    """A series location as it is kept: a PACS reference in its normal form, a path through
    ``path`` (by default made absolute).

    Parameters
    ----------
    value : str or path-like
        What the user or a manifest gave.
    path : callable
        What to do with a file path, e.g. ``lambda p: Path(p).resolve()`` or a
        :func:`os.path.relpath` to a manifest's folder.

    Raises
    ------
    PacsError
        A ``pacs:/`` text that is not a valid reference.

    Examples
    --------
    >>> series_location("pacs://orthanc/1.2.3/1.2.3.4")
    'pacs://orthanc/1.2.3/1.2.3.4'
    >>> series_location("ct/W06", lambda p: p.upper())
    'CT/W06'
    """
    if is_pacs_ref(value):
        return str(parse_ref(value))
    return str(path(os.fspath(value)))


def series_found(location: str | os.PathLike[str]) -> bool:
    """Whether a kept series location can be opened: a path that exists, or a PACS reference
    (the server is asked when it is opened)."""
    return is_pacs_ref(location) or Path(location).exists()
