"""Trial-store benchmark: audited transactions per second vs plain sqlite3, in one run.

recist-tool: ``TrialStore.record_measurement`` — one transaction per call holding the measurement
row and its hash-chained audit event (lookups of reader, subject, visit, lesion, read included).
Peer: Python's ``sqlite3`` inserting an equivalent row, one committed transaction per row, with
the same settings (WAL, ``synchronous=FULL``). Also times ``verify_audit`` over the whole chain.

Usage::

    python benchmarks/bench_store.py [--n 300] [--postgres URL]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sqlite3
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RECIST_SCRYPT_N", "1024")

from recist_tool.store import TrialStore  # noqa: E402


def _store_run(url: str, n: int) -> tuple[float, float, int]:
    store = TrialStore(url)
    store.add_reader("bench", "bench-password")
    store.add_trial("B")
    store.add_subject("B", "S1")
    store.add_timepoint("S1", "BL", dt.date(2026, 1, 1))
    for k in range(n):
        store.add_lesion("S1", "BL", f"L{k:04d}", "TARGET", reader="bench", organ="LUNG")
    t = time.perf_counter()
    for k in range(n):
        store.record_measurement("S1", "BL", f"L{k:04d}", reader="bench", long_axis_mm=f"{10 + k % 50}.3",
                                 short_axis_mm="8.1", endpoints_lps={"long": [[0, 0, 0], [1, 2, 3]]},
                                 volume_ml="1.25", segmenter="classic", segmenter_version="1",
                                 method="automatic")
    write_s = time.perf_counter() - t
    t = time.perf_counter()
    check = store.verify_audit()
    verify_s = time.perf_counter() - t
    assert check.ok
    store.close()
    return write_s, verify_s, check.n_events


def _peer_run(path: Path, n: int) -> float:
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    con.execute("CREATE TABLE m (id INTEGER PRIMARY KEY, lesion TEXT, long_axis TEXT, short_axis TEXT,"
                " endpoints TEXT, volume TEXT, segmenter TEXT, version TEXT, method TEXT)")
    t = time.perf_counter()
    for k in range(n):
        con.execute("BEGIN IMMEDIATE")
        con.execute("INSERT INTO m (lesion, long_axis, short_axis, endpoints, volume, segmenter, "
                    "version, method) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (f"L{k:04d}", f"{10 + k % 50}.3", "8.1", '{"long":[[0,0,0],[1,2,3]]}', "1.25",
                     "classic", "1", "automatic"))
        con.execute("COMMIT")
    s = time.perf_counter() - t
    con.close()
    return s


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--postgres", default=os.environ.get("RECIST_TEST_POSTGRES_URL"))
    args = ap.parse_args()
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, python {platform.python_version()}, "
          f"sqlite {sqlite3.sqlite_version}")
    with tempfile.TemporaryDirectory() as tmp:
        w, v, events = _store_run(str(Path(tmp) / "bench.db"), args.n)
        p = _peer_run(Path(tmp) / "peer.db", args.n)
    print(f"SQLite  recist-tool audited writes: {args.n / w:8.0f} tx/s ({1000 * w / args.n:.2f} ms/tx)")
    print(f"SQLite  plain sqlite3 inserts     : {args.n / p:8.0f} tx/s ({1000 * p / args.n:.2f} ms/tx)")
    print(f"        ratio recist-tool / plain : {p / w:8.3f} (throughput)")
    print(f"        verify_audit              : {events / v:8.0f} events/s ({events} events)")
    if args.postgres:
        w, v, events = _store_run(args.postgres, args.n)
        print(f"Postgres recist-tool audited writes: {args.n / w:7.0f} tx/s; verify {events / v:.0f} "
              f"events/s")


if __name__ == "__main__":
    main()
