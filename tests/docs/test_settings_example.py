"""docs/store.md's trial settings file is read as it says by each reader of it: ``[trial] name,
criteria, visits`` (stored with the trial by ``recist trial add``), ``[recist]``, ``[endpoints]``,
``[evaluators]``; a visit without a name is refused in one line. (``import-sr --trial`` of a
trial not added yet saying to add it: tests/cli/test_import_sr.py.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from recist_tool.cli import main

STORE_MD = Path(__file__).resolve().parents[2] / "docs" / "store.md"


def _settings(tmp_path: Path) -> Path:
    text = STORE_MD.read_text(encoding="utf-8")
    section = text[text.index("## The trial settings file"):]
    m = re.search(r"^```toml\n(.*?)^```", section, re.S | re.M)
    assert m
    path = tmp_path / "trial.toml"
    path.write_text(m.group(1), encoding="utf-8")
    return path


def test_each_reader_reads_its_tables(tmp_path: Path) -> None:
    from recist_tool.batch.persist import TrialSetup
    from recist_tool.recist import policies_from_toml
    from recist_tool.store.settings import read_endpoint_policies, read_evaluator_ids, read_trial_settings

    path = _settings(tmp_path)
    criteria, policies, visits = read_trial_settings(path)
    assert criteria == "RECIST 1.1" and policies["confirm_interval_days"] == 28
    assert visits == [{"name": "BL", "day": 0}, {"name": "W06", "day": 42, "window_days": 7},
                      {"name": "W12", "day": 84, "window_days": 7}]
    setup = TrialSetup.from_settings(path)
    assert (setup.name, setup.criteria, setup.visits) == ("ES-SCLC", "RECIST 1.1", tuple(visits))
    assert policies_from_toml(path.read_text(), source=str(path)).confirm_interval_days == 28
    assert read_endpoint_policies(path).assessment_interval_days == 42
    assert read_evaluator_ids(path) == {"batch": "ALGORITHM 1"}


def test_trial_add_stores_the_schedule(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sqlalchemy import select

    from recist_tool.store import TrialStore
    from recist_tool.store.models import Trial

    db = str(tmp_path / "t.db")
    assert main(["trial", "add", "ES-SCLC", "--settings", str(_settings(tmp_path)), "--db", db]) == 0
    assert "trial ES-SCLC added (RECIST 1.1, 3 scheduled visits)" in capsys.readouterr().out
    with TrialStore(db, read_only=True) as store, store.engine.connect() as conn:
        schedule = conn.execute(select(Trial.visit_schedule)).scalar_one()
    assert [v["name"] for v in schedule] == ["BL", "W06", "W12"] and schedule[1]["window_days"] == 7

    bad = tmp_path / "bad.toml"
    bad.write_text('[trial]\nvisits = [{ day = 0 }]\n')
    assert main(["trial", "add", "X", "--settings", str(bad), "--db", db]) == 3
    assert capsys.readouterr().err.strip().endswith(
        "[trial] visits must be a list of tables with a name")
