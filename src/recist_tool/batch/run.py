"""``run_batch``: manifest → scored cases → store → responses → CSV files. What ``recist batch`` calls."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from recist_tool.batch.job import CaseResult
from recist_tool.batch.manifest import Case, SubjectPlan, plan_cases, read_manifest
from recist_tool.batch.persist import (
    BEST_COLUMNS,
    MEASUREMENT_COLUMNS,
    RESPONSE_COLUMNS,
    BestRow,
    MeasurementRow,
    ResponseRow,
    TrialSetup,
    best_responses,
    collect_outputs,
    complete_cases,
    prepare_store,
    save_case,
    scored_by_others,
    stored_baseline_ref,
    write_csv,
)
from recist_tool.batch.runner import execute, make_backend, without_masks
from recist_tool.errors import RecistToolError

__all__ = ["BatchProgress", "BatchSummary", "run_batch"]


class BatchProgress(Protocol):
    """What :func:`run_batch` reports to (e.g. :class:`~recist_tool.batch.report.RichProgress`)."""

    def start(self, total: int, description: str) -> None: ...

    def skipped(self, case: Case) -> None: ...

    def done(self, case: Case, result: CaseResult) -> None: ...


@dataclass
class BatchSummary:
    """What a batch did.

    Attributes
    ----------
    results : list of CaseResult
        Scored cases in completion order (failed ones with ``ok`` False).
    skipped : list of (subject, visit)
        Cases left alone because they were stored already (``--resume``).
    skipped_other_segmenter : dict
        Of those, the ones scored by another segmenter or version (other weights, another
        outline): ``(subject, visit) → {"name version", ...}``; they were not scored again.
    responses, measurements, best : lists of rows
        The content of ``responses.csv``, ``measurements.csv`` and ``best_response.csv``.
    subject_errors : dict
        Subjects whose responses could not be computed, with the reason.
    outputs : dict
        ``{"responses": Path, "measurements": Path, "best_response": Path}``.
    backend : str
        Where the cases ran.
    seconds : float
        Wall time of the scoring (loading the manifest to the last result).
    """

    results: list[CaseResult] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    skipped_other_segmenter: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    responses: list[ResponseRow] = field(default_factory=list)
    measurements: list[MeasurementRow] = field(default_factory=list)
    best: list[BestRow] = field(default_factory=list)
    subject_errors: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, Path] = field(default_factory=dict)
    backend: str = ""
    seconds: float = 0.0

    @property
    def failed(self) -> list[CaseResult]:
        """Cases that failed (bad series, seed not on a lesion, store refusal, ...)."""
        return [r for r in self.results if not r.ok]

    @property
    def ok(self) -> bool:
        """No case failed and every subject's responses were computed."""
        return not self.failed and not self.subject_errors

    @property
    def series_per_minute(self) -> float:
        """Throughput of the scoring (cases scored / minute)."""
        return 60.0 * len(self.results) / self.seconds if self.seconds > 0 else 0.0


def _check_servers(plans: list[SubjectPlan], settings: str | Path | None) -> None:
    """Take the PACS servers from ``settings`` (worker processes too); every server a series
    reference names must be there (else one error before anything runs)."""
    from recist_tool.io import pacs

    pacs.use_settings(settings)
    names = sorted({pacs.parse_ref(c.series_path).server for p in plans for c in p.cases
                    if pacs.is_pacs_ref(c.series_path)})
    for name in names:
        pacs.server(name)


def run_batch(
    manifest: str | Path,
    *,
    db: str | Path = "recist.db",
    outdir: str | Path = ".",
    workers: int | None = None,
    scheduler: str | None = None,
    resume: bool = False,
    segmenter: str | None = None,
    settings: str | Path | None = None,
    reader: str = "batch",
    progress: BatchProgress | None = None,
) -> BatchSummary:
    """Score every series of a manifest, store the reads, compute responses, write the CSV files.

    Parameters
    ----------
    manifest : path-like
        CSV or TOML manifest (see :func:`~recist_tool.batch.manifest.read_manifest`).
    db : str or path
        :class:`~recist_tool.store.TrialStore` URL or SQLite file (default ``recist.db``).
    outdir : path-like
        Folder for ``responses.csv`` and ``measurements.csv`` (created).
    workers : int, optional
        Local worker processes (default: CPU count; 0 runs in this process).
    scheduler : str, optional
        Dask scheduler address ``tcp://host:port``; default ``$DASK_SCHEDULER_ADDRESS``; when set,
        cases run on that cluster instead of the local pool.
    resume : bool
        Skip cases whose lesions are all stored already for ``reader``.
    segmenter : str, optional
        Segmenter registry name (default: ``unet`` when its weights exist, else ``classic``),
        optionally with constructor options: ``classic:band_fraction=0.5``.
    settings : path-like, optional
        Trial settings TOML: ``[trial] name, criteria ("RECIST 1.1" / "iRECIST"), visits``,
        ``[recist]`` policies and the ``[pacs.NAME]`` servers series references name.
    reader : str
        Reader account the reads are stored under (created when missing).
    progress : BatchProgress, optional
        Receives start / skipped / done events (in the client process).

    Returns
    -------
    BatchSummary

    Raises
    ------
    RecistToolError
        For a malformed manifest (``file:line``), settings, database or scheduler problem; a bad
        series is not an exception but a failed case in the summary.
    """
    from recist_tool.batch.job import worker_segmenter
    from recist_tool.segment import default_segmenter_name
    from recist_tool.store import TrialStore

    plans = plan_cases(read_manifest(manifest))
    setup = TrialSetup.from_settings(settings)
    _check_servers(plans, settings)
    seg_name = segmenter or default_segmenter_name()
    seg = worker_segmenter(seg_name)  # an unknown name or option fails here, once
    summary = BatchSummary()
    with TrialStore(db) as store:
        prepare_store(store, plans, reader=reader, trial=setup)
        skip = complete_cases(store, plans, reader=reader) if resume else set()
        all_cases = [c for p in plans for c in p.cases]
        todo = [c for c in all_cases if c.key not in skip]
        summary.skipped = [c.key for c in all_cases if c.key in skip]
        summary.skipped_other_segmenter = scored_by_others(
            store, summary.skipped, reader=reader, segmenter=seg,
            options=seg_name.partition(":")[2])
        t0 = time.perf_counter()
        if todo:
            if workers is None and not (scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS")):
                workers = min(os.cpu_count() or 1, len(todo))  # no idle processes to start
            backend = make_backend(workers, scheduler, seg_name)
            summary.backend = backend.description
            if progress is not None:
                for c in all_cases:
                    if c.key in skip:
                        progress.skipped(c)
                progress.start(len(todo), backend.description)

            def on_result(case: Case, res: CaseResult) -> None:
                if res.ok:
                    try:
                        save_case(store, case, res, reader=reader,
                                  mask_dir=Path(outdir) / "masks")
                    except RecistToolError as exc:
                        res = CaseResult(res.subject, res.visit, res.date, False,
                                         error=f"not stored: {exc}", seconds=res.seconds,
                                         worker=res.worker)
                summary.results.append(without_masks(res))
                if progress is not None:
                    progress.done(case, res)

            try:
                execute(plans, backend, skip=skip, on_result=on_result,
                        stored_baseline=lambda p: stored_baseline_ref(store, p, reader=reader))
            finally:
                backend.close()
        elif progress is not None:
            for c in all_cases:
                progress.skipped(c)
        summary.seconds = time.perf_counter() - t0
        resp, meas, errors = collect_outputs(store, [p.subject for p in plans], reader=reader)
        summary.best = best_responses(store, resp)
    summary.responses, summary.measurements, summary.subject_errors = resp, meas, errors
    out = Path(outdir)
    summary.outputs = {
        "responses": write_csv(out / "responses.csv", RESPONSE_COLUMNS, resp),
        "measurements": write_csv(out / "measurements.csv", MEASUREMENT_COLUMNS, meas),
        "best_response": write_csv(out / "best_response.csv", BEST_COLUMNS, summary.best),
    }
    return summary
