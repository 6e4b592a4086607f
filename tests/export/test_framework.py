"""The export framework: what ``collect`` reads, which reads it refuses, files appear all or none."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from recist_tool.cli import main
from recist_tool.errors import InputError, UsageError
from recist_tool.export import FORMATS, collect, exporter, run_export
from recist_tool.io.outputs import atomic_file, atomic_outputs
from recist_tool.store import TrialStore
from tests.store.conftest import PASSWORDS, make_trial, read_subject


@pytest.fixture(autouse=True)
def _fast_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECIST_SCRYPT_N", "1024")


@pytest.fixture
def store(tmp_path: Path) -> TrialStore:
    s = TrialStore(tmp_path / "recist.db")
    make_trial(s)
    read_subject(s, "alice", t01_w6="20.0", t02_w6="12")  # SOD 50 → 32: −36 % → PR
    s.compute_responses("S001", reader="alice")
    yield s
    s.close()


def _sign_all(store: TrialStore, reader: str = "alice") -> None:
    for visit in ("BL", "W6"):
        store.sign("S001", visit, reader=reader, password=PASSWORDS[reader])


def test_collect_reads_the_signed_reads_and_the_best_response(store: TrialStore) -> None:
    _sign_all(store)
    data = collect(store)
    assert (data.trial, data.criteria, len(data.subjects)) == ("ES-SCLC", "RECIST 1.1", 1)
    s = data.subjects[0]
    assert (s.code, s.reader, s.reader_full_name) == ("S001", "alice", "Alice Reader")
    assert [r.visit for r in s.reads] == ["BL", "W6"] and s.baseline.visit == "BL"
    assert [les.lesion_id for les in s.lesions] == ["T01", "T02", "NT01"]
    assert s.followups[0].response.overall == "PR" and s.unsigned_visits == []
    assert s.best is not None and s.best.bor.value == "PR"  # unconfirmed, no SD window on PR
    assert s.timepoint("W6").date == dt.date(2026, 2, 13)
    assert any(e.entity == "signature" for e in s.audit)
    assert not data.has_unsigned


def test_unsigned_reads_need_include_unsigned(store: TrialStore) -> None:
    with pytest.raises(InputError, match=r"S001: alice's reads of BL, W6 are not signed"):
        collect(store)
    data = collect(store, include_unsigned=True)
    assert data.subjects[0].unsigned_visits == ["BL", "W6"] and data.has_unsigned
    assert not data.subjects[0].is_signed("W6")


def test_reader_choice_and_bad_subjects(store: TrialStore, tmp_path: Path) -> None:
    read_subject(store, "bob", t01_w6="30.0", t02_w6="20")
    with pytest.raises(UsageError, match="read by alice, bob: choose one with --reader"):
        collect(store, include_unsigned=True)
    assert collect(store, reader="bob", include_unsigned=True).subjects[0].reader == "bob"
    # the command line: a usage error, exit 2 (docs/export_edc.md), nothing written
    out = tmp_path / "odm-out"
    assert main(["export", "--db", str(tmp_path / "recist.db"), "--format", "odm",
                 "--include-unsigned", "-o", str(out)]) == 2
    assert not out.exists() or not any(out.iterdir())
    with pytest.raises(InputError, match="no read by 'carol'"):
        collect(store, reader="carol", include_unsigned=True)
    with pytest.raises(InputError, match="no subject S404"):
        collect(store, subjects=["S404"])
    store.add_subject("ES-SCLC", "S002")
    store.add_timepoint("S002", "BL", dt.date(2026, 1, 5))
    store.add_timepoint("S002", "W6", dt.date(2026, 2, 16))
    store.add_lesion("S002", "W6", "NL01", "NEW", reader="alice")
    with pytest.raises(InputError, match=r"S002: no baseline read by alice \(BL\)"):
        collect(store, subjects=["S002"], include_unsigned=True)


def test_empty_database(tmp_path: Path) -> None:
    with TrialStore(tmp_path / "empty.db") as s, pytest.raises(InputError, match="no trial"):
        collect(s)


def test_outputs_appear_together_or_not_at_all(tmp_path: Path) -> None:
    (tmp_path / "tu.csv").write_text("old")
    with pytest.raises(RuntimeError), atomic_outputs(tmp_path) as out:
        out.path("tu.csv").write_text("new")
        out.path("sub/tr.csv").write_text("new")
        raise RuntimeError("failed half-way")
    assert (tmp_path / "tu.csv").read_text() == "old"
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["tu.csv"]
    with atomic_outputs(tmp_path) as out:
        out.path("tu.csv").write_text("new")
        out.path("sub/tr.csv").write_text("new")
    assert (tmp_path / "sub" / "tr.csv").read_text() == (tmp_path / "tu.csv").read_text() == "new"
    with atomic_file(tmp_path / "one.xml") as tmp:
        assert tmp.parent == tmp_path and tmp.name != "one.xml"
        tmp.write_text("<x/>")
    assert (tmp_path / "one.xml").read_text() == "<x/>"
    with pytest.raises(FileNotFoundError, match="did not write b.csv"), atomic_outputs(tmp_path) as out:
        out.path("b.csv")
    assert not (tmp_path / "b.csv").exists()
    with pytest.raises(RuntimeError), atomic_outputs(tmp_path / "new" / "export") as out:
        out.path("SYN-001/a.dcm").write_text("x")
        raise RuntimeError("failed")
    assert not (tmp_path / "new").exists()  # folders made for the failed export are gone


def test_unknown_format_and_cli_errors(store: TrialStore, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    from recist_tool.cli import main

    with pytest.raises(UsageError, match="unknown export format 'xls'"):
        exporter("xls")
    assert {"odm", "sdtm", "dataset-json", "redcap", "dicom-sr", "dicom-seg"} <= set(FORMATS)
    with pytest.raises(UsageError):
        run_export(store, "xls", tmp_path / "o")
    assert main(["export", "--db", str(tmp_path / "missing.db"), "-f", "odm",
                 "-o", str(tmp_path / "o")]) == 3
    assert "does not exist" in capsys.readouterr().err
    assert main(["export", "--db", str(tmp_path / "recist.db"), "-f", "xls", "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "unknown export format" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()
