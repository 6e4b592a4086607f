"""A corpus of hostile inputs, generated here (no binaries in the repository), and what the
loader must make of each: a volume with the right warnings, a named skip, or one line of error.

Every case also goes through ``recist info`` and ``recist convert``: exit code 0 or 3, an error
on one line, never an internal error.
"""

from __future__ import annotations

import shutil
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.encaps import encapsulate
from pydicom.uid import RLELossless

from recist_tool import io
from recist_tool.cli import main
from recist_tool.errors import RecistToolError
from tests.io.dicom_factory import write_series


def _series(folder: Path, n: int = 6) -> list[Path]:
    """A 6-slice series; the files in position order."""
    files, _ = write_series(folder, n=n)
    return sorted(files, key=lambda f: float(pydicom.dcmread(f).ImagePositionPatient[2]))


def _edit(files: list[Path], change: Callable[[pydicom.Dataset], None]) -> None:
    for f in files:
        ds = pydicom.dcmread(f)
        change(ds)
        ds.save_as(f)


def _set(**values: object) -> Callable[[pydicom.Dataset], None]:
    def change(ds: pydicom.Dataset) -> None:
        for key, value in values.items():
            if key == "TransferSyntaxUID":
                ds.file_meta.TransferSyntaxUID = value
            else:
                setattr(ds, key, value)
    return change


def _rle_frame(*segments: bytes) -> bytes:
    """One RLE Lossless frame: the 64-byte header of segment offsets, then the segments."""
    offsets, at = [], 64
    for s in segments:
        offsets.append(at)
        at += len(s)
    head = struct.pack(f"<{1 + len(segments)}I", len(segments), *offsets)
    return head + b"\0" * (64 - len(head)) + b"".join(segments)


def _rle_overrun(folder: Path) -> None:
    """The middle slice RLE-compressed, its first segment running 128 bytes past the image."""
    files = _series(folder, 3)
    ds = pydicom.dcmread(files[1])
    run = bytes([0x81, 7])  # 128 × the byte 7
    ds.PixelData = encapsulate([_rle_frame(run * 3, run * 2)])
    ds.file_meta.TransferSyntaxUID = RLELossless
    ds["PixelData"].VR = "OB"
    ds.save_as(files[1])


def _conflicting_copy(folder: Path) -> None:
    files = _series(folder / "a", 4)
    ds = pydicom.dcmread(files[1])
    px = np.frombuffer(ds.PixelData, "<u2").copy()
    px[5] ^= 1
    ds.PixelData = px.tobytes()
    (folder / "b").mkdir()
    ds.save_as(folder / "b" / "copy")


def _identical_copy(folder: Path) -> None:
    files = _series(folder / "a", 4)
    (folder / "b").mkdir()
    shutil.copy(files[1], folder / "b" / "copy")


def _zip(folder: Path, name: str, members: dict[str, bytes],
         method: int = zipfile.ZIP_DEFLATED) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    archive = folder / name
    with zipfile.ZipFile(archive, "w", method) as zf:
        for member, data in members.items():
            zf.writestr(member, data)
    return archive


def _series_bytes(folder: Path) -> dict[str, bytes]:
    return {f"s/{f.name}": f.read_bytes() for f in _series(folder / "src", 3)}


def _patch_member_headers(archive: Path, change: Callable[[bytearray, int, int], None]) -> None:
    """``change(data, offset, kind)`` on every local (kind 0) and central (kind 1) header."""
    data = bytearray(archive.read_bytes())
    for sig, kind in ((b"PK\x03\x04", 0), (b"PK\x01\x02", 1)):
        at = data.find(sig)
        while at >= 0:
            change(data, at, kind)
            at = data.find(sig, at + 4)
    archive.write_bytes(bytes(data))


def _zip_corrupt_deflate(folder: Path) -> Path:
    members = _series_bytes(folder)
    archive = _zip(folder, "corrupt.zip", members)
    data = bytearray(archive.read_bytes())
    first = data.find(b"PK\x03\x04")
    name_len, extra_len = struct.unpack_from("<HH", data, first + 26)
    start = first + 30 + name_len + extra_len
    data[start:start + 16] = b"\xff" * 16  # an invalid deflate block type
    archive.write_bytes(bytes(data))
    return archive


def _zip_flag(folder: Path, name: str, flag: int = 0, method: int | None = None) -> Path:
    archive = _zip(folder, name, _series_bytes(folder))

    def change(data: bytearray, at: int, kind: int) -> None:
        flags_at, method_at = (at + 6, at + 8) if kind == 0 else (at + 8, at + 10)
        data[flags_at] |= flag
        if method is not None:
            struct.pack_into("<H", data, method_at, method)

    _patch_member_headers(archive, change)
    return archive


def _zip_file_and_folder(folder: Path) -> Path:
    """A member ``s/IM1`` and another that needs ``s/IM1`` to be a folder."""
    members = _series_bytes(folder)
    first = next(iter(members))
    members[f"{first}/inner"] = b"x"
    return _zip(folder, "clash.zip", members)


@dataclass(frozen=True)
class Expect:
    """What the loader makes of a case: volumes and their warnings, skip reasons, or an error."""

    volumes: int = 1
    warnings: tuple[str, ...] = ()
    skips: tuple[str, ...] = ()
    error: str | None = None


def _build(name: str, root: Path) -> Path:
    """Write case ``name`` under ``root``; returns the path to give the loader."""
    folder = root / name
    if name == "conflicting_copy":
        _conflicting_copy(folder)
    elif name == "identical_copy":
        _identical_copy(folder)
    elif name == "even_slices_32_bit_header":
        _edit(_series(folder)[::2], _set(BitsAllocated=32, BitsStored=32, HighBit=31))
    elif name == "even_slices_8_bit_header":
        _edit(_series(folder)[::2], _set(BitsAllocated=8, BitsStored=8, HighBit=7))
    elif name == "empty_transfer_syntax":
        _edit(_series(folder, 3), _set(TransferSyntaxUID=""))
    elif name == "empty_transfer_syntax_one_slice":
        _edit(_series(folder)[2:3], _set(TransferSyntaxUID=""))
    elif name == "unknown_transfer_syntax":
        _edit(_series(folder, 3), _set(TransferSyntaxUID="1.2.3.4"))
    elif name == "no_transfer_syntax":
        def drop(ds: pydicom.Dataset) -> None:
            del ds.file_meta.TransferSyntaxUID
        _edit(_series(folder, 3), drop)
    elif name == "nan_slope_one_slice":
        _edit(_series(folder)[3:4], _set(RescaleSlope="NaN"))
    elif name == "absurd_intercept":
        _edit(_series(folder, 3), _set(RescaleIntercept="1e308"))
    elif name == "denormal_spacing":
        _edit(_series(folder, 3), _set(PixelSpacing=["1e-320", "1e-320"]))
    elif name == "absurd_position_one_slice":
        _edit(_series(folder)[5:], _set(ImagePositionPatient=["1e308", "0", "1e308"]))
    elif name == "palette_color":
        _edit(_series(folder, 3), _set(PhotometricInterpretation="PALETTE COLOR"))
    elif name == "rle_segment_overrun":
        _rle_overrun(folder)
    elif name == "zip_bomb":
        return _zip(folder, "bomb.zip", {"IM0": b"\0" * 5_000_000})
    elif name == "zip_corrupt_deflate":
        return _zip_corrupt_deflate(folder)
    elif name == "zip_encrypted_flag":
        return _zip_flag(folder, "encrypted.zip", flag=0x1)
    elif name == "zip_unknown_method":
        return _zip_flag(folder, "method.zip", method=99)
    elif name == "zip_file_and_folder":
        return _zip_file_and_folder(folder)
    else:
        raise AssertionError(name)
    return folder


CASES: dict[str, Expect] = {
    "conflicting_copy": Expect(0, skips=("CONFLICTING_DUPLICATE",), error="CONFLICTING_DUPLICATE"),
    "identical_copy": Expect(1, warnings=("DUPLICATE_FILE",)),
    "even_slices_32_bit_header": Expect(1, ("DROPPED_SLICES",), ("TRUNCATED",) * 3),
    "even_slices_8_bit_header": Expect(1, ("DROPPED_SLICES",), ("BAD_HEADER",) * 3),
    "empty_transfer_syntax": Expect(0, skips=("BAD_HEADER",) * 3, error="not a transfer syntax"),
    "empty_transfer_syntax_one_slice": Expect(1, ("DROPPED_SLICES", "MISSING_SLICE"),
                                              ("BAD_HEADER",)),
    "unknown_transfer_syntax": Expect(0, skips=("BAD_HEADER",) * 3, error="not a transfer syntax"),
    "no_transfer_syntax": Expect(1),
    "nan_slope_one_slice": Expect(1, ("DROPPED_SLICES", "MISSING_SLICE"), ("BAD_HEADER",)),
    "absurd_intercept": Expect(0, skips=("BAD_HEADER",) * 3, error="RescaleIntercept"),
    "denormal_spacing": Expect(0, skips=("NO_GEOMETRY",) * 3, error="NO_GEOMETRY"),
    "absurd_position_one_slice": Expect(1, ("DROPPED_SLICES",), ("NO_GEOMETRY",)),
    "palette_color": Expect(0, skips=("NOT_GRAYSCALE",) * 3, error="NOT_GRAYSCALE"),
    "rle_segment_overrun": Expect(1, error="cannot decode pixel data"),
    "zip_bomb": Expect(0, error="ratio"),
    "zip_corrupt_deflate": Expect(1, ("UNREADABLE_FILES",), ("UNREADABLE",)),
    "zip_encrypted_flag": Expect(0, skips=("UNREADABLE",) * 3, error="UNREADABLE"),
    "zip_unknown_method": Expect(0, skips=("UNREADABLE",) * 3, error="UNREADABLE"),
    "zip_file_and_folder": Expect(1, ("UNREADABLE_FILES",), ("UNREADABLE",)),
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hostile")
    return {name: _build(name, root) for name in CASES}


def _scan_or_error(path: Path) -> tuple[io.ScanResult | None, str | None]:
    try:
        return io.scan(path), None
    except RecistToolError as exc:
        return None, str(exc)


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_case(corpus: dict[str, Path], name: str) -> None:
    want = CASES[name]
    res, scan_error = _scan_or_error(corpus[name])
    if res is None:  # refused as a whole (zip limits)
        assert want.volumes == 0 and want.error and want.error in str(scan_error)
        return
    assert len(res.stacks) == want.volumes, res.to_dict()
    assert sorted(k.reason for k in res.skipped) == sorted(want.skips), res.to_dict()
    for s in res.stacks:
        assert sorted(s.summary()["warnings"]) == sorted(want.warnings), s.summary()
    if want.error is None:
        io.load_volume(corpus[name])
        return
    with pytest.raises(RecistToolError) as exc:
        io.load_volume(corpus[name])
    assert want.error in str(exc.value) and "\n" not in str(exc.value)


@pytest.mark.parametrize("name", list(CASES))
def test_cli_on_hostile_case_exits_cleanly(corpus: dict[str, Path], name: str, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    for args in (["info", str(corpus[name])],
                 ["convert", str(corpus[name]), "-o", str(tmp_path / "o.nii.gz")]):
        code = main(args)
        err = capsys.readouterr().err.strip()
        assert code in (0, 3), (args, err)
        assert "internal error" not in err and "Traceback" not in err
        if code == 3 and err:
            assert err.startswith("error:") and len(err.splitlines()) <= 3, err

