"""Batch scoring throughput (series per minute) on the synthetic trial.

Runs, in one process and on the same trial, ``run_batch`` with 1 local worker (the reference),
2 local workers, and a 2-worker Dask ``LocalCluster`` (processes, one thread each, loopback), each
into a fresh SQLite database, and prints series/minute and the speed-up over 1 worker. The time
is the whole scoring (pool / client start, every case, every database write), not the trial
generation nor the cluster start. The segmenter is ``classic`` unless ``--segmenter`` names
another (``unet``, the default of ``recist batch``, costs more per case).

    python benchmarks/bench_batch.py [--trial DIR] [--n-subjects 3] [--repeats 1] [--segmenter classic]
    python benchmarks/bench_batch.py --full-size N [--full-trial DIR] [--no-dask] [--json FILE]

``--full-size N [--postgres URL]`` (issue #33) scores N subjects of the full-size trial (``recist sample-data
--full-size``: 512² pixels, 301-376 slices, the large lesions, breathing between visits) and, in
the same run, the small trial of the same N subjects and lesions (``--large-lesions``), each the
three ways above; per series it prints the wall time of each stage in the worker (load, register,
segment, measure; :mod:`recist_tool.stages`) and of the store write in the client, and the peak
resident memory of each worker process. With ``--postgres`` it also scores each trial with 1
worker into a fresh database on that server (the store write against SQLite's).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path


def _run(manifest: Path, work: Path, tag: str, db: str | Path | None = None, **kwargs: object
         ) -> tuple[float, int, bool, float, float, dict]:
    from recist_tool.batch import run_batch

    _LAST.clear()
    if db is None:  # a fresh SQLite file
        db = work / f"{tag}.db"
        db.unlink(missing_ok=True)
    s = run_batch(manifest, db=db, outdir=work / tag, **kwargs)  # type: ignore[arg-type]
    _LAST[:] = s.results
    return (s.seconds, len(s.results), s.ok, sum(r.seconds for r in s.results),
            sum(r.cpu_seconds for r in s.results), {r.key: r.cpu_seconds for r in s.results})


def _fresh_postgres(url: str, name: str) -> str:
    """Create (after dropping) database ``name`` on the server of ``url``; return its URL."""
    import psycopg

    base, _, _ = url.rpartition("/")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{base}/{name}"


def _run_config(name: str, manifest: Path, work: Path, tag: str, segmenter: str,
                postgres: str | None = None) -> tuple[float, int, bool, float, float, dict]:
    """:func:`_run` in configuration ``name``: ``local, 1 worker``, ``local, 2 workers`` or
    ``Dask LocalCluster, 2 workers`` (started here, processes of one thread, loopback); one
    ending in ``PostgreSQL`` stores into a fresh database on the server of ``postgres``."""
    if name.endswith("PostgreSQL"):
        db = _fresh_postgres(postgres or "", "bench_batch_" + tag.replace("-", "_"))
        return _run(manifest, work, f"pg-{tag}", db=db, workers=1, segmenter=segmenter)
    if name.startswith("Dask"):
        from distributed import LocalCluster

        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                          host="127.0.0.1", dashboard_address=None) as cl:
            return _run(manifest, work, f"dask-{tag}", scheduler=cl.scheduler_address,
                        segmenter=segmenter)
    w = 1 if "1 worker" in name else 2
    return _run(manifest, work, f"local{w}-{tag}", workers=w, segmenter=segmenter)


#: The results of the last :func:`_run` (for the per-stage table).
_LAST: list = []
#: Seconds of each case's store write in the client, by (subject, visit), of the running batch.
_STORE: dict[tuple[str, str], float] = {}


def _time_store_writes() -> None:
    """Wrap ``save_case`` (called in this process for each finished case) with a timer."""
    import recist_tool.batch.run as run_mod

    save = run_mod.save_case

    def timed_save(store, case, res, **kw):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        try:
            return save(store, case, res, **kw)
        finally:
            _STORE[(case.subject, case.visit)] = time.perf_counter() - t0

    run_mod.save_case = timed_save


STAGES = ("load", "register", "segment", "measure")


def stage_rows(results: list) -> list[dict]:
    """Per series of a run: shape, lesions, the worker's stage times, the store write, the
    case's wall and CPU time and the worker's peak memory so far."""
    rows = []
    for r in sorted(results, key=lambda r: r.key):
        st = dict(r.stages)
        rows.append({"series": f"{r.subject}/{r.visit}", "slices": r.n_slices,
                     "lesions": len(r.lesions), **{k: round(st.get(k, 0.0), 2) for k in STAGES},
                     "other": round(r.seconds - sum(st.values()), 2),
                     "store": round(_STORE.get(r.key, float("nan")), 2),
                     "case_wall": round(r.seconds, 2), "case_cpu": round(r.cpu_seconds, 2),
                     "worker": r.worker, "peak_rss_mib": r.peak_rss_mib})
    return rows


def print_stage_rows(title: str, rows: list[dict]) -> None:
    print(f"\n{title}: per series, seconds (stages in the worker; store in the client)")
    cols = ("series", "slices", "lesions", *STAGES, "other", "store", "case_wall", "case_cpu",
            "peak_rss_mib")
    print(" ".join(f"{c:>12s}" for c in cols))
    for row in rows:
        print(" ".join(f"{row[c]!s:>12s}" for c in cols))
    peaks: dict[str, float] = {}
    for row in rows:
        peaks[row["worker"]] = max(peaks.get(row["worker"], 0.0), row["peak_rss_mib"] or 0.0)
    print("peak resident memory per worker (MiB): "
          + ", ".join(f"{w.rsplit(':', 1)[-1]} {v:.0f}" for w, v in sorted(peaks.items())))


def run_configs(manifest: Path, work: Path, tag: str, segmenter: str, dask: bool = True,
                repeats: int = 1, postgres: str | None = None) -> dict:
    """Score ``manifest`` with 1 and 2 local workers, (``dask``) a 2-worker LocalCluster and
    (``postgres``, a server URL) 1 local worker storing into PostgreSQL; return the timings and
    the per-series stage rows of each configuration."""
    configs = ["local, 1 worker", "local, 2 workers"]
    if dask:
        configs.append("Dask LocalCluster, 2 workers")
    if postgres:
        configs.append("local, 1 worker, PostgreSQL")
    out: dict = {"configs": {}}
    for rep_i in range(repeats):
        for name in configs:
            sec, n, ok, case_s, cpu_s, _ = _run_config(name, manifest, work,
                                                       f"{tag}-{rep_i}", segmenter, postgres)
            if not ok:
                bad = [f"{r.subject}/{r.visit}: {r.error}" for r in _LAST if not r.ok]
                raise SystemExit(f"{tag} {name}: a case failed: {bad}")
            rows = stage_rows(_LAST)
            c = out["configs"].setdefault(name, {"seconds": [], "rows": []})
            c["seconds"].append(round(sec, 2))
            c["rows"].append(rows)
            out["n_series"] = n
            print(f"  {tag} {name}: {n} series in {sec:.1f} s; cases {case_s:.1f} s wall, "
                  f"{cpu_s:.1f} s CPU in the workers (CPU/wall {cpu_s / case_s:.2f})")
            print_stage_rows(f"{tag}, {name}", rows)
    return out


def full_size_main(args: argparse.Namespace) -> None:
    """``--full-size N``: the full-size trial against the small one of the same subjects."""
    import json
    import os
    import resource
    import subprocess
    import sys

    _time_store_writes()
    report: dict = {"date_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                    "load_before": [round(v, 2) for v in os.getloadavg()],
                    "cpus": os.cpu_count(), "segmenter": args.segmenter, "trials": {}}
    with tempfile.TemporaryDirectory(prefix="bench-batch-full-") as tmp:
        work = Path(tmp)
        trials = {}
        for tag, full in (("full-size", True), ("small", False)):
            folder = args.full_trial if (full and args.full_trial) else work / tag
            if not (folder / "manifest.csv").exists():
                # a child process, so that its peak memory is its own
                t0 = time.perf_counter()
                code = ("import resource, sys; from recist_tool.sample_data import generate_trial;"
                        f"generate_trial(sys.argv[1], seed=0, n_subjects={args.full_size}, "
                        f"large_lesions=True, full_size={full});"
                        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)")
                peak = subprocess.run([sys.executable, "-c", code, str(folder)], check=True,
                                      capture_output=True, text=True).stdout.split()[-1]
                gen_s = time.perf_counter() - t0
                size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
                report.setdefault("generation", {})[tag] = {
                    "seconds": round(gen_s, 1), "bytes": size, "peak_rss_mib": int(peak)}
                print(f"generated {tag} trial, {args.full_size} subject(s): {gen_s:.1f} s, "
                      f"{size / 2**20:.0f} MiB, peak {peak} MiB")
            trials[tag] = folder
        for tag, folder in trials.items():
            report["trials"][tag] = run_configs(folder / "manifest.csv", work, tag,
                                                args.segmenter, dask=not args.no_dask,
                                                repeats=args.repeats, postgres=args.postgres)
    report["load_after"] = [round(v, 2) for v in os.getloadavg()]
    report["client_peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(f"\nsegmenter {args.segmenter}; {os.cpu_count()} CPUs, {platform.machine()}, Python "
          f"{platform.python_version()}; load average {report['load_before']} before, "
          f"{report['load_after']} after")
    print(f"{'trial':10s} {'configuration':32s} {'s (median)':>10s} {'series/min':>11s} "
          f"{'× 1 worker':>11s}")
    for tag, res in report["trials"].items():
        ref = statistics.median(res["configs"]["local, 1 worker"]["seconds"])
        for name, c in res["configs"].items():
            sec = statistics.median(c["seconds"])
            print(f"{tag:10s} {name:32s} {sec:10.1f} {60 * res['n_series'] / sec:11.1f} "
                  f"{ref / sec:11.2f}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")


def schedule_bound(manifest: Path, cpu: dict, workers: int) -> float:
    """Makespan of run_batch's submission order (baselines first, a subject's follow-ups when its
    baseline is done; FIFO onto free workers) on idle cores, from measured per-case CPU times."""
    import heapq

    from recist_tool.batch import plan_cases, read_manifest

    plans = plan_cases(read_manifest(manifest))
    queue = [p.baseline for p in plans]
    follow = {p.subject: list(p.followups) for p in plans}
    free = [0.0] * workers
    running: list[tuple[float, int, object]] = []
    t, k = 0.0, 0
    while queue or running:
        while queue and free:
            free.pop()
            case = queue.pop(0)
            k += 1
            heapq.heappush(running, (t + cpu[case.key], k, case))
        t, _, case = heapq.heappop(running)
        free.append(t)
        if case.visit == next(p.baseline.visit for p in plans if p.subject == case.subject):
            queue += follow[case.subject]
    return t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trial", type=Path, help="existing sample trial (default: generate one)")
    ap.add_argument("--n-subjects", "--subjects", dest="subjects", type=int, default=3,
                    help="subjects of the generated trial (--subjects: the former name)")
    ap.add_argument("--repeats", type=int, default=1, help="runs per configuration (median)")
    ap.add_argument("--segmenter", default="classic",
                    help="segmenter spec for every case (default classic, as in benchmarks/README.md)")
    ap.add_argument("--full-size", type=int, metavar="N",
                    help="score N full-size subjects against the small trial of the same N")
    ap.add_argument("--full-trial", type=Path,
                    help="with --full-size: an existing full-size trial (default: generate one)")
    ap.add_argument("--no-dask", action="store_true", help="with --full-size: skip Dask")
    ap.add_argument("--json", type=Path, help="with --full-size: write the figures here")
    ap.add_argument("--postgres", metavar="URL",
                    help="with --full-size: also 1 worker into a fresh database on this "
                         "PostgreSQL server (.ci/postgres.sh starts a throw-away one)")
    args = ap.parse_args()
    if args.full_size is not None:
        if args.full_size < 1:
            raise SystemExit("--full-size needs at least 1 subject")
        full_size_main(args)
        return

    import os

    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        work = Path(tmp)
        trial = args.trial
        if trial is None:
            from recist_tool.sample_data import generate_trial

            trial = work / "trial"
            t0 = time.perf_counter()
            generate_trial(trial, seed=0, n_subjects=args.subjects)
            print(f"generated {args.subjects} subjects in {time.perf_counter() - t0:.1f} s")
        manifest = trial / "manifest.csv"
        rows: dict[str, list[float]] = {}
        n_series = 0
        configs = ["local, 1 worker", "local, 2 workers", "Dask LocalCluster, 2 workers"]
        for rep in range(args.repeats):
            for name in configs:
                sec, n, ok, case_s, cpu_s, per = _run_config(name, manifest, work, str(rep),
                                                             args.segmenter)
                if "1 worker" in name:
                    cpu1 = per
                if not ok:
                    raise SystemExit(f"{name}: a case failed")
                n_series = n
                rows.setdefault(name, []).append(sec)
                print(f"  {name}: {n} series in {sec:.1f} s; cases: {case_s:.1f} s wall, "
                      f"{cpu_s:.1f} s CPU in the workers (CPU/wall of the cases "
                      f"{cpu_s / case_s:.2f}: below 1 when other processes take the cores)")
        print(f"\nsegmenter {args.segmenter}; machine: {os.cpu_count()} CPUs, {platform.machine()}, Python "
              f"{platform.python_version()}, load average {os.getloadavg()[0]:.1f} at the end")
        ref = statistics.median(rows[configs[0]])
        print(f"{'configuration':32s} {'s (median)':>10s} {'series/min':>11s} {'× 1 worker':>11s}")
        for name in configs:
            sec = statistics.median(rows[name])
            print(f"{name:32s} {sec:10.1f} {60 * n_series / sec:11.1f} {ref / sec:11.2f}")
        one, two = schedule_bound(manifest, cpu1, 1), schedule_bound(manifest, cpu1, 2)
        print(f"\nschedule bound from the 1-worker CPU times on idle cores (a model, not a "
              f"measurement): 1 worker {one:.1f} s, 2 workers {two:.1f} s, ratio {one / two:.2f}")


if __name__ == "__main__":
    main()
