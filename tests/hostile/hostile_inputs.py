"""Hostile names and cells (issue #37 items 1, 3, 4), and builders of small hostile files.

The static files (manifests, SDTM CSVs) are in ``corpus/`` (see ``corpus/README.md``); this module
holds what cannot sit in a text file (NUL, control characters, 5,000-character names) and builds
what is binary: a DICOM SR whose ClinicalTrialSubjectID climbs out of the output folder
(:func:`hostile_sr`), and a small trial whose subject code was changed in the database behind the
application's back (:func:`escaped_trial`).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

CORPUS = Path(__file__).resolve().parent / "corpus"

#: The code of the issue: three folders above ``-o``.
ESCAPE = "../../../outside/ESCAPE"

#: Codes refused for every kind (subject, visit, lesion, reader).
HOSTILE_CODES = [
    ESCAPE, "..", ".", "", "../x", "a/b", "a\\b", "/etc/passwd", "C:\\x", "~root/x",
    ".hidden", " S1", "S1 ", "S1.", "-rf", "--help", "S\x001", "S\n1", "S1\r", "S\t1", "S\x7f",
    "=HYPERLINK(\"http://example.invalid\")", "+1+1", "@SUM(A1)", "M\u00fcller", "S\u200b1",
    "S\u2215" "1",  # division slash, a '/' look-alike
    "x" * 5000,
    "CON", "nul", "Com1", "LPT9.1", "aux.txt",  # Windows devices: what is written to them is lost
]
#: Real codes (sample trial, pharmaverse oracles, the store tests) that must pass.
VALID_CODES = ["01-701-1015", "SYN-001", "S-EMPTY", "P-0001", "WEEK 6", "UNSCHEDULED 9.2",
               "SCREENING", "BL", "W06", "T01", "NT01", "NL01", "rad1", "batch", "1", "CONTROL",
               "COM10", "NUL1"]
#: Text cells a spreadsheet would run, and what the CSV writers must write instead.
FORMULA_CELLS = {
    "=1+1": "'=1+1",
    "+1+1": "'+1+1",
    "-1+1": "'-1+1",
    "@SUM(A1:A9)": "'@SUM(A1:A9)",
    "\t=1+1": "'\t=1+1",
    "\r=1+1": "'\r=1+1",
    "=cmd|' /C calc'!A0": "'=cmd|' /C calc'!A0",
    "-": "'-",
}
#: Text cells that stay as they are (plain numbers, ordinary text).
PLAIN_CELLS = ["-12.5", "+3", "-1e3", "-0.0", "12", "lung", "a=b", " =1", ""]


def _tiny_ct(folder: Path) -> tuple[Any, Any]:
    """A tiny CT under ``folder/ct`` and a long axis on its slice 3 (LPS, ``(2, 3)``)."""
    from tests.export.pacs_fixtures import points_on_slice, tiny_series

    series = tiny_series(folder / "ct")
    return series, points_on_slice(series.volume, 3, [(10.2, 8.4), (25.7, 27.1)])


def hostile_sr(folder: Path, subject: str = ESCAPE) -> tuple[Path, Path]:
    """A TID 1500 SR of one lesion on a tiny CT, with ``ClinicalTrialSubjectID = subject``.

    Returns
    -------
    (Path, Path)
        The SR file and the CT folder.
    """
    from recist_tool.export.dicom_derived import stable_uid, tracking_uid
    from recist_tool.export.dicom_sr import SrLesion, build_sr

    series, long = _tiny_ct(folder)
    lesion = SrLesion("T01", "TARGET", "liver", False, 21.3, None, long, None, None,
                      tracking_uid("TR", "S1", "rad1", "T01"))
    ds = build_sr(series, [lesion], observer="Reader One", login="rad1", visit="BL",
                  series_instance_uid=stable_uid("hostile-s"),
                  sop_instance_uid=stable_uid("hostile-i"))
    ds.ClinicalTrialSubjectID = subject
    ds.PatientID = "HOSTILE-1"
    path = folder / "hostile_sr.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path, folder / "ct"


def escaped_trial(folder: Path, *, reader: str = "rad1", password: str = "rad1-password"
                  ) -> tuple[Path, Any]:
    """Trial T1, subject S1 (BL on a tiny CT, T01 measured with end points and a mask), whose
    subject code is then set to :data:`ESCAPE` by SQL, as a tampered or foreign database could
    hold it (the application refuses that code).

    Returns
    -------
    (Path, SeriesWithHeaders)
        The SQLite file and the CT series.
    """
    import numpy as np
    from sqlalchemy import text

    from recist_tool.io.masks import save_mask
    from recist_tool.store import TrialStore

    series, long = _tiny_ct(folder)
    vol = series.volume
    mask = np.zeros((3, 8, 8), bool)
    mask[1, 2:6, 2:6] = True
    mask_path, sha = save_mask(mask, vol, folder / "masks" / "T01.nii.gz", offset=(2, 10, 10))
    db = folder / "tampered.db"
    with TrialStore(db) as s:
        s.add_reader(reader, password, full_name="Reader One")
        s.add_trial("T1")
        s.add_subject("T1", "S1", reference_date=dt.date(2026, 1, 2))
        s.add_timepoint("S1", "BL", dt.date(2026, 1, 2), series_uid=vol.meta.series_uid,
                        study_uid=vol.meta.study_uid, series_path=str(folder / "ct"))
        s.add_lesion("S1", "BL", "T01", "TARGET", reader=reader, organ="liver")
        s.record_measurement("S1", "BL", "T01", reader=reader, long_axis_mm="21.3",
                             endpoints_lps={"long": long.tolist(), "slice_index": 3},
                             mask_path=str(mask_path), mask_sha256=sha)
        s.compute_responses("S1", reader=reader)
        with s.engine.begin() as conn:  # behind the application's back
            conn.execute(text("UPDATE subject SET code = :c WHERE code = 'S1'"), {"c": ESCAPE})
    return db, series
