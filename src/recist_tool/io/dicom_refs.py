"""A CT series together with the DICOM headers of its slices, for objects that reference it.

DICOM SR and SEG objects written back to a PACS must reference the exact images they were made
on (SOP Class / Instance UIDs, frame numbers) and carry the same patient and study. The loader
keeps only what a :class:`~recist_tool.volume.Volume` needs; this module reopens the series once
and returns the volume with every slice's header (no pixel data), read while the source is open
(a ``.zip`` is extracted to a temporary folder only for the duration of the call).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset

from recist_tool.errors import DicomLoadError
from recist_tool.io.dicom import scan_files, stack_to_volume
from recist_tool.io.sources import open_source
from recist_tool.io.volume_files import volume_format
from recist_tool.volume import Volume

__all__ = ["SeriesWithHeaders", "load_series_with_headers"]


@dataclass(frozen=True, eq=False)
class SeriesWithHeaders:
    """A CT volume and the header of the DICOM object behind each of its slices.

    Attributes
    ----------
    volume : Volume
        The series as :func:`recist_tool.io.load_volume` returns it (native geometry).
    headers : tuple of pydicom.dataset.Dataset
        ``headers[k]`` is the header (no pixel data) of the object holding slice ``k``; the same
        object for every frame of a multi-frame image.
    frames : tuple of int or None
        ``frames[k]`` is the 1-based frame number of slice ``k`` in a multi-frame object, or
        ``None`` for a single-frame image.
    """

    volume: Volume
    headers: tuple[Dataset, ...]
    frames: tuple[int | None, ...]

    @property
    def is_multiframe(self) -> bool:
        """True when the slices are frames of multi-frame objects."""
        return any(f is not None for f in self.frames)

    def sop_instance_uid(self, k: int) -> str:
        """SOP Instance UID of the object holding slice ``k``."""
        return str(self.headers[k].SOPInstanceUID)

    def sop_class_uid(self, k: int) -> str:
        """SOP Class UID of the object holding slice ``k``."""
        return str(self.headers[k].SOPClassUID)


def load_series_with_headers(
    path: str | os.PathLike[str], series: str | None = None
) -> SeriesWithHeaders:
    """Load a DICOM CT series with its slices' headers.

    Parameters
    ----------
    path : path-like
        DICOM folder / file / DICOMDIR / ``.zip`` (what :func:`recist_tool.io.load_volume` takes;
        a NIfTI/NRRD/MHA file has no DICOM headers and is refused).
    series : str, optional
        SeriesInstanceUID, stack id or series number when the path holds several series.

    Returns
    -------
    SeriesWithHeaders

    Raises
    ------
    DicomLoadError
        Not a DICOM series, unreadable headers.
    """
    if volume_format(path) is not None and Path(path).is_file():
        raise DicomLoadError(f"{path}: a volume file has no DICOM headers; DICOM SR/SEG need the "
                             "original DICOM series")
    with open_source(path) as src:
        stack = scan_files(src).select(series)
        volume = stack_to_volume(stack, source=str(path))
        cache: dict[str, Dataset] = {}
        headers: list[Dataset] = []
        frames: list[int | None] = []
        for fr in stack.frames:
            key = str(fr.path)
            if key not in cache:
                try:
                    cache[key] = pydicom.dcmread(fr.path, stop_before_pixels=True)
                except Exception as exc:  # vanished or corrupted since the scan
                    raise DicomLoadError(f"{fr.path}: cannot read the DICOM header ({exc})") from exc
            headers.append(cache[key])
            frames.append(None if fr.frame is None else int(fr.frame) + 1)
    return SeriesWithHeaders(volume, tuple(headers), tuple(frames))
