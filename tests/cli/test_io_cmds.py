"""`recist info` and `recist convert` as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from recist_tool.cli import main
from tests.io.dicom_factory import write_series

INFO_KEYS = {"series_uid", "modality", "series_description", "study_date", "n_slices",
             "shape_zyx", "spacing_zyx_mm", "slice_thickness_mm", "warnings"}


def test_info_json_on_philips_multiseries(shared_data: Path, capsys) -> None:
    folder = shared_data / "dicom/dcm_qa_ct/Philips_S21610"
    if not folder.is_dir():
        pytest.skip("Philips sample absent")
    assert main(["info", "--json", str(folder)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["series"]) == 2
    for s in out["series"]:
        assert INFO_KEYS <= set(s)
        assert "GANTRY_TILT" in s["warnings"]
    s2010 = next(s for s in out["series"] if s["n_slices"] == 54)
    assert s2010["spacing_zyx_mm"][0] == pytest.approx(2.371, abs=0.001)  # true gap, not 2.5
    reasons = {k["reason"] for k in out["skipped"]}
    assert {"LOCALIZER", "SECONDARY_CAPTURE", "DICOMDIR"} <= reasons


def test_info_table_and_convert(tmp_path: Path, capsys) -> None:
    write_series(tmp_path / "s", n=4)
    assert main(["info", str(tmp_path / "s")]) == 0
    assert "CT series" in capsys.readouterr().out
    assert main(["convert", str(tmp_path / "s"), "-o", str(tmp_path / "v.nrrd")]) == 0
    assert (tmp_path / "v.nrrd").exists()
    assert main(["info", "--json", str(tmp_path / "v.nrrd")]) == 0


def test_usage_error_exit_2(tmp_path: Path) -> None:
    assert main(["convert", str(tmp_path)]) == 2  # missing -o
    assert main(["no-such-command"]) == 2


def test_console_script_one_line_error_and_debug(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "recist"
    if not exe.exists():
        pytest.skip("console script not installed")
    missing = str(tmp_path / "nothing-here")
    r = subprocess.run([str(exe), "info", missing], capture_output=True, text=True)
    assert r.returncode == 3
    assert r.stderr.strip().startswith("error:") and "Traceback" not in r.stderr
    r = subprocess.run([str(exe), "--debug", "info", missing], capture_output=True, text=True)
    assert r.returncode != 0 and "Traceback" in r.stderr
