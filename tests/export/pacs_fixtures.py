"""Test material for the DICOM SR / SEG exports and the SR import (PACS tests).

* :func:`tiny_series` writes a small gantry-tilted, oblique CT series (a few KB) and loads it with
  its headers: fast tests of geometry, dciodvfy and read-back.
* :func:`scored_trial_once` generates the synthetic sample trial (one subject × BL/W06/W12) and
  scores it with ``run_batch`` once per test session, whichever PACS test module asks first; the
  ``scored_trial`` fixtures of those modules return it as ``(db_path, sample_dir, ground_truth)``
  (the shape of the EDC tests' session fixture of the same name).
* :func:`dciodvfy_errors` runs dicom3tools' validator and returns its ``Error`` lines.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pytest

from tests.io.dicom_factory import write_series


class ScoredTrial(NamedTuple):
    db_path: Path
    sample_dir: Path
    ground_truth: dict[str, Any]


_CACHE: dict[str, ScoredTrial] = {}

#: Oblique orientation (rows along x tilted 20° about z, columns along y tilted 10° about x).
OBLIQUE = (0.9396926, 0.3420201, 0.0, -0.3368241, 0.9254166, 0.1736482)


def tiny_series(folder: Path, *, n: int = 8, shape: tuple[int, int] = (40, 36)) -> Any:
    """A gantry-tilted oblique series on disk, loaded as ``SeriesWithHeaders``."""
    from recist_tool.io.dicom_refs import load_series_with_headers

    write_series(folder, n=n, shape=shape, gap=2.5, tilt_shift_mm=0.7, orientation=OBLIQUE,
                 spacing=(0.7, 0.8), seed=3)
    return load_series_with_headers(folder)


def points_on_slice(volume: Any, k: int, yx: list[tuple[float, float]]) -> np.ndarray:
    """LPS of fractional in-plane indices ``(y, x)`` on slice ``k``."""
    return volume.index_to_lps(np.array([(float(k), y, x) for y, x in yx]))


def scored_trial_once(tmp_path_factory: pytest.TempPathFactory) -> ScoredTrial:
    """The sample trial (SYN-001 × BL/W06/W12) scored by ``run_batch``; built once per session."""
    if "trial" not in _CACHE:
        from recist_tool.batch import run_batch
        from recist_tool.sample_data import generate_trial

        root = tmp_path_factory.mktemp("pacs-trial")
        generate_trial(root / "sample", seed=0, n_subjects=1)
        db = root / "recist.db"
        summary = run_batch(root / "sample" / "manifest.csv", db=db, outdir=root / "batch-out",
                            workers=1, segmenter="classic")
        failed = [f"{r.subject} {r.visit}: {r.error}" for r in summary.results if not r.ok]
        assert not failed, failed
        truth = json.loads((root / "sample" / "ground_truth.json").read_text())
        _CACHE["trial"] = ScoredTrial(db, root / "sample", truth)
    return _CACHE["trial"]


def dciodvfy_errors(path: Path) -> tuple[list[str], list[str]]:
    """``(errors, warnings)`` lines of ``dciodvfy`` on ``path``; skips when it is not installed."""
    exe = shutil.which("dciodvfy")
    if exe is None:
        pytest.skip("dciodvfy not installed (Debian package dicom3tools)")
    run = subprocess.run([exe, str(path)], capture_output=True, text=True, timeout=120)
    lines = [ln.strip() for ln in (run.stdout + run.stderr).splitlines() if ln.strip()]
    return ([ln for ln in lines if ln.startswith("Error")],
            [ln for ln in lines if ln.startswith("Warning")])
