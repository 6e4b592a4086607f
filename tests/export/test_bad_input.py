"""Bad input to the EDC exporters: clear one-line errors, exit 3, and never a partial file."""

from __future__ import annotations

import csv
import datetime as dt
from importlib import resources
from pathlib import Path

import pytest

from recist_tool.cli import main
from recist_tool.errors import InputError
from recist_tool.export import run_export
from recist_tool.store import TrialStore

EDC_FORMATS = ("odm", "sdtm", "dataset-json", "redcap")
READER, PASSWORD = "rad1", "rad1-password"


@pytest.fixture(autouse=True)
def _fast_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECIST_SCRYPT_N", "1024")


def _store(path: Path, *, sign: bool = True, organ: str = "LUNG") -> TrialStore:
    """Subject S1 (BL, W6) with two targets and a non-target; optionally signed."""
    s = TrialStore(path)
    s.add_reader(READER, PASSWORD, full_name="Reader One")
    s.add_trial("T1")
    s.add_subject("T1", "S1", patient_id="PAT-1", reference_date=dt.date(2026, 1, 2))
    s.add_timepoint("S1", "BL", dt.date(2026, 1, 2))
    s.add_timepoint("S1", "W6", dt.date(2026, 2, 13))
    s.add_lesion("S1", "BL", "T01", "TARGET", reader=READER, organ=organ)
    s.add_lesion("S1", "BL", "T02", "TARGET", reader=READER, organ="LYMPH NODE", nodal=True)
    s.add_lesion("S1", "BL", "NT01", "NON-TARGET", reader=READER, organ="LIVER")
    s.record_measurement("S1", "BL", "T01", reader=READER, long_axis_mm="30.0")
    s.record_measurement("S1", "BL", "T02", reader=READER, long_axis_mm="22", short_axis_mm="16")
    s.assess_non_target("S1", "BL", "NT01", "PRESENT", reader=READER)
    s.record_measurement("S1", "W6", "T01", reader=READER, long_axis_mm="20.0")
    s.record_measurement("S1", "W6", "T02", reader=READER, long_axis_mm="15", short_axis_mm="9")
    s.assess_non_target("S1", "W6", "NT01", "ABSENT", reader=READER)
    s.compute_responses("S1", reader=READER)
    if sign:
        for v in ("BL", "W6"):
            s.sign("S1", v, reader=READER, password=PASSWORD)
    return s


def _left(out: Path) -> list[str]:
    return sorted(p.name for p in out.rglob("*")) if out.exists() else []


@pytest.mark.parametrize("fmt", EDC_FORMATS)
def test_empty_database(tmp_path: Path, fmt: str) -> None:
    with TrialStore(tmp_path / "empty.db") as s, pytest.raises(InputError, match="no trial"):
        run_export(s, fmt, tmp_path / "out")
    assert _left(tmp_path / "out") == []


def test_subject_without_baseline(tmp_path: Path) -> None:
    s = _store(tmp_path / "r.db")
    s.add_subject("T1", "S2")
    s.add_timepoint("S2", "BL", dt.date(2026, 1, 5))
    s.add_timepoint("S2", "W6", dt.date(2026, 2, 16))
    s.record_new_lesion("S2", "W6", "NL01", reader=READER, organ="LIVER")
    for fmt in EDC_FORMATS:
        with pytest.raises(InputError, match=r"S2: no baseline read by rad1 \(BL\)"):
            run_export(s, fmt, tmp_path / "out", subjects=["S2"], include_unsigned=True)
    s.close()
    assert _left(tmp_path / "out") == []


def test_unsigned_reads_refused_then_marked(tmp_path: Path) -> None:
    s = _store(tmp_path / "r.db", sign=False)
    s.sign("S1", "BL", reader=READER, password=PASSWORD)  # W6 stays open
    for fmt in EDC_FORMATS:
        with pytest.raises(InputError, match="reads of W6 are not signed"):
            run_export(s, fmt, tmp_path / fmt)
        assert _left(tmp_path / fmt) == []
    files = {p.name: p for p in run_export(s, "sdtm", tmp_path / "sdtm", include_unsigned=True)}
    s.close()
    assert {"supptr.csv", "supprs.csv"} <= set(files)
    assert "supptu.csv" not in files  # every lesion was identified in the signed baseline read

    def rows(name: str) -> list[dict[str, str]]:
        with files[name].open(newline="") as fh:
            return list(csv.DictReader(fh))

    tr, supp = rows("tr.csv"), rows("supptr.csv")
    unsigned = {r["TRSEQ"] for r in tr if r["VISIT"] == "W6"}
    assert unsigned and {r["IDVARVAL"] for r in supp} == unsigned  # W6 rows marked, BL rows not
    assert {(r["IDVAR"], r["QNAM"], r["QVAL"]) for r in supp} == {("TRSEQ", "READSTAT", "UNSIGNED")}
    rs, supprs = rows("rs.csv"), rows("supprs.csv")
    assert {r["IDVARVAL"] for r in supprs} == {r["RSSEQ"] for r in rs}  # W6 and the BOR row


def _mapping_without(tmp_path: Path, line: str) -> Path:
    text = resources.files("recist_tool.export").joinpath("default_mapping.toml").read_text()
    assert line in text
    path = tmp_path / "mapping.toml"
    path.write_text(text.replace(line + "\n", ""))
    return path


@pytest.mark.parametrize("fmt", ["odm", "redcap"])
def test_mapping_missing_an_item(tmp_path: Path, fmt: str) -> None:
    s = _store(tmp_path / "r.db")
    bad = _mapping_without(tmp_path, 'ovrlresp = "IT.OVRLRESP"')
    with pytest.raises(InputError, match=r"mapping misses odm\.items\.ovrlresp"):
        run_export(s, fmt, tmp_path / "out", options={"mapping": bad})
    bad.write_text("[odm\nnot toml")
    with pytest.raises(InputError, match="not a valid TOML mapping"):
        run_export(s, fmt, tmp_path / "out", options={"mapping": bad})
    with pytest.raises(InputError, match="cannot read mapping"):
        run_export(s, fmt, tmp_path / "out", options={"mapping": tmp_path / "nope.toml"})
    s.close()
    assert _left(tmp_path / "out") == []


def test_bad_redcap_name_in_mapping(tmp_path: Path) -> None:
    s = _store(tmp_path / "r.db")
    text = resources.files("recist_tool.export").joinpath("default_mapping.toml").read_text()
    path = tmp_path / "m.toml"
    path.write_text(text.replace('tl_id = "tl_id"', 'tl_id = "Target ID"'))
    with pytest.raises(InputError, match=r"redcap.fields.tl_id = 'Target ID' is not a REDCap name"):
        run_export(s, "redcap", tmp_path / "out", options={"mapping": path})
    s.close()


def test_failure_mid_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from recist_tool.export import sdtm

    s = _store(tmp_path / "r.db")
    out = tmp_path / "out"
    out.mkdir()
    (out / "tu.csv").write_text("an older export\n")
    calls = []

    def boom(domain, path):  # noqa: ANN001, ANN202 - fails on the 2nd XPT, after 2 CSVs were written
        calls.append(domain.name)
        if len(calls) == 2:
            raise InputError("disk full (simulated)")
        return real(domain, path)

    real = sdtm.write_sdtm_xpt
    monkeypatch.setattr(sdtm, "write_sdtm_xpt", boom)
    with pytest.raises(InputError, match="simulated"):
        run_export(s, "sdtm", out)
    assert _left(out) == ["tu.csv"] and (out / "tu.csv").read_text() == "an older export\n"
    monkeypatch.undo()

    from recist_tool.export import odm

    def invalid(path):  # noqa: ANN001, ANN202
        raise InputError("ODM 1.3.2 schema check failed for x.xml: simulated")

    monkeypatch.setattr(odm, "validate_odm_file", invalid)
    with pytest.raises(InputError, match="schema check failed"):
        run_export(s, "odm", out)
    assert _left(out) == ["tu.csv"]
    s.close()


def test_xpt_refuses_what_v5_cannot_hold(tmp_path: Path) -> None:
    s = _store(tmp_path / "r.db", organ="poumon gauche — lobe supérieur")
    with pytest.raises(InputError, match=r"XPT v5: TU row 1 TULOC: .* is not ASCII"):
        run_export(s, "sdtm", tmp_path / "out")
    assert _left(tmp_path / "out") == []
    # the same data go to Dataset-JSON (UTF-8) unchanged
    files = run_export(s, "dataset-json", tmp_path / "dj")
    s.close()
    tu = next(p for p in files if p.name == "tu.json").read_text(encoding="utf-8")
    assert "POUMON GAUCHE — LOBE SUPÉRIEUR" in tu


def test_cli_one_line_error_exit_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    TrialStore(tmp_path / "empty.db").close()
    rc = main(["export", "--db", str(tmp_path / "empty.db"), "--format", "sdtm",
               "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert rc == 3 and len(err.splitlines()) == 1 and "no trial to export" in err
    s = _store(tmp_path / "r.db")
    s.close()
    bad = _mapping_without(tmp_path, 'nl_diam = "IT.NL_DIAM"')
    rc = main(["export", "--db", str(tmp_path / "r.db"), "--format", "odm", "--mapping", str(bad),
               "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert rc == 3 and len(err.splitlines()) == 1 and "mapping misses odm.items.nl_diam" in err
    assert _left(tmp_path / "out") == []
    rc = main(["export", "--db", str(tmp_path / "r.db"), "--format", "odm", "-o",
               str(tmp_path / "ok")])
    assert rc == 0 and _left(tmp_path / "ok") == ["T1_odm.xml"]
