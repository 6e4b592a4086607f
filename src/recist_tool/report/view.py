"""What a report shows, derived once from a :class:`~recist_tool.store.snapshot.SubjectExport`.

The report modules (plots, key images, HTML/PDF) read only these views, so the table, the plots
and ``plotted_values.csv`` always show the same numbers. Every number comes from the store: the
diameters as measured, and the engine's sums, baseline, nadir and percentages (stored with the
response; where a store has no stored percentage the engine's own
:func:`~recist_tool.recist.timepoint.pct_change` gives it from the stored sums, exactly).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from recist_tool.recist.timepoint import pct_change

#: Short cell text for lesion states other than a measured diameter.
STATE_TEXT = {
    "TOO SMALL TO MEASURE": "too small",
    "ABSENT": "absent",
    "PRESENT": "present",
    "UNEQUIVOCAL PROGRESSION": "unequivocal PD",
    "INCREASED": "increased",
    "EQUIVOCAL": "equivocal",
    "NOT EVALUATED": "NE",
    "SPLIT": "split",
    "MERGED": "merged",
}

_CATEGORY_ORDER = {"TARGET": 0, "NON-TARGET": 1, "NEW": 2, "NEW TARGET": 2, "NEW NON-TARGET": 3}


@dataclass(frozen=True)
class VisitView:
    """One timepoint of a subject as the report shows it.

    Attributes
    ----------
    visit, date : str, date
        Visit label and scan date.
    day : int
        Days since the baseline scan (baseline = 0).
    baseline : bool
        The first visit (date order).
    read : ReadInfo or None
        The reader's current read of the visit (``None``: not read).
    response : ResponseInfo or None
        Stored response (``None`` at baseline and for visits without a computed response).
    overall : str or None
        The confirmed overall response, else the computed one.
    pct_from_baseline, pct_from_nadir : Decimal or None
        The engine's percentages (0.01 %).
    series_path, series_uid : str or None
        Where the CT of the visit lies (for key images).
    signed : bool
        The read is signed.
    sum_complete : bool
        Every baseline target lesion has a value at this visit (a diameter, absent, too small,
        split or merged). An incomplete sum is a lower bound: its % change is shown in the table,
        marked, but never plotted.
    """

    visit: str
    date: _dt.date
    day: int
    baseline: bool
    read: Any
    response: Any
    overall: str | None
    pct_from_baseline: Decimal | None
    pct_from_nadir: Decimal | None
    series_path: str | None
    series_uid: str | None
    signed: bool
    sum_complete: bool = True

    @property
    def sod_mm(self) -> Decimal | None:
        """The sum of diameters: the stored response's, or at baseline the stored baseline sum."""
        if self.response is not None:
            return self.response.sod_mm
        return None


@dataclass(frozen=True)
class SubjectView:
    """One subject's report content.

    Attributes
    ----------
    code, trial, criteria, reader, reader_full_name : str
        Identification (pseudonymous code only).
    lesions : list of Lesion
        Engine lesions, targets first, then non-targets, then new lesions.
    visits : list of VisitView
        Date order, baseline first.
    cells : dict
        ``(lesion_id, visit) -> MeasurementInfo``.
    baseline_sod_mm : Decimal or None
        Baseline sum (from the first follow-up's stored response, else the baseline targets).
    best : BestResponse or None
        The engine's best overall response.
    best_label : str or None
        Its label (``PR``, ``iCPD`` ...).
    notes : list of str
        What the reader of the report must know: missing data, NE timepoints, unsigned reads.
    audit : list of AuditEntry
        The subject's audit trail.
    unsigned_visits : list of str
        Visits whose current read is not signed.
    """

    code: str
    trial: str
    criteria: str
    reader: str
    reader_full_name: str
    lesions: list[Any]
    visits: list[VisitView]
    cells: dict[tuple[str, str], Any]
    baseline_sod_mm: Decimal | None
    best: Any
    best_label: str | None
    notes: list[str] = field(default_factory=list)
    audit: list[Any] = field(default_factory=list)
    unsigned_visits: list[str] = field(default_factory=list)

    @property
    def follow_ups(self) -> list[VisitView]:
        """Visits after the baseline."""
        return [v for v in self.visits if not v.baseline]

    @property
    def has_measurements(self) -> bool:
        """At least one lesion assessment is recorded."""
        return bool(self.cells)

    def best_pct_change(self) -> tuple[Decimal, VisitView] | None:
        """Best % change: the minimum % change of the SOD from baseline over the follow-ups.

        Returns ``None`` when no follow-up has a percentage from a complete sum.
        The first visit reaching the minimum is returned with it.
        """
        best: tuple[Decimal, VisitView] | None = None
        for v in self.follow_ups:
            if v.pct_from_baseline is None or not v.sum_complete:
                continue
            if best is None or v.pct_from_baseline < best[0]:
                best = (v.pct_from_baseline, v)
        return best


def _label(x: Any) -> str | None:
    if x is None:
        return None
    return str(getattr(x, "value", x))


def _pct(resp: Any, stored: str, ref: str) -> Decimal | None:
    if resp is None:
        return None
    v = getattr(resp, stored, None)
    if v is not None:
        return Decimal(v)
    sod, base = resp.sod_mm, getattr(resp, ref)
    if sod is None or base is None:
        return None
    return pct_change(Decimal(sod), Decimal(base))


_VALUE_STATES = {"MEASURED", "ABSENT", "TOO SMALL TO MEASURE", "SPLIT", "MERGED"}


def _complete(read: Any, targets: Sequence[str]) -> bool:
    if read is None:
        return False
    have = {m.lesion_id: m for m in read.measurements}
    return all(t in have and have[t].state in _VALUE_STATES for t in targets)


def cell_text(m: Any) -> str:
    """Table text of one lesion assessment: the RECIST diameter in mm, or the state."""
    if m is None:
        return "—"
    state = m.state
    d = m.diameter_mm
    if state == "MEASURED" and d is not None:
        return f"{d}" + (" (SA)" if m.nodal else "")
    if state == "SPLIT" and m.fragments_mm:
        return " + ".join(str(f) for f in m.fragments_mm) + " (split)"
    text = STATE_TEXT.get(state, state.lower())
    if d is not None and state != "MEASURED":
        text = f"{d} ({text})"
    return text


def fmt_pct(p: Decimal | None) -> str:
    """``-31.4 %`` (one decimal for display; the engine keeps 0.01 %)."""
    if p is None:
        return "—"
    q = p.quantize(Decimal("0.1"))
    return f"{'+' if q > 0 else ''}{q} %"


def build_subject_view(subject: Any) -> SubjectView:
    """Derive a :class:`SubjectView` from a ``SubjectExport`` (see ``recist_tool.store.snapshot``).

    Parameters
    ----------
    subject : SubjectExport
        ``code, trial, criteria, reader, reader_full_name, timepoints, reads, lesions, best,
        audit, unsigned_visits``.

    Returns
    -------
    SubjectView
    """
    reads = {r.visit: r for r in subject.reads}
    tps = list(subject.timepoints)
    tp_visits = {t.visit for t in tps}
    # reads without a timepoint info (should not happen) still appear
    extra = [r for r in subject.reads if r.visit not in tp_visits]
    entries: list[tuple[str, _dt.date, Any]] = [(t.visit, t.date, t) for t in tps]
    entries += [(r.visit, r.date, None) for r in extra]
    entries.sort(key=lambda e: e[1])
    base_date = entries[0][1] if entries else None
    lesions = sorted(subject.lesions, key=lambda les: (_CATEGORY_ORDER.get(_label(les.category) or "", 9),
                                                       les.lesion_id))
    targets = [les.lesion_id for les in lesions if _label(les.category) == "TARGET"]
    visits: list[VisitView] = []
    for i, (visit, date, tp) in enumerate(entries):
        read = reads.get(visit)
        resp = read.response if read is not None else None
        overall = None
        if resp is not None:
            overall = resp.confirmed_overall or resp.overall
        visits.append(VisitView(
            visit, date, (date - base_date).days if base_date else 0, i == 0, read, resp, overall,
            _pct(resp, "pct_from_baseline", "baseline_mm"), _pct(resp, "pct_from_nadir", "nadir_mm"),
            getattr(tp, "series_path", None), getattr(tp, "series_uid", None),
            read is not None and read.status == "signed", _complete(read, targets)))

    cells: dict[tuple[str, str], Any] = {}
    for r in subject.reads:
        for m in r.measurements:
            cells[(m.lesion_id, r.visit)] = m

    baseline_sod = next((v.response.baseline_mm for v in visits
                         if v.response is not None and v.response.baseline_mm is not None), None)
    if baseline_sod is None and visits and visits[0].read is not None:
        tgt = [m for m in visits[0].read.measurements if m.category == "TARGET"]
        if tgt and all(m.diameter_mm is not None for m in tgt):
            baseline_sod = sum((m.diameter_mm for m in tgt), Decimal(0))

    best = subject.best
    best_label = _label(getattr(best, "bor", None)) if best is not None else None
    view = SubjectView(subject.code, subject.trial, subject.criteria, subject.reader,
                       getattr(subject, "reader_full_name", "") or "", lesions, visits, cells,
                       baseline_sod, best, best_label, [], list(getattr(subject, "audit", []) or []),
                       list(getattr(subject, "unsigned_visits", []) or []))
    view.notes.extend(_notes(view))
    return view


def _notes(v: SubjectView) -> list[str]:
    notes: list[str] = []
    if not v.visits:
        notes.append(f"No timepoints are recorded for {v.code}.")
        return notes
    if not v.has_measurements:
        notes.append(f"No measurements are recorded for {v.code}: the table, the plot and the key "
                     "images are empty.")
    fus = v.follow_ups
    for les in v.lesions:
        seen = [vv.visit for vv in v.visits if (les.lesion_id, vv.visit) in v.cells]
        if not seen:
            notes.append(f"{les.lesion_id}: no assessment recorded.")
            continue
        first = next(i for i, vv in enumerate(v.visits) if vv.visit == seen[0])
        later = [vv.visit for vv in v.visits[first + 1:] if vv.read is not None]
        missing = [x for x in later if (les.lesion_id, x) not in v.cells]
        if v.visits[first].baseline and fus and len(seen) == 1 and later:
            notes.append(f"{les.lesion_id} was measured only at baseline: not assessed at "
                         f"{', '.join(missing)}.")
        elif missing:
            notes.append(f"{les.lesion_id}: not assessed at {', '.join(missing)}.")
        ne = [vv for vv in seen if v.cells[(les.lesion_id, vv)].state == "NOT EVALUATED"]
        if ne:
            notes.append(f"{les.lesion_id}: not evaluable at {', '.join(ne)}.")
    for vv in v.visits:
        if vv.read is None:
            notes.append(f"{vv.visit} ({vv.date.isoformat()}): no read recorded.")
        elif not vv.baseline and vv.response is None:
            notes.append(f"{vv.visit}: no response computed.")
        if vv.overall is not None and vv.overall.upper() == "NE":
            why = "; ".join(vv.response.reasons) if vv.response.reasons else "no reason recorded"
            notes.append(f"{vv.visit}: overall response NE (not evaluable): {why}.")
        elif vv.response is not None and vv.response.target == "NE":
            notes.append(f"{vv.visit}: target response NE (not evaluable).")
        if vv.response is not None and vv.response.confirmed_overall \
                and vv.response.confirmed_overall != vv.response.overall:
            notes.append(f"{vv.visit}: the reader confirmed {vv.response.confirmed_overall} instead "
                         f"of the computed {vv.response.overall}: {vv.response.confirm_reason}.")
    if v.unsigned_visits:
        notes.append(f"Not signed: {', '.join(v.unsigned_visits)} (the report includes unsigned "
                     "reads).")
    incomplete = [vv.visit for vv in fus if vv.read is not None and not vv.sum_complete
                  and vv.sod_mm is not None]
    if incomplete:
        notes.append(f"Incomplete sum of diameters (a target not assessed) at {', '.join(incomplete)}: "
                     "shown in the table, marked, and left out of the plots.")
    if len(v.visits) > 1 and not any(vv.pct_from_baseline is not None and vv.sum_complete
                                     for vv in fus):
        notes.append("No follow-up has a complete sum of diameters: no % change to plot.")
    return notes
