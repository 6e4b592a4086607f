"""Browsing the real Orthanc (what the napari series browser calls): studies by patient, date
range, modality and accession with their series, by DICOMweb and DIMSE; a series retrieved into
the cache with progress, and cancelled part-way leaving nothing behind; bad input and bad servers
as one line."""

from __future__ import annotations

import datetime as dt
import time

import numpy as np
import pydicom
import pytest

from recist_tool.io import pacs
from recist_tool.io.pacs import PacsError, RetrievalCancelled, StudyQuery
from tests.pacs.conftest import WRONG_PASSWORD, PacsSettings

SUBJECT = "SYN-001"


def _header(trial, visit: str) -> pydicom.Dataset:
    """A CT header of the subject's visit as written on disk (what the server was sent)."""
    tp = trial.ground_truth["subjects"][SUBJECT]["timepoints"][visit]
    for f in sorted((trial.sample_dir / tp["series_path"]).glob("*.dcm")):
        ds = pydicom.dcmread(f, stop_before_pixels=True)
        if ds.SeriesInstanceUID == tp["series_uid"]:
            return ds
    raise AssertionError(f"no file of {visit}'s series")


@pytest.mark.parametrize("server", ["web", "dimse"])
def test_search_by_patient_and_dates_lists_studies_and_series(on_server, pacs_settings: PacsSettings,
                                                              server: str) -> None:
    tps = on_server.ground_truth["subjects"][SUBJECT]["timepoints"]
    bl, w06, w12 = (dt.date.fromisoformat(tps[v]["date"]) for v in ("BL", "W06", "W12"))
    q = StudyQuery(patient_id=SUBJECT, date_from=bl, date_to=w06, modality="ct")
    found = pacs.search_studies(server, q)
    by_uid = {s.study_uid: s for s in found.studies}
    assert tps["BL"]["study_uid"] in by_uid and tps["W06"]["study_uid"] in by_uid
    assert tps["W12"]["study_uid"] not in by_uid  # after the range
    assert all(bl <= s.date <= w06 and s.patient_id == SUBJECT for s in found.studies)
    assert [s.date for s in found.studies] == sorted(s.date for s in found.studies)
    assert not found.truncated and found.message().startswith(f"PACS {server}: ")
    for visit in ("BL", "W06"):
        hdr = _header(on_server, visit)
        study = by_uid[tps[visit]["study_uid"]]
        assert study.accession == hdr.AccessionNumber and study.description == hdr.StudyDescription
        assert "CT" in study.modalities
        ct = next(s for s in study.series if s.series_uid == tps[visit]["series_uid"])
        assert ct.number == int(hdr.SeriesNumber) and ct.description == hdr.SeriesDescription
        assert ct.modality == "CT" and ct.date == dt.date.fromisoformat(tps[visit]["date"])
        assert ct.n_instances == tps[visit]["acquisition"]["shape_zyx"][0]
        assert ct.ref == f"pacs://{server}/{tps[visit]['study_uid']}/{tps[visit]['series_uid']}"
        # DICOMweb (Orthanc's plugin) gives the slice thickness at series level, C-FIND does not
        thick = tps[visit]["acquisition"]["slice_thickness_mm"]
        assert ct.slice_thickness_mm == (thick if server == "web" else None)
        assert all(s.modality == "CT" for s in study.series)
        assert [s.number for s in study.series] == sorted(s.number for s in study.series)
    # the baseline folder holds a localizer too: its own series, listed before the axial CT
    assert len(by_uid[tps["BL"]["study_uid"]].series) == 2


@pytest.mark.parametrize("server", ["web", "dimse"])
def test_search_by_accession_wildcards_limit_and_nothing(on_server, pacs_settings: PacsSettings,
                                                         server: str) -> None:
    tps = on_server.ground_truth["subjects"][SUBJECT]["timepoints"]
    acc = _header(on_server, "W12").AccessionNumber
    found = pacs.search_studies(server, StudyQuery(accession=acc, modality=""))
    assert [s.study_uid for s in found.studies] == [tps["W12"]["study_uid"]]
    assert found.message() == f"PACS {server}: 1 study, 1 series"
    # a wildcard: every subject's studies; a limit says there are more
    every = pacs.search_studies(server, StudyQuery(patient_id="SYN-00*"))
    subjects = on_server.ground_truth["subjects"]
    # (``on_server`` uploads the ``*.dcm`` files: a visit written without the extension is not
    # on the server)
    want = {tp["study_uid"] for s in subjects.values() for tp in s["timepoints"].values()
            if tp["acquisition"]["file_extension"] == ".dcm"}
    assert len(want) >= 3
    assert want <= {s.study_uid for s in every.studies}
    few = pacs.search_studies(server, StudyQuery(patient_id="SYN-00*"), limit=2)
    assert len(few.studies) == 2 and few.truncated and "narrow the search" in few.message()
    none = pacs.search_studies(server, StudyQuery(patient_id="NOBODY-9", date_from=dt.date(2020, 1, 1)))
    assert none.studies == () and not none.truncated
    assert none.message() == f"PACS {server}: no study matches patient NOBODY-9, CT, 2020-01-01 to …"


@pytest.mark.parametrize(("query", "message"), [
    (StudyQuery(patient_id="SYN\\001"), "patient ID must be at most 64 characters, without \\"),
    (StudyQuery(accession="A" * 17), "accession number must be at most 16 characters"),
    (StudyQuery(modality="C T"), "modality 'C T' is not a DICOM modality"),
    (StudyQuery(date_from=dt.date(2025, 5, 1), date_to=dt.date(2025, 4, 1)),
     "the date range ends (2025-04-01) before it starts (2025-05-01)"),
])
def test_bad_query_one_line_before_any_server(query: StudyQuery, message: str) -> None:
    with pytest.raises(PacsError) as err:
        pacs.search_studies("no-such-server", query)  # the query is refused first
    assert message in str(err.value) and "\n" not in str(err.value)


def test_dates_and_date_ranges() -> None:
    from recist_tool.io.pacs.browse import parse_date

    assert parse_date(" 2025-03-03 ") == dt.date(2025, 3, 3) and parse_date("") is None
    with pytest.raises(PacsError, match=r"study date from '3/3/2025' is not a date \(write YYYY-MM-DD\)"):
        parse_date("3/3/2025", "study date from")
    d = dt.date(2025, 3, 3)
    assert StudyQuery(date_from=d).filters()["StudyDate"] == "20250303-"
    assert StudyQuery(date_to=d).filters()["StudyDate"] == "-20250303"
    assert StudyQuery(date_from=d, date_to=d).filters()["StudyDate"] == "20250303"
    assert StudyQuery(modality="").filters() == {}


@pytest.mark.parametrize(("server", "message"), [
    ("down-web", "cannot be reached"),
    ("down-dimse", "cannot be reached"),
    ("wrong-login", "refused the login (HTTP 401)"),
    ("intruder", "rejected the association"),
    ("nope", "PACS server 'nope' is not in"),
])
def test_bad_server_one_line(on_server, pacs_settings: PacsSettings, server: str,
                             message: str) -> None:
    t0 = time.perf_counter()
    with pytest.raises(PacsError) as err:
        pacs.search_studies(server, StudyQuery(patient_id=SUBJECT))
    text = str(err.value)
    assert message in text and "\n" not in text and WRONG_PASSWORD not in text
    assert time.perf_counter() - t0 < 20


@pytest.mark.parametrize("server", ["web", "dimse"])
def test_prefetch_progress_cancel_and_load(on_server, pacs_settings: PacsSettings, server: str,
                                           tmp_path, monkeypatch) -> None:
    from recist_tool.io import load_volume

    monkeypatch.setenv("RECIST_PACS_CACHE", str(tmp_path / "cache"))  # an empty cache
    tp = on_server.ground_truth["subjects"][SUBJECT]["timepoints"]["W06"]
    ref = f"pacs://{server}/{tp['study_uid']}/{tp['series_uid']}"
    n = tp["acquisition"]["shape_zyx"][0]
    # cancelled after 10 instances: the retrieve stops, nothing of the series stays in the cache
    seen: list[tuple[int, int]] = []
    with pytest.raises(RetrievalCancelled, match="cancelled"):
        pacs.prefetch(ref, lambda d, t: seen.append((d, t)), cancelled=lambda: len(seen) >= 10)
    assert 10 <= len(seen) < n and all(t == n for _, t in seen)
    assert [p for p in (tmp_path / "cache").iterdir() if not p.name.endswith(".lock")] == []
    # cancelled before it starts
    with pytest.raises(RetrievalCancelled):
        pacs.prefetch(ref, cancelled=lambda: True)
    # retrieved: progress to the end; a second prefetch finds it cached (no instance retrieved)
    seen.clear()
    assert pacs.prefetch(ref, lambda d, t: seen.append((d, t))) == n
    assert seen[-1] == (n, n) and len(seen) >= n // 2
    seen.clear()
    assert pacs.prefetch(ref, lambda d, t: seen.append((d, t))) == n and seen == [(n, n)]
    disk = load_volume(on_server.sample_dir / tp["series_path"], tp["series_uid"])
    vol = load_volume(ref)
    np.testing.assert_array_equal(vol.array, disk.array)
    np.testing.assert_array_equal(vol.affine, disk.affine)
    with pytest.raises(PacsError, match="name the series"):
        pacs.prefetch(f"pacs://{server}/{tp['study_uid']}")
