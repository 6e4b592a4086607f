"""Baseline measurability and target-selection rules."""

from __future__ import annotations

from decimal import Decimal

from recist_helpers import les, tp

from recist_tool.recist.baseline import check_baseline, measurable_threshold, select_targets


def _rules(lesions, **values) -> list[tuple[str, str]]:
    return [(v.lesion_id, v.rule) for v in check_baseline(lesions, tp(0, **values))]


def test_measurability_thresholds() -> None:
    assert measurable_threshold(None) == 10
    assert measurable_threshold(5) == 10
    assert measurable_threshold(Decimal("7.5")) == 15
    assert _rules([les("T01")], T01=10) == []
    assert _rules([les("T01")], T01="9.9") == [("T01", "not_measurable")]
    v = check_baseline([les("T01")], tp(0, T01=12), slice_thickness_mm=7)
    assert [x.rule for x in v] == ["not_measurable"] and "14 mm" in v[0].message


def test_nodes_by_short_axis() -> None:
    node = les("T01", "LYMPH NODE", nodal=True)
    assert _rules([node], T01=15) == []
    assert _rules([node], T01="14.9") == [("T01", "node_non_target_only")]
    assert _rules([node], T01="9.9") == [("T01", "normal_node")]
    assert _rules([les("NT01", "LYMPH NODE", nodal=True)], NT01=9) == [("NT01", "normal_node")]
    assert _rules([les("NT01", "LYMPH NODE", nodal=True)], NT01=12) == []


def test_at_most_five_and_two_per_organ() -> None:
    lesions = [les("T01", "LEFT LUNG"), les("T02", "RIGHT LUNG"), les("T03", "LUNG"),
               les("T04", "LYMPH NODE", nodal=True), les("T05", "LYMPH NODE", nodal=True),
               les("T06", "LYMPH NODE", nodal=True)]
    values = {f"T0{i}": 20 for i in range(1, 7)}
    assert _rules(lesions, **values) == [("T03", "too_many_in_organ"), ("T06", "too_many_targets"),
                                         ("T06", "too_many_in_organ")]


def test_kidneys_adrenals_paired() -> None:
    lesions = [les("T01", "LEFT KIDNEY"), les("T02", "RIGHT KIDNEY"), les("T03", "KIDNEYS")]
    assert _rules(lesions, T01=20, T02=20, T03=20) == [("T03", "too_many_in_organ")]


def test_unmeasured_target() -> None:
    assert _rules([les("T01")]) == [("T01", "not_measured")]


def test_select_targets() -> None:
    cands = [(les("TA", "LIVER"), 30), (les("TB", "LIVER"), 25), (les("TC", "LIVER"), 40),
             (les("TD", "LYMPH NODE", nodal=True), 16), (les("TE", "LYMPH NODE", nodal=True), 12),
             (les("TF", "LYMPH NODE", nodal=True), 8), (les("TG", "LUNG"), 9)]
    targets, non_targets, normal = select_targets(cands)
    assert targets == ("TC", "TA", "TD")
    assert set(non_targets) == {"TB", "TE", "TG"}
    assert normal == ("TF",)
