"""``make demo`` on a clean database: the sample trial scored with the Makefile's segmenter matches
its ground truth within the Makefile's tolerance (what the demo checks, without ``--resume`` over
assessments stored by other weights)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from recist_tool.batch import compare_with_truth, run_batch

pytestmark = pytest.mark.slow

MAKEFILE = Path(__file__).resolve().parents[2] / "Makefile"


def _make_variable(name: str) -> str:
    m = re.search(rf"^{name}\s*\?=\s*(\S+)\s*$", MAKEFILE.read_text(), re.MULTILINE)
    assert m, f"{name} not set in {MAKEFILE}"
    return m.group(1)


def test_demo_segmenter_scores_the_sample_trial_within_the_demo_tolerance(
        sample_trial: Path, tmp_path: Path) -> None:
    segmenter = _make_variable("DEMO_SEGMENTER")
    tolerance = float(_make_variable("DEMO_TOL_MM"))
    summary = run_batch(sample_trial / "manifest.csv", db=tmp_path / "recist.db",
                        outdir=tmp_path / "out", workers=2, segmenter=segmenter)
    assert summary.ok, [(r.key, r.error) for r in summary.failed]
    truth = json.loads((sample_trial / "ground_truth.json").read_text())
    report = compare_with_truth(truth, summary.responses, summary.measurements,
                                tolerance_mm=tolerance)
    print(report.summary())
    assert report.ok, report.problems
    assert report.n_matched == len(report.responses) == 6
