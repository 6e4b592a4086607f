"""The generator's own small RECIST 1.1 calculation, at and around the thresholds."""

from __future__ import annotations

from decimal import Decimal

from recist_tool.sample_data.expected import check_margins, expected_responses, tenths


def _les(category="target", la=0.0, sa=0.0, nodal=False, present=True):
    return {"category": category, "nodal": nodal, "long_axis_mm": la, "short_axis_mm": sa,
            "present": present}


def _run(*timepoints):
    return expected_responses(list(timepoints))


def test_tenths_rounds_half_up():
    assert tenths(12.25) == 123
    assert tenths(12.24) == 122
    assert tenths(0.05) == 1


def test_pr_exactly_at_minus_30_percent():
    bl = {"T01": _les(la=50.0), "T02": _les(la=50.0)}
    fu = {"T01": _les(la=35.0), "T02": _les(la=35.0)}  # 70 / 100 = -30 %
    assert _run(bl, fu)[1].overall == "PR"
    fu2 = {"T01": _les(la=35.1), "T02": _les(la=35.0)}
    assert _run(bl, fu2)[1].overall == "SD"


def test_pd_needs_20_percent_and_5_mm_from_nadir():
    bl = {"T01": _les(la=20.0)}
    assert _run(bl, {"T01": _les(la=24.0)})[1].target == "SD"  # +20 % but only +4 mm
    bl = {"T01": _les(la=25.0)}
    assert _run(bl, {"T01": _les(la=30.0)})[1].target == "PD"  # +20 %, +5 mm exactly
    assert _run(bl, {"T01": _les(la=29.9)})[1].target == "SD"
    # the nadir, not the baseline, is the reference
    r = _run({"T01": _les(la=40.0)}, {"T01": _les(la=25.0)}, {"T01": _les(la=30.0)})
    assert [x.overall if x else None for x in r] == [None, "PR", "PD"]
    assert r[2].nadir_tenths == 250


def test_nodes_count_by_short_axis_and_cr_below_10_mm():
    bl = {"T01": _les(la=30.0), "T02": _les(la=25.0, sa=18.0, nodal=True)}
    fu = {"T01": _les(present=False), "T02": _les(la=12.0, sa=9.9, nodal=True)}
    r = _run(bl, fu)[1]
    assert r.sod_tenths == 99 and r.baseline_tenths == 480
    assert (r.target, r.overall) == ("CR", "CR")
    fu["T02"] = _les(la=14.0, sa=10.0, nodal=True)
    assert _run(bl, fu)[1].target == "PR"


def test_non_target_and_new_lesions():
    bl = {"T01": _les(la=30.0), "NT01": _les("non-target", la=15.0, sa=12.0, nodal=True)}
    fu = {"T01": _les(present=False), "NT01": _les("non-target", la=15.0, sa=12.0, nodal=True)}
    r = _run(bl, fu)[1]
    assert (r.target, r.non_target, r.overall) == ("CR", "NN", "PR")
    fu["NL01"] = _les("new", la=8.0)
    r = _run(bl, fu)[1]
    assert r.new_lesions and r.overall == "PD"
    assert _run({"T01": _les(la=30.0)}, {"T01": _les(la=29.0)})[1].non_target == "ND"


def test_margins_flag_borderline_designs():
    bl = {"T01": _les(la=100.0)}
    assert check_margins(_run(bl, {"T01": _les(la=71.0)})[1])  # -29 %
    assert not check_margins(_run(bl, {"T01": _les(la=66.0)})[1])  # -34 %
    r = _run({"T01": _les(la=50.0)}, {"T01": _les(la=62.0)})[1]  # +24 %, +12 mm
    assert not check_margins(r)
    r = _run({"T01": _les(la=20.0)}, {"T01": _les(la=25.5)})[1]  # +27.5 % but +5.5 mm
    assert any("5 mm" in p for p in check_margins(r))
    assert check_margins(r, min_pp=Decimal(1), min_mm_tenths=0) == []
