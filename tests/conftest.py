"""Shared fixtures: where the public test material lives (skips when it is absent), the synthetic
trial, and the synthetic trial scored by ``recist batch``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, NamedTuple

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """The public test material: ``$RECIST_TEST_DATA`` or ``../shared/data`` beside the repo."""
    return Path(os.environ.get("RECIST_TEST_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to ``../shared/data``; skips the test with a reason where it is absent."""
    root = shared_data_dir()
    if not root.is_dir():
        pytest.skip(f"shared test data not found at {root} (set RECIST_TEST_DATA)")
    return root


def require(path: Path) -> Path:
    """Return ``path`` or skip the calling test naming what is missing."""
    if not path.exists():
        pytest.skip(f"shared test data missing: {path}")
    return path


@pytest.fixture(scope="session")
def reading_trial(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """``(folder, ground truth)`` of the synthetic trial with one subject (SYN-001, seed 0), shared
    by the reading-workflow and napari tests."""
    from recist_tool.sample_data import generate_trial

    root = tmp_path_factory.mktemp("reading-trial")
    gt = generate_trial(root, seed=0, n_subjects=1)
    return root, gt


class ScoredTrial(NamedTuple):
    """The sample trial scored by ``recist batch`` (see :func:`scored_trial`)."""

    db_path: Path
    sample_dir: Path
    ground_truth: dict[str, Any]


@pytest.fixture(scope="session")
def scored_trial(tmp_path_factory: pytest.TempPathFactory) -> ScoredTrial:
    """The sample trial (3 subjects × BL/W06/W12, seed 0) scored once per session by ``run_batch``
    (reader ``batch``, classic segmenter, reads open/unsigned; masks kept) — shared by the export,
    PACS and report tests. (``tests/batch`` scores its own, in two runs, to test ``--resume``.)"""
    sample = pytest.importorskip("recist_tool.sample_data", reason="sample data generator")
    from recist_tool.batch import run_batch

    root = tmp_path_factory.mktemp("scored-trial")
    sample.generate_trial(root / "sample", seed=0, n_subjects=3)
    db = root / "recist.db"
    summary = run_batch(root / "sample" / "manifest.csv", db=db, outdir=root / "batch-out",
                        workers=2, segmenter="classic")
    failed = [f"{r.subject} {r.visit}: {r.error}" for r in summary.results if not r.ok]
    assert not failed, failed
    truth = json.loads((root / "sample" / "ground_truth.json").read_text())
    return ScoredTrial(db, root / "sample", truth)
