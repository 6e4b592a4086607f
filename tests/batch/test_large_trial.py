"""The large-lesion sample trial's central lung primary through ``recist batch`` with the demo's
segmenter: the 80 mm lobulated primary is outlined whole at baseline from its click (the
network's own mask is one lobe, 38 mm, whose outline is no edge), its cavitated follow-ups keep
the baseline's segmenter, and each reads the true shrinkage or is shown as uncertain."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recist_tool.batch import compare_with_truth, run_batch

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def large_subject(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SYN-001 of ``recist sample-data --large-lesions`` (seed 0): archetype A with the central
    primary T05, which cavitates and shrinks to 0.68 and 0.58 of its baseline long axis."""
    from recist_tool.sample_data import generate_trial

    root = tmp_path_factory.mktemp("large-trial")
    generate_trial(root, seed=0, n_subjects=1, large_lesions=True)
    return root


def test_the_central_primary_is_measured_whole_and_its_shrinkage_read(
        large_subject: Path, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    summary = run_batch(large_subject / "manifest.csv", db=tmp_path / "recist.db",
                        outdir=tmp_path / "out", workers=1, segmenter="unet:edge=half-contrast")
    assert summary.ok, [(r.key, r.error) for r in summary.failed]
    truth = json.loads((large_subject / "ground_truth.json").read_text())
    report = compare_with_truth(truth, summary.responses, summary.measurements, tolerance_mm=1.5)
    t05 = {c.visit: c for c in report.lesions if c.lesion_id == "T05"}
    print({v: (c.long_axis_mm, c.true_long_axis_mm) for v, c in t05.items()})
    bl = t05["BL"]  # 77.9 mm (true 80.4 mm; 74.7 mm before contour 0.4 added its lobules)
    assert bl.long_axis_mm == pytest.approx(bl.true_long_axis_mm, rel=0.1)
    rows = {m.visit: m for m in summary.measurements if m.lesion_id == "T05"}
    assert rows["BL"].segmenter == "contour"
    for visit in ("W06", "W12"):  # what responses rest on: the change since baseline
        ratio = t05[visit].long_axis_mm / bl.long_axis_mm
        true_ratio = t05[visit].true_long_axis_mm / bl.true_long_axis_mm
        assert rows[visit].segmenter == "contour", visit  # the baseline's, kept
        # read within 0.05 of the true change, or shown to the reader as uncertain: the
        # primary shrinks towards the mediastinum, so its centre moves 10-14 mm
        assert ratio == pytest.approx(true_ratio, abs=0.05) or \
            rows[visit].tracking == "uncertain", (visit, ratio, true_ratio)
    assert all(r.match for r in report.responses), report.problems
