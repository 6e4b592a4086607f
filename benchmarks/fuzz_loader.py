"""Fuzz the DICOM loader with mutated series and count what happens.

Every series is a small base series (2-4 slices of 16 × 16, RLE-compressed or Enhanced CT
multi-frame among them) with 1-5 random header mutations (``tests/hostile/dicom_mutations.py``:
delete, empty, wrong type or VR, absurd numbers, lying lengths, truncation, flipped bytes,
copies of one instance). The loader must build volumes or raise the project's own errors
(``RecistToolError``); anything else is a crash, counted by exception type and place, with the
first series that caused it printed so it can be replayed.

Usage::

    python benchmarks/fuzz_loader.py [--n 100000] [--seed 0] [--max-mutations 5]

Prints the outcome counts (volumes built, project errors by class, skip reasons) and the
crashes; exits 1 when there was any crash.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.hostile.dicom_mutations import (  # noqa: E402
    Mutation,
    mutated_series,
    outcome,
    scratch_root,
    series_from_code,
)


def _crash_site(exc: BaseException) -> str:
    """Type and innermost ``file:line`` of the traceback (the place to fix)."""
    frames = traceback.extract_tb(exc.__traceback__)
    last = frames[-1] if frames else None
    where = f"{Path(last.filename).name}:{last.lineno}" if last else "?"
    return f"{type(exc).__name__} at {where}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000, help="mutated series to load")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-mutations", type=int, default=5)
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    outcomes: Counter[str] = Counter()
    crashes: Counter[str] = Counter()
    first: dict[str, tuple[str, list[Mutation]]] = {}
    t0, c0 = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory(prefix="recist-fuzz-", dir=scratch_root()) as tmp:
        folder = Path(tmp) / "series"
        for _ in range(args.n):
            code = rng.randbytes(1 + 5 * rng.randint(1, args.max_mutations))
            base, muts = series_from_code(code)
            try:
                outcomes[outcome(folder, mutated_series(base, muts))] += 1
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # a crash (Rust decoders panic with a BaseException)
                site = _crash_site(exc)
                crashes[site] += 1
                first.setdefault(site, (base, muts))
    took, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"{args.n} mutated series in {took:.1f} s ({cpu:.1f} s CPU, "
          f"{1000 * cpu / max(args.n, 1):.2f} ms CPU each), seed {args.seed}")
    for key, n in sorted(outcomes.items()):
        print(f"  {key:<32} {n:>8}")
    print(f"crashes: {sum(crashes.values())}")
    for site, n in crashes.most_common():
        base, muts = first[site]
        print(f"  {n:>6} {site}\n         first: mutated_series({base!r}, {muts!r})")
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())
