"""Reliability of the trial database: concurrent writers, killed writers, locks, read-only files,
disk full, on a real SQLite file (and PostgreSQL where a server is configured)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from recist_tool.errors import StoreError
from recist_tool.store import TrialStore
from tests.store.conftest import make_trial, read_subject

pytestmark = pytest.mark.db
ROOT = Path(__file__).resolve().parents[2]


def _worker(*args: str) -> subprocess.Popen:
    env = dict(os.environ, RECIST_SCRYPT_N="1024", PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "tests.store.store_worker", *args], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _prepared(url: str) -> None:
    with TrialStore(url) as store:
        make_trial(store)
        read_subject(store, "alice", t01_w6="18", t02_w6="12")


def _integrity(url: str) -> None:
    if "://" not in url:
        con = sqlite3.connect(url)
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert con.execute("PRAGMA foreign_key_check").fetchall() == []
        con.close()


def test_two_processes_lose_no_update(db_url: str) -> None:
    _prepared(db_url)
    with TrialStore(db_url) as store:
        n_before = len(store.audit_log())
    n = 25
    procs = [_worker("write", db_url, prefix, str(n)) for prefix in ("GUI", "BAT")]
    outs = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    with TrialStore(db_url) as store:
        codes = {les.lesion_id for les in store.lesions("S001", reader="alice")}
        w6 = store.get_read("S001", "W6", reader="alice").measurements
        log = store.audit_log()
        check = store.verify_audit()
    for prefix in ("GUI", "BAT"):
        assert {f"{prefix}{k:03d}" for k in range(n)} <= codes
    new = {m.lesion_id: m.long_axis_mm for m in w6 if m.lesion_id[:3] in ("GUI", "BAT")}
    assert len(new) == 2 * n and str(new["BAT007"]) == "17.5"
    # 2 events (lesion + measurement) per transaction, one unbroken chain
    assert len(log) == n_before + 4 * n and check.ok
    _integrity(db_url)


def test_processes_creating_one_database_at_once(db_url: str) -> None:
    procs = [_worker("open", db_url) for _ in range(3)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [o[1][-1500:] for o in outs]
    assert {o[0].strip() for o in outs} == {"0003"}
    with TrialStore(db_url) as store:
        make_trial(store)
        assert store.verify_audit().ok


def test_sigkill_in_the_middle_of_a_write_leaves_nothing_partial(db_url: str, tmp_path) -> None:  # noqa: ANN001
    _prepared(db_url)
    with TrialStore(db_url) as store:
        n_before = len(store.audit_log())
    marker = tmp_path / "flushed"
    p = _worker("hang", db_url, str(marker))
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert p.poll() is None, p.communicate()[1][-2000:]
        assert time.monotonic() < deadline, "worker never reached its write"
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=30)
    assert p.returncode == -signal.SIGKILL
    with TrialStore(db_url, timeout_s=30) as store:
        assert "KILL01" not in {les.lesion_id for les in store.lesions("S001", reader="alice")}
        assert len(store.audit_log()) == n_before and store.verify_audit().ok
        # the next run continues: the same write now succeeds
        store.record_new_lesion("S001", "W6", "KILL01", reader="alice", organ="LIVER",
                                long_axis_mm="12")
        assert any(m.lesion_id == "KILL01" for m in
                   store.get_read("S001", "W6", reader="alice").measurements)
        assert store.verify_audit().ok
    _integrity(db_url)


def test_locked_database_fails_clearly_after_bounded_wait(tmp_path) -> None:  # noqa: ANN001
    path = str(tmp_path / "r.db")
    _prepared(path)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with TrialStore(path, timeout_s=0.5) as store:
            t0 = time.monotonic()
            with pytest.raises(StoreError, match="locked by another process.*nothing was written"):
                store.record_measurement("S001", "W6", "T01", reader="alice", long_axis_mm="19",
                                         reason="remeasured")
            waited = time.monotonic() - t0
            assert 0.4 < waited < 5
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with TrialStore(path) as store:
        assert [m.long_axis_mm for m in store.get_read("S001", "W6", reader="alice").measurements
                if m.lesion_id == "T01"] == [__import__("decimal").Decimal("18")]
        store.record_measurement("S001", "W6", "T01", reader="alice", long_axis_mm="19",
                                 reason="remeasured")
        assert store.verify_audit().ok
    _integrity(path)


def test_read_only_database(tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "r.db"
    _prepared(str(path))
    before = path.read_bytes()
    with TrialStore(path, read_only=True) as store:
        assert store.verify_audit().ok and store.subjects() == ["S001"]
        with pytest.raises(StoreError, match="read-only.*nothing was written"):
            store.record_measurement("S001", "W6", "T01", reader="alice", long_axis_mm="19",
                                     reason="x")
    assert path.read_bytes() == before
    if os.geteuid() != 0:  # file permissions do not stop root
        path.chmod(0o444)
        tmp_path.chmod(0o555)
        try:
            with TrialStore(path) as store, pytest.raises(StoreError, match="read-only"):
                store.add_timepoint("S001", "W12", __import__("datetime").date(2026, 3, 1))
        finally:
            tmp_path.chmod(0o755)
            path.chmod(0o644)
        assert path.read_bytes() == before


def test_disk_full_is_clear_and_harmless(tmp_path) -> None:  # noqa: ANN001
    path = str(tmp_path / "r.db")
    _prepared(path)
    con = sqlite3.connect(path)
    pages = con.execute("PRAGMA page_count").fetchone()[0]
    con.close()
    with TrialStore(path, sqlite_pragmas={"max_page_count": pages + 8}) as store:
        n_ok = 0
        with pytest.raises(StoreError, match="disk is full; nothing of this change was written"):
            for k in range(1000):
                store.record_new_lesion("S001", "W6", f"F{k:03d}", reader="alice", organ="LIVER",
                                        long_axis_mm="11", mask_path="m" * 3000)
                n_ok += 1
        assert 0 < n_ok < 1000
        codes = {les.lesion_id for les in store.lesions("S001", reader="alice")}
        assert f"F{n_ok - 1:03d}" in codes and f"F{n_ok:03d}" not in codes
        assert store.verify_audit().ok
    _integrity(path)
    with TrialStore(path) as store:  # space again: the next run continues
        store.record_new_lesion("S001", "W6", f"F{n_ok:03d}", reader="alice", organ="LIVER",
                                long_axis_mm="11")
        assert store.verify_audit().ok


def test_unreachable_postgres_is_a_clear_error() -> None:
    with pytest.raises(StoreError, match="cannot connect|database error"):
        TrialStore("postgresql://nobody@127.0.0.1:1/nothing", timeout_s=1)


def test_sixteen_writer_processes_on_postgres(pg_url: str, tmp_path) -> None:  # noqa: ANN001
    """#33's goal: 16 processes writing at once to PostgreSQL lose and duplicate nothing, and the
    audit chain stays one unbroken order (writers serialise on the advisory lock)."""
    _prepared(pg_url)
    with TrialStore(pg_url) as store:
        n_before = len(store.audit_log())
    n, writers, start = 6, 16, tmp_path / "start"
    prefixes = [f"P{w:02d}X" for w in range(writers)]
    procs = [_worker("write", pg_url, prefix, str(n), str(start)) for prefix in prefixes]
    time.sleep(1.0)
    start.write_text("go")
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0] * writers, [o[1][-1500:] for o in outs]
    with TrialStore(pg_url) as store:
        w6 = store.get_read("S001", "W6", reader="alice").measurements
        log = store.audit_log()
        check = store.verify_audit()
    written = [m.lesion_id for m in w6 if m.lesion_id[:1] == "P"]
    assert sorted(written) == sorted(f"{p}{k:03d}" for p in prefixes for k in range(n))
    assert {str(m.long_axis_mm) for m in w6 if m.lesion_id.endswith("005")} == {"15.5"}
    assert len(log) == n_before + 2 * n * writers and check.ok  # lesion + measurement a write
