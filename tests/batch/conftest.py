"""The synthetic trial, generated once per session, and one scored run of it (slow tests)."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


@dataclass
class ScoredTrial:
    trial: Path
    truth: dict[str, Any]
    db: Path
    out: Path
    baselines: Any  # BatchSummary of the baseline-only run
    summary: Any  # BatchSummary of the full run (--resume: baselines skipped)


def subset_manifest(src: Path, dest: Path, keep: Any) -> Path:
    """Copy ``src`` keeping the rows for which ``keep(row)`` is true (paths made absolute)."""
    with src.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    with dest.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        for r in rows:
            if keep(r):
                w.writerow({**r, "series_path": str(src.parent / r["series_path"])})
    return dest


@pytest.fixture(scope="session")
def sample_trial(tmp_path_factory: pytest.TempPathFactory) -> Path:
    sample = pytest.importorskip("recist_tool.sample_data", reason="sample data generator")
    root = tmp_path_factory.mktemp("trial")
    sample.generate_trial(root, seed=0, n_subjects=3)
    return root


@pytest.fixture(scope="session")
def scored_trial(sample_trial: Path, tmp_path_factory: pytest.TempPathFactory) -> ScoredTrial:
    """The whole trial scored with 2 local workers and the classic segmenter (pinned: the figures
    below are its own, whatever the default becomes): first the baselines alone, then the whole
    manifest with ``resume`` (baselines skipped, follow-ups tracked from the stored baselines)."""
    from recist_tool.batch import run_batch

    work = tmp_path_factory.mktemp("scored")
    db = work / "recist.db"
    bl = subset_manifest(sample_trial / "manifest.csv", work / "baselines.csv",
                         lambda r: r["visit"] == "BL")
    first = run_batch(bl, db=db, outdir=work / "out-bl", workers=2, segmenter="classic")
    summary = run_batch(sample_trial / "manifest.csv", db=db, outdir=work / "out", workers=2,
                        resume=True, segmenter="classic")
    truth = json.loads((sample_trial / "ground_truth.json").read_text())
    return ScoredTrial(sample_trial, truth, db, work / "out", first, summary)
