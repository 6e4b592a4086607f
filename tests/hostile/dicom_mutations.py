"""Hostile DICOM series for loader fuzzing: small valid series, and byte-level header mutations.

A base series (2-4 slices of 16 × 16 pixels: uncompressed, RLE-compressed, or one Enhanced CT
file of three frames) is written once with pydicom and kept as bytes. A mutation then works on
the encoded elements, not on a pydicom dataset, so it can do what no well-behaved writer does:
delete an element, empty it, give it a value of the wrong type or an absurd number, change its
VR, lie about its length, duplicate or reorder it, cut the file short or flip bytes. Re-encoding
a mutated file takes microseconds, so the loader's own work dominates a fuzz run.

Used by ``tests/hostile/test_fuzz_loader.py`` (hypothesis) and ``benchmarks/fuzz_loader.py``.
"""

from __future__ import annotations

import os
import struct
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import cache, cached_property
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import EnhancedCTImageStorage, RLELossless

from recist_tool.errors import RecistToolError
from recist_tool.io.dicom import scan_files, stack_to_volume
from recist_tool.io.sources import open_source
from tests.io.dicom_factory import ct_slice

#: VRs whose explicit-VR encoding has a 4-byte length after two reserved bytes.
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT",
             b"UV"}
_UNDEFINED = 0xFFFFFFFF
_ITEM, _ITEM_END, _SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD

#: Elements the mutations aim at: everything the loader reads, and what pydicom needs to parse.
TARGETS: tuple[str, ...] = (
    "FileMetaInformationGroupLength", "MediaStorageSOPClassUID", "MediaStorageSOPInstanceUID",
    "TransferSyntaxUID", "SpecificCharacterSet", "ImageType", "SOPClassUID", "SOPInstanceUID",
    "StudyDate", "Modality", "PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SeriesNumber",
    "AcquisitionNumber", "InstanceNumber", "ImagePositionPatient", "ImageOrientationPatient",
    "FrameOfReferenceUID", "SliceThickness", "GantryDetectorTilt", "SamplesPerPixel",
    "PhotometricInterpretation", "NumberOfFrames", "Rows", "Columns", "PixelSpacing",
    "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation", "RescaleIntercept",
    "RescaleSlope", "PixelData", "SharedFunctionalGroupsSequence",
    "PerFrameFunctionalGroupsSequence", "ConvolutionKernel", "SeriesDescription",
)

#: Values of the wrong type, absurd numbers, broken text, foreign UIDs.
VALUES: tuple[bytes, ...] = (
    b"", b" ", b"0", b"-1", b"1", b"2", b"3", b"8", b"12", b"16", b"32", b"64", b"-32768", b"65535",
    b"4294967295", b"99999999999999999999", b"1e308", b"-1e308", b"1e-320", b"nan", b"NaN\\NaN",
    b"inf", b"-inf", b"abc", b"\\", b"\\\\\\\\\\", b"1\\2", b"1\\0\\0\\0\\1\\0", b"0\\0\\0\\0\\0\\0",
    b"1\\0\\0\\0\\0\\1", b"1\\0\\0\\1\\0\\0", b"0.5\\0.5\\0\\0\\0.5\\0.5", b"-0\\-0",
    b"1\\2\\3\\4\\5\\6\\7", b"1e400\\1\\1", b"\x00\x00", b"\x00\x80", b"\xff\xff", b"\xff\xff\xff\xff",
    b"\x00\x00\x00\x80", b"\x00\x00\x00\x00\x00\x00\xf8\x7f", b"\xc3\x28", b"\xff\xfe\xfd",
    b"1.2.840.10008.1.2", b"1.2.840.10008.1.2.1", b"1.2.840.10008.1.2.2", b"1.2.840.10008.1.2.5",
    b"1.2.840.10008.1.2.4.50", b"1.2.840.10008.1.2.4.90", b"1.2.840.10008.1.2.1.99",
    b"1.2.840.10008.5.1.4.1.1.2", b"1.2.840.10008.5.1.4.1.1.2.1", b"1.2.840.10008.5.1.4.1.1.4",
    b"1.2.840.10008.5.1.4.1.1.7", b"1.2.3", b"1.2.3\x00", b"CT", b"MR", b"LOCALIZER",
    b"ORIGINAL\\PRIMARY\\LOCALIZER", b"MONOCHROME1", b"RGB", b"PALETTE COLOR", b"ISO_IR 192",
    b"ISO 2022 IR 87", b"GB18030", b"BOGUS", b"20260230", b"00000000",
    b"\xfe\xff\x00\xe0\xff\xff\xff\xff", b"\xfe\xff\xdd\xe0\x00\x00\x00\x00",
    b"1e308\\1e308\\1e308", b"-1e300\\0\\1e300", b"1e-320\\1e-320", b"1e30\\1e-30", b"1e30", b"1e-30",
    b"0\\0\\1e-9", b"1\\0\\0\\0\\0.99999\\0.0045",
)

#: VRs a mutation may give an element (some valid elsewhere, some no VR at all).
VRS: tuple[bytes, ...] = (b"US", b"SS", b"UL", b"SL", b"FL", b"FD", b"DS", b"IS", b"UI", b"CS",
                          b"LO", b"SH", b"DA", b"SQ", b"OB", b"OW", b"UN", b"UT", b"AT", b"XX",
                          b"\x00\x00")

#: Shapes of the base series.
BASES: tuple[str, ...] = ("plain2", "plain3", "plain4", "rle2", "enhanced3")


@dataclass(frozen=True)
class Element:
    """One encoded data element: tag, VR, value bytes (an undefined-length value keeps its items
    and its delimiter), and an optional lie about its length. Immutable, so the mutated copies
    of a file share (and encode once) every element they leave alone."""

    tag: int
    vr: bytes
    value: bytes
    undefined: bool = False
    length_lie: int | None = None

    @cached_property
    def encoded(self) -> bytes:
        length = (_UNDEFINED if self.undefined else len(self.value)) if self.length_lie is None \
            else self.length_lie
        head = struct.pack("<HH", self.tag >> 16, self.tag & 0xFFFF) + self.vr
        if self.vr in _LONG_VRS:
            head += struct.pack("<HI", 0, length & 0xFFFFFFFF)
        else:
            head += struct.pack("<H", length & 0xFFFF)
        return head + self.value


@dataclass
class EncodedFile:
    """A DICOM file as a preamble and a list of elements (file meta and data set alike)."""

    elements: list[Element]
    preamble: bytes = b"\0" * 128 + b"DICM"
    fix_group_length: bool = True
    cut: float | None = None
    flips: list[tuple[float, int]] = field(default_factory=list)

    def encode(self) -> bytes:
        elements = self.elements
        if self.fix_group_length:
            meta_len = sum(len(e.encoded) for e in elements
                           if e.tag >> 16 == 2 and e.tag != 0x00020000)
            elements = [replace(e, value=struct.pack("<I", meta_len))
                        if e.tag == 0x00020000 and e.vr == b"UL" else e for e in elements]
        data = bytearray(self.preamble + b"".join(e.encoded for e in elements))
        for where, xor in self.flips:
            if data:
                data[int(where * (len(data) - 1))] ^= xor or 1
        if self.cut is not None:
            data = data[: int(self.cut * len(data))]
        return bytes(data)


def _read_header(buf: bytes, pos: int) -> tuple[int, bytes, int, int]:
    """``(tag, vr, length, value start)`` of the explicit-VR element at ``pos``."""
    group, elem = struct.unpack_from("<HH", buf, pos)
    tag = (group << 16) | elem
    if group == 0xFFFE:  # item and delimiters: no VR
        return tag, b"", struct.unpack_from("<I", buf, pos + 4)[0], pos + 8
    vr = buf[pos + 4:pos + 6]
    if vr in _LONG_VRS:
        return tag, vr, struct.unpack_from("<I", buf, pos + 8)[0], pos + 12
    return tag, vr, struct.unpack_from("<H", buf, pos + 6)[0], pos + 8


def _end_of_undefined(buf: bytes, pos: int, stop: int) -> int:
    """Offset just past the delimiter ``stop`` of an undefined-length value starting at ``pos``."""
    while True:
        tag, _, length, start = _read_header(buf, pos)
        if tag == stop:
            return start
        if length == _UNDEFINED:
            inner = _ITEM_END if tag == _ITEM else _SEQ_END
            pos = _end_of_undefined(buf, start, inner)
        else:
            pos = start + length


def parse(data: bytes) -> EncodedFile:
    """Split a little-endian explicit-VR Part 10 file into its top-level elements."""
    pos, out = 132, []
    while pos < len(data):
        tag, vr, length, start = _read_header(data, pos)
        if length == _UNDEFINED:
            end = _end_of_undefined(data, start, _SEQ_END)
            out.append(Element(tag, vr, data[start:end], undefined=True))
        else:
            end = start + length
            out.append(Element(tag, vr, data[start:end]))
        pos = end
    return EncodedFile(out, preamble=data[:132])


def _tag(keyword: str) -> int:
    return int(pydicom.datadict.tag_for_keyword(keyword))


def _vr(keyword: str) -> bytes:
    return pydicom.datadict.dictionary_VR(_tag(keyword)).split(" ")[0].encode()


def _to_bytes(ds: FileDataset) -> bytes:
    from io import BytesIO

    buf = BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def _enhanced_ct(stored: np.ndarray, uid: str) -> FileDataset:
    """One Enhanced CT file holding the frames ``stored`` (z, y, x), 2.5 mm apart."""
    ds = ct_slice(stored[0], (0.0, 0.0, 0.0), series_uid=uid)
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = EnhancedCTImageStorage
    for keyword in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing",
                    "SliceThickness", "RescaleIntercept", "RescaleSlope"):
        delattr(ds, keyword)
    ds.NumberOfFrames = len(stored)
    shared = Dataset()
    measures, orient, value = Dataset(), Dataset(), Dataset()
    measures.PixelSpacing, measures.SliceThickness = ["0.7", "0.8"], "2.5"
    orient.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    value.RescaleIntercept, value.RescaleSlope = "-1024", "1"
    shared.PixelMeasuresSequence = DicomSequence([measures])
    shared.PlaneOrientationSequence = DicomSequence([orient])
    shared.PixelValueTransformationSequence = DicomSequence([value])
    ds.SharedFunctionalGroupsSequence = DicomSequence([shared])
    frames = []
    for k in range(len(stored)):
        item, plane = Dataset(), Dataset()
        plane.ImagePositionPatient = [-50.0, -60.0, 10.0 + 2.5 * k]
        item.PlanePositionSequence = DicomSequence([plane])
        frames.append(item)
    ds.PerFrameFunctionalGroupsSequence = DicomSequence(frames)
    ds.PixelData = stored.astype("<u2").tobytes()
    return ds


@cache
def base_series(name: str) -> tuple[bytes, ...]:
    """The files of base series ``name`` (one of :data:`BASES`) as bytes; always the same."""
    rng = np.random.default_rng(sum(name.encode()))
    n = int(name[-1])
    stored = rng.integers(0, 2000, size=(n, 16, 16)).astype(np.uint16)
    uid = f"1.2.826.0.1.3680043.8.498.37.{sum(name.encode())}"
    if name.startswith("enhanced"):
        return (_to_bytes(_enhanced_ct(stored, uid)),)
    out = []
    for k in range(n):
        ds = ct_slice(stored[k], (-50.0, -60.0, 10.0 + 2.5 * k), series_uid=uid, instance=k + 1)
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"{uid}.{k + 1}"
        if name.startswith("rle"):
            ds.compress(RLELossless, stored[k])
        out.append(_to_bytes(ds))
    return tuple(out)


#: A mutation: ``(operation, file index, element keyword, choice, fraction)``; the file index is
#: taken modulo the number of files, ``choice`` picks from :data:`VALUES` or :data:`VRS`.
Mutation = tuple[str, int, str, int, float]
OPERATIONS: tuple[str, ...] = ("delete", "empty", "value", "vr", "add", "length", "duplicate",
                               "swap", "cut", "flip", "same_uid", "same_position", "copy_file",
                               "drop_file")


def series_from_code(code: bytes) -> tuple[str, list[Mutation]]:
    """A base and its mutations from bytes: the first byte picks the base, each following five
    bytes one mutation (operation, file, element, value or VR, fraction).

    Random bytes give random series, and shorter or smaller bytes give simpler ones, which is
    what a shrinking property-based test needs.
    """
    base = BASES[code[0] % len(BASES)] if code else BASES[0]
    mutations = [(OPERATIONS[b[0] % len(OPERATIONS)], b[1] % 4, TARGETS[b[2] % len(TARGETS)],
                  b[3], b[4] / 255)
                 for b in (code[i:i + 5] for i in range(1, len(code) - 4, 5))]
    return base, mutations


def _find(elements: list[Element], tag: int) -> int | None:
    return next((i for i, e in enumerate(elements) if e.tag == tag), None)


def _insert(elements: list[Element], new: Element) -> None:
    at = next((i for i, e in enumerate(elements) if e.tag > new.tag), len(elements))
    elements.insert(at, new)


def _copy_value(src: EncodedFile, dst: EncodedFile, keyword: str) -> None:
    i, j = _find(src.elements, _tag(keyword)), _find(dst.elements, _tag(keyword))
    if i is not None and j is not None:
        dst.elements[j] = src.elements[i]


def _apply(files: list[EncodedFile], m: Mutation) -> None:
    op, index, keyword, choice, frac = m
    if not files:
        return
    f = files[index % len(files)]
    tag = _tag(keyword)
    i = _find(f.elements, tag)
    if op == "cut":
        f.cut = frac
    elif op == "flip":
        f.flips.append((frac, choice % 255 + 1))
    elif op == "same_uid":
        _copy_value(files[0], f, "SOPInstanceUID")
    elif op == "same_position":
        _copy_value(files[0], f, "ImagePositionPatient")
    elif op == "copy_file":
        files[index % len(files)] = EncodedFile(list(files[0].elements))
    elif op == "drop_file":
        if len(files) > 1:
            files.pop(index % len(files))
    elif op == "add":
        if i is None:
            _insert(f.elements, Element(tag, _vr(keyword), VALUES[choice % len(VALUES)]))
        else:
            f.elements[i] = replace(f.elements[i], value=VALUES[choice % len(VALUES)])
    elif i is None:
        return
    elif op == "delete":
        del f.elements[i]
    elif op == "empty":
        f.elements[i] = Element(tag, f.elements[i].vr, b"")
    elif op == "value":
        f.elements[i] = Element(tag, f.elements[i].vr, VALUES[choice % len(VALUES)])
    elif op == "vr":
        f.elements[i] = replace(f.elements[i], vr=VRS[choice % len(VRS)])
    elif op == "length":
        lie = int(frac * 2 * len(f.elements[i].value)) + choice - 30
        f.elements[i] = replace(f.elements[i], length_lie=lie)
    elif op == "duplicate":
        f.elements.insert(i, f.elements[i])
    elif op == "swap":
        j = int(frac * (len(f.elements) - 1))
        f.elements[i], f.elements[j] = f.elements[j], f.elements[i]
    if tag == 0x00020000:
        f.fix_group_length = False


@cache
def _parsed(base: str) -> tuple[EncodedFile, ...]:
    return tuple(parse(b) for b in base_series(base))


def mutated_series(base: str, mutations: Sequence[Mutation]) -> list[bytes]:
    """The files of ``base`` after ``mutations``, in order, as bytes."""
    files = [EncodedFile(list(f.elements), f.preamble) for f in _parsed(base)]
    for m in mutations:
        _apply(files, m)
    return [f.encode() for f in files]


def scratch_root() -> str | None:
    """A folder in memory (``/dev/shm``) for the many small files of a fuzz run, when there is
    one; ``None`` (the default temporary folder) otherwise."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


def write_files(folder: Path, contents: Sequence[bytes]) -> list[Path]:
    """Write ``contents`` as ``folder/IM0``, ``IM1``..., removing files left from a previous call."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"IM{k}" for k in range(len(contents))]
    for p, data in zip(paths, contents, strict=True):
        p.write_bytes(data)
    for old in folder.iterdir():
        if old not in paths:
            old.unlink()
    return paths


def load_checked(folder: Path) -> tuple[int, list[str]]:
    """What ``recist info`` and ``recist convert`` do with ``folder`` (scan, then every stack to
    a volume), checking what comes out.

    Returns
    -------
    n_volumes : int
    skip_reasons : list of str

    Raises
    ------
    RecistToolError
        The only kind of exception the loader may raise on hostile input.
    AssertionError, RuntimeWarning
        When a volume holds non-finite values or geometry, or numpy warned on the way (an
        overflow there puts garbage into a volume): loader bugs, as much as a crash is.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with open_source(folder) as src:
            result = scan_files(src, workers=1)
            result.to_dict()
            for stack in result.stacks:
                vol = stack_to_volume(stack, workers=1)
                assert vol.array.shape[0] == len(stack.frames) >= 2, "not a volume"
                assert np.isfinite(vol.array).all(), "non-finite voxel values"
                corners = vol.index_to_lps([[0, 0, 0], [n - 1 for n in vol.shape]])
                assert np.isfinite(corners).all() and (vol.slice_gaps > 0).all(), "bad geometry"
                assert (vol.voxel_volume_ml() > 0).all(), "voxels without volume"
    return len(result.stacks), [k.reason for k in result.skipped]


def outcome(folder: Path, contents: Sequence[bytes],
            load: Callable[[Path], tuple[int, list[str]]] = load_checked) -> str:
    """``"volumes:N"`` or ``"error:ClassName"`` for a project error; anything else propagates."""
    write_files(folder, contents)
    try:
        n, _ = load(folder)
    except RecistToolError as exc:
        return f"error:{type(exc).__name__}"
    return f"volumes:{n}"
