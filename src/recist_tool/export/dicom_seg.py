"""DICOM Segmentation export: one binary SEG per subject timepoint, one segment per lesion.

Each segment is labelled with the lesion id and carries the same Tracking ID and Tracking UID as
the lesion's measurement group in the DICOM SR (:mod:`recist_tool.export.dicom_sr`), so a viewer
links the outline to the bidirectional measurement and follows the lesion across timepoints.
Masks come from the NIfTI crops ``recist batch`` (or the GUI) saved beside each measurement
(``mask_path``, checked against ``mask_sha256``) and are placed back onto the CT grid; the SEG
references the CT slices as its source images and carries the CT's patient and study (see
``docs/export_pacs.md``). Measurements without a mask are left out and logged.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from recist_tool.errors import InputError
from recist_tool.export.dicom_derived import (
    SEG_SERIES_NUMBER,
    conform_source,
    copy_trial_modules,
    person_name,
    stable_uid,
    tracking_identifier,
    tracking_uid,
)
from recist_tool.io.dicom_codes import FINDING, organ_code
from recist_tool.store.snapshot import visit_series

__all__ = ["SegLesion", "SegPlan", "build_seg", "export_dicom_seg", "lesions_for_seg", "planned_seg",
           "seg_key"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SegLesion:
    """One lesion's mask on the CT grid, as it goes into the SEG.

    Attributes
    ----------
    lesion_id, organ : str
    mask : ndarray of bool
        The crop (``(z, y, x)``).
    offset : tuple of int
        Index of the crop's first voxel in the CT volume.
    tracking_uid : str
    segmenter, segmenter_version : str or None
    automatic : bool
        Mask made by a segmenter without manual edits.
    """

    lesion_id: str
    organ: str
    mask: np.ndarray
    offset: tuple[int, int, int]
    tracking_uid: str
    segmenter: str | None = None
    segmenter_version: str | None = None
    automatic: bool = True


def lesions_for_seg(measurements: Sequence[Any], volume: Any, *, trial: str, subject: str,
                    reader: str, visit: str = "") -> tuple[list[SegLesion], list[str]]:
    """The masks of a read's measurements placed on ``volume``, and why others are left out.

    Raises
    ------
    InputError
        A mask file that is missing or whose sha256 differs from the one recorded.
    GeometryError
        A mask that does not lie on the series' voxel grid.
    """
    from recist_tool.io.masks import load_mask_crop

    out: list[SegLesion] = []
    skipped: list[str] = []
    for m in measurements:
        if m.state != "MEASURED" or not m.mask_path:
            why = m.state if m.state != "MEASURED" else "no mask saved"
            skipped.append(f"{subject} {visit} {m.lesion_id}: not in the SEG ({why})")
            continue
        p = Path(m.mask_path)
        if not p.is_file():
            raise InputError(f"{subject} {visit} {m.lesion_id}: mask file not found: {p}")
        if m.mask_sha256 and hashlib.sha256(p.read_bytes()).hexdigest() != m.mask_sha256:
            raise InputError(f"{subject} {visit} {m.lesion_id}: {p} differs from the mask recorded "
                             "in the database (sha256 mismatch)")
        arr, off = load_mask_crop(p, volume)
        if not arr.any():
            skipped.append(f"{subject} {visit} {m.lesion_id}: not in the SEG (empty mask)")
            continue
        out.append(SegLesion(
            lesion_id=m.lesion_id, organ=m.organ, mask=arr, offset=off,
            tracking_uid=tracking_uid(trial, subject, reader, m.lesion_id),
            segmenter=m.segmenter, segmenter_version=m.segmenter_version,
            automatic=m.method == "automatic"))
    return out, skipped


def _description(number: int, les: SegLesion):  # -> hd.seg.SegmentDescription
    import highdicom as hd
    from pydicom.sr.codedict import codes

    algo = None
    if les.automatic and les.segmenter:
        family = codes.DCM.ImageProcessing if les.segmenter == "classic" \
            else codes.DCM.ArtificialIntelligence
        algo = hd.AlgorithmIdentificationSequence(
            name=les.segmenter[:64], family=family, version=(les.segmenter_version or "unknown")[:64])
    return hd.seg.SegmentDescription(
        segment_number=number, segment_label=les.lesion_id[:64],
        segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
        segmented_property_type=FINDING,
        algorithm_type=(hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC if algo is not None
                        else hd.seg.SegmentAlgorithmTypeValues.MANUAL),
        algorithm_identification=algo, tracking_uid=les.tracking_uid,
        tracking_id=tracking_identifier(les.lesion_id),
        anatomic_regions=[organ_code(les.organ)])


def _pixels(shape: tuple[int, int, int], lesions: Sequence[SegLesion]) -> np.ndarray:
    """A label map (segment numbers) or, when masks overlap, one boolean plane per segment."""
    labels = np.zeros(shape, dtype=np.uint8)
    overlap = False
    for n, les in enumerate(lesions, start=1):
        sl = tuple(slice(o, o + s) for o, s in zip(les.offset, les.mask.shape, strict=True))
        region = labels[sl]
        overlap |= bool(np.any(region[les.mask] != 0))
        region[les.mask] = n
    if not overlap:
        return labels
    planes = np.zeros(shape + (len(lesions),), dtype=bool)
    for n, les in enumerate(lesions):
        sl = tuple(slice(o, o + s) for o, s in zip(les.offset, les.mask.shape, strict=True))
        planes[sl + (n,)] = les.mask
    return planes


def build_seg(series: Any, lesions: Sequence[SegLesion], *, series_instance_uid: str,
              sop_instance_uid: str, series_number: int = SEG_SERIES_NUMBER,
              creator: str | None = None, series_description: str | None = None):
    """Build the binary DICOM SEG of one timepoint.

    Parameters
    ----------
    series : SeriesWithHeaders
        The CT the masks lie on.
    lesions : sequence of SegLesion
        One segment each, numbered in this order from 1.
    series_instance_uid, sop_instance_uid : str
    series_number : int
    creator : str, optional
        The reader's printed name (Content Creator's Name).
    series_description : str, optional

    Returns
    -------
    highdicom.seg.Segmentation

    Raises
    ------
    InputError
        No lesion, more than 255 lesions, or a multi-frame CT (not supported).
    """
    import highdicom as hd

    from recist_tool import __version__

    if not lesions:
        raise InputError("no lesion mask to put in a SEG")
    if len(lesions) > 255:
        raise InputError(f"{len(lesions)} lesions: a SEG here holds at most 255 segments")
    if series.is_multiframe:
        raise InputError("DICOM SEG export of multi-frame (Enhanced) CT series is not supported")
    seg = hd.seg.Segmentation(
        source_images=[conform_source(h) for h in series.headers],
        pixel_array=_pixels(series.volume.shape, lesions),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[_description(n, les) for n, les in enumerate(lesions, start=1)],
        series_instance_uid=series_instance_uid, series_number=series_number,
        sop_instance_uid=sop_instance_uid, instance_number=1,
        manufacturer="recist-tool", manufacturer_model_name="recist-tool",
        software_versions=__version__, device_serial_number="none",
        content_label="RECIST_LESIONS", content_description="RECIST lesion masks",
        content_creator_name=person_name(creator) if creator else None,
        series_description=(series_description or "RECIST lesion masks")[:64])
    copy_trial_modules(seg, series.headers[0])
    return seg


def seg_key(subj: Any, read: Any) -> tuple[str, ...]:
    """What the UIDs of a read's SEG derive from: trial, subject, reader, visit, read version."""
    return (subj.trial, subj.code, subj.reader, read.visit, str(read.version))


@dataclass(frozen=True)
class SegPlan:
    """The SEG :func:`export_dicom_seg` writes for one read (what an SR references of it).

    Attributes
    ----------
    series_instance_uid, sop_instance_uid : str
    segments : dict
        Lesion id → segment number.
    """

    series_instance_uid: str
    sop_instance_uid: str
    segments: dict[str, int]


def planned_seg(subj: Any, read: Any, series: Any) -> SegPlan | None:
    """The SEG of ``read`` as :func:`export_dicom_seg` writes it (same UIDs, same segment
    numbers: the lesions with a saved, non-empty mask, in order), or None when it writes none.

    Raises
    ------
    InputError, GeometryError
        A mask file missing, changed, or off the series' grid (the SEG export fails likewise).
    """
    if series.is_multiframe or not any(m.mask_path for m in read.measurements):
        return None
    lesions, _ = lesions_for_seg(read.measurements, series.volume, trial=subj.trial,
                                 subject=subj.code, reader=subj.reader, visit=read.visit)
    if not lesions or len(lesions) > 255:
        return None
    key = seg_key(subj, read)
    return SegPlan(stable_uid("seg-series", *key), stable_uid("seg", *key),
                   {les.lesion_id: n for n, les in enumerate(lesions, start=1)})


def export_dicom_seg(data: Any, out_dir: Path, *, options: Mapping[str, Any]) -> list[Path]:
    """Write one DICOM SEG per subject timepoint: ``OUT/<subject>/<subject>_<visit>_SEG.dcm``.

    Parameters
    ----------
    data : TrialExport
    out_dir : Path
    options : mapping
        ``series_number`` (default :data:`SEG_SERIES_NUMBER`); ``deidentify``: a
        :class:`recist_tool.export.deidentify.DeidSettings` to write de-identified SEGs (PS3.15
        Annex E Basic Profile, see that module).

    Returns
    -------
    list of Path
        The files written (all or none). Reads without any saved mask give no file (logged).
    """
    from recist_tool.export.deidentify import deidentify_dataset
    from recist_tool.io.outputs import atomic_outputs

    number = int(options.get("series_number", SEG_SERIES_NUMBER))
    deid = options.get("deidentify")
    written: list[Path] = []
    with atomic_outputs(out_dir) as out:
        for subj in data.subjects:
            for read in subj.reads:
                if not any(m.mask_path for m in read.measurements):
                    log.warning("%s %s: no lesion mask saved, no SEG written", subj.code, read.visit)
                    continue
                series = visit_series(subj, read.visit)
                lesions, skipped = lesions_for_seg(read.measurements, series.volume,
                                                   trial=subj.trial, subject=subj.code,
                                                   reader=subj.reader, visit=read.visit)
                for line in skipped:
                    log.warning(line)
                if not lesions:
                    continue
                key = seg_key(subj, read)
                seg = build_seg(series, lesions, series_instance_uid=stable_uid("seg-series", *key),
                                sop_instance_uid=stable_uid("seg", *key), series_number=number,
                                creator=(None if subj.automated_reader
                                         else subj.reader_full_name or subj.reader),
                                series_description=f"RECIST lesion masks {read.visit}")
                if deid is not None:
                    deidentify_dataset(seg, deid, subject=subj.code, trial=subj.trial,
                                       visit=read.visit)
                name = Path(subj.code) / f"{subj.code}_{read.visit}_SEG.dcm"
                seg.save_as(out.path(name), enforce_file_format=True)
                written.append(Path(out_dir) / name)
    return written
