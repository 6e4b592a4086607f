"""A bad series (corrupt files, a seed in air) is reported and skipped; the rest completes; the exit
code says that something failed."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from recist_tool.cli import main

from .conftest import subset_manifest

pytestmark = pytest.mark.slow


def test_bad_cases_are_skipped_and_the_rest_completes(sample_trial: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    manifest = subset_manifest(sample_trial / "manifest.csv", tmp_path / "m.csv",
                               lambda r: r["subject"] == "SYN-003" and r["visit"] in ("BL", "W06"))
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    for i in range(3):
        (corrupt / f"CT{i:06d}.dcm").write_bytes(b"DICM" + bytes(range(256)) * 4)
    bl_001 = sample_trial / "SYN-001" / "BL"
    with manifest.open("a", newline="") as fh:
        w = csv.writer(fh)
        # a seed in the air in front of the patient (the series itself is fine)
        w.writerow(["AIR-001", "BL", "2025-03-03", bl_001, "", "T01", "target", "lung", "false",
                    "0", "-130", "-105"])
        w.writerow(["AIR-001", "W06", "2025-04-15", sample_trial / "SYN-001" / "W06", "", "", "",
                    "", "", "", "", ""])
        w.writerow(["BAD-002", "BL", "2025-03-03", corrupt, "", "T01", "target", "lung", "false",
                    "0", "0", "0"])
    out = tmp_path / "out"
    code = main(["batch", str(manifest), "--db", str(tmp_path / "r.db"), "-o", str(out),
                 "--workers", "2", "--segmenter", "classic"])
    text = capsys.readouterr()
    assert code == 1
    lines = text.out.splitlines()
    assert any(ln.startswith("failed AIR-001 BL") and "air" in ln for ln in lines), text.out
    assert any(ln.startswith("failed AIR-001 W06") and "baseline BL failed" in ln
               for ln in lines), text.out
    assert any(ln.startswith("failed BAD-002 BL") for ln in lines), text.out
    assert sum(ln.startswith("ok     SYN-003") for ln in lines) == 2, text.out
    assert "2 series scored, 3 failed in " in text.out, text.out
    assert "3 of 5 series failed" in text.err
    rows = list(csv.DictReader((out / "responses.csv").open()))
    assert [(r["subject"], r["visit"], r["overall_response"]) for r in rows] == [
        ("SYN-003", "BL", ""), ("SYN-003", "W06", "SD")]
    # the good cases are stored: a resumed run scores only the failed ones again
    code = main(["batch", str(manifest), "--db", str(tmp_path / "r.db"), "-o", str(out),
                 "--workers", "0", "--resume", "--segmenter", "classic"])
    text = capsys.readouterr()
    assert code == 1
    assert sum(ln.startswith("skip   SYN-003") for ln in text.out.splitlines()) == 2
