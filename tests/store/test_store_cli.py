"""``recist reader add``, ``recist audit verify|log``, ``recist db upgrade`` on a real SQLite file."""

from __future__ import annotations

import sqlite3

import pytest

from recist_tool.cli import main
from recist_tool.store import TrialStore
from tests.store.conftest import make_trial, read_subject

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
    assert "schema revision 0002" in capsys.readouterr().out
