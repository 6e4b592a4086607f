"""Turn a user's path (folder, file, DICOMDIR, ``.zip``) into the list of files to examine.

A zip archive is extracted into a private temporary folder; members whose names would land
outside it (absolute paths, ``..``), links, and archives that inflate beyond a sane size are
refused. Everything found is yielded inside a context manager so temporary files are removed.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from recist_tool.errors import InputError

#: Refuse zip archives that inflate beyond this many bytes (zip bombs).
MAX_ZIP_BYTES = 16 * 1024**3
#: ... or that claim a compression ratio beyond this.
MAX_ZIP_RATIO = 200

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


def _extract_zip(archive: Path, dest: Path) -> list[tuple[str, str, str]]:
    skipped: list[tuple[str, str, str]] = []
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"{archive}: not a readable zip archive ({exc})") from None
    with zf:
        infos = zf.infolist()
        total = sum(i.file_size for i in infos)
        packed = sum(i.compress_size for i in infos) or 1
        if total > MAX_ZIP_BYTES or total / packed > MAX_ZIP_RATIO:
            raise InputError(
                f"{archive}: refusing to inflate {total / 1e9:.1f} GB "
                f"(ratio {total / packed:.0f}:1) from a zip archive"
            )
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
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with zf.open(info) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                skipped.append((info.filename, "UNREADABLE", f"corrupt zip member ({exc})"))
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
        searched) or a ``.zip`` archive (extracted to a temporary folder for the duration).

    Raises
    ------
    InputError
        When the path does not exist, is empty, or is an unusable archive.
    """
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
                raise InputError(f"{p}: zip archive holds no usable files")
            yield SourceFiles(files, Path(tmp), skipped)
        return
    if is_dicomdir(p):
        yield SourceFiles(_walk(p.parent), p.parent)
        return
    yield SourceFiles([p], p.parent)
