"""REDCap export: data dictionary, longitudinal import CSV and the project set-up files agree."""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

import pytest

from recist_tool.export import run_export
from recist_tool.export.mapping import load_mapping
from recist_tool.export.redcap import DICTIONARY_COLUMNS, choice_codes
from recist_tool.store import TrialStore
from tests.export.conftest import READER, ScoredTrial, SignedTrial

pytestmark = pytest.mark.slow  # the session fixtures score the sample trial (~40 s once)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _export(db: Path, out: Path, **kw) -> dict[str, list[dict[str, str]]]:  # noqa: ANN003
    with TrialStore(db, read_only=True) as store:
        files = run_export(store, "redcap", out, **kw)
    return {p.stem: _rows(p) for p in files}


def _decode(field_choices: str) -> dict[str, str]:
    return dict(part.strip().split(", ", 1) for part in field_choices.split("|"))


def test_dictionary_and_import_agree(signed_trial: SignedTrial, tmp_path: Path) -> None:
    out = _export(signed_trial.db_path, tmp_path)
    assert set(out) == {"redcap_data_dictionary", "redcap_import", "redcap_events",
                        "redcap_instrument_event_mapping", "redcap_repeating_instruments"}
    dd = out["redcap_data_dictionary"]
    assert list(dd[0]) == list(DICTIONARY_COLUMNS) and dd[0]["Variable / Field Name"] == "record_id"
    fields = {r["Variable / Field Name"]: r for r in dd}
    forms = {r["Form Name"] for r in dd}
    assert forms == {"timepoint_response", "target_lesions", "non_target_lesions", "new_lesions",
                     "best_response"}
    imp = out["redcap_import"]
    cols = list(imp[0])
    assert cols[:4] == ["record_id", "redcap_event_name", "redcap_repeat_instrument",
                        "redcap_repeat_instance"]
    extra = {c for c in cols[4:] if c not in fields}
    assert extra == {f"{f}_complete" for f in forms}
    # choice fields only hold their codes; the codes decode back to the stored responses
    for row in imp:
        for name, value in row.items():
            spec = fields.get(name)
            if value and spec and spec["Field Type"] in ("dropdown", "radio"):
                assert value in _decode(spec["Choices, Calculations, OR Slider Labels"]), name
    resp = _decode(fields["tpr_ovrlresp"]["Choices, Calculations, OR Slider Labels"])
    m = load_mapping()
    with TrialStore(signed_trial.db_path, read_only=True) as store:
        for row in imp:
            if row["redcap_repeat_instrument"] or row["redcap_event_name"] == "best_response_arm_1":
                continue
            visit = row["redcap_event_name"].removesuffix("_arm_1").upper()
            rd = store.get_read(row["record_id"], visit, reader=READER)
            assert row["tpr_date"] == rd.date.isoformat() and row["tpr_read_status"] == "1"
            assert row["timepoint_response_complete"] == "2"
            if rd.response is not None:
                assert resp[row["tpr_ovrlresp"]] == (rd.response.confirmed_overall
                                                     or rd.response.overall)
                assert Decimal(row["tpr_sumdiam"]) == rd.response.sod_mm
            lesions = [r for r in imp if r["record_id"] == row["record_id"]
                       and r["redcap_event_name"] == row["redcap_event_name"]
                       and r["redcap_repeat_instrument"] == "target_lesions"]
            targets = [x for x in rd.measurements if x.category == "TARGET"]
            assert sorted(r["tl_id"] for r in lesions) == sorted(x.lesion_id for x in targets)
            assert [r["redcap_repeat_instance"] for r in lesions] == [
                str(i) for i in range(1, len(lesions) + 1)]
            states = {v: k for k, v in choice_codes("STATE").items()}
            for r in lesions:
                x = next(t for t in targets if t.lesion_id == r["tl_id"])
                assert states[int(r[m.redcap_field("tl_state")])] == x.state
    # every (event, instrument) the import uses is designated; lesion instruments repeat
    designated = {(r["unique_event_name"], r["form"]) for r in out["redcap_instrument_event_mapping"]}
    repeating = {(r["event_name"], r["form_name"]) for r in out["redcap_repeating_instruments"]}
    events = {r["unique_event_name"] for r in out["redcap_events"]}
    for row in imp:
        assert row["redcap_event_name"] in events
        form = row["redcap_repeat_instrument"]
        if form:
            assert (row["redcap_event_name"], form) in designated & repeating
    assert {r["custom_form_label"] for r in out["redcap_repeating_instruments"]} == {
        "[tl_id]", "[ntl_id]", "[nl_id]"}


def test_unsigned_rows_are_marked(scored_trial: ScoredTrial, tmp_path: Path) -> None:
    imp = _export(scored_trial.db_path, tmp_path, include_unsigned=True)["redcap_import"]
    for row in imp:
        complete = [v for k, v in row.items() if k.endswith("_complete") and v]
        assert complete == ["1"]  # Unverified
        status = [v for k, v in row.items() if k.endswith("read_status") and v]
        assert status in (["0"], [])  # the best-response row has no read of its own
