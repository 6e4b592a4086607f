"""Where output files go and how they are written: the one place for both.

* :func:`safe_output_path` places a file (or folder) under the folder the user chose and refuses
  anything that would land elsewhere: ``..``, absolute paths, a symbolic link leading out, names a
  file system cannot hold (Windows device names among them). Codes become file names
  (``<subject>_<visit>_SR.dcm``); they are validated where they enter (:mod:`recist_tool.codes`),
  and this is the second fence for codes that reached the database some other way.
* :func:`atomic_outputs` / :func:`atomic_file` write under temporary names and rename only when
  every file of the set was written, so a failure never leaves a partial file; their
  :meth:`OutputSet.path` goes through :func:`safe_output_path`.
* :func:`write_csv` is the CSV writer of every CSV file the tool writes; it neutralises cells a
  spreadsheet would run as a formula (:func:`csv_cell`).
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path, PurePath
from typing import Any, Literal

from recist_tool.codes import is_device_name
from recist_tool.errors import InputError

__all__ = ["FORMULA_START", "NAME_MAX_BYTES", "OutputSet", "atomic_file", "atomic_outputs",
           "csv_cell", "safe_output_path", "write_csv"]

#: Longest file or folder name (bytes of UTF-8) most file systems hold.
NAME_MAX_BYTES = 255
#: First characters that make a spreadsheet read a text cell as a formula (OWASP "CSV injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


# --- placing files -------------------------------------------------------------------------------

def _name_problem(name: str) -> str | None:
    if name in ("", ".", ".."):
        return f"{name!r} is not a file name"
    bad = next((c for c in name if c in "\\\0" or ord(c) < 32 or ord(c) == 127), None)
    if bad is not None:
        return f"it contains {bad!r}"
    if len(name.encode("utf-8", "surrogateescape")) > NAME_MAX_BYTES:
        return f"a name is longer than {NAME_MAX_BYTES} bytes"
    if is_device_name(name):
        return f"{name!r} is a Windows device name"
    return None


def _shown(text: str) -> str:
    return repr(text) if len(text) <= 80 else f"{text[:80]!r}... ({len(text)} characters)"


def safe_output_path(out_dir: str | os.PathLike[str], *parts: str | os.PathLike[str]) -> Path:
    """``out_dir / part / ...``, refused unless it lies inside ``out_dir``.

    Each part is a relative path (``"tu.csv"``, ``"SYN-001/SYN-001_BL_SR.dcm"``); every name in it
    must be a plain file name: not empty, ``.`` or ``..``, no backslash, NUL or control
    character, at most :data:`NAME_MAX_BYTES` bytes, not a Windows device name
    (:func:`~recist_tool.codes.is_device_name`). The resolved path (symbolic links followed)
    must lie strictly inside the resolved ``out_dir``. Nothing is created.

    Parameters
    ----------
    out_dir : path-like
        The folder the user chose (need not exist yet).
    *parts : str or path-like
        Where the file goes under ``out_dir`` (at least one).

    Returns
    -------
    Path
        ``Path(out_dir).joinpath(*parts)``.

    Raises
    ------
    InputError
        One line naming the refused name and the folder.
    """
    if not parts:
        raise ValueError("safe_output_path needs at least one name")
    rel = os.path.join(*(os.fspath(p) for p in parts))
    names = PurePath(rel).parts
    if PurePath(rel).anchor:
        why: str | None = "it is an absolute path"
    else:
        why = next(filter(None, map(_name_problem, names or ("",))), None)
    root = Path(out_dir)
    if why is None:
        base = root.resolve()
        target = base.joinpath(rel).resolve()
        if target == base or not target.is_relative_to(base):
            why = "it leaves the folder"
    if why is not None:
        raise InputError(f"refusing to write {_shown(rel)} in {root}: {why}")
    return root.joinpath(rel)


# --- atomic writes -------------------------------------------------------------------------------

def _temp_name(path: Path) -> Path:
    """``.<name>.part-<pid><ext>``: hidden, per process, and ending like ``path`` (``.nii.gz``
    too), so writers that choose the format by extension write the right one."""
    ext = ".nii.gz" if path.name.lower().endswith(".nii.gz") else path.suffix
    return path.with_name(f".{path.name}.part-{os.getpid()}{ext}")


@contextmanager
def atomic_file(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; it becomes ``path`` only if the block succeeds.

    On an exception the temporary file is deleted and ``path`` is untouched (an older file of that
    name stays as it was). ``path``'s own name must be a plain file name
    (:func:`safe_output_path`).
    """
    with atomic_outputs(Path(path).parent) as out:
        yield out.path(Path(path).name)


class OutputSet:
    """Temporary files of one export, renamed to their final names together by :func:`atomic_outputs`."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self._pending: dict[Path, Path] = {}
        self._made: list[Path] = []  # folders this set created, outermost first

    def _mkdir(self, folder: Path) -> None:
        missing = [p for p in (folder, *folder.parents) if not p.exists()]
        folder.mkdir(parents=True, exist_ok=True)
        self._made += [p for p in reversed(missing) if p not in self._made]

    def path(self, *parts: str | os.PathLike[str]) -> Path:
        """Temporary path for the output ``out_dir / part / ...`` (sub-folders are created).

        Raises
        ------
        InputError
            When the output would not lie inside ``out_dir`` (:func:`safe_output_path`).
        """
        final = safe_output_path(self.out_dir, *parts)
        self._mkdir(final.parent)
        tmp = _temp_name(final)
        self._pending[final] = tmp
        return tmp

    def rename(self, name: str | os.PathLike[str], new_name: str | os.PathLike[str]) -> Path:
        """Give the output asked for as ``name`` (:meth:`path`) the final name ``new_name``
        instead: for a name that depends on what was written, such as its content hash.

        Returns
        -------
        Path
            The new final path (through :func:`safe_output_path`).
        """
        old = safe_output_path(self.out_dir, name)
        new = safe_output_path(self.out_dir, new_name)
        if old not in self._pending:
            raise KeyError(f"{name} is not an output of this set")
        self._pending = {(new if f == old else f): t for f, t in self._pending.items()}
        return new

    @property
    def finals(self) -> list[Path]:
        """The final paths, in the order they were asked for."""
        return list(self._pending)

    def _commit(self) -> None:
        missing = [f.name for f, t in self._pending.items() if not t.exists()]
        if missing:
            raise FileNotFoundError(f"export did not write {', '.join(missing)}")
        for final, tmp in self._pending.items():
            os.replace(tmp, final)

    def _discard(self) -> None:
        for tmp in self._pending.values():
            tmp.unlink(missing_ok=True)
        for folder in reversed(self._made):  # innermost first; only folders left empty
            try:
                folder.rmdir()
            except OSError:
                pass


@contextmanager
def atomic_outputs(out_dir: str | os.PathLike[str]) -> Iterator[OutputSet]:
    """Several output files that appear together, or not at all.

    On failure the temporary files are deleted, and so are the folders this call created when they
    are left empty.

    Examples
    --------
    >>> with atomic_outputs(tmp) as out:            # doctest: +SKIP
    ...     write_csv(out.path("tu.csv"), ...)
    ...     write_csv(out.path("tr.csv"), ...)
    """
    out = OutputSet(Path(out_dir))
    out._mkdir(Path(out_dir))
    try:
        yield out
        out._commit()
    except BaseException:
        out._discard()
        raise


# --- CSV -----------------------------------------------------------------------------------------

def csv_cell(value: Any) -> Any:
    """One CSV cell, safe to open in a spreadsheet.

    The rule: a number (``int``, ``float``, ``Decimal``) stays as it is; ``None`` is empty; any
    other value is written as text, and text starting with ``=``, ``+``, ``-``, ``@``, tab or
    carriage return (:data:`FORMULA_START`) gets a single quote in front (OWASP's advice against
    CSV injection) unless the whole text is a plain decimal number such as ``-12.5`` or ``+3e2``,
    which a spreadsheet reads as that number. So ``-12.5`` stays ``-12.5`` and ``=1+1`` is written
    ``'=1+1``; a program reading such a cell back gets the quote too.
    """
    if value is None:
        return ""
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return value
    text = str(value)
    if text.startswith(FORMULA_START) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def write_csv(path: str | os.PathLike[str], columns: Sequence[str],
              rows: Iterable[Mapping[str, Any] | Sequence[Any]], *,
              quoting: Literal[0, 1, 2, 3] = csv.QUOTE_MINIMAL, lineterminator: str = "\r\n") -> int:
    """Write a header and ``rows`` to ``path``, every cell through :func:`csv_cell`.

    Written in place: give it a path from :func:`atomic_file` or :meth:`OutputSet.path`.

    Parameters
    ----------
    path : path-like
    columns : sequence of str
        The header; a mapping row gives these keys (missing ones are empty), a sequence row these
        values in this order.
    rows : iterable of mapping or sequence
    quoting, lineterminator
        As for :func:`csv.writer` (``QUOTE_NONNUMERIC`` quotes every text cell).

    Returns
    -------
    int
        Number of rows written (header not counted).

    Raises
    ------
    InputError
        When the file cannot be written.
    ValueError
        A mapping row with a key outside ``columns`` or a row of the wrong length.
    """
    cols = list(columns)
    n = 0
    try:
        with open(path, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh, quoting=quoting, lineterminator=lineterminator)
            w.writerow(cols)
            for row in rows:
                if isinstance(row, Mapping):
                    extra = [k for k in row if k not in cols]
                    if extra:
                        raise ValueError(f"row has keys outside the columns: {', '.join(extra)}")
                    values = [row.get(c) for c in cols]
                else:
                    values = list(row)
                    if len(values) != len(cols):
                        raise ValueError(f"row has {len(values)} values for {len(cols)} columns")
                w.writerow([csv_cell(v) for v in values])
                n += 1
    except OSError as exc:
        raise InputError(f"cannot write {Path(path).name}: {exc.strerror or exc}") from exc
    return n
