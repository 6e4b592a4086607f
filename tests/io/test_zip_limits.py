"""Zip archives measured against the free space of the temporary folder (issue #37, 10)."""

from __future__ import annotations

import io as pyio
import shutil
import zipfile
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest

from recist_tool import io
from recist_tool.cli import main
from recist_tool.errors import InputError
from recist_tool.io import sources
from tests.io.dicom_factory import write_series

_Usage = namedtuple("_Usage", "total used free")


def _series_zip(tmp_path: Path) -> Path:
    files, _ = write_series(tmp_path / "s", n=4)
    archive = tmp_path / "study.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in files:
            zf.write(f, f"study/{f.name}")
    return archive


def _free_space(monkeypatch: pytest.MonkeyPatch, free: int) -> list[str]:
    """Make ``shutil.disk_usage`` report ``free`` bytes; returns the folders it was asked about."""
    asked: list[str] = []

    def fake(path: str | Path) -> _Usage:
        asked.append(str(path))
        return _Usage(10 * free, 9 * free, free)

    monkeypatch.setattr(shutil, "disk_usage", fake)
    return asked


def _no_extraction(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kw: object) -> None:
        raise AssertionError("a member was opened for extraction")

    monkeypatch.setattr(zipfile.ZipFile, "open", refuse)


def test_archive_larger_than_free_space_refused_before_extracting(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    archive = _series_zip(tmp_path)
    inflated = sum(i.file_size for i in zipfile.ZipFile(archive).infolist())
    asked = _free_space(monkeypatch, inflated + sources.ZIP_FREE_MARGIN_BYTES - 1)
    _no_extraction(monkeypatch)
    with pytest.raises(InputError, match="free") as exc:
        io.scan(archive)
    assert "\n" not in str(exc.value) and str(archive) in str(exc.value)
    assert asked  # measured on the folder it would extract to
    assert main(["info", str(archive)]) == 3
    err = capsys.readouterr().err
    assert err.startswith("error:") and "Traceback" not in err


def test_archive_fits_with_the_margin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = _series_zip(tmp_path)
    inflated = sum(i.file_size for i in zipfile.ZipFile(archive).infolist())
    _free_space(monkeypatch, inflated + sources.ZIP_FREE_MARGIN_BYTES)
    assert io.load_volume(archive).shape == (4, 12, 10)


def test_compression_ratio_beyond_limit_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A small zip bomb: 20 MB of zeros in about 20 kB, plenty of free space."""
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("IM0001", b"\0" * 20_000_000)
    assert archive.stat().st_size < 100_000
    _free_space(monkeypatch, 1 << 50)
    _no_extraction(monkeypatch)
    with pytest.raises(InputError, match="ratio"):
        io.scan(archive)


def test_overlapping_members_measured_against_the_archive_size(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Members that share their compressed bytes: the ratio is taken over the file, not the
    members' own compressed sizes (which add up to far more than the archive holds)."""
    data = np.random.default_rng(0).integers(0, 4, 400_000, dtype=np.uint8).tobytes()
    buf = pyio.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("a", data)
    raw = bytearray(buf.getvalue())
    # A central directory of 400 entries, every one pointing at the same local header.
    cd_at = int.from_bytes(raw[-6:-2], "little")
    entry = bytes(raw[cd_at:len(raw) - 22])
    eocd = bytearray(raw[-22:])
    n = 400
    eocd[8:10] = eocd[10:12] = n.to_bytes(2, "little")
    eocd[12:16] = (len(entry) * n).to_bytes(4, "little")
    archive = tmp_path / "overlap.zip"
    archive.write_bytes(bytes(raw[:cd_at]) + entry * n + bytes(eocd))
    infos = zipfile.ZipFile(archive).infolist()
    assert len(infos) == n
    assert sum(i.file_size for i in infos) / sum(i.compress_size for i in infos) < sources.MAX_ZIP_RATIO
    _free_space(monkeypatch, 1 << 50)
    _no_extraction(monkeypatch)
    with pytest.raises(InputError, match="ratio"):
        io.scan(archive)


class _LyingMember(pyio.BytesIO):
    """A member stream that yields more bytes than its header declared."""


def test_bytes_counted_while_extracting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A member that inflates beyond its declared size stops the extraction (one-line error)."""
    archive = _series_zip(tmp_path)
    real_open = zipfile.ZipFile.open

    def lying_open(self: zipfile.ZipFile, name: object, *a: object, **kw: object) -> object:
        member = real_open(self, name, *a, **kw)
        declared = member.read()
        return _LyingMember(declared + b"\0" * (10 * len(declared)))

    monkeypatch.setattr(zipfile.ZipFile, "open", lying_open)
    with pytest.raises(InputError, match="declared") as exc:
        io.scan(archive)
    assert "\n" not in str(exc.value)
