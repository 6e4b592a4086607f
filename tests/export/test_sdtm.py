"""SDTM TU/TR/RS export: round trip through ``recist respond``, XPT v5 and Dataset-JSON 1.1."""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from decimal import Decimal
from pathlib import Path

import pytest

from recist_tool.cli import main
from recist_tool.errors import InputError
from recist_tool.export import collect, run_export
from recist_tool.export.sdtm import Domain, Variable, build_sdtm, check_xpt_v5, dataset_json
from recist_tool.io.sdtm_csv import read_sdtm_csv
from recist_tool.recist.sdtm import respond
from recist_tool.store import TrialStore
from tests.export.conftest import READER, READER_PASSWORD, ScoredTrial, SignedTrial

pyreadstat = pytest.importorskip("pyreadstat", reason="pyreadstat (XPT writer) not installed")
RS_KEYS = ("USUBJID", "VISITNUM", "RSTESTCD", "RSSTRESC")


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _export(db: Path, fmt: str, out: Path, **kw) -> list[Path]:  # noqa: ANN003
    with TrialStore(db, read_only=True) as store:
        return run_export(store, fmt, out, **kw)


def _visitnum(text: str) -> Decimal:
    return Decimal(text).normalize()


def _rs_set(rows: list[dict[str, str]]) -> set[tuple[str, ...]]:
    return {(r["USUBJID"], str(_visitnum(r["VISITNUM"])), r["RSTESTCD"], r["RSSTRESC"])
            for r in rows if r["RSTESTCD"] != "BESTRESP"}


@pytest.mark.slow  # session fixture: the sample trial scored once (~40 s)
def test_round_trip_through_recist_respond(signed_trial: SignedTrial, tmp_path: Path) -> None:
    """TU/TR read back by the engine give the exported RS, visit by visit, and the same BOR."""
    files = _export(signed_trial.db_path, "sdtm", tmp_path / "sdtm")
    assert sorted(p.name for p in files) == ["rs.csv", "rs.xpt", "tr.csv", "tr.xpt", "tu.csv",
                                             "tu.xpt"]  # signed: no SUPP-- data sets
    rs = _rows(tmp_path / "sdtm" / "rs.csv")
    result = respond(read_sdtm_csv(tmp_path / "sdtm" / "tu.csv"),
                     read_sdtm_csv(tmp_path / "sdtm" / "tr.csv"))
    assert result.n_records == 3
    assert _rs_set(list(result.rs)) == _rs_set(rs)
    assert {r["RSTESTCD"] for r in rs} >= {"TRGRESP", "NTRGRESP", "NEWLIND", "OVRLRESP", "BESTRESP"}
    best = {r["USUBJID"]: r["RSSTRESC"] for r in rs if r["RSTESTCD"] == "BESTRESP"}
    assert best == {r["USUBJID"]: r["BOR"] for r in result.best}
    # and the same through the command line
    assert main(["respond", "--tu", str(tmp_path / "sdtm" / "tu.csv"), "--tr",
                 str(tmp_path / "sdtm" / "tr.csv"), "-o", str(tmp_path / "cli")]) == 0
    assert _rs_set(_rows(tmp_path / "cli" / "rs.csv")) == _rs_set(rs)


@pytest.mark.slow  # session fixture: the sample trial scored once (~40 s)
def test_exported_responses_are_the_stored_ones(signed_trial: SignedTrial,
                                                scored_trial: ScoredTrial, tmp_path: Path) -> None:
    """OVRLRESP per visit equals the store's confirmed response and the trial's ground truth."""
    _export(signed_trial.db_path, "sdtm", tmp_path)
    rs = _rows(tmp_path / "rs.csv")
    got = {(r["USUBJID"], r["VISIT"]): r["RSSTRESC"] for r in rs if r["RSTESTCD"] == "OVRLRESP"}
    truth = {}
    for subj, t in scored_trial.ground_truth["subjects"].items():
        for visit, tp in t["timepoints"].items():
            if tp["overall_response"] is not None:
                truth[(f"ES-SCLC-SYN-{signed_trial.codes[subj]}", visit)] = tp["overall_response"]
    assert got == truth
    with TrialStore(signed_trial.db_path, read_only=True) as store:
        for (usubjid, visit), value in got.items():
            code = usubjid.removeprefix("ES-SCLC-SYN-")
            resp = store.get_read(code, visit, reader=READER).response
            assert value == (resp.confirmed_overall or resp.overall)


@pytest.mark.slow  # session fixture: the sample trial scored once (~40 s)
def test_tu_tr_conventions(signed_trial: SignedTrial, tmp_path: Path) -> None:
    _export(signed_trial.db_path, "sdtm", tmp_path)
    tu, tr = _rows(tmp_path / "tu.csv"), _rows(tmp_path / "tr.csv")
    assert {r["TUTESTCD"] for r in tu} == {"TUMIDENT"}
    assert {r["TUSTRESC"] for r in tu} == {"TARGET", "NON-TARGET", "NEW"}
    assert all(r["USUBJID"] == f"{r['STUDYID']}-P-000{r['USUBJID'][-1]}" for r in tu)
    assert {r["TUEVAL"] for r in tu} == {"INDEPENDENT ASSESSOR"}
    assert {r["TUEVALID"] for r in tu} == {"RADIOLOGIST 1"}  # the role, never the login
    new = [r for r in tu if r["TUSTRESC"] == "NEW"]
    assert new and all(r["VISIT"] != "BL" for r in new)  # identified where they appear
    with TrialStore(signed_trial.db_path, read_only=True) as store:
        code = "P-0002"
        for r in (r for r in tr if r["USUBJID"].endswith(code) and r["TRTESTCD"] in ("LDIAM", "LPERP")
                  and r["TRGRPID"] == "TARGET"):
            m = next(x for x in store.get_read(code, r["VISIT"], reader=READER).measurements
                     if x.lesion_id == r["TRLNKID"])
            assert r["TRTESTCD"] == ("LPERP" if m.nodal else "LDIAM")
            assert Decimal(r["TRSTRESN"]) == m.diameter_mm and r["TRSTRESU"] == "mm"
    sums = [r for r in tr if r["TRTESTCD"] == "SUMDIAM"]
    assert len(sums) == 9 and all(r["TRLNKID"] == "" and r["TRGRPID"] == "TARGET" for r in sums)
    # SUMDIAM is the sum of the visit's target values, exactly
    for s in sums:
        parts = [Decimal(r["TRSTRESN"]) for r in tr if r["USUBJID"] == s["USUBJID"]
                 and r["VISIT"] == s["VISIT"] and r["TRGRPID"] == "TARGET"
                 and r["TRTESTCD"] in ("LDIAM", "LPERP")]
        assert sum(parts) == Decimal(s["TRSTRESN"])
    assert {r["TRLNKGRP"] for r in tr} == {"BL", "W06", "W12"}
    assert all(r["TRSEQ"] == str(i) for i, r in enumerate(
        (r for r in tr if r["USUBJID"].endswith("P-0001")), start=1))


def _hand_store(path: Path) -> TrialStore:
    """One subject with too-small, disappeared, not-evaluated targets and a progressing NT."""
    s = TrialStore(path)
    s.add_reader(READER, READER_PASSWORD, full_name="Reader One")
    s.add_trial("T1", criteria="RECIST 1.1")
    s.add_subject("T1", "S1", patient_id="PAT-9", reference_date=dt.date(2026, 1, 2))
    for v, d in (("BL", dt.date(2026, 1, 2)), ("W6", dt.date(2026, 2, 13)),
                 ("W12", dt.date(2026, 3, 27))):
        s.add_timepoint("S1", v, d)
    for lid, cat, organ, nodal in (("T01", "TARGET", "LUNG", False),
                                   ("T02", "TARGET", "MEDIASTINUM", True),
                                   ("T03", "TARGET", "LIVER", False),
                                   ("NT01", "NON-TARGET", "BONE", False)):
        s.add_lesion("S1", "BL", lid, cat, reader=READER, organ=organ, nodal=nodal)
    s.record_measurement("S1", "BL", "T01", reader=READER, long_axis_mm="30.0")
    s.record_measurement("S1", "BL", "T02", reader=READER, long_axis_mm="25", short_axis_mm="20")
    s.record_measurement("S1", "BL", "T03", reader=READER, long_axis_mm="12.5")
    s.assess_non_target("S1", "BL", "NT01", "PRESENT", reader=READER)
    s.record_measurement("S1", "W6", "T01", reader=READER, state="TOO SMALL TO MEASURE")
    s.record_measurement("S1", "W6", "T02", reader=READER, long_axis_mm="14", short_axis_mm="8")
    s.record_measurement("S1", "W6", "T03", reader=READER, state="ABSENT")
    s.assess_non_target("S1", "W6", "NT01", "PRESENT", reader=READER)
    s.record_measurement("S1", "W12", "T01", reader=READER, long_axis_mm="9.8")
    s.record_measurement("S1", "W12", "T02", reader=READER, state="NOT EVALUATED")
    s.record_measurement("S1", "W12", "T03", reader=READER, state="ABSENT")
    s.assess_non_target("S1", "W12", "NT01", "UNEQUIVOCAL PROGRESSION", reader=READER)
    s.record_new_lesion("S1", "W12", "NL01", reader=READER, organ="LIVER", equivocal=True)
    s.compute_responses("S1", reader=READER)
    for v in ("BL", "W6", "W12"):
        s.sign("S1", v, reader=READER, password=READER_PASSWORD)
    return s


def test_special_states_round_trip(tmp_path: Path, fast_scrypt: None) -> None:
    store = _hand_store(tmp_path / "h.db")
    files = run_export(store, "sdtm", tmp_path / "out")
    store.close()
    tr = _rows(tmp_path / "out" / "tr.csv")
    small = next(r for r in tr if r["VISIT"] == "W6" and r["TRLNKID"] == "T01")
    assert (small["TRORRES"], small["TRSTRESC"], small["TRSTRESN"]) == (
        "TOO SMALL TO MEASURE", "TOO SMALL TO MEASURE", "5")
    gone = next(r for r in tr if r["VISIT"] == "W6" and r["TRLNKID"] == "T03")
    assert gone["TRSTRESN"] == "0"
    node = next(r for r in tr if r["VISIT"] == "W6" and r["TRLNKID"] == "T02")
    assert (node["TRTESTCD"], node["TRSTRESN"]) == ("LPERP", "8")
    ne = next(r for r in tr if r["VISIT"] == "W12" and r["TRLNKID"] == "T02")
    assert (ne["TRSTAT"], ne["TRSTRESN"]) == ("NOT DONE", "")
    up = next(r for r in tr if r["VISIT"] == "W12" and r["TRLNKID"] == "NT01")
    assert (up["TRTESTCD"], up["TRSTRESC"]) == ("TUMSTATE", "UNEQUIVOCAL PROGRESSION")
    nl = next(r for r in tr if r["TRLNKID"] == "NL01")
    assert (nl["TRGRPID"], nl["TRSTRESC"]) == ("NEW", "EQUIVOCAL")
    tu = _rows(tmp_path / "out" / "tu.csv")
    assert next(r for r in tu if r["TULNKID"] == "T02")["TULOC"] == "LYMPH NODE"
    rs = _rows(tmp_path / "out" / "rs.csv")
    ovr = {r["VISIT"]: r["RSSTRESC"] for r in rs if r["RSTESTCD"] == "OVRLRESP"}
    assert ovr == {"W6": "PR", "W12": "PD"}
    result = respond(read_sdtm_csv(tmp_path / "out" / "tu.csv"),
                     read_sdtm_csv(tmp_path / "out" / "tr.csv"))
    assert _rs_set(list(result.rs)) == _rs_set(rs)
    assert any(p.name == "tr.xpt" for p in files)


@pytest.mark.slow  # session fixture: the sample trial scored once (~40 s)
def test_xpt_v5_read_back(signed_trial: SignedTrial, tmp_path: Path) -> None:
    _export(signed_trial.db_path, "sdtm", tmp_path)
    for name in ("tu", "tr", "rs"):
        df, meta = pyreadstat.read_xport(str(tmp_path / f"{name}.xpt"))
        csv_rows = _rows(tmp_path / f"{name}.csv")
        assert meta.table_name == name.upper() and len(df) == len(csv_rows)
        assert list(df.columns) == list(csv_rows[0])
        assert all(len(c) <= 8 for c in df.columns)
        assert all(len(label) <= 40 for label in meta.column_labels)
        for col in df.columns:
            for got, want in zip(df[col].tolist(), (r[col] for r in csv_rows), strict=True):
                if isinstance(got, float):
                    assert (want == "" and got != got) or abs(got - float(want)) < 1e-9, col
                else:
                    assert got == want and len(got) <= 200, col


def test_xpt_limits_are_enforced() -> None:
    ok = Domain("TR", "Tumor/Lesion Results", (Variable("TRLOC", "Location"),), [{"TRLOC": "A"}])
    check_xpt_v5(ok)
    with pytest.raises(InputError, match="longer than 8"):
        check_xpt_v5(Domain("TR", "x", (Variable("TOOLONGNAME", "x"),)))
    with pytest.raises(InputError, match="longer than 40"):
        check_xpt_v5(Domain("TR", "x", (Variable("A", "L" * 41),)))
    with pytest.raises(InputError, match="longer than 200"):
        check_xpt_v5(Domain("TR", "x", (Variable("A", "a"),), [{"A": "x" * 201}]))
    with pytest.raises(InputError, match="not ASCII"):
        check_xpt_v5(Domain("TR", "x", (Variable("A", "a"),), [{"A": "côlon"}]))


_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?(\.\d+)?((\+|-)\d{2}:\d{2}|Z)?$")
#: Dataset-JSON 1.1 top-level and column attributes in the specification's order.
_TOP = ["datasetJSONCreationDateTime", "datasetJSONVersion", "fileOID", "dbLastModifiedDateTime",
        "originator", "sourceSystem", "studyOID", "metaDataVersionOID", "metaDataRef",
        "itemGroupOID", "records", "name", "label", "columns", "rows"]
_COL = ["itemOID", "name", "label", "dataType", "targetDataType", "length", "displayFormat",
        "keySequence"]
_SCHEMA = {  # the Dataset-JSON 1.1 JSON schema's constraints on what this exporter writes
    "type": "object",
    "required": ["datasetJSONCreationDateTime", "datasetJSONVersion", "itemGroupOID", "records",
                 "name", "label", "columns"],
    "properties": {
        "datasetJSONCreationDateTime": {"type": "string", "pattern": _DATETIME.pattern},
        "datasetJSONVersion": {"type": "string", "pattern": r"^1\.1(\.(0|([1-9][0-9]*)))?$"},
        "sourceSystem": {"type": "object", "required": ["name", "version"],
                         "properties": {"name": {"type": "string"}, "version": {"type": "string"}},
                         "additionalProperties": False},
        "records": {"type": "integer", "minimum": 0},
        "columns": {"type": "array", "items": {
            "type": "object", "additionalProperties": False,
            "required": ["itemOID", "name", "label", "dataType"],
            "properties": {
                "itemOID": {"type": "string", "minLength": 1},
                "name": {"type": "string", "minLength": 1}, "label": {"type": "string"},
                "dataType": {"enum": ["string", "integer", "decimal", "float", "double",
                                      "boolean", "datetime", "date", "time", "URI"]},
                "targetDataType": {"enum": ["integer", "decimal"]},
                "length": {"type": "integer", "minimum": 1},
                "displayFormat": {"type": "string"},
                "keySequence": {"type": "integer", "minimum": 1}}}},
        "rows": {"type": "array", "items": {"type": "array", "items": {
            "type": ["string", "integer", "number", "boolean", "null"]}}},
    },
    "additionalProperties": False,
}


@pytest.mark.slow  # session fixture: the sample trial scored once (~40 s)
def test_dataset_json_1_1_shape(signed_trial: SignedTrial, tmp_path: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    files = _export(signed_trial.db_path, "dataset-json", tmp_path / "dj")
    _export(signed_trial.db_path, "sdtm", tmp_path / "csv")
    assert sorted(p.name for p in files) == ["rs.json", "tr.json", "tu.json"]
    for p in files:
        obj = json.loads(p.read_text(encoding="utf-8"))
        schema = {**_SCHEMA, "properties": {**_SCHEMA["properties"],
                                            **{k: {} for k in _TOP if k not in _SCHEMA["properties"]}}}
        jsonschema.validate(obj, schema)
        keys = list(obj)
        assert keys == [k for k in _TOP if k in obj]  # the specification's attribute order
        assert obj["datasetJSONVersion"] == "1.1.0" and obj["records"] == len(obj["rows"])
        assert obj["name"] == p.stem.upper() and obj["itemGroupOID"] == f"IG.{obj['name']}"
        cols = obj["columns"]
        for c in cols:
            assert list(c) == [k for k in _COL if k in c]
            if c["dataType"] == "decimal":
                assert c["targetDataType"] == "decimal"
        csv_rows = _rows(tmp_path / "csv" / f"{p.stem}.csv")
        assert [c["name"] for c in cols] == list(csv_rows[0])
        for row, want in zip(obj["rows"], csv_rows, strict=True):
            assert len(row) == len(cols)
            for c, v in zip(cols, row, strict=True):
                if c["dataType"] == "integer":
                    assert isinstance(v, int) and str(v) == want[c["name"]]
                elif c["dataType"] == "decimal":  # exact decimal as a string, or null
                    assert (v is None and want[c["name"]] == "") or (
                        isinstance(v, str) and Decimal(v) == Decimal(want[c["name"]]))
                else:  # a missing text value is null, not ""
                    assert v == (want[c["name"]] or None)


def test_dataset_json_keeps_decimals_exact() -> None:
    d = Domain("TR", "Tumor/Lesion Results",
               (Variable("TRSEQ", "Sequence Number", "integer"),
                Variable("TRSTRESN", "Numeric Result", "decimal")),
               [{"TRSEQ": 1, "TRSTRESN": Decimal("9.8")}, {"TRSEQ": 2, "TRSTRESN": None}],
               keys=("TRSEQ",))
    obj = dataset_json(d, study_oid="S")
    assert obj["rows"] == [[1, "9.8"], [2, None]]
    assert obj["columns"][0]["keySequence"] == 1


@pytest.mark.slow  # session fixture: the sample trial scored once (~40 s)
def test_build_sdtm_options(signed_trial: SignedTrial) -> None:
    with TrialStore(signed_trial.db_path, read_only=True) as store:
        data = collect(store)
    doms = build_sdtm(data, options={"studyid": "ES01", "evaluator_id": "RADIOLOGIST 1",
                                     "best_response": False})
    assert {r["USUBJID"] for r in doms["TU"].rows} == {f"ES01-{c}" for c in signed_trial.codes.values()}
    assert {r["TREVALID"] for r in doms["TR"].rows} == {"RADIOLOGIST 1"}
    assert "BESTRESP" not in {r["RSTESTCD"] for r in doms["RS"].rows}


def test_irecist_round_trip(tmp_path: Path, fast_scrypt: None) -> None:
    """iRECIST: new-lesion targets, i-prefixed RS values and RSCAT iRECIST survive the round trip."""
    s = TrialStore(tmp_path / "i.db")
    s.add_reader(READER, READER_PASSWORD, full_name="Reader One")
    s.add_trial("T1", criteria="iRECIST")
    s.add_subject("T1", "S1", reference_date=dt.date(2026, 1, 2))
    for v, d in (("BL", dt.date(2026, 1, 2)), ("W6", dt.date(2026, 2, 13)),
                 ("W12", dt.date(2026, 3, 27))):
        s.add_timepoint("S1", v, d)
    s.add_lesion("S1", "BL", "T01", "TARGET", reader=READER, organ="LUNG")
    s.add_lesion("S1", "BL", "NT01", "NON-TARGET", reader=READER, organ="BONE")
    s.record_measurement("S1", "BL", "T01", reader=READER, long_axis_mm="40.0")
    s.assess_non_target("S1", "BL", "NT01", "PRESENT", reader=READER)
    s.record_measurement("S1", "W6", "T01", reader=READER, long_axis_mm="38.0")
    s.assess_non_target("S1", "W6", "NT01", "PRESENT", reader=READER)
    s.record_new_lesion("S1", "W6", "NL01", reader=READER, organ="LIVER", category="NEW TARGET",
                        long_axis_mm="12.0")
    s.record_measurement("S1", "W12", "T01", reader=READER, long_axis_mm="37.0")
    s.assess_non_target("S1", "W12", "NT01", "PRESENT", reader=READER)
    s.record_measurement("S1", "W12", "NL01", reader=READER, long_axis_mm="19.0")
    s.compute_responses("S1", reader=READER)
    run_export(s, "sdtm", tmp_path / "out", include_unsigned=True)
    s.close()
    rs = _rows(tmp_path / "out" / "rs.csv")
    assert {r["RSCAT"] for r in rs} == {"iRECIST"}
    ovr = {r["VISIT"]: r["RSSTRESC"] for r in rs if r["RSTESTCD"] == "OVRLRESP"}
    assert ovr == {"W6": "iUPD", "W12": "iCPD"}
    tu = _rows(tmp_path / "out" / "tu.csv")
    assert next(r for r in tu if r["TULNKID"] == "NL01")["TUSTRESC"] == "NEW TARGET"
    result = respond(read_sdtm_csv(tmp_path / "out" / "tu.csv"),
                     read_sdtm_csv(tmp_path / "out" / "tr.csv"), criteria="irecist")
    assert _rs_set(list(result.rs)) == _rs_set(rs)
    assert result.best[0]["BOR"] == next(r["RSSTRESC"] for r in rs if r["RSTESTCD"] == "BESTRESP")
