"""Local cache of series retrieved from a PACS, with a size limit (least recently used series go).

Layout under the cache folder (one entry per server, study and series)::

    <key>.lock               flock: exclusive while fetching or evicting, shared while read
    <key>/instances/*.dcm    the instances as the server sent them (DICOM Part 10)
    <key>/series.json        server, UIDs, instance count, bytes; its mtime is the last use

A series is fetched into ``<key>.part-<pid>`` and renamed into place, so a reader never sees half
a series. Readers hold the shared lock while the loader reads the files; eviction takes the
exclusive lock without waiting and skips a series in use.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

__all__ = ["CachedSeries", "SeriesCache"]


@dataclass(frozen=True)
class CachedSeries:
    """A complete series in the cache.

    Attributes
    ----------
    folder : Path
        Holds the instances (``instances/``) and ``series.json``.
    n_instances : int
    n_bytes : int
    """

    folder: Path
    n_instances: int
    n_bytes: int

    @property
    def instances(self) -> Path:
        """The folder of the instance files (what the loader reads)."""
        return self.folder / "instances"


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
    def open(self, key: str, *, expect_instances: int | None,
             fetch: Callable[[Path], dict]) -> Iterator[CachedSeries]:
        """Yield the series ``key``, fetched first when absent or stale, locked while in use.

        Parameters
        ----------
        key : str
            :meth:`key` of the series.
        expect_instances : int or None
            How many instances the server holds now; a cached copy with another count is fetched
            again (None: any complete copy is used).
        fetch : callable
            ``fetch(folder)`` writes the instances into ``folder`` (created, empty) and returns
            the metadata to keep (must include ``n_instances``).
        """
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock = self.root / f"{key}.lock"
        final = self.root / key
        with _flock(lock, fcntl.LOCK_EX) as fh:
            meta = _read_meta(final)
            if meta is None or (expect_instances is not None
                                and meta.get("n_instances") != expect_instances):
                part = self.root / f"{key}.part-{os.getpid()}"
                shutil.rmtree(part, ignore_errors=True)
                (part / "instances").mkdir(parents=True)
                try:
                    meta = dict(fetch(part / "instances"))
                    meta["n_bytes"] = sum(f.stat().st_size for f in (part / "instances").iterdir())
                    (part / "series.json").write_text(json.dumps(meta), encoding="utf-8")
                except BaseException:
                    shutil.rmtree(part, ignore_errors=True)
                    raise
                shutil.rmtree(final, ignore_errors=True)
                os.replace(part, final)
                fetched = True
            else:
                os.utime(final / "series.json")
                fetched = False
            fcntl.flock(fh, fcntl.LOCK_SH)  # others may read it too; eviction skips it
            if fetched:
                self.evict(keep=key)
            yield CachedSeries(final, int(meta["n_instances"]), int(meta.get("n_bytes", 0)))

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
            with open(self.root / f"{key}.lock", "a+b") as fh:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue
                try:
                    shutil.rmtree(self.root / key, ignore_errors=True)
                finally:
                    fcntl.flock(fh, fcntl.LOCK_UN)
            total -= n
            removed.append(key)
        self._drop_stale_parts()
        return removed

    def _drop_stale_parts(self, older_than_s: float = 3600.0) -> None:
        """Remove half-fetched folders left by processes that died (older than an hour)."""
        now = time.time()
        for p in self.root.glob("*.part-*"):
            try:
                if now - p.stat().st_mtime > older_than_s:
                    shutil.rmtree(p, ignore_errors=True)
            except OSError:
                continue
