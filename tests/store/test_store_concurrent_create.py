"""Issue #37 item 9: two batches writing into one new database at the same time both finish, and
nothing is created twice. Creation is idempotent in the store (``exist_ok=True``): get-or-create
inside one serialised write transaction, the unique constraints as the backstop."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest

from recist_tool.errors import InputError
from recist_tool.store import TrialStore
from tests.store.conftest import PASSWORDS, make_trial
from tests.store.test_store_reliability import _integrity, _worker

pytestmark = pytest.mark.db


def test_two_batches_into_one_new_database(db_url: str, tmp_path: Path) -> None:
    start = tmp_path / "start"
    n = 6
    procs = [_worker("batch", db_url, str(start), str(n)) for _ in range(2)]
    time.sleep(3)  # both processes open the (new) database, then start at the same moment
    start.write_text("go")
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    assert [o[0].split() for o in outs] == [["stored"], ["stored"]]
    with TrialStore(db_url) as store:
        assert [r.name for r in store.readers()] == ["batch"]
        assert store.trials() == {"recist-batch": "RECIST 1.1"}
        assert store.subjects() == [f"C{k:02d}" for k in range(n)]
        for k in range(n):
            subject = f"C{k:02d}"
            assert [v for v, _ in store.timepoints(subject)] == ["BL", "W06", "W12"]
            assert [les.lesion_id for les in store.lesions(subject, reader="batch")] == [
                "T01", "T02", "NT01", "NL01"]
            for visit, count in (("BL", 3), ("W06", 3), ("W12", 4)):
                read = store.get_read(subject, visit, reader="batch")
                assert (read.version, len(read.measurements)) == (1, count)
            assert len(store.read_versions(subject, "W12", reader="batch")) == 1
        log = store.audit_log()
        inserts = [(e.entity, e.entity_id) for e in log if e.action == "INSERT"]
        assert len(inserts) == len(set(inserts))
        assert not [e for e in log if e.action == "UPDATE"]  # the second run wrote nothing new
        assert store.verify_audit().ok
    if "://" not in db_url:
        _integrity(db_url)


def test_creation_with_exist_ok_is_idempotent_and_refuses_conflicts(db_url: str) -> None:
    with TrialStore(db_url) as store:
        make_trial(store, readers=("alice",), adjudicator=None)
        n = len(store.audit_log())
        assert store.add_reader("alice", "another-password", full_name="ignored",
                                exist_ok=True).full_name == "Alice Reader"
        store.add_trial("ES-SCLC", policies={"sd_min_days": 42}, exist_ok=True)
        store.add_subject("ES-SCLC", "S001", patient_id="PAT-123", exist_ok=True)
        store.add_timepoint("S001", "BL", dt.date(2026, 1, 2), series_uid="1.2.3.4", exist_ok=True)
        for _ in range(2):
            store.add_lesion("S001", "BL", "T01", "TARGET", reader="alice", organ="LUNG",
                             exist_ok=True)
            store.record_new_lesion("S001", "W6", "NL01", reader="alice", organ="LIVER",
                                    long_axis_mm="11", exist_ok=True)
        assert len(store.audit_log()) == n + 5  # BL read, T01, W6 read, NL01, its measurement
        store.authenticate("alice", PASSWORDS["alice"])  # the password was not touched
        for call, match in (
            (lambda: store.add_reader("alice", "x-password", role="admin", exist_ok=True), "role"),
            (lambda: store.add_trial("ES-SCLC", criteria="iRECIST", exist_ok=True), "criteria"),
            (lambda: store.add_subject("ES-SCLC", "S001", patient_id="PAT-999", exist_ok=True),
             "PatientID"),
            (lambda: store.add_timepoint("S001", "BL", dt.date(2026, 1, 3), exist_ok=True),
             "date"),
            (lambda: store.add_lesion("S001", "BL", "T01", "NON-TARGET", reader="alice",
                                      exist_ok=True), "category"),
            (lambda: store.record_new_lesion("S001", "W6", "NL01", reader="alice",
                                             long_axis_mm="13", exist_ok=True), "reason"),
            (lambda: store.add_timepoint("S001", "BL", dt.date(2026, 1, 2)), "exists already"),
        ):
            with pytest.raises(InputError, match=match):
                call()
        store.record_new_lesion("S001", "W6", "NL01", reader="alice", long_axis_mm="13",
                                reason="remeasured", exist_ok=True)
        assert [m.long_axis_mm for m in store.get_read("S001", "W6", reader="alice").measurements
                if m.lesion_id == "NL01"] == [13]
        assert store.verify_audit().ok
