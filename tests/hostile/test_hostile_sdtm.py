"""Hostile SDTM TU/TR input for ``recist respond``: what a careless or odd export can hold.

* a nodal target measured only by its long axis (LDIAM) — a node counts by its short axis;
* iRECIST with more new-lesion targets in one organ than the rules allow;
* text cells where numbers belong (digit look-alikes, underscores, exponents, NaN).

Small CSVs are written by the test itself; the oracle case uses ``../shared/data`` (skipped with a
reason when absent).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from recist_tool.cli import main
from recist_tool.errors import InputError, RuleViolation
from recist_tool.io.sdtm_csv import read_sdtm_csv
from recist_tool.recist import Category, Lesion, irecist
from recist_tool.recist.sdtm import parse_tu_tr, respond
from tests.cli.test_cli_respond import GOOD_TR, GOOD_TU, _case, _read, _tr, _tu
from tests.recist.recist_helpers import les, tp

BL, FU = "2024-01-01", "2024-02-26"


def _responses(out: Path, subject: str = "S1") -> dict[str, str]:
    return {r["RSTESTCD"]: r["RSORRES"] for r in _read(out / "rs.csv") if r["USUBJID"] == subject}


# --- item 11: a node contributes its short axis or is not evaluated ------------------------------

def test_node_with_only_a_long_axis_at_follow_up_is_not_evaluated(tmp_path: Path, capsys) -> None:
    """T01 30 mm + node T02 short axis 20 mm = 50; at follow-up the node has only LDIAM 30 mm.

    Summed by its long axis the follow-up would be 60 mm (+20 %, +10 mm): a false PD.
    """
    tr = [*GOOD_TR[:3], _tr("T01", "LDIAM", "30", 2, FU), _tr("T02", "LDIAM", "30", 2, FU),
          _tr("NT01", "TUMSTATE", "PRESENT", 2, FU)]
    assert main(_case(tmp_path, GOOD_TU, tr)) == 0
    got = _responses(tmp_path / "out")
    assert got["TRGRESP"] == "NE" and got["OVRLRESP"] == "NE"
    err = " ".join(capsys.readouterr().err.split())
    assert "TR.csv:6" in err and "T02" in err and "LPERP" in err


def test_node_state_with_a_long_axis_does_not_use_the_long_axis(tmp_path: Path) -> None:
    """TUMSTATE PRESENT plus LDIAM for a nodal target: the long axis is not its diameter."""
    tr = [*GOOD_TR[:3], _tr("T01", "LDIAM", "30", 2, FU), _tr("T02", "TUMSTATE", "PRESENT", 2, FU),
          _tr("T02", "LDIAM", "30", 2, FU), _tr("NT01", "TUMSTATE", "PRESENT", 2, FU)]
    assert main(_case(tmp_path, GOOD_TU, tr)) == 0
    assert _responses(tmp_path / "out")["TRGRESP"] == "NE"


def test_node_with_its_short_axis_still_counts(tmp_path: Path) -> None:
    """Both axes given: the short axis (LPERP) is summed, whatever the row order."""
    tr = [*GOOD_TR[:3], _tr("T02", "LDIAM", "45", 2, FU), _tr("T02", "LPERP", "15", 2, FU),
          _tr("T01", "LDIAM", "20", 2, FU), _tr("NT01", "TUMSTATE", "PRESENT", 2, FU)]
    assert main(_case(tmp_path, GOOD_TU, tr)) == 0
    assert _responses(tmp_path / "out")["TRGRESP"] == "PR"  # 35 vs 50: -30 %


def test_node_with_only_a_long_axis_at_baseline_names_the_row(tmp_path: Path, capsys) -> None:
    tr = [GOOD_TR[0], _tr("T02", "LDIAM", "20", 1, BL), *GOOD_TR[2:]]
    assert main(_case(tmp_path, GOOD_TU, tr)) == 3
    err = " ".join(capsys.readouterr().err.split())
    assert "TR.csv:3" in err and "T02" in err and "baseline" in err
    assert "Traceback" not in err


def test_oracle_node_without_its_short_axis_is_ne(shared_data: Path) -> None:
    """Pharmaverse TR: drop the short axis of node T02 (01-701-1015, investigator) at visit 2."""
    d = shared_data / "recist_oracles"
    if not (d / "tr_onco_recist.csv").is_file():
        pytest.skip(f"shared test data missing: {d}")
    tu = read_sdtm_csv(d / "tu_onco_recist.csv")

    def mine(row: dict[str, str]) -> bool:
        return row["USUBJID"] == "01-701-1015" and row["TREVALID"] == "NA"

    tr = [(src, row) for src, row in read_sdtm_csv(d / "tr_onco_recist.csv")
          if not (mine(row) and row["TRLNKID"] == "T02" and row["TRTESTCD"] == "LPERP"
                  and row["VISITNUM"] == "2")]
    result = respond(tu, tr)
    trg = {r["VISITNUM"]: r["RSORRES"] for r in result.rs if r["USUBJID"] == "01-701-1015"
           and r["RSEVAL"] == "INVESTIGATOR" and r["RSTESTCD"] == "TRGRESP"}
    assert trg["2"] == "NE"
    assert any("T02" in w and "LPERP" in w for w in result.warnings)


# --- item 12: too many iRECIST new-lesion targets: reported per subject, the run goes on ---------

def _irecist_case(tmp_path: Path) -> list[str]:
    """S1 with three new-lesion targets in the liver at visit 2; S2 an ordinary subject."""
    tu = [*GOOD_TU, *(_tu(f"NLT0{i}", "NEW TARGET", "LIVER", visitnum=2) for i in (1, 2, 3)),
          *(_tu(r["TULNKID"], r["TUSTRESC"], r["TULOC"], subj="S2") for r in GOOD_TU)]
    tr = [*GOOD_TR, *(_tr(f"NLT0{i}", "LDIAM", "12", 2, FU) for i in (1, 2, 3)),
          *({**r, "USUBJID": "S2"} for r in GOOD_TR)]
    return [*_case(tmp_path, tu, tr), "--criteria", "irecist"]


def test_too_many_new_lesion_targets_is_a_warning_per_subject(tmp_path: Path, capsys) -> None:
    assert main(_irecist_case(tmp_path)) == 0
    rs = _read(tmp_path / "out" / "rs.csv")
    assert {r["USUBJID"] for r in rs} == {"S1", "S2"}
    ovr = {r["USUBJID"]: r["RSORRES"] for r in rs if r["RSTESTCD"] == "OVRLRESP"}
    assert ovr == {"S1": "iUPD", "S2": "iPR"}
    assert len(_read(tmp_path / "out" / "best_response.csv")) == 2
    err = " ".join(capsys.readouterr().err.split())
    rule = [w for w in err.split("warning:") if "new-lesion target" in w]
    # one warning: the TU row of the third new-lesion target, with its subject
    assert len(rule) == 1
    assert "TU.csv:7" in rule[0] and "S1" in rule[0] and "NLT03" in rule[0] and "LIVER" in rule[0]


def test_new_lesion_target_limits_are_violations_not_a_crash() -> None:
    lesions = [les("T01"), *(les(f"NLT0{i}", "LUNG") for i in (1, 2, 3))]
    got = irecist.check_new_lesion_targets(lesions)
    assert [(v.lesion_id, v.rule) for v in got] == [("NLT03", "too_many_new_in_organ")]
    many = [les("T01"), *(les(f"NLT0{i}", f"ORGAN{i}") for i in range(1, 7))]
    assert [(v.lesion_id, v.rule) for v in irecist.check_new_lesion_targets(many)] == \
        [("NLT06", "too_many_new_targets")]
    base = tp(0, T01=30)
    with pytest.raises(RuleViolation, match="NLT03: more than 2 new-lesion targets in LUNG"):
        irecist.evaluate_irecist(lesions, [base, tp(56, T01=30, NLT01=10, NLT02=10, NLT03=10)])
    out = irecist.evaluate_irecist(lesions, [base, tp(56, T01=30, NLT01=10, NLT02=10, NLT03=10)],
                           strict=False)
    assert out[0].nlt_sum_mm == 30  # scored as recorded


def test_non_nodal_lesion_with_only_a_short_axis_is_not_evaluated() -> None:
    """The mirror case (already so before): LPERP of a liver target is no long axis."""
    def row(code: str, value: str, vnum: str, date: str) -> tuple[str, dict[str, str]]:
        return (f"TR.csv:{vnum}", {"USUBJID": "S1", "TRLNKID": "T01", "TRTESTCD": code,
                                   "TRORRES": value, "VISITNUM": vnum, "TRDTC": date})

    tu = [("TU.csv:2", {"USUBJID": "S1", "TULNKID": "T01", "TUTESTCD": "TUMIDENT",
                        "TUORRES": "TARGET", "TULOC": "LIVER", "VISITNUM": "1"})]
    rec = parse_tu_tr(tu, [row("LDIAM", "30", "1", BL), row("LPERP", "40", "2", FU)])[0]
    a = rec.timepoints[1].get("T01")
    assert a is not None and a.state.value == "NOT EVALUATED" and a.diameter_mm is None
    assert rec.lesions == (Lesion("T01", Category.TARGET, organ="LIVER", nodal=False),)


# --- text cells ----------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["3_0", "\u0663\u0660", "30\u00a0mm", "1e1", "NaN", "Infinity",
                                  "-5", "0x1E", "\u200b30"])
def test_a_diameter_that_is_not_plain_decimal_text_names_the_row(tmp_path: Path, capsys,
                                                                 text: str) -> None:
    """Digit look-alikes (Arabic-Indic), underscores and exponents are not silently read as 30."""
    tr = [*GOOD_TR[:3], _tr("T01", "LDIAM", text, 2, FU), *GOOD_TR[4:]]
    assert main(_case(tmp_path, GOOD_TU, tr)) == 3
    err = " ".join(capsys.readouterr().err.split())
    assert "TR.csv:5" in err and "Traceback" not in err


@pytest.mark.parametrize("text", ["1_0", "\u0662", "2e0"])
def test_a_visitnum_that_is_not_plain_decimal_text_names_the_row(text: str) -> None:
    tu = [("TU.csv:2", {"USUBJID": "S1", "TULNKID": "T01", "TUTESTCD": "TUMIDENT",
                        "TUORRES": "TARGET", "TULOC": "LIVER", "VISITNUM": text})]
    with pytest.raises(InputError, match="TU.csv:2: VISITNUM"):
        parse_tu_tr(tu, [])


def test_text_cells_with_odd_characters_pass_through_or_name_the_row(tmp_path: Path,
                                                                     capsys) -> None:
    """Non-ASCII visit names (labels, not codes) are kept as given; a zero-width space in a
    category is an unknown category naming its row, not a silent match."""
    tr = [{**r, "VISIT": "SEMAINE 8 \u2014 \u00e9, \"x\""} for r in GOOD_TR]
    assert main(_case(tmp_path, GOOD_TU, tr)) == 0
    rs = _read(tmp_path / "out" / "rs.csv")
    assert {r["VISIT"] for r in rs} == {"SEMAINE 8 \u2014 \u00e9, \"x\""}
    bad = [_tu("T01", "TARGET\u200b"), *GOOD_TU[1:]]
    assert main(_case(tmp_path, bad, GOOD_TR)) == 3
    assert "TU.csv:2: unknown tumour category" in " ".join(capsys.readouterr().err.split())


def test_a_rule_that_stops_a_subject_names_it(tmp_path: Path) -> None:
    """Two visits on one date with different responses and ``same_day = "error"``."""
    from recist_tool.recist.policies import Policies

    tr = [*GOOD_TR, _tr("T01", "LDIAM", "40", 3, FU), _tr("T02", "LPERP", "20", 3, FU),
          _tr("NT01", "TUMSTATE", "PRESENT", 3, FU)]
    with pytest.raises(RuleViolation, match=r"^S1 \(INVESTIGATOR\): two different responses"):
        respond([(f"TU.csv:{i}", {k: str(v) for k, v in r.items()}) for i, r in enumerate(GOOD_TU, 2)],
                [(f"TR.csv:{i}", {k: str(v) for k, v in r.items()}) for i, r in enumerate(tr, 2)],
                policies=Policies(same_day="error"))
