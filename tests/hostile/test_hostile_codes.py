"""Hostile subject, visit, lesion and reader codes are refused where they enter (issue #37 items
1 and 4): the code vocabulary itself, batch manifests, DICOM SR import, SDTM CSV, the trial
database's create calls. One line, exit 3, nothing stored, nothing written."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from recist_tool.batch.manifest import ManifestError, read_manifest
from recist_tool.cli import main
from recist_tool.codes import CODE_KINDS, MAX_CODE_LENGTH, code_problem, validate_code
from recist_tool.errors import InputError
from tests.hostile.hostile_inputs import CORPUS, ESCAPE, HOSTILE_CODES, VALID_CODES, hostile_sr

READER, PASSWORD = "rad1", "rad1-password"


@pytest.fixture(autouse=True)
def _fast_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECIST_SCRYPT_N", "1024")


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert len(err) < 400, err  # a 5,000-character code is cut in the message
    return err


# --- the vocabulary ------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", CODE_KINDS)
@pytest.mark.parametrize("code", HOSTILE_CODES, ids=range(len(HOSTILE_CODES)))
def test_hostile_codes_are_refused_in_one_line(kind: str, code: str) -> None:
    with pytest.raises(InputError) as info:
        validate_code(code, kind, where="x.csv:2")
    msg = str(info.value)
    assert msg.startswith(f"x.csv:2: {kind} code") and "\n" not in msg and len(msg) < 300


@pytest.mark.parametrize("code", VALID_CODES)
def test_real_codes_pass(code: str) -> None:
    for kind in ("subject", "visit", "reader"):
        assert validate_code(code, kind) == code


def test_lengths_are_those_of_the_database_columns() -> None:
    """The code rule and the store's columns say the same (PostgreSQL enforces the columns)."""
    from recist_tool.store.models import Lesion, Reader, Subject, Timepoint

    cols = {"subject": Subject.code, "visit": Timepoint.visit, "lesion": Lesion.code,
            "reader": Reader.name}
    for kind, col in cols.items():
        n = MAX_CODE_LENGTH[kind]
        assert col.property.columns[0].type.length == n
        assert code_problem("A" * n, kind) is None and code_problem("A" * (n + 1), kind)


def test_oracle_subject_and_lesion_codes_pass(shared_data: Path) -> None:
    from recist_tool.io.sdtm_csv import read_sdtm_csv

    d = shared_data / "recist_oracles"
    if not (d / "tu_onco_recist.csv").is_file():
        pytest.skip(f"shared test data missing: {d}")
    for name in ("tu_onco_recist.csv", "tr_onco_recist.csv", "dm.csv", "rs_onco.csv"):
        assert read_sdtm_csv(d / name)  # every USUBJID / --LNKID is a code


# --- batch manifests (items 1 and 4) -------------------------------------------------------------

@pytest.mark.parametrize("name", ["manifest_long_subject.csv", "manifest_escape_subject.csv",
                                  "manifest_formula_subject.csv", "manifest_escape_visit.toml",
                                  "manifest_escape_lesion.toml"])
def test_corpus_manifests_are_refused_naming_the_line(name: str) -> None:
    with pytest.raises(ManifestError) as info:
        read_manifest(CORPUS / name)
    msg = str(info.value)
    assert msg.startswith(f"{CORPUS / name}:") and "\n" not in msg and len(msg) < 400


@pytest.mark.parametrize("column", ["subject", "visit"])
@pytest.mark.parametrize("code", [c for c in HOSTILE_CODES if c and c == c.strip()  # cells are
                                  and "\n" not in c and "\x00" not in c],  # stripped; one line
                         ids=lambda c: repr(c[:12]))
def test_any_hostile_manifest_code_is_refused(tmp_path: Path, column: str, code: str) -> None:
    row = {"subject": "S1", "visit": "BL", "date": "2026-01-05", "series_path": "s",
           "lesion_id": "T01", "category": "target", "seed_x": "1", "seed_y": "2", "seed_z": "3"}
    row[column] = code
    path = tmp_path / "m.csv"
    import csv

    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(row))
        w.writeheader()
        w.writerow(row)
    with pytest.raises(ManifestError, match=rf"m\.csv:2: {column} code"):
        read_manifest(path)


def test_batch_with_a_5000_character_subject_stores_nothing(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """Item 4: the run stopped mid-way with ``File name too long`` after storing part of the
    trial; now the manifest is refused before the database is opened."""
    manifest = tmp_path / "manifest.csv"
    shutil.copy(CORPUS / "manifest_long_subject.csv", manifest)
    db, out = tmp_path / "trial.db", tmp_path / "results"
    assert main(["batch", str(manifest), "--db", str(db), "-o", str(out), "--workers", "0",
                 "--segmenter", "classic"]) == 3
    err = _one_line_error(capsys)
    assert "manifest.csv:3: subject code 'SSSS" in err and "longer than 64" in err
    assert not db.exists() and not out.exists()


def test_batch_with_an_escaping_subject_stores_nothing(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    manifest = tmp_path / "manifest.csv"
    shutil.copy(CORPUS / "manifest_escape_subject.csv", manifest)
    db = tmp_path / "trial.db"
    assert main(["batch", str(manifest), "--db", str(db), "-o", str(tmp_path / "o"),
                 "--workers", "0", "--segmenter", "classic"]) == 3
    assert "manifest.csv:3: subject code '../../../outside/ESCAPE' contains '/'" in \
        _one_line_error(capsys)
    assert not db.exists()


# --- DICOM SR import -----------------------------------------------------------------------------

def test_import_sr_refuses_an_escaping_clinical_trial_subject_id(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The SR's ClinicalTrialSubjectID is ``../../../outside/ESCAPE``: no manifest, no subject."""
    from recist_tool.batch.sr_import import import_sr
    from recist_tool.store import TrialStore

    sr, ct = hostile_sr(tmp_path)
    with pytest.raises(InputError, match=r"ClinicalTrialSubjectID .*subject code "
                                         r"'\.\./\.\./\.\./outside/ESCAPE' contains '/'"):
        import_sr(sr, ct)
    db = tmp_path / "pacs.db"
    with TrialStore(db) as store:
        store.add_reader(READER, PASSWORD)
        store.add_trial("T1")
    out = tmp_path / "d1" / "d2" / "d3" / "manifest.csv"
    assert main(["import-sr", str(sr), "--ct", str(ct), "-o", str(out), "--db", str(db),
                 "--reader", READER, "--trial", "T1"]) == 3
    assert "ClinicalTrialSubjectID" in _one_line_error(capsys)
    assert not out.exists()
    with TrialStore(db, read_only=True) as store:
        assert store.subjects() == []
    # --subject overrides the SR's code, and is itself checked
    assert main(["import-sr", str(sr), "--ct", str(ct), "-o", str(out), "--subject", "../S1"]) == 3
    assert "--subject: subject code '../S1'" in _one_line_error(capsys)
    assert main(["import-sr", str(sr), "--ct", str(ct), "-o", str(out), "--visit", "../BL"]) == 3
    assert "--visit: visit code '../BL'" in _one_line_error(capsys)
    assert main(["import-sr", str(sr), "--ct", str(ct), "-o", str(out), "--subject", "S1"]) == 0
    assert out.is_file()


# --- SDTM CSV ------------------------------------------------------------------------------------

def test_respond_refuses_an_escaping_usubjid(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["respond", "--tu", str(CORPUS / "tu_escape_subject.csv"),
                 "--tr", str(CORPUS / "tr_formula.csv"), "-o", str(out)]) == 3
    assert ("tu_escape_subject.csv:2: USUBJID: subject code '../../../outside/ESCAPE'"
            in _one_line_error(capsys))
    assert not out.exists()


# --- the trial database's create calls (CLI, reading workstation, batch, SR import) --------------

def test_store_refuses_hostile_codes(tmp_path: Path) -> None:
    from recist_tool.store import TrialStore

    with TrialStore(tmp_path / "t.db") as s:
        s.add_reader(READER, PASSWORD)
        s.add_trial("T1")
        with pytest.raises(InputError, match="subject code '../../../outside/ESCAPE'"):
            s.add_subject("T1", ESCAPE)
        s.add_subject("T1", "S1")
        with pytest.raises(InputError, match="visit code"):
            s.add_timepoint("S1", "../BL", dt.date(2026, 1, 2))
        s.add_timepoint("S1", "BL", dt.date(2026, 1, 2))
        with pytest.raises(InputError, match="lesion code"):
            s.add_lesion("S1", "BL", "../T01", "TARGET", reader=READER)
        with pytest.raises(InputError, match="lesion code"):
            s.record_new_lesion("S1", "BL", "NL01/..", reader=READER)
        with pytest.raises(InputError, match="reader code"):
            s.add_reader("../admin", PASSWORD)
        assert s.subjects() == ["S1"] and [v for v, _ in s.timepoints("S1")] == ["BL"]
        assert s.lesions("S1", reader=READER) == []


def test_reader_add_cli_refuses_a_hostile_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    import io

    from recist_tool.store import TrialStore

    TrialStore(tmp_path / "t.db").close()
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    rc = main(["reader", "add", "=cmd|x", "--password-stdin", "--db", str(tmp_path / "t.db")])
    assert rc == 3 and "reader code '=cmd|x'" in _one_line_error(capsys)
