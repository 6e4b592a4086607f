"""Load a lesion mask file (NIfTI / NRRD / MHA label map, or DICOM SEG) as a boolean Volume."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from recist_tool.errors import GeometryError, InputError, UsageError
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
