"""The client keeps at most one case per worker slot in flight, baselines first, then the most
expensive ready follow-up (largest series × lesions) first; it hands each result on with its masks
and keeps it without them."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import Future
from pathlib import Path

import numpy as np

from recist_tool.batch.job import CaseResult, LesionResult
from recist_tool.batch.manifest import Case, SubjectPlan
from recist_tool.batch.runner import estimated_cost, execute
from recist_tool.volume import Volume


class _Recorder:
    """A backend that runs nothing: it records submissions and finishes them in order."""

    def __init__(self, slots: int, mask: Volume | None = None) -> None:
        self.slots = slots
        self.mask = mask
        self.submitted: list[str] = []
        self.in_flight: list[int] = []
        self._futs: list[tuple[Future, Case]] = []

    def submit(self, case: Case, baseline: object) -> Future:
        self.submitted.append(case.label)
        fut: Future = Future()
        self._futs.append((fut, case))
        self.in_flight.append(sum(not f.done() for f, _ in self._futs))
        return fut

    def wait_any(self, futures: set[Future]) -> tuple[set[Future], set[Future]]:
        fut, case = next((f, c) for f, c in self._futs if f in futures and not f.done())
        lesion = LesionResult("T01", "target", "lung", False, "MEASURED", 20.0, 10.0, 1.0,
                              {"centroid_lps": [0.0, 0.0, 0.0]}, mask=self.mask)
        fut.set_result(CaseResult(case.subject, case.visit, case.date, True, (lesion,)))
        return {fut}, futures - {fut}


def _series(folder: Path, n_bytes: int) -> str:
    folder.mkdir(parents=True)
    (folder / "f.dcm").write_bytes(b"\0" * n_bytes)
    return str(folder)


def test_baselines_first_then_the_largest_follow_up(tmp_path: Path) -> None:
    d = dt.date(2026, 1, 1)
    plans = []
    for subj, sizes in (("A", (100, 900)), ("B", (400, 200))):
        bl = Case(subj, "BL", d, _series(tmp_path / subj / "BL", 10))
        fus = tuple(Case(subj, f"W{k}", d + dt.timedelta(days=7 * k),
                         _series(tmp_path / subj / f"W{k}", n)) for k, n in enumerate(sizes, 1))
        plans.append(SubjectPlan(subj, bl, fus))
    backend = _Recorder(slots=2)
    results = execute(plans, backend)
    assert len(results) == 6 and all(r.ok for r in results)
    assert backend.submitted[:2] == ["A BL", "B BL"]
    assert backend.submitted[2:] == ["A W2", "B W1", "B W2", "A W1"]  # 900, 400, 200, 100 bytes
    assert max(backend.in_flight) <= 2


def test_cost_grows_with_series_size_and_lesions(tmp_path: Path) -> None:
    d = dt.date(2026, 1, 1)
    small = Case("S", "W1", d, _series(tmp_path / "s", 100))
    large = Case("S", "W2", d, _series(tmp_path / "l", 1000))
    assert estimated_cost(large, 2) > estimated_cost(small, 2)
    assert estimated_cost(small, 4) > estimated_cost(small, 1)
    assert estimated_cost(Case("S", "W3", d, str(tmp_path / "missing")), 1) > 0


def test_results_are_handed_on_with_masks_and_kept_without(tmp_path: Path) -> None:
    d = dt.date(2026, 1, 1)
    bl = Case("A", "BL", d, _series(tmp_path / "BL", 10))
    plans = [SubjectPlan("A", bl, (Case("A", "W1", d + dt.timedelta(days=42),
                                        _series(tmp_path / "W1", 10)),))]
    mask = Volume.from_grid(np.ones((4, 8, 8), np.uint8), spacing=(2.0, 0.7, 0.7))
    handed: list[Volume | None] = []
    results = execute(plans, _Recorder(slots=1, mask=mask),
                      on_result=lambda case, res: handed.extend(les.mask for les in res.lesions))
    assert handed == [mask, mask]  # saved from here (batch.run saves the mask files)
    assert [les.mask for r in results for les in r.lesions] == [None, None]
    assert [les.long_axis_mm for r in results for les in r.lesions] == [20.0, 20.0]
