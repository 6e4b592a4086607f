"""``TrialStore.atomic``: several writes kept together or not at all, on a real SQLite file and
(when configured) a real PostgreSQL server."""

from __future__ import annotations

import datetime as dt

import pytest

from recist_tool.errors import InputError
from recist_tool.store import TrialStore
from tests.store.conftest import make_trial

pytestmark = pytest.mark.db


@pytest.fixture
def store(db_url: str):  # noqa: ANN201
    s = TrialStore(db_url)
    make_trial(s)
    yield s
    s.close()


def test_an_error_leaving_the_block_writes_nothing(store: TrialStore) -> None:
    events = len(store.audit_log())
    with pytest.raises(RuntimeError, match="stop"), store.atomic():
        store.add_subject("ES-SCLC", "S002", by="alice")
        store.add_timepoint("S002", "BL", dt.date(2026, 3, 2), by="alice")
        assert [v for v, _ in store.timepoints("S002")] == ["BL"]  # reads see the block's writes
        store.add_lesion("S001", "BL", "T01", "TARGET", reader="alice", organ="LUNG")
        raise RuntimeError("stop")
    assert store.subject_info("S002") is None
    assert store.lesions("S001", reader="alice") == []
    assert len(store.audit_log()) == events
    assert store.verify_audit().ok


def test_a_block_keeps_every_write_with_its_own_actor_and_reason(store: TrialStore) -> None:
    with store.atomic():
        store.add_lesion("S001", "BL", "T01", "TARGET", reader="alice", organ="LUNG",
                         reason="first")
        store.record_measurement("S001", "BL", "T01", reader="alice", long_axis_mm="31.0",
                                 reason="second")
        store.add_lesion("S001", "BL", "T02", "TARGET", reader="bob", organ="LIVER",
                         reason="third")
    assert [les.lesion_id for les in store.lesions("S001", reader="alice")] == ["T01"]
    assert [les.lesion_id for les in store.lesions("S001", reader="bob")] == ["T02"]
    log = store.audit_log("S001")
    by_reason = {e.reason: e.actor for e in log if e.reason in ("first", "second", "third")}
    assert by_reason == {"first": "alice", "second": "alice", "third": "bob"}
    assert store.verify_audit().ok


def test_a_failed_call_caught_inside_undoes_its_own_writes_only(store: TrialStore) -> None:
    with store.atomic():
        store.add_lesion("S001", "BL", "T01", "TARGET", reader="alice", organ="LUNG")
        with pytest.raises(InputError):  # the same lesion id again: refused
            store.add_lesion("S001", "BL", "T01", "NON-TARGET", reader="alice", organ="LIVER")
        with pytest.raises(InputError):  # no such visit
            store.record_measurement("S001", "W99", "T01", reader="alice", long_axis_mm="12.0")
        store.record_measurement("S001", "BL", "T01", reader="alice", long_axis_mm="30.0")
    (les,) = store.lesions("S001", reader="alice")
    assert les.category.value == "TARGET" and les.organ == "LUNG"
    read = store.get_read("S001", "BL", reader="alice")
    assert [str(m.long_axis_mm) for m in read.measurements] == ["30.0"]
    assert store.verify_audit().ok


def test_blocks_nest_into_one(store: TrialStore) -> None:
    with pytest.raises(RuntimeError), store.atomic():
        with store.atomic():
            store.add_subject("ES-SCLC", "S003", by="alice")
        assert store.subject_info("S003") is not None
        raise RuntimeError("outer block fails")
    assert store.subject_info("S003") is None
