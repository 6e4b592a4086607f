"""Best overall response (BOR) with and without confirmation, response flags and dates.

The rules follow RECIST 1.1 (Table 3 for confirmation) as parameterised by :class:`Policies`; with
the same parameters they reproduce the pharmaverse ``admiralonco`` derivations exactly:

* Assessments up to and including the first PD (``truncate_at_pd``) and before new therapy.
* Unconfirmed BOR: CR > PR > SD > NON-CR/NON-PD > PD > NE > ND > MISSING, where SD and
  NON-CR/NON-PD count only ≥ ``sd_min_days`` after the reference date (else they count as NE).
  The date is that of the first assessment giving the BOR.
* Confirmed BOR: a CR is confirmed by the first later CR ≥ ``confirm_interval_days`` after it with
  only CR/NE between (≤ ``confirm_max_ne`` NE); a PR by the first later CR/PR ≥ the interval with
  only CR/PR/NE (and, with ``confirm_accept_sd``, one SD) between and no PR after a CR. An
  unconfirmed CR/PR counts as SD when it satisfies the SD window, else as NE.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import cast

from recist_tool.errors import RuleViolation
from recist_tool.recist.model import BestResponse, Response, TimepointResponse
from recist_tool.recist.policies import Policies

__all__ = ["Assessment", "best_response", "merge_same_day", "confirmed_indices"]

#: goodness order used to pick the worst of several responses on one date (higher = worse)
_WORST_RANK = {
    Response.CR: 0, Response.PR: 1, Response.SD: 2, Response.NON_CR_NON_PD: 3,
    Response.ND: 4, Response.NE: 5, Response.PD: 6,
}


@dataclass(frozen=True)
class Assessment:
    """One overall timepoint response on a date (the input of best response)."""

    date: _dt.date
    response: Response
    pd_date: _dt.date | None = None  #: PD back-dated (equivocal new lesion confirmed later)


def _as_assessments(items: Iterable[Assessment | TimepointResponse | tuple]) -> list[Assessment]:
    out: list[Assessment] = []
    for it in items:
        if isinstance(it, Assessment):
            out.append(it)
        elif isinstance(it, TimepointResponse):
            out.append(Assessment(it.date, it.overall, it.pd_backdated_to))
        else:
            d, r = it
            out.append(Assessment(d, Response(r)))
    return out


def merge_same_day(items: Sequence[Assessment], policies: Policies) -> list[Assessment]:
    """Sort by date and keep one response per date according to ``policies.same_day``."""
    by_date: dict[_dt.date, Assessment] = {}
    for a in items:  # stable: 'last' keeps the last given
        old = by_date.get(a.date)
        if old is None:
            by_date[a.date] = a
        elif policies.same_day == "error":
            if old.response is not a.response:
                raise RuleViolation(f"two different responses on {a.date.isoformat()}: "
                                    f"{old.response.value} and {a.response.value}")
        elif policies.same_day == "last":
            by_date[a.date] = a
        elif _WORST_RANK.get(a.response, 5) > _WORST_RANK.get(old.response, 5):
            by_date[a.date] = a
    return [by_date[d] for d in sorted(by_date)]


def confirmed_indices(seq: Sequence[Assessment], policies: Policies) -> set[int]:
    """Indices of the CR and PR assessments of ``seq`` (date order) that are confirmed."""
    out: set[int] = set()
    interval = policies.confirm_interval_days
    for i, a in enumerate(seq):
        ok_kinds: tuple[Response, ...]
        allowed: tuple[Response, ...]
        if a.response is Response.CR:
            ok_kinds = (Response.CR,)
            allowed = (Response.CR, Response.NE)
        elif a.response is Response.PR:
            ok_kinds = (Response.CR, Response.PR)
            allowed = (Response.CR, Response.PR, Response.NE, Response.SD)
        else:
            continue
        j = next((k for k in range(i + 1, len(seq))
                  if seq[k].response in ok_kinds and (seq[k].date - a.date).days >= interval), None)
        if j is None:
            continue
        window = seq[i + 1:j + 1]
        if any(w.response not in allowed for w in window):
            continue
        if sum(w.response is Response.NE for w in window) > policies.confirm_max_ne:
            continue
        max_sd = 1 if policies.confirm_accept_sd else 0
        if sum(w.response is Response.SD for w in window) > max_sd:
            continue
        if a.response is Response.PR:
            cr = [w.date for w in window if w.response is Response.CR]
            pr = [w.date for w in window if w.response is Response.PR]
            if cr and pr and min(cr) <= max(pr):
                continue
        out.add(i)
    return out


def _first(seq: Sequence[Assessment], cond) -> Assessment | None:
    return next((a for a in seq if cond(a)), None)


def best_response(
    assessments: Iterable[Assessment | TimepointResponse | tuple[_dt.date, Response | str]],
    reference_date: _dt.date | None,
    policies: Policies | None = None,
    *,
    source_pd_date: _dt.date | None = None,
    new_therapy_date: _dt.date | None = None,
) -> BestResponse:
    """Best overall response, confirmed best overall response and the derived flags.

    Parameters
    ----------
    assessments : iterable
        Overall timepoint responses: :class:`Assessment`, :class:`TimepointResponse` or
        ``(date, response)`` pairs, in any order.
    reference_date : date or None
        Start of the SD minimum-duration window (randomisation or treatment start, see
        ``policies.reference``). None: the SD window is not applied (noted in the reasons).
    policies : Policies, optional
        Rule choices.
    source_pd_date : date, optional
        Date of first PD from another source; with ``truncate_at_pd`` assessments after it are
        ignored. Default: the first PD among ``assessments``.
    new_therapy_date : date, optional
        Start of new anticancer therapy: assessments on or after it are ignored.

    Returns
    -------
    BestResponse
    """
    policies = policies or Policies()
    reasons: list[str] = []
    seq = merge_same_day(_as_assessments(assessments), policies)
    if new_therapy_date is not None:
        dropped = [a for a in seq if a.date >= new_therapy_date]
        seq = [a for a in seq if a.date < new_therapy_date]
        if dropped:
            reasons.append(f"{len(dropped)} assessment(s) on/after new therapy "
                           f"{new_therapy_date.isoformat()} ignored")
    full = list(seq)
    first_pd = _first(full, lambda a: a.response is Response.PD)
    pd_date = None
    if first_pd is not None:
        pd_date = first_pd.date
        if first_pd.pd_date is not None and policies.backdate_equivocal_pd:
            pd_date = min(pd_date, first_pd.pd_date)
    cut = source_pd_date if source_pd_date is not None else (first_pd.date if first_pd else None)
    if policies.truncate_at_pd and cut is not None:
        seq = [a for a in seq if a.date <= cut]

    if reference_date is None:
        reasons.append("no reference date: SD minimum duration not applied")

    def win(a: Assessment) -> bool:
        return reference_date is None or (a.date - reference_date).days >= policies.sd_min_days

    no_data = Response.NE if policies.missing_as_ne else Response.MISSING
    # --- unconfirmed BOR
    events = [
        (Response.CR, lambda a: a.response is Response.CR),
        (Response.PR, lambda a: a.response is Response.PR),
        (Response.SD, lambda a: a.response is Response.SD and win(a)),
        (Response.NON_CR_NON_PD, lambda a: a.response is Response.NON_CR_NON_PD and win(a)),
        (Response.PD, lambda a: a.response is Response.PD),
        (Response.NE, lambda a: a.response in (Response.NE, Response.SD, Response.NON_CR_NON_PD)),
        (Response.ND, lambda a: a.response is Response.ND),
    ]
    bor, bor_date = no_data, None
    for value, cond in events:
        hit = _first(seq, cond)
        if hit is not None:
            bor, bor_date = value, hit.date
            break
    # --- confirmed BOR
    conf = confirmed_indices(seq, policies)
    conf_set = {id(seq[i]) for i in conf}
    cevents = [
        (Response.CR, lambda a: a.response is Response.CR and id(a) in conf_set),
        (Response.PR, lambda a: a.response is Response.PR and id(a) in conf_set),
        (Response.SD, lambda a: a.response in (Response.CR, Response.PR, Response.SD) and win(a)),
        (Response.NON_CR_NON_PD, lambda a: a.response is Response.NON_CR_NON_PD and win(a)),
        (Response.PD, lambda a: a.response is Response.PD),
        (Response.NE, lambda a: a.response in (Response.CR, Response.PR, Response.SD,
                                               Response.NON_CR_NON_PD, Response.NE)),
        (Response.ND, lambda a: a.response is Response.ND),
    ]
    cbor, cbor_date = no_data, None
    for value, cond in cevents:
        hit = _first(seq, cond)
        if hit is not None:
            cbor, cbor_date = value, hit.date
            break
    # --- flags
    resp_hit = _first(seq, lambda a: a.response in (Response.CR, Response.PR))
    conf_hit = _first(seq, lambda a: id(a) in conf_set)
    benefit = _first(seq, lambda a: a.response in (Response.CR, Response.PR) or (
        a.response in (Response.SD, Response.NON_CR_NON_PD) and win(a)))
    cbenefit = _first(seq, lambda a: id(a) in conf_set or (
        a.response in (Response.CR, Response.PR, Response.SD, Response.NON_CR_NON_PD) and win(a)))
    start = conf_hit if policies.confirmation else resp_hit
    dor = None
    if start is not None and pd_date is not None and pd_date >= start.date:
        dor = (pd_date - start.date).days + 1
    last = full[-1] if full else None
    if cbor in (Response.CR, Response.PR):
        reasons.append(f"confirmed {cbor.value} on {cast(_dt.date, cbor_date).isoformat()}")
    return BestResponse(
        bor=bor, bor_date=bor_date, confirmed_bor=cbor, confirmed_bor_date=cbor_date,
        response=resp_hit is not None and bor in (Response.CR, Response.PR),
        response_date=resp_hit.date if resp_hit is not None else None,
        confirmed_response=conf_hit is not None,
        confirmed_response_date=conf_hit.date if conf_hit is not None else None,
        clinical_benefit=benefit is not None,
        clinical_benefit_date=benefit.date if benefit is not None else None,
        confirmed_clinical_benefit=cbenefit is not None,
        confirmed_clinical_benefit_date=cbenefit.date if cbenefit is not None else None,
        progression=pd_date is not None, pd_date=pd_date,
        duration_of_response_days=dor,
        last_response=last.response if last else None,
        last_assessment_date=last.date if last else None,
        reference_date=reference_date, reasons=tuple(reasons),
    )
