"""``recist reader add``, ``recist audit verify|log``, ``recist db upgrade`` on a real SQLite file."""

from __future__ import annotations

import sqlite3

import pytest

from recist_tool.cli import main
from recist_tool.store import TrialStore, head_revision
from tests.store.conftest import PASSWORDS, make_trial, read_subject, two_signed_reads

pytestmark = pytest.mark.db


def test_cli_reader_audit_roundtrip(tmp_path, monkeypatch, capsys) -> None:  # noqa: ANN001
    db = str(tmp_path / "r.db")
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("a-long-password\n"))
    assert main(["reader", "add", "dora", "--full-name", "Dora D", "--password-stdin", "--db", db]) == 0
    assert "reader dora (reader) added" in capsys.readouterr().out
    with TrialStore(db) as store:
        assert store.authenticate("dora", "a-long-password").full_name == "Dora D"
        make_trial(store)
        read_subject(store, "alice", t01_w6="18", t02_w6="12")
    assert main(["audit", "verify", "--db", db]) == 0
    assert capsys.readouterr().out.startswith("OK: ")
    assert main(["audit", "log", "--subject", "S001", "--db", db]) == 0
    out = capsys.readouterr().out
    assert "alice INSERT measurement#" in out and "[S001]" in out and "PAT-123" not in out
    assert main(["reader", "list", "--db", db]) == 0
    assert "dora" in capsys.readouterr().out

    con = sqlite3.connect(db)
    con.execute("DROP TRIGGER audit_event_no_update")
    con.execute("UPDATE audit_event SET actor = 'mallory' WHERE id = 7")
    con.commit()
    con.close()
    assert main(["audit", "verify", "--db", db]) == 3
    err = capsys.readouterr().err
    assert "BROKEN" in err and "event 7" in err


def test_cli_short_password_and_missing_stdin(tmp_path, monkeypatch, capsys) -> None:  # noqa: ANN001
    db = str(tmp_path / "r.db")
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("short\n"))
    assert main(["reader", "add", "dora", "--password-stdin", "--db", db]) == 3
    assert "at least 8" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO(""))
    assert main(["reader", "add", "dora", "--password-stdin", "--db", db]) == 2
    assert main(["db", "upgrade", "--db", db]) == 0
    assert f"schema revision {head_revision()}" in capsys.readouterr().out


def test_cli_trial_add_and_sign(tmp_path, monkeypatch, capsys) -> None:  # noqa: ANN001
    db = str(tmp_path / "r.db")
    settings = tmp_path / "trial.toml"
    settings.write_text('[trial]\ncriteria = "iRECIST"\nvisits = [{ name = "BL", day = 0 }, '
                        '{ name = "W6", day = 42 }]\n[recist]\nsd_min_days = 35\n')
    assert main(["trial", "add", "T-1", "--settings", str(settings), "--db", db]) == 0
    assert "iRECIST, 2 scheduled visits" in capsys.readouterr().out
    bad = tmp_path / "bad.toml"
    bad.write_text("[recist]\nsd_min_dayz = 3\n")
    assert main(["trial", "add", "T-2", "--settings", str(bad), "--db", db]) == 3
    assert "sd_min_dayz" in capsys.readouterr().err
    with TrialStore(db) as store:
        make_trial(store)
        read_subject(store, "alice", t01_w6="18", t02_w6="12")
        store.compute_responses("S001", reader="alice")
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("wrong-password\n"))
    assert main(["sign", "S001", "W6", "--reader", "alice", "--password-stdin", "--db", db]) == 3
    assert "wrong password" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO(PASSWORDS["alice"] + "\n"))
    assert main(["sign", "S001", "W6", "--reader", "alice", "--password-stdin", "--db", db]) == 0
    assert "signed S001 W6 by alice (read complete)" in capsys.readouterr().out
    with TrialStore(db) as store:
        assert store.get_read("S001", "W6", reader="alice").status == "signed"


def test_cli_amend_discrepancies_adjudicate(tmp_path, monkeypatch, capsys) -> None:  # noqa: ANN001
    import io
    import json

    db = str(tmp_path / "r.db")
    with TrialStore(db) as store:
        make_trial(store)
        two_signed_reads(store)
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORDS["alice"] + "\n"))
    assert main(["discrepancies", "S001", "--adjudicator", "alice", "--password-stdin",
                 "--db", db]) == 3
    assert capsys.readouterr().err.count("\n") == 1  # one line: alice is no adjudicator
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORDS["carol"] + "\n"))
    assert main(["discrepancies", "S001", "--adjudicator", "carol", "--json", "--password-stdin",
                 "--db", db]) == 0
    rows = {r["visit"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["W6"]["responses"] == {"alice": "PR", "bob": "SD"} and rows["W6"]["differ"]
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORDS["carol"] + "\n"))
    assert main(["adjudicate", "S001", "W6", "--adjudicator", "carol", "--choose", "bob",
                 "--over", "alice", "--reason", "T01 includes a vessel", "--password-stdin",
                 "--db", db]) == 0
    assert "bob's read chosen over alice's by carol" in capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORDS["carol"] + "\n"))
    assert main(["discrepancies", "S001", "--adjudicator", "carol", "--password-stdin",
                 "--db", db]) == 0
    assert "T01 includes a vessel" in capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORDS["carol"] + "\n"))
    assert main(["adjudicate", "S001", "BL", "--adjudicator", "carol", "--choose", "bob",
                 "--over", "alice", "--reason", "x", "--password-stdin", "--db", db]) == 3
    assert "nothing to adjudicate" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORDS["alice"] + "\n"))
    assert main(["amend", "S001", "W6", "--reader", "alice", "--reason",
                 "T01 remeasured on thin slices", "--password-stdin", "--db", db]) == 0
    assert "version 2 of alice's read opened" in capsys.readouterr().out
    with TrialStore(db) as store:
        assert store.get_read("S001", "W6", reader="alice").status == "open"
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORDS["alice"] + "\n"))
    assert main(["amend", "S001", "W6", "--reader", "alice", "--reason", "again",
                 "--password-stdin", "--db", db]) == 3
    assert "not signed" in capsys.readouterr().err
    assert main(["audit", "verify", "--db", db]) == 0
