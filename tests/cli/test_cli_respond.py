"""``recist respond`` end to end through ``recist_tool.cli.main``."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from recist_tool.cli import main

TU_COLS = ["STUDYID", "DOMAIN", "USUBJID", "VISITNUM", "VISIT", "TULOC", "TUTESTCD", "TUORRES",
           "TUSTRESC", "TULNKID", "TUEVAL", "TUEVALID"]
TR_COLS = ["STUDYID", "DOMAIN", "USUBJID", "TRLNKID", "TRTESTCD", "TRORRES", "TRSTRESC",
           "TRSTRESN", "TRSTAT", "VISITNUM", "VISIT", "TREVAL", "TREVALID", "TRDTC"]


def _write(path: Path, cols: list[str], rows: list[dict]) -> Path:
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        for r in rows:
            w.writerow({c: r.get(c, "") for c in cols})
    return path


def _tu(lid: str, cat: str, loc: str = "LIVER", visitnum: int = 1, subj: str = "S1") -> dict:
    return {"STUDYID": "ST", "DOMAIN": "TU", "USUBJID": subj, "VISITNUM": visitnum,
            "VISIT": f"V{visitnum}", "TULOC": loc, "TUTESTCD": "TUMIDENT", "TUORRES": cat,
            "TUSTRESC": cat, "TULNKID": lid, "TUEVAL": "INVESTIGATOR"}


def _tr(lid: str, code: str, value, visitnum: int, date: str, subj: str = "S1",
        stat: str = "") -> dict:
    return {"STUDYID": "ST", "DOMAIN": "TR", "USUBJID": subj, "TRLNKID": lid, "TRTESTCD": code,
            "TRORRES": value, "TRSTRESC": value, "TRSTAT": stat, "VISITNUM": visitnum,
            "VISIT": f"V{visitnum}", "TREVAL": "INVESTIGATOR", "TRDTC": date}


def _case(tmp_path: Path, tu: list[dict], tr: list[dict]) -> list[str]:
    return ["respond", "--tu", str(_write(tmp_path / "TU.csv", TU_COLS, tu)),
            "--tr", str(_write(tmp_path / "TR.csv", TR_COLS, tr)), "-o", str(tmp_path / "out")]


GOOD_TU = [_tu("T01", "TARGET"), _tu("T02", "TARGET", "LYMPH NODE"), _tu("NT01", "NON-TARGET")]
GOOD_TR = [
    _tr("T01", "LDIAM", "30", 1, "2024-01-01"), _tr("T02", "LPERP", "20", 1, "2024-01-01"),
    _tr("NT01", "TUMSTATE", "PRESENT", 1, "2024-01-01"),
    _tr("T01", "LDIAM", "20", 2, "2024-02-26"), _tr("T02", "LPERP", "15", 2, "2024-02-26"),
    _tr("NT01", "TUMSTATE", "PRESENT", 2, "2024-02-26"),
]


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_synthetic_good_case(tmp_path: Path) -> None:
    assert main(_case(tmp_path, GOOD_TU, GOOD_TR)) == 0
    rs = _read(tmp_path / "out" / "rs.csv")
    by = {r["RSTESTCD"]: r["RSORRES"] for r in rs}
    # 35 vs 50 is exactly -30 %: PR
    assert by == {"TRGRESP": "PR", "NTRGRESP": "NON-CR/NON-PD", "NEWLIND": "N", "OVRLRESP": "PR"}
    best = _read(tmp_path / "out" / "best_response.csv")
    assert len(best) == 1 and best[0]["BOR"] == "PR" and best[0]["BORDT"] == "2024-02-26"
    assert best[0]["CBOR"] == "SD"  # unconfirmed PR ≥ 42 days after baseline (no DM)


@pytest.mark.parametrize(
    ("tu", "tr", "needle"),
    [
        (GOOD_TU, [*GOOD_TR, _tr("T01", "VOLUME", "3", 2, "2024-02-26")],
         "TR.csv:8: unknown TRTESTCD 'VOLUME'"),
        ([*GOOD_TU, _tu("NL01", "NEW", visitnum=2)],
         [*GOOD_TR, _tr("NL01", "TUMSTATE", "PRESENT", 1, "2024-01-01")],
         "TR.csv:8: lesion NL01 measured at visit 1 before it was identified at visit 2"),
        ([*GOOD_TU, _tu("T01", "TARGET", "LUNG")], GOOD_TR,
         "TU.csv:5: duplicate lesion ID T01 for subject S1"),
        (GOOD_TU, [*GOOD_TR[:3], _tr("T01", "LDIAM", "20", 2, ""), *GOOD_TR[4:]],
         "TR.csv:5: visit V2 of S1 has no date"),
        (GOOD_TU, [*GOOD_TR[:4], _tr("T02", "LPERP", "abc", 2, "2024-02-26"), GOOD_TR[5]],
         "TR.csv:6: 'abc' is not a number"),
        ([_tu("T01", "TARGETT"), *GOOD_TU[1:]], GOOD_TR, "TU.csv:2: unknown tumour category"),
        (GOOD_TU, [*GOOD_TR, _tr("T09", "LDIAM", "3", 2, "2024-02-26")],
         "TR.csv:8: lesion T09 of S1 is not identified in TU"),
    ],
    ids=["unknown-testcd", "measured-before-baseline", "duplicate-id", "no-date", "not-a-number",
         "bad-category", "lesion-not-in-tu"],
)
def test_bad_input_exit_3_names_the_row(tmp_path: Path, capsys, tu, tr, needle) -> None:
    assert main(_case(tmp_path, tu, tr)) == 3
    err = capsys.readouterr().err
    assert needle in " ".join(err.split())
    assert "Traceback" not in err


def test_visit_before_baseline_is_an_error(tmp_path: Path, capsys) -> None:
    tu = [_tu("T01", "TARGET", visitnum=2)]
    tr = [_tr("T01", "LDIAM", "30", 2, "2024-01-01"), _tr("T01", "LDIAM", "30", 1, "2023-12-01")]
    assert main(_case(tmp_path, tu, tr)) == 3
    assert "TR.csv:3: lesion T01 measured at visit 1 before" in capsys.readouterr().err


def test_bad_criteria_is_usage_error(tmp_path: Path) -> None:
    assert main([*_case(tmp_path, GOOD_TU, GOOD_TR), "--criteria", "who"]) == 2


def test_settings_unknown_policy_and_bad_value(tmp_path: Path, capsys) -> None:
    s = tmp_path / "trial.toml"
    s.write_text('[recist]\nsticky_pr = true\n')
    assert main([*_case(tmp_path, GOOD_TU, GOOD_TR), "--settings", str(s)]) == 3
    assert "unknown RECIST policy name(s): sticky_pr" in capsys.readouterr().err
    s.write_text('[recist]\npr_mode = "sometimes"\n')
    assert main([*_case(tmp_path, GOOD_TU, GOOD_TR), "--settings", str(s)]) == 3
    assert "pr_mode='sometimes'" in capsys.readouterr().err
    assert main([*_case(tmp_path, GOOD_TU, GOOD_TR), "--settings",
                 str(tmp_path / "nope.toml")]) == 3


def test_missing_file_exit_3(tmp_path: Path, capsys) -> None:
    args = _case(tmp_path, GOOD_TU, GOOD_TR)
    args[2] = str(tmp_path / "missing.csv")
    assert main(args) == 3
    assert "missing.csv" in capsys.readouterr().err


def test_irecist_new_lesions(tmp_path: Path) -> None:
    tu = [*GOOD_TU, _tu("NLT01", "NEW TARGET", visitnum=2), _tu("NLNT01", "NEW NON-TARGET",
                                                                  visitnum=3)]
    tr = [*GOOD_TR, _tr("NLT01", "LDIAM", "12", 2, "2024-02-26"),
          _tr("T01", "LDIAM", "20", 3, "2024-03-11"), _tr("T02", "LPERP", "15", 3, "2024-03-11"),
          _tr("NT01", "TUMSTATE", "PRESENT", 3, "2024-03-11"),
          _tr("NLT01", "LDIAM", "12", 3, "2024-03-11"),
          _tr("NLNT01", "TUMSTATE", "PRESENT", 3, "2024-03-11")]
    assert main([*_case(tmp_path, tu, tr), "--criteria", "irecist"]) == 0
    rs = _read(tmp_path / "out" / "rs.csv")
    ovr = [r["RSORRES"] for r in rs if r["RSTESTCD"] == "OVRLRESP"]
    assert ovr == ["iUPD", "iCPD"]  # further new lesion 14 days later confirms
    assert {r["RSCAT"] for r in rs} == {"iRECIST"}
    best = _read(tmp_path / "out" / "best_response.csv")[0]
    assert best["BOR"] == "iCPD" and best["PDDT"] == "2024-02-26"
    # the same data under RECIST 1.1: PD at the first new lesion
    assert main(_case(tmp_path, tu, tr)) == 0
    ovr = [r["RSORRES"] for r in _read(tmp_path / "out" / "rs.csv") if r["RSTESTCD"] == "OVRLRESP"]
    assert ovr == ["PD", "PD"]


@pytest.fixture()
def oracles(shared_data: Path) -> Path:
    d = shared_data / "recist_oracles"
    if not (d / "tr_onco_recist.csv").is_file():
        pytest.skip(f"shared test data missing: {d}")
    return d


def test_oracle_end_to_end(tmp_path: Path, oracles: Path) -> None:
    out = tmp_path / "o"
    assert main(["respond", "--tu", str(oracles / "tu_onco_recist.csv"),
                 "--tr", str(oracles / "tr_onco_recist.csv"), "--dm", str(oracles / "dm.csv"),
                 "-o", str(out)]) == 0
    got = {(r["USUBJID"], r["RSEVAL"], r["RSEVALID"], r["VISITNUM"]): (r["RSORRES"], r["RSDTC"])
           for r in _read(out / "rs.csv") if r["RSTESTCD"] == "OVRLRESP"}
    exp = {(r["USUBJID"], r["RSEVAL"], "" if r["RSEVALID"] == "NA" else r["RSEVALID"],
            r["VISITNUM"]): (r["RSORRES"], r["RSDTC"])
           for r in _read(oracles / "rs_onco_recist.csv")}
    assert got == exp and len(got) == 66
    adrs = {(r["USUBJID"], r["PARAMCD"]): (r["AVALC"], r["ADT"])
            for r in _read(oracles / "pharmaverseadam_adrs_onco_8subj.csv")
            if r["PARAMCD"] in ("BOR", "CBOR")}
    best = [r for r in _read(out / "best_response.csv") if r["RSEVAL"] == "INVESTIGATOR"]
    assert len(best) == 8
    for r in best:
        assert (r["BOR"], r["BORDT"]) == adrs[(r["USUBJID"], "BOR")]
        assert (r["CBOR"], r["CBORDT"]) == adrs[(r["USUBJID"], "CBOR")]


def test_oracle_settings_policy_changes_output(tmp_path: Path, oracles: Path) -> None:
    s = tmp_path / "trial.toml"
    s.write_text('[recist]\nreappearance_after_cr = "after_any_cr"\n')
    out = tmp_path / "o"
    assert main(["respond", "--tu", str(oracles / "tu_onco_recist.csv"),
                 "--tr", str(oracles / "tr_onco_recist.csv"), "--settings", str(s),
                 "-o", str(out)]) == 0
    row = next(r for r in _read(out / "rs.csv") if r["USUBJID"] == "01-701-1133"
               and r["RSEVALID"] == "RADIOLOGIST 2" and r["VISIT"] == "WEEK 9"
               and r["RSTESTCD"] == "OVRLRESP")
    assert row["RSORRES"] == "PD"


def test_cdisc_supplement_conventions(tmp_path: Path) -> None:
    """LNSTATE for a nodal non-target, TOO SMALL TO MEASURE standardised to 5, TRSTAT NOT DONE."""
    tu = [_tu("T01", "TARGET"), _tu("T02", "TARGET", "LUNG"),
          _tu("NT01", "NON-TARGET", "LYMPH NODE")]
    tr = [_tr("T01", "LDIAM", "30", 1, "2024-01-01"), _tr("T02", "LDIAM", "20", 1, "2024-01-01"),
          _tr("NT01", "LNSTATE", "PATHOLOGICAL", 1, "2024-01-01"),
          # week 8: T02 too small (counts 5), node normal again → target 25/50 = PR, NT CR → PR
          _tr("T01", "LDIAM", "20", 2, "2024-02-26"),
          {**_tr("T02", "LDIAM", "", 2, "2024-02-26"), "TRORRES": "TOO SMALL TO MEASURE",
           "TRSTRESC": "5", "TRSTRESN": "5"},
          _tr("NT01", "LNSTATE", "NON-PATHOLOGICAL", 2, "2024-02-26"),
          # week 16: T01 not done → NE
          _tr("T01", "LDIAM", "", 3, "2024-04-22", stat="NOT DONE"),
          _tr("T02", "LDIAM", "0", 3, "2024-04-22"),
          _tr("NT01", "LNSTATE", "NON-PATHOLOGICAL", 3, "2024-04-22")]
    assert main(_case(tmp_path, tu, tr)) == 0
    rs = _read(tmp_path / "out" / "rs.csv")
    got = [(r["VISIT"], r["RSTESTCD"], r["RSORRES"]) for r in rs if r["RSTESTCD"] != "NEWLIND"]
    assert got == [("V2", "TRGRESP", "PR"), ("V2", "NTRGRESP", "CR"), ("V2", "OVRLRESP", "PR"),
                   ("V3", "TRGRESP", "NE"), ("V3", "NTRGRESP", "CR"), ("V3", "OVRLRESP", "NE")]
