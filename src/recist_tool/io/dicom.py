"""DICOM series → :class:`~recist_tool.volume.Volume`: discovery, grouping, pixels, metadata."""

from __future__ import annotations

import gc
import os
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recist_tool.errors import DicomLoadError, UsageError
from recist_tool.io.dicom_headers import FrameHeader, Skipped, read_frame_headers
from recist_tool.io.pixels import read_pixels
from recist_tool.io.sources import SourceFiles, open_source
from recist_tool.io.stacks import SERIES_FAILURES, Stack, group_stacks, report_dropped
from recist_tool.io.volume_files import load_volume_file, volume_format
from recist_tool.volume import Volume, VolumeMeta


@dataclass
class ScanResult:
    """What was found under a path.

    Attributes
    ----------
    stacks : list of Stack
        One per CT volume, ordered by folder, then series number, then UID.
    skipped : list of Skipped
        Objects that are not part of a CT volume, with a reason code.
    """

    stacks: list[Stack]
    skipped: list[Skipped] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form used by ``recist info --json``."""
        return {
            "series": [s.summary() for s in self.stacks],
            "skipped": [{"path": k.path, "reason": k.reason, "detail": k.detail,
                         "series_uid": k.series_uid} for k in self.skipped],
        }

    def select(self, series: str | None) -> Stack:
        """The stack named ``series`` (stack id or SeriesInstanceUID), or the only one.

        Raises
        ------
        DicomLoadError
            When nothing usable was found, or the named series is absent or could not be built
            (the message says why).
        UsageError
            When several stacks were found and none was named.
        """
        if not self.stacks:
            raise DicomLoadError(self.nothing_found_message())
        if series is None:
            if len(self.stacks) > 1:
                ids = ", ".join(s.stack_id for s in self.stacks)
                raise UsageError(f"{len(self.stacks)} CT series found; choose one with --series "
                                 f"(one of: {ids})")
            return self.stacks[0]
        for s in self.stacks:
            if series in (s.stack_id, s.series_uid) or (
                    s.first.series_number is not None and series == str(s.first.series_number)):
                return s
        lost = [k for k in self.skipped if k.series_uid == series]
        if lost:
            raise DicomLoadError(f"series {series}: no CT volume: {_why(lost)}")
        ids = ", ".join(s.stack_id for s in self.stacks)
        raise DicomLoadError(f"series {series} not found (found: {ids})")

    def nothing_found_message(self) -> str:
        """One line on why no stack was found, naming a series that could not be built first."""
        if not self.skipped:
            return "no CT volume found"
        return f"no CT volume found: {_why(self.skipped)}"


def _why(skipped: list[Skipped]) -> str:
    """One line about ``skipped``: the first failed series (else the first object) in full, then
    the count of the others by reason."""
    lead = next((k for k in skipped if k.reason in SERIES_FAILURES), skipped[0])
    text = f"{lead.path}: {lead.detail} ({lead.reason})"
    others = Counter(k.reason for k in skipped if k is not lead)
    if others:
        text += (f"; {sum(others.values())} other object(s) skipped: "
                 + ", ".join(f"{r} ×{n}" for r, n in others.most_common()))
    return text


#: Each process reading headers gets at least this many files (so parallel from 64 files on).
MIN_FILES_PER_HEADER_PROCESS = 32


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector (restored on exit).

    Reading headers allocates many small objects that either live on (the frame headers) or die
    by reference counting; the collector finds nothing to free but still walks every live
    object each time it runs, about a tenth of the header pass.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _read_headers(files: list[Path]) -> list[list[FrameHeader] | Skipped]:
    """:func:`read_frame_headers` of each file, in order (also run in worker processes)."""
    with _gc_paused():
        return [read_frame_headers(p) for p in files]


def _read_all_headers(files: list[Path], workers: int | None) -> list[list[FrameHeader] | Skipped]:
    """Headers of every file, in order, read by ``workers`` processes (this one included).

    The files are cut into one contiguous share per process; this process reads the first
    share while ``workers - 1`` forked processes read the others.
    """
    n = workers if workers is not None else (os.cpu_count() or 1)
    n = min(n, len(files) // MIN_FILES_PER_HEADER_PROCESS)
    if n <= 1:
        return _read_headers(files)
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    bounds = [len(files) * i // n for i in range(n + 1)]
    shares = [files[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    with ProcessPoolExecutor(max_workers=n - 1, mp_context=mp.get_context(method)) as pool:
        others = [pool.submit(_read_headers, share) for share in shares[1:]]
        out = _read_headers(shares[0])
        for fut in others:
            out.extend(fut.result())
    return out


#: Files of a series still arriving handed to a header process at a time.
HEADER_BATCH_FILES = 16


def _read_arriving_headers(files: Iterator[Path], workers: int | None
                           ) -> list[list[FrameHeader] | Skipped]:
    """Headers of files that are still arriving (a PACS retrieve), in order, read as they come.

    With ``workers`` processes (default: the CPUs; none for fewer files than
    :data:`MIN_FILES_PER_HEADER_PROCESS` each, judged from the announced count) each batch of
    :data:`HEADER_BATCH_FILES` goes to a process as soon as it is complete, while this process
    waits for the next; the processes are started before the first file is asked for, since
    asking starts the retrieve's thread (a process forked while it runs could inherit a lock it
    holds).
    """
    import operator

    n = workers if workers is not None else (os.cpu_count() or 1)
    n = min(n, operator.length_hint(files) // MIN_FILES_PER_HEADER_PROCESS)
    if n <= 1:
        with _gc_paused():
            return [read_frame_headers(p) for p in files]
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    with ProcessPoolExecutor(max_workers=n, mp_context=mp.get_context(method)) as pool:
        pool.submit(int).result()  # starts every process (fork: all at the first task)
        batches = []
        batch: list[Path] = []
        for p in files:
            batch.append(p)
            if len(batch) == HEADER_BATCH_FILES:
                batches.append(pool.submit(_read_headers, batch))
                batch = []
        if batch:
            batches.append(pool.submit(_read_headers, batch))
        return [got for fut in batches for got in fut.result()]


def scan_files(src: SourceFiles, workers: int | None = None) -> ScanResult:
    """Read the headers of every file of ``src`` and group the frames into stacks.

    Files that are not usable DICOM images are kept in ``skipped`` with their reason; headers
    are read in ``workers`` processes (default: the CPUs, fewer for short series), those of a
    series still arriving from a PACS as they arrive (:meth:`SourceFiles.arriving`), or taken
    as the source read them from the bytes received (:meth:`SourceFiles.arriving_headers`).
    """
    frames: list[FrameHeader] = []
    skipped = [Skipped(name, code, detail) for name, code, detail in src.skipped]
    read = src.arriving_headers(workers)
    if read is not None:
        with _gc_paused():
            results = [got for _, got in read]
    elif (arriving := src.arriving()) is not None:
        results = _read_arriving_headers(arriving, workers)
    else:
        results = _read_all_headers(src.files, workers)
    for got in results:
        if isinstance(got, Skipped):
            skipped.append(got)
        else:
            frames.extend(got)
    stacks, more = group_stacks(frames)
    report_dropped(stacks, skipped + more)
    for s in stacks:
        s.folder = os.path.relpath(s.first.path.parent, src.root)
    stacks.sort(key=lambda s: (s.folder, s.first.series_number is None,
                               s.first.series_number or 0, s.stack_id))
    return ScanResult(stacks, skipped + more)


def scan(path: str | os.PathLike[str]) -> ScanResult:
    """Find every CT stack under ``path`` (headers only; no pixel data is read).

    Parameters
    ----------
    path : path-like
        Folder (recursive), file, DICOMDIR/DIRFILE, or ``.zip`` archive.
    """
    with open_source(path) as src:
        return scan_files(src)


def stack_to_volume(stack: Stack, workers: int | None = None, source: str | None = None) -> Volume:
    """Read a stack's pixels and build its :class:`Volume` with metadata and warnings."""
    f = stack.first
    array = read_pixels(stack.frames, workers=workers)
    meta = VolumeMeta(
        modality=f.modality, patient_id=f.patient_id, study_uid=f.study_uid,
        series_uid=f.series_uid, frame_of_reference_uid=f.frame_of_reference_uid,
        study_date=f.study_date, series_description=f.series_description,
        series_number=f.series_number, slice_thickness_mm=stack.slice_thickness_mm,
        kernel=f.kernel, contrast=f.contrast, manufacturer=f.manufacturer,
        sop_instance_uids=tuple(fr.sop_instance_uid for fr in stack.frames),
        warnings=tuple(stack.warnings), source=source,
        extra={"stack_id": stack.stack_id, "transfer_syntax": f.transfer_syntax,
               "slice_files": tuple((str(fr.path), fr.frame) for fr in stack.frames)},
    )
    return Volume.from_slices(
        array, stack.positions, f.orientation[:3], f.orientation[3:], f.pixel_spacing, meta,
        single_slice_thickness=stack.slice_thickness_mm,
    )


def load_volume(
    path: str | os.PathLike[str],
    series: str | None = None,
    *,
    workers: int | None = None,
    resample: bool = False,
) -> Volume:
    """Load one CT volume.

    Parameters
    ----------
    path : path-like
        DICOM folder / file / DICOMDIR / ``.zip``, or a NIfTI/NRRD/MHA volume file.
    series : str, optional
        Stack id or SeriesInstanceUID (or SeriesNumber) when the path holds several series.
    workers : int, optional
        Processes for decoding compressed pixel data (default: all CPUs).
    resample : bool
        Resample a sheared or unevenly spaced stack onto an orthogonal regular grid.

    Returns
    -------
    Volume
        HU values ``(z, y, x)`` with the exact native geometry (or the resampled grid).

    Raises
    ------
    DicomLoadError, UsageError, GeometryError
        With a one-line message saying what and where.
    """
    if volume_format(path) is not None and Path(path).is_file():
        vol = load_volume_file(path)
    else:
        with open_source(path) as src:
            result = scan_files(src, workers)
            stack = result.select(series)
            vol = stack_to_volume(stack, workers=workers, source=str(path))
    if resample and not vol.is_orthogonal_grid:
        vol = vol.resample_orthogonal()
    return vol


def load_dicom_file(path: str | os.PathLike[str]) -> tuple[Any, list[FrameHeader]]:
    """HU pixels ``(frames, y, x)`` and headers of one DICOM image file, single slices included.

    Unlike :func:`load_volume` this does not require a volume; it is for checking one file.
    """
    got = read_frame_headers(Path(path))
    if isinstance(got, Skipped):
        raise DicomLoadError(f"{got.path}: {got.detail} ({got.reason})")
    return read_pixels(got, workers=1), got
