"""``recist batch`` says what happened: where the series are scored, how many were scored and how
many failed (issue #35 item 10)."""

from __future__ import annotations

from pathlib import Path

import pytest

from recist_tool.cli import main

MANIFEST = """subject,visit,date,series_path,series_uid,lesion_id,category,organ,nodal,seed_x,seed_y,seed_z
P1,BL,2025-01-02,p1/BL,,T01,target,lung,false,0,0,0
P1,W06,2025-02-12,p1/W06,,,,,,,,
"""


def test_all_failed_is_not_called_scored(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Both series fail (no DICOM at baseline; its follow-up cannot be tracked): the summary says
    0 scored, 2 failed, with no throughput; exit 1."""
    for visit in ("BL", "W06"):
        (tmp_path / "p1" / visit).mkdir(parents=True)
        (tmp_path / "p1" / visit / "x.dcm").write_text("not a DICOM file")
    (tmp_path / "m.csv").write_text(MANIFEST)
    rc = main(["batch", str(tmp_path / "m.csv"), "--db", str(tmp_path / "r.db"),
               "-o", str(tmp_path / "out"), "--workers", "0"])
    text = capsys.readouterr()
    assert rc == 1
    lines = text.out.splitlines()
    assert lines[0] == "scoring 2 series (in-process)"
    assert any(ln.startswith("0 series scored, 2 failed in ") and ln.endswith(" s (in-process)")
               for ln in lines), text.out
    assert "series/min" not in text.out and "2 series scored" not in text.out
    assert text.err == "2 of 2 series failed: P1 BL; P1 W06\n"
