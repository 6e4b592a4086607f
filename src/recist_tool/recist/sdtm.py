"""CDISC SDTM TU/TR/DM rows → engine inputs, and engine results → RS / best-response rows.

File-free: rows arrive as ``(source, mapping)`` pairs where ``source`` names the row for error
messages (e.g. ``TR.csv:12``); :mod:`recist_tool.io.sdtm_csv` reads and writes the files. Test
codes follow the CDISC RECIST 1.1 supplement: TUMIDENT; LDIAM (long diameter), LPERP (nodal short
axis), DIAMETER, SUMDIAM (ignored: the engine computes the sum), TUMSTATE; TRORRES
``TOO SMALL TO MEASURE``; TRSTAT ``NOT DONE``.

A lesion is summed by the axis RECIST gives it: a node by its short axis (LPERP, else DIAMETER),
any other lesion by its long axis (LDIAM, else DIAMETER). A measurement by the other axis only
(a node's LDIAM, a liver lesion's LPERP) leaves the lesion not evaluated, with a note naming the
row (:attr:`SubjectRecord.notes`).
"""

from __future__ import annotations

import calendar
import datetime as _dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from recist_tool.errors import InputError, RuleViolation
from recist_tool.recist.baseline import check_baseline
from recist_tool.recist.criteria import best, evaluate
from recist_tool.recist.irecist import check_new_lesion_targets
from recist_tool.recist.model import (
    BestResponse,
    Category,
    Criteria,
    Lesion,
    LesionAssessment,
    LesionState,
    Response,
    Timepoint,
    TimepointResponse,
)
from recist_tool.recist.policies import Policies
from recist_tool.recist.timepoint import lesion_value

__all__ = [
    "SubjectRecord",
    "parse_date",
    "parse_tu_tr",
    "reference_dates",
    "rs_rows",
    "best_response_row",
    "RS_COLUMNS",
    "BEST_COLUMNS",
    "CRITERIA",
    "RespondResult",
    "respond",
]

Row = tuple[str, Mapping[str, str]]
_NA = {"", "NA", "N/A", "NULL", "NAN"}
_TR_CODES = {"LDIAM", "LPERP", "DIAMETER", "SUMDIAM", "TUMSTATE", "LNSTATE"}
_CATEGORIES = {
    "TARGET": Category.TARGET, "NON-TARGET": Category.NON_TARGET, "NEW": Category.NEW,
    "NEW TARGET": Category.NEW_TARGET, "NEW NON-TARGET": Category.NEW_NON_TARGET,
    "NEW-TARGET": Category.NEW_TARGET, "NEW NON TARGET": Category.NEW_NON_TARGET,
}
_STATES = {
    "PRESENT": LesionState.PRESENT, "ABSENT": LesionState.ABSENT,
    "UNEQUIVOCAL PROGRESSION": LesionState.UNEQUIVOCAL_PROGRESSION,
    "UNEQUIVOCAL": LesionState.UNEQUIVOCAL_PROGRESSION,
    "EQUIVOCAL": LesionState.EQUIVOCAL, "INCREASED": LesionState.INCREASED,
    "NOT EVALUABLE": LesionState.NOT_EVALUATED, "NOT EVALUATED": LesionState.NOT_EVALUATED,
    "NE": LesionState.NOT_EVALUATED, "NOT ASSESSED": LesionState.NOT_EVALUATED,
    "TOO SMALL TO MEASURE": LesionState.TOO_SMALL,
    # LNSTATE (lymph node state): a non-pathological node counts as resolved
    "PATHOLOGICAL": LesionState.PRESENT, "NON-PATHOLOGICAL": LesionState.ABSENT,
    "NORMAL": LesionState.ABSENT,
}
_DATE_RE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")
#: Plain decimal text, ASCII digits only: no exponent, no ``_`` separators, no other scripts'
#: digits (all of which :class:`~decimal.Decimal` would accept).
_DECIMAL_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
#: TR test codes that give a lesion's RECIST diameter, by nodal flag, in order of preference.
_AXIS_CODES = {True: ("LPERP", "DIAMETER"), False: ("LDIAM", "DIAMETER")}


def _v(row: Mapping[str, str], key: str) -> str:
    val = row.get(key)
    if val is None:
        return ""
    val = str(val).strip()
    return "" if val.upper() in _NA else val


def parse_date(text: str, policies: Policies, where: str) -> _dt.date:
    """ISO 8601 date (time part ignored); partial dates imputed by ``policies.partial_date``."""
    m = _DATE_RE.match(text.strip())
    if not m:
        raise InputError(f"{where}: date {text!r} is not an ISO 8601 date")
    y, mo, d = m.groups()
    try:
        if d is not None:
            return _dt.date(int(y), int(mo), int(d))
        if policies.partial_date == "error":
            raise InputError(f"{where}: partial date {text!r} (policy partial_date=error)")
        if mo is None:
            first = policies.partial_date == "first"
            return _dt.date(int(y), 1, 1) if first else _dt.date(int(y), 12, 31)
        last = calendar.monthrange(int(y), int(mo))[1]
        return _dt.date(int(y), int(mo), 1 if policies.partial_date == "first" else last)
    except ValueError as exc:
        raise InputError(f"{where}: invalid date {text!r}: {exc}") from exc


def _decimal(text: str) -> Decimal | None:
    """``text`` as a Decimal when it is plain decimal notation (see ``_DECIMAL_RE``), else None."""
    if not _DECIMAL_RE.fullmatch(text):
        return None
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern admits only valid decimals
        return None


def _num(text: str, where: str) -> Decimal:
    value = _decimal(text)
    if value is None:
        if text.upper() in ("INF", "INFINITY", "+INF", "-INF", "-INFINITY", "+INFINITY"):
            raise InputError(f"{where}: diameter {text!r} must be a finite number ≥ 0")
        raise InputError(f"{where}: {text!r} is not a number (plain decimal digits, e.g. 12.5)")
    if value < 0:
        raise InputError(f"{where}: diameter {text!r} must be a finite number ≥ 0")
    return value


def _visitnum(text: str, where: str) -> Decimal:
    if not text:
        raise InputError(f"{where}: VISITNUM is missing")
    value = _decimal(text)
    if value is None:
        raise InputError(f"{where}: VISITNUM {text!r} is not a number (plain decimal digits)")
    return value


@dataclass(frozen=True)
class SubjectRecord:
    """Engine input of one subject as read by one evaluator."""

    studyid: str
    usubjid: str
    evaluator: str  #: RSEVAL (e.g. INDEPENDENT ASSESSOR, INVESTIGATOR)
    evaluator_id: str  #: RSEVALID (e.g. RADIOLOGIST 1), may be empty
    lesions: tuple[Lesion, ...]
    timepoints: tuple[Timepoint, ...]  #: baseline first
    #: lesion ID → the TU row that identified it (``file:line``), for messages
    lesion_sources: tuple[tuple[str, str], ...] = ()
    #: (``file:line``, message): results read but not used (a node measured by its long axis only)
    notes: tuple[tuple[str, str], ...] = ()

    def source_of(self, lesion_id: str) -> str:
        """The TU row (``file:line``) that identified ``lesion_id``; empty when unknown."""
        return dict(self.lesion_sources).get(lesion_id, "")


@dataclass
class _LesionInfo:
    lesion: Lesion
    visitnum: Decimal
    source: str


def parse_tu_tr(tu: Iterable[Row], tr: Iterable[Row], policies: Policies | None = None
                ) -> list[SubjectRecord]:
    """Read SDTM TU and TR rows into one :class:`SubjectRecord` per subject and evaluator.

    Raises
    ------
    InputError
        Naming the row (``source``) for unknown test codes or categories, duplicate lesion IDs, a
        lesion measured before its identification/baseline, a visit without a date, values that
        are not numbers, or measurements of lesions absent from TU.
    """
    policies = policies or Policies()
    lesions: dict[tuple, _LesionInfo] = {}
    studies: dict[tuple, str] = {}
    for src, row in tu:
        code = _v(row, "TUTESTCD").upper()
        if code != "TUMIDENT":
            raise InputError(
                f"{src}: unsupported TUTESTCD {code or '(empty)'!r} (expected TUMIDENT)")
        usubjid, lid = _v(row, "USUBJID"), _v(row, "TULNKID") or _v(row, "TULINKID")
        if not usubjid or not lid:
            raise InputError(f"{src}: USUBJID and TULNKID are required")
        key = (usubjid, _v(row, "TUEVAL"), _v(row, "TUEVALID"), lid)
        cat_text = (_v(row, "TUSTRESC") or _v(row, "TUORRES")).upper()
        if cat_text not in _CATEGORIES:
            raise InputError(f"{src}: unknown tumour category {cat_text!r} for {lid} "
                             f"(expected one of {', '.join(sorted(_CATEGORIES))})")
        if key in lesions:
            raise InputError(f"{src}: duplicate lesion ID {lid} for subject {usubjid} "
                             f"(evaluator {key[1] or '-'} {key[2]}); "
                             f"first at {lesions[key].source}")
        loc = _v(row, "TULOC").upper()
        organ = " ".join(x for x in (_v(row, "TULAT").upper(), loc) if x)
        nodal = "LYMPH NODE" in loc or "NODE" in loc.split()
        lesions[key] = _LesionInfo(
            Lesion(lid, _CATEGORIES[cat_text], organ=organ or loc, nodal=nodal),
            _visitnum(_v(row, "VISITNUM"), src), src)
        studies[key[:3]] = _v(row, "STUDYID")

    # (subj, eval, evalid) -> visitnum -> {"visit":..., "dates": [...], "meas": {lid: {code: ...}}}
    visits: dict[tuple, dict[Decimal, dict]] = {}
    for src, row in tr:
        code = _v(row, "TRTESTCD").upper()
        if code not in _TR_CODES:
            raise InputError(f"{src}: unknown TRTESTCD {code or '(empty)'!r} "
                             f"(expected one of {', '.join(sorted(_TR_CODES))})")
        usubjid = _v(row, "USUBJID")
        subj = (usubjid, _v(row, "TREVAL"), _v(row, "TREVALID"))
        vnum = _visitnum(_v(row, "VISITNUM"), src)
        dtc = _v(row, "TRDTC")
        if not dtc:
            raise InputError(f"{src}: visit {_v(row, 'VISIT') or vnum} of {usubjid} has no date "
                             "(TRDTC)")
        date = parse_date(dtc, policies, src)
        v = visits.setdefault(subj, {}).setdefault(
            vnum, {"visit": _v(row, "VISIT") or str(vnum), "dates": [], "meas": {}})
        v["dates"].append((date, dtc, src))
        if code == "SUMDIAM":
            continue
        lid = _v(row, "TRLNKID") or _v(row, "TRLINKID")
        info = lesions.get((*subj, lid))
        if info is None:
            raise InputError(f"{src}: lesion {lid or '(no TRLNKID)'} of {usubjid} is not "
                             "identified in TU for this evaluator")
        if vnum < info.visitnum:
            raise InputError(f"{src}: lesion {lid} measured at visit {vnum} before it was "
                             f"identified at visit {info.visitnum} ({info.source})")
        stat = _v(row, "TRSTAT").upper()
        res = (_v(row, "TRSTRESC") or _v(row, "TRORRES")).upper()
        state: LesionState | None = None
        value: Decimal | None = None
        if stat == "NOT DONE":
            state = LesionState.NOT_EVALUATED
        elif code in ("TUMSTATE", "LNSTATE"):
            code = "TUMSTATE"
            if res not in _STATES:
                raise InputError(f"{src}: unknown tumour/node state {res!r} "
                                 f"(expected one of {', '.join(sorted(_STATES))})")
            state = _STATES[res]
        elif res == "TOO SMALL TO MEASURE" or _v(row, "TRORRES").upper() == "TOO SMALL TO MEASURE":
            state = LesionState.TOO_SMALL
            n = _v(row, "TRSTRESN")
            value = _num(n, src) if n else None
        elif res in _STATES and res != "TOO SMALL TO MEASURE":
            state = _STATES[res]
        else:
            text = _v(row, "TRSTRESN") or _v(row, "TRSTRESC") or _v(row, "TRORRES")
            if not text:
                raise InputError(
                    f"{src}: {code} of {lid} has no result (and TRSTAT is not NOT DONE)")
            value = _num(text, src)
            state = LesionState.MEASURED
        meas = v["meas"].setdefault(lid, {})
        if code in meas and meas[code][:2] == (value, state):
            continue  # an exact repeat of the same result (seen in real exports) is harmless
        if code in meas:
            raise InputError(f"{src}: conflicting second {code} for lesion {lid} at visit {vnum}; "
                             f"first at {meas[code][2]}")
        meas[code] = (value, state, src)

    records: list[SubjectRecord] = []
    subjects = sorted({k[:3] for k in lesions} | set(visits))
    for subj in subjects:
        subj_lesions = [info for k, info in lesions.items() if k[:3] == subj]
        if not subj_lesions:
            any_src = next(iter(visits[subj].values()))["dates"][0][2]
            raise InputError(f"{any_src}: subject {subj[0]} has measurements but no TU lesions")
        base_lesions = [i for i in subj_lesions if not i.lesion.category.is_new]
        base_num = min(i.visitnum for i in (base_lesions or subj_lesions))
        subj_visits = visits.get(subj, {})
        for vnum, v in subj_visits.items():
            if vnum < base_num:
                raise InputError(f"{v['dates'][0][2]}: visit {v['visit']} ({vnum}) lies before the "
                                 f"baseline visit {base_num} of {subj[0]}")
        tps: list[Timepoint] = []
        notes: list[tuple[str, str]] = []
        for vnum in sorted(subj_visits):
            v = subj_visits[vnum]
            first = min(v["dates"], key=lambda t: t[0])
            assessments = []
            for info in subj_lesions:
                les = info.lesion
                m = v["meas"].get(les.lesion_id)
                if m is None:
                    if les.category.is_new and info.visitnum == vnum:
                        assessments.append(LesionAssessment(les.lesion_id, LesionState.PRESENT))
                    continue
                assessments.append(_assessment(les, m, notes))
            tps.append(Timepoint(v["visit"], first[0], tuple(assessments), vnum, first[1]))
        if not tps or tps[0].visit_num != base_num:
            raise InputError(f"{subj_lesions[0].source}: subject {subj[0]} has no measurements at "
                             f"its baseline visit {base_num}")
        base_tp = tps[0]
        base_meas = subj_visits[base_num]["meas"]
        for info in base_lesions:
            lid = info.lesion.lesion_id
            if info.lesion.category is not Category.TARGET:
                continue
            a = base_tp.get(lid)
            if a is None:
                raise InputError(f"{info.source}: target {lid} of {subj[0]} has no "
                                 "baseline measurement")
            if lesion_value(info.lesion, a) is None:
                rows = base_meas[lid]
                where = min((x[2] for x in rows.values()), key=_line_order)
                got = ", ".join(f"{c} {x[1].value}" for c, x in sorted(rows.items()))
                raise InputError(f"{where}: target {lid} of {subj[0]} has no usable baseline "
                                 f"measurement ({_axis_hint(info.lesion)}; got {got})")
        for earlier, later in zip(tps, tps[1:], strict=False):
            if later.date < earlier.date:
                raise InputError(f"subject {subj[0]}: visit {later.visit} ({later.date_text}) is "
                                 f"dated before visit {earlier.visit} ({earlier.date_text})")
        records.append(SubjectRecord(
            studies.get(subj, ""), subj[0], subj[1], subj[2],
            tuple(i.lesion for i in subj_lesions), tuple(tps),
            tuple((i.lesion.lesion_id, i.source) for i in subj_lesions), tuple(notes)))
    return records


def _line_order(src: str) -> tuple[str, int]:
    name, _, line = src.rpartition(":")
    return (name, int(line)) if line.isdigit() else (src, 0)


def _axis_hint(les: Lesion) -> str:
    if les.nodal:
        return "a lymph node counts by its short axis, LPERP or DIAMETER"
    return "a non-nodal lesion counts by its long axis, LDIAM or DIAMETER"


def _assessment(les: Lesion, m: dict, notes: list[tuple[str, str]]) -> LesionAssessment:
    """One lesion's assessment at one visit from its TR results ``code → (value, state, src)``.

    A node is measured by LPERP (else DIAMETER), any other lesion by LDIAM (else DIAMETER); a
    measurement by the other axis only leaves it not evaluated, with a note in ``notes``.
    """
    axes = _AXIS_CODES[les.nodal]
    if "TUMSTATE" in m:
        value, state, _ = m["TUMSTATE"]
        if state is not LesionState.NOT_EVALUATED or len(m) == 1:
            diam = next((m[c][0] for c in axes if c in m and m[c][0] is not None), None)
            if diam is not None and state in (LesionState.PRESENT, LesionState.ABSENT):
                return LesionAssessment(les.lesion_id, LesionState.MEASURED, diam)
            return LesionAssessment(les.lesion_id, state, value)
    for code in axes:
        if code in m:
            value, state, _ = m[code]
            return LesionAssessment(les.lesion_id, state, value)
    # only a code that does not apply (LDIAM of a node, LPERP of a non-nodal lesion): its state
    # (too small, absent, not done) holds, its value is not this lesion's RECIST diameter
    code, (_, state, src) = next((c, x) for c, x in m.items() if c != "TUMSTATE")
    if state is LesionState.MEASURED:
        notes.append((src, f"{les.lesion_id} has only {code} at this visit ({_axis_hint(les)}): "
                           "not evaluated"))
        return LesionAssessment(les.lesion_id, LesionState.NOT_EVALUATED)
    return LesionAssessment(les.lesion_id, state)


def reference_dates(dm: Iterable[Row], column: str, policies: Policies | None = None
                    ) -> dict[str, _dt.date]:
    """USUBJID → reference date from DM column ``column`` (e.g. RFSTDTC); empty values skipped."""
    policies = policies or Policies()
    out: dict[str, _dt.date] = {}
    for src, row in dm:
        if column not in row:
            raise InputError(f"{src}: DM has no column {column} (policy reference)")
        text = _v(row, column)
        usubjid = _v(row, "USUBJID")
        if text and usubjid:
            out[usubjid] = parse_date(text, policies, src)
    return out


RS_COLUMNS = ("STUDYID", "DOMAIN", "USUBJID", "RSSEQ", "RSTESTCD", "RSTEST", "RSCAT", "RSORRES",
              "RSSTRESC", "RSEVAL", "RSEVALID", "VISITNUM", "VISIT", "RSDTC")
_TESTS = {"TRGRESP": "Target Response", "NTRGRESP": "Non-target Response",
          "NEWLIND": "New Lesion Indicator", "NEWLPROG": "New Lesion Progression",
          "OVRLRESP": "Overall Response"}
_IRECIST_PREFIX = {"CR": "iCR", "PR": "iPR", "SD": "iSD", "PD": "iUPD",
                   "NON-CR/NON-PD": "NON-iCR/NON-iUPD"}


def _fmt_num(d: Decimal | None) -> str:
    if d is None:
        return ""
    return format(d.normalize(), "f") if d == d.to_integral() else format(d, "f")


def rs_rows(rec: SubjectRecord, responses: Sequence[TimepointResponse],
            overall_override: Sequence[Response] | None = None,
            criteria: Criteria | str = Criteria.RECIST_1_1,
            start_seq: int = 1) -> list[dict[str, str]]:
    """SDTM RS rows (TRGRESP, NTRGRESP, NEWLIND, NEWLPROG, OVRLRESP) for one subject/evaluator.

    ``overall_override`` replaces OVRLRESP (iRECIST overall responses); with iRECIST the category
    responses are written with their i-prefixed names.
    """
    rows: list[dict[str, str]] = []
    seq = start_seq
    irecist = criteria.upper().startswith("IRECIST")
    for k, tr in enumerate(responses):
        def cat(r: Response | None) -> str | None:
            if r is None:
                return None
            return _IRECIST_PREFIX.get(r.value, r.value) if irecist else r.value
        items: list[tuple[str, str | None]] = [
            ("TRGRESP", cat(tr.target)),
            ("NTRGRESP", cat(tr.non_target)),
            ("NEWLIND", "Y" if tr.new_lesions.value == "UNEQUIVOCAL" else
             ("EQUIVOCAL" if tr.new_lesions.value == "EQUIVOCAL" else "N")),
            ("NEWLPROG", tr.new_lesions.value if tr.new_lesions.value != "NONE" else None),
            ("OVRLRESP", (overall_override[k].value if overall_override is not None
                          else tr.overall.value)),
        ]
        for code, value in items:
            if value is None:
                continue
            rows.append({
                "STUDYID": rec.studyid, "DOMAIN": "RS", "USUBJID": rec.usubjid, "RSSEQ": str(seq),
                "RSTESTCD": code, "RSTEST": _TESTS[code], "RSCAT": criteria, "RSORRES": value,
                "RSSTRESC": value, "RSEVAL": rec.evaluator, "RSEVALID": rec.evaluator_id,
                "VISITNUM": _fmt_num(tr.visit_num), "VISIT": tr.visit,
                "RSDTC": tr.date_text or tr.date.isoformat(),
            })
            seq += 1
    return rows


BEST_COLUMNS = ("STUDYID", "USUBJID", "RSEVAL", "RSEVALID", "CRITERIA", "REFDT", "BOR", "BORDT",
                "CBOR", "CBORDT", "RSP", "RSPDT", "CRSP", "CRSPDT", "BCP", "CBCP", "CB", "CBDT",
                "CCB", "CCBDT", "PD", "PDDT", "DORDAYS", "LSTA", "LSTADT")


def best_response_row(rec: SubjectRecord, best: BestResponse,
                      criteria: Criteria | str = Criteria.RECIST_1_1
                      ) -> dict[str, str]:
    """One row of ``best_response.csv`` (ADRS-like parameter names as columns)."""
    def d(x: _dt.date | None) -> str:
        return x.isoformat() if x is not None else ""

    def yn(x: bool) -> str:
        return "Y" if x else "N"

    return {
        "STUDYID": rec.studyid, "USUBJID": rec.usubjid, "RSEVAL": rec.evaluator,
        "RSEVALID": rec.evaluator_id, "CRITERIA": criteria, "REFDT": d(best.reference_date),
        "BOR": best.bor.value, "BORDT": d(best.bor_date),
        "CBOR": best.confirmed_bor.value, "CBORDT": d(best.confirmed_bor_date),
        "RSP": yn(best.response), "RSPDT": d(best.response_date if best.response else None),
        "CRSP": yn(best.confirmed_response), "CRSPDT": d(best.confirmed_response_date),
        "BCP": yn(best.bor_cr_pr), "CBCP": yn(best.confirmed_bor_cr_pr),
        "CB": yn(best.clinical_benefit), "CBDT": d(best.clinical_benefit_date),
        "CCB": yn(best.confirmed_clinical_benefit),
        "CCBDT": d(best.confirmed_clinical_benefit_date),
        "PD": yn(best.progression), "PDDT": d(best.pd_date),
        "DORDAYS": "" if best.duration_of_response_days is None else
        str(best.duration_of_response_days),
        "LSTA": best.last_response.value if best.last_response else "",
        "LSTADT": d(best.last_assessment_date),
    }


@dataclass(frozen=True)
class RespondResult:
    """Output of :func:`respond`: RS rows, best-response rows and warnings (baseline rules, iRECIST
    new-lesion target limits, measurements not used), each warning naming its subject."""

    rs: tuple[dict[str, str], ...]
    best: tuple[dict[str, str], ...]
    warnings: tuple[str, ...]
    n_records: int


#: The ``--criteria`` spellings and the criteria they name.
CRITERIA: dict[str, Criteria] = {c.key: c for c in Criteria}


def respond(tu: Iterable[Row], tr: Iterable[Row], dm: Iterable[Row] | None = None,
            criteria: str = "recist1.1", policies: Policies | None = None) -> RespondResult:
    """Score SDTM TU/TR rows: RS rows per visit and one best-response row per subject/evaluator.

    Parameters
    ----------
    tu, tr, dm : iterables of (source, row)
        SDTM rows; ``dm`` gives the SD-window reference date (column ``policies.reference``).
        Without DM the baseline scan date is the reference (noted in the warnings).
    criteria : {"recist1.1", "irecist"}
        Response criteria.
    policies : Policies, optional
        Rule choices.

    Rule violations that leave a subject scorable — baseline rules, iRECIST new-lesion targets
    over the limits (scored as recorded), a lesion measured by the wrong axis (not evaluated) —
    are warnings naming the subject and the row; every subject is scored.

    Raises
    ------
    InputError
        Unusable rows (see :func:`parse_tu_tr`) or a subject missing from DM.
    RuleViolation
        A rule that stops scoring a subject (e.g. two responses on one date with policy
        ``same_day = "error"``), prefixed with the subject.
    """
    policies = policies or Policies()
    if criteria not in CRITERIA:
        raise InputError(f"unknown criteria {criteria!r}: use {' or '.join(CRITERIA)}")
    label = CRITERIA[criteria]
    records = parse_tu_tr(tu, tr, policies)
    refs = reference_dates(dm, policies.reference, policies) if dm is not None else None
    warnings: list[str] = []
    rs: list[dict[str, str]] = []
    best_rows: list[dict[str, str]] = []
    seq_by_subject: dict[str, int] = {}
    for rec in records:
        who = f"{rec.usubjid} ({' '.join(x for x in (rec.evaluator, rec.evaluator_id) if x)})"
        for v in check_baseline(rec.lesions, rec.timepoints[0]):
            warnings.append(f"{who}: baseline rule: {v.message}")
        warnings += [f"{src}: {who}: {message}" for src, message in rec.notes]
        if label is Criteria.IRECIST:
            for v in check_new_lesion_targets(rec.lesions):
                warnings.append(f"{rec.source_of(v.lesion_id)}: {who}: iRECIST rule: {v.message}; "
                                "scored as recorded")
        if refs is None:
            ref = rec.timepoints[0].date
        elif rec.usubjid in refs:
            ref = refs[rec.usubjid]
        else:
            raise InputError(f"DM has no {policies.reference} for subject {rec.usubjid}")
        start = seq_by_subject.get(rec.usubjid, 1)
        try:
            ev = evaluate(label, rec.lesions, rec.timepoints, policies, strict=False)
            rows = rs_rows(rec, ev.recist, ev.overall, label, start)
            outcome = best(label, ev.timepoints, ref, policies)
        except RuleViolation as exc:
            raise RuleViolation(f"{who}: {exc}") from exc
        seq_by_subject[rec.usubjid] = start + len(rows)
        rs += rows
        best_rows.append(best_response_row(rec, outcome, label))
    if refs is None and records:
        warnings.append("no DM given: the SD minimum duration counts from each baseline scan date")
    return RespondResult(tuple(rs), tuple(best_rows), tuple(warnings), len(records))
