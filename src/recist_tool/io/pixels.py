"""Read the pixels of a stack into one preallocated ``(z, y, x)`` array of Hounsfield units.

* Uncompressed little-endian slices are read straight from the file at the PixelData offset
  found while reading headers: no dataset is parsed twice, no intermediate copy of the volume.
  2-byte stored values are read into the int16 output slice itself and converted there.
* Compressed slices (JPEG 2000, JPEG-LS, JPEG lossless, RLE, deflated) are decoded by pydicom with
  the pylibjpeg plugins, in a pool of processes (the decoders hold the GIL, so threads do not help).
* Rescale slope/intercept are applied per frame (per-frame functional groups included). The
  result is ``int16`` when every slope is 1 and every intercept an integer and the values fit,
  ``float32`` otherwise.
"""

from __future__ import annotations

import os
import warnings
from collections import defaultdict

import numpy as np
import pydicom
from pydicom.uid import UID

from recist_tool.errors import DicomLoadError
from recist_tool.io.dicom_headers import FrameHeader

#: Use worker processes only when at least this many compressed files are to be decoded.
MIN_FILES_FOR_POOL = 8


def available_memory() -> int:
    """Bytes of memory available to this process (physical memory not in use), best effort."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1 << 62


def _stored_dtype(f: FrameHeader) -> np.dtype:
    kind = "i" if f.pixel_representation == 1 else "u"
    return np.dtype(f"<{kind}{f.bits_allocated // 8}")


def _fix_bits(arr: np.ndarray, f: FrameHeader) -> np.ndarray:
    """Keep only the BitsStored low bits of ``arr`` in place; sign-extend signed data."""
    if f.bits_stored >= f.bits_allocated:
        return arr
    shift = f.bits_allocated - f.bits_stored
    if f.pixel_representation == 1:
        arr <<= shift
        arr >>= shift
    else:
        arr &= np.array((1 << f.bits_stored) - 1, dtype=arr.dtype)
    return arr


def _read_exact(f: FrameHeader, out: np.ndarray) -> None:
    """Fill the contiguous array ``out`` with the bytes at the frame's PixelData offset."""
    buf = memoryview(out).cast("B")  # type: ignore[arg-type]  # ndarray is a buffer (typed from 3.12)
    try:
        with open(f.path, "rb", buffering=0) as fh:
            fh.seek(f.pixel_offset or 0)
            got = 0
            while got < len(buf):
                n = fh.readinto(buf[got:])
                if not n:
                    raise DicomLoadError(f"{f.path}: pixel data is truncated")
                got += n
    except OSError as exc:
        raise DicomLoadError(f"{f.path}: cannot read pixel data ({exc})") from None


def output_dtype(frames: list[FrameHeader]) -> np.dtype:
    """``int16`` when the rescale keeps integers (slope 1, integer intercept), else ``float32``."""
    if all(f.slope == 1.0 and float(f.intercept).is_integer() for f in frames):
        return np.dtype(np.int16)
    return np.dtype(np.float32)


def _decoder_failed(exc: BaseException) -> bool:
    """True for what a decoder raises on damaged data: any ``Exception``, and the panics of the
    Rust decoders (pyo3's ``PanicException`` derives from ``BaseException``)."""
    return isinstance(exc, Exception) or type(exc).__name__ == "PanicException"


def _decode_file(path: str, frames: list[int | None], transfer_syntax: str) -> list[np.ndarray]:
    """Decode the requested frames of one file to stored values (runs in worker processes).

    ``transfer_syntax`` is the one the header reader validated (it names the codec in errors).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path)
    except Exception as exc:
        raise DicomLoadError(f"{path}: cannot read ({type(exc).__name__}: {exc})") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            arr = ds.pixel_array
    except BaseException as exc:
        if not _decoder_failed(exc):
            raise
        raise DicomLoadError(
            f"{path}: cannot decode pixel data ({UID(transfer_syntax).name}): "
            f"{type(exc).__name__}: {exc}") from None
    if arr.ndim == 2:
        arr = arr[None]
    if max(f or 0 for f in frames) >= arr.shape[0]:
        raise DicomLoadError(f"{path}: {arr.shape[0]} frame(s) decoded, the header describes "
                             f"{max(f or 0 for f in frames) + 1}")
    arr = _j2k_signedness(ds, arr)
    return [np.ascontiguousarray(arr[f or 0]) for f in frames]


def _j2k_signedness(ds: pydicom.Dataset, arr: np.ndarray) -> np.ndarray:
    """Read a JPEG 2000 frame as signed when its codestream says signed.

    Some encoders (seen on Toshiba CT) write a signed codestream with PixelRepresentation 0, or
    the reverse. pydicom follows PixelRepresentation; CT padding of -2048 then reads as 63488.
    When either the header or the codestream says signed, the values are signed.
    """
    ts = ds.file_meta.get("TransferSyntaxUID")
    if ts is None or not str(ts).startswith("1.2.840.10008.1.2.4.9") or arr.dtype.kind != "u":
        return arr
    from pydicom.encaps import generate_frames
    from pydicom.pixels.utils import get_j2k_parameters

    try:
        first = next(generate_frames(ds.PixelData, number_of_frames=arr.shape[0]))
        params = get_j2k_parameters(first)
    except Exception:
        return arr
    if not params.get("is_signed"):
        return arr
    bits = arr.dtype.itemsize * 8
    precision = int(params.get("precision") or bits)
    signed = arr.astype(np.dtype(f"i{arr.dtype.itemsize}"))
    shift = bits - precision
    return (signed << shift) >> shift if shift else signed


def _stored_range(f: FrameHeader, dtype: np.dtype) -> tuple[int, int]:
    """Smallest and largest stored value the header allows (BitsStored, signedness)."""
    if dtype.kind == "i" or f.pixel_representation == 1:
        bits = min(f.bits_stored, dtype.itemsize * 8)
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    bits = f.bits_stored if f.bits_stored < dtype.itemsize * 8 else dtype.itemsize * 8
    return 0, (1 << bits) - 1


class _Writer:
    """Converts stored values to HU into the output array, upgrading int16 → float32 if needed."""

    def __init__(self, shape: tuple[int, int, int], dtype: np.dtype) -> None:
        self.out = np.empty(shape, dtype=dtype)

    def _fits_int16(self, stored: np.ndarray, f: FrameHeader) -> bool:
        """True when every ``stored + intercept`` lies in the int16 range (header, else data)."""
        lo, hi = _stored_range(f, stored.dtype)
        if not (-32768 <= lo + int(f.intercept) and hi + int(f.intercept) <= 32767):
            lo, hi = int(stored.min()), int(stored.max())  # the header allows more: look
        return -32768 <= lo + int(f.intercept) and hi + int(f.intercept) <= 32767

    def _to_float32(self, k: int, stored: np.ndarray, f: FrameHeader) -> None:
        self.out = self.out.astype(np.float32)
        self.out[k] = stored.astype(np.float32) * np.float32(f.slope) + np.float32(f.intercept)

    def put(self, k: int, stored: np.ndarray, f: FrameHeader) -> None:
        """Write the stored values of frame ``k`` (any integer dtype) as HU."""
        if stored.shape != self.out.shape[1:]:
            raise DicomLoadError(
                f"{f.path}: decoded image is {stored.shape}, header says {self.out.shape[1:]}")
        if self.out.dtype == np.int16:
            if self._fits_int16(stored, f):
                # int16 arithmetic wraps modulo 2**16, so the result is exact once it is known
                # to lie in range: no int32 temporary.
                dst = self.out[k]
                np.copyto(dst, stored, casting="unsafe")
                if f.intercept:
                    dst += np.int16(int(f.intercept))
                return
            self._to_float32(k, stored, f)
            return
        self.out[k] = stored.astype(np.float32) * np.float32(f.slope) + np.float32(f.intercept)

    def can_read_into(self, f: FrameHeader) -> bool:
        """True when frame ``f``'s raw bytes can be read straight into the int16 output.

        That is: uncompressed, 2 bytes a value, and this machine little-endian like the file.
        """
        stored = _stored_dtype(f)
        return (f.uncompressed and self.out.dtype == np.int16 and stored.isnative
                and stored.itemsize == self.out.dtype.itemsize)

    def read_into(self, k: int, f: FrameHeader) -> None:
        """Read frame ``k`` from its file into the output and convert it to HU in place.

        The 2-byte stored values land in the int16 output slice itself (viewed as their stored
        type); bits are fixed and the intercept added in place, which is exact by the same
        modulo-2**16 argument as :meth:`put`.
        """
        dst = self.out[k]
        stored = dst.view(_stored_dtype(f))
        _read_exact(f, stored)
        _fix_bits(stored, f)
        if self._fits_int16(stored, f):
            if f.intercept:
                dst += np.int16(int(f.intercept))
            return
        self._to_float32(k, stored, f)


def read_pixels(frames: list[FrameHeader], workers: int | None = None) -> np.ndarray:
    """Read the frames of one stack (already sorted) into a ``(z, y, x)`` HU array.

    Parameters
    ----------
    frames : list of FrameHeader
        Frames of one stack, all with the same Rows and Columns.
    workers : int, optional
        Processes for compressed data; default the number of CPUs. ``1`` decodes in-process.

    Raises
    ------
    DicomLoadError
        When a file cannot be read or decoded.
    """
    rows, cols = frames[0].rows, frames[0].columns
    dtype = output_dtype(frames)
    need = len(frames) * rows * cols * 4  # room for an int16 -> float32 upgrade
    if need > available_memory():
        raise DicomLoadError(
            f"{frames[0].path.parent}: {len(frames)} × {rows} × {cols} pixels need "
            f"{need / 2**30:.1f} GiB, more than the memory available")
    writer = _Writer((len(frames), rows, cols), dtype)
    to_decode: dict[str, list[tuple[int, FrameHeader]]] = defaultdict(list)
    count = rows * cols
    for k, f in enumerate(frames):
        if writer.can_read_into(f):
            writer.read_into(k, f)
        elif f.uncompressed:
            try:
                stored = np.fromfile(f.path, dtype=_stored_dtype(f), count=count,
                                     offset=f.pixel_offset or 0)
            except (OSError, ValueError) as exc:
                raise DicomLoadError(f"{f.path}: cannot read pixel data ({exc})") from None
            if stored.size != count:
                raise DicomLoadError(f"{f.path}: pixel data is truncated")
            writer.put(k, _fix_bits(stored, f).reshape(rows, cols), f)
        else:
            to_decode[str(f.path)].append((k, f))
    if to_decode:
        _decode_all(to_decode, writer, workers)
    return writer.out


def _decode_all(
    to_decode: dict[str, list[tuple[int, FrameHeader]]], writer: _Writer, workers: int | None
) -> None:
    paths = list(to_decode)
    n = workers if workers is not None else (os.cpu_count() or 1)
    n = max(1, min(n, len(paths)))
    if n == 1 or len(paths) < MIN_FILES_FOR_POOL:
        for p in paths:
            items = to_decode[p]
            arrays = _decode_file(p, [f.frame for _, f in items], items[0][1].transfer_syntax)
            for (k, f), arr in zip(items, arrays, strict=True):
                writer.put(k, arr, f)
        return
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    todo = iter(paths)
    with ProcessPoolExecutor(max_workers=n, mp_context=mp.get_context(method)) as pool:
        inflight: dict[Future, str] = {}

        def submit_next() -> None:
            p = next(todo, None)
            if p is not None:
                items = to_decode[p]
                inflight[pool.submit(_decode_file, p, [f.frame for _, f in items],
                                     items[0][1].transfer_syntax)] = p

        for _ in range(2 * n):  # a bounded number in flight keeps memory to a few slices
            submit_next()
        while inflight:
            done, _ = wait(inflight, return_when=FIRST_COMPLETED)
            for fut in done:
                p = inflight.pop(fut)
                for (k, f), arr in zip(to_decode[p], fut.result(), strict=True):
                    writer.put(k, arr, f)
                submit_next()


def pixel_difference(a: FrameHeader, b: FrameHeader) -> str | None:
    """How the images of two frames differ, or ``None`` when their HU values are the same.

    Used on two copies of one instance, so the comparison is of the values a volume would hold
    (a copy re-encoded with another transfer syntax is the same image).

    Returns
    -------
    str or None
        ``"different pixel data"``, or which copy could not be read and why.
    """
    images = []
    for f in (a, b):
        try:
            images.append(read_pixels([f], workers=1))
        except DicomLoadError as exc:
            return f"a copy that cannot be read ({exc})"
    return None if np.array_equal(images[0], images[1]) else "different pixel data"
