"""Local cache of series retrieved from a PACS, with a size limit (least recently used series go).

Layout under the cache folder (one entry per server, study and series)::

    <key>.lock                  flock: exclusive while fetching or evicting, shared while read
    <key>/instances/000001.dcm  the instances as the server sent them (DICOM Part 10), numbered
                                in the order they arrived (:func:`instance_path`)
    <key>/series.json           server, UIDs, instance count, bytes; its mtime is the last use

A series is fetched in place under the exclusive lock, and ``series.json`` is written (atomically)
only once every instance is: an entry without it is half a series (a fetch under way, or one whose
process died), which no reader uses and the next open fetches again. The fetch runs either in the
caller's thread (when it asks for the whole series) or in a thread of its own while the caller
reads each instance as it arrives (:meth:`CachedSeries.arriving`: the loader reads the headers of
the first instances while the rest download). Readers hold the shared lock while the loader reads
the files; eviction takes the exclusive lock without waiting and skips a series in use.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

__all__ = ["CachedSeries", "SeriesCache", "instance_path"]

#: ``fetch(folder, arrived)``: writes instance n as ``instance_path(folder, n)``, calls
#: ``arrived(n)`` once the first n are complete, returns the metadata to keep (``n_instances``).
Fetch = Callable[[Path, Callable[[int], None]], dict]


def instance_path(folder: Path, n: int) -> Path:
    """Where a fetch writes the n-th instance (from 1) it receives."""
    return folder / f"{n:06d}.dcm"


class _Retrieval:
    """One fetch of a series into ``folder``: run here, or in a thread while files are read."""

    def __init__(self, folder: Path, fetch: Fetch, finish: Callable[[dict], dict]) -> None:
        self.folder, self._fetch, self._finish = folder, fetch, finish
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._ran = False
        self._stop = False
        self.n_arrived = 0
        self.meta: dict | None = None
        self.error: BaseException | None = None

    @property
    def done(self) -> bool:
        return self.meta is not None or self.error is not None

    def _arrived(self, n: int) -> None:
        if self._stop:
            raise _Stopped()
        with self._cond:
            self.n_arrived = max(self.n_arrived, n)
            self._cond.notify_all()

    def _run(self) -> None:
        try:
            meta = self._finish(dict(self._fetch(self.folder, self._arrived)))
        except BaseException as exc:  # noqa: BLE001 - handed to the reader (or dropped on stop)
            with self._cond:
                self.error = exc
                self._cond.notify_all()
            return
        with self._cond:
            self.meta = meta
            self._cond.notify_all()

    def _claim(self) -> bool:
        with self._cond:
            first, self._ran = not self._ran, True
            return first

    def complete(self) -> dict:
        """Fetch here (unless a thread does), wait for the end; the metadata, or the error."""
        if self._claim():
            self._run()
        with self._cond:
            self._cond.wait_for(lambda: self.done)
        if self.error is not None:
            raise self.error
        assert self.meta is not None
        return self.meta

    def arriving(self) -> Iterator[Path]:
        """Each instance file as soon as it is complete (the fetch runs in a thread)."""
        if self._claim():
            self._thread = threading.Thread(target=self._run, name="recist-pacs-fetch", daemon=True)
            self._thread.start()
        i = 0
        while True:
            with self._cond:
                self._cond.wait_for(lambda i=i: self.n_arrived > i or self.done)  # type: ignore[misc]
                upto, done = self.n_arrived, self.done
            while i < upto:
                i += 1
                yield instance_path(self.folder, i)
            if done and i >= self.n_arrived:
                break
        self.complete()  # raises the fetch's error, if any

    def stop(self) -> None:
        """Stop a fetch under way (at its next instance) and wait for its thread."""
        self._stop = True
        if self._thread is not None:
            self._thread.join()


class _Stopped(BaseException):
    """Raised into a fetch whose reader went away (not an ``Exception``: nothing converts it)."""


class CachedSeries:
    """A series in the cache, complete or being fetched.

    Attributes
    ----------
    folder : Path
        Holds the instances (``instances/``) and ``series.json``.
    expected : int or None
        How many instances the server's search said it holds (None when not known).
    """

    def __init__(self, folder: Path, meta: dict | None = None,
                 retrieval: _Retrieval | None = None, expected: int | None = None) -> None:
        self.folder = folder
        self.expected = expected if expected is not None else (
            int(meta["n_instances"]) if meta else None)
        self._meta, self._retrieval = meta, retrieval

    @property
    def complete(self) -> bool:
        """Whether the series is complete in the cache (not to be fetched, or fetched)."""
        return self._meta is not None or (self._retrieval is not None
                                          and self._retrieval.meta is not None)

    def _complete(self) -> dict:
        if self._meta is None:
            assert self._retrieval is not None
            self._meta = self._retrieval.complete()
        return self._meta

    @property
    def instances(self) -> Path:
        """The folder of the instance files, complete (a fetch under way is waited for, one not
        started yet is run here)."""
        self._complete()
        return self.folder / "instances"

    @property
    def n_instances(self) -> int:
        """Instances of the complete series."""
        return int(self._complete()["n_instances"])

    @property
    def n_bytes(self) -> int:
        """Bytes of the complete series' instance files."""
        return int(self._complete().get("n_bytes", 0))

    def files(self) -> list[Path]:
        """The instance files of the complete series, sorted."""
        return sorted(p for p in self.instances.iterdir() if p.is_file())

    def arriving(self) -> Iterator[Path]:
        """Each instance file as soon as it is complete: those of a cached series at once; a
        series not fetched yet is fetched in a thread meanwhile (its error is raised here)."""
        if self._meta is None and self._retrieval is not None:
            yield from self._retrieval.arriving()
            self._complete()
        else:
            yield from self.files()


@contextmanager
def _flock(path: Path, mode: int) -> Iterator[IO[bytes]]:
    with open(path, "a+b") as fh:
        fcntl.flock(fh, mode)
        try:
            yield fh
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _read_meta(folder: Path) -> dict | None:
    try:
        return json.loads((folder / "series.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


class SeriesCache:
    """Series retrieved from PACS servers, kept under ``root`` up to ``max_bytes``.

    Parameters
    ----------
    root : Path
        The cache folder (created, owner-only).
    max_bytes : int
        After each fetch, least recently used series are removed until the cache holds at most
        this much; the series just fetched stays even when it alone is larger.
    """

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = Path(root)
        self.max_bytes = int(max_bytes)

    @staticmethod
    def key(identity: str, study_uid: str, series_uid: str) -> str:
        """The entry name of a series: a hash of the server's identity and the UIDs."""
        return hashlib.sha256(f"{identity}\n{study_uid}\n{series_uid}".encode()).hexdigest()[:32]

    @contextmanager
    def open(self, key: str, *, expect_instances: int | None, fetch: Fetch
             ) -> Iterator[CachedSeries]:
        """Yield the series ``key``, fetched when absent or stale, locked while in use.

        A series to fetch is fetched when first asked for (:class:`CachedSeries`); one the block
        leaves incomplete (never asked for, read in part, or the block raised) is removed.

        Parameters
        ----------
        key : str
            :meth:`key` of the series.
        expect_instances : int or None
            How many instances the server holds now; a cached copy with another count is fetched
            again (None: any complete copy is used).
        fetch : callable
            ``fetch(folder, arrived)`` writes the n-th instance it receives as
            :func:`instance_path` ``(folder, n)`` (``folder`` created, empty), calls
            ``arrived(n)`` once the first n are complete (an exception that call raises must
            end the fetch), and returns the metadata to keep (must include ``n_instances``).
        """
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock = self.root / f"{key}.lock"
        final = self.root / key
        with _flock(lock, fcntl.LOCK_EX) as fh:
            meta = _read_meta(final)
            if meta is not None and (expect_instances is None
                                     or meta.get("n_instances") == expect_instances):
                os.utime(final / "series.json")
                fcntl.flock(fh, fcntl.LOCK_SH)  # others may read it too; eviction skips it
                yield CachedSeries(final, meta)
                return
            shutil.rmtree(final, ignore_errors=True)
            (final / "instances").mkdir(parents=True)

            def finish(got: dict) -> dict:
                got["n_bytes"] = sum(f.stat().st_size for f in (final / "instances").iterdir())
                tmp = final / "series.json.part"
                tmp.write_text(json.dumps(got), encoding="utf-8")
                os.replace(tmp, final / "series.json")
                fcntl.flock(fh, fcntl.LOCK_SH)
                self.evict(keep=key)
                return got

            retrieval = _Retrieval(final / "instances", fetch, finish)
            try:
                yield CachedSeries(final, retrieval=retrieval, expected=expect_instances)
            finally:
                if retrieval.meta is None:  # not fetched, read in part, failed or the block raised
                    retrieval.stop()
                    shutil.rmtree(final, ignore_errors=True)

    def entries(self) -> list[tuple[float, str, int]]:
        """``(last use, key, bytes)`` of the complete series in the cache, oldest first."""
        out = []
        for p in self.root.iterdir() if self.root.is_dir() else ():
            if not p.is_dir() or ".part-" in p.name:
                continue
            meta = _read_meta(p)
            if meta is None:
                continue
            try:
                used = (p / "series.json").stat().st_mtime
            except OSError:
                continue
            out.append((used, p.name, int(meta.get("n_bytes", 0))))
        return sorted(out)

    def size(self) -> int:
        """Bytes of instances the cache holds."""
        return sum(n for _, _, n in self.entries())

    def evict(self, keep: str | None = None) -> list[str]:
        """Remove least recently used series until the cache fits; returns the keys removed.

        A series another process (or this one) is reading is locked and skipped, and so is
        ``keep``.
        """
        removed = []
        entries = self.entries()
        total = sum(n for _, _, n in entries)
        for _, key, n in entries:
            if total <= self.max_bytes:
                break
            if key == keep:
                continue
            if self._remove_unlocked(key):
                total -= n
                removed.append(key)
        self._drop_stale_parts()
        return removed

    def _remove_unlocked(self, key: str) -> bool:
        """Remove entry ``key`` unless someone holds its lock; whether it was removed."""
        with open(self.root / f"{key}.lock", "a+b") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            try:
                shutil.rmtree(self.root / key, ignore_errors=True)
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
        return True

    def _drop_stale_parts(self, older_than_s: float = 3600.0) -> None:
        """Remove half-fetched series left by processes that died (older than an hour, unlocked)."""
        now = time.time()
        for p in self.root.iterdir():
            try:
                if not p.is_dir() or now - p.stat().st_mtime <= older_than_s:
                    continue
                if ".part-" in p.name:  # the layout before fetches went in place
                    shutil.rmtree(p, ignore_errors=True)
                elif not (p / "series.json").exists():
                    self._remove_unlocked(p.name)
            except OSError:
                continue

