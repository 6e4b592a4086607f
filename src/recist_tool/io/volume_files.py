"""NIfTI, NRRD and MHA volumes ↔ :class:`~recist_tool.volume.Volume` (LPS, ``(z, y, x)``).

NIfTI goes through nibabel, which keeps the full ``sform`` affine, so a gantry-tilted (sheared)
stack is written and read back exactly. NRRD and MHA go through SimpleITK, whose images have an
orthonormal direction: sheared or unevenly spaced volumes must be resampled first. No NIfTI can
hold uneven slice gaps.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from recist_tool.errors import GeometryError, InputError
from recist_tool.io.outputs import atomic_file
from recist_tool.volume import Volume, VolumeMeta

_LPS_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
NIFTI_SUFFIXES = (".nii", ".nii.gz")
ITK_SUFFIXES = (".nrrd", ".nhdr", ".mha", ".mhd")


def volume_format(path: str | os.PathLike[str]) -> str | None:
    """``'nifti'``, ``'itk'`` or ``None`` judged by the file name."""
    name = str(path).lower()
    if name.endswith(NIFTI_SUFFIXES):
        return "nifti"
    if name.endswith(ITK_SUFFIXES):
        return "itk"
    return None


def _from_axes(
    data_zyx: np.ndarray, x_axis: np.ndarray, y_axis: np.ndarray, z_axis: np.ndarray,
    origin: np.ndarray, meta: VolumeMeta,
) -> Volume:
    """Volume from index-axis step vectors (LPS, mm per voxel) and the LPS of voxel 0."""
    dx, dy = float(np.linalg.norm(x_axis)), float(np.linalg.norm(y_axis))
    if dx == 0 or dy == 0 or float(np.linalg.norm(z_axis)) == 0:
        raise GeometryError("image has a zero-length axis")
    row, col = x_axis / dx, y_axis / dy
    if abs(float(row @ col)) > 1e-3:
        raise GeometryError("image rows and columns are not perpendicular; cannot be a CT stack")
    normal = np.cross(row, col)
    if float(z_axis @ normal) < 0:  # stack runs against the normal: flip to our convention
        data_zyx = data_zyx[::-1]
        origin = origin + (data_zyx.shape[0] - 1) * z_axis
        z_axis = -z_axis
    if float(z_axis @ normal) < 1e-6:
        raise GeometryError("slice axis lies in the image plane")
    k = np.arange(data_zyx.shape[0], dtype=float)[:, None]
    positions = origin[None, :] + k * z_axis[None, :]
    return Volume.from_slices(np.ascontiguousarray(data_zyx), positions, row, col, (dy, dx), meta,
                              single_slice_thickness=float(z_axis @ normal))


def load_volume_file(path: str | os.PathLike[str]) -> Volume:
    """Read a NIfTI (``.nii``, ``.nii.gz``), NRRD or MHA/MHD volume.

    Raises
    ------
    InputError
        For unreadable files, 2D or 4D images, or impossible geometry.
    """
    p = Path(path)
    fmt = volume_format(p)
    if fmt is None:
        raise InputError(f"{p}: not a NIfTI, NRRD or MHA file name")
    if not p.is_file():
        raise InputError(f"{p}: no such file")
    meta = VolumeMeta(modality="", source=str(p))
    img: Any  # a nibabel image here, a SimpleITK one below
    if fmt == "nifti":
        import nibabel as nib

        try:
            img = nib.load(str(p))
            data = np.asanyarray(img.dataobj)
        except Exception as exc:
            raise InputError(f"{p}: cannot read NIfTI ({type(exc).__name__}: {exc})") from None
        if data.ndim == 4 and data.shape[3] == 1:
            data = data[..., 0]
        if data.ndim != 3:
            raise InputError(f"{p}: expected a 3D image, got shape {data.shape}")
        a = _LPS_RAS @ img.affine
        return _from_axes(np.transpose(data, (2, 1, 0)), a[:3, 0], a[:3, 1], a[:3, 2],
                          a[:3, 3].copy(), meta)
    import SimpleITK as sitk

    try:
        img = sitk.ReadImage(str(p))
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[-1] if str(exc).strip() else "unreadable"
        raise InputError(f"{p}: cannot read image ({first})") from None
    if img.GetDimension() != 3 or img.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(f"{p}: expected a 3D scalar image")
    data = sitk.GetArrayFromImage(img)
    d = np.array(img.GetDirection(), dtype=float).reshape(3, 3)
    sp = np.array(img.GetSpacing(), dtype=float)
    return _from_axes(data, d[:, 0] * sp[0], d[:, 1] * sp[1], d[:, 2] * sp[2],
                      np.array(img.GetOrigin(), dtype=float), meta)


def save_volume_file(volume: Volume, path: str | os.PathLike[str]) -> Path:
    """Write ``volume`` as NIfTI (exact sheared affine allowed), NRRD or MHA.

    The file is written under a temporary name and renamed, so a failure leaves nothing behind.

    Raises
    ------
    GeometryError
        When the format cannot hold the geometry (uneven gaps; shear for NRRD/MHA).
    """
    p = Path(path)
    fmt = volume_format(p)
    if fmt is None or p.suffix.lower() in (".nhdr", ".mhd"):
        raise InputError(f"{p}: output must end in .nii, .nii.gz, .nrrd or .mha (one file)")
    if not volume.is_uniform:
        raise GeometryError(
            f"{p.name}: slice gaps are not uniform ({volume.slice_gaps.min():.3f}–"
            f"{volume.slice_gaps.max():.3f} mm) and no {fmt.upper()} file can hold per-slice "
            "positions; resample to a regular grid (--resample)")
    with atomic_file(p) as tmp:
        img: Any  # a nibabel image here, a SimpleITK one below
        if fmt == "nifti":
            import nibabel as nib

            aff = _LPS_RAS @ volume.affine[:, [2, 1, 0, 3]]
            img = nib.Nifti1Image(np.transpose(volume.array, (2, 1, 0)), aff)
            img.set_sform(aff, code=1)
            if volume.is_sheared:
                img.set_qform(None, code=0)  # a quaternion cannot express shear
            else:
                img.set_qform(aff, code=1)
            img.header.set_xyzt_units("mm")
            nib.save(img, str(tmp))
        else:
            if volume.is_sheared:
                raise GeometryError(
                    f"{p.name}: the stack is sheared (gantry tilt {volume.tilt_degrees:.1f}°) and "
                    "NRRD/MHA images need an orthogonal grid; resample (--resample) or write "
                    ".nii.gz, which keeps the exact sheared affine")
            import SimpleITK as sitk

            img = sitk.GetImageFromArray(volume.array)
            img.SetSpacing(tuple(float(s) for s in volume.spacing[::-1]))
            img.SetOrigin(tuple(float(v) for v in volume.origin))
            img.SetDirection(tuple(float(v) for v in volume.direction[:, ::-1].ravel()))
            sitk.WriteImage(img, str(tmp), True)
    return p
