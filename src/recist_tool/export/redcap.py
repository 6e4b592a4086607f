"""REDCap export: a data dictionary, the matching longitudinal import CSV, and project set-up CSVs.

Files (all written together or not at all):

- ``redcap_data_dictionary.csv``: the instruments (timepoint response, target / non-target / new
  lesions as repeating instruments, best response) with their fields, choice codes and validation,
  in REDCap's 18-column data dictionary layout.
- ``redcap_import.csv``: one row per subject and event (visit) for the timepoint response, one row
  per lesion for the repeating lesion instruments (``redcap_repeat_instrument`` /
  ``redcap_repeat_instance``), one row for the best response; ``<instrument>_complete`` is 2
  (Complete) for a signed read and 1 (Unverified) for an unsigned one, and each instrument carries
  a read-status field (1 signed, 0 unsigned).
- ``redcap_events.csv``, ``redcap_instrument_event_mapping.csv``, ``redcap_repeating_instruments.csv``:
  what the project needs to accept the import (arms/events, which instrument in which event, which
  instruments repeat).

Field and event names come from the mapping file (``[redcap]`` of docs/export_edc.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recist_tool.errors import InputError
from recist_tool.export.edc_items import CODELISTS, ITEMS, lesion_form
from recist_tool.export.mapping import EdcMapping, load_mapping
from recist_tool.recist.model import Category
from recist_tool.store.snapshot import decimal_text, target_sum

if TYPE_CHECKING:  # pragma: no cover
    from recist_tool.store.snapshot import SubjectExport, TrialExport

__all__ = ["export_redcap", "DICTIONARY_COLUMNS", "FIELDS", "choice_codes"]

DICTIONARY_COLUMNS = (
    "Variable / Field Name", "Form Name", "Section Header", "Field Type", "Field Label",
    "Choices, Calculations, OR Slider Labels", "Field Note",
    "Text Validation Type OR Show Slider Number", "Text Validation Min", "Text Validation Max",
    "Identifier?", "Branching Logic (Show field only if...)", "Required Field?",
    "Custom Alignment", "Question Number (surveys only)", "Matrix Group Name", "Matrix Ranking?",
    "Field Annotation")

_REPEATING = ("target", "non_target", "new")


def _fields() -> dict[str, tuple[str, str, str, str | None]]:
    """REDCap fields from the ODM items (one list of what is exported): the same names, labels and
    code lists, plus the scan date and a signed flag on every lesion instrument."""
    fields: dict[str, tuple[str, str, str, str | None]] = {
        "visit_date": ("response", "Scan date", "date", None)}
    for name, (label, dtype, cl, form) in ITEMS.items():
        if cl == "SIGN":
            fields[name] = (form, "Read signed", "status", None)
        elif cl == "NY":
            fields[name] = (form, label, "yesno", None)
        elif cl is not None:
            fields[name] = (form, label, "choice", cl)
        else:
            fields[name] = (form, label, {"float": "number", "date": "date"}.get(dtype, "text"), None)
    prefix = {"target": "tl", "non_target": "ntl", "new": "nl"}
    for form in _REPEATING:
        fields[f"{prefix[form]}_status"] = (form, "Read signed", "status", None)
    return fields


#: Logical field → (instrument key, label, kind, code list) where kind is text / number / date /
#: yesno / choice / status.
FIELDS: dict[str, tuple[str, str, str, str | None]] = _fields()
_INSTRUMENT_ORDER = ("response", "target", "non_target", "new", "best")
_LABELS = {"target": "[{}]", "non_target": "[{}]", "new": "[{}]"}


def choice_codes(codelist: str) -> dict[str, int]:
    """Value → REDCap choice code (1, 2, ... in the ODM code-list order)."""
    return {v: i for i, v in enumerate(CODELISTS[codelist][1], start=1)}


def _choices(codelist: str) -> str:
    return " | ".join(f"{code}, {value}" for value, code in choice_codes(codelist).items())


def _dictionary(m: EdcMapping) -> list[dict[str, str]]:
    rows = []
    rid = str(m.get("redcap.record_id"))
    first_form = str(m.get(f"redcap.instruments.{_INSTRUMENT_ORDER[0]}"))
    rows.append({"Variable / Field Name": rid, "Form Name": first_form, "Field Type": "text",
                 "Field Label": "Subject (trial subject code)"})
    for inst in _INSTRUMENT_ORDER:
        form = str(m.get(f"redcap.instruments.{inst}"))
        for key, (i, label, kind, cl) in FIELDS.items():
            if i != inst:
                continue
            row = {"Variable / Field Name": m.redcap_field(key), "Form Name": form,
                   "Field Label": label}
            if kind == "text":
                row["Field Type"] = "text"
            elif kind == "number":
                row |= {"Field Type": "text", "Text Validation Type OR Show Slider Number": "number",
                        "Text Validation Min": "0", "Field Note": "mm"}
            elif kind == "date":
                row |= {"Field Type": "text", "Text Validation Type OR Show Slider Number": "date_ymd"}
            elif kind == "yesno":
                row["Field Type"] = "yesno"
            elif kind == "status":
                row |= {"Field Type": "radio",
                        "Choices, Calculations, OR Slider Labels": "1, Signed | 0, Unsigned"}
            else:
                assert cl is not None
                row |= {"Field Type": "dropdown",
                        "Choices, Calculations, OR Slider Labels": _choices(cl)}
            if key.endswith("_id"):
                row["Required Field?"] = "y"
            rows.append(row)
    return [{c: r.get(c, "") for c in DICTIONARY_COLUMNS} for r in rows]


def _code(cl: str, value: str | None, where: str) -> str:
    if value in (None, ""):
        return ""
    codes = choice_codes(cl)
    if value not in codes:
        raise InputError(f"{where}: {value!r} is not one of the {CODELISTS[cl][0]} choices")
    return str(codes[value])


def _subject_rows(s: SubjectExport, criteria: str, m: EdcMapping) -> list[dict[str, str]]:
    rid = str(m.get("redcap.record_id"))
    f = m.redcap_field
    inst = {k: str(m.get(f"redcap.instruments.{k}")) for k in _INSTRUMENT_ORDER}
    targets = [les for les in s.lesions if les.category == Category.TARGET]
    rows: list[dict[str, str]] = []
    for rd in s.reads:
        event = m.redcap_event(rd.visit)
        signed = s.is_signed(rd.visit)
        status = "1" if signed else "0"
        complete = "2" if signed else "1"
        where = f"{s.code} {rd.visit}"
        total = ""
        if targets:
            ssum = target_sum(targets, rd)
            total = decimal_text(ssum.total) if ssum.complete else ""
        r = rd.response
        row = {rid: s.code, "redcap_event_name": event, "redcap_repeat_instrument": "",
               "redcap_repeat_instance": "", f("visit_date"): rd.date.isoformat(),
               f("sumdiam"): total or "", f("criteria"): _code("CRIT", criteria, where),
               f("read_status"): status, f"{inst['response']}_complete": complete}
        if r is not None:
            row |= {f("trgresp"): _code("RESP", r.target, where),
                    f("ntrgresp"): _code("RESP", r.non_target, where),
                    f("newlprog"): _code("NEWL", None if r.new_lesions == "NONE" else r.new_lesions,
                                         where),
                    f("ovrlresp"): _code("RESP", r.confirmed_overall or r.overall, where),
                    f("ovrlresp_computed"): _code("RESP", r.overall, where)}
        rows.append(row)
        meas = {x.lesion_id: x for x in rd.measurements}
        counters = dict.fromkeys(_REPEATING, 0)
        for les in sorted(s.lesions, key=lambda x: x.lesion_id):
            x = meas.get(les.lesion_id)
            if x is None:
                continue
            key = lesion_form(les.category)
            counters[key] += 1
            lw = f"{where} {les.lesion_id}"
            row = {rid: s.code, "redcap_event_name": event, "redcap_repeat_instrument": inst[key],
                   "redcap_repeat_instance": str(counters[key]), f"{inst[key]}_complete": complete}
            nodal = "1" if les.nodal else "0"
            if key == "target":
                row |= {f("tl_id"): les.lesion_id, f("tl_loc"): les.organ, f("tl_nodal"): nodal,
                        f("tl_state"): _code("STATE", x.state, lw),
                        f("tl_diam"): decimal_text(x.diameter_mm) or "",
                        f("tl_ldiam"): decimal_text(x.long_axis_mm) or "",
                        f("tl_sdiam"): decimal_text(x.short_axis_mm) or "",
                        f("tl_method"): _code("METHOD", x.method, lw), f("tl_status"): status}
            elif key == "non_target":
                row |= {f("ntl_id"): les.lesion_id, f("ntl_loc"): les.organ,
                        f("ntl_nodal"): nodal, f("ntl_state"): _code("STATE", x.state, lw),
                        f("ntl_status"): status}
            else:
                row |= {f("nl_id"): les.lesion_id, f("nl_loc"): les.organ, f("nl_nodal"): nodal,
                        f("nl_category"): _code("NEWCAT", les.category.value, lw),
                        f("nl_state"): _code("STATE", x.state, lw),
                        f("nl_diam"): decimal_text(x.diameter_mm) or "", f("nl_status"): status}
            rows.append(row)
    if s.best is not None:
        b = s.best
        rows.append({rid: s.code, "redcap_event_name": m.redcap_best_event(),
                     "redcap_repeat_instrument": "", "redcap_repeat_instance": "",
                     f("bestrsp"): _code("RESP", b.bor.value, s.code),
                     f("bestrsp_date"): b.bor_date.isoformat() if b.bor_date else "",
                     f("cbestrsp"): _code("RESP", b.confirmed_bor.value, s.code),
                     f("pd_date"): b.pd_date.isoformat() if b.pd_date else "",
                     f"{inst['best']}_complete": "1" if s.unsigned_visits else "2"})
    return rows


def export_redcap(data: TrialExport, out_dir: Path, *, options: Mapping[str, Any]) -> list[Path]:
    """REDCap data dictionary, longitudinal import CSV and project set-up CSVs under ``out_dir``.

    Options: ``mapping`` (path of a mapping TOML; default: the shipped mapping).
    """
    from recist_tool.io.outputs import atomic_outputs, write_csv

    m = load_mapping(options.get("mapping"))
    dictionary = _dictionary(m)
    rid = str(m.get("redcap.record_id"))
    inst = {k: str(m.get(f"redcap.instruments.{k}")) for k in _INSTRUMENT_ORDER}
    fields = [r["Variable / Field Name"] for r in dictionary]
    columns = [rid, "redcap_event_name", "redcap_repeat_instrument", "redcap_repeat_instance"]
    for k in _INSTRUMENT_ORDER:
        columns += [m.redcap_field(key) for key, spec in FIELDS.items() if spec[0] == k]
        columns.append(f"{inst[k]}_complete")
    assert set(fields) <= set(columns)
    rows = [r for s in data.subjects for r in _subject_rows(s, data.criteria, m)]
    arm = str(m.get("redcap.arm"))
    visits: dict[str, str] = {}
    for s in data.subjects:
        for rd in s.reads:
            visits.setdefault(rd.visit, m.redcap_event(rd.visit))
    events = [{"event_name": v, "arm_num": arm, "unique_event_name": e} for v, e in visits.items()]
    events.append({"event_name": "Best response", "arm_num": arm,
                   "unique_event_name": m.redcap_best_event()})
    mapping_rows = [{"arm_num": arm, "unique_event_name": e, "form": inst[k]}
                    for e in visits.values() for k in ("response", *_REPEATING)]
    mapping_rows.append({"arm_num": arm, "unique_event_name": m.redcap_best_event(),
                         "form": inst["best"]})
    repeating = [{"event_name": e, "form_name": inst[k],
                  "custom_form_label": _LABELS[k].format(m.redcap_field(
                      {"target": "tl_id", "non_target": "ntl_id", "new": "nl_id"}[k]))}
                 for e in visits.values() for k in _REPEATING]
    with atomic_outputs(Path(out_dir)) as out:
        write_csv(out.path("redcap_data_dictionary.csv"), DICTIONARY_COLUMNS, dictionary)
        write_csv(out.path("redcap_import.csv"), columns, rows)
        write_csv(out.path("redcap_events.csv"), ("event_name", "arm_num", "unique_event_name"),
                  events)
        write_csv(out.path("redcap_instrument_event_mapping.csv"),
                  ("arm_num", "unique_event_name", "form"), mapping_rows)
        write_csv(out.path("redcap_repeating_instruments.csv"),
                  ("event_name", "form_name", "custom_form_label"), repeating)
    return out.finals
