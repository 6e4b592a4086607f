"""Batch scoring: a manifest of CT series → segment, track, measure, store, respond.

Public API
----------
:func:`run_batch`
    The whole job (what ``recist batch`` calls): manifest, local pool or Dask cluster, the trial
    database, ``responses.csv`` and ``measurements.csv``.
:func:`read_manifest`, :func:`plan_cases`, :class:`Case`, :class:`LesionSeed`, :class:`SubjectPlan`
    Manifest (CSV or TOML) and per-subject planning (baseline first, then follow-ups).
:func:`score_case`, :class:`CaseResult`, :class:`LesionResult`, :class:`BaselineRef`
    The per-case job (no database access; plain picklable results).
:func:`execute`, :func:`make_backend`
    Running cases on a local process pool or a Dask distributed scheduler.
:func:`compare_with_truth`, :func:`load_truth`
    Check results against a ground truth (the synthetic trial's ``ground_truth.json``).
"""

from recist_tool.batch.job import BaselineRef, CaseResult, LesionResult, score_case
from recist_tool.batch.manifest import (
    Case,
    LesionSeed,
    ManifestError,
    SubjectPlan,
    plan_cases,
    read_manifest,
)
from recist_tool.batch.persist import MeasurementRow, ResponseRow, TrialSetup
from recist_tool.batch.run import BatchSummary, run_batch
from recist_tool.batch.runner import execute, make_backend
from recist_tool.batch.truth import TruthReport, compare_with_truth, load_truth

__all__ = ["BaselineRef", "BatchSummary", "Case", "CaseResult", "LesionResult", "LesionSeed",
           "ManifestError", "MeasurementRow", "ResponseRow", "SubjectPlan", "TrialSetup",
           "TruthReport", "compare_with_truth", "execute", "load_truth", "make_backend",
           "plan_cases", "read_manifest", "run_batch", "score_case"]
