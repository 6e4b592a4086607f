"""Trial endpoints (recist_tool.recist.endpoints): the pharmaverse ADRS oracle for BOR / CBOR, the
Kaplan–Meier figures against a product-limit estimate computed here from its definition, the
exact intervals, and the censoring policies."""

from __future__ import annotations

import csv
import datetime as dt
import math
from pathlib import Path

import pytest

from recist_tool.errors import InputError
from recist_tool.recist import Policies, Response, evaluate_timepoints, parse_tu_tr, reference_dates
from recist_tool.recist.best import Assessment
from recist_tool.recist.endpoints import (
    ADRS_AVAL,
    EndpointPolicies,
    TimeToEvent,
    adrs_rows,
    adtte_rows,
    aval_days,
    kaplan_meier,
    subject_outcome,
    trial_endpoints,
)
from recist_tool.recist.policies import policies_from_toml

D0 = dt.date(2025, 1, 1)


def day(n: int) -> dt.date:
    """The date of study day ``n`` (day 1 = D0)."""
    return D0 + dt.timedelta(days=n - 1)


def _date(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def outcome(code: str, *visits: tuple[int, str], policies: Policies | None = None, **kw):
    return subject_outcome(code, [Assessment(day(d), Response(r)) for d, r in visits], D0,
                           policies, **kw)


# --- the pharmaverse ADRS oracle ---------------------------------------------------------------

def test_adrs_bor_cbor_rows_match_pharmaverse(shared_data: Path) -> None:
    """BOR and CBOR rows of adrs.csv (value, AVAL code, date, visit) for the 8 investigator-read
    subjects, from the oracle's own SDTM TU/TR through the engine: all 16 rows agree; so do the 8
    PFS records derived from the oracle's PD and LSTA parameters."""
    from recist_tool.io.sdtm_csv import read_sdtm_csv
    from tests.conftest import require

    oracles = require(shared_data / "recist_oracles" / "pharmaverseadam_adrs_onco_8subj.csv").parent

    pol = Policies(sd_min_days=42, confirm_interval_days=28, confirm_max_ne=1)
    ref = reference_dates(read_sdtm_csv(oracles / "dm.csv"), "RFSTDTC")
    records = parse_tu_tr(read_sdtm_csv(oracles / "tu_onco_recist.csv"),
                          read_sdtm_csv(oracles / "tr_onco_recist.csv"))
    outcomes = []
    for rec in records:
        if rec.evaluator != "INVESTIGATOR":
            continue
        trs = evaluate_timepoints(rec.lesions, rec.timepoints, pol)
        outcomes.append(subject_outcome(
            rec.usubjid, [Assessment(t.date, t.overall) for t in trs], ref[rec.usubjid], pol,
            visits=[(t.date, t.visit) for t in trs]))
    got = {(r["USUBJID"], r["PARAMCD"]): (r["AVALC"], float(r["AVAL"]), r["ADT"] or "",
                                          r["AVISIT"] or "")
           for r in adrs_rows(outcomes, "CDISCPILOT01")}
    with (oracles / "pharmaverseadam_adrs_onco_8subj.csv").open(newline="") as fh:
        want = {(r["USUBJID"], r["PARAMCD"]): (r["AVALC"], float(r["AVAL"]), r["ADT"], r["AVISIT"])
                for r in csv.DictReader(fh) if r["PARAMCD"] in ("BOR", "CBOR")}
    assert len(want) == 16
    assert got == want
    # PFS from the oracle's own PD and last-assessment (LSTA) parameters: an event on the PD date,
    # else censored on the last assessment (all of them adequate here); AVAL = ADT - RANDDT + 1
    with (oracles / "pharmaverseadam_adrs_onco_8subj.csv").open(newline="") as fh:
        params = {(r["USUBJID"], r["PARAMCD"]): r for r in csv.DictReader(fh)}
    want_pfs = {}
    for o in outcomes:
        pd, last = params[(o.subject, "PD")], params[(o.subject, "LSTA")]
        assert params[(o.subject, "DEATH")]["AVALC"] == "N"
        end, cnsr = (pd["ADT"], 0) if pd["AVALC"] == "Y" else (last["ADT"], 1)
        want_pfs[o.subject] = (end, (_date(end) - _date(pd["RANDDT"])).days + 1, cnsr)
    ep = trial_endpoints(outcomes, pol)
    assert {r.subject: (r.end.isoformat(), r.days, int(r.censored)) for r in ep.pfs} == want_pfs
    assert sum(c == 0 for _, _, c in want_pfs.values()) == 3  # 1028, 1130, 1133


def test_aval_codes_are_the_oracles() -> None:
    assert {r.value: c for r, c in ADRS_AVAL.items()} == {
        "CR": 1, "PR": 2, "SD": 3, "NON-CR/NON-PD": 4, "PD": 5, "NE": 6, "MISSING": 7}


# --- Kaplan–Meier against the definition -------------------------------------------------------

def _product_limit(times: list[int], censored: list[bool], z: float = 1.959963984540054):
    """S(t), Greenwood's sum and the log-log interval at each distinct event time, written from
    the definitions (Kaplan & Meier 1958; Greenwood 1926; Kalbfleisch & Prentice)."""
    out = {}
    s, green = 1.0, 0.0
    for t in sorted(set(t for t, c in zip(times, censored, strict=True) if not c)):
        n = sum(x >= t for x in times)
        d = sum(x == t and not c for x, c in zip(times, censored, strict=True))
        s *= 1 - d / n
        green += d / (n * (n - d)) if n > d else math.inf
        if 0 < s < 1:
            se = math.sqrt(green) / abs(math.log(s))
            lo, hi = s ** math.exp(z * se), s ** math.exp(-z * se)
        else:
            lo = hi = None
        out[t] = (s, lo, hi)
    return out


def _records(times: list[int], censored: list[bool]) -> list[TimeToEvent]:
    return [TimeToEvent(f"S{i:02d}", "PFS", D0, day(t), t, c, "")
            for i, (t, c) in enumerate(zip(times, censored, strict=True))]


@pytest.mark.parametrize("times,censored", [
    ([85, 86, 87], [False, True, False]),
    ([5, 5, 8, 9, 10, 12, 30, 30, 42, 60, 61, 61, 90],
     [False, True, False, True, False, True, False, False, True, False, True, False, True]),
    ([43, 84, 84, 126, 170, 170, 211, 250, 300, 301],
     [False, False, False, True, False, False, True, False, True, True]),
])
def test_km_matches_product_limit_by_hand(times: list[int], censored: list[bool]) -> None:
    km = kaplan_meier(_records(times, censored))
    ref = _product_limit(times, censored)
    at = dict(zip(km.times, zip(km.survival, km.ci_low, km.ci_high, strict=True), strict=True))
    for t, (s, lo, hi) in ref.items():
        assert at[t][0] == pytest.approx(s, abs=1e-12)
        if lo is not None:
            assert at[t][1] == pytest.approx(lo, abs=1e-9)
            assert at[t][2] == pytest.approx(hi, abs=1e-9)
    # median: the first time S ≤ 0.5; its interval: first times the limits reach 0.5
    want_median = next((t for t, (s, _, _) in ref.items() if s <= 0.5), None)
    assert km.median_days == want_median
    assert km.median_ci[0] == next((t for t, (_, lo, _) in ref.items()
                                    if lo is not None and lo <= 0.5), None)
    assert km.median_ci[1] == next((t for t, (_, _, hi) in ref.items()
                                    if hi is not None and hi <= 0.5), None)
    assert km.events == censored.count(False) and km.n == len(times)
    assert km.censor_times == tuple(sorted(t for t, c in zip(times, censored, strict=True) if c))
    for d, n in km.at_risk:
        assert n == sum(t >= d for t in times)


def test_km_without_events_and_without_subjects() -> None:
    km = kaplan_meier(_records([40, 80], [True, True]))
    assert km.median_days is None and km.median_ci == (None, None)
    assert set(km.survival) == {1.0} and km.events == 0
    empty = kaplan_meier([], paramcd="DOR")
    assert empty.n == 0 and empty.paramcd == "DOR" and empty.at_risk == ((0, 0),)


# --- rates --------------------------------------------------------------------------------------

def test_orr_dcr_exact_intervals_and_non_evaluable() -> None:
    outs = [
        outcome("S1", (43, "PR"), (85, "PR")),               # confirmed PR
        outcome("S2", (43, "PR"), (60, "SD")),               # unconfirmed PR -> CBOR SD
        outcome("S3", (43, "SD"), (85, "PD")),
        outcome("S4", (43, "PD")),
        outcome("S5", (43, "NE")),                           # not evaluable: no adequate assessment
        outcome("S6", (43, "PR"), measurable=False),         # not evaluable: no target lesion
        subject_outcome("S7", [], D0),                       # not evaluable: no follow-up
    ]
    ep = trial_endpoints(outs)
    assert ep.evaluable == ("S1", "S2", "S3", "S4")
    assert dict(ep.not_evaluable) == {
        "S5": "no adequate follow-up assessment (NE)",
        "S6": "no measurable disease at baseline (no target lesion)",
        "S7": "no follow-up assessment"}
    assert (ep.orr.count, ep.orr.n, ep.orr.subjects) == (2, 4, ("S1", "S2"))
    assert (ep.orr_confirmed.count, ep.orr_confirmed.subjects) == (1, ("S1",))
    assert (ep.dcr.count, ep.dcr_confirmed.count) == (3, 3)
    # Clopper–Pearson from its definition: the beta quantiles
    from scipy.stats import beta
    lo, hi = beta.ppf(0.025, 2, 3), beta.ppf(0.975, 3, 2)
    assert (ep.orr.ci_low, ep.orr.ci_high) == (pytest.approx(lo), pytest.approx(hi))
    assert ep.orr.rate == 0.5


# --- censoring policies -------------------------------------------------------------------------

def _pfs(o, pol=None):
    return next(r for r in trial_endpoints([o], endpoint_policies=pol).pfs)


def test_pfs_event_censoring_and_fda_defaults() -> None:
    r = _pfs(outcome("A", (43, "SD"), (85, "PD")))
    assert (r.censored, r.days, r.event_desc) == (False, 85, "PROGRESSIVE DISEASE")
    r = _pfs(outcome("B", (43, "SD"), (85, "SD")))
    assert (r.censored, r.end, r.event_desc, r.censor_date_desc) == (
        True, day(85), "NO PROGRESSION OR DEATH", "LAST ADEQUATE ASSESSMENT")
    # PD after two missed assessments (gap 168 d > 2 × 42 + 7): censored at the last adequate one
    r = _pfs(outcome("C", (43, "SD"), (211, "PD")))
    assert (r.censored, r.end, r.event_desc) == (True, day(43), "PROGRESSIVE DISEASE AFTER MISSED "
                                                 "ASSESSMENTS")
    r = _pfs(outcome("C", (43, "SD"), (211, "PD")), EndpointPolicies(missed_assessments="event"))
    assert (r.censored, r.days) == (False, 211)
    # one missed assessment is allowed: PD 91 days after the last one counts
    assert not _pfs(outcome("C2", (43, "SD"), (134, "PD"))).censored
    # death is an event; new therapy censors at the last adequate assessment before it
    r = _pfs(outcome("D", (43, "SD"), death_date=day(70)))
    assert (r.censored, r.days, r.event_desc) == (False, 70, "DEATH")
    r = _pfs(outcome("E", (43, "SD"), (85, "SD"), (127, "PD"), new_therapy_date=day(100)))
    assert (r.censored, r.end, r.event_desc) == (True, day(85), "NEW ANTICANCER THERAPY")
    r = _pfs(outcome("E", (43, "SD"), (85, "SD"), (127, "PD"), new_therapy_date=day(100)),
             EndpointPolicies(new_therapy="ignore"))
    assert (r.censored, r.days) == (False, 127)
    # no adequate assessment: censored at the reference start (day 1)
    r = _pfs(outcome("F", (43, "NE")))
    assert (r.censored, r.days, r.censor_date_desc) == (True, 1, "REFERENCE START")


def test_dor_from_first_response_agrees_with_engine() -> None:
    o = outcome("R", (43, "PR"), (85, "PR"), (127, "PD"))
    ep = trial_endpoints([o])
    (r,) = ep.dor
    assert (r.start, r.end, r.censored) == (day(43), day(127), False)
    assert r.days == o.best.duration_of_response_days == aval_days(day(43), day(127))
    conf = Policies(confirmation=True)
    o2 = outcome("R2", (43, "PR"), (60, "PR"), (85, "PR"), policies=conf)
    (r2,) = trial_endpoints([o2], conf).dor
    assert r2.start == o2.best.confirmed_response_date == day(43)
    assert r2.censored and r2.end == day(85)


def test_new_therapy_excludes_later_assessments_from_best_response() -> None:
    o = outcome("N", (43, "SD"), (85, "PR"), (127, "PR"), new_therapy_date=day(80))
    assert o.best.bor is Response.SD and o.pd_date is None
    rows = adrs_rows([o], "T")
    assert [(r["PARAMCD"], r["AVALC"], r["AVAL"]) for r in rows] == [("BOR", "SD", 3),
                                                                     ("CBOR", "SD", 3)]


def test_bad_dates_are_one_line_errors() -> None:
    with pytest.raises(InputError, match="death .*before the reference start"):
        outcome("X", (43, "SD"), death_date=day(-3))
    with pytest.raises(InputError, match="assessment of .* is before the reference start"):
        outcome("X", (-10, "SD"))
    with pytest.raises(InputError, match="after the death"):
        outcome("X", (43, "SD"), (85, "SD"), death_date=day(60))
    with pytest.raises(InputError, match="given twice"):
        trial_endpoints([outcome("X", (43, "SD")), outcome("X", (43, "SD"))])


def test_endpoint_policies_from_toml() -> None:
    pol = policies_from_toml("[endpoints]\nassessment_interval_days = 63\nnew_therapy = 'ignore'\n",
                             section="endpoints", base=EndpointPolicies())
    assert pol == EndpointPolicies(assessment_interval_days=63, new_therapy="ignore")
    assert pol.missed_limit_days == 2 * 63 + 7
    with pytest.raises(InputError, match=r"\[endpoints\]: unknown policy name\(s\): death_rule"):
        policies_from_toml("[endpoints]\ndeath_rule = 'x'\n", section="endpoints",
                           base=EndpointPolicies())
    with pytest.raises(InputError, match="death='ignore' is not one of event, censor"):
        EndpointPolicies(death="ignore")


def test_adtte_rows_columns() -> None:
    ep = trial_endpoints([outcome("A", (43, "PR"), (85, "PR"), (127, "PD"))])
    rows = adtte_rows(ep, "T")
    assert [(r["PARAMCD"], r["AVAL"], r["CNSR"], r["STARTDT"], r["ADT"]) for r in rows] == [
        ("PFS", 127, 0, "2025-01-01", day(127).isoformat()),
        ("DOR", 85, 0, day(43).isoformat(), day(127).isoformat())]


def test_subjects_without_reference_date_or_before_therapy_are_named() -> None:
    no_ref = subject_outcome("Z1", [Assessment(day(43), Response.SD)], None)
    early = outcome("Z2", (43, "PR"), new_therapy_date=day(20))
    ep = trial_endpoints([no_ref, early])
    assert ep.pfs_excluded == (("Z1", "no reference start date"),)
    assert dict(ep.not_evaluable) == {
        "Z2": f"no follow-up assessment before new therapy ({day(20).isoformat()})"}
    (r,) = ep.pfs
    assert (r.subject, r.censored, r.days, r.event_desc) == ("Z2", True, 1, "NEW ANTICANCER THERAPY")
    assert ep.dor == ()  # the PR came after the new therapy


def test_irecist_pfs_event_is_the_confirmed_iupd() -> None:
    """Under iRECIST the engine dates progression at the iUPD that iCPD confirms."""
    o = outcome("I1", (43, "iSD"), (85, "iUPD"), (127, "iCPD"), criteria="iRECIST")
    o2 = outcome("I2", (43, "iPR"), (85, "iPR"), criteria="iRECIST")
    ep = trial_endpoints([o, o2])
    assert (ep.orr.subjects, ep.dcr.count) == (("I2",), 2)
    assert [(r.subject, r.paramcd, r.days, r.censored) for r in ep.pfs + ep.dor] == [
        ("I1", "PFS", 85, False), ("I2", "PFS", 85, True), ("I2", "DOR", 43, True)]
    assert [r["AVAL"] for r in adrs_rows([o], "T")] == [None, None]
