"""Issue #37 item 2: amending a signed read and seeing every reader's responses (which unblinds the
adjudicator) need the account's password, in the library API and on the command line."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest

from recist_tool.cli import main
from recist_tool.store import AuthenticationError, TrialStore
from tests.store.conftest import PASSWORDS, make_trial, two_signed_reads

pytestmark = pytest.mark.db


@pytest.fixture
def store(db_url: str) -> Iterator[TrialStore]:
    with TrialStore(db_url) as s:
        make_trial(s)
        two_signed_reads(s)
        yield s


def test_amend_needs_the_readers_own_password(store: TrialStore) -> None:
    with pytest.raises(TypeError, match="password"):
        store.amend("S001", "W6", reader="alice", reason="no password")  # type: ignore[call-arg]
    n = len(store.audit_log())
    for wrong in ("guess-guess", PASSWORDS["bob"]):  # bob cannot amend alice's read as alice
        with pytest.raises(AuthenticationError, match="wrong password"):
            store.amend("S001", "W6", reader="alice", password=wrong, reason="impersonated")
    log = store.audit_log()
    assert [e.action for e in log[n:]] == ["AUTH_FAIL", "AUTH_FAIL"]
    assert [v.version for v in store.read_versions("S001", "W6", reader="alice")] == [1]
    assert store.amend("S001", "W6", reader="alice", password=PASSWORDS["alice"],
                       reason="T01 remeasured") == 2
    assert store.audit_log()[-1].actor == "alice"
    bob = store.login("bob", PASSWORDS["bob"])
    with pytest.raises(AuthenticationError, match="wrong password"):
        bob.amend("S001", "W6", password="not-bobs-pass", reason="x")
    assert bob.amend("S001", "W6", password=PASSWORDS["bob"], reason="T02 recheck") == 2


def test_discrepancies_need_the_adjudicators_password(store: TrialStore) -> None:
    with pytest.raises(TypeError, match="password"):
        store.discrepancies("S001", adjudicator="carol")  # type: ignore[call-arg]
    with pytest.raises(AuthenticationError, match="wrong password"):
        store.discrepancies("S001", adjudicator="carol", password=PASSWORDS["alice"])
    assert store.audit_log()[-1].action == "AUTH_FAIL"
    # a reader with a right password is still no adjudicator
    with pytest.raises(AuthenticationError, match="adjudicator"):
        store.discrepancies("S001", adjudicator="alice", password=PASSWORDS["alice"])
    d = {x.visit: x for x in store.discrepancies("S001", adjudicator="carol",
                                                  password=PASSWORDS["carol"])}
    assert d["W6"].responses == {"alice": "PR", "bob": "SD"}


def test_cli_amend_and_discrepancies_ask_for_the_password(tmp_path, monkeypatch, capsys) -> None:  # noqa: ANN001
    db = str(tmp_path / "r.db")
    with TrialStore(db) as store:
        make_trial(store)
        two_signed_reads(store)

    def stdin(text: str) -> None:
        monkeypatch.setattr("sys.stdin", io.StringIO(text))

    stdin(PASSWORDS["bob"] + "\n")
    assert main(["amend", "S001", "W6", "--reader", "alice", "--reason", "x", "--password-stdin",
                 "--db", db]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "wrong password" in err
    stdin(PASSWORDS["alice"] + "\n")
    assert main(["amend", "S001", "W6", "--reader", "alice", "--reason", "T01 remeasured",
                 "--password-stdin", "--db", db]) == 0
    assert "version 2 of alice's read opened" in capsys.readouterr().out
    stdin("")  # no password given: a usage error, nothing shown
    assert main(["discrepancies", "S001", "--adjudicator", "carol", "--password-stdin",
                 "--db", db]) == 2
    assert "alice" not in capsys.readouterr().out
    stdin(PASSWORDS["alice"] + "\n")
    assert main(["discrepancies", "S001", "--adjudicator", "carol", "--password-stdin",
                 "--json", "--db", db]) == 3
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "wrong password" in err
    stdin(PASSWORDS["carol"] + "\n")
    assert main(["discrepancies", "S001", "--adjudicator", "carol", "--password-stdin",
                 "--json", "--db", db]) == 0
    assert '"bob": "SD"' in capsys.readouterr().out
    with TrialStore(db) as store:
        fails = [e for e in store.audit_log() if e.action == "AUTH_FAIL"]
        assert [e.actor for e in fails] == ["alice", "carol"]  # the failed tries are on record
