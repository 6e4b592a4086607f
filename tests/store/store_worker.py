"""Child process of the reliability tests: ``python -m tests.store.store_worker MODE URL ...``.

Modes
-----
write URL PREFIX N
    N transactions, each a new lesion with its measurement at S001 W6 (reader alice); prints the
    elapsed seconds.
open URL
    Opens (creating / migrating) the database and prints its schema revision.
hang URL MARKER
    Starts one such transaction, flushes the lesion, writes MARKER and sleeps (to be SIGKILLed
    before the commit).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from sqlalchemy import event

from recist_tool.store import TrialStore

os.environ.setdefault("RECIST_SCRYPT_N", "1024")


def main(argv: list[str]) -> int:
    mode, url = argv[0], argv[1]
    store = TrialStore(url, timeout_s=60)
    if mode == "write":
        prefix, n = argv[2], int(argv[3])
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
    raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
