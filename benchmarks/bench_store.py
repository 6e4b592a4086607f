"""Trial-store benchmark: audited transactions per second vs plain sqlite3, in one run.

recist-tool: ``TrialStore.record_measurement`` — one transaction per call holding the measurement
row and its hash-chained audit event (lookups of reader, subject, visit, lesion, read included).
Peer: Python's ``sqlite3`` inserting an equivalent row, one committed transaction per row, with
the same settings (WAL, ``synchronous=FULL``). Also times ``verify_audit`` over the whole chain.

``--writers W`` adds the many-writers run (a core lab's batch workers storing at once): W processes,
started together, each records ``--n-each`` measurements on lesions of its own; aggregate
transactions per second from the first write to the last, against one writer alone on the same
database kind, and against the peer psycopg (or sqlite3) inserting an equivalent row from the same
W processes, one committed transaction each, no lock, no audit. Afterwards the rows are counted
(none lost, none duplicated) and the audit chain is verified.

``--series K`` adds the series-write run: what ``recist batch`` stores for a scored baseline
series (five lesions, each ``add_lesion`` + ``record_measurement``), K series one after the other,
each call its own transaction against each series in one ``TrialStore.atomic`` block (what
``batch.persist.save_case`` does); the same calls, rows and audit events either way.

Usage::

    python benchmarks/bench_store.py [--n 300] [--postgres URL] [--writers 16 --n-each 20]
                                     [--series 40]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import multiprocessing as mp
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


def _series_run(url: str, n_series: int, atomic: bool, lesions: int = 5) -> float:
    """Seconds per series: ``n_series`` baselines of ``lesions`` lesions each stored by one
    client, per call (``atomic`` False) or per series (True)."""
    store = TrialStore(url)
    store.add_reader("bench", "bench-password")
    store.add_trial("B")
    for k in range(n_series):
        store.add_subject("B", f"S{k:04d}")
        store.add_timepoint(f"S{k:04d}", "BL", dt.date(2026, 1, 1))
    t = time.perf_counter()
    for k in range(n_series):
        with store.atomic() if atomic else contextlib.nullcontext():
            for j in range(lesions):
                store.add_lesion(f"S{k:04d}", "BL", f"T{j + 1:02d}", "TARGET", reader="bench",
                                 organ="LUNG", exist_ok=True)
                store.record_measurement(f"S{k:04d}", "BL", f"T{j + 1:02d}", reader="bench",
                                         long_axis_mm=f"{10 + j}.3", short_axis_mm="8.1",
                                         endpoints_lps={"long": [[0, 0, 0], [1, 2, 3]]},
                                         volume_ml="1.25", segmenter="classic",
                                         segmenter_version="1", method="automatic")
    s = (time.perf_counter() - t) / n_series
    assert store.verify_audit().ok
    store.close()
    return s


def _series_writes(kind: str, make_url_for, n_series: int) -> None:  # noqa: ANN001
    """Print the series-write figures of one database kind (alternating, best of 3 each)."""
    per_call, per_series = [], []
    for r in range(3):
        per_call.append(_series_run(make_url_for(f"call{r}"), n_series, atomic=False))
        per_series.append(_series_run(make_url_for(f"series{r}"), n_series, atomic=True))
    a, b = min(per_call), min(per_series)
    print(f"{kind:8s} a series of 5 lesions, {n_series} series: a transaction per call "
          f"{1000 * a:6.1f} ms; one per series (atomic) {1000 * b:6.1f} ms; ratio {a / b:5.2f}")


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


def _prepare_many(url: str, writers: int, n_each: int) -> None:
    with TrialStore(url) as store:
        store.add_reader("bench", "bench-password")
        store.add_trial("B")
        store.add_subject("B", "S1")
        store.add_timepoint("S1", "BL", dt.date(2026, 1, 1))
        for w in range(writers):
            for k in range(n_each):
                store.add_lesion("S1", "BL", f"W{w:02d}L{k:03d}", "TARGET", reader="bench", organ="LUNG")


def _store_writer(url: str, w: int, n_each: int, go: mp.synchronize.Event) -> tuple[float, float]:
    with TrialStore(url, timeout_s=120) as store:
        go.wait()
        t0 = time.time()
        for k in range(n_each):
            store.record_measurement("S1", "BL", f"W{w:02d}L{k:03d}", reader="bench",
                                     long_axis_mm=f"{10 + k % 50}.3", short_axis_mm="8.1",
                                     endpoints_lps={"long": [[0, 0, 0], [1, 2, 3]]}, volume_ml="1.25",
                                     segmenter="classic", segmenter_version="1", method="automatic")
        return t0, time.time()


def _peer_writer(url: str, w: int, n_each: int, go: mp.synchronize.Event) -> tuple[float, float]:
    row = ("{lesion}", "12.3", "8.1", '{"long":[[0,0,0],[1,2,3]]}', "1.25", "classic", "1", "automatic")
    if "://" in url:
        import psycopg

        con = psycopg.connect(url, autocommit=True)
        sql = ("INSERT INTO m (lesion, long_axis, short_axis, endpoints, volume, segmenter, version, "
               "method) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)")
        begin = "BEGIN"
    else:
        con = sqlite3.connect(url, isolation_level=None, timeout=120)
        con.execute("PRAGMA synchronous=FULL")
        sql = ("INSERT INTO m (lesion, long_axis, short_axis, endpoints, volume, segmenter, version, "
               "method) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
        begin = "BEGIN IMMEDIATE"
    go.wait()
    t0 = time.time()
    for k in range(n_each):
        con.execute(begin)
        con.execute(sql, (f"W{w:02d}L{k:03d}", *row[1:]))
        con.execute("COMMIT")
    t1 = time.time()
    con.close()
    return t0, t1


def _peer_table(url: str) -> None:
    ddl = ("CREATE TABLE m (id {pk}, lesion TEXT, long_axis TEXT, short_axis TEXT, endpoints TEXT, "
           "volume TEXT, segmenter TEXT, version TEXT, method TEXT)")
    if "://" in url:
        import psycopg

        with psycopg.connect(url, autocommit=True) as con:
            con.execute(ddl.format(pk="SERIAL PRIMARY KEY"))
    else:
        con = sqlite3.connect(url)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute(ddl.format(pk="INTEGER PRIMARY KEY"))
        con.close()


def _peer_rows(url: str) -> tuple[int, int]:
    q = "SELECT count(*), count(DISTINCT lesion) FROM m"
    if "://" in url:
        import psycopg

        with psycopg.connect(url) as con:
            return con.execute(q).fetchone()
    con = sqlite3.connect(url)
    try:
        return con.execute(q).fetchone()
    finally:
        con.close()


def _race(target, url: str, writers: int, n_each: int) -> float:  # noqa: ANN001
    """Run ``target`` in ``writers`` processes released together; aggregate tx/s."""
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager, ctx.Pool(writers) as pool:
        go = manager.Event()
        jobs = [pool.apply_async(target, (url, w, n_each, go)) for w in range(writers)]
        time.sleep(2.0 + 0.5 * writers)  # every process imported and connected
        go.set()
        spans = [j.get(timeout=1800) for j in jobs]
    return writers * n_each / (max(t1 for _, t1 in spans) - min(t0 for t0, _ in spans))


def _fresh_pg(base: str, name: str) -> str:
    import psycopg
    from sqlalchemy.engine import make_url

    u = make_url(base)
    with psycopg.connect(u.set(drivername="postgresql").render_as_string(hide_password=False),
                         autocommit=True) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        con.execute(f'CREATE DATABASE "{name}"')
    return u.set(database=name).render_as_string(hide_password=False)


def _many_writers(kind: str, make_url_for, writers: int, n_each: int) -> None:  # noqa: ANN001
    """Print the many-writers figures of one database kind and check the rows."""
    one_url, many_url, peer_url = (make_url_for(x) for x in ("one", "many", "peer"))
    _prepare_many(one_url, 1, writers * n_each // 4)
    one = _race(_store_writer, one_url, 1, writers * n_each // 4)
    _prepare_many(many_url, writers, n_each)
    many = _race(_store_writer, many_url, writers, n_each)
    _peer_table(peer_url)
    peer = _race(_peer_writer, peer_url, writers, n_each)
    with TrialStore(many_url) as store:
        rows = store.get_read("S1", "BL", reader="bench").measurements
        check = store.verify_audit()
    codes = [m.lesion_id for m in rows]
    expected = {f"W{w:02d}L{k:03d}" for w in range(writers) for k in range(n_each)}
    lost, dup = len(expected - set(codes)), len(codes) - len(set(codes))
    peer_n, peer_distinct = _peer_rows(peer_url)
    print(f"{kind:8s} {writers} writers x {n_each}: {many:7.0f} tx/s aggregate; one writer {one:7.0f} "
          f"tx/s; x one writer {many / one:5.2f}; peer ({'psycopg' if '://' in peer_url else 'sqlite3'}, "
          f"{writers} writers) {peer:7.0f} tx/s; ratio recist-tool / peer {many / peer:5.3f}")
    print(f"{'':8s} rows: {len(codes)} stored of {len(expected)}, lost {lost}, duplicated {dup}; "
          f"audit chain {'ok' if check.ok else 'BROKEN'} ({check.n_events} events); peer rows "
          f"{peer_n}, distinct {peer_distinct}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--postgres", default=os.environ.get("RECIST_TEST_POSTGRES_URL"))
    ap.add_argument("--writers", type=int, default=0, help="many-writers run with this many processes")
    ap.add_argument("--n-each", type=int, default=20, help="transactions per writer process")
    ap.add_argument("--series", type=int, default=0,
                    help="series-write run: this many 5-lesion series, per call vs per series")
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
        w, v, events = _store_run(_fresh_pg(args.postgres, "recist_bench_single"), args.n)
        print(f"Postgres recist-tool audited writes: {args.n / w:7.0f} tx/s; verify {events / v:.0f} "
              f"events/s")
    if args.series:
        print(f"load average before the series-write runs: {os.getloadavg()}")
        with tempfile.TemporaryDirectory() as tmp:
            _series_writes("SQLite", lambda x: str(Path(tmp) / f"{x}.db"), args.series)
        if args.postgres:
            _series_writes("Postgres", lambda x: _fresh_pg(args.postgres, f"recist_bench_{x}"),
                           args.series)
        print(f"load average after: {os.getloadavg()}")
    if args.writers:
        print(f"load average before the many-writers runs: {os.getloadavg()}")
        with tempfile.TemporaryDirectory() as tmp:
            _many_writers("SQLite", lambda x: str(Path(tmp) / f"{x}.db"), args.writers, args.n_each)
        if args.postgres:
            _many_writers("Postgres", lambda x: _fresh_pg(args.postgres, f"recist_bench_{x}"),
                          args.writers, args.n_each)


if __name__ == "__main__":
    main()
