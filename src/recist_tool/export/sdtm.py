"""SDTM TU, TR and RS (CDISC RECIST 1.1 supplement) from a :class:`TrialExport`.

One model (:func:`build_sdtm`: domains with their variables and typed rows), three writers:
CSV (:func:`write_sdtm_csv`), SAS transport version 5 via pyreadstat (:func:`write_sdtm_xpt`) and
CDISC Dataset-JSON 1.1 (:func:`write_dataset_json`). The exporter entry points are
:func:`export_sdtm` (CSV + XPT) and :func:`export_dataset_json`.

Conventions (docs/export_edc.md):

- ``USUBJID = STUDYID-SUBJID`` with the store's pseudonymous subject code; nothing else about the
  patient is exported.
- TU: ``TUTESTCD = TUMIDENT``; ``TUORRES`` / ``TUSTRESC`` ``TARGET``, ``NON-TARGET``, ``NEW``
  (iRECIST ``NEW TARGET`` / ``NEW NON-TARGET``); ``TULOC`` the organ, ``LYMPH NODE`` for nodal
  lesions; ``TULNKID`` the lesion ID; identified at baseline (targets, non-targets) or at the visit
  a new lesion first appears.
- TR: targets ``LDIAM`` (non-nodal long axis) or ``LPERP`` (nodal short axis) in mm, one per visit;
  ``TOO SMALL TO MEASURE`` with ``TRSTRESN`` 5 (or the smaller value measured); disappeared targets
  0 mm; not evaluated ``TRSTAT = NOT DONE``; ``SUMDIAM`` per visit (``TRGRPID TARGET``, no
  ``TRLNKID``); non-targets and new lesions ``TUMSTATE`` (``PRESENT``, ``ABSENT``, ``UNEQUIVOCAL
  PROGRESSION``, ``INCREASED``, ``EQUIVOCAL``), with the measured diameter where the read has one.
  ``TRLNKGRP`` / ``RSLNKGRP`` link a visit's TR records to its RS records.
- RS: ``TRGRESP``, ``NTRGRESP``, ``NEWLIND``, ``NEWLPROG`` (only with a new lesion), ``OVRLRESP``
  per follow-up (the reader's confirmed overall response) — the same conventions as
  ``recist respond`` — and ``BESTRESP`` (best overall response) once per subject.
- ``--EVAL = INDEPENDENT ASSESSOR``; ``--EVALID`` never the login: ``options["evaluator_ids"]``
  (account → identifier, the trial settings' ``[evaluators]`` table), else ``RADIOLOGIST n`` /
  ``ALGORITHM n`` by first read in the trial (:func:`recist_tool.store.snapshot.default_evaluator_ids`);
  ``options["evaluator_id"]`` names the one reader of an export. ``--DTC`` the scan date,
  ``VISITNUM`` the store's visit number or the visit's rank.
- Unsigned reads (exported only with ``include_unsigned``) are marked in SUPPTU / SUPPTR / SUPPRS:
  ``QNAM = READSTAT``, ``QVAL = UNSIGNED`` for each record that comes from an unsigned read.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from recist_tool.errors import InputError, UsageError
from recist_tool.recist.model import (
    Lesion,
    LesionState,
    NewLesionStatus,
    Response,
    TimepointResponse,
)
from recist_tool.recist.sdtm import SubjectRecord, rs_rows
from recist_tool.recist.timepoint import TOO_SMALL_DEFAULT_MM
from recist_tool.store.snapshot import (
    SubjectExport,
    TrialExport,
    decimal_text,
    default_evaluator_ids,
    target_sum,
)

__all__ = [
    "Variable",
    "Domain",
    "build_sdtm",
    "write_sdtm_csv",
    "write_sdtm_xpt",
    "write_dataset_json",
    "check_xpt_v5",
    "evaluator_ids",
    "export_sdtm",
    "export_dataset_json",
    "EVALUATOR",
    "DATASET_JSON_VERSION",
]

EVALUATOR = "INDEPENDENT ASSESSOR"
DATASET_JSON_VERSION = "1.1.0"
XPT_MAX_NAME, XPT_MAX_LABEL, XPT_MAX_VALUE = 8, 40, 200
_UNSIGNED = "UNSIGNED"

Value = str | int | Decimal | None


@dataclass(frozen=True)
class Variable:
    """One SDTM variable: name, label, type (``text``, ``integer``, ``decimal``)."""

    name: str
    label: str
    type: str = "text"


@dataclass
class Domain:
    """An SDTM data set: name, label, variables in order and rows (``name → value``)."""

    name: str
    label: str
    variables: tuple[Variable, ...]
    rows: list[dict[str, Value]] = field(default_factory=list)
    keys: tuple[str, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        """Variable names in order."""
        return tuple(v.name for v in self.variables)

    def length(self, name: str) -> int:
        """Longest text value of a variable (1 when empty) — the planned SAS length."""
        n = max((len(_text(r.get(name))) for r in self.rows), default=1)
        return max(n, 1)


def _v(name: str, label: str, type_: str = "text") -> Variable:
    return Variable(name, label, type_)


_COMMON_HEAD = (_v("STUDYID", "Study Identifier"), _v("DOMAIN", "Domain Abbreviation"),
                _v("USUBJID", "Unique Subject Identifier"))
_VISIT = (_v("VISITNUM", "Visit Number", "decimal"), _v("VISIT", "Visit Name"))

TU_VARS = (*_COMMON_HEAD, _v("TUSEQ", "Sequence Number", "integer"),
           _v("TULNKID", "Link ID"),
           _v("TUTESTCD", "Tumor/Lesion ID Short Name"), _v("TUTEST", "Tumor/Lesion ID Test Name"),
           _v("TUORRES", "Tumor/Lesion ID Result"), _v("TUSTRESC", "Tumor/Lesion ID Result Std. Format"),
           _v("TULOC", "Location of the Tumor/Lesion"), _v("TUMETHOD", "Method of Identification"),
           _v("TUEVAL", "Evaluator"), _v("TUEVALID", "Evaluator Identifier"),
           *_VISIT, _v("TUDTC", "Date/Time of Tumor/Lesion Identification"))
TR_VARS = (*_COMMON_HEAD, _v("TRSEQ", "Sequence Number", "integer"),
           _v("TRGRPID", "Group ID"), _v("TRLNKGRP", "Link Group ID"), _v("TRLNKID", "Link ID"),
           _v("TRTESTCD", "Tumor/Lesion Assessment Short Name"),
           _v("TRTEST", "Tumor/Lesion Assessment Test Name"),
           _v("TRORRES", "Result or Finding in Original Units"), _v("TRORRESU", "Original Units"),
           _v("TRSTRESC", "Character Result/Finding in Std Format"),
           _v("TRSTRESN", "Numeric Result/Finding in Standard Units", "decimal"),
           _v("TRSTRESU", "Standard Units"), _v("TRSTAT", "Completion Status"),
           _v("TRREASND", "Reason Not Done"), _v("TRMETHOD", "Method Used to Identify the Tumor"),
           _v("TREVAL", "Evaluator"), _v("TREVALID", "Evaluator Identifier"),
           *_VISIT, _v("TRDTC", "Date/Time of Tumor/Lesion Measurement"))
RS_VARS = (*_COMMON_HEAD, _v("RSSEQ", "Sequence Number", "integer"),
           _v("RSLNKGRP", "Link Group ID"),
           _v("RSTESTCD", "Assessment Short Name"), _v("RSTEST", "Assessment Name"),
           _v("RSCAT", "Category for Assessment"),
           _v("RSORRES", "Result or Finding in Original Units"),
           _v("RSSTRESC", "Character Result/Finding in Std Format"),
           _v("RSEVAL", "Evaluator"), _v("RSEVALID", "Evaluator Identifier"),
           *_VISIT, _v("RSDTC", "Date/Time of Assessment"))
SUPP_VARS = (_v("STUDYID", "Study Identifier"), _v("RDOMAIN", "Related Domain Abbreviation"),
             _v("USUBJID", "Unique Subject Identifier"), _v("IDVAR", "Identifying Variable"),
             _v("IDVARVAL", "Identifying Variable Value"), _v("QNAM", "Qualifier Variable Name"),
             _v("QLABEL", "Qualifier Variable Label"), _v("QVAL", "Data Value"),
             _v("QORIG", "Origin"), _v("QEVAL", "Evaluator"))

_TR_TESTS = {"LDIAM": "Longest Diameter", "LPERP": "Longest Perpendicular",
             "SUMDIAM": "Sum of Diameters", "TUMSTATE": "Tumor State"}
_STATE_TEXT = {
    LesionState.PRESENT: "PRESENT", LesionState.ABSENT: "ABSENT",
    LesionState.UNEQUIVOCAL_PROGRESSION: "UNEQUIVOCAL PROGRESSION",
    LesionState.INCREASED: "INCREASED", LesionState.EQUIVOCAL: "EQUIVOCAL",
    LesionState.MEASURED: "PRESENT", LesionState.TOO_SMALL: "PRESENT",
    LesionState.SPLIT: "PRESENT", LesionState.MERGED: "PRESENT",
}


def _text(value: Value) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return decimal_text(value)
    return str(value)


def _visit_numbers(subj: SubjectExport) -> dict[str, Decimal]:
    """VISITNUM per visit: the store's number, else the rank in date order (baseline 1)."""
    out: dict[str, Decimal] = {}
    for i, tp in enumerate(subj.timepoints, start=1):
        out[tp.visit] = Decimal(tp.visit_num) if tp.visit_num is not None else Decimal(i)
    for i, rd in enumerate(subj.reads, start=1):  # reads of visits without a timepoint row
        out.setdefault(rd.visit, Decimal(i))
    return out


def _lnkgrp(visit: str) -> str:
    return visit


@dataclass
class _Ctx:
    studyid: str
    usubjid: str
    evalid: str
    unsigned: set[str]


def build_sdtm(data: TrialExport, *, options: Mapping[str, Any] | None = None) -> dict[str, Domain]:
    """TU, TR and RS domains (and SUPPTU/SUPPTR/SUPPRS for unsigned reads) of an export.

    Parameters
    ----------
    data : TrialExport
        What :func:`recist_tool.store.snapshot.collect` read from the store.
    options : mapping, optional
        ``studyid`` (default: the trial name); ``evaluator_ids`` (reader account → ``--EVALID``,
        e.g. from :func:`recist_tool.store.settings.read_evaluator_ids`; must cover every
        exported reader) or ``evaluator_id`` (one identifier, for an export of one reader);
        without either the trial's default numbering (see :func:`evaluator_ids`);
        ``best_response`` (default True: add a ``BESTRESP`` row per subject).

    Raises
    ------
    InputError
        A subject without reads or without a baseline read; an ``evaluator_ids`` table without
        an exported reader.
    UsageError
        ``evaluator_id`` given for an export of several readers.
    """
    opts = dict(options or {})
    studyid = str(opts.get("studyid") or data.trial)
    evalids = evaluator_ids(data, opts)
    tu = Domain("TU", "Tumor/Lesion Identification", TU_VARS, keys=("STUDYID", "USUBJID", "TUSEQ"))
    tr = Domain("TR", "Tumor/Lesion Results", TR_VARS, keys=("STUDYID", "USUBJID", "TRSEQ"))
    rs = Domain("RS", "Disease Response and Clin Classification", RS_VARS,
                keys=("STUDYID", "USUBJID", "RSSEQ"))
    supp = {d: Domain(f"SUPP{d}", f"Supplemental Qualifiers for {d}", SUPP_VARS,
                      keys=("STUDYID", "RDOMAIN", "USUBJID", "IDVAR", "IDVARVAL", "QNAM"))
            for d in ("TU", "TR", "RS")}
    for subj in data.subjects:
        if not subj.reads:
            raise InputError(f"subject {subj.code}: no reads to export")
        ctx = _Ctx(studyid, f"{studyid}-{subj.code}", evalids[subj.reader],
                   set(subj.unsigned_visits))
        _subject_rows(subj, data.criteria or subj.criteria, ctx, tu, tr, rs, supp,
                      bool(opts.get("best_response", True)))
    out = {"TU": tu, "TR": tr, "RS": rs}
    for d in supp.values():
        if d.rows:
            out[d.name] = d
    return out


def evaluator_ids(data: TrialExport, options: Mapping[str, Any] | None = None) -> dict[str, str]:
    """``--EVALID`` of each reader in an export; never the login unless a table says so.

    In order: ``options["evaluator_id"]`` (an export of one reader), ``options["evaluator_ids"]``
    (account → identifier; every exported reader must be in it), the trial's numbering by first
    read (``data.evaluator_ids``), else the readers numbered as they appear in ``data``.

    Raises
    ------
    InputError
        An ``evaluator_ids`` table without one of the exported readers.
    UsageError
        ``evaluator_id`` for an export of several readers (their records would merge).
    """
    opts = options or {}
    readers = list(dict.fromkeys(s.reader for s in data.subjects))
    if opts.get("evaluator_id"):
        if len(readers) > 1:
            raise UsageError(f"one evaluator_id for several readers ({', '.join(readers)}): "
                             "map each in the trial settings' [evaluators] table")
        return dict.fromkeys(readers, str(opts["evaluator_id"]))
    table = opts.get("evaluator_ids") or {}
    if table:
        missing = [r for r in readers if r not in table]
        if missing:
            raise InputError(f"[evaluators] of the trial settings has no --EVALID for reader "
                             f"{', '.join(missing)}")
        return {r: str(table[r]) for r in readers}
    if all(r in data.evaluator_ids for r in readers):
        return {r: data.evaluator_ids[r] for r in readers}
    return default_evaluator_ids(readers, {s.reader for s in data.subjects if s.automated_reader})


def _subject_rows(subj: SubjectExport, criteria: str, ctx: _Ctx, tu: Domain, tr: Domain,
                  rs: Domain, supp: dict[str, Domain], with_best: bool) -> None:
    vnum = _visit_numbers(subj)
    dates = {rd.visit: rd.date for rd in subj.reads}
    lesions = {les.lesion_id: les for les in subj.lesions}
    base = subj.reads[0]
    first_seen: dict[str, str] = {}
    for rd in subj.reads:
        for seen in rd.measurements:
            first_seen.setdefault(seen.lesion_id, rd.visit)
    for les in subj.lesions:
        first_seen.setdefault(les.lesion_id, base.visit)

    def common(dom: str, visit: str) -> dict[str, Value]:
        return {"STUDYID": ctx.studyid, "DOMAIN": dom, "USUBJID": ctx.usubjid,
                "VISITNUM": vnum[visit], "VISIT": visit}

    def mark(dom: Domain, row: dict[str, Value], visit: str, *, unsigned: bool | None = None
             ) -> None:
        seq_name = f"{dom.name}SEQ"
        row[seq_name] = sum(1 for r in dom.rows if r["USUBJID"] == ctx.usubjid) + 1
        dom.rows.append(row)
        if unsigned if unsigned is not None else visit in ctx.unsigned:
            supp[dom.name].rows.append({
                "STUDYID": ctx.studyid, "RDOMAIN": dom.name, "USUBJID": ctx.usubjid,
                "IDVAR": seq_name, "IDVARVAL": str(row[seq_name]), "QNAM": "READSTAT",
                "QLABEL": "Read Signature Status", "QVAL": _UNSIGNED, "QORIG": "Assigned",
                "QEVAL": EVALUATOR})

    # TU: one identification record per lesion, at the visit it was identified
    order = sorted(subj.lesions, key=lambda les: (vnum[first_seen[les.lesion_id]],
                                                  _cat_rank(les), les.lesion_id))
    for les in order:
        visit = first_seen[les.lesion_id]
        row = common("TU", visit) | {
            "TULNKID": les.lesion_id, "TUTESTCD": "TUMIDENT", "TUTEST": "Tumor Identification",
            "TUORRES": les.category.value, "TUSTRESC": les.category.value,
            "TULOC": "LYMPH NODE" if les.nodal else (les.organ or "").upper(),
            "TUMETHOD": "CT SCAN", "TUEVAL": EVALUATOR, "TUEVALID": ctx.evalid,
            "TUDTC": dates[visit].isoformat()}
        mark(tu, row, visit)

    # TR: per visit, targets (+ SUMDIAM), non-targets, new lesions
    targets = [les for les in subj.lesions if les.category.value == "TARGET"]
    def tr_row(visit: str, grp: str, lid: str | None, code: str, **values: Value) -> None:
        row: dict[str, Value] = common("TR", visit) | {
            "TRGRPID": grp, "TRLNKGRP": _lnkgrp(visit), "TRLNKID": lid or "",
            "TRTESTCD": code, "TRTEST": _TR_TESTS[code], "TRORRES": "", "TRORRESU": "",
            "TRSTRESC": "", "TRSTRESN": None, "TRSTRESU": "", "TRSTAT": "", "TRREASND": "",
            "TRMETHOD": "CT SCAN", "TREVAL": EVALUATOR, "TREVALID": ctx.evalid,
            "TRDTC": dates[visit].isoformat()}
        row.update(values)
        mark(tr, row, visit)

    for rd in subj.reads:
        by_id = {m.lesion_id: m for m in rd.measurements}
        for les in sorted(subj.lesions, key=lambda x: (_cat_rank(x), x.lesion_id)):
            m = by_id.get(les.lesion_id)
            if m is None:
                continue
            if les.category.value == "TARGET":
                _target_rows(tr_row, rd.visit, les, m)
            else:
                grp = "NON-TARGET" if les.category.value == "NON-TARGET" else "NEW"
                _state_rows(tr_row, rd.visit, grp, les, m)
        if targets:
            total = target_sum(targets, rd)
            if total.complete:
                tr_row(rd.visit, "TARGET", None, "SUMDIAM", TRORRES=decimal_text(total.total),
                       TRORRESU="mm", TRSTRESC=decimal_text(total.total), TRSTRESN=total.total,
                       TRSTRESU="mm")

    # RS: stored (confirmed) responses, same conventions as `recist respond`
    rec = SubjectRecord(ctx.studyid, ctx.usubjid, EVALUATOR, ctx.evalid,
                        tuple(lesions.values()), ())
    responses: list[TimepointResponse] = []
    overall: list[Response] = []
    for rd in subj.reads[1:]:
        r = rd.response
        if r is None:
            continue
        responses.append(TimepointResponse(
            rd.visit, rd.date, _resp(r.target), _resp(r.non_target),
            NewLesionStatus(r.new_lesions), Response(r.overall), visit_num=vnum[rd.visit],
            date_text=rd.date.isoformat()))
        overall.append(Response(r.confirmed_overall or r.overall))
    for rs_row in rs_rows(rec, responses, overall, criteria):
        visit = str(rs_row["VISIT"])
        out: dict[str, Value] = {k: rs_row[k] for k in rs_row if k not in ("RSSEQ", "VISITNUM")}
        out["VISITNUM"] = vnum[visit]
        out["RSLNKGRP"] = _lnkgrp(visit)
        mark(rs, out, visit)
    if with_best and subj.best is not None:
        b = subj.best
        confirmed = bool((subj.policies or {}).get("confirmation", False))
        bor, bor_date = (b.confirmed_bor, b.confirmed_bor_date) if confirmed else (b.bor, b.bor_date)
        row = {"STUDYID": ctx.studyid, "DOMAIN": "RS", "USUBJID": ctx.usubjid, "RSLNKGRP": "",
               "RSTESTCD": "BESTRESP", "RSTEST": "Best Overall Response", "RSCAT": criteria,
               "RSORRES": bor.value, "RSSTRESC": bor.value, "RSEVAL": EVALUATOR,
               "RSEVALID": ctx.evalid, "VISITNUM": None, "VISIT": "",
               "RSDTC": bor_date.isoformat() if bor_date else ""}
        # the best response rests on every read: unsigned as soon as one of them is
        mark(rs, row, "", unsigned=bool(ctx.unsigned))


def _resp(value: str | None) -> Response | None:
    return None if value is None else Response(value)


def _cat_rank(les: Lesion) -> int:
    return {"TARGET": 0, "NON-TARGET": 1}.get(les.category.value, 2)


def _mm(d: Decimal) -> dict[str, Value]:
    t = decimal_text(d)
    return {"TRORRES": t, "TRORRESU": "mm", "TRSTRESC": t, "TRSTRESN": d, "TRSTRESU": "mm"}


def _target_rows(tr_row: Any, visit: str, les: Lesion, m: Any) -> None:
    code = "LPERP" if les.nodal else "LDIAM"
    st = LesionState(m.state)
    if st is LesionState.MEASURED:
        tr_row(visit, "TARGET", les.lesion_id, code, **_mm(m.diameter_mm))
    elif st is LesionState.TOO_SMALL:
        d = m.diameter_mm
        value = d if d is not None and d < TOO_SMALL_DEFAULT_MM else TOO_SMALL_DEFAULT_MM
        tr_row(visit, "TARGET", les.lesion_id, code, TRORRES="TOO SMALL TO MEASURE",
               TRSTRESC="TOO SMALL TO MEASURE", TRSTRESN=value, TRSTRESU="mm")
    elif st in (LesionState.ABSENT, LesionState.MERGED):
        # disappeared (or coalesced into another target, which carries the merged diameter)
        tr_row(visit, "TARGET", les.lesion_id, code, **_mm(Decimal(0)))
    elif st is LesionState.SPLIT:
        total = sum(m.fragments_mm, Decimal(0)) if m.fragments_mm else m.diameter_mm
        if total is None:
            tr_row(visit, "TARGET", les.lesion_id, code, TRSTAT="NOT DONE",
                   TRREASND="SPLIT WITHOUT FRAGMENT MEASUREMENTS")
        else:
            tr_row(visit, "TARGET", les.lesion_id, code, **_mm(total))
    else:  # NOT EVALUATED and states that do not apply to a target
        tr_row(visit, "TARGET", les.lesion_id, code, TRSTAT="NOT DONE",
               TRREASND="NOT EVALUABLE" if st is LesionState.NOT_EVALUATED else st.value)


def _state_rows(tr_row: Any, visit: str, grp: str, les: Lesion, m: Any) -> None:
    st = LesionState(m.state)
    if st is LesionState.NOT_EVALUATED:
        tr_row(visit, grp, les.lesion_id, "TUMSTATE", TRSTAT="NOT DONE", TRREASND="NOT EVALUABLE")
        return
    state = _STATE_TEXT.get(st)
    if state is None:  # pragma: no cover - every LesionState is mapped
        raise InputError(f"lesion {les.lesion_id} at {visit}: state {st.value} has no TUMSTATE")
    tr_row(visit, grp, les.lesion_id, "TUMSTATE", TRORRES=state, TRSTRESC=state)
    if st is LesionState.MEASURED and m.diameter_mm is not None:
        tr_row(visit, grp, les.lesion_id, "LPERP" if les.nodal else "LDIAM", **_mm(m.diameter_mm))


# --- writers ------------------------------------------------------------------------------------


def write_sdtm_csv(domain: Domain, path: Path) -> Path:
    """Write one domain as CSV (header = variable names, text quoted, decimals exact)."""
    from recist_tool.io.sdtm_csv import write_csv

    write_csv(path, domain.columns, ({c: _text(r.get(c)) for c in domain.columns}
                                     for r in domain.rows))
    return path


def check_xpt_v5(domain: Domain) -> None:
    """Refuse what SAS transport version 5 cannot hold (no silent truncation).

    Raises
    ------
    InputError
        A data set or variable name over 8 characters, a label over 40, a text value over 200
        characters, or a character outside ASCII.
    """
    if len(domain.name) > XPT_MAX_NAME:
        raise InputError(f"XPT v5: data set name {domain.name!r} is longer than 8 characters")
    if len(domain.label) > XPT_MAX_LABEL:
        raise InputError(f"XPT v5: {domain.name} label {domain.label!r} is longer than 40")
    for v in domain.variables:
        if len(v.name) > XPT_MAX_NAME:
            raise InputError(f"XPT v5: {domain.name}.{v.name}: name longer than 8 characters")
        if len(v.label) > XPT_MAX_LABEL:
            raise InputError(f"XPT v5: {domain.name}.{v.name}: label {v.label!r} is longer "
                             "than 40 characters")
    for i, row in enumerate(domain.rows, start=1):
        for v in domain.variables:
            if v.type != "text":
                continue
            text = _text(row.get(v.name))
            if len(text) > XPT_MAX_VALUE:
                raise InputError(f"XPT v5: {domain.name} row {i} {v.name}: value longer than "
                                 f"200 characters ({len(text)})")
            if not text.isascii():
                raise InputError(f"XPT v5: {domain.name} row {i} {v.name}: {text!r} is not "
                                 "ASCII (transport files hold ASCII text only)")


def write_sdtm_xpt(domain: Domain, path: Path) -> Path:
    """Write one domain as SAS transport version 5 (pyreadstat), after :func:`check_xpt_v5`."""
    import pandas as pd
    import pyreadstat

    check_xpt_v5(domain)
    cols: dict[str, list[Any]] = {}
    for v in domain.variables:
        values = [r.get(v.name) for r in domain.rows]
        if v.type == "text":
            cols[v.name] = [_text(x) for x in values]
        else:
            cols[v.name] = [math.nan if x is None else float(x) for x in values]
    df = pd.DataFrame(cols, columns=list(domain.columns))
    try:
        pyreadstat.write_xport(df, str(path), file_label=domain.label, table_name=domain.name,
                               column_labels=[v.label for v in domain.variables],
                               file_format_version=5)
    except Exception as exc:  # pyreadstat raises its own ReadstatError / ValueError
        raise InputError(f"cannot write {path.name}: {exc}") from exc
    return path


_DJ_TYPES = {"text": "string", "integer": "integer", "decimal": "decimal"}


def dataset_json(domain: Domain, *, study_oid: str, created: _dt.datetime | None = None,
                 version: str = "") -> dict[str, Any]:
    """The CDISC Dataset-JSON 1.1 object of one domain (attribute order as the spec lists).

    Decimals (VISITNUM, TRSTRESN) are exchanged as strings with ``targetDataType`` ``decimal``
    so that 9.8 stays exactly 9.8; sequence numbers are integers; missing values are ``null`` in
    every column, text included (an empty text cell is a missing value, as in SAS).
    """
    created = created or _dt.datetime.now(_dt.UTC)
    name = domain.name
    columns = []
    for v in domain.variables:
        col: dict[str, Any] = {"itemOID": f"IT.{name}.{v.name}", "name": v.name, "label": v.label,
                               "dataType": _DJ_TYPES[v.type]}
        if v.type == "decimal":
            col["targetDataType"] = "decimal"
        if v.type == "text":
            col["length"] = domain.length(v.name)
        if v.name in domain.keys:
            col["keySequence"] = domain.keys.index(v.name) + 1
        columns.append(col)
    rows = []
    for r in domain.rows:
        row: list[Any] = []
        for v in domain.variables:
            x = r.get(v.name)
            if v.type == "text":
                row.append(_text(x) or None)
            elif x is None:
                row.append(None)
            elif v.type == "integer":
                row.append(int(x))
            else:
                row.append(decimal_text(Decimal(x)))
        rows.append(row)
    from recist_tool import __version__ as tool_version

    return {
        "datasetJSONCreationDateTime": created.strftime("%Y-%m-%dT%H:%M:%S"),
        "datasetJSONVersion": DATASET_JSON_VERSION,
        "fileOID": f"recist-tool.{study_oid}.{name}",
        "originator": "recist-tool",
        "sourceSystem": {"name": "recist-tool", "version": version or tool_version},
        "studyOID": study_oid,
        "itemGroupOID": f"IG.{name}",
        "records": len(rows),
        "name": name,
        "label": domain.label,
        "columns": columns,
        "rows": rows,
    }


def write_dataset_json(domain: Domain, path: Path, *, study_oid: str,
                       created: _dt.datetime | None = None) -> Path:
    """Write one domain as a Dataset-JSON 1.1 file (UTF-8)."""
    obj = dataset_json(domain, study_oid=study_oid, created=created)
    try:
        path.write_text(json.dumps(obj, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return path


# --- exporter entry points -----------------------------------------------------------------------


def export_sdtm(data: TrialExport, out_dir: Path, *, options: Mapping[str, Any]) -> list[Path]:
    """SDTM TU/TR/RS (+ SUPP-- for unsigned reads) as CSV and SAS XPT v5 under ``out_dir``.

    All files are written under temporary names and renamed only when every one succeeded.
    """
    from recist_tool.io.outputs import atomic_outputs

    domains = build_sdtm(data, options=options)
    for d in domains.values():
        check_xpt_v5(d)  # refuse before anything is written
    out_dir = Path(out_dir)
    with atomic_outputs(out_dir) as out:
        for d in domains.values():
            write_sdtm_csv(d, out.path(f"{d.name.lower()}.csv"))
            write_sdtm_xpt(d, out.path(f"{d.name.lower()}.xpt"))
    return out.finals


def export_dataset_json(data: TrialExport, out_dir: Path, *, options: Mapping[str, Any]
                        ) -> list[Path]:
    """SDTM TU/TR/RS (+ SUPP-- for unsigned reads) as CDISC Dataset-JSON 1.1 files."""
    from recist_tool.io.outputs import atomic_outputs

    domains = build_sdtm(data, options=options)
    study_oid = str(options.get("studyid") or data.trial)
    out_dir = Path(out_dir)
    with atomic_outputs(out_dir) as out:
        for d in domains.values():
            write_dataset_json(d, out.path(f"{d.name.lower()}.json"), study_oid=study_oid,
                               created=data.created)
    return out.finals
