"""Batch scoring throughput (series per minute) on the synthetic trial.

Runs, in one process and on the same trial, ``run_batch`` with 1 local worker (the reference),
2 local workers, and a 2-worker Dask ``LocalCluster`` (processes, one thread each, loopback), each
into a fresh SQLite database, and prints series/minute and the speed-up over 1 worker. The time
is the whole scoring (pool / client start, every case, every database write), not the trial
generation nor the cluster start. The segmenter is ``classic`` unless ``--segmenter`` names
another (``unet``, the default of ``recist batch``, costs more per case).

    python benchmarks/bench_batch.py [--trial DIR] [--subjects 3] [--repeats 1] [--segmenter classic]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path


def _run(manifest: Path, work: Path, tag: str, **kwargs: object
         ) -> tuple[float, int, bool, float, float, dict]:
    from recist_tool.batch import run_batch

    db = work / f"{tag}.db"
    db.unlink(missing_ok=True)
    s = run_batch(manifest, db=db, outdir=work / tag, **kwargs)  # type: ignore[arg-type]
    return (s.seconds, len(s.results), s.ok, sum(r.seconds for r in s.results),
            sum(r.cpu_seconds for r in s.results), {r.key: r.cpu_seconds for r in s.results})


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
    ap.add_argument("--subjects", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=1, help="runs per configuration (median)")
    ap.add_argument("--segmenter", default="classic",
                    help="segmenter spec for every case (default classic, as in benchmarks/README.md)")
    args = ap.parse_args()

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
                if name.startswith("Dask"):
                    from distributed import LocalCluster

                    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      host="127.0.0.1", dashboard_address=None) as cl:
                        sec, n, ok, case_s, cpu_s, _ = _run(manifest, work, f"dask{rep}",
                                                            scheduler=cl.scheduler_address,
                                                            segmenter=args.segmenter)
                else:
                    w = 1 if "1 worker" in name else 2
                    sec, n, ok, case_s, cpu_s, per = _run(manifest, work, f"local{w}-{rep}",
                                                          workers=w, segmenter=args.segmenter)
                    if w == 1:
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
