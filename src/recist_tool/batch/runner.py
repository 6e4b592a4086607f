"""Running cases in parallel: a local process pool (default) or a Dask distributed cluster.

Baselines run first; each subject's follow-ups become ready when its baseline has finished, with
the baseline's lesion centres passed in (:class:`~recist_tool.batch.job.BaselineRef`). The client
keeps only as many cases in flight as the backend has worker slots and starts the most expensive
ready case first (series size × lesions to track: longest-processing-time-first scheduling, so the
last long follow-up does not run alone at the end). Results come back to the client, which alone
writes the database and the outputs; once a result has been handed on, the client keeps it
without its lesion masks (:func:`without_masks`), so its memory does not grow with the trial.
"""

from __future__ import annotations

import heapq
import itertools
import multiprocessing as mp
import os
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, replace
from typing import Any

from recist_tool.batch.job import BaselineRef, CaseResult, init_worker, score_case
from recist_tool.batch.manifest import Case, SubjectPlan
from recist_tool.errors import InputError, UsageError

__all__ = ["DaskBackend", "LocalBackend", "estimated_cost", "execute", "make_backend", "without_masks"]


#: Environment variables that size native thread pools; one thread per worker process.
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS")


def without_masks(result: CaseResult) -> CaseResult:
    """``result`` with every lesion's mask dropped: what the client keeps once the masks are saved.

    A full-size series' masks are 0.1–1.5 MB a lesion; kept for every case until the end of a
    10,000-series batch they would be gigabytes in the client (``docs/scale.md``).

    Examples
    --------
    >>> import datetime as dt
    >>> from recist_tool.batch.job import LesionResult
    >>> from recist_tool.volume import Volume
    >>> import numpy as np
    >>> crop = Volume.from_grid(np.ones((2, 3, 3), np.uint8), spacing=(1.0, 1.0, 1.0))
    >>> les = LesionResult("T01", "target", "lung", False, "MEASURED", 12.0, 8.0, mask=crop)
    >>> res = CaseResult("S01", "BL", dt.date(2026, 1, 5), True, (les,))
    >>> without_masks(res).lesions[0].mask is None, without_masks(res).lesions[0].long_axis_mm
    (True, 12.0)
    """
    if not any(les.mask is not None for les in result.lesions):
        return result
    return replace(result, lesions=tuple(replace(les, mask=None) for les in result.lesions))


class LocalBackend:
    """A process pool of ``workers`` processes (spawned; one torch/ITK thread each).

    ``workers=0`` runs the cases in this process, one after another (debugging, tiny jobs).
    """

    def __init__(self, workers: int, segmenter: str) -> None:
        if workers < 0:
            raise UsageError(f"--workers must be ≥ 0, got {workers}")
        self.workers = workers
        self.segmenter = segmenter
        self.pool: ProcessPoolExecutor | None = None
        self._saved_env: dict[str, str | None] = {}
        if workers > 0:
            # spawned workers read these at start-up (OpenMP / BLAS / ITK pools are sized when the
            # libraries load, before any initializer runs); restored when the pool closes
            for var in _THREAD_VARS:
                if var not in os.environ:
                    self._saved_env[var] = None
                    os.environ[var] = "1"
            self.pool = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                                            initializer=init_worker, initargs=(segmenter,))
        self.description = (f"{workers} local worker process{'es' if workers != 1 else ''}"
                            if workers else "in-process")
        self.slots = max(workers, 1)

    def submit(self, case: Case, baseline: BaselineRef | None) -> Any:
        if self.pool is None:
            from concurrent.futures import Future

            fut: Future = Future()
            fut.set_result(score_case(case, baseline, segmenter=self.segmenter))
            return fut
        return self.pool.submit(score_case, case, baseline, segmenter=self.segmenter)

    @staticmethod
    def wait_any(futures: set[Any]) -> tuple[set[Any], set[Any]]:
        done, pending = wait(futures, return_when=FIRST_COMPLETED)
        return set(done), set(pending)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
        for var in self._saved_env:
            os.environ.pop(var, None)
        self._saved_env = {}


class DaskBackend:
    """Cases as tasks on a Dask distributed scheduler (``tcp://host:port``), one case per task."""

    def __init__(self, address: str, segmenter: str, timeout_s: float = 20.0) -> None:
        try:
            import distributed
        except ImportError as exc:
            raise UsageError("--scheduler needs Dask distributed: pip install "
                             "'recist-tool[dask]'") from exc
        self._distributed = distributed
        self.segmenter = segmenter
        try:
            self.client = distributed.Client(address, timeout=f"{timeout_s}s",
                                             set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise InputError(f"cannot connect to the Dask scheduler at {address}: "
                             f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                             ) from None
        from recist_tool.batch.dask_plugin import WorkerSetup

        plugin = WorkerSetup(segmenter)
        try:
            if hasattr(self.client, "register_plugin"):
                self.client.register_plugin(plugin, name=plugin.name)
            else:  # pragma: no cover - distributed < 2023.9
                self.client.register_worker_plugin(plugin, name=plugin.name)  # type: ignore[attr-defined]
        except Exception as exc:  # noqa: BLE001 - a cluster without recist-tool installed
            self.client.close()
            raise InputError(f"Dask workers at {address} cannot set up recist-tool: "
                             f"{type(exc).__name__}: {exc}") from None
        n = len(self.client.scheduler_info().get("workers", {}))
        self.description = f"Dask scheduler {address} ({n} worker{'s' if n != 1 else ''})"
        try:
            self.slots = max(1, sum(self.client.nthreads().values()))
        except Exception:  # noqa: BLE001 - an old scheduler: one case per worker
            self.slots = max(1, n)
        self._n = 0

    def submit(self, case: Case, baseline: BaselineRef | None) -> Any:
        self._n += 1
        key = f"recist-case-{case.subject}-{case.visit}-{os.getpid()}-{self._n}"
        return self.client.submit(score_case, case, baseline, segmenter=self.segmenter, key=key,
                                  pure=False, retries=0)

    def wait_any(self, futures: set[Any]) -> tuple[set[Any], set[Any]]:
        with self.client.as_current():
            res = self._distributed.wait(list(futures), return_when="FIRST_COMPLETED")
        return set(res.done), set(res.not_done)

    def close(self) -> None:
        self.client.close()


def make_backend(workers: int | None, scheduler: str | None, segmenter: str
                 ) -> LocalBackend | DaskBackend:
    """Dask when ``scheduler`` (or ``$DASK_SCHEDULER_ADDRESS``) is set, else a local pool.

    ``workers`` defaults to the number of CPUs.
    """
    address = scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS") or None
    if address:
        if workers is not None:
            raise UsageError("--workers is for the local pool; a Dask cluster has its own workers")
        return DaskBackend(address, segmenter)
    return LocalBackend((os.cpu_count() or 1) if workers is None else workers, segmenter)


@dataclass(frozen=True)
class _Job:
    case: Case
    plan: SubjectPlan


def execute(
    plans: Iterable[SubjectPlan],
    backend: LocalBackend | DaskBackend,
    *,
    skip: set[tuple[str, str]] = frozenset(),  # type: ignore[assignment]
    stored_baseline: Callable[[SubjectPlan], BaselineRef | None] | None = None,
    on_result: Callable[[Case, CaseResult], None] | None = None,
) -> list[CaseResult]:
    """Score every case not in ``skip``: baselines first, follow-ups once their baseline is done.

    Parameters
    ----------
    plans : iterable of SubjectPlan
    backend : LocalBackend or DaskBackend
    skip : set of (subject, visit)
        Cases already stored (``--resume``); not scored again.
    stored_baseline : callable, optional
        For a skipped baseline whose follow-ups must still be scored: the stored baseline's
        :class:`BaselineRef` (or None when it cannot be rebuilt; the baseline is then re-scored
        without being reported).
    on_result : callable, optional
        Called in the client, in completion order, for each finished case, with its masks (the
        only moment they are there: save them here).

    Returns
    -------
    list of CaseResult
        In completion order; failed cases included (``ok`` False); without their masks.
    """
    plans = list(plans)
    results: list[CaseResult] = []
    pending: dict[Any, tuple[_Job, bool]] = {}  # future -> (job, report it)
    ready: list[tuple[float, int, _Job, BaselineRef | None, bool]] = []  # heap: most costly first
    order = itertools.count()
    refs: dict[str, BaselineRef] = {}
    slots = max(1, int(getattr(backend, "slots", 1)))

    def report(job: _Job, res: CaseResult) -> None:
        if on_result is not None:
            on_result(job.case, res)
        results.append(without_masks(res))

    def make_ready(job: _Job, ref: BaselineRef | None, shown: bool) -> None:
        cost = float("inf") if ref is None else estimated_cost(job.case, len(ref.lesions))
        heapq.heappush(ready, (-cost, next(order), job, ref, shown))

    def fill() -> None:
        while ready and len(pending) < slots:
            _, _, job, ref, shown = heapq.heappop(ready)
            pending[backend.submit(job.case, ref)] = (job, shown)

    def followups_ready(plan: SubjectPlan, ref: BaselineRef) -> None:
        for fu in plan.followups:
            if fu.key not in skip:
                make_ready(_Job(fu, plan), ref, True)

    for plan in plans:
        todo_fu = [fu for fu in plan.followups if fu.key not in skip]
        if plan.baseline.key not in skip:
            make_ready(_Job(plan.baseline, plan), None, True)
        elif todo_fu:
            ref = stored_baseline(plan) if stored_baseline is not None else None
            if ref is not None:
                refs[plan.subject] = ref
            else:  # score the baseline again only to track from it
                make_ready(_Job(plan.baseline, plan), None, False)
    for plan in plans:
        if plan.subject in refs:
            followups_ready(plan, refs[plan.subject])
    fill()
    while pending:
        done, _ = backend.wait_any(set(pending))
        for fut in done:
            job, shown = pending.pop(fut)
            try:
                res = fut.result()
            except Exception as exc:  # noqa: BLE001 - a worker that died, a task lost
                res = CaseResult(job.case.subject, job.case.visit, job.case.date, False,
                                 error=f"worker failed: {type(exc).__name__}: {exc}")
            if shown:
                report(job, res)
            if job.case is job.plan.baseline:
                if res.ok:
                    try:
                        ref = BaselineRef.from_result(job.case, res)
                    except InputError as exc:
                        res = CaseResult(res.subject, res.visit, res.date, False, error=str(exc))
                        ref = None
                    if ref is not None:
                        followups_ready(job.plan, ref)
                        continue
                for fu in job.plan.followups:
                    if fu.key not in skip:
                        report(_Job(fu, job.plan), CaseResult(
                            fu.subject, fu.visit, fu.date, False,
                            error=f"not scored: baseline {job.case.visit} failed"))
        fill()
    return results


def _series_bytes(path: str) -> int:
    """Size on disk of a series (a folder's files, or one zip / volume file); 0 if unreadable."""
    try:
        if os.path.isdir(path):
            return sum(e.stat().st_size for e in os.scandir(path) if e.is_file())
        return os.path.getsize(path)
    except OSError:
        return 0


def estimated_cost(case: Case, n_lesions: int) -> float:
    """Relative cost of a follow-up case: its series size times the lesions tracked into it.

    Only used to order ready cases (largest first); loading and registration grow with the series
    size, local refinement and segmentation with the number of lesions.
    """
    return float(_series_bytes(case.series_path) or 1) * (1 + n_lesions + len(case.lesions))
