"""The whole synthetic trial scored end to end, checked against its ground truth; resume and re-runs
add no rows."""

from __future__ import annotations

import csv
import datetime as dt
import sqlite3
from pathlib import Path

import pytest

from recist_tool.batch import compare_with_truth, run_batch
from recist_tool.batch.persist import MEASUREMENT_COLUMNS, RESPONSE_COLUMNS, save_case
from recist_tool.segment.classic import __version__ as classic_version

from .conftest import ScoredTrial

pytestmark = pytest.mark.slow

TABLES = ("subject", "timepoint", "timepoint_read", "lesion", "measurement", "timepoint_response")


def _counts(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as c:
        return {t: c.execute(f"select count(*) from {t}").fetchone()[0] for t in TABLES}


def test_every_case_scored(scored_trial: ScoredTrial) -> None:
    s = scored_trial.summary
    assert [r.ok for r in scored_trial.baselines.results] == [True] * 3
    assert sorted(s.skipped) == [("SYN-001", "BL"), ("SYN-002", "BL"), ("SYN-003", "BL")]
    assert len(s.results) == 6 and s.ok, [(r.key, r.error) for r in s.failed]


def test_overall_responses_equal_the_ground_truth(scored_trial: ScoredTrial) -> None:
    rows = list(csv.DictReader((scored_trial.out / "responses.csv").open()))
    assert tuple(rows[0]) == RESPONSE_COLUMNS
    assert len(rows) == 9
    truth = scored_trial.truth["subjects"]
    for r in rows:
        tp = truth[r["subject"]]["timepoints"][r["visit"]]
        assert r["date"] == tp["date"]
        assert (r["overall_response"] or None) == tp["overall_response"], r
        if tp["overall_response"] is not None:
            assert r["new_lesions"] == ("UNEQUIVOCAL" if tp["new_lesions"] else "NONE")
    report = compare_with_truth(scored_trial.truth, scored_trial.summary.responses,
                                scored_trial.summary.measurements)
    assert report.n_matched == len(report.responses) == 6


def test_measurements_csv(scored_trial: ScoredTrial) -> None:
    rows = list(csv.DictReader((scored_trial.out / "measurements.csv").open()))
    assert tuple(rows[0]) == MEASUREMENT_COLUMNS
    n_truth = sum(len(tp["lesions"]) for s in scored_trial.truth["subjects"].values()
                  for tp in s["timepoints"].values())
    assert len(rows) == n_truth == 40
    by = {(r["subject"], r["visit"], r["lesion_id"]): r for r in rows}
    gone = by[("SYN-001", "W12", "T04")]
    assert gone["state"] == "ABSENT" and gone["tracking"] == "absent?" and gone["long_axis_mm"] == ""
    new = by[("SYN-002", "W12", "NL01")]
    assert new["category"] == "NEW" and new["state"] == "MEASURED" and new["tracking"] == "seeded"
    tracked = [r for r in rows if r["visit"] != "BL" and r["tracking"] in ("found", "uncertain")]
    assert len(tracked) == 25 and all(0 < float(r["confidence"]) <= 1 for r in tracked)
    assert all(r["segmenter"] for r in rows if r["state"] == "MEASURED")


def test_long_axes_within_1_5_mm(scored_trial: ScoredTrial) -> None:
    """Every long axis within 1.5 mm of the generator's truth (measured max 0.9 mm: the classic
    segmenter puts soft-tissue lesion edges at half contrast)."""
    report = compare_with_truth(scored_trial.truth, scored_trial.summary.responses,
                                scored_trial.summary.measurements, tolerance_mm=1.5)
    print(report.summary())
    assert report.ok, report.problems


def test_resume_and_rerun_add_no_rows(scored_trial: ScoredTrial, tmp_path: Path) -> None:
    before = _counts(scored_trial.db)
    assert before["measurement"] == 40 and before["timepoint_response"] == 6
    again = run_batch(scored_trial.trial / "manifest.csv", db=scored_trial.db, outdir=tmp_path,
                      workers=2, resume=True, segmenter="classic")
    assert again.results == [] and len(again.skipped) == 9
    assert again.skipped_other_segmenter == {}
    assert _counts(scored_trial.db) == before
    assert (tmp_path / "responses.csv").read_text() == (scored_trial.out / "responses.csv").read_text()
    # storing the same results again (a re-run without --resume) writes nothing
    from recist_tool.batch import plan_cases, read_manifest
    from recist_tool.store import TrialStore

    cases = {c.key: c for p in plan_cases(read_manifest(scored_trial.trial / "manifest.csv"))
             for c in p.cases}
    with TrialStore(scored_trial.db) as store:
        n = sum(save_case(store, cases[r.key], r, reader="batch")
                for r in scored_trial.summary.results)
        audit = len(store.audit_log())
    assert n == 0 and _counts(scored_trial.db) == before
    with TrialStore(scored_trial.db) as store:
        assert len(store.audit_log()) == audit


def test_resume_with_another_segmenter_says_what_it_kept(scored_trial: ScoredTrial,
                                                          tmp_path: Path, capsys) -> None:
    """``--resume`` with another segmenter than the one that scored the stored series keeps
    them, and says so (a truth comparison would otherwise mix segmenters unseen)."""
    from recist_tool.cli import main

    before = _counts(scored_trial.db)
    rc = main(["batch", str(scored_trial.trial / "manifest.csv"), "--db", str(scored_trial.db),
               "-o", str(tmp_path), "--resume", "--segmenter", "unet:edge=half-contrast"])
    err = capsys.readouterr().err
    assert rc == 0 and _counts(scored_trial.db) == before
    assert "warning: --resume kept 9 stored series scored by another segmenter or version " \
           f"(classic {classic_version})" in err


def test_irecist_settings(sample_trial: Path, tmp_path: Path) -> None:
    """``--settings`` with iRECIST: the new lesion at W12 is iUPD, not PD; policies are stored."""
    from .conftest import subset_manifest

    settings = tmp_path / "trial.toml"
    settings.write_text('[trial]\nname = "ES-SCLC iRECIST"\ncriteria = "iRECIST"\n\n'
                        '[recist]\nsd_min_days = 35\n')
    manifest = subset_manifest(sample_trial / "manifest.csv", tmp_path / "m.csv",
                               lambda r: r["subject"] == "SYN-002")
    s = run_batch(manifest, db=tmp_path / "i.db", outdir=tmp_path / "out", workers=2,
                  settings=settings, segmenter="classic")
    assert s.ok
    assert [(r.visit, r.overall_response, r.criteria) for r in s.responses] == [
        ("BL", None, "iRECIST"), ("W06", "iSD", "iRECIST"), ("W12", "iUPD", "iRECIST")]
    with sqlite3.connect(tmp_path / "i.db") as c:
        name, criteria, policies = c.execute("select name, criteria, policies from trial").fetchone()
    assert (name, criteria) == ("ES-SCLC iRECIST", "iRECIST") and '"sd_min_days": 35' in policies


def test_best_response(scored_trial: ScoredTrial) -> None:
    """Best overall response with the default policies (SD counts from day 42 of the baseline)."""
    rows = {r["subject"]: r for r in csv.DictReader((scored_trial.out / "best_response.csv").open())}
    truth = scored_trial.truth["subjects"]
    assert rows["SYN-001"]["best_response"] == "PR"  # PR at W06, PR again at W12 (42 days later)
    assert rows["SYN-001"]["confirmed_best_response"] == "PR"
    # SYN-002: SD at W06 is 41 days after baseline (< 42): it does not count; PD at W12
    bl, w06 = (dt.date.fromisoformat(truth["SYN-002"]["timepoints"][v]["date"]) for v in ("BL", "W06"))
    assert (w06 - bl).days == 41
    assert (rows["SYN-002"]["best_response"], rows["SYN-002"]["pd_date"]) == ("PD", "2025-06-14")
    assert rows["SYN-003"]["best_response"] == "SD"  # SD at day 42, then PD
    assert {r["reference_date"] for r in rows.values()} == {
        truth[s]["timepoints"]["BL"]["date"] for s in rows}


def test_masks_and_series_locations_are_stored(scored_trial: ScoredTrial) -> None:
    """Every segmented lesion's mask is kept (hash-named, sha256 in the row) and lies on its series:
    measured again from the file it gives the stored long axis; each visit knows its series."""
    import hashlib

    from recist_tool.io import load_volume
    from recist_tool.io.masks import load_mask_crop
    from recist_tool.measure import measure_mask
    from recist_tool.store import TrialStore

    with TrialStore(scored_trial.db, read_only=True) as store:
        tp = store.timepoint_info("SYN-002", "W06")
        assert Path(tp.series_path) == (scored_trial.trial / "SYN-002" / "W06").resolve()
        read = store.get_read("SYN-002", "W06", reader="batch")
    vol = load_volume(tp.series_path)
    checked = 0
    for m in read.measurements:
        if m.state != "MEASURED":
            continue
        path = Path(m.mask_path)
        assert path.parent == scored_trial.out / "masks" / "SYN-002" / "W06"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == m.mask_sha256
        assert path.name == f"{m.lesion_id}-{m.mask_sha256[:12]}.nii.gz"
        crop, offset = load_mask_crop(path, vol)
        again = measure_mask(vol, crop, node=m.nodal, offset=offset)
        assert abs(again.long_axis_mm - float(m.long_axis_mm)) <= 0.051
        checked += 1
    assert checked >= 3
