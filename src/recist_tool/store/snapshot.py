"""What every exporter and report reads from the trial database, read once and pseudonymous only.

It lives on the store side so that :mod:`recist_tool.export` and :mod:`recist_tool.report` both
build on it without one importing the other.

:func:`collect` gathers, for each subject, one reader's current reads of every visit (baseline
first), the lesions, the engine's best overall response, and the subject's audit trail. It never
reads a DICOM identifier: the subject code is the only identity an export carries. (The store keeps
PatientID → subject in a table nothing here touches; ``TimepointInfo.series_path`` is a local path
for re-opening images and must not be written into EDC files.)

Readers are named in exports by role, not by login (logins may identify people): ``collect`` numbers
the trial's readers in the order of their first read (:func:`first_read_order`,
:func:`default_evaluator_ids`) — ``RADIOLOGIST n`` for people, ``ALGORITHM n`` for the accounts
``recist batch`` creates (:func:`is_batch_account`).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, overload

from recist_tool.errors import InputError, UsageError
from recist_tool.recist import BestResponse, Lesion, Response, best, policies_from_mapping
from recist_tool.recist.model import LesionAssessment, LesionState, Timepoint
from recist_tool.recist.timepoint import SumOfDiameters, sum_of_diameters
from recist_tool.store.audit import AuditEntry
from recist_tool.store.service import ReadInfo, TimepointInfo, TrialStore

__all__ = ["BATCH_FULL_NAME", "SubjectExport", "TrialExport", "collect", "default_evaluator_ids",
           "effective_overall", "first_read_order", "is_batch_account"]

#: Printed name ``recist batch`` gives the reader account it creates (``batch.persist``,
#: ``prepare_store``); ``{}`` is the account name. Such a reader is an algorithm, not a person.
BATCH_FULL_NAME = "recist batch ({})"


def effective_overall(read: ReadInfo) -> str | None:
    """The overall response of a follow-up read: as the reader confirmed it, else as computed."""
    if read.response is None:
        return None
    return read.response.confirmed_overall or read.response.overall


@dataclass(frozen=True)
class SubjectExport:
    """One subject as read by one reader.

    Attributes
    ----------
    code, trial, criteria : str
        Subject code (the only identity exported), trial name, ``RECIST 1.1`` or ``iRECIST``.
    reader, reader_full_name : str
        The reader whose reads these are (account name and printed name).
    policies : dict
        The trial's RECIST policies (as stored).
    reference_date : date or None
        Start of the SD minimum-duration window.
    timepoints : list of TimepointInfo
        Every visit of the subject, by date.
    reads : list of ReadInfo
        The reader's current read version of each visit that has one, by date; ``reads[0]`` is the
        baseline.
    lesions : list of Lesion
        The reader's lesions (engine dataclasses), in the order they were identified.
    best : BestResponse or None
        Best overall response over the follow-up reads (confirmed responses where signed); None
        when no follow-up has a response.
    audit : list of AuditEntry
        The subject's audit trail, oldest first.
    unsigned_visits : list of str
        Visits whose exported read is not signed (only with ``include_unsigned``).
    automated_reader : bool
        The reader is an account of ``recist batch`` (:func:`is_batch_account`), not a person.
    """

    code: str
    trial: str
    criteria: str
    reader: str
    reader_full_name: str
    policies: dict[str, Any]
    reference_date: _dt.date | None
    timepoints: list[TimepointInfo]
    reads: list[ReadInfo]
    lesions: list[Lesion]
    best: BestResponse | None
    audit: list[AuditEntry] = field(default_factory=list)
    unsigned_visits: list[str] = field(default_factory=list)
    automated_reader: bool = False

    @property
    def baseline(self) -> ReadInfo:
        """The baseline read."""
        return self.reads[0]

    @property
    def followups(self) -> list[ReadInfo]:
        """Reads after baseline, by date."""
        return self.reads[1:]

    def read(self, visit: str) -> ReadInfo | None:
        """The exported read of ``visit`` (None when the reader has none)."""
        return next((r for r in self.reads if r.visit == visit), None)

    def timepoint(self, visit: str) -> TimepointInfo:
        """The visit's :class:`TimepointInfo`."""
        return next(t for t in self.timepoints if t.visit == visit)

    def is_signed(self, visit: str) -> bool:
        """Whether the exported read of ``visit`` is signed."""
        return visit not in self.unsigned_visits


@dataclass(frozen=True)
class TrialExport:
    """The subjects of one trial to export, with the trial's name and criteria.

    ``evaluator_ids`` maps each reader account of the trial to its default evaluator identifier
    (:func:`default_evaluator_ids`); empty for a hand-made export (the exporters then number the
    readers in the order they appear).
    """

    trial: str
    criteria: str
    subjects: list[SubjectExport]
    created: _dt.datetime = field(default_factory=lambda: _dt.datetime.now(_dt.UTC))
    evaluator_ids: dict[str, str] = field(default_factory=dict)

    @property
    def has_unsigned(self) -> bool:
        """Whether any exported read is unsigned."""
        return any(s.unsigned_visits for s in self.subjects)


def is_batch_account(name: str, full_name: str) -> bool:
    """Whether a reader account was created by ``recist batch`` (:data:`BATCH_FULL_NAME`)."""
    return full_name == BATCH_FULL_NAME.format(name)


def first_read_order(audit: Sequence[AuditEntry], subjects: Collection[str]) -> list[str]:
    """Reader accounts in the order of their first read of any of ``subjects``.

    Read from the audit trail (append-only, oldest first): the creation of each read
    (``timepoint_read``), its reader by id, and the reader accounts' creation for their names.
    Later reads never change the order, so a reader keeps its number.
    """
    names: dict[Any, str] = {}
    order: list[str] = []
    for e in audit:
        new = e.new or {}
        if e.entity == "reader" and isinstance(new.get("name"), str):
            names[e.entity_id] = new["name"]
        elif (e.entity == "timepoint_read" and e.action == "INSERT" and e.subject in subjects
              and (who := names.get(new.get("reader_id"))) is not None and who not in order):
            order.append(who)
    return order


def default_evaluator_ids(order: Sequence[str], automated: Collection[str]) -> dict[str, str]:
    """``RADIOLOGIST n`` for people, ``ALGORITHM n`` for ``automated`` accounts, in ``order``."""
    out: dict[str, str] = {}
    count = {True: 0, False: 0}
    for name in order:
        algo = name in automated
        count[algo] += 1
        out[name] = f"{'ALGORITHM' if algo else 'RADIOLOGIST'} {count[algo]}"
    return out


def _pick_reader(store: TrialStore, subject: str, reader: str | None) -> str:
    have = store.readers_of(subject)
    if reader is not None:
        if reader not in have:
            raise InputError(f"{subject} has no read by {reader!r}"
                             + (f" (read by {', '.join(have)})" if have else ""))
        return reader
    if not have:
        raise InputError(f"{subject} has no reads to export")
    if len(have) > 1:
        raise UsageError(f"{subject} was read by {', '.join(have)}: choose one with --reader")
    return have[0]


def _best(reads: Sequence[ReadInfo], criteria: str, reference: _dt.date | None,
          policies: dict[str, Any]) -> BestResponse | None:
    seq = [(r.date, Response(ov)) for r in reads[1:] if (ov := effective_overall(r))]
    if not seq:
        return None
    return best(criteria, seq, reference, policies_from_mapping(dict(policies or {})))


def _subject(store: TrialStore, code: str, reader: str | None, include_unsigned: bool,
             full_names: dict[str, str]) -> SubjectExport:
    info = store.subject_info(code)
    if info is None:
        raise InputError(f"no subject {code!r} in the database")
    who = _pick_reader(store, code, reader)
    tps = store.timepoint_infos(code)
    reads = []
    for tp in tps:
        try:
            reads.append(store.get_read(code, tp.visit, reader=who))
        except InputError:
            continue  # visit not read (yet) by this reader
    if not tps or not reads or reads[0].visit != tps[0].visit:
        raise InputError(f"{code}: no baseline read by {who} ({tps[0].visit if tps else 'no visits'})")
    unsigned = [r.visit for r in reads if r.status != "signed"]
    if unsigned and not include_unsigned:
        raise InputError(f"{code}: {who}'s reads of {', '.join(unsigned)} are not signed; sign them "
                         "or pass --include-unsigned (they are then marked unsigned)")
    return SubjectExport(
        code=code, trial=info.trial, criteria=info.criteria, reader=who,
        reader_full_name=full_names.get(who) or who, policies=dict(info.policies or {}),
        reference_date=info.reference_date, timepoints=tps, reads=reads,
        lesions=store.lesions(code, reader=who),
        best=_best(reads, info.criteria, info.reference_date, info.policies),
        audit=store.audit_log(code), unsigned_visits=unsigned,
        automated_reader=is_batch_account(who, full_names.get(who, "")))


def collect(store: TrialStore, *, subjects: Sequence[str] | None = None, reader: str | None = None,
            include_unsigned: bool = False, trial: str | None = None) -> TrialExport:
    """Read what an export needs for ``subjects`` (default: every subject of the trial).

    Parameters
    ----------
    store : TrialStore
        The trial database (may be opened read-only).
    subjects : sequence of str, optional
        Subject codes; all subjects of the trial when omitted.
    reader : str, optional
        Whose reads to export; required when a subject was read by several readers.
    include_unsigned : bool
        Export reads that are not signed (they are listed in ``unsigned_visits`` so exporters
        mark them); without it an unsigned read is an error.
    trial : str, optional
        Trial name; required only when the database holds several trials and no subjects are given.

    Raises
    ------
    InputError
        Empty database, unknown subject, a subject without a baseline read, unsigned reads.
    UsageError
        Several trials or several readers and no choice given.
    """
    trials = store.trials()
    if not trials:
        raise InputError(f"{store.where}: the database holds no trial to export")
    if subjects:
        codes = list(dict.fromkeys(subjects))
        infos = {c: store.subject_info(c) for c in codes}
        missing = [c for c, i in infos.items() if i is None]
        if missing:
            raise InputError(f"no subject {', '.join(missing)} in the database")
        names = {i.trial for i in infos.values() if i is not None}
        if trial is not None and names != {trial}:
            raise UsageError(f"subjects {', '.join(codes)} are not all in trial {trial!r}")
        if len(names) > 1:
            raise UsageError(f"subjects of several trials ({', '.join(sorted(names))}): export one "
                             "trial at a time")
        trial = names.pop()
    else:
        if trial is None:
            if len(trials) > 1:
                raise UsageError(f"the database holds several trials ({', '.join(sorted(trials))}): "
                                 "choose one")
            trial = next(iter(trials))
        elif trial not in trials:
            raise InputError(f"no trial {trial!r} in the database")
        codes = store.subjects(trial)
        if not codes:
            raise InputError(f"trial {trial!r} has no subjects to export")
    full_names = {r.name: r.full_name for r in store.readers()}
    order = first_read_order(store.audit_log(), set(store.subjects(trial)))
    automated = {n for n, full in full_names.items() if is_batch_account(n, full)}
    return TrialExport(trial, trials[trial],
                       [_subject(store, c, reader, include_unsigned, full_names) for c in codes],
                       evaluator_ids=default_evaluator_ids(order, automated))


@overload
def decimal_text(value: None) -> None: ...
@overload
def decimal_text(value: Decimal | float | int | str) -> str: ...
def decimal_text(value: Any) -> str | None:
    """Fixed-point text of a stored decimal (``27.0`` stays ``27.0``: its precision kept);
    ``None`` for ``None``."""
    if value is None:
        return None
    from decimal import Decimal

    return format(Decimal(value), "f")


def engine_assessment(measurement: Any) -> LesionAssessment:
    """The engine's view of one stored measurement (as the store feeds the engine)."""
    return LesionAssessment(measurement.lesion_id, LesionState(measurement.state),
                            measurement.diameter_mm, tuple(measurement.fragments_mm or ()))


def target_sum(targets: Sequence[Lesion], read: ReadInfo) -> SumOfDiameters:
    """Sum of the target lesions' diameters at one read, as the engine computes it."""
    return sum_of_diameters(targets, Timepoint(
        read.visit, read.date, tuple(engine_assessment(m) for m in read.measurements)))


def visit_series(subject: SubjectExport, visit: str) -> Any:
    """The CT series (with its DICOM headers) a subject's visit was read on.

    Returns a :class:`recist_tool.io.dicom_refs.SeriesWithHeaders`.

    Raises
    ------
    InputError
        When the database does not say where the series lies, or it is not there.
    """
    from recist_tool.io.dicom_refs import load_series_with_headers
    from recist_tool.io.locations import series_found

    tp = subject.timepoint(visit)
    if not tp.series_path:
        raise InputError(f"{subject.code} {visit}: the database does not say where the CT series "
                         "lies (score it with recist batch, or record its series path)")
    if not series_found(tp.series_path):
        raise InputError(f"{subject.code} {visit}: CT series not found at {tp.series_path}")
    return load_series_with_headers(tp.series_path, tp.series_uid)
