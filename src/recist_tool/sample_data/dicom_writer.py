"""Write synthetic CT series as DICOM files with pydicom (CT Image Storage, one file a slice).

Everything written is deterministic: UIDs come from :func:`det_uid` (a hash of the generator seed
and names), dates and times from the trial design; nothing depends on the clock.
"""

from __future__ import annotations

import copy
import os
import uuid
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
)

from recist_tool.sample_data.phantom import SliceGrid

__all__ = ["SeriesHeader", "det_uid", "hu_to_stored", "write_ct_series", "write_localizer"]

_TRIAL_PROTOCOL = "SYN-SCLC-TORI-ANLO"


#: Namespace of the name-based UUIDs behind the generator's UIDs.
_UID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/recist-tool/sample-data")


def det_uid(seed: int, *parts: object) -> str:
    """A deterministic DICOM UID ``2.25.<int>`` from the seed and naming parts.

    ``2.25`` UIDs are the integer form of a UUID (ISO/IEC 9834-8); here a name-based (SHA-1,
    version 5) UUID of the seed and parts, so the same inputs always give the same UID.
    ``pydicom.uid.generate_uid(prefix=None, ...)`` cannot be used: it ignores its entropy
    sources and returns a random UUID when the prefix is None.
    """
    name = "/".join([f"seed={seed}", *(str(p) for p in parts)])
    return f"2.25.{uuid.uuid5(_UID_NAMESPACE, name).int}"


@dataclass(frozen=True)
class SeriesHeader:
    """Identifying and acquisition attributes of one CT series (all fake, all deterministic)."""

    patient_name: str
    patient_id: str
    study_uid: str
    series_uid: str
    frame_of_reference_uid: str
    study_date: date
    study_time: str
    accession_number: str
    study_id: str
    study_description: str
    series_number: int
    series_description: str
    manufacturer: str
    model: str
    kernel: str
    kvp: float
    contrast_agent: str | None
    slice_thickness: float
    pixel_signed: bool
    trial_subject: str
    trial_timepoint: str


def hu_to_stored(hu: np.ndarray, signed: bool) -> tuple[np.ndarray, float]:
    """Round HU to stored integers: signed int16 with intercept 0, or unsigned 12-bit with −1024.

    Returns
    -------
    stored : numpy.ndarray
        int16 or uint16 array of the same shape.
    intercept : float
        The RescaleIntercept to write (slope is 1).
    """
    r = np.rint(hu)
    if signed:
        return np.clip(r, -1024, 3071).astype(np.int16), 0.0
    return np.clip(r + 1024, 0, 4095).astype(np.uint16), -1024.0


def _ds_num(v: float) -> str:
    """A DS string of at most 16 characters that round-trips ``v`` as closely as it can."""
    s = repr(float(v))
    if len(s) > 16:
        s = f"{v:.10g}"
    return s


def _template(h: SeriesHeader, grid: SliceGrid, intercept: float) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = "RECIST_SYNTH_1"
    ds = Dataset()
    ds.file_meta = meta
    d = h.study_date.strftime("%Y%m%d")
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = CTImageStorage
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = d
    ds.StudyTime = h.study_time
    ds.SeriesTime = ds.AcquisitionTime = ds.ContentTime = h.study_time[:2] + "2130"
    ds.AccessionNumber = h.accession_number
    ds.Modality = "CT"
    ds.Manufacturer = h.manufacturer
    ds.ReferringPhysicianName = ""
    ds.StationName = "SYNTH-CT"
    ds.StudyDescription = h.study_description
    ds.SeriesDescription = h.series_description
    ds.ManufacturerModelName = h.model
    ds.PatientName = h.patient_name
    ds.PatientID = h.patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = "SYNTHETIC PHANTOM - NOT A PATIENT"
    ds.ClinicalTrialSponsorName = "SYNTHETIC"
    ds.ClinicalTrialProtocolID = _TRIAL_PROTOCOL
    ds.ClinicalTrialSiteID = "00"
    ds.ClinicalTrialSubjectID = h.trial_subject
    ds.ClinicalTrialTimePointID = h.trial_timepoint
    if h.contrast_agent:
        ds.ContrastBolusAgent = h.contrast_agent
        ds.ContrastBolusRoute = "IV"
    ds.BodyPartExamined = "CHEST"
    ds.SliceThickness = _ds_num(h.slice_thickness)
    ds.KVP = _ds_num(h.kvp)
    ds.DataCollectionDiameter = "500"
    ds.ReconstructionDiameter = _ds_num(round(grid.pixel_spacing[1] * grid.cols, 3))
    ds.GantryDetectorTilt = "0"
    ds.TableHeight = "160"
    ds.RotationDirection = "CW"
    ds.XRayTubeCurrent = 220
    ds.ConvolutionKernel = h.kernel
    ds.PatientPosition = "HFS"
    ds.StudyInstanceUID = h.study_uid
    ds.SeriesInstanceUID = h.series_uid
    ds.StudyID = h.study_id
    ds.SeriesNumber = h.series_number
    ds.AcquisitionNumber = 1
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.FrameOfReferenceUID = h.frame_of_reference_uid
    ds.PositionReferenceIndicator = ""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = grid.rows
    ds.Columns = grid.cols
    ds.PixelSpacing = [_ds_num(grid.pixel_spacing[0]), _ds_num(grid.pixel_spacing[1])]
    ds.BitsAllocated = 16
    ds.BitsStored = 16 if h.pixel_signed else 12
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if h.pixel_signed else 0
    ds.WindowCenter = "40"
    ds.WindowWidth = "400"
    ds.RescaleIntercept = _ds_num(intercept)
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    return ds


def _write_one(ds: Dataset, path: str, compress: bool) -> None:
    if compress:
        ds.compress(JPEG2000Lossless, encoding_plugin="pylibjpeg", generate_instance_uid=False)
    ds.save_as(path, enforce_file_format=True)


def _write_chunk(items: list[tuple[Dataset, str]], compress: bool) -> None:
    for ds, path in items:
        _write_one(ds, path, compress)


def write_ct_series(
    folder: str | os.PathLike[str],
    hu: np.ndarray,
    grid: SliceGrid,
    header: SeriesHeader,
    seed: int,
    *,
    instance_order: Sequence[int] | None = None,
    no_extension: bool = False,
    transfer_syntax: str = "explicit",
    workers: int = 1,
) -> list[Path]:
    """Write ``hu`` (``(z, y, x)``, ascending ``z`` as ``grid.z``) as one file per slice.

    Parameters
    ----------
    folder : path
        Created if missing.
    hu : numpy.ndarray
        Image in HU on ``grid``.
    grid : SliceGrid
        Geometry; slice ``k`` gets ``ImagePositionPatient = grid.ipp(k)``.
    header : SeriesHeader
        Identifiers and acquisition attributes.
    seed : int
        Generator seed (feeds the SOP Instance UIDs).
    instance_order : sequence of int, optional
        ``InstanceNumber`` of each slice (array order). Default: 1 at the most cranial slice,
        counting towards the feet, as scanners number a head-first acquisition.
    no_extension : bool
        Name files ``IM00001`` instead of ``CT000001.dcm``.
    transfer_syntax : {"explicit", "jpeg2000"}
        Uncompressed Explicit VR Little Endian, or JPEG 2000 lossless (pylibjpeg-openjpeg).
    workers : int
        Processes used to encode and write (useful for JPEG 2000).

    Returns
    -------
    list of pathlib.Path
        The files written, in array order.
    """
    if transfer_syntax not in ("explicit", "jpeg2000"):
        raise ValueError(
            f"transfer_syntax must be 'explicit' or 'jpeg2000', got {transfer_syntax!r}")
    compress = transfer_syntax == "jpeg2000"
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stored, intercept = hu_to_stored(hu, header.pixel_signed)
    nz = stored.shape[0]
    if instance_order is None:
        instance_order = [nz - k for k in range(nz)]
    template = _template(header, grid, intercept)
    paths: list[Path] = []
    jobs: list[tuple[Dataset, str]] = []
    for k in range(nz):
        inst = int(instance_order[k])
        # uncompressed slices are written at once, so one dataset is reused; compressed ones are
        # encoded later (maybe in another process) and need their own copy
        ds = copy.deepcopy(template) if compress else template
        sop = UID(det_uid(seed, header.series_uid, "sop", inst))
        ds.file_meta.MediaStorageSOPInstanceUID = sop
        ds.SOPInstanceUID = sop
        ds.InstanceNumber = inst
        ipp = grid.ipp(k)
        ds.ImagePositionPatient = [_ds_num(v) for v in ipp]
        ds.SliceLocation = _ds_num(ipp[2])
        ds.PixelData = np.ascontiguousarray(stored[k]).tobytes()
        name = f"IM{inst:05d}" if no_extension else f"CT{inst:06d}.dcm"
        path = folder / name
        paths.append(path)
        if compress:
            jobs.append((ds, str(path)))
        else:
            _write_one(ds, str(path), False)
    if jobs:
        if workers > 1:
            chunks = [jobs[i::workers] for i in range(workers)]
            with ProcessPoolExecutor(max_workers=workers) as pool:
                for fut in [pool.submit(_write_chunk, c, True) for c in chunks]:
                    fut.result()
        else:
            _write_chunk(jobs, True)
    return paths


def write_localizer(folder: str | os.PathLike[str], hu: np.ndarray, grid: SliceGrid,
                    header: SeriesHeader, seed: int) -> Path:
    """Write a coronal scout (ImageType ``ORIGINAL\\PRIMARY\\LOCALIZER``) as its own series.

    The image is the mean of the volume along the antero-posterior axis, cranial end at the top,
    so that a loader must recognise and skip it.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    proj = np.clip(hu, -1000, None).mean(axis=1)[::-1]  # (nz, nx), top row = most cranial
    stored = np.clip(np.rint(proj + 1024.0), 0, 4095).astype(np.uint16)
    ds = _template(header, grid, -1024.0)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
    ds.SeriesDescription = "SCOUT AP"
    ds.Rows, ds.Columns = stored.shape
    ds.PixelSpacing = [_ds_num(abs(grid.z[1] - grid.z[0])), _ds_num(grid.pixel_spacing[1])]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]
    ds.ImagePositionPatient = [_ds_num(grid.x0), "0", _ds_num(grid.z[-1])]
    del ds.SliceThickness
    ds.InstanceNumber = 1
    sop = UID(det_uid(seed, header.series_uid, "sop", 1))
    ds.file_meta.MediaStorageSOPInstanceUID = sop
    ds.SOPInstanceUID = sop
    ds.PixelData = stored.tobytes()
    path = folder / "SCOUT0001.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path
