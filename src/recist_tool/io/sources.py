"""Turn a user's path (folder, file, DICOMDIR, ``.zip``, PACS reference) into the list of files to examine.

A zip archive is extracted into a private temporary folder; members whose names would land
outside it (absolute paths, ``..``) and links are refused, and so are archives that would inflate
beyond a sane size, far beyond their own size (zip bombs) or beyond the free space of the
temporary folder, all judged before anything is extracted; the bytes are counted while
extracting too, against each member's declared size. Everything found is yielded inside a
context manager so temporary files are removed.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

from recist_tool.errors import InputError

if TYPE_CHECKING:
    from recist_tool.io.dicom_headers import FrameHeader, Skipped

#: Refuse zip archives that inflate beyond this many bytes, whatever the free space.
MAX_ZIP_BYTES = 16 * 1024**3
#: ... or beyond this many times the archive's size on disk (zip bombs; taken over the file, so
#: members that share their compressed bytes count as often as they are listed).
MAX_ZIP_RATIO = 200
#: Extracting must leave at least this much free in the temporary folder.
ZIP_FREE_MARGIN_BYTES = 512 * 1024**2
#: While extracting, the free space is measured again after every this many bytes written.
ZIP_RECHECK_BYTES = 64 * 1024**2

_DICOMDIR_NAMES = {"DICOMDIR", "DIRFILE"}


@dataclass
class SourceFiles:
    """Files found under a path.

    Attributes
    ----------
    files : list of Path
        Regular files to examine, sorted.
    skipped : list of tuple
        ``(name, reason_code, detail)`` for entries refused before reading (e.g. unsafe zip
        members).
    root : Path
        The folder the files were found in (a temporary folder for a zip).
    """

    files: list[Path]
    root: Path
    skipped: list[tuple[str, str, str]] = field(default_factory=list)

    def arriving(self) -> Iterator[Path] | None:
        """The files in order, each as soon as it can be read, or None when :attr:`files` is
        complete already (a folder, a zip).

        A PACS series being retrieved (:func:`recist_tool.io.pacs.open_pacs_source`) yields
        its files as they arrive, so the loader reads the headers of the first while the rest
        download; its ``operator.length_hint`` is the number the server's search announced.
        """
        return None

    def arriving_headers(self, workers: int | None = None
                         ) -> Iterator[tuple[Path, list[FrameHeader] | Skipped]] | None:
        """Each file in order with its headers, read from its bytes as they were received; or
        None when the loader is to read the files (:meth:`arriving`, :attr:`files`).

        A series retrieved by WADO-RS or C-GET (:func:`recist_tool.io.pacs.open_pacs_source`)
        has each instance's headers read from the bytes in memory while the next instances
        arrive (the files hold the same bytes): in a process of its own, or with ``workers``
        1 by the receiving thread. The first is yielded once every file has arrived.
        """
        return None


def _walk(root: Path) -> list[Path]:
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for name in filenames:
            p = Path(dirpath) / name
            try:
                st = p.lstat()
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                out.append(p)
    return sorted(out)


def _gb(n: float) -> str:
    return f"{n / 1e9:.2f} GB"


def _check_zip_size(archive: Path, dest: Path, infos: list[zipfile.ZipInfo]) -> None:
    """Refuse, before anything is extracted, an archive that would inflate too far.

    Raises
    ------
    InputError
        When the members' declared sizes add up to more than :data:`MAX_ZIP_BYTES`, more than
        :data:`MAX_ZIP_RATIO` times the archive's size, or more than the free space of ``dest``
        less :data:`ZIP_FREE_MARGIN_BYTES`.
    """
    total = sum(i.file_size for i in infos)
    packed = max(archive.stat().st_size, 1)
    if total > MAX_ZIP_BYTES or total / packed > MAX_ZIP_RATIO:
        raise InputError(f"{archive}: refusing to inflate {_gb(total)} from a zip archive of "
                         f"{_gb(packed)} (ratio {total / packed:.0f}:1; limits "
                         f"{_gb(MAX_ZIP_BYTES)}, {MAX_ZIP_RATIO}:1)")
    free = shutil.disk_usage(dest).free
    if total + ZIP_FREE_MARGIN_BYTES > free:
        raise InputError(f"{archive}: inflating it needs {_gb(total)} in {dest.parent}, which has "
                         f"{_gb(free)} free (keeping {_gb(ZIP_FREE_MARGIN_BYTES)} free); set TMPDIR "
                         "to a larger folder or extract it yourself")


class _Budget:
    """Counts the bytes written while extracting, against each member's declared size and the
    free space left (measured again every :data:`ZIP_RECHECK_BYTES`)."""

    def __init__(self, archive: Path, dest: Path) -> None:
        self.archive, self.dest = archive, dest
        self.since_check = 0

    def copy(self, info: zipfile.ZipInfo, src: IO[bytes], dst: IO[bytes]) -> None:
        written = 0
        while chunk := src.read(1 << 20):
            written += len(chunk)
            if written > info.file_size:
                raise InputError(f"{self.archive}: member {info.filename} inflates beyond its "
                                 f"declared size of {info.file_size} bytes; not extracted")
            self.since_check += len(chunk)
            if self.since_check >= ZIP_RECHECK_BYTES:
                self.since_check = 0
                if shutil.disk_usage(self.dest).free < ZIP_FREE_MARGIN_BYTES:
                    raise InputError(f"{self.archive}: the temporary folder {self.dest.parent} "
                                     "is filling up while extracting; stopped")
            dst.write(chunk)


#: What reading one damaged member raises (the member is skipped as UNREADABLE).
_MEMBER_ERRORS = (zipfile.BadZipFile, EOFError, zlib.error, NotImplementedError, RuntimeError)


def _extract_zip(archive: Path, dest: Path) -> list[tuple[str, str, str]]:
    skipped: list[tuple[str, str, str]] = []
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"{archive}: not a readable zip archive ({exc})") from None
    with zf:
        infos = zf.infolist()
        _check_zip_size(archive, dest, infos)
        budget = _Budget(archive, dest)
        dest_resolved = dest.resolve()
        for info in infos:
            if info.is_dir():
                continue
            mode = (info.external_attr >> 16) & 0o170000
            if mode == stat.S_IFLNK:
                skipped.append((info.filename, "UNSAFE_PATH", "symbolic link in zip archive"))
                continue
            target = (dest / info.filename).resolve()
            if dest_resolved not in target.parents:
                skipped.append((info.filename, "UNSAFE_PATH", "zip member outside the archive root"))
                continue
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as dst:
                    budget.copy(info, src, dst)
            except OSError as exc:
                if exc.errno == errno.ENOSPC:
                    raise InputError(f"{archive}: no space left in {dest.parent} while "
                                     "extracting") from None
                skipped.append((info.filename, "UNREADABLE", f"cannot extract ({exc})"))
            except _MEMBER_ERRORS as exc:
                skipped.append((info.filename, "UNREADABLE", f"corrupt zip member ({exc})"))
            else:
                continue
            if target.is_file():  # what was written of a member that failed half-way
                target.unlink()
    return skipped


def is_dicomdir(path: Path) -> bool:
    """True for a DICOMDIR / DIRFILE (Media Storage Directory) file, judged by name and magic."""
    if path.name.upper() not in _DICOMDIR_NAMES:
        return False
    try:
        with open(path, "rb") as f:
            head = f.read(132)
    except OSError:
        return False
    return head[128:132] == b"DICM"


@contextmanager
def open_source(path: str | os.PathLike[str]) -> Iterator[SourceFiles]:
    """Yield the files to examine under ``path``.

    Parameters
    ----------
    path : path-like
        A folder (searched recursively), a single file, a DICOMDIR/DIRFILE (its folder is
        searched), a ``.zip`` archive (extracted to a temporary folder for the duration) or a
        PACS reference ``pacs://SERVER/STUDY_UID[/SERIES_UID]`` (retrieved into the local cache
        and read from there, see :mod:`recist_tool.io.pacs`).

    Raises
    ------
    InputError
        When the path does not exist, is empty, or is an unusable archive; a PACS that cannot
        be used (:class:`~recist_tool.io.pacs.PacsError`).
    """
    from recist_tool.io.pacs.config import is_pacs_ref

    if is_pacs_ref(path):  # pacs://SERVER/STUDY_UID[/SERIES_UID]: retrieved into the cache
        from recist_tool.io.pacs import open_pacs_source

        with open_pacs_source(path) as src:
            yield src
        return
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file or folder")
    if p.is_dir():
        files = _walk(p)
        if not files:
            raise InputError(f"{p}: folder is empty")
        yield SourceFiles(files, p)
        return
    if zipfile.is_zipfile(p) and p.suffix.lower() == ".zip":
        with tempfile.TemporaryDirectory(prefix="recist-zip-") as tmp:
            skipped = _extract_zip(p, Path(tmp))
            files = _walk(Path(tmp))
            if not files:
                why = ""
                if skipped:
                    name, code, detail = skipped[0]
                    why = f" ({len(skipped)} skipped; {name}: {detail} ({code}))"
                raise InputError(f"{p}: zip archive holds no usable files{why}")
            yield SourceFiles(files, Path(tmp), skipped)
        return
    if is_dicomdir(p):
        yield SourceFiles(_walk(p.parent), p.parent)
        return
    yield SourceFiles([p], p.parent)
