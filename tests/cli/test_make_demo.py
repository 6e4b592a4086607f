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


def _installs(target: str) -> list[str]:
    """The pip install lines ``make`` would run for ``target`` from nothing (``-B``: every
    target out of date, whatever this checkout's .venv holds)."""
    if shutil.which("make") is None:
        pytest.skip("make not installed")
    run = subprocess.run(["make", "-n", "-B", "-C", str(REPO), target], capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    return [ln.split("pip install -q ", 1)[1] for ln in run.stdout.splitlines()
            if "pip install -q " in ln and "--upgrade pip" not in ln]


def test_demo_installs_the_package_alone() -> None:
    """make demo installs what the main job uses: torch and the package, no test extras (issue #35
    item 11); make test installs the test extras."""
    assert _installs("demo") == ["torch==2.13.0", "-e ."]
    assert _installs("test") == ["torch==2.13.0", '-e ".[test]"']
