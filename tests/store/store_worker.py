"""Child process of the reliability tests: ``python -m tests.store.store_worker MODE URL ...``.

Modes
-----
write URL PREFIX N [START]
    N transactions, each a new lesion with its measurement at S001 W6 (reader alice); prints the
    elapsed seconds. With START, the store is opened (and migrated) first and the writes begin once
    the file START exists, so that many writers run at once.
open URL
    Opens (creating / migrating) the database and prints its schema revision.
hang URL MARKER
    Starts one such transaction, flushes the lesion, writes MARKER and sleeps (to be SIGKILLed
    before the commit).
batch URL START N
    What ``recist batch`` does to the store, without images: waits for the file START, then
    :func:`~recist_tool.batch.persist.prepare_store` (reader ``batch``, the trial, N subjects of
    three visits) and :func:`~recist_tool.batch.persist.save_case` of every case (two targets, a
    non-target, a new lesion at W12); prints ``stored``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from sqlalchemy import event

from recist_tool.store import TrialStore

os.environ.setdefault("RECIST_SCRYPT_N", "1024")


def _batch(store: TrialStore, start: Path, n: int) -> None:
    import datetime as dt

    from recist_tool.batch.job import CaseResult, LesionResult
    from recist_tool.batch.manifest import Case, LesionSeed, SubjectPlan
    from recist_tool.batch.persist import TrialSetup, prepare_store, save_case

    seeds = (LesionSeed("T01", "target", "lung"), LesionSeed("T02", "target", "lymph node", True),
             LesionSeed("NT01", "non-target", "liver"))
    plans = []
    for k in range(n):
        cases = [Case(f"C{k:02d}", visit, dt.date(2026, 1 + j, 2), f"/data/C{k:02d}/{visit}",
                      f"1.2.{k}.{j}", seeds) for j, visit in enumerate(("BL", "W06", "W12"))]
        plans.append(SubjectPlan(cases[0].subject, cases[0], tuple(cases[1:])))
    while not start.exists():
        time.sleep(0.01)
    prepare_store(store, plans, reader="batch", trial=TrialSetup())
    for plan in plans:
        for j, case in enumerate(plan.cases):
            lesions = [LesionResult("T01", "target", "lung", False, "MEASURED", 30.0 - 5 * j, 20.0),
                       LesionResult("T02", "target", "lymph node", True, "MEASURED", 25.0, 15.0),
                       LesionResult("NT01", "non-target", "liver", False, "PRESENT")]
            if j == 2:
                lesions.append(LesionResult("NL01", "new", "bone", False, "MEASURED", 12.0, 8.0))
            save_case(store, case, CaseResult(case.subject, case.visit, case.date, True,
                                              tuple(lesions)), reader="batch")


def main(argv: list[str]) -> int:
    mode, url = argv[0], argv[1]
    store = TrialStore(url, timeout_s=60)
    if mode == "write":
        prefix, n = argv[2], int(argv[3])
        if len(argv) > 4:
            while not Path(argv[4]).exists():
                time.sleep(0.01)
        t0 = time.perf_counter()
        for k in range(n):
            store.record_new_lesion("S001", "W6", f"{prefix}{k:03d}", reader="alice", organ="LIVER",
                                    long_axis_mm=f"{10 + k}.5")
        print(f"{time.perf_counter() - t0:.3f}")
        return 0
    if mode == "open":
        print(store.revision)
        return 0
    if mode == "hang":
        marker = Path(argv[2])

        @event.listens_for(store._factory, "after_flush")
        def _pause(session, ctx) -> None:  # noqa: ANN001
            marker.write_text("flushed")
            time.sleep(120)

        store.record_new_lesion("S001", "W6", "KILL01", reader="alice", organ="LIVER",
                                long_axis_mm="12")
        return 0
    if mode == "batch":
        _batch(store, Path(argv[2]), int(argv[3]))
        print("stored")
        return 0
    raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
