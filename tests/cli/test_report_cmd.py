"""``recist report``: a thin shell; one-line errors and exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest

from recist_tool.cli import main
from recist_tool.store import TrialStore
from tests.report.conftest import bad_store  # noqa: F401  (fixture)


def test_report_cli(bad_store: TrialStore, tmp_path: Path,  # noqa: F811
                    capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "bad.db")  # where the fixture created it
    assert Path(db).is_file()
    out = tmp_path / "rep"
    assert main(["report", "--db", db, "-o", str(out), "--subject", "S-ODD", "--include-unsigned",
                 "--subjects-only"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["S-ODD.html", "S-ODD.pdf"]
    text = capsys.readouterr().out
    assert "S-ODD: T02 was measured only at baseline" in text and "2 file(s)" in text
    assert main(["report", "--db", db, "-o", str(tmp_path / "t"), "--include-unsigned",
                 "--trial-only"]) == 0
    assert (tmp_path / "t" / "waterfall.png").is_file() and not (tmp_path / "t" / "S-ODD.pdf").exists()
    # errors: one line, exit codes 3 (unusable input) and 2 (usage)
    capsys.readouterr()
    assert main(["report", "--db", db, "-o", str(tmp_path / "x")]) == 3
    err = capsys.readouterr().err
    assert "not signed" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert main(["report", "--db", db, "-o", str(tmp_path / "x"), "--subject", "NOPE",
                 "--include-unsigned"]) == 3
    assert "NOPE" in capsys.readouterr().err
    assert main(["report", "--db", db, "-o", str(tmp_path / "x"), "--trial-only",
                 "--subjects-only"]) == 2
    assert main(["report", "--db", str(tmp_path / "missing.db"), "-o", str(tmp_path / "x")]) == 3
