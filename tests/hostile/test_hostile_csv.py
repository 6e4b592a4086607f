"""CSV formula injection (issue #37 item 3): a text cell starting with ``=``, ``+``, ``-``, ``@``, tab
or carriage return is written with a single quote in front, in every CSV the tool writes; numbers
(negative ones too) stay numbers. Files are read back with the ``csv`` module."""

from __future__ import annotations

import csv
import datetime as dt
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from recist_tool.cli import main
from recist_tool.io.outputs import csv_cell, write_csv
from tests.hostile.hostile_inputs import CORPUS, FORMULA_CELLS, PLAIN_CELLS

READER, PASSWORD = "rad1", "rad1-password"
HOSTILE_ORGAN = '=HYPERLINK("http://example.invalid","liver")'


@pytest.fixture(autouse=True)
def _fast_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECIST_SCRYPT_N", "1024")


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _store(path: Path):  # noqa: ANN202 - TrialStore
    """S1: T01 (organ :data:`HOSTILE_ORGAN`) 30 → 20 mm (-33.3 %), NT01 present; signed."""
    from recist_tool.store import TrialStore

    s = TrialStore(path)
    s.add_reader(READER, PASSWORD, full_name="Reader One")
    s.add_trial("T1")
    s.add_subject("T1", "S1", reference_date=dt.date(2026, 1, 2))
    s.add_timepoint("S1", "BL", dt.date(2026, 1, 2))
    s.add_timepoint("S1", "W6", dt.date(2026, 2, 13))
    s.add_lesion("S1", "BL", "T01", "TARGET", reader=READER, organ=HOSTILE_ORGAN)
    s.add_lesion("S1", "BL", "NT01", "NON-TARGET", reader=READER, organ="-LIVER")
    s.record_measurement("S1", "BL", "T01", reader=READER, long_axis_mm="30.0",
                         segmenter="@evil", method="automatic")
    s.assess_non_target("S1", "BL", "NT01", "PRESENT", reader=READER)
    s.record_measurement("S1", "W6", "T01", reader=READER, long_axis_mm="20.0")
    s.assess_non_target("S1", "W6", "NT01", "PRESENT", reader=READER)
    s.compute_responses("S1", reader=READER)
    for v in ("BL", "W6"):
        s.sign("S1", v, reader=READER, password=PASSWORD)
    return s


# --- the rule ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "written"), FORMULA_CELLS.items())
def test_formula_cells_get_a_quote(text: str, written: str) -> None:
    assert csv_cell(text) == written


@pytest.mark.parametrize("text", PLAIN_CELLS)
def test_plain_cells_stay(text: str) -> None:
    assert csv_cell(text) == text


def test_numbers_stay_numbers(tmp_path: Path) -> None:
    assert csv_cell(-12.5) == -12.5 and csv_cell(Decimal("-0.1")) == Decimal("-0.1")
    assert csv_cell(-3) == -3 and csv_cell(None) == "" and csv_cell(True) == "True"
    path = tmp_path / "x.csv"
    n = write_csv(path, ["a", "b", "c"], [{"a": -12.5, "b": "-12.5", "c": "=1+1"},
                                          [Decimal("-3.0"), "@x", None]],
                  quoting=csv.QUOTE_NONNUMERIC)
    assert n == 2
    assert path.read_text().splitlines() == ['"a","b","c"', '-12.5,"-12.5","\'=1+1"',
                                             '-3.0,"\'@x",""']


def test_rows_must_fit_the_columns(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="outside the columns: z"):
        write_csv(tmp_path / "x.csv", ["a"], [{"a": 1, "z": 2}])
    with pytest.raises(ValueError, match="2 values for 1 columns"):
        write_csv(tmp_path / "x.csv", ["a"], [[1, 2]])


# --- batch: responses.csv, measurements.csv, best_response.csv -----------------------------------

def test_batch_csvs(tmp_path: Path) -> None:
    from recist_tool.batch.persist import (
        BEST_COLUMNS,
        MEASUREMENT_COLUMNS,
        RESPONSE_COLUMNS,
        BestRow,
        best_responses,
        collect_outputs,
        write_csv,
    )

    with _store(tmp_path / "t.db") as s:
        resp, meas, errors = collect_outputs(s, ["S1"], reader=READER)
        best = best_responses(s, resp)
    assert errors == {}
    # a database changed behind the application's back can hold any text
    best.append(BestRow("=1+1", "+RECIST", "-PR", None, "@CR", None, None, None))
    out = tmp_path / "results"
    write_csv(out / "responses.csv", RESPONSE_COLUMNS, resp)
    write_csv(out / "measurements.csv", MEASUREMENT_COLUMNS, meas)
    write_csv(out / "best_response.csv", BEST_COLUMNS, best)
    m = {r["lesion_id"] + r["visit"]: r for r in _rows(out / "measurements.csv")}
    assert m["T01BL"]["organ"] == "'" + HOSTILE_ORGAN and m["NT01BL"]["organ"] == "'-LIVER"
    assert m["T01BL"]["segmenter"] == "'@evil" and m["T01BL"]["long_axis_mm"] == "30.0"
    r = {x["visit"]: x for x in _rows(out / "responses.csv")}
    assert r["W6"]["pct_change_from_baseline"] == "-33.3"  # a negative number stays a number
    assert r["W6"]["overall_response"] == "PR" and r["W6"]["sod_mm"] == "20.0"
    b = _rows(out / "best_response.csv")
    assert (b[0]["subject"], b[0]["best_response"]) == ("S1", "PR")
    assert [b[1][c] for c in ("subject", "criteria", "best_response", "confirmed_best_response")] \
        == ["'=1+1", "'+RECIST", "'-PR", "'@CR"]
    assert not any(p.name.startswith(".") for p in out.iterdir())  # no temporary file left


# --- recist respond: rs.csv, best_response.csv ---------------------------------------------------

def test_respond_csvs(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["respond", "--tu", str(CORPUS / "tu_formula.csv"),
                 "--tr", str(CORPUS / "tr_formula.csv"), "-o", str(out)]) == 0
    rs = _rows(out / "rs.csv")
    assert len(rs) == 4 and {r["RSTESTCD"]: r["RSORRES"] for r in rs}["OVRLRESP"] == "PR"
    for r in rs:
        assert r["STUDYID"] == "'=cmd|'/C calc'!A0"
        assert r["RSEVAL"] == "'@SUM(1+1)*cmd|'/C calc'!A0"
        assert r["VISIT"] == "'+HYPERLINK(\"http://example.invalid\")"
        assert r["VISITNUM"] == "2" and r["USUBJID"] == "S1"
    best = _rows(out / "best_response.csv")
    assert best[0]["STUDYID"] == "'=cmd|'/C calc'!A0" and best[0]["BOR"] == "PR"


# --- EDC exports: redcap_import.csv and the SDTM CSVs --------------------------------------------

def test_redcap_and_sdtm_csvs(tmp_path: Path) -> None:
    from recist_tool.export import run_export

    with _store(tmp_path / "t.db") as s:
        redcap = run_export(s, "redcap", tmp_path / "redcap")
        sdtm = run_export(s, "sdtm", tmp_path / "sdtm")
    imp = _rows(next(p for p in redcap if p.name == "redcap_import.csv"))
    locs = {r["tl_loc"] for r in imp if r.get("tl_loc")}
    assert locs == {"'" + HOSTILE_ORGAN}
    assert {r["tl_diam"] for r in imp if r.get("tl_diam")} == {"30.0", "20.0"}
    assert {r["ntl_loc"] for r in imp if r.get("ntl_loc")} == {"'-LIVER"}
    tu = _rows(next(p for p in sdtm if p.name == "tu.csv"))
    assert {r["TULOC"] for r in tu} == {"'" + HOSTILE_ORGAN.upper(), "'-LIVER"}


# --- the trial report's plotted_values.csv and the SR import's manifest --------------------------

def test_plotted_values_csv(tmp_path: Path) -> None:
    from sqlalchemy import text

    from recist_tool.report import build_reports

    with _store(tmp_path / "t.db") as s:
        with s.engine.begin() as conn:  # behind the application's back
            conn.execute(text("UPDATE subject SET code = '=1+1'"))
        build_reports(s, tmp_path / "rep", subject_reports=False)
    rows = _rows(tmp_path / "rep" / "plotted_values.csv")
    assert rows and {r["subject"] for r in rows} == {"'=1+1"}
    assert "-33.33" in {r["pct_change_from_baseline"] for r in rows}  # a number stays


def test_sr_import_manifest(tmp_path: Path) -> None:
    from recist_tool.batch.sr_import import SrImport, write_manifest
    from recist_tool.io.sr import ImportedLesion

    les = ImportedLesion("T01", "TARGET", "@liver", False, 21.3, None, np.zeros((2, 3)), None, 3,
                         np.array([-20.5, 10.0, -100.25]))
    imp = SrImport("S1", "BL", dt.date(2026, 1, 2), str(tmp_path / "ct"), None, None, [les],
                   None)  # type: ignore[arg-type]
    row = _rows(write_manifest(imp, tmp_path / "m.csv"))[0]
    assert row["organ"] == "'@liver"
    assert (row["seed_x"], row["seed_z"]) == ("-20.50", "-100.25")
