"""Read what the loader needs from each DICOM file, and say why a file is not a CT slice.

One :class:`FrameHeader` is produced per image frame (one per file for classic CT, one per frame
of an Enhanced CT multi-frame object). A file that cannot be part of a CT volume gives a
:class:`Skipped` record with a stable reason code instead. Header values that would make the
loader allocate memory (Rows, Columns, NumberOfFrames, PixelData length) are checked here,
before any pixel is read.
"""

from __future__ import annotations

import io
import math
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.config import disable_value_validation
from pydicom.dataelem import RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.tag import BaseTag
from pydicom.uid import UID

#: Largest Rows or Columns accepted (pixels).
MAX_MATRIX = 8192
#: Largest number of frames accepted in one file.
MAX_FRAMES = 20000
#: Largest |RescaleSlope| and |RescaleIntercept| accepted: beyond them stored values map to no CT
#: number (and would overflow the float32 volume).
MAX_RESCALE_SLOPE = 1e4
MAX_RESCALE_INTERCEPT = 1e6
#: Accepted PixelSpacing (mm) and |ImagePositionPatient| (mm): a grid a volume can be built on.
MIN_SPACING_MM, MAX_SPACING_MM = 1e-4, 1e3
MAX_POSITION_MM = 1e6

_UNCOMPRESSED = {
    pydicom.uid.ImplicitVRLittleEndian,
    pydicom.uid.ExplicitVRLittleEndian,
}

# SOP classes that are never CT slices, by reason code.
_SOP_REASONS: dict[str, tuple[str, str]] = {
    "1.2.840.10008.1.3.10": ("DICOMDIR", "media storage directory"),
    "1.2.840.10008.5.1.4.1.1.66.4": ("SEGMENTATION", "DICOM SEG object"),
    "1.2.840.10008.5.1.4.1.1.66": ("NOT_AN_IMAGE", "raw data object"),
}
_SOP_PREFIX_REASONS: list[tuple[str, str, str]] = [
    ("1.2.840.10008.5.1.4.1.1.7", "SECONDARY_CAPTURE", "Secondary Capture image"),
    ("1.2.840.10008.5.1.4.1.1.88.", "STRUCTURED_REPORT", "structured report"),
    ("1.2.840.10008.5.1.4.1.1.481.", "RT_OBJECT", "radiotherapy object"),
    ("1.2.840.10008.5.1.4.1.1.11.", "PRESENTATION_STATE", "presentation state"),
    ("1.2.840.10008.5.1.4.1.1.104.", "ENCAPSULATED_DOCUMENT", "encapsulated document"),
]
_CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
_ENHANCED_CT = "1.2.840.10008.5.1.4.1.1.2.1"
_LEGACY_ENHANCED_CT = "1.2.840.10008.5.1.4.1.1.2.2"


@dataclass(frozen=True)
class Skipped:
    """A file (or archive member) that is not part of any CT volume, and why.

    Attributes
    ----------
    path : str
    reason : str
        A stable reason code (README, ``recist info``).
    detail : str
    series_uid : str or None
        The CT series the object claimed to belong to, when it was read that far and was not
        marked as something else than a slice (a localizer, a DICOMDIR): a volume built from the
        rest of that series reports it (``DROPPED_SLICES``). For a whole series that could not
        be built, the series itself.
    """

    path: str
    reason: str
    detail: str
    series_uid: str | None = None


@dataclass(frozen=True, eq=False)
class FrameHeader:
    """Everything the loader needs about one image frame; no pixel data."""

    path: Path
    frame: int | None
    n_frames: int
    sop_instance_uid: str
    sop_class_uid: str
    modality: str
    image_type: tuple[str, ...]
    patient_id: str | None
    study_uid: str | None
    series_uid: str
    frame_of_reference_uid: str | None
    study_date: str | None
    series_description: str | None
    series_number: int | None
    acquisition_number: int | None
    instance_number: int | None
    position: np.ndarray
    orientation: np.ndarray
    pixel_spacing: tuple[float, float]
    rows: int
    columns: int
    slice_thickness: float | None
    slope: float
    intercept: float
    bits_allocated: int
    bits_stored: int
    pixel_representation: int
    transfer_syntax: str
    pixel_offset: int | None
    kernel: str | None
    contrast: str | None
    manufacturer: str | None
    gantry_tilt: float | None

    @property
    def uncompressed(self) -> bool:
        """True when the pixels can be read straight from the file at :attr:`pixel_offset`."""
        return self.pixel_offset is not None


def _iso_date(value: object) -> str | None:
    s = str(value or "").strip()
    if len(s) == 8 and s.isdigit():
        return f"{s[:4]}-{s[4:6]}-{s[6:]}"
    return s or None


def _float(value: object, default: float | None = None) -> float | None:
    try:
        if value is None or value == "":
            return default
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default


def _int(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


def _str(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, pydicom.multival.MultiValue):
        value = "\\".join(str(v) for v in value)
    s = str(value).strip()
    return s or None


# Converted values of the elements read here, keyed by their raw bytes (and the character set,
# for text). Most header values repeat across the slices of a series, and pydicom's per-element
# conversion would otherwise dominate header reading.
_CACHEABLE_VR = {"US", "SS", "UL", "SL", "DS", "IS", "UI", "CS", "DA", "TM", "FD", "FL"}
_CACHEABLE_TEXT_VR = {"LO", "SH"}
_VALUE_CACHE: dict[tuple, Any] = {}
_TAG_OF: dict[str, BaseTag] = {}


def _tag(keyword: str) -> BaseTag:
    """The tag of a dictionary keyword, looked up once (``BaseTag`` is pydicom's fast path)."""
    tag = _TAG_OF.get(keyword)
    if tag is None:
        tag = _TAG_OF[keyword] = BaseTag(pydicom.datadict.tag_for_keyword(keyword) or 0)
    return tag


def _has(ds: Dataset, keyword: str) -> bool:
    """``keyword in ds`` without reading a deferred value."""
    return ds.get_item(_tag(keyword), keep_deferred=True) is not None


def _cache_key(ds: Dataset, keyword: str, raw: RawDataElement) -> tuple | None:
    """What the converted value of the not yet converted ``raw`` depends on, or ``None``."""
    value = raw.value
    if not isinstance(value, bytes) or len(value) > 256:
        return None
    vr = raw.VR or pydicom.datadict.dictionary_VR(raw.tag)
    if vr in _CACHEABLE_VR:
        return keyword, vr, raw.is_little_endian, value
    if vr in _CACHEABLE_TEXT_VR:
        charset = ds.original_character_set
        return keyword, vr, value, charset if isinstance(charset, str) else tuple(charset)
    return None


def _get(ds: Dataset, keyword: str) -> Any:
    """``ds.get(keyword)`` with conversions of repeated raw values cached across files."""
    tag = _tag(keyword)
    raw = ds.get_item(tag, keep_deferred=True)
    if raw is None:
        return None
    key = _cache_key(ds, keyword, raw) if isinstance(raw, RawDataElement) else None
    if key is None:
        return ds[tag].value
    try:
        return _VALUE_CACHE[key]
    except KeyError:
        if len(_VALUE_CACHE) > 100_000:
            _VALUE_CACHE.clear()
        # What ``ds[tag]`` does, without putting the converted element back into ``ds``.
        elem = convert_raw_data_element(raw, encoding=ds.original_character_set, ds=ds)
        conv = _VALUE_CACHE[key] = elem.value
        return conv


def _fg_item(ds: Dataset, frame: int, seq: str) -> Dataset | None:
    """Functional-group item ``seq`` for ``frame``: per-frame first, then shared."""
    for groups, idx in (("PerFrameFunctionalGroupsSequence", frame),
                        ("SharedFunctionalGroupsSequence", 0)):
        g = ds.get(groups)
        if g is not None and len(g) > idx:
            item = g[idx].get(seq)
            if item is not None and len(item) > 0:
                return item[0]
    return None


def _classify(ds: Dataset) -> tuple[str, str] | None:
    sop = str(_get(ds, "SOPClassUID") or getattr(ds.file_meta, "MediaStorageSOPClassUID", ""))
    if sop in _SOP_REASONS:
        return _SOP_REASONS[sop]
    for prefix, code, text in _SOP_PREFIX_REASONS:
        if sop.startswith(prefix):
            return code, text
    modality = str(_get(ds, "Modality") or "").upper()
    if modality != "CT":
        return "NOT_CT", f"modality {modality or 'missing'}"
    if sop and sop not in (_CT_IMAGE, _ENHANCED_CT, _LEGACY_ENHANCED_CT):
        return "NOT_AN_IMAGE", f"SOP class {UID(sop).name}"
    image_type = [str(v).strip().upper() for v in (_get(ds, "ImageType") or [])]
    if "LOCALIZER" in image_type:
        return "LOCALIZER", "ImageType says LOCALIZER"
    if not _has(ds, "PixelData"):
        return "NO_PIXEL_DATA", "no PixelData"
    return None


def _checked_plane(
    pos: Any, iop: Any, spacing: Any
) -> tuple[np.ndarray, np.ndarray, tuple[float, float]] | str:
    """ImagePositionPatient, ImageOrientationPatient and PixelSpacing as floats.

    Returns
    -------
    tuple or str
        ``(position (3,), orientation (6,), (row spacing, column spacing))``, or why the values
        are unusable. Plain floats and :mod:`math` here: numpy calls on 3-vectors cost more than
        the arithmetic, once per slice.
    """
    try:
        p = tuple(float(v) for v in pos)
        o = tuple(float(v) for v in iop)
        sp = (float(spacing[0]), float(spacing[1]))
    except (TypeError, ValueError, IndexError):
        return "unreadable position, orientation or spacing"
    if len(p) != 3 or len(o) != 6 or not all(map(math.isfinite, p + o + sp)) \
            or not MIN_SPACING_MM <= min(sp) <= max(sp) <= MAX_SPACING_MM \
            or max(map(abs, p)) > MAX_POSITION_MM:
        return "invalid position, orientation or spacing values"
    r, c = o[:3], o[3:]
    if abs(math.hypot(*r) - 1) > 0.01 or abs(math.hypot(*c) - 1) > 0.01 \
            or abs(r[0] * c[0] + r[1] * c[1] + r[2] * c[2]) > 0.01:
        return "ImageOrientationPatient is not two unit vectors"
    return np.array(p), np.array(o), sp


#: Bytes of a file in memory parsed first for its headers (:func:`read_frame_headers` with
#: ``data``), and what :func:`read_head_headers` is given: a CT slice's data set up to its pixel
#: data is 1-10 KB.
HEAD_BYTES = 16 << 10


def _head_dataset(head: memoryview, size: int) -> Dataset | None:
    """The data set of a Part 10 file of ``size`` bytes parsed from its first bytes ``head`` (as
    ``dcmread(path, defer_size=4096)`` reads it), when they hold every element before the pixel
    data and the pixel data ends the file; else None (the file is to be parsed whole)."""
    try:
        ds = pydicom.dcmread(io.BytesIO(head), defer_size=4096)
    except Exception:  # noqa: BLE001 - cut inside an element: parsed whole by the caller
        return None
    raw = ds.get_item(0x7FE00010, keep_deferred=True)
    tell, length = getattr(raw, "value_tell", None), getattr(raw, "length", None)
    if isinstance(raw, RawDataElement) and tell is not None and length is not None \
            and tell <= len(head) and tell + length == size:
        return ds
    return None


def _dataset_in_memory(view: memoryview) -> Dataset:
    """The data set of a Part 10 file in memory: its first :data:`HEAD_BYTES` parsed alone where
    they suffice (:func:`_head_dataset`; the pixel data need not be copied), else the whole."""
    ds = _head_dataset(view[:HEAD_BYTES], len(view)) if len(view) > HEAD_BYTES else None
    return ds if ds is not None else pydicom.dcmread(io.BytesIO(view), defer_size=4096)


def read_frame_headers(path: Path, data: bytes | bytearray | memoryview | None = None
                       ) -> list[FrameHeader] | Skipped:
    """Read one file's headers.

    Parameters
    ----------
    path : Path
    data : bytes-like, optional
        The file's bytes, already in memory (an instance received from a PACS before or while
        it is written to ``path``): read from there, not from the file; the result is the same.

    Returns
    -------
    list of FrameHeader or Skipped
        The frames of a CT image file, or why the file is not one.
    """
    name = str(path)
    if data is not None:
        view = memoryview(data).cast("B")
        return _read_dataset(path, len(view), lambda: _dataset_in_memory(view))
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        return Skipped(name, "UNREADABLE", f"cannot open ({exc.strerror})")
    return _read_dataset(path, size, lambda: pydicom.dcmread(path, defer_size=4096))


def read_head_headers(path: Path, head: bytes | bytearray | memoryview, size: int
                      ) -> list[FrameHeader] | Skipped | None:
    """Read one file's headers from its first bytes (as :func:`read_frame_headers` reads the
    file), or None when they do not hold them.

    Parameters
    ----------
    path : Path
    head : bytes-like
        The first bytes of the file (all of them for a file of up to that many bytes).
    size : int
        The file's length in bytes.

    Returns
    -------
    list of FrameHeader, Skipped or None
        None when ``head`` is shorter than the file and does not hold every element before the
        pixel data, or the pixel data does not end the file: the file is to be read whole.
    """
    view = memoryview(head).cast("B")
    if len(view) >= size:
        return read_frame_headers(path, view[:size])
    with _lenient_reading():
        ds = _head_dataset(view, size)
    if ds is None:
        return None
    return _read_dataset(path, size, lambda: ds)


def _read_dataset(path: Path, size: int, dataset: Callable[[], Dataset]
                  ) -> list[FrameHeader] | Skipped:
    """The frames of the data set ``dataset()`` gives for the file ``path`` of ``size`` bytes, or
    why it is not a CT image file (its parse's or its values' errors included)."""
    name = str(path)
    if size == 0:
        return Skipped(name, "NOT_DICOM", "empty file")
    with _lenient_reading():
        try:
            ds = dataset()
        except InvalidDicomError:
            return Skipped(name, "NOT_DICOM", "not a DICOM file")
        except Exception as exc:  # pydicom raises many types on damaged data
            return Skipped(name, "UNREADABLE",
                           f"damaged DICOM header ({type(exc).__name__}: {exc})")
        try:
            return _frames_from_dataset(path, ds, size)
        except Exception as exc:  # malformed values inside a parsed header
            return Skipped(name, "UNREADABLE",
                           f"malformed header value ({type(exc).__name__}: {exc})",
                           _series_uid(ds, path))


@contextmanager
def _lenient_reading() -> Iterator[None]:
    """pydicom without value validation or warnings: the values used are checked here.

    With pydicom's default validation (warn), an invalid value only gives a warning, which was
    ignored anyway; turning validation off gives the same values, and converts them about a
    third faster.
    """
    with warnings.catch_warnings(), disable_value_validation():
        warnings.simplefilter("ignore")  # invalid VRs etc.
        yield


def _series_uid(ds: Dataset, path: Path) -> str | None:
    """The SeriesInstanceUID frames of ``ds`` get (a stand-in per folder when it is absent), or
    ``None`` when the value cannot be read at all."""
    try:
        return _str(_get(ds, "SeriesInstanceUID")) or f"no-series-uid:{path.parent}"
    except Exception:  # a value pydicom cannot convert: the file is reported as unreadable
        return None


def _transfer_syntax(ds: Dataset) -> str | None:
    """The transfer syntax of ``ds``: its file meta value, else the encoding pydicom read the
    data set in; ``None`` when the file names something that is not a transfer syntax."""
    ts = ds.file_meta.get("TransferSyntaxUID")
    if ts is None:
        implicit, little = ds.original_encoding
        if little:
            return pydicom.uid.ImplicitVRLittleEndian if implicit else pydicom.uid.ExplicitVRLittleEndian
        return None if implicit else pydicom.uid.ExplicitVRBigEndian
    uid = UID(str(ts).strip())
    return str(uid) if uid.is_transfer_syntax else None


def _frames_from_dataset(path: Path, ds: Dataset, size: int) -> list[FrameHeader] | Skipped:
    name = str(path)
    series = _series_uid(ds, path)
    why = _classify(ds)
    if why is not None:
        # Objects marked as something else than a slice are not lost slices of their series.
        return Skipped(name, *why, None if why[0] in ("LOCALIZER", "DICOMDIR") else series)

    def skip(reason: str, detail: str) -> Skipped:
        return Skipped(name, reason, detail, series)

    rows, cols = _int(_get(ds, "Rows")), _int(_get(ds, "Columns"))
    n_frames = _int(_get(ds, "NumberOfFrames")) or 1
    if not rows or not cols or not (0 < rows <= MAX_MATRIX and 0 < cols <= MAX_MATRIX):
        return skip("BAD_HEADER", f"implausible matrix Rows={rows} Columns={cols}")
    if not 0 < n_frames <= MAX_FRAMES:
        return skip("BAD_HEADER", f"implausible NumberOfFrames={n_frames}")
    spp = _int(_get(ds, "SamplesPerPixel")) or 1
    if spp != 1:
        return skip("NOT_GRAYSCALE", f"SamplesPerPixel={spp}")
    photometric = _str(_get(ds, "PhotometricInterpretation"))
    if photometric is not None and photometric.upper() not in ("MONOCHROME1", "MONOCHROME2"):
        return skip("NOT_GRAYSCALE", f"PhotometricInterpretation {photometric}")
    bits_alloc = _int(_get(ds, "BitsAllocated")) or 0
    if bits_alloc not in (8, 16, 32):
        return skip("BAD_HEADER", f"unsupported BitsAllocated={bits_alloc}")
    bits_stored = _int(_get(ds, "BitsStored")) or bits_alloc
    if not 0 < bits_stored <= bits_alloc:
        return skip("BAD_HEADER", f"BitsStored={bits_stored} > BitsAllocated")
    pix_rep = _int(_get(ds, "PixelRepresentation")) or 0

    tsyntax = _transfer_syntax(ds)
    if tsyntax is None:
        return skip("BAD_HEADER", f"TransferSyntaxUID {str(ds.file_meta.get('TransferSyntaxUID'))!r} "
                    "is not a transfer syntax")
    raw = ds.get_item(0x7FE00010, keep_deferred=True)
    pixel_offset: int | None = None
    frame_bytes = rows * cols * (bits_alloc // 8)
    expected = frame_bytes * n_frames
    if tsyntax in _UNCOMPRESSED:
        length = getattr(raw, "length", None)
        tell = getattr(raw, "value_tell", None)
        if length is None or tell is None:
            length = len(ds.PixelData)
            tell = None
        described = f"{n_frames}×{rows}×{cols}×{bits_alloc} bits"
        if length < expected:
            return skip("TRUNCATED", f"PixelData holds {length} bytes, {expected} expected for "
                        f"{described}")
        if length - expected >= frame_bytes:
            # A whole frame too many: BitsAllocated, the matrix or NumberOfFrames is wrong, and
            # reading the first bytes would give another image than the one stored.
            return skip("BAD_HEADER", f"PixelData holds {length} bytes, the header describes "
                        f"{expected} ({described})")
        if tell is not None:
            if tell + expected > size:
                return skip("TRUNCATED",
                            f"file ends {tell + expected - size} bytes before its pixel data")
            pixel_offset = int(tell)

    frames: Sequence[int | None]
    if n_frames > 1 or _has(ds, "PerFrameFunctionalGroupsSequence"):
        frames = range(n_frames)
    else:
        frames = [None]

    out: list[FrameHeader] = []
    for f in frames:
        if f is None:
            pos, iop = _get(ds, "ImagePositionPatient"), _get(ds, "ImageOrientationPatient")
            spacing, thick = _get(ds, "PixelSpacing"), _get(ds, "SliceThickness")
            slope, intercept = _get(ds, "RescaleSlope"), _get(ds, "RescaleIntercept")
        else:
            pp = _fg_item(ds, f, "PlanePositionSequence")
            po = _fg_item(ds, f, "PlaneOrientationSequence")
            pm = _fg_item(ds, f, "PixelMeasuresSequence")
            pv = _fg_item(ds, f, "PixelValueTransformationSequence")
            pos = pp.get("ImagePositionPatient") if pp else _get(ds, "ImagePositionPatient")
            iop = po.get("ImageOrientationPatient") if po else _get(ds, "ImageOrientationPatient")
            spacing = pm.get("PixelSpacing") if pm else _get(ds, "PixelSpacing")
            thick = pm.get("SliceThickness") if pm else _get(ds, "SliceThickness")
            slope = pv.get("RescaleSlope") if pv else _get(ds, "RescaleSlope")
            intercept = pv.get("RescaleIntercept") if pv else _get(ds, "RescaleIntercept")
        if pos is None or iop is None or spacing is None:
            return skip("NO_GEOMETRY",
                        "missing ImagePositionPatient, ImageOrientationPatient or PixelSpacing")
        plane = _checked_plane(pos, iop, spacing)
        if isinstance(plane, str):
            return skip("NO_GEOMETRY", plane)
        pos_a, iop_a, sp = plane
        slope_v = _float(slope) or 1.0  # absent or 0 (invalid) means identity
        intercept_v = _float(intercept, 0.0) or 0.0
        if not (abs(slope_v) <= MAX_RESCALE_SLOPE and abs(intercept_v) <= MAX_RESCALE_INTERCEPT):
            return skip("BAD_HEADER", f"implausible RescaleSlope {slope_v} or RescaleIntercept "
                        f"{intercept_v}")
        out.append(FrameHeader(
            path=path, frame=f, n_frames=n_frames,
            sop_instance_uid=str(_get(ds, "SOPInstanceUID") or ""),
            sop_class_uid=str(_get(ds, "SOPClassUID") or ""),
            modality="CT",
            image_type=tuple(str(v).strip().upper() for v in (_get(ds, "ImageType") or [])),
            patient_id=_str(_get(ds, "PatientID")),
            study_uid=_str(_get(ds, "StudyInstanceUID")),
            series_uid=series or f"no-series-uid:{path.parent}",
            frame_of_reference_uid=_str(_get(ds, "FrameOfReferenceUID")),
            study_date=_iso_date(_get(ds, "StudyDate") or _get(ds, "SeriesDate")),
            series_description=_str(_get(ds, "SeriesDescription")),
            series_number=_int(_get(ds, "SeriesNumber")),
            acquisition_number=_int(_get(ds, "AcquisitionNumber")),
            instance_number=_int(_get(ds, "InstanceNumber")),
            position=pos_a, orientation=iop_a, pixel_spacing=sp,
            rows=rows, columns=cols,
            slice_thickness=_float(thick),
            slope=slope_v, intercept=float(intercept_v),
            bits_allocated=bits_alloc, bits_stored=bits_stored, pixel_representation=pix_rep,
            transfer_syntax=tsyntax,
            pixel_offset=(pixel_offset + (f or 0) * rows * cols * (bits_alloc // 8)
                          if pixel_offset is not None else None),
            kernel=_str(_get(ds, "ConvolutionKernel")),
            contrast=_str(_get(ds, "ContrastBolusAgent")),
            manufacturer=_str(_get(ds, "Manufacturer")),
            gantry_tilt=_float(_get(ds, "GantryDetectorTilt")),
        ))
    return out
