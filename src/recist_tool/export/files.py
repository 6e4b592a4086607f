"""Writing export files so that a failure never leaves a partial file behind."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["OutputSet", "atomic_file", "atomic_outputs"]


def _temp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.part-{os.getpid()}")


@contextmanager
def atomic_file(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; it becomes ``path`` only if the block succeeds.

    On an exception the temporary file is deleted and ``path`` is untouched (an older file of that
    name stays as it was).
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

    def path(self, name: str | os.PathLike[str]) -> Path:
        """Temporary path for the output ``out_dir / name`` (sub-folders are created)."""
        final = self.out_dir / name
        self._mkdir(final.parent)
        tmp = _temp_name(final)
        self._pending[final] = tmp
        return tmp

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
