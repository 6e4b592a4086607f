"""Dataset-JSON 1.1: a missing value is ``null`` in every column type, text included."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from recist_tool.export import run_export
from recist_tool.export.sdtm import Domain, Variable, dataset_json
from recist_tool.store import TrialStore
from tests.store.conftest import make_trial, read_subject


def test_missing_text_is_null_and_text_is_kept() -> None:
    d = Domain("TR", "Tumor/Lesion Results",
               (Variable("TRSEQ", "Sequence Number", "integer"), Variable("TRLNKID", "Link ID"),
                Variable("TRSTAT", "Completion Status"),
                Variable("TRSTRESN", "Numeric Result", "decimal")),
               [{"TRSEQ": 1, "TRLNKID": "T01", "TRSTAT": "", "TRSTRESN": Decimal("9.8")},
                {"TRSEQ": 2, "TRLNKID": None, "TRSTAT": "NOT DONE", "TRSTRESN": None},
                {"TRSEQ": 3, "TRLNKID": "\u00c9-1 \"q\"", "TRSTRESN": Decimal("0")}],
               keys=("TRSEQ",))
    obj = dataset_json(d, study_oid="S")
    assert obj["rows"] == [[1, "T01", None, "9.8"], [2, None, "NOT DONE", None],
                           [3, "\u00c9-1 \"q\"", None, "0"]]
    assert [c.get("length") for c in obj["columns"]] == [None, 7, 8, None]


def test_exported_files_hold_null_not_empty_strings(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECIST_SCRYPT_N", "1024")
    with TrialStore(tmp_path / "recist.db") as store:
        make_trial(store, readers=("alice",), adjudicator=None)
        read_subject(store, "alice", t01_w6="20.0", t02_w6="12")
        store.compute_responses("S001", reader="alice")
        files = run_export(store, "dataset-json", tmp_path / "dj", include_unsigned=True)
    seen_null = False
    for path in files:
        obj = json.loads(path.read_text(encoding="utf-8"))
        for row in obj["rows"]:
            assert "" not in row, (path.name, row)
            seen_null = seen_null or None in row
    assert seen_null  # e.g. TRLNKID of SUMDIAM, TRSTAT of a measured lesion
