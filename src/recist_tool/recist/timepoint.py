"""RECIST 1.1 timepoint response: sum of diameters, target / non-target / new lesions, overall.

All arithmetic is exact (:class:`~decimal.Decimal`): PR is ``SOD × 10 ≤ baseline × 7``, PD is
``SOD × 10 ≥ nadir × 12`` and ``SOD − nadir ≥ 5``. PD is tested before PR.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from recist_tool.errors import RuleViolation
from recist_tool.recist.model import (
    NODE_NORMAL_MM,
    Category,
    Lesion,
    LesionAssessment,
    LesionState,
    NewLesionStatus,
    Response,
    Timepoint,
    TimepointResponse,
)
from recist_tool.recist.policies import Policies

__all__ = [
    "TOO_SMALL_DEFAULT_MM",
    "lesion_value",
    "sum_of_diameters",
    "target_response",
    "non_target_response",
    "new_lesion_status",
    "overall_response",
    "evaluate_timepoints",
    "pct_change",
]

TOO_SMALL_DEFAULT_MM = Decimal(5)
_ZERO = Decimal(0)
_PRESENT_STATES = (LesionState.PRESENT, LesionState.UNEQUIVOCAL_PROGRESSION, LesionState.INCREASED,
                   LesionState.TOO_SMALL)


def lesion_value(lesion: Lesion, a: LesionAssessment | None) -> Decimal | None:
    """The diameter a target contributes to the sum, or None when it was not assessed.

    Too small to measure → 5 mm unless a smaller value was measured; absent → 0; a coalesced lesion
    → 0 (the merged diameter is carried by the lesion it merged into); a split lesion → the sum of
    its fragments; lymph nodes keep their real short axis.
    """
    if a is None:
        return None
    s = a.state
    if s is LesionState.MEASURED:
        return a.diameter_mm
    if s is LesionState.TOO_SMALL:
        if a.diameter_mm is not None and a.diameter_mm < TOO_SMALL_DEFAULT_MM:
            return a.diameter_mm
        return TOO_SMALL_DEFAULT_MM
    if s in (LesionState.ABSENT, LesionState.MERGED):
        return _ZERO
    if s is LesionState.SPLIT:
        if a.fragments_mm:
            return sum(a.fragments_mm, _ZERO)
        return a.diameter_mm
    return None


@dataclass(frozen=True)
class SumOfDiameters:
    """Sum of the target diameters at one timepoint: ``total`` (mm), ``complete`` (no target
    unassessed), the ``missing`` lesion ids and each target's contributing ``values``."""

    total: Decimal
    complete: bool
    missing: tuple[str, ...]
    values: tuple[tuple[Lesion, Decimal], ...]


def sum_of_diameters(targets: Sequence[Lesion], tp: Timepoint) -> SumOfDiameters:
    """SOD of the targets at ``tp``: LD of non-nodal + SA of nodal targets (exact)."""
    total = _ZERO
    missing: list[str] = []
    values: list[tuple[Lesion, Decimal]] = []
    for les in targets:
        v = lesion_value(les, tp.get(les.lesion_id))
        if v is None:
            missing.append(les.lesion_id)
        else:
            if v < 0:
                raise RuleViolation(
                    f"{tp.visit}: target {les.lesion_id} has a negative diameter {v}")
            total += v
            values.append((les, v))
    return SumOfDiameters(total, not missing, tuple(missing), tuple(values))


def pct_change(value: Decimal, ref: Decimal | None) -> Decimal | None:
    """Percent change from ``ref`` rounded to 0.01 (reporting only; never used at thresholds)."""
    if ref is None or ref == 0:
        return None
    return ((value - ref) * 100 / ref).quantize(Decimal("0.01"))


#: RECIST 1.1 (section 4.3.1) target thresholds, compared exactly as decimals: PR at a sum of
#: at most ``PR_FRACTION`` of the baseline sum (a 30 % decrease); PD at a sum of at least
#: ``PD_FRACTION`` of the nadir (20 % above it) that is also ``PD_ABS_MM`` or more above it.
PR_FRACTION = Decimal("0.7")
PD_FRACTION = Decimal("1.2")
PD_ABS_MM = Decimal(5)


def pr_threshold_mm(baseline_mm: Decimal) -> Decimal:
    """Largest sum that is PR against ``baseline_mm`` (exact).

    Examples
    --------
    >>> pr_threshold_mm(Decimal("14"))
    Decimal('9.8')
    """
    return baseline_mm * PR_FRACTION


def pd_threshold_mm(nadir_mm: Decimal) -> Decimal:
    """Smallest sum that is PD against ``nadir_mm``: the larger of the 20 % and the 5 mm rule.

    Examples
    --------
    >>> pd_threshold_mm(Decimal("30")), pd_threshold_mm(Decimal("21"))
    (Decimal('36.0'), Decimal('26'))
    """
    return max(nadir_mm * PD_FRACTION, nadir_mm + PD_ABS_MM)


def _is_pd(total: Decimal, nadir: Decimal) -> bool:
    return total >= pd_threshold_mm(nadir)


def _all_normal(values: Sequence[tuple[Lesion, Decimal]]) -> bool:
    return all((v < NODE_NORMAL_MM) if les.nodal else (v == 0) for les, v in values)


def target_response(
    s: SumOfDiameters, baseline: Decimal, nadir: Decimal, policies: Policies,
    previous: Response | None = None,
) -> tuple[Response, list[str]]:
    """Target response for a sum ``s`` given the baseline sum and the nadir.

    Returns the response and the reasons (words and numbers).
    """
    reasons: list[str] = []
    if _is_pd(s.total, nadir):
        if s.complete and _all_normal(s.values) and policies.nodes_only_growth == "cr":
            reasons.append(f"sum {s.total} mm is ≥120 % and ≥5 mm above nadir {nadir} mm, but only "
                           "normal-size nodes (<10 mm) remain: CR (policy nodes_only_growth=cr)")
            return Response.CR, reasons
        part = "" if s.complete else f" (already with {', '.join(s.missing)} not assessed)"
        reasons.append(f"sum {s.total} mm ≥ 120 % of nadir {nadir} mm and +{s.total - nadir} mm "
                       f"≥ 5 mm: PD{part}")
        return Response.PD, reasons
    if not s.complete:
        reasons.append(f"target(s) {', '.join(s.missing)} not assessed and the measured sum "
                       f"{s.total} mm does not reach PD: NE")
        return Response.NE, reasons
    if _all_normal(s.values):
        reasons.append("all non-nodal targets 0 mm and every target node < 10 mm: CR")
        return Response.CR, reasons
    if s.total <= pr_threshold_mm(baseline):
        reasons.append(f"sum {s.total} mm ≤ 70 % of baseline {baseline} mm: PR")
        return Response.PR, reasons
    if policies.pr_mode == "sticky" and previous in (Response.PR, Response.CR):
        reasons.append(f"sum {s.total} mm > 70 % of baseline {baseline} mm but PR is kept until PD "
                       "(policy pr_mode=sticky)")
        return Response.PR, reasons
    reasons.append(f"sum {s.total} mm neither ≤ 70 % of baseline {baseline} mm nor PD vs nadir "
                   f"{nadir} mm: SD")
    return Response.SD, reasons


def non_target_response(non_targets: Sequence[Lesion], tp: Timepoint) -> tuple[Response, list[str]]:
    """Non-target response: PD (unequivocal progression), NE, CR (all gone) or NON-CR/NON-PD."""
    prog, missing, present = [], [], []
    for les in non_targets:
        a = tp.get(les.lesion_id)
        if a is None or a.state is LesionState.NOT_EVALUATED:
            missing.append(les.lesion_id)
        elif a.state is LesionState.UNEQUIVOCAL_PROGRESSION:
            prog.append(les.lesion_id)
        elif a.state in (LesionState.ABSENT, LesionState.MERGED):
            continue
        elif a.state is LesionState.MEASURED and a.diameter_mm is not None and (
            a.diameter_mm == 0 or (les.nodal and a.diameter_mm < NODE_NORMAL_MM)
        ):
            continue
        else:
            present.append(les.lesion_id)
    if prog:
        return Response.PD, [f"unequivocal progression of non-target {', '.join(prog)}: PD"]
    if missing:
        return Response.NE, [f"non-target {', '.join(missing)} not assessed: NE"]
    if present:
        return Response.NON_CR_NON_PD, [f"non-target {', '.join(present)} present: NON-CR/NON-PD"]
    return Response.CR, ["all non-target lesions gone (nodes < 10 mm): CR"]


def new_lesion_status(new_lesions: Sequence[Lesion], tp: Timepoint) -> tuple[NewLesionStatus,
                                                                             list[str], list[str]]:
    """New-lesion finding at ``tp``: (status, unequivocal ids, equivocal ids)."""
    uneq, eq = [], []
    for les in new_lesions:
        a = tp.get(les.lesion_id)
        if a is None:
            continue
        if a.state is LesionState.EQUIVOCAL:
            eq.append(les.lesion_id)
        elif a.state in _PRESENT_STATES or a.state is LesionState.SPLIT or (
            a.state is LesionState.MEASURED and a.diameter_mm is not None and a.diameter_mm > 0
        ):
            uneq.append(les.lesion_id)
    if uneq:
        return NewLesionStatus.UNEQUIVOCAL, uneq, eq
    if eq:
        return NewLesionStatus.EQUIVOCAL, uneq, eq
    return NewLesionStatus.NONE, uneq, eq


def overall_response(
    target: Response | None, non_target: Response | None, new: NewLesionStatus | bool
) -> Response:
    """RECIST 1.1 overall response: Table 1 (target disease) or Table 2 (non-target only).

    ``target`` / ``non_target`` are None where there is no such disease at baseline; an equivocal
    new lesion does not count as new (``new`` is True only for an unequivocal one).
    """
    is_new = new is True or new is NewLesionStatus.UNEQUIVOCAL
    if target is not None:
        if target is Response.PD or non_target is Response.PD or is_new:
            return Response.PD
        if target is Response.NE:
            return Response.NE
        if target is Response.CR:
            return Response.CR if non_target in (None, Response.CR) else Response.PR
        if target in (Response.PR, Response.SD):
            return target
        raise RuleViolation(f"target response {target.value} is not a RECIST 1.1 target response")
    if non_target is not None:
        if non_target is Response.PD or is_new:
            return Response.PD
        if non_target in (Response.CR, Response.NE, Response.NON_CR_NON_PD):
            return non_target
        raise RuleViolation(f"non-target response {non_target.value} is not a RECIST 1.1 value")
    return Response.PD if is_new else Response.NE


def evaluate_timepoints(
    lesions: Sequence[Lesion], timepoints: Sequence[Timepoint], policies: Policies | None = None
) -> tuple[TimepointResponse, ...]:
    """Response at every follow-up timepoint.

    Parameters
    ----------
    lesions : sequence of Lesion
        All lesions of the subject (targets and non-targets from baseline, new lesions later).
    timepoints : sequence of Timepoint
        Baseline first, then follow-ups in date order.
    policies : Policies, optional
        Rule choices (defaults: :class:`Policies`).

    Returns
    -------
    tuple of TimepointResponse
        One per follow-up timepoint (the baseline gets none).
    """
    policies = policies or Policies()
    if not timepoints:
        return ()
    targets = [les for les in lesions if les.category is Category.TARGET]
    non_targets = [les for les in lesions if les.category is Category.NON_TARGET]
    new_lesions = [les for les in lesions if les.category.is_new]
    base_tp = timepoints[0]
    base = sum_of_diameters(targets, base_tp)
    if targets and not base.complete:
        raise RuleViolation(f"baseline {base_tp.visit}: target(s) {', '.join(base.missing)} "
                            "not measured")
    baseline = base.total
    nadir = baseline
    prev_target: Response | None = None
    history: list[tuple[_dt.date, Response]] = []
    first_equivocal: dict[str, _dt.date] = {}
    out: list[TimepointResponse] = []
    for tp in timepoints[1:]:
        reasons: list[str] = []
        tr: Response | None = None
        s: SumOfDiameters | None = None
        nadir_used = nadir
        if targets:
            s = sum_of_diameters(targets, tp)
            pb, pn = pct_change(s.total, baseline), pct_change(s.total, nadir)
            reasons.append(
                f"sum {s.total} mm{'' if s.complete else ' (incomplete)'}; baseline {baseline} mm"
                f"{f' ({pb:+} %)' if pb is not None else ''}; nadir {nadir} mm"
                f"{f' ({pn:+} %)' if pn is not None else ''}")
            tr, why = target_response(s, baseline, nadir, policies, prev_target)
            reasons += why
        ntr: Response | None = None
        if non_targets:
            ntr, why = non_target_response(non_targets, tp)
            reasons += why
        nl, uneq, eq = new_lesion_status(new_lesions, tp)
        backdate: _dt.date | None = None
        for lid in eq:
            first_equivocal.setdefault(lid, tp.date)
        if uneq:
            reasons.append(f"unequivocal new lesion(s) {', '.join(uneq)}: PD")
            earlier = [first_equivocal[lid] for lid in uneq if lid in first_equivocal]
            if earlier and policies.backdate_equivocal_pd:
                backdate = min(earlier)
                reasons.append(f"new lesion first seen equivocal on {backdate.isoformat()}: PD "
                               "dated back (policy backdate_equivocal_pd)")
        elif eq:
            reasons.append(f"equivocal new lesion(s) {', '.join(eq)}: not PD unless confirmed")
        overall = overall_response(tr, ntr, nl)
        # reappearance of disease after CR
        if overall not in (Response.PD, Response.NE, Response.CR) and \
                policies.reappearance_after_cr != "arithmetic":
            cr_kind = _cr_status(history, policies)
            if cr_kind == "confirmed" or (
                    cr_kind == "any" and policies.reappearance_after_cr == "after_any_cr"):
                back_t = [les.lesion_id for les, v in (s.values if s is not None else ())
                          if (les.nodal and v >= NODE_NORMAL_MM) or (not les.nodal and v > 0)]
                back_nt = ntr is Response.NON_CR_NON_PD
                if back_t:
                    tr = Response.PD
                if back_nt:
                    ntr = Response.PD
                if back_t or back_nt:
                    overall = Response.PD
                    what = ", ".join(back_t + (["non-target disease"] if back_nt else []))
                    reasons.append(f"{what} reappeared after a "
                                   f"{'confirmed ' if cr_kind == 'confirmed' else ''}CR: PD "
                                   "(policy reappearance_after_cr="
                                   f"{policies.reappearance_after_cr})")
        reasons.append(f"overall {overall.value}")
        if s is not None and s.complete and tr is not None:
            nadir = min(nadir, s.total)
        elif s is not None and not s.complete and not policies.nadir_complete_only and s.values:
            nadir = min(nadir, s.total)
        if tr is not None and tr is not Response.NE:
            prev_target = tr
        history.append((tp.date, overall))
        out.append(TimepointResponse(
            visit=tp.visit, date=tp.date, target=tr, non_target=ntr, new_lesions=nl,
            overall=overall,
            sod_mm=s.total if s is not None else None,
            sod_complete=s.complete if s is not None else True,
            baseline_mm=baseline if targets else None,
            nadir_mm=nadir_used if targets else None,
            pct_from_baseline=pct_change(s.total, baseline) if s is not None else None,
            pct_from_nadir=pct_change(s.total, nadir_used) if s is not None else None,
            pd_backdated_to=backdate,
            reasons=tuple(reasons), visit_num=tp.visit_num, date_text=tp.date_text,
        ))
    return tuple(out)


def _cr_status(history: Sequence[tuple[_dt.date, Response]], policies: Policies) -> str | None:
    """``confirmed`` / ``any`` when the subject is in CR (latest non-NE response is CR), else None.

    A CR is confirmed when a second CR lies ≥ ``confirm_interval_days`` after the first CR of the
    current run of CRs, with at most ``confirm_max_ne`` NE between.
    """
    run: list[tuple[_dt.date, Response]] = []
    for d, r in reversed(history):
        if r is Response.NE:
            run.append((d, r))
            continue
        if r is Response.CR:
            run.append((d, r))
            continue
        break
    run.reverse()
    crs = [d for d, r in run if r is Response.CR]
    if not crs:
        return None
    first = crs[0]
    start = next(i for i, (d, r) in enumerate(run) if r is Response.CR)
    n_ne = 0
    for d, r in run[start + 1:]:
        if r is Response.NE:
            n_ne += 1
            if n_ne > policies.confirm_max_ne:
                break
        elif (d - first).days >= policies.confirm_interval_days:
            return "confirmed"
    return "any"
