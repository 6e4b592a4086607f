"""recist.evaluate / recist.best: one call for either criteria, the engine of that criteria behind."""

from __future__ import annotations

import datetime as dt

import pytest
from recist_helpers import D0, les, tp

from recist_tool.recist import Criteria, Policies, Response, best, evaluate
from recist_tool.recist.best import Assessment, best_response
from recist_tool.recist.irecist import best_irecist, evaluate_irecist
from recist_tool.recist.timepoint import evaluate_timepoints

LESIONS = [les("T01"), les("T02", organ="LUNG"), les("NLT01")]
# PR, then PD by a new lesion (iUPD), then the new lesion grows by 5 mm (iCPD under iRECIST)
TIMEPOINTS = [tp(0, T01=30, T02=20), tp(56, T01=20, T02=10), tp(112, T01=20, T02=10, NLT01=12),
              tp(168, T01=20, T02=10, NLT01=17)]


def test_criteria_values_and_command_line_keys() -> None:
    assert [c.value for c in Criteria] == ["RECIST 1.1", "iRECIST"]
    assert [c.key for c in Criteria] == ["recist1.1", "irecist"]
    assert Criteria("iRECIST") == "iRECIST"  # stored text compares equal


def test_evaluate_runs_the_engine_of_the_criteria() -> None:
    r = evaluate("RECIST 1.1", LESIONS, TIMEPOINTS)
    assert r.recist == evaluate_timepoints(LESIONS, TIMEPOINTS)
    assert r.overall == tuple(t.overall for t in r.recist) == (Response.PR, Response.PD,
                                                               Response.PD)
    assert r.irecist == () and r.timepoints == r.recist
    i = evaluate(Criteria.IRECIST, LESIONS, TIMEPOINTS)
    its = evaluate_irecist(LESIONS, TIMEPOINTS)
    assert i.irecist == its and i.timepoints == its
    assert i.recist == tuple(t.recist for t in its)
    assert i.overall == (Response.IPR, Response.IUPD, Response.ICPD)


def test_best_runs_the_best_response_of_the_criteria() -> None:
    r = evaluate(Criteria.RECIST_1_1, LESIONS, TIMEPOINTS)
    assert best("RECIST 1.1", r.timepoints, D0) == best_response(r.recist, D0)
    i = evaluate(Criteria.IRECIST, LESIONS, TIMEPOINTS)
    assert best("iRECIST", i.timepoints, D0) == best_irecist(i.irecist, D0)
    pairs = [(t.date, o) for t, o in zip(i.recist, i.overall, strict=True)]
    assert best("iRECIST", pairs, D0) == best_irecist(i.irecist, D0)


def test_new_therapy_drops_later_assessments_under_both_criteria() -> None:
    d = [D0 + dt.timedelta(days=n) for n in (56, 112, 168)]
    seq = [Assessment(d[0], Response.IPR), Assessment(d[1], Response.IUPD),
           Assessment(d[2], Response.ICPD)]
    got = best("iRECIST", seq, D0, Policies(), new_therapy_date=d[1])
    assert got == best_irecist([(d[0], Response.IPR)], D0, Policies())
    rec = [Assessment(d[0], Response.PR), Assessment(d[1], Response.PD)]
    assert best("RECIST 1.1", rec, D0, new_therapy_date=d[1]) == \
        best_response(rec, D0, new_therapy_date=d[1])
    assert best("RECIST 1.1", rec, D0, new_therapy_date=d[1]).bor is Response.PR


def test_other_criteria_or_the_other_criteria_s_timepoints_are_refused() -> None:
    with pytest.raises(ValueError):
        evaluate("RECIST 1.0", LESIONS, TIMEPOINTS)
    with pytest.raises(TypeError, match="iRECIST timepoints"):
        best("RECIST 1.1", evaluate("iRECIST", LESIONS, TIMEPOINTS).timepoints, D0)
    with pytest.raises(TypeError, match="not RECIST 1.1 responses"):
        best("iRECIST", evaluate("RECIST 1.1", LESIONS, TIMEPOINTS).timepoints, D0)
