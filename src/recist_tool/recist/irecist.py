"""iRECIST (Seymour et al., Lancet Oncol 2017;18:e143–52): iUPD, iCPD and best overall response.

New lesions are split into new-lesion targets (NLT: ≤ 5, ≤ 2 per organ, their own sum, never added
to the target sum) and new-lesion non-targets (NLNT). RECIST 1.1 progression in any category
becomes iUPD (unconfirmed). At a later assessment iUPD is confirmed (iCPD) when, compared with the
assessment that set iUPD (so increases add up over assessments):

* the category that drove iUPD progresses further: target sum +≥ 5 mm; non-target disease grows
  (lesion state ``INCREASED``); NLT sum +≥ 5 mm; an NLNT grows (``INCREASED``);
* a further new lesion appears (at any time after iUPD, even < 4 weeks);
* a category that was not progressing now meets RECIST 1.1 PD.

Apart from a further new lesion, only assessments ≥ ``irecist_confirm_min_days`` (28) after iUPD
can confirm. When no category is in RECIST progression any more, iUPD resets (iSD, iPR, iCR or
NON-iCR/NON-iUPD) and the next progression is a new iUPD.

The new-lesion target limits are checked by :func:`check_new_lesion_targets` (one
:class:`~recist_tool.recist.baseline.Violation` per lesion over a limit, like the baseline rules);
:func:`evaluate_irecist` raises on them unless ``strict=False``, which scores the lesions as
recorded.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import overload

from recist_tool.errors import RuleViolation
from recist_tool.recist.baseline import Violation, limit_violations
from recist_tool.recist.best import Assessment, confirmed_indices
from recist_tool.recist.model import (
    BestResponse,
    Category,
    Lesion,
    LesionState,
    Response,
    Timepoint,
    TimepointResponse,
)
from recist_tool.recist.policies import Policies
from recist_tool.recist.timepoint import evaluate_timepoints, lesion_value, new_lesion_status

#: iRECIST (Seymour et al., Lancet Oncol 2017): after iUPD, an increase of the target sum or of the
#: new-lesion target sum by this much or more confirms progression (iCPD).
ICPD_INCREASE_MM = Decimal(5)

__all__ = ["IRecistTimepoint", "evaluate_irecist", "best_irecist", "check_new_lesion_targets",
           "to_irecist"]

_MAP = {
    Response.CR: Response.ICR, Response.PR: Response.IPR, Response.SD: Response.ISD,
    Response.NON_CR_NON_PD: Response.INN, Response.PD: Response.IUPD, Response.NE: Response.NE,
}
_GROWTH = (LesionState.INCREASED,)


@overload
def to_irecist(r: Response) -> Response: ...
@overload
def to_irecist(r: None) -> None: ...
def to_irecist(r: Response | None) -> Response | None:
    """The iRECIST name of a RECIST 1.1 response (PD → iUPD)."""
    return None if r is None else _MAP.get(r, r)


@dataclass(frozen=True)
class IRecistTimepoint:
    """iRECIST response at one follow-up timepoint, next to the RECIST 1.1 one it builds on."""

    visit: str
    date: _dt.date
    overall: Response
    recist: TimepointResponse
    nlt_sum_mm: Decimal | None
    new_lesion_ids: tuple[str, ...]
    iupd_date: _dt.date | None  #: date of the iUPD pending (or confirmed here)
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class _Ref:
    date: _dt.date
    drivers: frozenset[str]
    sod: Decimal | None
    nlt_sum: Decimal
    new_ids: frozenset[str]


def check_new_lesion_targets(lesions: Sequence[Lesion]) -> tuple[Violation, ...]:
    """New-lesion targets over the iRECIST limits (≤ 5 in all, ≤ 2 per organ), in lesion order.

    One :class:`~recist_tool.recist.baseline.Violation` per lesion beyond a limit (rule
    ``too_many_new_targets`` or ``too_many_new_in_organ``); organs are grouped as at baseline
    (all nodes one organ, paired organs one).
    """
    return limit_violations(lesions, Category.NEW_TARGET, "new-lesion targets",
                            ("too_many_new_targets", "too_many_new_in_organ"))


def evaluate_irecist(lesions: Sequence[Lesion], timepoints: Sequence[Timepoint],
                     policies: Policies | None = None, *, strict: bool = True
                     ) -> tuple[IRecistTimepoint, ...]:
    """iRECIST timepoint responses (iCR, iPR, iSD, NON-iCR/NON-iUPD, iUPD, iCPD, NE).

    Parameters
    ----------
    lesions, timepoints, policies
        As for :func:`~recist_tool.recist.timepoint.evaluate_timepoints`; new lesions should be
        ``NEW_TARGET`` or ``NEW_NON_TARGET`` (plain ``NEW`` counts as NLNT).
    strict : bool
        Refuse new-lesion targets over the limits (:func:`check_new_lesion_targets`). With
        False they are scored as recorded (every NLT in the NLT sum) and reporting the
        violations is the caller's business, as with the baseline rules.

    Raises
    ------
    RuleViolation
        ``strict`` and a new-lesion target over a limit (the message lists each one).
    """
    policies = policies or Policies()
    if strict and (violations := check_new_lesion_targets(lesions)):
        raise RuleViolation("; ".join(v.message for v in violations))
    recist = evaluate_timepoints(lesions, timepoints, policies)
    nts = [les for les in lesions if les.category is Category.NON_TARGET]
    nlt = [les for les in lesions if les.category is Category.NEW_TARGET]
    nlnt = [les for les in lesions if les.category in (Category.NEW_NON_TARGET, Category.NEW)]
    new_all = [les for les in lesions if les.category.is_new]
    state = "none"
    ref: _Ref | None = None
    out: list[IRecistTimepoint] = []
    for tp, tr in zip(timepoints[1:], recist, strict=True):
        reasons: list[str] = []
        _, uneq, _ = new_lesion_status(new_all, tp)
        new_now = frozenset(uneq)
        nlt_sum = sum((lesion_value(les, tp.get(les.lesion_id)) or Decimal(0) for les in nlt),
                      Decimal(0))
        t_pd = tr.target is Response.PD
        nt_pd = tr.non_target is Response.PD
        overall: Response
        if state == "icpd":
            overall = Response.ICPD
            reasons.append("progression already confirmed (iCPD)")
        elif state == "none":
            drivers = {name for name, hit in (("target", t_pd), ("non-target", nt_pd),
                                              ("new lesions", bool(new_now))) if hit}
            if drivers:
                state = "iupd"
                ref = _Ref(tp.date, frozenset(drivers), tr.sod_mm, nlt_sum, new_now)
                overall = Response.IUPD
                reasons.append(f"RECIST 1.1 progression ({', '.join(sorted(drivers))}): iUPD, "
                               f"to be confirmed {policies.irecist_confirm_min_days}–"
                               f"{policies.irecist_confirm_max_days} days later")
            else:
                overall = to_irecist(tr.overall)
        else:
            assert ref is not None
            days = (tp.date - ref.date).days
            triggers: list[str] = []
            further = new_now - ref.new_ids
            if further:
                triggers.append(f"further new lesion(s) {', '.join(sorted(further))}")
            if days >= policies.irecist_confirm_min_days:
                if "target" in ref.drivers and tr.sod_mm is not None and ref.sod is not None \
                        and tr.sod_mm - ref.sod >= ICPD_INCREASE_MM:
                    triggers.append(f"target sum {tr.sod_mm} mm is {tr.sod_mm - ref.sod} mm above "
                                    f"{ref.sod} mm at iUPD (≥ {ICPD_INCREASE_MM} mm)")
                if "target" not in ref.drivers and t_pd:
                    triggers.append("target lesions now meet RECIST 1.1 PD")
                grown_nt = [les.lesion_id for les in nts
                            if (a := tp.get(les.lesion_id)) is not None and a.state in _GROWTH]
                if "non-target" in ref.drivers and grown_nt:
                    triggers.append(f"non-target {', '.join(grown_nt)} grew further")
                if "non-target" not in ref.drivers and nt_pd:
                    triggers.append("non-target lesions now meet RECIST 1.1 unequivocal PD")
                if nlt and nlt_sum - ref.nlt_sum >= ICPD_INCREASE_MM:
                    triggers.append(f"new-lesion target sum {nlt_sum} mm is {nlt_sum - ref.nlt_sum}"
                                    f" mm above {ref.nlt_sum} mm at iUPD (≥ {ICPD_INCREASE_MM} mm)")
                grown_nl = [les.lesion_id for les in nlnt
                            if (a := tp.get(les.lesion_id)) is not None and a.state in _GROWTH]
                if grown_nl:
                    triggers.append(f"new non-target lesion(s) {', '.join(grown_nl)} grew")
                if days > policies.irecist_confirm_max_days:
                    reasons.append(f"assessment {days} days after iUPD, later than the "
                                   f"recommended {policies.irecist_confirm_max_days}")
            elif not further:
                reasons.append(f"only {days} days after iUPD (< "
                               f"{policies.irecist_confirm_min_days}): only a further new lesion "
                               "could confirm")
            if triggers:
                state = "icpd"
                overall = Response.ICPD
                reasons.append("iUPD of " + ref.date.isoformat() + " confirmed: "
                               + "; ".join(triggers))
            elif t_pd or nt_pd or new_now:
                overall = Response.IUPD
                reasons.append(f"still progressing since iUPD of {ref.date.isoformat()}, not "
                               "confirmed: iUPD remains")
            elif tr.overall is Response.NE:
                overall = Response.NE
                reasons.append("not evaluable; iUPD still unconfirmed")
            else:
                overall = to_irecist(tr.overall)
                reasons.append(f"no category progressing any more: iUPD of "
                               f"{ref.date.isoformat()} reset, next progression is a new iUPD")
                state = "none"
                ref = None
        out.append(IRecistTimepoint(
            visit=tp.visit, date=tp.date, overall=overall, recist=tr,
            nlt_sum_mm=nlt_sum if nlt else None, new_lesion_ids=tuple(sorted(new_now)),
            iupd_date=ref.date if ref is not None else None,
            reasons=tuple(reasons) + tr.reasons,
        ))
    return tuple(out)


_RANK = [Response.ICR, Response.IPR, Response.ISD, Response.INN, Response.IUPD, Response.ICPD,
         Response.NE]
_TO_RECIST = {Response.ICR: Response.CR, Response.IPR: Response.PR, Response.ISD: Response.SD,
              Response.INN: Response.NON_CR_NON_PD, Response.ICPD: Response.PD,
              Response.IUPD: Response.PD, Response.NE: Response.NE}


def _confirmed_iupd(seq: Sequence[tuple[_dt.date, Response]]) -> list[Response]:
    """Replace each iUPD later confirmed (iCPD with no reset between) by iCPD."""
    out = [r for _, r in seq]
    for i, r in enumerate(out):
        if r is not Response.IUPD:
            continue
        for r2 in out[i + 1:]:
            if r2 is Response.ICPD:
                out[i] = Response.ICPD
                break
            if r2 not in (Response.IUPD, Response.NE):
                break
    return out


def best_irecist(
    timepoints: Sequence[IRecistTimepoint | tuple[_dt.date, Response | str]],
    reference_date: _dt.date | None,
    policies: Policies | None = None,
) -> BestResponse:
    """iBOR as in Seymour et al. 2017, Table 3.

    Order iCR > iPR > iSD > NON-iCR/NON-iUPD > iUPD > iCPD > NE; an iUPD later confirmed counts as
    iCPD; iSD / NON-iCR/NON-iUPD count only after the SD minimum duration; nothing after the first
    iCPD counts. The confirmed iBOR additionally requires iCR/iPR confirmation as in RECIST 1.1
    (unconfirmed ones count as iSD where the SD window allows).
    """
    policies = policies or Policies()
    seq: list[tuple[_dt.date, Response]] = []
    for t in timepoints:
        if isinstance(t, IRecistTimepoint):
            seq.append((t.date, t.overall))
        else:
            seq.append((t[0], Response(t[1])))
    seq.sort(key=lambda x: x[0])
    last = seq[-1] if seq else None
    first_cpd = next((i for i, (_, r) in enumerate(seq) if r is Response.ICPD), None)
    if first_cpd is not None:
        seq = seq[:first_cpd + 1]
    eff = _confirmed_iupd(seq)
    dates = [d for d, _ in seq]

    def win(d: _dt.date) -> bool:
        return reference_date is None or (d - reference_date).days >= policies.sd_min_days

    def pick(values: list[Response], confirmed: set[int] | None
             ) -> tuple[Response, _dt.date | None]:
        for cand in _RANK:
            for i, r in enumerate(values):
                d = dates[i]
                if cand in (Response.ICR, Response.IPR):
                    ok = r is cand and (confirmed is None or i in confirmed)
                elif cand is Response.ISD:
                    ok = win(d) and (r is Response.ISD or (
                        confirmed is not None and r in (Response.ICR, Response.IPR)))
                elif cand is Response.INN:
                    ok = r is Response.INN and win(d)
                elif cand is Response.NE:
                    ok = True
                else:
                    ok = r is cand
                if ok:
                    return cand, d
        return (Response.NE if policies.missing_as_ne else Response.MISSING), None

    ibor, ibor_date = pick(eff, None)
    mapped = [Assessment(d, _TO_RECIST[r]) for d, r in zip(dates, eff, strict=True)]
    conf = confirmed_indices(mapped, policies)
    cibor, cibor_date = pick(eff, conf)
    resp = next((d for d, r in zip(dates, eff, strict=True)
                 if r in (Response.ICR, Response.IPR)), None)
    conf_date = min((dates[i] for i in conf), default=None)
    pd_idx = next((i for i, r in enumerate(eff) if r is Response.ICPD), None)
    pd_date = dates[pd_idx] if pd_idx is not None else None
    dur = None
    start = conf_date if policies.confirmation else resp
    if start is not None and pd_date is not None and pd_date >= start:
        dur = (pd_date - start).days + 1
    return BestResponse(
        bor=ibor, bor_date=ibor_date, confirmed_bor=cibor, confirmed_bor_date=cibor_date,
        response=ibor in (Response.ICR, Response.IPR), response_date=resp,
        confirmed_response=conf_date is not None, confirmed_response_date=conf_date,
        clinical_benefit=ibor in (Response.ICR, Response.IPR, Response.ISD, Response.INN),
        clinical_benefit_date=ibor_date if ibor in (Response.ICR, Response.IPR, Response.ISD,
                                                    Response.INN) else None,
        confirmed_clinical_benefit=cibor in (Response.ICR, Response.IPR, Response.ISD,
                                             Response.INN),
        confirmed_clinical_benefit_date=cibor_date if cibor in (
            Response.ICR, Response.IPR, Response.ISD, Response.INN) else None,
        progression=pd_date is not None, pd_date=pd_date, duration_of_response_days=dur,
        last_response=last[1] if last else None,
        last_assessment_date=last[0] if last else None,
        reference_date=reference_date,
        reasons=("iBOR per Seymour et al. 2017 Table 3; confirmed iUPD counted as iCPD",),
    )
