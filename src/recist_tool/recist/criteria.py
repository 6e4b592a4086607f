"""One entry point per step for either criteria: :func:`evaluate` (timepoint responses) and
:func:`best` (best overall response), so that callers name the :class:`Criteria` instead of
choosing between the RECIST 1.1 and the iRECIST engine themselves.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from recist_tool.recist.best import Assessment, best_response
from recist_tool.recist.irecist import IRecistTimepoint, best_irecist, evaluate_irecist
from recist_tool.recist.model import (
    BestResponse,
    Criteria,
    Lesion,
    Response,
    Timepoint,
    TimepointResponse,
)
from recist_tool.recist.policies import Policies
from recist_tool.recist.timepoint import evaluate_timepoints

__all__ = ["Evaluation", "evaluate", "best"]


@dataclass(frozen=True)
class Evaluation:
    """One subject's follow-up timepoints scored under one criteria.

    Attributes
    ----------
    criteria : Criteria
    recist : tuple of TimepointResponse
        The RECIST 1.1 responses (categories, sums, reasons) — under iRECIST those it builds on.
    overall : tuple of Response
        The overall response of each timepoint under ``criteria``.
    irecist : tuple of IRecistTimepoint
        Under iRECIST, its timepoints (empty under RECIST 1.1).
    """

    criteria: Criteria
    recist: tuple[TimepointResponse, ...]
    overall: tuple[Response, ...]
    irecist: tuple[IRecistTimepoint, ...] = ()

    @property
    def timepoints(self) -> tuple[TimepointResponse, ...] | tuple[IRecistTimepoint, ...]:
        """What :func:`best` reads: the iRECIST timepoints, or the RECIST 1.1 responses."""
        return self.irecist if self.criteria is Criteria.IRECIST else self.recist


def evaluate(criteria: Criteria | str, lesions: Sequence[Lesion], timepoints: Sequence[Timepoint],
             policies: Policies | None = None, *, strict: bool = True) -> Evaluation:
    """Response at every follow-up timepoint under ``criteria``.

    Parameters
    ----------
    criteria : Criteria or str
        ``RECIST 1.1`` or ``iRECIST``.
    lesions, timepoints, policies
        As for :func:`~recist_tool.recist.timepoint.evaluate_timepoints`.
    strict : bool
        iRECIST only: refuse new-lesion targets over the limits (see
        :func:`~recist_tool.recist.irecist.evaluate_irecist`).

    Returns
    -------
    Evaluation

    Raises
    ------
    ValueError
        Unknown criteria.
    RuleViolation
        As the engine of the criteria raises.
    """
    crit = Criteria(criteria)
    if crit is Criteria.IRECIST:
        its = evaluate_irecist(lesions, timepoints, policies, strict=strict)
        return Evaluation(crit, tuple(t.recist for t in its), tuple(t.overall for t in its), its)
    trs = evaluate_timepoints(lesions, timepoints, policies)
    return Evaluation(crit, trs, tuple(t.overall for t in trs))


def _date(item: Any) -> _dt.date:
    return item[0] if isinstance(item, tuple) else item.date


def best(criteria: Criteria | str,
         assessments: Iterable[Assessment | TimepointResponse | IRecistTimepoint
                               | tuple[_dt.date, Response | str]],
         reference_date: _dt.date | None, policies: Policies | None = None, *,
         new_therapy_date: _dt.date | None = None) -> BestResponse:
    """Best overall response under ``criteria``.

    Parameters
    ----------
    criteria : Criteria or str
        ``RECIST 1.1`` or ``iRECIST``.
    assessments : iterable
        The follow-up overall responses: ``(date, response)`` pairs, :class:`Assessment`, or
        what :func:`evaluate` gave (:attr:`Evaluation.timepoints`).
    reference_date : date or None
        Start of the SD minimum-duration window.
    policies : Policies, optional
        Rule choices.
    new_therapy_date : date, optional
        Assessments on or after it are ignored.

    Returns
    -------
    BestResponse

    Raises
    ------
    ValueError
        Unknown criteria.
    TypeError
        Timepoints of the other criteria (iRECIST timepoints under RECIST 1.1, RECIST 1.1
        responses under iRECIST).
    """
    crit = Criteria(criteria)
    if crit is Criteria.RECIST_1_1:
        seq = list(assessments)
        if any(isinstance(a, IRecistTimepoint) for a in seq):
            raise TypeError("RECIST 1.1's best response reads RECIST 1.1 responses, not iRECIST "
                            "timepoints")
        return best_response(seq, reference_date, policies,  # type: ignore[arg-type]
                             new_therapy_date=new_therapy_date)
    items: list[IRecistTimepoint | tuple[_dt.date, Response | str]] = []
    for a in assessments:
        if new_therapy_date is not None and _date(a) >= new_therapy_date:
            continue
        if isinstance(a, TimepointResponse):
            raise TypeError("iRECIST's best response reads iRECIST timepoints or (date, response) "
                            "pairs, not RECIST 1.1 responses")
        items.append((a.date, a.response) if isinstance(a, Assessment) else a)
    return best_irecist(items, reference_date, policies)
