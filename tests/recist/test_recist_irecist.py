"""iRECIST: Seymour et al., Lancet Oncol 2017 — Table 3 iBOR scenarios and iUPD/iCPD rules."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from recist_helpers import D0, S, les, tp

from recist_tool.errors import RuleViolation
from recist_tool.recist import Policies, Response
from recist_tool.recist.irecist import best_irecist, evaluate_irecist

R = Response
ANY = [R.ICR, R.IPR, R.ISD, R.IUPD, R.ICPD, R.NE]
# Table 3 of the paper: five timepoint responses (each a set of alternatives) and the iBOR.
TABLE3 = {
    1: ([[R.ICR], [R.ICR, R.IPR, R.IUPD, R.NE], [R.ICR, R.IPR, R.IUPD, R.NE], [R.IUPD], [R.ICPD]],
        R.ICR),
    2: ([[R.IUPD], [R.IPR, R.ISD, R.NE], [R.ICR], [R.ICR, R.IUPD, R.NE],
         [R.ICR, R.IPR, R.ISD, R.IUPD, R.ICPD, R.NE]], R.ICR),
    3: ([[R.IUPD], [R.IPR], [R.IPR, R.ISD, R.IUPD, R.NE], [R.IPR, R.ISD, R.IUPD, R.NE, R.ICPD],
         [R.IPR, R.ISD, R.IUPD, R.NE, R.ICPD]], R.IPR),
    4: ([[R.IUPD], [R.ISD, R.NE], [R.IPR], [R.IPR, R.ISD, R.IUPD, R.NE],
         [R.IPR, R.ISD, R.IUPD, R.ICPD, R.NE]], R.IPR),
    5: ([[R.IUPD], [R.ISD], [R.ISD, R.IUPD, R.NE], [R.ISD, R.IUPD, R.ICPD, R.NE],
         [R.ISD, R.IUPD, R.ICPD, R.NE]], R.ISD),
    6: ([[R.IUPD], [R.ICPD], ANY, ANY, ANY], R.ICPD),
    7: ([[R.IUPD], [R.IUPD], [R.ICPD], ANY, ANY], R.ICPD),
    8: ([[R.IUPD], [R.NE], [R.NE], [R.NE], [R.NE]], R.IUPD),
}


@pytest.mark.parametrize("example", sorted(TABLE3))
def test_table3_ibor_every_listed_combination(example: int) -> None:
    """Timepoints every 8 weeks from randomisation (iSD window 42 days met); the table assumes no
    confirmation of iCR/iPR, i.e. the unconfirmed iBOR."""
    alternatives, expected = TABLE3[example]
    n = 0
    for combo in itertools.product(*alternatives):
        seq = [(D0 + dt.timedelta(weeks=8 * (i + 1)), r) for i, r in enumerate(combo)]
        best = best_irecist(seq, D0, Policies())
        assert best.bor is expected, (example, combo)
        n += 1
    assert n == len(list(itertools.product(*alternatives)))


def test_table3_example7_iupd_confirmed_dates_progression_back() -> None:
    seq = [(D0 + dt.timedelta(weeks=8 * k), r) for k, r in
           enumerate([R.IUPD, R.IUPD, R.ICPD], start=1)]
    best = best_irecist(seq, D0)
    assert best.pd_date == D0 + dt.timedelta(weeks=8)  # the first iUPD, now confirmed
    assert best.bor_date == D0 + dt.timedelta(weeks=8)


def test_ibor_isd_needs_minimum_duration() -> None:
    seq = [(D0 + dt.timedelta(days=21), R.IUPD), (D0 + dt.timedelta(days=41), R.ISD)]
    assert best_irecist(seq, D0, Policies(sd_min_days=42)).bor is R.IUPD
    seq[1] = (D0 + dt.timedelta(days=42), R.ISD)
    assert best_irecist(seq, D0, Policies(sd_min_days=42)).bor is R.ISD


LESIONS = [les("T01"), les("T02", "LUNG"), les("NT01", "BONE"), les("NLT01", "LIVER"),
           les("NLT02", "ADRENAL"), les("NLNT01", "PERITONEUM")]


def _run(*tps):
    return [t.overall for t in evaluate_irecist(LESIONS, list(tps))]


def test_target_growth_adds_up_to_icpd() -> None:
    base = tp(0, T01=30, T02=20, NT01=S.PRESENT)
    out = _run(base,
               tp(56, T01=20, T02=10, NT01=S.PRESENT),      # 30, nadir
               tp(112, T01=26, T02=14, NT01=S.PRESENT),     # 40 ≥ 36 and +10: iUPD
               tp(168, T01=28, T02=15, NT01=S.PRESENT),     # 43: +3 only, still PD: iUPD
               tp(224, T01=29, T02=16, NT01=S.PRESENT))     # 45: +5 since iUPD → iCPD
    assert out == [R.IPR, R.IUPD, R.IUPD, R.ICPD]


def test_target_plus_5_exactly_confirms_and_4_9_does_not() -> None:
    base = tp(0, T01=30, T02=20, NT01=S.PRESENT)
    up = tp(56, T01=40, T02=20, NT01=S.PRESENT)  # 60 vs 50: +20 % and +10 → iUPD
    assert _run(base, up, tp(112, T01=45, T02=20, NT01=S.PRESENT))[-1] is R.ICPD
    assert _run(base, up, tp(112, T01="44.9", T02=20, NT01=S.PRESENT))[-1] is R.IUPD


def test_new_lesion_iupd_then_further_new_lesion_confirms_even_early() -> None:
    base = tp(0, T01=30, T02=20, NT01=S.PRESENT)
    nl = tp(56, T01=30, T02=20, NT01=S.PRESENT, NLT01=12)
    early = tp(70, T01=30, T02=20, NT01=S.PRESENT, NLT01=12, NLNT01=S.PRESENT)  # 14 days later
    assert _run(base, nl, early) == [R.IUPD, R.ICPD]


def test_early_scan_without_new_lesion_cannot_confirm() -> None:
    base = tp(0, T01=30, T02=20, NT01=S.PRESENT)
    nl = tp(56, T01=30, T02=20, NT01=S.PRESENT, NLT01=12)
    early = tp(76, T01=30, T02=20, NT01=S.PRESENT, NLT01=20)  # NLT +8 mm but only 20 days
    later = tp(84, T01=30, T02=20, NT01=S.PRESENT, NLT01=20)  # 28 days: confirms
    assert _run(base, nl, early, later) == [R.IUPD, R.IUPD, R.ICPD]
    ev = evaluate_irecist(LESIONS, [base, nl, early])
    assert any("only 20 days after iUPD" in r for r in ev[-1].reasons)


def test_nlt_sum_plus_5_confirms_nlnt_growth_confirms() -> None:
    base = tp(0, T01=30, T02=20, NT01=S.PRESENT)
    nl = tp(56, T01=30, T02=20, NT01=S.PRESENT, NLT01=12, NLNT01=S.PRESENT)
    assert _run(base, nl, tp(112, T01=30, T02=20, NT01=S.PRESENT, NLT01=17,
                             NLNT01=S.PRESENT))[-1] is R.ICPD
    assert _run(base, nl, tp(112, T01=30, T02=20, NT01=S.PRESENT, NLT01=16,
                             NLNT01=S.PRESENT))[-1] is R.IUPD
    assert _run(base, nl, tp(112, T01=30, T02=20, NT01=S.PRESENT, NLT01=12,
                             NLNT01=S.INCREASED))[-1] is R.ICPD


def test_nlt_not_added_to_target_sum() -> None:
    base = tp(0, T01=30, T02=20, NT01=S.PRESENT)
    ev = evaluate_irecist(LESIONS, [base, tp(56, T01=30, T02=20, NT01=S.PRESENT, NLT01=40)])
    assert ev[0].recist.sod_mm == 50
    assert ev[0].nlt_sum_mm == 40


def test_non_target_driver_grows_at_all_confirms() -> None:
    base = tp(0, T01=30, T02=20, NT01=S.PRESENT)
    up = tp(56, T01=30, T02=20, NT01=S.UNEQUIVOCAL_PROGRESSION)
    assert _run(base, up, tp(112, T01=30, T02=20, NT01=S.INCREASED))[-1] is R.ICPD
    assert _run(base, up, tp(112, T01=30, T02=20, NT01=S.UNEQUIVOCAL_PROGRESSION))[-1] is R.IUPD


def test_other_category_meeting_pd_confirms() -> None:
    base = tp(0, T01=30, T02=20, NT01=S.PRESENT)
    up = tp(56, T01=30, T02=20, NT01=S.UNEQUIVOCAL_PROGRESSION)     # driven by non-target
    assert _run(base, up, tp(112, T01=40, T02=20,
                             NT01=S.UNEQUIVOCAL_PROGRESSION))[-1] is R.ICPD  # target now PD


def test_reset_after_isd_next_progression_is_new_iupd() -> None:
    base = tp(0, T01=30, T02=20, NT01=S.PRESENT)
    out = _run(base,
               tp(56, T01=40, T02=20, NT01=S.PRESENT),   # 60: iUPD
               tp(112, T01=30, T02=18, NT01=S.PRESENT),  # 48: back to iSD → reset
               tp(168, T01=40, T02=20, NT01=S.PRESENT))  # 60 vs nadir 48: +25 %, +12 → new iUPD
    assert out == [R.IUPD, R.ISD, R.IUPD]


def test_ne_after_iupd_keeps_it_pending_and_ibor_iupd() -> None:
    base = tp(0, T01=30, T02=20, NT01=S.PRESENT)
    ev = evaluate_irecist(LESIONS, [base, tp(56, T01=40, T02=20, NT01=S.PRESENT),
                                    tp(112, T01=40, NT01=S.PRESENT)])
    assert [t.overall for t in ev] == [R.IUPD, R.NE]
    assert ev[1].iupd_date == ev[0].date
    assert best_irecist(ev, D0).bor is R.IUPD


def test_too_many_new_lesion_targets_is_a_rule_violation() -> None:
    many = [les(f"NLT0{i}", f"ORGAN{i}") for i in range(1, 7)]
    with pytest.raises(RuleViolation, match="NLT06: more than 5 new-lesion targets"):
        evaluate_irecist([les("T01"), *many], [tp(0, T01=30)])
    two_lung = [les("NLT01", "LEFT LUNG"), les("NLT02", "RIGHT LUNG"), les("NLT03", "LUNG")]
    with pytest.raises(RuleViolation, match="NLT03: more than 2 new-lesion targets in LUNG"):
        evaluate_irecist([les("T01"), *two_lung], [tp(0, T01=30)])
