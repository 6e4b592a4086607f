"""Trial store behaviour on a real SQLite file and (when configured) a real PostgreSQL server."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from decimal import Decimal

import pytest
from sqlalchemy import select, text

from recist_tool.errors import InputError, StoreError
from recist_tool.recist import Response
from recist_tool.store import AuthenticationError, LockedRecordError, TrialStore, head_revision
from recist_tool.store.models import AuditEvent
from tests.store.conftest import PASSWORDS, make_trial, read_subject, two_signed_reads

pytestmark = pytest.mark.db


@pytest.fixture
def store(db_url):  # noqa: ANN001, ANN201
    s = TrialStore(db_url)
    make_trial(s)
    yield s
    s.close()


def test_two_readers_responses_from_engine_and_isolation(store: TrialStore) -> None:
    read_subject(store, "alice", t01_w6="18", t02_w6="12")  # 50 → 30 mm: −40 %
    read_subject(store, "bob", t01_w6="27", t02_w6="18")  # 50 → 45 mm: −10 %
    alice = store.compute_responses("S001", reader="alice")
    bob = store.compute_responses("S001", reader="bob")
    assert [r.overall for r in alice] == [Response.PR]
    assert alice[0].sod_mm == Decimal("30") and alice[0].baseline_mm == Decimal("50.0")
    assert [r.overall for r in bob] == [Response.SD]
    read = store.get_read("S001", "W6", reader="alice")
    assert read.response is not None and read.response.overall == "PR"
    assert {m.lesion_id: m.diameter_mm for m in read.measurements} == {
        "NT01": None, "T01": Decimal("18"), "T02": Decimal("12")}
    bl = store.get_read("S001", "BL", reader="alice")
    t01 = next(m for m in bl.measurements if m.lesion_id == "T01")
    assert (t01.mask_sha256, t01.segmenter, t01.method, t01.volume_ml) == (
        "a" * 64, "classic", "automatic", Decimal("9.1"))
    assert t01.endpoints_lps == {"long": [[0, 0, 0], [30, 0, 0]]}
    # a reader never sees the other's read
    assert [m.long_axis_mm for m in store.get_read("S001", "W6", reader="bob").measurements
            if m.lesion_id == "T01"] == [Decimal("27")]
    store.add_lesion("S001", "W6", "NT02", "NON-TARGET", reader="alice", organ="BONE")
    assert "NT02" not in {les.lesion_id for les in store.lesions("S001", reader="bob")}
    with pytest.raises(InputError, match="NT02.*bob"):
        store.assess_non_target("S001", "W6", "NT02", "PRESENT", reader="bob")


def test_every_write_is_audited_with_old_new_and_reason(store: TrialStore) -> None:
    read_subject(store, "alice", t01_w6="18", t02_w6="12")
    with pytest.raises(InputError, match="reason"):
        store.record_measurement("S001", "W6", "T01", reader="alice", long_axis_mm="17.5")
    store.record_measurement("S001", "W6", "T01", reader="alice", long_axis_mm="17.5",
                             reason="edge on lung window")
    log = store.audit_log("S001")
    last = log[-1]
    assert (last.actor, last.action, last.entity, last.reason) == (
        "alice", "UPDATE", "measurement", "edge on lung window")
    assert (last.old, last.new) == ({"long_axis_mm": "18"}, {"long_axis_mm": "17.5"})
    inserts = [e for e in log if e.action == "INSERT" and e.entity == "measurement"]
    assert len(inserts) == 6 and all(e.actor == "alice" for e in inserts)
    store.delete_measurement("S001", "W6", "NT01", reader="alice", reason="wrong lesion")
    gone = store.audit_log("S001")[-1]
    assert gone.action == "DELETE" and gone.old["state"] == "PRESENT" and gone.new is None
    everything = json.dumps([e.__dict__ for e in store.audit_log()])
    assert "PAT-123" not in everything  # the DICOM PatientID never enters the trail
    assert "scrypt$" not in everything  # nor password hashes
    assert store.subject_for_patient("PAT-123") == "S001"
    ts = [e.ts for e in store.audit_log()]
    assert ts == sorted(ts) and all(t.endswith("Z") for t in ts)
    assert store.verify_audit().ok


def test_sign_locks_and_amend_keeps_old_version(store: TrialStore) -> None:
    read_subject(store, "alice", t01_w6="18", t02_w6="12")
    with pytest.raises(InputError, match="compute responses"):
        store.sign("S001", "W6", reader="alice", password=PASSWORDS["alice"])
    store.compute_responses("S001", reader="alice")
    with pytest.raises(AuthenticationError):
        store.sign("S001", "W6", reader="alice", password="wrong-password")
    assert store.audit_log()[-1].action == "AUTH_FAIL"
    assert store.get_read("S001", "W6", reader="alice").status == "open"
    with pytest.raises(InputError, match="reason"):
        store.sign("S001", "W6", reader="alice", password=PASSWORDS["alice"], confirmed_overall="SD")
    store.sign("S001", "BL", reader="alice", password=PASSWORDS["alice"])
    digest = store.sign("S001", "W6", reader="alice", password=PASSWORDS["alice"],
                        meaning="read complete")
    v1 = store.get_read("S001", "W6", reader="alice")
    assert v1.status == "signed" and v1.response.confirmed_overall == "PR"
    assert v1.signatures[0]["meaning"] == "read complete"
    assert v1.signatures[0]["printed_name"] == "Alice Reader"
    assert v1.signatures[0]["record_sha256"] == digest
    for write in (
        lambda: store.record_measurement("S001", "W6", "T01", reader="alice", long_axis_mm="19",
                                         reason="x"),
        lambda: store.assess_non_target("S001", "W6", "NT01", "ABSENT", reader="alice", reason="x"),
        lambda: store.add_lesion("S001", "W6", "NT09", "NON-TARGET", reader="alice"),
        lambda: store.delete_measurement("S001", "W6", "T01", reader="alice", reason="x"),
        lambda: store.sign("S001", "W6", reader="alice", password=PASSWORDS["alice"]),
    ):
        with pytest.raises(LockedRecordError, match="signed"):
            write()
    assert store.amend("S001", "W6", reader="alice", password=PASSWORDS["alice"],
                       reason="T01 remeasured on thin slices") == 2
    store.record_measurement("S001", "W6", "T01", reader="alice", long_axis_mm="36",
                             reason="remeasured")
    store.compute_responses("S001", reader="alice")
    v2 = store.get_read("S001", "W6", reader="alice")
    assert (v2.version, v2.status, v2.amend_reason) == (2, "open", "T01 remeasured on thin slices")
    assert v2.response.overall == "SD" and v2.response.sod_mm == Decimal("48")  # 36 + 12 vs 50
    old = store.get_read("S001", "W6", reader="alice", version=1)
    assert old == v1  # the signed version is exactly as it was
    assert [v.version for v in store.read_versions("S001", "W6", reader="alice")] == [1, 2]
    assert store.verify_audit().ok


def test_compute_replaces_open_response(store: TrialStore) -> None:
    read_subject(store, "alice", t01_w6="18", t02_w6="12")
    store.compute_responses("S001", reader="alice")
    store.record_measurement("S001", "W6", "T01", reader="alice", long_axis_mm="36", reason="r")
    store.compute_responses("S001", reader="alice")
    resp = store.get_read("S001", "W6", reader="alice").response
    assert resp.overall == "SD" and resp.sod_mm == Decimal("48")
    upd = [e for e in store.audit_log("S001") if e.entity == "timepoint_response"
           and e.action == "UPDATE"]
    assert upd and upd[-1].old["overall"] == "PR" and upd[-1].new["overall"] == "SD"


def test_adjudication_between_differing_readers(store: TrialStore) -> None:
    two_signed_reads(store)
    with pytest.raises(AuthenticationError, match="adjudicator"):
        store.discrepancies("S001", adjudicator="alice", password=PASSWORDS["alice"])
    d = {x.visit: x for x in store.discrepancies("S001", adjudicator="carol",
                                                  password=PASSWORDS["carol"])}
    assert d["W6"].responses == {"alice": "PR", "bob": "SD"} and d["W6"].differ
    with pytest.raises(InputError, match="reason"):
        store.adjudicate("S001", "W6", adjudicator="carol", password=PASSWORDS["carol"],
                         chosen_reader="bob", other_reader="alice", reason="")
    store.adjudicate("S001", "W6", adjudicator="carol", password=PASSWORDS["carol"],
                     chosen_reader="bob", other_reader="alice", reason="T01 includes a vessel")
    d = {x.visit: x for x in store.discrepancies("S001", adjudicator="carol",
                                                  password=PASSWORDS["carol"])}
    assert (d["W6"].adjudicated_reader, d["W6"].adjudication_reason) == ("bob",
                                                                         "T01 includes a vessel")
    sig = [e for e in store.audit_log("S001") if e.entity == "signature"][-1]
    assert sig.new["meaning"] == "adjudicated" and sig.actor == "carol"


def test_audit_rows_cannot_be_changed(store: TrialStore, db_url: str) -> None:
    read_subject(store, "alice", t01_w6="18", t02_w6="12")
    n = len(store.audit_log())
    with store._factory() as s:  # through the application's own session
        ev = s.scalars(select(AuditEvent).where(AuditEvent.id == 3)).one()
        ev.actor = "mallory"
        with pytest.raises(StoreError, match="append-only"):
            s.commit()
        s.rollback()
        s.delete(s.get(AuditEvent, 3))
        with pytest.raises(StoreError, match="append-only"):
            s.commit()
        s.rollback()
    for sql in ("UPDATE audit_event SET actor = 'mallory' WHERE id = 3",
                "DELETE FROM audit_event WHERE id = 3"):
        with pytest.raises(Exception, match="append-only"), store.engine.begin() as conn:
            conn.execute(text(sql))  # the database triggers refuse it too
    assert len(store.audit_log()) == n and store.verify_audit().ok


def test_tampering_is_detected(tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "t.db"
    with TrialStore(path) as store:
        make_trial(store)
        read_subject(store, "alice", t01_w6="18", t02_w6="12")
        ok = store.verify_audit()
        assert ok.ok and ok.n_events == len(store.audit_log())
    con = sqlite3.connect(path)
    con.execute("DROP TRIGGER audit_event_no_update")  # an attacker with file access
    con.execute("DROP TRIGGER audit_event_no_delete")
    (target,) = con.execute("SELECT id FROM audit_event WHERE action = 'INSERT' AND "
                            "new_values LIKE '%\"long_axis_mm\":\"18\"%'").fetchone()
    con.execute("UPDATE audit_event SET new_values = replace(new_values, '\"18\"', '\"28\"') "
                "WHERE id = ?", (target,))
    con.commit()
    with TrialStore(path) as store:
        bad = store.verify_audit()
    assert 10 < target < ok.n_events
    assert not bad.ok and bad.first_broken_id == target and "changed" in bad.message
    con.execute("UPDATE audit_event SET new_values = replace(new_values, '\"28\"', '\"18\"') "
                "WHERE id = ?", (target,))
    con.execute("DELETE FROM audit_event WHERE id = 10")
    con.commit()
    with TrialStore(path) as store:
        bad = store.verify_audit()
    assert not bad.ok and bad.first_broken_id == 11 and "missing" in bad.message
    con.close()


def test_signed_record_changed_outside_app_is_detected(tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "t.db"
    with TrialStore(path) as store:
        make_trial(store)
        read_subject(store, "alice", t01_w6="18", t02_w6="12")
        store.compute_responses("S001", reader="alice")
        store.sign("S001", "W6", reader="alice", password=PASSWORDS["alice"])
        assert store.verify_audit().ok
    con = sqlite3.connect(path)
    con.execute("UPDATE measurement SET long_axis_mm = '14' WHERE long_axis_mm = '18'")
    con.commit()
    con.close()
    with TrialStore(path) as store:
        bad = store.verify_audit()
    assert not bad.ok and "changed after signing" in bad.message


def test_schema_upgrade_from_older_revision(tmp_path) -> None:  # noqa: ANN001
    from recist_tool.store import db

    path = tmp_path / "old.db"
    engine = db.make_engine(db.normalise_url(path))
    assert db.migrate(engine, "old.db", target="0001") == "0001"
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO trial (name, criteria, policies, visit_schedule, created_at)"
                          " VALUES ('OLD', 'RECIST 1.1', '{}', '[]', '2026-01-01T00:00:00.000000Z')"))
        names = {r[0] for r in conn.execute(text("SELECT name FROM sqlite_master WHERE "
                                                 "type = 'trigger'"))}
    engine.dispose()
    assert names == set()
    with TrialStore(path) as store:
        assert store.revision == head_revision() == "0003"
        store.add_subject("OLD", "S9")
        assert store.subjects("OLD") == ["S9"]
    con = sqlite3.connect(path)
    names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    con.close()
    assert names == {"audit_event_no_update", "audit_event_no_delete"}


def test_newer_schema_is_refused_without_damage(db_url: str) -> None:
    with TrialStore(db_url) as store:
        make_trial(store)
        with store.engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
        n = len(store.audit_log())
    with pytest.raises(StoreError, match=r"revision 0099\) is newer than this recist-tool"):
        TrialStore(db_url)
    with TrialStore(db_url, migrate=False) as store:
        assert len(store.audit_log()) == n and store.verify_audit().ok


def test_bad_inputs_are_clear(store: TrialStore, tmp_path) -> None:  # noqa: ANN001
    with pytest.raises(InputError, match="at least 8"):
        store.add_reader("dave", "short")
    with pytest.raises(InputError, match="exists already"):
        store.add_reader("alice", "whatever-123")
    with pytest.raises(InputError, match="subject 'S404' not found"):
        store.add_timepoint("S404", "BL", __import__("datetime").date(2026, 1, 1))
    store.add_lesion("S001", "BL", "T01", "TARGET", reader="alice", organ="LUNG")
    with pytest.raises(InputError, match="long axis"):
        store.record_measurement("S001", "BL", "T01", reader="alice")
    with pytest.raises(InputError, match="≥ 0"):
        store.record_measurement("S001", "BL", "T01", reader="alice", long_axis_mm="-3")
    with pytest.raises(InputError, match="state"):
        store.record_measurement("S001", "BL", "T01", reader="alice", state="GONE")
    with pytest.raises(InputError, match="category"):
        store.add_lesion("S001", "BL", "X1", "MAYBE", reader="alice")
    with pytest.raises(StoreError, match="does not exist"):
        TrialStore(tmp_path / "no" / "such" / "folder" / "r.db")
    with pytest.raises(StoreError, match="unsupported database"):
        TrialStore("mysql://x@localhost/db")
    assert store.verify_audit().ok


def test_too_small_absent_and_new_lesions(store: TrialStore) -> None:
    read_subject(store, "alice", t01_w6="18", t02_w6="12")
    store.record_measurement("S001", "W6", "T01", reader="alice", state="TOO SMALL TO MEASURE",
                             reason="faint")
    store.record_new_lesion("S001", "W6", "NL01", reader="alice", organ="LIVER", equivocal=True)
    r = store.compute_responses("S001", reader="alice")
    assert r[0].sod_mm == Decimal("17") and r[0].overall is Response.PR  # 5 + 12
    store.record_new_lesion("S001", "W6", "NL02", reader="alice", organ="BONE", long_axis_mm="11")
    r = store.compute_responses("S001", reader="alice")
    assert r[0].overall is Response.PD
    states = {m.lesion_id: m.state for m in store.get_read("S001", "W6", reader="alice").measurements}
    assert states["NL01"] == "EQUIVOCAL" and states["NL02"] == "MEASURED"


def test_irecist_trial_and_accounts(db_url: str) -> None:
    import datetime as dt

    with TrialStore(db_url) as store:
        store.add_reader("alice", PASSWORDS["alice"])
        store.add_trial("IO", criteria="iRECIST")
        store.add_subject("IO", "S2")
        store.add_timepoint("S2", "BL", dt.date(2026, 1, 2))
        store.add_timepoint("S2", "W6", dt.date(2026, 2, 13))
        store.add_lesion("S2", "BL", "T01", "TARGET", reader="alice", organ="LUNG")
        store.record_measurement("S2", "BL", "T01", reader="alice", long_axis_mm="20")
        store.record_measurement("S2", "W6", "T01", reader="alice", long_axis_mm="19")
        store.record_new_lesion("S2", "W6", "NL01", reader="alice", organ="LIVER",
                                category="NEW NON-TARGET")
        assert [r.overall for r in store.compute_responses("S2", reader="alice")] == [Response.PD]
        assert store.get_read("S2", "W6", reader="alice").response.overall == "iUPD"
        # accounts: password change (old one checked), deactivation blocks work and signing
        with pytest.raises(AuthenticationError):
            store.change_password("alice", "not-her-password", "new-password-1")
        store.change_password("alice", PASSWORDS["alice"], "new-password-1")
        store.set_reader_active("alice", False, reason="left the core lab")
        with pytest.raises(AuthenticationError, match="deactivated"):
            store.record_measurement("S2", "W6", "T01", reader="alice", long_axis_mm="18",
                                     reason="x")
        with pytest.raises(AuthenticationError):
            store.sign("S2", "W6", reader="alice", password="new-password-1")
        store.set_reader_active("alice", True)
        store.sign("S2", "W6", reader="alice", password="new-password-1")
        pw = [e for e in store.audit_log() if e.entity == "reader" and e.action == "UPDATE"]
        assert pw[0].new["password_hash"].startswith("<redacted sha256:")
        assert pw[0].reason == "password changed"
        assert store.verify_audit().ok


def test_reader_session_cannot_reach_other_reads(store: TrialStore) -> None:
    read_subject(store, "alice", t01_w6="18", t02_w6="12")
    read_subject(store, "bob", t01_w6="27", t02_w6="18")
    with pytest.raises(AuthenticationError):
        store.login("bob", PASSWORDS["alice"])
    bob = store.login("bob", PASSWORDS["bob"])
    assert {m.long_axis_mm for m in bob.get_read("S001", "W6").measurements
            if m.lesion_id == "T01"} == {Decimal("27")}
    with pytest.raises(AuthenticationError, match="belongs to bob"):
        bob.get_read("S001", "W6", reader="alice")
    with pytest.raises(AttributeError):
        bob.audit_log  # noqa: B018 - not part of a reader's view
    bob.record_measurement("S001", "W6", "T01", long_axis_mm="26", reason="recheck")
    assert store.audit_log("S001")[-1].actor == "bob"
    assert [r.overall for r in bob.compute_responses("S001")] == [Response.SD]


def test_reader_session_methods_are_the_stores_with_the_reader_bound() -> None:
    import inspect

    from recist_tool.store import ReaderSession

    names = [n for n, f in vars(ReaderSession).items()
             if callable(f) and not n.startswith("_")]
    assert sorted(names) == sorted([
        "add_lesion", "record_measurement", "assess_non_target", "record_new_lesion",
        "delete_measurement", "get_read", "read_versions", "lesions", "compute_responses",
        "sign", "amend", "discrepancies", "adjudicate"])
    for name in names:
        store_params = inspect.signature(getattr(TrialStore, name)).parameters
        session_params = inspect.signature(getattr(ReaderSession, name)).parameters
        bound = "adjudicator" if "adjudicator" in store_params else "reader"
        assert store_params[bound].default is inspect.Parameter.empty  # the store needs it
        assert session_params[bound].default is None  # the session binds it
        # the session takes the store's other arguments (or forwards them as **values)
        forwarded = any(p.kind is p.VAR_KEYWORD for p in session_params.values())
        assert forwarded or set(store_params) - {bound} <= set(session_params), name


def test_reader_session_refuses_to_name_a_reader_even_for_writes(store: TrialStore) -> None:
    read_subject(store, "bob", t01_w6="27", t02_w6="18")
    bob = store.login("bob", PASSWORDS["bob"])
    with pytest.raises(AuthenticationError, match="cannot act as alice"):
        bob.record_measurement("S001", "W6", "T01", reader="alice", long_axis_mm="26",
                               reason="x")
    with pytest.raises(AuthenticationError, match="cannot act as carol"):
        bob.discrepancies("S001", adjudicator="carol", password=PASSWORDS["bob"])
    assert {m.long_axis_mm for m in bob.get_read("S001", "W6").measurements
            if m.lesion_id == "T01"} == {Decimal("27")}


def test_trial_and_subject_lookups(store: TrialStore) -> None:
    assert store.trials() == {"ES-SCLC": "RECIST 1.1"}
    info = store.subject_info("S001")
    assert info is not None
    assert (info.trial, info.criteria, info.reference_date) == ("ES-SCLC", "RECIST 1.1",
                                                                 dt.date(2026, 1, 1))
    assert info.policies == {"sd_min_days": 42}
    assert store.subject_info("S999") is None


def test_timepoint_images_are_kept_and_changes_audited(store: TrialStore) -> None:
    info = store.timepoint_info("S001", "BL")
    assert (info.visit, info.date, info.series_uid, info.series_path) == (
        "BL", dt.date(2026, 1, 2), "1.2.3.4", None)
    store.set_timepoint_images("S001", "BL", series_path="/data/S001/BL")
    with pytest.raises(InputError, match="recorded already"):
        store.set_timepoint_images("S001", "BL", series_path="/elsewhere")
    store.set_timepoint_images("S001", "BL", series_path="/moved/S001/BL", reason="archive moved")
    assert [t.series_path for t in store.timepoint_infos("S001")] == ["/moved/S001/BL", None]
    last = store.audit_log("S001")[-1]
    assert last.reason == "archive moved" and last.old == {"series_path": "/data/S001/BL"}
    with pytest.raises(InputError, match="visit 'W99'"):
        store.timepoint_info("S001", "W99")
