"""Someone with write access to the trial database changes it outside the application.

``verify_audit`` (``recist audit verify``) replays the audit trail and compares every row of every
audited table with what the trail says it must be: a changed, inserted or removed row without its
event is found, and so is the removal of the newest event. A tail cut off together with the rows it
described leaves a consistent, shorter database: only a head kept outside it (``--expect-head``)
tells. Issue #37 item 8; on SQLite and (when configured) PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text

from recist_tool.cli import main
from recist_tool.errors import InputError
from recist_tool.store import AuthenticationError, TrialStore
from recist_tool.store.audit import GENESIS
from recist_tool.store.models import Lesion
from recist_tool.store.security import hash_password
from tests.store.conftest import PASSWORDS, make_trial, read_subject

pytestmark = pytest.mark.db


@pytest.fixture
def store(db_url: str) -> Iterator[TrialStore]:
    s = TrialStore(db_url)
    make_trial(s)
    read_subject(s, "alice", t01_w6="18", t02_w6="12")
    assert s.verify_audit().ok
    yield s
    s.close()


def _sql(store: TrialStore, *statements: str) -> None:
    """Run SQL directly on the database: no session, no audit event."""
    with store.engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))


def _allow_event_deletes(store: TrialStore) -> None:
    """What an attacker with owner rights does first: lift the append-only triggers."""
    if store.engine.dialect.name == "sqlite":
        _sql(store, "DROP TRIGGER audit_event_no_delete")
    else:
        _sql(store, "ALTER TABLE audit_event DISABLE TRIGGER audit_event_no_change")


def _delete_newest_event(store: TrialStore) -> None:
    _allow_event_deletes(store)
    _sql(store, "DELETE FROM audit_event WHERE id = (SELECT max(id) FROM audit_event)")


def _broken(store: TrialStore, *fragments: str) -> str:
    check = store.verify_audit()
    assert not check.ok and check.first_broken_id is None  # the chain itself is intact
    for fragment in fragments:
        assert fragment in check.message, check.message
    return check.message


def test_direct_update_of_a_measurement(store: TrialStore) -> None:
    _sql(store, "UPDATE measurement SET long_axis_mm = 99.9 WHERE long_axis_mm = '18'")
    _broken(store, "measurement #", "[S001]", "long_axis_mm is '99.9'",
            "the audit trail says '18'", "changed outside the application")


def test_deleted_newest_event(store: TrialStore) -> None:
    newest = store.audit_log()[-1]
    assert (newest.action, newest.entity) == ("INSERT", "measurement")
    _delete_newest_event(store)
    _broken(store, f"measurement #{newest.entity_id}", "no audit event")


def test_deleted_newest_update_event(store: TrialStore) -> None:
    store.record_measurement("S001", "W6", "T01", reader="alice", long_axis_mm="17.5",
                             reason="edge on lung window")
    _delete_newest_event(store)
    _broken(store, "long_axis_mm is '17.5'", "the audit trail says '18'")


def test_inserted_row_without_event(store: TrialStore) -> None:
    with store.engine.begin() as conn:
        conn.execute(Lesion.__table__.insert().values(
            subject_id=1, reader_id=1, code="T09", category="TARGET", organ="LUNG", nodal=False,
            created_timepoint_id=1))
    _broken(store, "lesion #", "in the table but in no audit event")


def test_removed_row(store: TrialStore) -> None:
    _sql(store, "DELETE FROM measurement WHERE long_axis_mm = '18'")
    _broken(store, "measurement #", "in the audit trail but not in the table")


def test_swapped_password_hash_and_patient_id_are_found_and_not_shown(store: TrialStore) -> None:
    known = hash_password("mallory-knows-this")
    _sql(store, f"UPDATE reader SET password_hash = '{known}' WHERE name = 'alice'")
    assert store.authenticate("alice", "mallory-knows-this").name == "alice"  # impersonation
    msg = _broken(store, "reader #", "password_hash")
    assert "scrypt$" not in msg
    _sql(store, f"UPDATE reader SET password_hash = '{hash_password(PASSWORDS['alice'])}' "
                "WHERE name = 'alice'")
    _broken(store, "reader #")  # a fresh hash of the right password has another salt
    _sql(store, "UPDATE subject_identity SET patient_id = 'PAT-999'")
    check = store.verify_audit()
    assert not check.ok and "PAT-" not in check.message
    assert any("subject_identity" in p and "patient_id" in p for p in check.problems)


def test_cut_tail_needs_a_head_kept_outside(store: TrialStore) -> None:
    kept = store.audit_head()
    assert kept.hash == store.verify_audit().head_hash and kept.id == len(store.audit_log())
    assert store.verify_audit(expect_head=kept.hash).ok
    with pytest.raises(AuthenticationError):
        store.authenticate("alice", "guess-guess")  # an AUTH_FAIL event: no row behind it
    later = store.audit_head()
    check = store.verify_audit(expect_head=kept.hash)  # the chain grew past the kept head: fine
    assert check.ok and f"event {kept.id}" in check.message
    _delete_newest_event(store)
    assert store.verify_audit().ok  # nothing in the tables tells
    check = store.verify_audit(expect_head=later.hash)
    assert not check.ok and "not in the chain" in check.message
    # the newest measurement and its event removed together: consistent, and shorter
    newest = store.audit_log()[-1]
    _sql(store, f"DELETE FROM measurement WHERE id = {newest.entity_id}",
         f"DELETE FROM audit_event WHERE id = {newest.id}")
    assert store.verify_audit().ok
    assert not store.verify_audit(expect_head=kept.hash).ok
    with pytest.raises(InputError, match="64 hex"):
        store.verify_audit(expect_head="abc")


def test_cli_audit_head_and_verify_expect_head(tmp_path, capsys) -> None:  # noqa: ANN001
    db = str(tmp_path / "r.db")
    assert main(["db", "upgrade", "--db", db]) == 0
    capsys.readouterr()
    assert main(["audit", "head", "--db", db]) == 0
    assert capsys.readouterr().out.split()[:3] == [GENESIS, "event", "0"]
    with TrialStore(db) as s:
        make_trial(s)
        read_subject(s, "alice", t01_w6="18", t02_w6="12")
        n = len(s.audit_log())
    assert main(["audit", "head", "--db", db]) == 0
    head, word, number, _ts = capsys.readouterr().out.split()
    assert (word, number, len(head)) == ("event", str(n), 64)
    assert main(["audit", "verify", "--expect-head", head, "--db", db]) == 0
    assert capsys.readouterr().out.startswith(f"OK: {n} events, head {head}")
    with TrialStore(db) as s:
        _sql(s, "UPDATE measurement SET long_axis_mm = 99.9 WHERE long_axis_mm = '18'")
    assert main(["audit", "verify", "--db", db]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "BROKEN" in err and "long_axis_mm is '99.9'" in err
    with TrialStore(db) as s:
        _sql(s, "UPDATE measurement SET long_axis_mm = '18' WHERE long_axis_mm = '99.9'")
        _delete_newest_event(s)
        _sql(s, "DELETE FROM measurement WHERE id = (SELECT max(id) FROM measurement)")
    assert main(["audit", "verify", "--db", db]) == 0
    capsys.readouterr()
    assert main(["audit", "verify", "--expect-head", head, "--db", db]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not in the chain" in err
    assert main(["audit", "verify", "--expect-head", "xyz", "--db", db]) == 2
