"""Timepoint response: exact thresholds, lesion states, Table 1 / Table 2 and the open policies."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from recist_helpers import D0, S, les, tp

from recist_tool.recist import Policies, Response, best_response, evaluate_timepoints
from recist_tool.recist.model import LesionAssessment, NewLesionStatus
from recist_tool.recist.timepoint import lesion_value, overall_response

R = Response


def _one(base: str, follow: str, nadir_visit: str | None = None) -> Response:
    lesions = [les("T01")]
    tps = [tp(0, T01=base)]
    if nadir_visit is not None:
        tps.append(tp(28, T01=nadir_visit))
    tps.append(tp(56, T01=follow))
    return evaluate_timepoints(lesions, tps)[-1].target


@pytest.mark.parametrize(("base", "follow", "expected"), [
    ("14", "9.8", R.PR),      # exactly -30 %
    ("14", "9.81", R.SD),
    ("33.3", "23.31", R.PR),  # 0.7 × 33.3 = 23.31 exactly (a float product reads 23.309999…)
    ("33.3", "23.32", R.SD),
    ("21", "25.2", R.SD),     # exactly +20 % but only +4.2 mm: not PD
    ("30", "36", R.PD),       # exactly +20 % and +6 mm
    ("30", "35.99", R.SD),
    ("25", "30", R.PD),       # +20 % and exactly +5 mm
    ("40", "45", R.SD),       # exactly +5 mm but +12.5 %
])
def test_exact_thresholds(base: str, follow: str, expected: Response) -> None:
    assert _one(base, follow) is expected


def test_pd_measured_from_nadir_not_baseline() -> None:
    assert _one("50", "30", nadir_visit="25") is R.PD  # +20 % and +5 over nadir 25
    assert _one("50", "29.9", nadir_visit="25") is R.PR  # still ≤ 70 % of baseline


def test_lesion_states_contribute_to_the_sum() -> None:
    lo, nd = les("T01"), les("T02", "LYMPH NODE", nodal=True)
    assert lesion_value(lo, LesionAssessment("T01", S.TOO_SMALL)) == 5
    assert lesion_value(lo, LesionAssessment("T01", S.TOO_SMALL, Decimal("3.2"))) == Decimal("3.2")
    assert lesion_value(lo, LesionAssessment("T01", S.TOO_SMALL, Decimal("7"))) == 5
    assert lesion_value(lo, LesionAssessment("T01", S.ABSENT)) == 0
    assert lesion_value(lo, LesionAssessment("T01", S.MERGED)) == 0
    assert lesion_value(lo, LesionAssessment("T01", S.SPLIT, fragments_mm=(
        Decimal("4.5"), Decimal("6.25")))) == Decimal("10.75")
    assert lesion_value(nd, LesionAssessment("T02", S.MEASURED, Decimal("8"))) == 8
    assert lesion_value(lo, LesionAssessment("T01", S.NOT_EVALUATED)) is None
    assert lesion_value(lo, None) is None


def test_merged_lesions_carry_diameter_on_one() -> None:
    lesions = [les("T01"), les("T02", "LUNG")]
    out = evaluate_timepoints(lesions, [tp(0, T01=20, T02=20),
                                        tp(56, T01=30, T02=S.MERGED)])
    assert out[0].sod_mm == 30 and out[0].target is R.SD


def test_missing_target_is_ne_unless_measured_ones_already_pd() -> None:
    lesions = [les("T01"), les("T02", "LUNG")]
    base = tp(0, T01=20, T02=20)
    ne = evaluate_timepoints(lesions, [base, tp(56, T01=25)])[0]
    assert ne.target is R.NE and ne.overall is R.NE and not ne.sod_complete
    pd = evaluate_timepoints(lesions, [base, tp(56, T01=48)])[0]
    assert pd.target is R.PD and pd.overall is R.PD
    nd = evaluate_timepoints(lesions, [base, tp(56, T01=25, T02=S.NOT_EVALUATED)])[0]
    assert nd.target is R.NE


def test_incomplete_sum_never_becomes_nadir_unless_policy_off() -> None:
    lesions = [les("T01"), les("T02", "LUNG")]
    seq = [tp(0, T01=20, T02=20), tp(28, T01=10), tp(56, T01=20, T02=16)]
    strict = evaluate_timepoints(lesions, seq)
    assert strict[1].nadir_mm == 40 and strict[1].target is R.SD
    loose = evaluate_timepoints(lesions, seq, Policies(nadir_complete_only=False))
    assert loose[1].nadir_mm == 10 and loose[1].target is R.PD


def test_cr_needs_nodes_below_10() -> None:
    lesions = [les("T01"), les("T02", "LYMPH NODE", nodal=True)]
    base = tp(0, T01=20, T02=20)
    assert evaluate_timepoints(lesions, [base, tp(56, T01=0, T02="9.9")])[0].target is R.CR
    assert evaluate_timepoints(lesions, [base, tp(56, T01=0, T02=10)])[0].target is R.PR


def test_nodes_only_growth_policy() -> None:
    lesions = [les("T01"), les("T02", "LYMPH NODE", nodal=True),
               les("T03", "LYMPH NODE", nodal=True)]
    seq = [tp(0, T01=20, T02=20, T03=20), tp(56, T01=0, T02=3, T03=3),
           tp(112, T01=0, T02=9, T03=9)]  # 6 → 18 mm: +200 %, +12 mm, yet all nodes normal
    assert evaluate_timepoints(lesions, seq)[-1].target is R.CR
    assert evaluate_timepoints(lesions, seq, Policies(nodes_only_growth="pd"))[-1].target is R.PD


def test_sticky_pr_policy() -> None:
    lesions = [les("T01")]
    seq = [tp(0, T01=100), tp(56, T01=60), tp(112, T01=71)]
    assert [t.target for t in evaluate_timepoints(lesions, seq)] == [R.PR, R.SD]
    sticky = evaluate_timepoints(lesions, seq, Policies(pr_mode="sticky"))
    assert [t.target for t in sticky] == [R.PR, R.PR]
    assert "pr_mode=sticky" in " ".join(sticky[1].reasons)
    seq.append(tp(168, T01=72))  # 72 vs nadir 60: +20 % and +12 mm
    assert evaluate_timepoints(lesions, seq, Policies(pr_mode="sticky"))[-1].target is R.PD


def test_reappearance_after_cr_policies() -> None:
    lesions = [les("T01")]
    confirmed = [tp(0, T01=20), tp(56, T01=0), tp(112, T01=0), tp(168, T01=3)]
    single = [tp(0, T01=20), tp(56, T01=0), tp(112, T01=3)]
    assert evaluate_timepoints(lesions, confirmed)[-1].overall is R.PD  # default: confirmed CR
    assert evaluate_timepoints(lesions, single)[-1].overall is R.PR
    arith = Policies(reappearance_after_cr="arithmetic")
    assert evaluate_timepoints(lesions, confirmed, arith)[-1].overall is R.PR
    anycr = Policies(reappearance_after_cr="after_any_cr")
    assert evaluate_timepoints(lesions, single, anycr)[-1].overall is R.PD
    # CR then CR only 27 days later is not a confirmed CR
    early = [tp(0, T01=20), tp(56, T01=0), tp(83, T01=0), tp(140, T01=3)]
    assert evaluate_timepoints(lesions, early)[-1].overall is R.PR


def test_non_target_reappearance_after_confirmed_cr() -> None:
    lesions = [les("NT01")]
    seq = [tp(0, NT01=S.PRESENT), tp(56, NT01=S.ABSENT), tp(112, NT01=S.ABSENT),
           tp(168, NT01=S.PRESENT)]
    out = evaluate_timepoints(lesions, seq)
    assert [t.overall for t in out] == [R.CR, R.CR, R.PD]
    assert out[-1].non_target is R.PD


def test_equivocal_new_lesion_backdates_pd() -> None:
    lesions = [les("T01"), les("NL01")]
    seq = [tp(0, T01=30), tp(56, T01=30, NL01=S.EQUIVOCAL), tp(112, T01=30, NL01=S.PRESENT)]
    out = evaluate_timepoints(lesions, seq)
    assert out[0].overall is R.SD and out[0].new_lesions is NewLesionStatus.EQUIVOCAL
    assert out[1].overall is R.PD and out[1].pd_backdated_to == seq[1].date
    assert best_response(out, D0).pd_date == seq[1].date
    off = Policies(backdate_equivocal_pd=False)
    assert best_response(evaluate_timepoints(lesions, seq, off), D0, off).pd_date == seq[2].date


def test_equivocal_that_disappears_is_not_pd() -> None:
    lesions = [les("T01"), les("NL01")]
    seq = [tp(0, T01=30), tp(56, T01=30, NL01=S.EQUIVOCAL), tp(112, T01=30, NL01=S.ABSENT)]
    assert [t.overall for t in evaluate_timepoints(lesions, seq)] == [R.SD, R.SD]


TABLE1 = [  # RECIST 1.1 Table 1: target, non-target, new → overall
    (R.CR, R.CR, False, R.CR), (R.CR, R.NON_CR_NON_PD, False, R.PR), (R.CR, R.NE, False, R.PR),
    (R.PR, R.NON_CR_NON_PD, False, R.PR), (R.PR, R.NE, False, R.PR), (R.PR, R.CR, False, R.PR),
    (R.SD, R.NON_CR_NON_PD, False, R.SD), (R.SD, R.NE, False, R.SD), (R.SD, R.CR, False, R.SD),
    (R.NE, R.NON_CR_NON_PD, False, R.NE), (R.NE, R.CR, False, R.NE), (R.NE, R.NE, False, R.NE),
    (R.PD, R.CR, False, R.PD), (R.PD, R.NE, False, R.PD), (R.CR, R.PD, False, R.PD),
    (R.SD, R.PD, False, R.PD), (R.CR, R.CR, True, R.PD), (R.PR, R.NE, True, R.PD),
    (R.CR, None, False, R.CR), (R.PR, None, False, R.PR), (R.NE, None, True, R.PD),
]
TABLE2 = [  # RECIST 1.1 Table 2: non-target only
    (R.CR, False, R.CR), (R.NON_CR_NON_PD, False, R.NON_CR_NON_PD), (R.NE, False, R.NE),
    (R.PD, False, R.PD), (R.CR, True, R.PD), (R.NON_CR_NON_PD, True, R.PD), (R.NE, True, R.PD),
]


@pytest.mark.parametrize(("t", "nt", "new", "expected"), TABLE1)
def test_table1(t, nt, new, expected) -> None:
    assert overall_response(t, nt, new) is expected
    if not new:  # an equivocal new lesion does not count
        assert overall_response(t, nt, NewLesionStatus.EQUIVOCAL) is expected


@pytest.mark.parametrize(("nt", "new", "expected"), TABLE2)
def test_table2(nt, new, expected) -> None:
    assert overall_response(None, nt, new) is expected


def test_reasons_carry_numbers() -> None:
    out = evaluate_timepoints([les("T01")], [tp(0, T01=14), tp(56, T01="9.8")])[0]
    text = " ".join(out.reasons)
    assert "9.8 mm ≤ 70 % of baseline 14 mm: PR" in text
    assert "sum 9.8 mm; baseline 14 mm (-30.00 %); nadir 14 mm (-30.00 %)" in text
    assert out.pct_from_baseline == Decimal("-30.00") and out.baseline_mm == 14


def test_baseline_date_and_sd_from_timepoints() -> None:
    out = evaluate_timepoints([les("T01")], [tp(0, T01=14), tp(41, T01=14), tp(42, T01=14)])
    b = best_response(out, D0, Policies(sd_min_days=42))
    assert b.bor is R.SD and b.bor_date == D0 + dt.timedelta(days=42)
