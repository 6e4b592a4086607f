"""Shared fixtures: where the public test material lives, and skips when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

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
