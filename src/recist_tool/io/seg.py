"""Read DICOM Segmentation (SEG) objects into a :class:`~recist_tool.volume.Volume` mask.

The SEG's frames are placed on the geometry of the images they segment: on a reference
:class:`Volume` (the CT the SEG refers to) when one is given, matched by SOP Instance UID or by
plane position; otherwise on the SEG's own regular grid.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from recist_tool.errors import DicomLoadError, GeometryError, InputError
from recist_tool.volume import Volume, VolumeMeta

#: Plane positions (mm) closer than this match a reference slice.
POSITION_TOLERANCE_MM = 0.01


@dataclass(frozen=True)
class SegmentInfo:
    """One segment of a SEG: its number and label."""

    number: int
    label: str


def is_dicom_seg(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a DICOM file whose Modality is SEG."""
    import pydicom

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["Modality"])
    except Exception:  # not DICOM at all
        return False
    return str(getattr(ds, "Modality", "")) == "SEG"


def _read(path: str | os.PathLike[str]):  # -> highdicom.seg.Segmentation
    import highdicom as hd

    try:
        return hd.seg.segread(path)
    except FileNotFoundError as exc:
        raise InputError(f"no such file: {path}") from exc
    except Exception as exc:
        raise DicomLoadError(f"{path}: not a readable DICOM SEG ({exc})") from exc


def list_segments(path: str | os.PathLike[str]) -> list[SegmentInfo]:
    """Segments stored in a DICOM SEG file."""
    seg = _read(path)
    return [SegmentInfo(int(n), str(seg.get_segment_description(n).segment_label))
            for n in seg.segment_numbers]


def _pick_segments(seg, segment_number: int | None, path) -> list[int]:
    numbers = [int(n) for n in seg.segment_numbers]
    if segment_number is None:
        return numbers
    if segment_number not in numbers:
        raise InputError(f"{path}: no segment {segment_number} (segments: {numbers})")
    return [segment_number]


def read_seg(
    path: str | os.PathLike[str],
    segment_number: int | None = None,
    reference: Volume | None = None,
) -> Volume:
    """Read a DICOM SEG as a label volume on the referenced geometry.

    Parameters
    ----------
    path : path-like
        The SEG file.
    segment_number : int, optional
        Read only this segment (voxels become 1). Default: all segments, voxels holding their
        segment number (segments must not overlap).
    reference : Volume, optional
        The segmented image. The mask is returned on exactly its grid: frames are matched by
        referenced SOP Instance UID when the reference carries them, else by plane position.

    Returns
    -------
    Volume
        ``uint16`` labels (0 background) with the reference's or the SEG's own geometry.

    Raises
    ------
    DicomLoadError
        Not a readable SEG.
    GeometryError
        Frames that do not lie on the reference's slices or grid.
    InputError
        Missing file or unknown segment number.
    """
    seg = _read(path)
    numbers = _pick_segments(seg, segment_number, path)
    combine = dict(segment_numbers=numbers, combine_segments=True, relabel=False)
    meta = VolumeMeta(
        modality="SEG",
        study_uid=str(getattr(seg, "StudyInstanceUID", "")) or None,
        series_uid=str(getattr(seg, "SeriesInstanceUID", "")) or None,
        frame_of_reference_uid=str(getattr(seg, "FrameOfReferenceUID", "")) or None,
        source=str(path),
    )
    try:
        if reference is not None and reference.meta.sop_instance_uids:
            arr = seg.get_pixels_by_source_instance(
                source_sop_instance_uids=list(reference.meta.sop_instance_uids),
                ignore_spatial_locations=True, assert_missing_frames_are_empty=True,
                **combine,
            )
            labels = np.asarray(arr)
            if labels.shape != reference.shape:
                raise GeometryError(
                    f"{path}: SEG frames of shape {labels.shape[1:]} do not match the "
                    f"reference images {reference.shape[1:]}"
                )
            return reference.with_array(_as_labels(labels, segment_number), meta)
        hv = seg.get_volume(**combine)
    except (GeometryError, InputError):
        raise
    except Exception as exc:
        raise DicomLoadError(f"{path}: cannot arrange the SEG frames ({exc})") from exc
    own = _volume_from_highdicom(hv, segment_number, meta)
    if reference is None:
        return own
    return _onto_reference(own, reference, path)


def _as_labels(arr: np.ndarray, segment_number: int | None) -> np.ndarray:
    a = np.asarray(arr)
    if segment_number is not None:
        return (a > 0).astype(np.uint16)
    return a.astype(np.uint16)


def _volume_from_highdicom(hv, segment_number: int | None, meta: VolumeMeta) -> Volume:
    """A :class:`Volume` from a highdicom volume (affine maps (slice, row, column) to LPS)."""
    aff = np.asarray(hv.affine, dtype=np.float64)
    arr = _as_labels(np.asarray(hv.array), segment_number)
    if arr.ndim == 4:  # trailing channel axis
        arr = arr[..., 0]
    step, col_vec, row_vec = aff[:3, 0], aff[:3, 1], aff[:3, 2]
    dy, dx = float(np.linalg.norm(col_vec)), float(np.linalg.norm(row_vec))
    row_cos, col_cos = row_vec / dx, col_vec / dy
    normal = np.cross(row_cos, col_cos)
    k = np.arange(arr.shape[0], dtype=np.float64)[:, None]
    positions = aff[:3, 3][None, :] + k * step[None, :]
    if arr.shape[0] > 1 and float(step @ normal) < 0:
        arr, positions = arr[::-1], positions[::-1]
    dz = abs(float(step @ normal)) or None
    return Volume.from_slices(np.ascontiguousarray(arr), positions, row_cos, col_cos, (dy, dx),
                              meta=meta, single_slice_thickness=dz)


def _onto_reference(own: Volume, reference: Volume, path) -> Volume:
    """Place a SEG volume's slices on the matching slices of ``reference``."""
    if own.shape[1:] != reference.shape[1:] or not np.allclose(
        own.spacing[1:], reference.spacing[1:], atol=1e-4
    ) or not np.allclose(own.direction[:, 1:], reference.direction[:, 1:], atol=1e-4):
        raise GeometryError(f"{path}: the SEG's pixel grid differs from the reference image's")
    out = np.zeros(reference.shape, dtype=own.array.dtype)
    for k in range(own.shape[0]):
        if not own.array[k].any():
            continue
        d = np.linalg.norm(reference.slice_positions - own.slice_positions[k][None, :], axis=1)
        j = int(np.argmin(d))
        if d[j] > POSITION_TOLERANCE_MM:
            raise GeometryError(
                f"{path}: a SEG frame at {tuple(np.round(own.slice_positions[k], 2))} lies on "
                "no slice of the reference image"
            )
        out[j] = own.array[k]
    return reference.with_array(out, own.meta)
