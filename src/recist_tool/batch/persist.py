"""The client side of a batch: store results via :class:`~recist_tool.store.TrialStore`, decide what
``--resume`` may skip, compute responses, and write ``responses.csv`` / ``measurements.csv``.

Store writes are idempotent, keyed by subject / visit / lesion: a lesion is created once, a
measurement whose values are unchanged is not written again, a changed one is updated (with an
audited reason), responses replace the previous computation. Re-running a batch therefore never
adds a row. Creation is get-or-create in the store (``exist_ok=True``), so two batches writing into
one database at the same time both finish without creating anything twice.
"""

from __future__ import annotations

import datetime as _dt
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recist_tool.batch.job import (
    BaselineLesionRef,
    BaselineRef,
    CaseResult,
    LesionResult,
    long_axis_line,
    stored_version,
)
from recist_tool.batch.manifest import Case, SubjectPlan
from recist_tool.errors import GeometryError, InputError, UsageError
from recist_tool.io.locations import series_location
from recist_tool.io.masks import mask_folder, save_mask_file
from recist_tool.io.outputs import atomic_file
from recist_tool.io.outputs import write_csv as write_rows
from recist_tool.recist.model import Category, Criteria, LesionState, to_stored_mm
from recist_tool.store.snapshot import BATCH_FULL_NAME
from recist_tool.store.values import measurement_values

if TYPE_CHECKING:
    from recist_tool.store import TrialStore

__all__ = ["BEST_COLUMNS", "MEASUREMENT_COLUMNS", "RESPONSE_COLUMNS", "BestRow", "MeasurementRow",
           "ResponseRow", "best_responses",
           "TrialSetup", "collect_outputs", "complete_cases", "prepare_store", "save_case",
           "stored_baseline_ref", "write_csv"]

RESPONSE_COLUMNS = ("subject", "visit", "date", "sod_mm", "target_response", "non_target_response",
                    "new_lesions", "overall_response", "baseline_sod_mm", "nadir_sod_mm",
                    "pct_change_from_baseline", "pct_change_from_nadir", "criteria")
BEST_COLUMNS = ("subject", "criteria", "best_response", "best_response_date", "confirmed_best_response",
                "confirmed_best_response_date", "pd_date", "reference_date")
MEASUREMENT_COLUMNS = ("subject", "visit", "date", "lesion_id", "category", "organ", "nodal",
                       "long_axis_mm", "short_axis_mm", "volume_ml", "state", "segmenter",
                       "segmenter_version", "confidence", "tracking", "method")
_CATEGORY = {"target": Category.TARGET, "non-target": Category.NON_TARGET, "new": Category.NEW}
_REASON = "batch scoring"


@dataclass(frozen=True)
class TrialSetup:
    """Trial the batch writes into: name, criteria, policies mapping and visit schedule."""

    name: str = "recist-batch"
    criteria: str = Criteria.RECIST_1_1
    policies: dict[str, Any] | None = None
    visits: tuple[dict[str, Any], ...] = ()

    @classmethod
    def from_settings(cls, path: str | Path | None) -> TrialSetup:
        """From a trial settings TOML (``[trial] name, criteria, visits`` and ``[recist]``)."""
        import tomllib

        from recist_tool.store.settings import read_trial_settings

        criteria, policies, visits = read_trial_settings(None if path is None else Path(path))
        name = "recist-batch"
        if path is not None:
            trial = tomllib.loads(Path(path).read_text(encoding="utf-8")).get("trial", {})
            name = str(trial.get("name", name)) if isinstance(trial, dict) else name
        return cls(name, criteria, policies, tuple(visits))


@dataclass(frozen=True)
class ResponseRow:
    """One line of ``responses.csv`` (the baseline row has only the sum)."""

    subject: str
    visit: str
    date: _dt.date
    sod_mm: Decimal | None
    target_response: str | None
    non_target_response: str | None
    new_lesions: str | None
    overall_response: str | None
    baseline_sod_mm: Decimal | None
    nadir_sod_mm: Decimal | None
    pct_change_from_baseline: Decimal | None
    pct_change_from_nadir: Decimal | None
    criteria: str


@dataclass(frozen=True)
class BestRow:
    """One line of ``best_response.csv``: best overall response of a subject (SD window from the
    subject's reference date, the baseline scan date unless set otherwise in the database)."""

    subject: str
    criteria: str
    best_response: str
    best_response_date: _dt.date | None
    confirmed_best_response: str
    confirmed_best_response_date: _dt.date | None
    pd_date: _dt.date | None
    reference_date: _dt.date | None


@dataclass(frozen=True)
class MeasurementRow:
    """One line of ``measurements.csv``."""

    subject: str
    visit: str
    date: _dt.date
    lesion_id: str
    category: str
    organ: str
    nodal: bool
    long_axis_mm: Decimal | None
    short_axis_mm: Decimal | None
    volume_ml: Decimal | None
    state: str
    segmenter: str | None
    segmenter_version: str | None
    confidence: float | None
    tracking: str | None
    method: str

    @property
    def diameter_mm(self) -> Decimal | None:
        """RECIST diameter: short axis of a node, long axis otherwise (0 when absent)."""
        if self.state == LesionState.ABSENT:
            return Decimal(0)
        return self.short_axis_mm if self.nodal else self.long_axis_mm


# --- setup -----------------------------------------------------------------------------------------

def prepare_store(store: TrialStore, plans: Sequence[SubjectPlan], *, reader: str, trial: TrialSetup) -> None:
    """Create what is missing: the reader account, the trial, subjects and visits.

    The reader account gets a random password nobody knows: batch reads can be stored and
    reviewed, but signing needs an account with a password (``recist reader add``).

    Raises
    ------
    UsageError
        When a subject's trial uses other criteria than the settings ask for.
    """
    if reader not in {r.name for r in store.readers()}:
        store.add_reader(reader, secrets.token_urlsafe(24), full_name=BATCH_FULL_NAME.format(reader),
                         role="reader", exist_ok=True)
    trials = store.trials()
    subj_trial = {p.subject: info.trial for p in plans
                  if (info := store.subject_info(p.subject)) is not None}
    if trial.name not in trials:
        store.add_trial(trial.name, criteria=trial.criteria, policies=trial.policies or {},
                        visit_schedule=list(trial.visits), exist_ok=True)
        trials[trial.name] = trial.criteria
    elif trials[trial.name] != trial.criteria:
        raise UsageError(f"trial {trial.name!r} in the database uses {trials[trial.name]}, the "
                         f"settings ask for {trial.criteria}")
    for plan in plans:
        if plan.subject not in subj_trial:
            store.add_subject(trial.name, plan.subject, reference_date=plan.baseline.date,
                              exist_ok=True)
        elif trials.get(subj_trial[plan.subject]) != trial.criteria:
            raise UsageError(f"subject {plan.subject} belongs to trial {subj_trial[plan.subject]!r} "
                             f"({trials.get(subj_trial[plan.subject])}), the settings ask for "
                             f"{trial.criteria}")
        stored = {t.visit: t for t in store.timepoint_infos(plan.subject)}
        for case in plan.cases:
            where = series_location(case.series_path)
            if case.visit not in stored:
                store.add_timepoint(plan.subject, case.visit, case.date, series_uid=case.series_uid,
                                    series_path=where, exist_ok=True)
                continue
            tp = stored[case.visit]
            if tp.date != case.date:
                raise InputError(f"{case.where}: {case.label} is stored with date "
                                 f"{tp.date}, the manifest says {case.date}")
            if tp.series_path is None:  # a database made before series locations were kept
                store.set_timepoint_images(plan.subject, case.visit, series_path=where,
                                           series_uid=case.series_uid)


# --- resume ----------------------------------------------------------------------------------------

def _read_or_none(store: TrialStore, subject: str, visit: str, reader: str) -> Any:
    try:
        return store.get_read(subject, visit, reader=reader)
    except InputError:
        return None


def complete_cases(store: TrialStore, plans: Sequence[SubjectPlan], *, reader: str) -> set[tuple[str, str]]:
    """Cases whose every lesion is stored in ``reader``'s read (what ``--resume`` skips)."""
    done = set()
    for plan in plans:
        base_ids = {les.lesion_id for les in plan.baseline.lesions}
        for case in plan.cases:
            read = _read_or_none(store, case.subject, case.visit, reader)
            if read is None:
                continue
            need = base_ids | {les.lesion_id for les in case.lesions}
            if need <= {m.lesion_id for m in read.measurements}:
                done.add(case.key)
    return done


def scored_by_others(store: TrialStore, keys: Sequence[tuple[str, str]], *, reader: str,
                     segmenter: Any, options: str = "") -> dict[tuple[str, str], set[str]]:
    """Of the stored cases ``keys``, those holding an automatic measurement that ``segmenter``
    did not make: another segmenter, or another version of it (other weights, another
    outline). ``--resume`` keeps them as they are; the batch says so.

    ``classic``'s measurements count as ``segmenter``'s own when ``segmenter`` made some of the
    stored ones: the built-in segmenters hand ``classic`` the clicks they do not answer (liver,
    nodes). So a trial stored by ``classic`` alone and resumed with ``unet`` is reported, and so
    would be one whose lesions were all handed to ``classic``.

    ``options`` are those of the run's segmenter spec, which the batch stores with the version
    (:func:`~recist_tool.batch.job.stored_version`).

    Returns
    -------
    dict
        ``(subject, visit) → {"name version", ...}`` of the other segmenters.
    """
    from recist_tool.segment.classic import __version__ as classic_version

    ours = (segmenter.name, stored_version(segmenter.version, options))
    stored: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for subject, visit in keys:
        read = _read_or_none(store, subject, visit, reader)
        for m in read.measurements if read is not None else ():
            if m.method == "automatic" and m.segmenter and m.segmenter_version:
                # (an absent lesion names no segmenter version: nothing was segmented)
                stored.setdefault((subject, visit), set()).add((m.segmenter, m.segmenter_version))
    allowed = {ours}
    if any(ours in made for made in stored.values()):
        allowed.add(("classic", stored_version(classic_version, options)))
    return {key: {f"{n} {v}" for n, v in made - allowed}
            for key, made in stored.items() if made - allowed}


def stored_baseline_ref(store: TrialStore, plan: SubjectPlan, *, reader: str) -> BaselineRef | None:
    """The stored baseline's lesion centres, sizes and segmenters, to track follow-ups on
    ``--resume``."""
    from recist_tool.track import stored_segmenter_spec

    read = _read_or_none(store, plan.subject, plan.baseline.visit, reader)
    if read is None:
        return None
    refs = []
    for m in read.measurements:
        c = (m.endpoints_lps or {}).get("centroid_lps")
        if c is None or m.long_axis_mm is None:
            return None
        refs.append(BaselineLesionRef(m.lesion_id, m.category.lower(), m.organ, m.nodal,
                                      (float(c[0]), float(c[1]), float(c[2])),
                                      float(m.long_axis_mm),
                                      stored_segmenter_spec(m.segmenter, m.segmenter_version,
                                                            m.endpoints_lps),
                                      long_axis_line(m.endpoints_lps)))
    return BaselineRef(plan.baseline.series_path, plan.baseline.series_uid, tuple(refs))


# --- writing one case ------------------------------------------------------------------------------

def _values(les: LesionResult) -> dict[str, Any]:
    return measurement_values(les.long_axis_mm, les.short_axis_mm, les.volume_ml,
                              les.endpoints_lps, segmenter=les.segmenter,
                              segmenter_version=les.segmenter_version, method="automatic")


def _same(info: Any, state: str, v: dict[str, Any]) -> bool:
    return (info.state == state and info.long_axis_mm == v["long_axis_mm"]
            and info.short_axis_mm == v["short_axis_mm"] and info.volume_ml == v["volume_ml"]
            and info.endpoints_lps == v["endpoints_lps"] and info.segmenter == v["segmenter"]
            and info.segmenter_version == v["segmenter_version"] and info.method == v["method"])


def _with_mask(values: dict[str, Any], les: LesionResult, case: Case, mask_dir: Path | None
               ) -> dict[str, Any]:
    if les.mask is None or mask_dir is None:
        return values
    try:
        folder = mask_folder(mask_dir, case.subject, case.visit)
        path, digest = save_mask_file(les.mask.array, les.mask, folder, les.lesion_id,
                                      offset=(0, 0, 0))
    except GeometryError:  # unevenly spaced slices: NIfTI cannot hold them; keep the measurement
        return values
    return {**values, "mask_path": str(path), "mask_sha256": digest}


def save_case(store: TrialStore, case: Case, result: CaseResult, *, reader: str,
              mask_dir: Path | None = None) -> int:
    """Store a successful case's lesions and measurements; returns the number of rows written.

    With ``mask_dir``, each segmented lesion's mask is written there as
    ``<subject>/<visit>/<lesion>.nii.gz`` (see :func:`recist_tool.io.masks.save_mask`) and its path
    and sha256 are stored with the measurement.

    The case's rows are written in one transaction (:meth:`~recist_tool.store.TrialStore.atomic`):
    a case is stored whole or not at all, and a resumed batch scores it again.
    """
    if not result.ok:
        raise InputError(f"{case.label}: nothing to store ({result.error})")
    with store.atomic():
        return _save_lesions(store, case, result, reader=reader, mask_dir=mask_dir)


def _save_lesions(store: TrialStore, case: Case, result: CaseResult, *, reader: str,
                  mask_dir: Path | None) -> int:
    existing = {les.lesion_id for les in store.lesions(case.subject, reader=reader)}
    read = _read_or_none(store, case.subject, case.visit, reader)
    stored = {m.lesion_id: m for m in read.measurements} if read is not None else {}
    written = 0
    for les in result.lesions:
        values = _values(les)
        if les.lesion_id in stored and _same(stored[les.lesion_id], les.state, values):
            continue
        values = _with_mask(values, les, case, mask_dir)
        if les.lesion_id not in existing and les.category == "new":
            store.record_new_lesion(case.subject, case.visit, les.lesion_id, reader=reader,
                                    organ=les.organ, nodal=les.nodal, reason=_REASON,
                                    exist_ok=True, **{k: v for k, v in values.items()})
            written += 1
            continue
        if les.lesion_id not in existing:
            store.add_lesion(case.subject, case.visit, les.lesion_id, _CATEGORY[les.category],
                             reader=reader, organ=les.organ, nodal=les.nodal, reason=_REASON,
                             exist_ok=True)
        store.record_measurement(case.subject, case.visit, les.lesion_id, reader=reader,
                                 state=les.state, reason=_REASON, **values)
        written += 1
    return written


# --- responses and tables ---------------------------------------------------------------------------

def _pct(v: Decimal | None) -> Decimal | None:
    """A percentage change to 0.1, half to even: the rounding of a stored diameter."""
    return to_stored_mm(v)


def collect_outputs(store: TrialStore, subjects: Iterable[str], *, reader: str
                    ) -> tuple[list[ResponseRow], list[MeasurementRow], dict[str, str]]:
    """Compute responses (stored) for each subject and read back the rows of both CSV files.

    Returns
    -------
    (responses, measurements, errors)
        ``errors`` maps a subject whose responses could not be computed to the reason.
    """
    responses: list[ResponseRow] = []
    measurements: list[MeasurementRow] = []
    errors: dict[str, str] = {}
    for subject in subjects:
        info = store.subject_info(subject)
        criteria = info.criteria if info is not None else Criteria.RECIST_1_1
        engine: dict[str, Any] = {}
        try:
            for r in store.compute_responses(subject, reader=reader):
                engine[r.visit] = r
        except InputError as exc:
            errors[subject] = str(exc)
        except Exception as exc:  # noqa: BLE001 - rule violations etc. are reported per subject
            errors[subject] = f"{type(exc).__name__}: {exc}"
        for visit, date in store.timepoints(subject):
            read = _read_or_none(store, subject, visit, reader)
            if read is None:
                continue
            for m in read.measurements:
                trk = (m.endpoints_lps or {}).get("tracking") or {}
                measurements.append(MeasurementRow(
                    subject, visit, date, m.lesion_id, m.category, m.organ, m.nodal,
                    m.long_axis_mm, m.short_axis_mm, m.volume_ml, m.state, m.segmenter,
                    m.segmenter_version, trk.get("confidence"),
                    trk.get("status") or ("seeded" if m.segmenter else None), m.method))
            resp = read.response
            if resp is None:
                sod = None
                tgt = [m for m in read.measurements if m.category == Category.TARGET]
                if tgt and all(m.diameter_mm is not None or m.state == LesionState.ABSENT
                               for m in tgt):
                    sod = sum((m.diameter_mm or Decimal(0) for m in tgt), Decimal(0))
                responses.append(ResponseRow(subject, visit, date, sod, None, None, None, None,
                                             sod, None, None, None, criteria))
                continue
            e = engine.get(visit)
            responses.append(ResponseRow(
                subject, visit, date, resp.sod_mm, resp.target, resp.non_target, resp.new_lesions,
                resp.confirmed_overall or resp.overall, resp.baseline_mm, resp.nadir_mm,
                _pct(e.pct_from_baseline) if e else None, _pct(e.pct_from_nadir) if e else None,
                criteria))
    return responses, measurements, errors


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def write_csv(path: str | Path, columns: Sequence[str], rows: Iterable[Any]) -> Path:
    """Write rows (dataclasses) to ``path`` through a temporary file renamed into place (text
    cells neutralised against spreadsheet formulas: :func:`recist_tool.io.outputs.csv_cell`)."""
    p = Path(path)
    with atomic_file(p) as tmp:
        write_rows(tmp, columns, ([_cell(getattr(row, c)) for c in columns] for row in rows),
                   lineterminator="\n")
    return p


def best_responses(store: TrialStore, responses: Sequence[ResponseRow]) -> list[BestRow]:
    """Best overall response per subject from the timepoint responses (RECIST 1.1 or iRECIST)."""
    from recist_tool.recist import Response, best, policies_from_mapping

    out = []
    for subject in dict.fromkeys(r.subject for r in responses):
        info = store.subject_info(subject)
        if info is None:
            continue
        criteria, ref = info.criteria, info.reference_date
        pol = policies_from_mapping(info.policies)
        seq = [(r.date, Response(r.overall_response)) for r in responses
               if r.subject == subject and r.overall_response]
        if not seq:
            continue
        b = best(criteria, seq, ref, pol)
        out.append(BestRow(subject, criteria, b.bor.value, b.bor_date, b.confirmed_bor.value,
                           b.confirmed_bor_date, b.pd_date, ref))
    return out
