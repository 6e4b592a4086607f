"""Batch manifests: CSV and TOML reading, planning, and one-line file:line errors."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from recist_tool.batch import ManifestError, plan_cases, read_manifest
from recist_tool.cli import main

HEADER = "subject,visit,date,series_path,series_uid,lesion_id,category,organ,nodal,seed_x,seed_y,seed_z\n"
GOOD = HEADER + (
    "P1,BL,2025-01-02,p1/bl,1.2.3,T01,target,lung,false,1,2,3\n"
    "P1,BL,2025-01-02,p1/bl,1.2.3,nt01,Non-Target,lymph node,TRUE,4,5,6\n"
    "P1,W06,2025-02-13,p1/w06,,,,,,,,\n"
    "P1,W12,2025-03-27,/abs/p1/w12,,NL01,new,liver,no,7.5,-8,9\n"
    "P1,W12,2025-03-27,/abs/p1/w12,,NL02,new,bone,,,,\n"
    "P2,W06,2025-02-20,p2/w06,,,,,,,,\n"
    "P2,BL,2025-01-09,p2/bl,,T01,target,liver,false,0,0,0\n"
)


def _write(tmp_path: Path, text: str, name: str = "m.csv") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_csv_manifest_groups_rows_into_cases(tmp_path: Path) -> None:
    cases = read_manifest(_write(tmp_path, GOOD))
    assert [c.key for c in cases] == [("P1", "BL"), ("P1", "W06"), ("P1", "W12"), ("P2", "W06"),
                                      ("P2", "BL")]
    bl = cases[0]
    assert bl.date == dt.date(2025, 1, 2) and bl.series_uid == "1.2.3"
    assert bl.series_path == str(tmp_path / "p1" / "bl")
    assert [(les.lesion_id, les.category, les.nodal, les.seed_lps) for les in bl.lesions] == [
        ("T01", "target", False, (1.0, 2.0, 3.0)), ("NT01", "non-target", True, (4.0, 5.0, 6.0))]
    assert cases[1].lesions == () and cases[1].series_uid is None
    w12 = cases[2]
    assert w12.series_path == "/abs/p1/w12"
    assert [(les.lesion_id, les.seed_lps) for les in w12.lesions] == [("NL01", (7.5, -8.0, 9.0)),
                                                                       ("NL02", None)]
    assert bl.where == f"{tmp_path / 'm.csv'}:2"


def test_plan_puts_the_baseline_first(tmp_path: Path) -> None:
    plans = plan_cases(read_manifest(_write(tmp_path, GOOD)))
    assert [(p.subject, p.baseline.visit, [f.visit for f in p.followups]) for p in plans] == [
        ("P1", "BL", ["W06", "W12"]), ("P2", "BL", ["W06"])]


def test_toml_manifest_equals_csv(tmp_path: Path) -> None:
    toml = '''
# the same trial as GOOD, subject P1 only
[[case]]
subject = "P1"
visit = "BL"
date = 2025-01-02
series_path = "p1/bl"
series_uid = "1.2.3"
lesions = [
  { lesion_id = "T01", category = "target", organ = "lung", nodal = false, seed = [1, 2, 3] },
  { lesion_id = "NT01", category = "non-target", organ = "lymph node", nodal = true, seed = [4, 5, 6] },
]

[[case]]
subject = "P1"
visit = "W06"
date = "2025-02-13"
series_path = "p1/w06"
'''
    cases = read_manifest(_write(tmp_path, toml, "m.toml"))
    csv_cases = read_manifest(_write(tmp_path, GOOD))
    assert [c.key for c in cases] == [("P1", "BL"), ("P1", "W06")]
    for a, b in zip(cases, csv_cases[:2], strict=True):
        assert (a.date, a.series_path, a.series_uid) == (b.date, b.series_path, b.series_uid)
        assert [(x.lesion_id, x.category, x.organ, x.nodal, x.seed_lps) for x in a.lesions] == [
            (x.lesion_id, x.category, x.organ, x.nodal, x.seed_lps) for x in b.lesions]
    assert cases[1].where.endswith("m.toml:14")


@pytest.mark.parametrize(("row", "line", "message"), [
    ("P1,BL,2025-13-01,p,,T01,target,lung,false,1,2,3", 2, "not an ISO date"),
    ("P1,BL,2025-01-02,p,,T01,tumour,lung,false,1,2,3", 2, "category 'tumour'"),
    ("P1,BL,2025-01-02,p,,T01,target,lung,maybe,1,2,3", 2, "nodal 'maybe'"),
    ("P1,BL,2025-01-02,p,,T01,target,lung,false,1,,3", 2, "all three of seed_x"),
    ("P1,BL,2025-01-02,p,,T01,target,lung,false,1,x,3", 2, "not three numbers"),
    ("P1,BL,2025-01-02,p,,T01,target,lung,false,1,2", 2, "fewer fields"),
    ("P1,BL,2025-01-02,p,,T01,target,lung,false,1,2,3,4", 2, "more fields"),
    (",BL,2025-01-02,p,,T01,target,lung,false,1,2,3", 2, "subject is empty"),
    ("P1,BL,2025-01-02,p,,,target,lung,false,1,2,3", 2, "without a lesion_id"),
    ("P1,BL,2025-01-02,p,,T 01,target,lung,false,1,2,3", 2, "not a lesion code"),
    ("P1,BL,2025-01-02,p,,T01,target,lung,false,1,2,3\nP1,BL,2025-01-03,p,,T02,target,lung,false,1,2,3",
     3, "date differs"),
    ("P1,BL,2025-01-02,p,,T01,target,lung,false,1,2,3\nP1,BL,2025-01-02,p,,t01,target,lung,false,1,2,3",
     3, "listed twice"),
])
def test_malformed_csv_rows_name_file_and_line(tmp_path: Path, row: str, line: int,
                                               message: str) -> None:
    path = _write(tmp_path, HEADER + row + "\n")
    with pytest.raises(ManifestError, match=message) as exc:
        read_manifest(path)
    assert str(exc.value).startswith(f"{path}:{line}: ")
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize(("text", "line", "message"), [
    ("subject,visit,date\nP1,BL,2025-01-02\n", 1, "missing column"),
    (HEADER.replace("seed_z", "seed_q"), 1, "unknown column"),
    (HEADER, 1, "lists no series"),
])
def test_bad_csv_header(tmp_path: Path, text: str, line: int, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ManifestError, match=message) as exc:
        read_manifest(path)
    assert str(exc.value).startswith(f"{path}:{line}: ")


@pytest.mark.parametrize(("text", "line", "message"), [
    ('[[case]]\nsubject = "P1"\nvisit = "BL"\ndate = 2025-01-02\nseries_path = "p"\n'
     'lesions = [{ lesion_id = "T01", category = "target", seed = [1, 2] }]\n', 6, "seed must be"),
    ('[[case]]\nsubject = "P1"\n\n[[case]]\nsubject = "P2"\nvisit = "BL"\n', 1, "visit is empty"),
    ('title = "x"\n[[case]]\nsubject = "P1"\nvisit = "BL"\ndate = 2025-01-02\nseries_path = "p"\n'
     'colour = "red"\n', 2, "unknown key"),
    ('[[case]]\nsubject = "P1"\nvisit = \n', 3, "not valid TOML"),
    ('x = 1\n', 1, "no \\[\\[case\\]\\]"),
])
def test_malformed_toml_names_file_and_line(tmp_path: Path, text: str, line: int,
                                            message: str) -> None:
    path = _write(tmp_path, text, "m.toml")
    with pytest.raises(ManifestError, match=message) as exc:
        read_manifest(path)
    assert str(exc.value).startswith(f"{path}:{line}: ")


@pytest.mark.parametrize(("rows", "message"), [
    ("P1,BL,2025-01-02,p,,,,,,,,\n", "lists no lesions"),
    ("P1,BL,2025-01-02,p,,T01,target,lung,false,,,\n", "needs a seed"),
    ("P1,BL,2025-01-02,p,,NL01,new,lung,false,1,2,3\n", "'new' at baseline"),
    ("P1,BL,2025-01-02,p,,T01,target,lung,false,1,2,3\nP1,W06,2025-02-02,q,,T02,target,lung,false,1,2,3\n",
     "category must be 'new'"),
    ("P1,BL,2025-01-02,p,,T01,target,lung,false,1,2,3\nP1,W06,2025-02-02,q,,T01,target,lung,false,,,\n",
     "tracked from baseline"),
    ("P1,BL,2025-01-02,p,,T01,target,lung,false,1,2,3\nP1,W06,2025-01-02,q,,,,,,,,\n", "share the date"),
])
def test_planning_errors(tmp_path: Path, rows: str, message: str) -> None:
    path = _write(tmp_path, HEADER + rows)
    with pytest.raises(ManifestError, match=message) as exc:
        plan_cases(read_manifest(path))
    assert str(exc.value).startswith(f"{path}:")


def test_cli_malformed_manifest_exit_3_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                ) -> None:
    path = _write(tmp_path, HEADER + "P1,BL,2025-01-02,p,,T01,target,lung,false,1,2\n")
    code = main(["batch", str(path), "--db", str(tmp_path / "r.db"), "-o", str(tmp_path / "out"),
                 "--workers", "0"])
    err = capsys.readouterr().err.strip()
    assert code == 3
    assert len(err.splitlines()) == 1 and f"{path}:2: fewer fields" in err
    assert not (tmp_path / "r.db").exists()


LINE_HEADER = HEADER.strip() + ",line_x1,line_y1,line_z1,line_x2,line_y2,line_z2\n"


def test_a_lesion_may_be_given_by_its_caliper_line(tmp_path: Path) -> None:
    """``line_*`` columns (CSV) or ``line = [[...], [...]]`` (TOML): the reader's long axis in
    LPS mm; without a seed the line's midpoint seeds the lesion."""
    text = LINE_HEADER + (
        "P1,BL,2025-01-02,p1/bl,,T01,target,liver,false,,,,10,20,30,50,20,30\n"
        "P1,BL,2025-01-02,p1/bl,,T02,target,lung,false,1,2,3,0,0,0,4,3,0\n"
        "P1,BL,2025-01-02,p1/bl,,NT01,non-target,lung,false,5,5,5,,,,,,\n")
    cases = read_manifest(_write(tmp_path, text))
    t01, t02, nt01 = cases[0].lesions
    assert t01.line_lps == ((10.0, 20.0, 30.0), (50.0, 20.0, 30.0))
    assert t01.seed_lps == (30.0, 20.0, 30.0)
    assert t02.seed_lps == (1.0, 2.0, 3.0) and t02.line_lps == ((0.0, 0.0, 0.0), (4.0, 3.0, 0.0))
    assert nt01.line_lps is None
    toml = ('[[case]]\nsubject = "P1"\nvisit = "BL"\ndate = "2025-01-02"\nseries_path = "p1"\n'
            '[[case.lesions]]\nlesion_id = "T01"\ncategory = "target"\n'
            'line = [[10, 20, 30], [50, 20, 30]]\n')
    les = read_manifest(_write(tmp_path, toml, "m.toml"))[0].lesions[0]
    assert les.line_lps == t01.line_lps and les.seed_lps == t01.seed_lps
    plan_cases(cases)  # a lesion seeded by its line alone is a valid baseline lesion


@pytest.mark.parametrize(("row", "message"), [
    ("T01,target,liver,false,,,,10,20,30,50,20,\n", "a line needs all six of line_x1"),
    ("T01,target,liver,false,,,,10,20,30,10,20,30\n", "zero length"),
    ("T01,target,liver,false,,,,10,20,x,50,20,30\n", "is not six numbers"),
    ("T01,target,liver,false,,,,10,20,nan,50,20,30\n", "finite"),
])
def test_bad_lines_name_file_and_line(tmp_path: Path, row: str, message: str, capsys) -> None:
    path = _write(tmp_path, LINE_HEADER + "P1,BL,2025-01-02,p1/bl,," + row)
    with pytest.raises(ManifestError, match=message) as err:
        read_manifest(path)
    assert str(err.value).startswith(f"{path}:2: ")
    toml = ('[[case]]\nsubject = "P1"\nvisit = "BL"\ndate = "2025-01-02"\nseries_path = "p1"\n'
            '[[case.lesions]]\nlesion_id = "T01"\ncategory = "target"\nline = [[1, 2, 3]]\n')
    with pytest.raises(ManifestError, match=r"line must be \[\[x1"):
        read_manifest(_write(tmp_path, toml, "m.toml"))
