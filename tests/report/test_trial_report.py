"""Trial report: the plotted values are the store's responses; the plots and files are there."""

from __future__ import annotations

import csv
import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from recist_tool.recist.timepoint import pct_change
from recist_tool.report import build_reports, collect_views
from recist_tool.report.trial import TRIAL_FILES
from recist_tool.store import TrialStore
from tests.report.conftest import parse_html, pdf_pages


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def _dec(s: str) -> Decimal | None:
    return Decimal(s) if s else None


@pytest.fixture(scope="module")
def trial_out(scored_trial: tuple[Path, Path, dict[str, Any]],
              tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, Any]]:
    db, _sample, truth = scored_trial
    out = tmp_path_factory.mktemp("trial-report")
    with TrialStore(db, read_only=True) as store:
        summary = build_reports(store, out, include_unsigned=True, subject_reports=False)
    assert sorted(p.name for p in summary.files) == sorted(TRIAL_FILES)
    return out, db, truth


@pytest.mark.slow
def test_plotted_values_are_the_stored_responses(trial_out: Any) -> None:
    out, db, truth = trial_out
    rows = _rows(out / "plotted_values.csv")
    with TrialStore(db, read_only=True) as store:
        for code, gt in truth["subjects"].items():
            visits = list(gt["timepoints"])
            bl_date = dt.date.fromisoformat(gt["timepoints"][visits[0]]["date"])
            stored = {v: store.get_read(code, v, reader="batch").response for v in visits[1:]}
            spider = [r for r in rows if r["plot"] == "spider" and r["subject"] == code]
            assert [r["visit"] for r in spider] == visits  # baseline at 0 %, then each follow-up
            assert spider[0]["pct_change_from_baseline"] == "0" and spider[0]["study_day"] == "0"
            for r in spider[1:]:
                resp = stored[r["visit"]]
                assert _dec(r["sod_mm"]) == resp.sod_mm
                assert _dec(r["baseline_sod_mm"]) == resp.baseline_mm
                assert _dec(r["nadir_sod_mm"]) == resp.nadir_mm
                assert _dec(r["pct_change_from_baseline"]) == pct_change(resp.sod_mm, resp.baseline_mm)
                assert _dec(r["pct_change_from_nadir"]) == pct_change(resp.sod_mm, resp.nadir_mm)
                assert r["overall_response"] == resp.overall == \
                    gt["timepoints"][r["visit"]]["overall_response"]
                day = (dt.date.fromisoformat(r["date"]) - bl_date).days
                assert int(r["study_day"]) == day
            # waterfall: the minimum % change from baseline over the follow-ups
            (wf,) = [r for r in rows if r["plot"] == "waterfall" and r["subject"] == code]
            assert _dec(wf["pct_change_from_baseline"]) == min(
                pct_change(x.sod_mm, x.baseline_mm) for x in stored.values())
            # swimmer: each follow-up with its response; bar = baseline to last assessment
            swim = [r for r in rows if r["plot"] == "swimmer" and r["subject"] == code]
            assert [(r["visit"], r["overall_response"]) for r in swim] == \
                [(v, gt["timepoints"][v]["overall_response"]) for v in visits[1:]]
            last = dt.date.fromisoformat(gt["timepoints"][visits[-1]]["date"])
            assert {r["time_on_study_days"] for r in swim} == {str((last - bl_date).days)}
    # the batch's own responses.csv (written from its own engine run, 0.1 %) agrees
    batch = {(r["subject"], r["visit"]): r for r in _rows(db.parent / "batch-out" / "responses.csv")}
    for r in rows:
        if r["plot"] == "spider" and r["study_day"] != "0":
            b = batch[(r["subject"], r["visit"])]
            assert Decimal(b["pct_change_from_baseline"]) == \
                Decimal(r["pct_change_from_baseline"]).quantize(Decimal("0.1"))
            assert b["overall_response"] == r["overall_response"]
    # best responses: SYN-001 PR, SYN-002 PD (SD at W06 is inside the 42-day window), SYN-003 SD
    wf = {r["subject"]: r["best_response"] for r in rows if r["plot"] == "waterfall"}
    assert wf == {"SYN-001": "PR", "SYN-002": "PD", "SYN-003": "SD"}


@pytest.mark.slow
def test_trial_files(trial_out: Any) -> None:
    out, _db, _truth = trial_out
    for name in ("waterfall.png", "spider.png", "swimmer.png", "km.png"):
        assert (out / name).stat().st_size > 10_000
    html_text = (out / "trial_report.html").read_text()
    page = parse_html(html_text)
    assert len(page.images) == 4 and all(u.startswith("data:image/png;base64,") for u in page.images)
    summary = {r[0]: r for r in page.rows if r and r[0].startswith("SYN-")}
    wf = {r["subject"]: r for r in _rows(out / "plotted_values.csv") if r["plot"] == "waterfall"}
    assert sorted(summary) == sorted(wf) == ["SYN-001", "SYN-002", "SYN-003"]
    for code, row in summary.items():
        best = Decimal(wf[code]["pct_change_from_baseline"]).quantize(Decimal("0.1"))
        assert row[1:3] == [wf[code]["best_response"], f"{best} %"]
    assert summary["SYN-001"][3] == "85"  # 2025-03-03 → 2025-05-27
    assert pdf_pages(out / "trial_report.pdf") == 5  # summary + 4 plots


def test_trial_report_with_bad_input(bad_store: TrialStore, tmp_path: Path) -> None:
    summary = build_reports(bad_store, tmp_path, include_unsigned=True, subject_reports=False)
    assert sorted(p.name for p in summary.files) == sorted(TRIAL_FILES)
    rows = _rows(tmp_path / "plotted_values.csv")
    # S-ODD: W06 and W12 are NE without a complete sum: nothing on the waterfall / spider, but
    # both visits on the swimmer plot; S-EMPTY has nothing to plot
    assert {r["plot"] for r in rows} == {"swimmer"}
    assert [(r["subject"], r["visit"], r["overall_response"], r["time_on_study_days"])
            for r in rows] == [("S-ODD", "W06", "NE", "84"), ("S-ODD", "W12", "NE", "84")]
    _, _, views = collect_views(bad_store, include_unsigned=True)
    assert [v.best_label for v in views] == [None, "NE"]
    assert pdf_pages(tmp_path / "trial_report.pdf") == 5
