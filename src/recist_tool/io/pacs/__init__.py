"""Series from a PACS (DICOMweb or DIMSE) wherever a path is accepted, and objects sent back.

A series reference ``pacs://NAME/STUDY_UID/SERIES_UID`` (or ``pacs://NAME/STUDY_UID``: every CT
series of the study) names a server of the trial settings (``[pacs.NAME]``, see
:mod:`recist_tool.io.pacs.config`). :func:`open_pacs_source` searches the server (QIDO-RS or
C-FIND), retrieves the series (WADO-RS or C-GET) into the local cache (:mod:`.cache`, LRU by
series under a size limit) unless the cache holds it with the same number of instances, and
yields the cached files to the same loader as a folder on disk, with the headers of the instances
read from their bytes as they were received (:class:`_ReceivedHeaders`). :func:`send` stores
files (STOW-RS or C-STORE) and queries them back.

Public API
----------
is_pacs_ref(value) -> bool
parse_ref(value) -> SeriesRef
open_pacs_source(ref) -> context manager yielding SourceFiles
open_pacs_series(ref, modality) -> context manager yielding (SeriesRef, list of Path)
    One series of any modality (an SR, a SEG), checked to be of that modality.
find_object_series(server_name, study_uid, sop_instance_uid, modality) -> str or None
    The series of a study holding an object (a SEG an SR references).
send(server_name, files) -> list of SentSeries
search_studies(server_name, query) -> StudySearch
    Studies matching a StudyQuery (patient, dates, modality, accession) with their series
    (:mod:`.browse`).
prefetch(ref, progress, cancelled) -> int
    A series retrieved into the cache, with progress and a way to cancel (:mod:`.browse`).
use_settings(path)
    Take the servers from this trial settings file (also for worker processes).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from recist_tool.io.pacs.browse import StudyQuery, StudySearch, prefetch, search_studies
from recist_tool.io.pacs.cache import CachedSeries, SeriesCache, instance_path
from recist_tool.io.pacs.config import (
    CONFIG_ENV,
    PacsError,
    RetrievalCancelled,
    SeriesRef,
    Server,
    cache_settings,
    is_pacs_ref,
    parse_ref,
    read_servers,
    server,
    use_settings,
)
from recist_tool.io.sources import SourceFiles

if TYPE_CHECKING:
    from recist_tool.io.dicom_headers import FrameHeader, Skipped

__all__ = ["CONFIG_ENV", "PacsError", "RetrievalCancelled", "SentSeries", "SeriesRef", "Server",
           "StudyQuery", "StudySearch", "fetch_series", "find_object_series", "find_series", "is_pacs_ref",
           "open_pacs_series", "open_pacs_source", "parse_ref", "prefetch", "read_servers",
           "search_studies", "send", "server", "use_settings"]


def _proto(srv: Server) -> Any:
    if srv.protocol == "dicomweb":
        from recist_tool.io.pacs import dicomweb

        return dicomweb
    from recist_tool.io.pacs import dimse

    return dimse


def find_series(srv: Server, study_uid: str, series_uid: str | None = None) -> list[dict[str, Any]]:
    """The series of a study on ``srv`` (or the one named): ``series_uid, modality, description,
    n, number, date, slice_thickness`` (the last three as the server gives them)."""
    return _proto(srv).find_series(srv, study_uid, series_uid)


def cache() -> SeriesCache:
    """The series cache of the current settings (``$RECIST_PACS_CACHE``, ``[pacs_cache]``)."""
    root, max_bytes = cache_settings()
    return SeriesCache(root, max_bytes)


#: Whether the loader takes the headers of a series being retrieved from the bytes as they are
#: received (:class:`_ReceivedHeaders`) rather than from the files written (read by the loader's
#: header processes); False is the way before 2026-12-05, kept for ``benchmarks/bench_pacs.py``.
HEADERS_FROM_BYTES = True


@contextmanager
def fetch_series(srv: Server, study_uid: str, series_uid: str, n_instances: int | None = None,
                 progress: Callable[[int], None] | None = None,
                 received: Callable[[Path, memoryview], None] | None = None
                 ) -> Iterator[CachedSeries]:
    """The series in the local cache (retrieved when absent or stale), locked while in use.

    Parameters
    ----------
    srv : Server
    study_uid, series_uid : str
    n_instances : int, optional
        How many instances the server says it holds (from a search); a cached copy with another
        count is retrieved again.
    progress : callable, optional
        ``progress(n)`` with the instances written so far while retrieving (not called for a
        cached copy); an exception it raises stops the retrieve and nothing of it is kept.
    received : callable, optional
        ``received(path, data)`` with each instance's bytes as they are received, before they
        are written to ``path`` (in the receiving thread; the view is valid during the call
        only; not called for a cached copy).
    """
    mod = _proto(srv)

    def fetch(folder: Path, arrived: Callable[[int], None]) -> dict[str, Any]:
        def step(n: int) -> None:
            if progress is not None:
                progress(n)
            arrived(n)

        def got(n: int, data: memoryview) -> None:
            assert received is not None
            received(instance_path(folder, n), data)

        if received is None:
            n = mod.retrieve_series(srv, study_uid, series_uid, folder, step)
        else:
            n = mod.retrieve_series(srv, study_uid, series_uid, folder, step, received=got)
        if n == 0:
            raise PacsError(f"PACS {srv.name}: series {series_uid} of study {study_uid}: the "
                            "server sent no instance")
        return {"server": srv.name, "address": srv.address, "study_uid": study_uid,
                "series_uid": series_uid, "n_instances": n}

    key = SeriesCache.key(f"{srv.protocol} {srv.address}", study_uid, series_uid)
    with cache().open(key, expect_instances=n_instances, fetch=fetch) as entry:
        yield entry


def _wanted(srv: Server, ref: SeriesRef) -> list[dict[str, Any]]:
    found = [s for s in find_series(srv, ref.study_uid, ref.series_uid) if s["series_uid"]]
    if ref.series_uid is not None:
        found = [s for s in found if s["series_uid"] == ref.series_uid]
        if not found:
            raise PacsError(f"{ref}: PACS {srv.name} holds no series {ref.series_uid} in study "
                            f"{ref.study_uid}")
        return found
    if not found:
        raise PacsError(f"{ref}: PACS {srv.name} holds no study {ref.study_uid} (or it has no "
                        "series)")
    ct = [s for s in found if (s["modality"] or "CT") == "CT"]
    if not ct:
        kinds = ", ".join(sorted({s["modality"] or "?" for s in found}))
        raise PacsError(f"{ref}: study {ref.study_uid} on PACS {srv.name} has no CT series "
                        f"(modalities: {kinds})")
    return ct


@contextmanager
def open_pacs_source(value: str | os.PathLike[str]) -> Iterator[Any]:
    """Yield the cached files of a PACS series (or a study's CT series) as a ``SourceFiles``.

    Raises
    ------
    PacsError
        A malformed reference, an unknown server, a server that cannot be reached or refuses the
        login, a series or study it does not hold: one line each, never with the credentials.
    """
    ref = parse_ref(value)
    srv = server(ref.server)
    wanted = _wanted(srv, ref)
    headers = _ReceivedHeaders() if HEADERS_FROM_BYTES else None
    with ExitStack() as stack:
        entries = [stack.enter_context(fetch_series(
            srv, ref.study_uid, s["series_uid"], s["n"] or None,
            received=headers.received if headers is not None else None)) for s in wanted]
        root = entries[0].folder / "instances" if len(entries) == 1 else entries[0].folder.parent
        yield _SeriesFiles(entries, root, headers)


#: Instances whose first bytes go to the header process at a time.
HEADER_BATCH = 16


def _read_heads(batch: list[tuple[Path, bytes, int]]) -> list[list[FrameHeader] | Skipped | None]:
    """:func:`~recist_tool.io.dicom_headers.read_head_headers` of each ``(path, first bytes,
    size)`` (in the header process)."""
    from recist_tool.io.dicom import _gc_paused
    from recist_tool.io.dicom_headers import read_head_headers

    with _gc_paused():
        return [read_head_headers(p, head, size) for p, head, size in batch]


class _ReceivedHeaders:
    """The headers of the instances of series being retrieved, read from the bytes received.

    :meth:`start` (before the retrieve's thread starts: it forks) decides where: in a process of
    its own when the loader may use processes (``workers`` not 1), which is sent the first
    :data:`~recist_tool.io.dicom_headers.HEAD_BYTES` of each instance, :data:`HEADER_BATCH` at a
    time, while the receiving thread goes on; else by the receiving thread itself. Not started
    (the series read once complete, as a folder), :meth:`received` does nothing.
    """

    def __init__(self) -> None:
        self._started = False
        self._pool: Any = None
        self._batch: list[tuple[Path, bytes, int]] = []
        self._sent: dict[Path, tuple[Any, int]] = {}
        self._read: dict[Path, list[FrameHeader] | Skipped] = {}

    def start(self, workers: int | None) -> None:
        if (workers if workers is not None else (os.cpu_count() or 1)) > 1:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context(method))
            self._pool.submit(int).result()  # forked now, before the retrieve's thread starts
        self._started = True

    def received(self, path: Path, data: memoryview) -> None:
        """Instance ``path`` received (in the receiving thread; ``data`` valid during the call)."""
        from recist_tool.io.dicom_headers import HEAD_BYTES, read_frame_headers

        if self._pool is not None:
            self._batch.append((path, bytes(data[:HEAD_BYTES]), len(data)))
            if len(self._batch) >= HEADER_BATCH:
                self._send()
        elif self._started:
            self._read[path] = read_frame_headers(path, data)

    def _send(self) -> None:
        batch, self._batch = self._batch, []
        fut = self._pool.submit(_read_heads, batch)
        for i, (p, _, _) in enumerate(batch):
            self._sent[p] = (fut, i)

    def get(self, path: Path) -> list[FrameHeader] | Skipped | None:
        """The headers of ``path`` read from its bytes, once every series is retrieved; None
        where they were not (a series cached already) or its first bytes did not hold them."""
        if self._batch:
            self._send()
        if (sent := self._sent.pop(path, None)) is not None:
            return cast("list[FrameHeader] | Skipped | None", sent[0].result()[sent[1]])
        return self._read.pop(path, None)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None


class _Arriving:
    """The files of cached series as they arrive, with the count announced as length hint."""

    def __init__(self, entries: list[CachedSeries]) -> None:
        self._files = (p for e in entries for p in e.arriving())
        self._left = sum(e.expected or 0 for e in entries)

    def __iter__(self) -> _Arriving:
        return self

    def __next__(self) -> Path:
        p = next(self._files)
        self._left = max(0, self._left - 1)
        return p

    def __length_hint__(self) -> int:
        return self._left


class _SeriesFiles(SourceFiles):
    """The instance files of series in the cache as a ``SourceFiles``: :attr:`files` once every
    series is complete; while series not cached yet are retrieved, :meth:`arriving_headers`
    (each file with the headers ``headers`` read from its bytes) or, without ``headers``,
    :meth:`arriving`."""

    def __init__(self, entries: list[CachedSeries], root: Path,
                 headers: _ReceivedHeaders | None = None) -> None:
        self._entries, self.root, self.skipped = entries, root, []
        self._headers = headers

    @property
    def files(self) -> list[Path]:  # type: ignore[override]
        return sorted(p for e in self._entries for p in e.files())

    def arriving(self) -> Iterator[Path] | None:
        if all(e.complete for e in self._entries):
            return None  # read as a folder on disk
        return _Arriving(self._entries)

    def arriving_headers(self, workers: int | None = None
                         ) -> Iterator[tuple[Path, list[FrameHeader] | Skipped]] | None:
        if self._headers is None or all(e.complete for e in self._entries):
            return None
        return self._read(self._headers, workers)

    def _read(self, headers: _ReceivedHeaders, workers: int | None
              ) -> Iterator[tuple[Path, list[FrameHeader] | Skipped]]:
        from recist_tool.io.dicom_headers import read_frame_headers

        headers.start(workers)
        try:
            for p in list(_Arriving(self._entries)):  # every series retrieved
                got = headers.get(p)
                yield p, got if got is not None else read_frame_headers(p)
        finally:
            headers.close()


@contextmanager
def open_pacs_series(value: str | os.PathLike[str], modality: str
                     ) -> Iterator[tuple[SeriesRef, list[Path]]]:
    """Yield the cached files of one series of ``modality`` (an SR, a SEG) on a server.

    Unlike :func:`open_pacs_source` (CT series for the loader), the reference must name the series,
    and the server's search must give it the modality asked for; the files stay locked in the
    cache while the context is open.

    Parameters
    ----------
    value : str or path-like
        ``pacs://SERVER/STUDY_UID/SERIES_UID``.
    modality : str
        The DICOM Modality the series must have (``SR``, ``SEG``).

    Yields
    ------
    (SeriesRef, list of Path)
        The reference (normalised) and the instance files, sorted.

    Raises
    ------
    PacsError
        A malformed reference or one without a series, an unknown server or one that cannot be
        used, a series the server does not hold or of another modality: one line each.
    """
    ref = parse_ref(value)
    if ref.series_uid is None:
        raise PacsError(f"{ref}: name the {modality} series: "
                        f"pacs://{ref.server}/{ref.study_uid}/SERIES_UID")
    srv = server(ref.server)
    found = _wanted(srv, ref)[0]
    if (found["modality"] or "").upper() != modality.upper():
        raise PacsError(f"{ref}: series {ref.series_uid} on PACS {srv.name} is "
                        f"{found['modality'] or 'of no stated modality'}, not {modality}")
    with fetch_series(srv, ref.study_uid, ref.series_uid, found["n"] or None) as entry:
        yield ref, sorted(p for p in entry.instances.iterdir() if p.is_file())


def find_object_series(server_name: str, study_uid: str, sop_instance_uid: str,
                       modality: str | None = None) -> str | None:
    """The SeriesInstanceUID of the series of ``study_uid`` that holds an object, or None.

    Searches the study's series (of ``modality`` only, when given), then their instances; used to
    find the DICOM SEG a TID 1411 SR group references by SOP Instance UID.

    Raises
    ------
    PacsError
        An unknown server or one that cannot be used.
    """
    srv = server(server_name)
    mod = _proto(srv)
    for s in find_series(srv, study_uid):
        if not s["series_uid"] or (modality and (s["modality"] or "").upper() != modality.upper()):
            continue
        if sop_instance_uid in mod.find_instances(srv, study_uid, s["series_uid"]):
            return str(s["series_uid"])
    return None


@dataclass(frozen=True)
class SentSeries:
    """What the server holds of one series after a send.

    Attributes
    ----------
    study_uid, series_uid, modality : str
    sent : int
        Instances of this series sent.
    held_of_sent : int
        How many of them a search found on the server afterwards.
    held : int
        Instances of the series on the server in all.
    """

    study_uid: str
    series_uid: str
    modality: str
    sent: int
    held_of_sent: int
    held: int

    @property
    def ok(self) -> bool:
        """Every instance sent is on the server."""
        return self.held_of_sent == self.sent


def send(server_name: str, files: Iterable[str | os.PathLike[str]]) -> tuple[Server, list[SentSeries]]:
    """Store DICOM files on a server (STOW-RS or C-STORE), then search for them.

    Returns
    -------
    (Server, list of SentSeries)
        One entry per series sent, with what the server holds of it.

    Raises
    ------
    PacsError
        Unknown server, refused login or objects, server down; or a sent object the search does
        not find.
    """
    import pydicom

    srv = server(server_name)
    paths = [Path(p) for p in files]
    if not paths:
        raise PacsError(f"PACS {srv.name}: nothing to send")
    series: dict[tuple[str, str], dict[str, Any]] = {}
    for p in paths:
        ds = pydicom.dcmread(str(p), stop_before_pixels=True)
        entry = series.setdefault((str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID)),
                                  {"modality": str(ds.get("Modality", "")), "uids": set()})
        entry["uids"].add(str(ds.SOPInstanceUID))
    mod = _proto(srv)
    mod.store(srv, paths)
    out = []
    for (study, ser), entry in series.items():
        held = set(mod.find_instances(srv, study, ser))
        out.append(SentSeries(study, ser, entry["modality"], len(entry["uids"]),
                              len(entry["uids"] & held), len(held)))
    missing = [s for s in out if not s.ok]
    if missing:
        s = missing[0]
        raise PacsError(f"PACS {srv.name} accepted the objects but a search finds {s.held_of_sent} "
                        f"of the {s.sent} sent in series {s.series_uid}")
    return srv, out
