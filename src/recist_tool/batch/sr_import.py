"""Import a PACS read (DICOM SR, TID 1500) as baseline lesions: a batch manifest and/or store rows.

:func:`import_sr` reads the SR's long / short axis measurements, finds the CT series they were
drawn on, and places them in patient coordinates with a seed per lesion
(:func:`recist_tool.io.sr.locate_lesions`). :func:`write_manifest` writes them as the lesion rows
of a ``recist batch`` manifest (the series then gets segmented at those seeds and tracked into the
follow-ups); :func:`record_import` records them in the trial database as the given reader's
manual baseline measurements (the SR's own values, end points and seeds).
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from recist_tool.batch.manifest import CSV_COLUMNS, LINE_COLUMNS
from recist_tool.codes import validate_code
from recist_tool.errors import InputError
from recist_tool.io.outputs import atomic_file, write_csv
from recist_tool.io.sr import ImportedLesion, SrReport, locate_lesions, read_measurement_report

if TYPE_CHECKING:
    from recist_tool.store import TrialStore

__all__ = ["SrImport", "import_sr", "record_import", "write_manifest"]


@dataclass(frozen=True)
class SrImport:
    """An SR placed on its CT: who, when, where the series lies, and the lesions."""

    subject: str
    visit: str
    date: _dt.date
    series_path: str
    series_uid: str | None
    study_uid: str | None
    lesions: list[ImportedLesion]
    report: SrReport


def _date(text: str | None) -> _dt.date | None:
    if not text:
        return None
    t = text.strip()
    try:
        return _dt.date.fromisoformat(t if "-" in t else f"{t[:4]}-{t[4:6]}-{t[6:8]}")
    except ValueError:
        return None


def _series_holding(ct: str | os.PathLike[str], uid: str | None) -> str | None:
    """The stack id of the series under ``ct`` that holds image ``uid`` (None: let the loader pick)."""
    from recist_tool.io import scan

    if uid is None:
        return None
    result = scan(ct)
    for stack in result.stacks:
        if any(fr.sop_instance_uid == uid for fr in stack.frames):
            return stack.stack_id
    raise InputError(f"{ct}: no CT series there holds the image the SR references ({uid})")


def _series_location(ct_path: str | os.PathLike[str]) -> str:
    """Where the CT lies, as the manifest and the store keep it: a PACS reference as written
    (``pacs://SERVER/STUDY_UID[/SERIES_UID]``), a path made absolute."""
    from recist_tool.io.locations import series_location

    return series_location(ct_path, lambda p: Path(p).resolve())


def import_sr(sr_path: str | os.PathLike[str], ct_path: str | os.PathLike[str], *,
              series: str | None = None, subject: str | None = None, visit: str = "BL",
              date: _dt.date | None = None, store: TrialStore | None = None,
              seg_places: Sequence[str | os.PathLike[str]] = (), label: str | None = None
              ) -> SrImport:
    """Read an SR and place its lesions on the CT series it references.

    Parameters
    ----------
    sr_path : path-like
        The DICOM SR (TID 1500 with Long Axis / Short Axis measurements).
    ct_path : path-like
        Folder / zip / file holding the CT series the SR was read on (found by the SOP Instance UID
        the SR references unless ``series`` names it), or a PACS reference
        ``pacs://SERVER/STUDY_UID[/SERIES_UID]`` (kept as the series location).
    series : str, optional
        SeriesInstanceUID (or stack id) of the CT.
    subject : str, optional
        Subject code. Default: the store's subject for the SR's PatientID (when ``store`` is
        given), else the SR's Clinical Trial Subject ID.
    visit : str
        Visit of the read (default ``BL``).
    date : date, optional
        Scan date. Default: the SR's study date, else the CT's.
    store : TrialStore, optional
        Only for looking up the subject by PatientID.
    seg_places : sequence of path-like
        Files / folders searched first for the SEG a TID 1411 group references (e.g. SEG series
        retrieved from a PACS); then the SR's folder and the CT's.
    label : str, optional
        How errors name the SR (default ``sr_path``; e.g. the ``pacs://`` reference of an SR
        retrieved into the cache).

    Raises
    ------
    InputError, DicomLoadError, GeometryError
        Unusable SR or CT, an unknown subject, a subject or visit code outside
        :mod:`recist_tool.codes`' rule, images the CT series does not hold.
    """
    from recist_tool.io import load_volume

    if subject is not None:
        validate_code(subject, "subject", where="--subject")
    validate_code(visit, "visit", where="--visit")
    report = read_measurement_report(sr_path)
    name = label or str(sr_path)
    code = subject
    if code is None and store is not None and report.patient_id:
        code = store.subject_for_patient(report.patient_id)
    code = code or report.trial_subject_id
    if not code:
        raise InputError(f"{name}: the SR names no trial subject; give --subject")
    if subject is None:
        validate_code(code, "subject", where=f"{name}: ClinicalTrialSubjectID (or give --subject)"
                      if code == report.trial_subject_id else f"{name}: subject of its PatientID")
    first = next((g.long.sop_instance_uid for g in report.groups if g.long.sop_instance_uid), None)
    stack = series if series is not None else _series_holding(ct_path, first)
    volume = load_volume(ct_path, stack)
    lesions = locate_lesions(report, volume, seg_places=seg_places)
    when = date or _date(report.study_date) or _date(volume.meta.study_date)
    if when is None:
        raise InputError(f"{name}: no study date in the SR or the CT; give --date")
    return SrImport(code, visit, when, _series_location(ct_path), volume.meta.series_uid,
                    volume.meta.study_uid, lesions, report)


def write_manifest(imp: SrImport, path: str | os.PathLike[str]) -> Path:
    """Write the import as ``recist batch`` manifest rows (CSV; series path relative to it, a
    PACS reference as it is):
    each lesion with its seed and its long axis as the caliper line (``line_*`` columns) it is
    segmented from.

    Returns
    -------
    Path
        The manifest written (atomically).
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    from recist_tool.io.locations import series_location

    rel = series_location(imp.series_path, lambda p: os.path.relpath(p, out.resolve().parent))
    with atomic_file(out) as tmp:
        write_csv(tmp, CSV_COLUMNS, ({
            "subject": imp.subject, "visit": imp.visit, "date": imp.date.isoformat(),
            "series_path": rel, "series_uid": imp.series_uid or "",
            "lesion_id": les.lesion_id, "category": les.category.lower(), "organ": les.organ,
            "nodal": "true" if les.nodal else "false",
            "seed_x": f"{les.seed_lps[0]:.2f}", "seed_y": f"{les.seed_lps[1]:.2f}",
            "seed_z": f"{les.seed_lps[2]:.2f}",
            **dict(zip(LINE_COLUMNS, (f"{v:.2f}" for v in np.ravel(les.long_lps)), strict=True))}
            for les in imp.lesions))
    return out


def _pts(a: Any) -> list[list[float]] | None:
    return None if a is None else [[round(float(c), 3) for c in p] for p in a]


def record_import(store: TrialStore, imp: SrImport, *, reader: str, trial: str | None = None) -> int:
    """Record the imported lesions as ``reader``'s manual measurements at the import's visit.

    The subject is enrolled in ``trial`` when the database does not know it yet (with the SR's
    PatientID kept in the store's identity table), and the visit is added with its series
    location when missing.

    Returns
    -------
    int
        Number of lesions recorded.

    Raises
    ------
    InputError
        Unknown subject without ``trial``, a lesion id the reader has already, unknown reader.
        Nothing is recorded then, nor when any other error stops it part way: the rows are
        written in one transaction (:meth:`~recist_tool.store.TrialStore.atomic`).
    """
    with store.atomic():
        return _record(store, imp, reader=reader, trial=trial)


def _record(store: TrialStore, imp: SrImport, *, reader: str, trial: str | None) -> int:
    if store.subject_info(imp.subject) is None:
        if not trial:
            raise InputError(f"{imp.subject} is not in the database; give --trial to enrol it")
        store.add_subject(trial, imp.subject, patient_id=imp.report.patient_id, by=reader)
    if imp.visit not in {v for v, _ in store.timepoints(imp.subject)}:
        store.add_timepoint(imp.subject, imp.visit, imp.date, study_uid=imp.study_uid,
                            series_uid=imp.series_uid, series_path=imp.series_path, by=reader)
    why = f"imported from DICOM SR {Path(imp.report.path).name}"
    for les in imp.lesions:
        store.add_lesion(imp.subject, imp.visit, les.lesion_id, les.category, reader=reader,
                         organ=les.organ, nodal=les.nodal, reason=why)
        store.record_measurement(
            imp.subject, imp.visit, les.lesion_id, reader=reader,
            long_axis_mm=None if les.long_axis_mm is None else f"{les.long_axis_mm:.1f}",
            short_axis_mm=None if les.short_axis_mm is None else f"{les.short_axis_mm:.1f}",
            endpoints_lps={"long": _pts(les.long_lps), "short": _pts(les.short_lps),
                           "slice_index": les.slice_index,
                           "seed_lps": [round(float(c), 3) for c in les.seed_lps],
                           "source": "dicom-sr"},
            volume_ml=None if les.volume_ml is None else round(les.volume_ml, 4),
            method="manual", reason=why)
    return len(imp.lesions)
