"""Test material for the DICOM SR / SEG exports and the SR import (PACS tests).

* :func:`tiny_series` writes a small gantry-tilted, oblique CT series (a few KB) and loads it with
  its headers: fast tests of geometry, dciodvfy and read-back.
* The scored sample trial is the session fixture ``scored_trial`` of ``tests/conftest.py``.
* :func:`dciodvfy_errors` runs dicom3tools' validator and returns its ``Error`` lines.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import ScoredTrial  # noqa: F401  (re-exported for the PACS tests)
from tests.io.dicom_factory import write_series

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


def dciodvfy_errors(path: Path) -> tuple[list[str], list[str]]:
    """``(errors, warnings)`` lines of ``dciodvfy`` on ``path``; skips when it is not installed."""
    exe = shutil.which("dciodvfy")
    if exe is None:
        pytest.skip("dciodvfy not installed (Debian package dicom3tools)")
    run = subprocess.run([exe, str(path)], capture_output=True, text=True, timeout=120)
    lines = [ln.strip() for ln in (run.stdout + run.stderr).splitlines() if ln.strip()]
    return ([ln for ln in lines if ln.startswith("Error")],
            [ln for ln in lines if ln.startswith("Warning")])
