"""``--EVALID`` of the SDTM / Dataset-JSON exports: never a login by default, per trial settings.

Default: ``RADIOLOGIST n`` for people and ``ALGORITHM n`` for accounts ``recist batch`` created,
``n`` in the order of each reader's first read in the trial (from the audit trail), so that one
reader keeps one identifier whatever subset is exported. The trial settings' ``[evaluators]``
table maps accounts to identifiers instead.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from recist_tool.cli import main
from recist_tool.errors import InputError
from recist_tool.export import collect, run_export
from recist_tool.export.sdtm import build_sdtm
from recist_tool.store import TrialStore
from recist_tool.store import settings as trial_settings
from tests.store.conftest import make_trial, read_subject


@pytest.fixture
def two_readers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """alice and bob (alice's account first), bob reads S001 first, then alice; then the batch."""
    from recist_tool.batch.persist import TrialSetup, prepare_store

    monkeypatch.setenv("RECIST_SCRYPT_N", "1024")
    db = tmp_path / "recist.db"
    with TrialStore(db) as store:
        make_trial(store)
        read_subject(store, "bob", t01_w6="20.0", t02_w6="12")
        read_subject(store, "alice", t01_w6="21.0", t02_w6="12")
        prepare_store(store, [], reader="batch", trial=TrialSetup(name="ES-SCLC"))
        store.add_subject("ES-SCLC", "S002", reference_date=dt.date(2026, 1, 1))
        store.add_timepoint("S002", "BL", dt.date(2026, 1, 3))
        store.add_lesion("S002", "BL", "T01", "TARGET", reader="batch", organ="LIVER")
        store.record_measurement("S002", "BL", "T01", reader="batch", long_axis_mm="31")
    return db


def _evalids(db: Path, **kw) -> set[str]:  # noqa: ANN003
    with TrialStore(db, read_only=True) as store:
        data = collect(store, include_unsigned=True, **kw)
    doms = build_sdtm(data)
    return {str(r["TUEVALID"]) for r in doms["TU"].rows} | {str(r["TREVALID"]) for r in doms["TR"].rows}


def test_default_is_numbered_by_first_read_never_the_login(two_readers: Path) -> None:
    assert _evalids(two_readers, subjects=["S001"], reader="bob") == {"RADIOLOGIST 1"}
    assert _evalids(two_readers, subjects=["S001"], reader="alice") == {"RADIOLOGIST 2"}
    # the batch account is an algorithm, numbered on its own; a subset export keeps the numbers
    assert _evalids(two_readers, subjects=["S002"]) == {"ALGORITHM 1"}


def test_settings_map_accounts_to_identifiers(two_readers: Path, tmp_path: Path) -> None:
    settings = tmp_path / "trial.toml"
    settings.write_text('[recist]\nsd_min_days = 42\n\n[evaluators]\nalice = "READER A"\n'
                        'bob = "READER B"\nbatch = "CAD 1"\n', encoding="utf-8")
    ids = trial_settings.read_evaluator_ids(settings)
    assert ids == {"alice": "READER A", "bob": "READER B", "batch": "CAD 1"}
    with TrialStore(two_readers, read_only=True) as store:
        data = collect(store, subjects=["S001"], reader="alice", include_unsigned=True)
    doms = build_sdtm(data, options={"evaluator_ids": ids})
    assert {r["TUEVALID"] for r in doms["TU"].rows} == {"READER A"}
    # an account the table leaves out is refused, naming it (no silent fallback to the login)
    with pytest.raises(InputError, match="alice"):
        build_sdtm(data, options={"evaluator_ids": {"bob": "READER B"}})


@pytest.mark.parametrize(("table", "needle"), [
    ('alice = "R 1"\nbob = "R 1"\n', "same --EVALID 'R 1'"),
    ('alice = ""\n', "alice: empty"),
    ('alice = 3\n', "alice: must be text"),
    ('alice = "RADIOLOGE \u00dc"\n', "ASCII"),
    ('alice = "' + "X" * 201 + '"\n', "200"),
], ids=["duplicate", "empty", "number", "non-ascii", "too-long"])
def test_bad_evaluator_tables_are_refused(tmp_path: Path, table: str, needle: str) -> None:
    settings = tmp_path / "trial.toml"
    settings.write_text("[evaluators]\n" + table, encoding="utf-8")
    with pytest.raises(InputError, match=needle):
        trial_settings.read_evaluator_ids(settings)
    assert trial_settings.read_evaluator_ids(None) == {}


def test_cli_export_takes_the_trial_settings(two_readers: Path, tmp_path: Path) -> None:
    settings = tmp_path / "trial.toml"
    settings.write_text('[evaluators]\nbatch = "CAD 1"\n', encoding="utf-8")
    out = tmp_path / "dj"
    assert main(["export", "--db", str(two_readers), "--format", "dataset-json", "--subject",
                 "S002", "--include-unsigned", "--settings", str(settings), "-o", str(out)]) == 0
    tu = json.loads((out / "tu.json").read_text(encoding="utf-8"))
    col = [c["name"] for c in tu["columns"]].index("TUEVALID")
    assert {row[col] for row in tu["rows"]} == {"CAD 1"}
    # without settings: the default rule, not the login "batch"
    with TrialStore(two_readers, read_only=True) as store:
        run_export(store, "dataset-json", tmp_path / "dj2", subjects=["S002"],
                   include_unsigned=True)
    tu = json.loads((tmp_path / "dj2" / "tu.json").read_text(encoding="utf-8"))
    assert {row[col] for row in tu["rows"]} == {"ALGORITHM 1"}
