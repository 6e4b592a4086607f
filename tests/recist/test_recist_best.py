"""Best overall response: windows, confirmation, same-day, new therapy, flags and durations."""

from __future__ import annotations

import datetime as dt

import pytest

from recist_tool.errors import InputError, RuleViolation
from recist_tool.recist import Policies, Response, best_response, policies_from_toml

R = Response
D0 = dt.date(2024, 1, 1)


def d(n: int) -> dt.date:
    return D0 + dt.timedelta(days=n)


def test_sd_window_is_inclusive() -> None:
    assert best_response([(d(41), R.SD)], D0).bor is R.NE
    assert best_response([(d(42), R.SD)], D0).bor is R.SD
    assert best_response([(d(42), R.NON_CR_NON_PD)], D0).bor is R.NON_CR_NON_PD
    assert best_response([(d(41), R.SD), (d(60), R.PD)], D0).bor is R.PD


def test_order_and_first_date() -> None:
    b = best_response([(d(42), R.SD), (d(84), R.PR), (d(126), R.PR), (d(168), R.PD)], D0)
    assert (b.bor, b.bor_date) == (R.PR, d(84))
    assert b.response and b.response_date == d(84)
    assert b.pd_date == d(168) and b.duration_of_response_days == 85


def test_confirmation_interval_exact() -> None:
    assert best_response([(d(56), R.CR), (d(84), R.CR)], D0).confirmed_bor is R.CR
    b = best_response([(d(56), R.CR), (d(83), R.CR)], D0)
    assert (b.confirmed_bor, b.confirmed_bor_date) == (R.SD, d(56))


def test_confirmation_ne_budget_and_sd_between() -> None:
    seq = [(d(56), R.PR), (d(70), R.NE), (d(98), R.PR)]
    assert best_response(seq, D0).confirmed_bor is R.PR
    assert best_response(seq, D0, Policies(confirm_max_ne=0)).confirmed_bor is R.SD
    seq = [(d(56), R.PR), (d(70), R.SD), (d(98), R.PR)]
    assert best_response(seq, D0).confirmed_bor is R.SD
    assert best_response(seq, D0, Policies(confirm_accept_sd=True)).confirmed_bor is R.PR


def test_confirmation_headline_switches_duration_start() -> None:
    seq = [(d(42), R.PR), (d(56), R.PR), (d(84), R.PR), (d(140), R.PD)]
    assert best_response(seq, D0).duration_of_response_days == 99
    b = best_response(seq, D0, Policies(confirmation=True))
    assert b.confirmed_response_date == d(42) and b.duration_of_response_days == 99
    seq2 = [(d(42), R.PR), (d(56), R.SD), (d(70), R.PR), (d(98), R.PR), (d(140), R.PD)]
    b2 = best_response(seq2, D0, Policies(confirmation=True))
    assert b2.confirmed_response_date == d(70) and b2.duration_of_response_days == 71


def test_truncate_at_first_pd() -> None:
    seq = [(d(30), R.PD), (d(60), R.SD)]
    assert best_response(seq, D0).bor is R.PD
    assert best_response(seq, D0, Policies(truncate_at_pd=False)).bor is R.SD


def test_new_therapy_excludes_later_assessments() -> None:
    seq = [(d(30), R.SD), (d(60), R.PR)]
    b = best_response(seq, D0, new_therapy_date=d(60))
    assert b.bor is R.NE and "new therapy" in " ".join(b.reasons)


def test_same_day_policies() -> None:
    seq = [(d(60), R.PR), (d(60), R.PD)]
    assert best_response(seq, D0).bor is R.PD
    assert best_response([(d(60), R.PD), (d(60), R.PR)], D0, Policies(same_day="last")).bor is R.PR
    with pytest.raises(RuleViolation, match="two different responses"):
        best_response(seq, D0, Policies(same_day="error"))


def test_missing() -> None:
    assert best_response([], D0).bor is R.MISSING
    assert best_response([], D0, Policies(missing_as_ne=True)).bor is R.NE


def test_policies_from_toml() -> None:
    p = policies_from_toml('[recist]\nsd_min_days = 56\npr_mode = "sticky"\n')
    assert p.sd_min_days == 56 and p.pr_mode == "sticky" and p.confirm_interval_days == 28
    assert policies_from_toml("") == Policies()
    with pytest.raises(InputError, match="not valid TOML"):
        policies_from_toml("[recist\n")
    with pytest.raises(InputError, match="non-negative integer"):
        policies_from_toml("[recist]\nsd_min_days = -1\n")
    with pytest.raises(InputError, match="true or false"):
        Policies(confirmation="yes")  # type: ignore[arg-type]
