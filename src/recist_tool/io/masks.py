"""Load a lesion mask file (NIfTI / NRRD / MHA label map, or DICOM SEG) as a boolean Volume."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from recist_tool.errors import GeometryError, InputError, UsageError
from recist_tool.io.outputs import atomic_outputs, safe_output_path
from recist_tool.volume import Volume

#: Tolerance (mm) when checking that a mask file lies on the grid of its image.
GRID_TOLERANCE_MM = 0.05
#: A label map with more distinct values than this (or negative ones) is taken for an image.
MAX_LABELS = 255


def load_image_volume(path: str | os.PathLike[str]) -> Volume:
    """Read an image with the project loader (:func:`recist_tool.io.load_volume`)."""
    from recist_tool.io import load_volume

    p = Path(path)
    if not p.exists():
        raise InputError(f"no such file: {p}")
    return load_volume(p)


def _select_label(arr: np.ndarray, label: int | None, path: Path) -> np.ndarray:
    if label is not None:
        return arr == label
    values = np.unique(arr)
    if values.size > MAX_LABELS or (values.size and values[0] < 0):
        raise InputError(
            f"{path} does not look like a lesion mask (values {values[0]:g} to {values[-1]:g}); "
            "is it the image?"
        )
    values = values[values != 0]
    if values.size > 1:
        shown = ", ".join(str(v) for v in values[:10].tolist())
        raise UsageError(f"{path} holds several labels ({shown}); choose one with --label")
    return arr != 0


def load_mask(
    path: str | os.PathLike[str],
    image: Volume | None = None,
    label: int | None = None,
) -> Volume:
    """A lesion mask file as a boolean :class:`Volume`, on the image's grid when one is given.

    Parameters
    ----------
    path : path-like
        NIfTI, NRRD or MHA label map (read with ``recist_tool.io.load_volume``), or a DICOM SEG.
    image : Volume, optional
        The image the mask was drawn on. The mask is then measured with the image's exact
        geometry (slice positions of tilted or unevenly spaced DICOM stacks included); a label
        map must have the image's shape and lie on its grid.
    label : int, optional
        Label value (label maps) or segment number (SEG). Required when the file holds several.

    Returns
    -------
    Volume
        Boolean array (True = lesion).

    Raises
    ------
    InputError, GeometryError, UsageError
        Missing or unreadable file, a mask that does not lie on the image's grid, several
        labels without ``label``.
    """
    from recist_tool.io.seg import is_dicom_seg, list_segments, read_seg

    p = Path(path)
    if not p.exists():
        raise InputError(f"no such file: {p}")
    if p.is_file() and is_dicom_seg(p):
        if label is None and len(list_segments(p)) > 1:
            numbers = ", ".join(str(s.number) for s in list_segments(p))
            raise UsageError(f"{p} holds several segments ({numbers}); choose one with --label")
        vol = read_seg(p, segment_number=label, reference=image)
        return vol.with_array(vol.array > 0)
    vol = load_image_volume(p)
    mask = _select_label(np.asarray(vol.array), label, p)
    if image is None:
        return vol.with_array(mask)
    if vol.shape != image.shape:
        raise GeometryError(f"{p}: mask shape {vol.shape} differs from the image's {image.shape}")
    # same first slice (origin, orientation, pixel spacing) and same extent along the normal;
    # in-plane drift is not compared: label-map formats cannot store a tilted (sheared) stack
    corners = np.array([[0, 0, 0], [0, vol.shape[1] - 1, vol.shape[2] - 1]], float)
    tol = max(GRID_TOLERANCE_MM, 0.5 * min(image.spacing[1:]))
    if np.max(np.abs(vol.index_to_lps(corners) - image.index_to_lps(corners))) > tol:
        raise GeometryError(f"{p}: the mask does not lie on the image's grid")
    extent_mask = float(vol.slice_locations[-1])
    extent_image = float(image.slice_locations[-1])
    if abs(extent_mask - extent_image) > max(GRID_TOLERANCE_MM, 0.5 * image.spacing[0]):
        raise GeometryError(f"{p}: the mask's slices do not match the image's slices")
    return image.with_array(mask)


def save_mask(mask: Any, volume: Volume, path: str | os.PathLike[str],
              offset: Sequence[int] | None = None) -> tuple[Path, str]:
    """Write a lesion mask crop as a NIfTI label map with its exact patient geometry.

    The file holds only the crop around the lesion (uint8, 1 = lesion) with the geometry of that
    crop of ``volume`` (sheared stacks included), so it opens in any NIfTI viewer in the right place
    and :func:`load_mask_crop` puts it back on the series grid. Written under a temporary name and
    renamed.

    Parameters
    ----------
    mask : numpy.ndarray or LesionMask
        Boolean ``(z, y, x)`` crop, or an object with ``mask`` and ``offset`` (a
        :class:`recist_tool.segment.LesionMask`).
    volume : Volume
        The series the mask was drawn on.
    path : path-like
        Output file ending in ``.nii.gz`` (parent folders are created).
    offset : sequence of int, optional
        Index of the crop's first voxel in ``volume`` (taken from ``mask.offset`` when absent).

    Returns
    -------
    (Path, str)
        The file written and the sha256 of its bytes (what the store records).

    Raises
    ------
    GeometryError
        When the crop's slices are unevenly spaced (NIfTI cannot hold per-slice positions).
    """
    from recist_tool.io.volume_files import save_volume_file

    arr = np.asarray(getattr(mask, "mask", mask), bool)
    off = tuple(int(v) for v in (offset if offset is not None else getattr(mask, "offset", (0, 0, 0))))
    if arr.ndim != 3 or not arr.any():
        raise InputError("a lesion mask must be a non-empty 3D array")
    crop = volume.crop(off, tuple(o + s for o, s in zip(off, arr.shape, strict=True)))
    if crop.shape != arr.shape:
        raise GeometryError(f"mask crop {arr.shape} at {off} does not fit in the series {volume.shape}")
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    out = save_volume_file(crop.with_array(arr.astype(np.uint8)), p)
    return out, hashlib.sha256(out.read_bytes()).hexdigest()


def safe_file_name(name: str) -> str:
    """``name`` with every character but letters, digits, ``-``, ``_`` and ``.`` replaced by ``_``."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def mask_folder(root: str | os.PathLike[str], *codes: str) -> Path:
    """``root/<code>/<code>...`` for lesion masks, each code through :func:`safe_file_name`.

    Raises
    ------
    InputError
        When a code would place the folder outside ``root`` (e.g. ``..``; see
        :func:`recist_tool.io.outputs.safe_output_path`).
    """
    return safe_output_path(root, *map(safe_file_name, codes))


def save_mask_file(mask: Any, volume: Volume, folder: str | os.PathLike[str], stem: str,
                   offset: Sequence[int] | None = None) -> tuple[Path, str]:
    """Write a lesion mask crop (:func:`save_mask`) as ``folder/<stem>-<sha256[:12]>.nii.gz``.

    The content hash in the name means a corrected or re-scored mask never overwrites the file an
    earlier (audited) measurement points to. This is how batch scoring and the reading workstation
    keep masks.

    Returns
    -------
    (Path, str)
        Absolute path of the file and its sha256.
    """
    safe = safe_file_name(stem)
    with atomic_outputs(folder) as out:
        _, digest = save_mask(mask, volume, out.path(f"{safe}.nii.gz"), offset)
        final = out.rename(f"{safe}.nii.gz", f"{safe}-{digest[:12]}.nii.gz")
    return final.resolve(), digest


def load_mask_crop(path: str | os.PathLike[str], image: Volume) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Read a mask crop written by :func:`save_mask` back onto ``image``'s grid.

    Returns
    -------
    (numpy.ndarray, tuple of int)
        Boolean crop and the index of its first voxel in ``image``.

    Raises
    ------
    InputError, GeometryError
        Missing file, or a crop that does not lie on the image's voxel grid.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"no such mask file: {p}")
    vol = load_image_volume(p)
    arr = np.asarray(vol.array) > 0
    first = image.lps_to_index(vol.index_to_lps((0.0, 0.0, 0.0)))
    off = np.rint(first).astype(int)
    last = image.lps_to_index(vol.index_to_lps(tuple(float(n - 1) for n in arr.shape)))
    if (np.max(np.abs(first - off)) > 0.1 or np.max(np.abs(last - (off + np.array(arr.shape) - 1))) > 0.1
            or np.any(off < 0) or np.any(off + np.array(arr.shape) > np.array(image.shape))):
        raise GeometryError(f"{p}: the mask does not lie on the series' voxel grid")
    return arr, (int(off[0]), int(off[1]), int(off[2]))
