"""Property: on any mutated series the loader builds volumes or raises the project's own errors.

Ten thousand small series (2-4 slices of 16 × 16, uncompressed, RLE or Enhanced CT multi-frame),
each with 1-5 byte-level header mutations (``dicom_mutations.py``), go through what ``recist info``
and ``recist convert`` do: scan, then every stack to a volume. Only ``RecistToolError`` may come
out; a volume that comes out holds finite values on a finite grid, and numpy never warns on
the way (an overflow there means garbage in the volume). The run is derandomized, so it
is the same 10⁴ series each time; ``benchmarks/fuzz_loader.py --n N --seed S`` explores further.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from tests.hostile.dicom_mutations import mutated_series, outcome, scratch_root, series_from_code

N_SERIES = 10_000
#: Series per hypothesis example: hypothesis spends about a millisecond on each example it
#: makes, as long as the loader on a small series, so each example holds a batch.
SERIES_PER_EXAMPLE = 10
#: Bytes that code one series (``series_from_code``): a base, then 1-5 mutations of 5 bytes.
_SERIES_CODE = st.binary(min_size=6, max_size=26)


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="recist-fuzz-", dir=scratch_root()) as tmp:
        yield Path(tmp)


@pytest.fixture(scope="module")
def tally() -> dict[str, int]:
    return {}


@settings(max_examples=N_SERIES // SERIES_PER_EXAMPLE, deadline=None, derandomize=True,
          database=None, suppress_health_check=list(HealthCheck))
@given(codes=st.lists(_SERIES_CODE, min_size=SERIES_PER_EXAMPLE, max_size=SERIES_PER_EXAMPLE))
def test_mutated_series_give_volumes_or_our_errors(
        scratch: Path, tally: dict[str, int], codes: list[bytes]) -> None:
    for code in codes:
        base, mutations = series_from_code(code)
        try:
            got = outcome(scratch / "series", mutated_series(base, mutations))
        except BaseException:
            note(f"replay: outcome(folder, mutated_series({base!r}, {mutations!r}))")
            raise
        tally[got] = tally.get(got, 0) + 1


def test_the_fuzz_run_was_large_and_varied(tally: dict[str, int]) -> None:
    """Runs after the property (same module): it loaded ≥ 10⁴ series, with every outcome."""
    if not tally:
        pytest.skip("the fuzz property did not run in this session")
    assert sum(tally.values()) >= N_SERIES, tally
    assert tally.get("volumes:1", 0) > N_SERIES // 10, tally  # not all thrown out
    assert tally.get("volumes:0", 0) > N_SERIES // 10, tally
    assert tally.get("error:DicomLoadError", 0) > 0, tally
