"""``make demo DEMO_SEGMENTER=...`` scores into a folder of its own, so a comparison starts from a
clean database instead of resuming over the first segmenter's reads (issue #35 item 4)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _batch_line(*args: str) -> str:
    if shutil.which("make") is None:
        pytest.skip("make not installed")
    run = subprocess.run(["make", "-n", "-C", str(REPO), "demo", *args], capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    lines = [ln for ln in run.stdout.splitlines() if "recist batch" in ln]
    assert len(lines) == 1, run.stdout
    return lines[0]


@pytest.mark.parametrize(("args", "folder"), [
    ((), "demo-out"),
    (("DEMO_SEGMENTER=classic",), "demo-out-classic"),
    (("DEMO_SEGMENTER=unet:edge=auto",), "demo-out-unet-edge-auto"),
    (("DEMO_SEGMENTER=classic", "DEMO_OUT=/tmp/mine"), "/tmp/mine"),
])
def test_each_segmenter_scores_into_its_own_folder(args: tuple[str, ...], folder: str) -> None:
    line = _batch_line(*args)
    assert f"recist batch {folder}/manifest.csv --db {folder}/recist.db -o {folder}/results" in line
