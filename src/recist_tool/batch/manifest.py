"""Batch manifest (CSV or TOML) → :class:`Case` list, and per-subject planning.

A *case* is one series of one subject at one visit, with the lesions seeded on it. CSV rows with
the same ``subject`` and ``visit`` form one case; a row with empty lesion fields only schedules the
visit (its lesions are tracked from baseline). Every error names ``file:line``.
"""

from __future__ import annotations

import csv
import datetime as _dt
import math
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recist_tool.codes import code_problem
from recist_tool.errors import InputError
from recist_tool.io.pacs.config import is_pacs_ref, parse_ref

__all__ = ["Case", "LesionSeed", "ManifestError", "SubjectPlan", "plan_cases", "read_manifest",
           "series_locations", "CATEGORIES", "CSV_COLUMNS", "LINE_COLUMNS"]

#: Lesion categories a manifest may name (case-insensitive).
CATEGORIES = ("target", "non-target", "new")
#: Columns of a CSV manifest (the first four are required).
CSV_COLUMNS = ("subject", "visit", "date", "series_path", "series_uid", "lesion_id", "category",
               "organ", "nodal", "seed_x", "seed_y", "seed_z",
               "line_x1", "line_y1", "line_z1", "line_x2", "line_y2", "line_z2")
#: The optional columns of a lesion's caliper line (its long axis, LPS mm: first end, second end).
LINE_COLUMNS = CSV_COLUMNS[12:18]
_REQUIRED = CSV_COLUMNS[:4]
_LESION_ID = re.compile(r"[A-Za-z0-9_.-]+")  # no space; the rest: recist_tool.codes


class ManifestError(InputError):
    """A manifest that cannot be used; the message starts with ``file:line:``."""


@dataclass(frozen=True)
class LesionSeed:
    """One lesion listed in the manifest at one visit.

    Attributes
    ----------
    lesion_id : str
        ``T01``, ``NT01``, ``NL01`` (upper case).
    category : {"target", "non-target", "new"}
    organ : str
    nodal : bool
        Lymph node (measured by its short axis).
    seed_lps : tuple of float or None
        A point inside the lesion, DICOM LPS ``(x, y, z)`` mm; ``None`` for a new lesion recorded
        as present without measurement. A lesion given by its line alone is seeded at the line's
        midpoint.
    where : str
        ``file:line`` of the manifest entry.
    line_lps : tuple of two (x, y, z) tuples or None
        The reader's caliper line (long axis) in LPS mm, e.g. from a PACS SR: the lesion is
        segmented from it (location, size, orientation and two boundary points).
    """

    lesion_id: str
    category: str
    organ: str = ""
    nodal: bool = False
    seed_lps: tuple[float, float, float] | None = None
    where: str = ""
    line_lps: tuple[tuple[float, float, float], tuple[float, float, float]] | None = None


@dataclass(frozen=True)
class Case:
    """One series to score: subject, visit, date, where the series is, lesions seeded on it.

    Attributes
    ----------
    subject, visit : str
    date : datetime.date
        Scan date (ISO in the manifest).
    series_path : str
        Absolute path of the folder, zip or volume file (relative paths are resolved against the
        manifest's folder), or a PACS reference ``pacs://SERVER/STUDY_UID[/SERIES_UID]`` on a
        server of the trial settings (``[pacs.SERVER]``, see :mod:`recist_tool.io.pacs`).
    series_uid : str or None
        SeriesInstanceUID to choose when the path holds several series.
    lesions : tuple of LesionSeed
    where : str
        ``file:line`` of the case's first manifest entry.
    """

    subject: str
    visit: str
    date: _dt.date
    series_path: str
    series_uid: str | None = None
    lesions: tuple[LesionSeed, ...] = ()
    where: str = ""

    @property
    def key(self) -> tuple[str, str]:
        """``(subject, visit)``: the identity of the case in the store."""
        return (self.subject, self.visit)

    @property
    def label(self) -> str:
        """``SUBJECT VISIT`` for messages."""
        return f"{self.subject} {self.visit}"


@dataclass(frozen=True)
class SubjectPlan:
    """A subject's cases: the baseline first, then the follow-ups by date."""

    subject: str
    baseline: Case
    followups: tuple[Case, ...] = field(default_factory=tuple)

    @property
    def cases(self) -> tuple[Case, ...]:
        """Baseline, then follow-ups."""
        return (self.baseline, *self.followups)


# --- field parsing ---------------------------------------------------------------------------------

def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _date(value: Any, where: str) -> _dt.date:
    if isinstance(value, _dt.datetime):
        return value.date()
    if isinstance(value, _dt.date):
        return value
    text = _text(value)
    try:
        return _dt.date.fromisoformat(text)
    except ValueError:
        raise ManifestError(f"{where}: date {text!r} is not an ISO date (YYYY-MM-DD)") from None


def _bool(value: Any, where: str, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = _text(value).lower()
    if text in ("", "false", "no", "n", "0"):
        return False
    if text in ("true", "yes", "y", "1"):
        return True
    raise ManifestError(f"{where}: {name} {value!r} is not true/false")


def _category(value: Any, where: str) -> str:
    text = _text(value).lower().replace("_", "-").replace(" ", "-")
    if text == "nontarget":
        text = "non-target"
    if text not in CATEGORIES:
        raise ManifestError(f"{where}: category {value!r} is not one of {', '.join(CATEGORIES)}")
    return text


def _numbers(values: Iterable[Any], where: str, what: str, names: str
             ) -> tuple[float, ...] | None:
    """All the numbers of a seed or a line, or None when all are empty."""
    vals = [v for v in values]
    texts = [_text(v) for v in vals]
    count = {3: "three", 6: "six"}.get(len(vals), str(len(vals)))
    if all(t == "" for t in texts):
        return None
    if any(t == "" for t in texts):
        raise ManifestError(f"{where}: a {what} needs {names} (LPS mm)")
    try:
        out = tuple(float(v) for v in vals)
    except (TypeError, ValueError):
        raise ManifestError(f"{where}: {what} {tuple(texts)} is not {count} numbers "
                            "(LPS mm)") from None
    if not all(math.isfinite(v) for v in out):
        raise ManifestError(f"{where}: {what} {tuple(texts)} is not {count} finite numbers")
    return out


def _seed(values: Iterable[Any], where: str) -> tuple[float, float, float] | None:
    vals = list(values)
    if len(vals) != 3:
        raise ManifestError(f"{where}: a seed needs all three of seed_x, seed_y, seed_z (LPS mm)")
    return _numbers(vals, where, "seed",  # type: ignore[return-value]
                    "all three of seed_x, seed_y, seed_z")


def _line(values: Iterable[Any], where: str
          ) -> tuple[tuple[float, float, float], tuple[float, float, float]] | None:
    vals = list(values)
    if len(vals) != 6:
        raise ManifestError(f"{where}: a line needs two end points of three numbers (LPS mm)")
    out = _numbers(vals, where, "line", "all six of " + ", ".join(LINE_COLUMNS))
    if out is None:
        return None
    a, b = out[:3], out[3:]
    if a == b:
        raise ManifestError(f"{where}: the line has zero length (both ends at {a})")
    return a, b  # type: ignore[return-value]


def _lesion(entry: Mapping[str, Any], seed: Any, where: str, line: Any = None) -> LesionSeed:
    lid = _text(entry.get("lesion_id")).upper()
    if not _LESION_ID.fullmatch(lid) or code_problem(lid, "lesion") is not None:
        raise ManifestError(f"{where}: lesion_id {lid[:40]!r} is not a lesion code like T01, NT01, "
                            "NL01")
    ends = _line(line, where) if line is not None else None
    point = _seed(seed, where)
    if point is None and ends is not None:
        point = tuple(0.5 * (u + v) for u, v in zip(*ends, strict=True))  # type: ignore[assignment]
    return LesionSeed(lid, _category(entry.get("category"), where), _text(entry.get("organ")),
                      _bool(entry.get("nodal"), where, "nodal"), point, where, ends)


class _Builder:
    """Collects entries into cases, checking that one visit's entries agree."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.cases: dict[tuple[str, str], dict[str, Any]] = {}

    def add(self, entry: Mapping[str, Any], lesions: list[LesionSeed], where: str) -> None:
        for col in _REQUIRED:
            if _text(entry.get(col)) == "":
                raise ManifestError(f"{where}: {col} is empty")
        subject, visit = _text(entry["subject"]), _text(entry["visit"])
        for kind, code in (("subject", subject), ("visit", visit)):
            why = code_problem(code, kind)
            if why is not None:
                raise ManifestError(f"{where}: {why}")
        date = _date(entry["date"], where)
        raw_path = _text(entry["series_path"])
        path: str | Path  # a pacs:// reference as text, else a file path
        if is_pacs_ref(raw_path):  # pacs://SERVER/STUDY_UID[/SERIES_UID] (recist_tool.io.pacs)
            try:
                path = str(parse_ref(raw_path))
            except InputError as exc:
                raise ManifestError(f"{where}: series_path {exc}") from None
        else:
            path = Path(raw_path).expanduser()
            path = path if path.is_absolute() else self.root / path
        uid = _text(entry.get("series_uid")) or None
        key = (subject, visit)
        case = self.cases.get(key)
        if case is None:
            case = self.cases[key] = {"subject": subject, "visit": visit, "date": date,
                                      "series_path": str(path), "series_uid": uid,
                                      "lesions": [], "where": where}
        else:
            for name, value in (("date", date), ("series_path", str(path)), ("series_uid", uid)):
                if case[name] != value:
                    raise ManifestError(f"{where}: {subject} {visit}: {name} differs from "
                                        f"{case['where']} ({value} vs {case[name]})")
        for les in lesions:
            if any(o.lesion_id == les.lesion_id for o in case["lesions"]):
                raise ManifestError(f"{where}: lesion {les.lesion_id} of {subject} {visit} is listed "
                                    "twice")
            case["lesions"].append(les)

    def result(self) -> list[Case]:
        return [Case(c["subject"], c["visit"], c["date"], c["series_path"], c["series_uid"],
                     tuple(c["lesions"]), c["where"]) for c in self.cases.values()]


# --- readers ---------------------------------------------------------------------------------------

def _read_csv(path: Path, text: str) -> list[Case]:
    lines = text.splitlines()
    reader = csv.DictReader(lines)
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in _REQUIRED if c not in header]
    if missing:
        raise ManifestError(f"{path}:1: missing column(s) {', '.join(missing)} (need at least "
                            f"{', '.join(_REQUIRED)})")
    unknown = [c for c in header if c not in CSV_COLUMNS]
    if unknown:
        raise ManifestError(f"{path}:1: unknown column(s) {', '.join(unknown)}; known: "
                            f"{', '.join(CSV_COLUMNS)}")
    reader.fieldnames = header
    b = _Builder(path.parent)
    for row in reader:
        where = f"{path}:{reader.line_num}"
        if None in row:
            raise ManifestError(f"{where}: more fields than columns")
        if all(_text(v) == "" for v in row.values()):
            continue
        if any(v is None for v in row.values()):
            raise ManifestError(f"{where}: fewer fields than columns")
        lesion_fields = ("lesion_id", "category", "organ", "nodal", "seed_x", "seed_y", "seed_z",
                         *LINE_COLUMNS)
        if _text(row.get("lesion_id")) == "":
            if any(_text(row.get(c)) for c in lesion_fields):
                raise ManifestError(f"{where}: lesion fields given without a lesion_id")
            lesions = []
        else:
            lesions = [_lesion(row, (row.get("seed_x"), row.get("seed_y"), row.get("seed_z")),
                               where, [row.get(c) for c in LINE_COLUMNS])]
        b.add(row, lesions, where)
    return b.result()


def _toml_lesion_where(path: Path, lines: list[str], heads: list[int], k: int, les: Any,
                       j: int) -> str:
    """``file:line`` of the j-th lesion of the k-th ``[[case]]`` (the line naming its id)."""
    start = heads[k] if k < len(heads) else 1
    end = heads[k + 1] - 1 if k + 1 < len(heads) else len(lines)
    lid = les.get("lesion_id") if isinstance(les, dict) else None
    if isinstance(lid, str) and lid:
        for i in range(start - 1, end):
            if re.search(r"lesion_id\s*=\s*[\"']" + re.escape(lid) + r"[\"']", lines[i]):
                return f"{path}:{i + 1}"
    return f"{path}:{start} (lesion {j + 1})"


def _read_toml(path: Path, text: str) -> list[Case]:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise ManifestError(f"{path}:{m.group(1) if m else 1}: not valid TOML: {exc}") from None
    entries = doc.get("case")
    # line of each [[case]] header, in order, for messages
    text_lines = text.splitlines()
    heads = [i + 1 for i, ln in enumerate(text_lines)
             if re.match(r"^\s*\[\[\s*case\s*\]\]", ln)]
    if not isinstance(entries, list) or not entries:
        raise ManifestError(f"{path}:1: no [[case]] tables")
    b = _Builder(path.parent)
    for k, entry in enumerate(entries):
        where = f"{path}:{heads[k] if k < len(heads) else 1}"
        if not isinstance(entry, dict):
            raise ManifestError(f"{where}: [[case]] is not a table")
        known = set(_REQUIRED) | {"series_uid", "lesions"}
        unknown = sorted(set(entry) - known)
        if unknown:
            raise ManifestError(f"{where}: unknown key(s) {', '.join(unknown)}; known: "
                                f"{', '.join(sorted(known))}")
        raw = entry.get("lesions", [])
        if not isinstance(raw, list):
            raise ManifestError(f"{where}: lesions must be a list of tables")
        lesions = []
        for j, les in enumerate(raw):
            w = _toml_lesion_where(path, text_lines, heads, k, les, j)
            if not isinstance(les, dict):
                raise ManifestError(f"{w}: a lesion must be a table")
            bad = sorted(set(les) - {"lesion_id", "category", "organ", "nodal", "seed", "line"})
            if bad:
                raise ManifestError(f"{w}: unknown key(s) {', '.join(bad)}")
            seed = les.get("seed")
            if seed is not None and (not isinstance(seed, list) or len(seed) != 3):
                raise ManifestError(f"{w}: seed must be [x, y, z] (LPS mm)")
            line = les.get("line")
            if line is not None and (not isinstance(line, list) or len(line) != 2 or not all(
                    isinstance(e, list) and len(e) == 3 for e in line)):
                raise ManifestError(f"{w}: line must be [[x1, y1, z1], [x2, y2, z2]] (LPS mm)")
            lesions.append(_lesion(les, seed if seed is not None else ("", "", ""), w,
                                   [*line[0], *line[1]] if line is not None else None))
        b.add(entry, lesions, where)
    return b.result()


def read_manifest(path: str | os.PathLike[str]) -> list[Case]:
    """Read a batch manifest (``.csv`` or ``.toml``) into cases, in manifest order.

    Parameters
    ----------
    path : path-like
        The manifest; relative series paths are resolved against its folder.

    Returns
    -------
    list of Case

    Raises
    ------
    ManifestError
        Unreadable file or a malformed entry; the message starts with ``file:line:``.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{p}:0: cannot read the manifest: {exc}") from None
    suffix = p.suffix.lower()
    if suffix == ".toml":
        cases = _read_toml(p, text)
    elif suffix in (".csv", ".txt", ""):
        cases = _read_csv(p, text)
    else:
        raise ManifestError(f"{p}:0: manifest must be .csv or .toml")
    if not cases:
        raise ManifestError(f"{p}:1: the manifest lists no series")
    return cases


def series_locations(cases: Iterable[Case]) -> dict[tuple[str, str], tuple[str, str | None]]:
    """Where each case's series is: ``(subject, visit) → (series_path, series_uid)``.

    Parameters
    ----------
    cases : iterable of Case
        From :func:`read_manifest` (series paths already absolute or ``pacs://`` references).

    Returns
    -------
    dict
        What :class:`recist_tool.reading.ReadingSession` takes as ``series_paths``.
    """
    return {c.key: (c.series_path, c.series_uid) for c in cases}


def plan_cases(cases: Iterable[Case]) -> list[SubjectPlan]:
    """Group cases by subject: the earliest visit is the baseline, the others follow by date.

    Checks what scoring needs: baseline lesions are targets or non-targets with a seed; follow-ups
    list only new lesions (seeded or not; a new lesion is measured at each visit that lists it) or
    re-seed a baseline lesion; no two visits of a subject share a date.

    Raises
    ------
    ManifestError
        Naming the manifest entry at fault.
    """
    by_subject: dict[str, list[Case]] = {}
    for c in cases:
        by_subject.setdefault(c.subject, []).append(c)
    plans = []
    for subject, group in by_subject.items():
        group = sorted(group, key=lambda c: c.date)
        for a, b in zip(group, group[1:], strict=False):
            if a.date == b.date:
                raise ManifestError(f"{b.where}: {subject} visits {a.visit} and {b.visit} share the "
                                    f"date {a.date}")
        base, rest = group[0], group[1:]
        if not base.lesions:
            raise ManifestError(f"{base.where}: baseline {base.label} (the earliest visit) lists "
                                "no lesions")
        ids = set()
        for les in base.lesions:
            if les.category == "new":
                raise ManifestError(f"{les.where}: {les.lesion_id} is 'new' at baseline "
                                    f"{base.label}")
            if les.seed_lps is None:
                raise ManifestError(f"{les.where}: baseline lesion {les.lesion_id} needs a seed")
            ids.add(les.lesion_id)
        for fu in rest:
            for les in fu.lesions:
                if les.lesion_id in ids:
                    if les.seed_lps is None:
                        raise ManifestError(f"{les.where}: {les.lesion_id} at {fu.label} is tracked "
                                            "from baseline; list it only with a seed to re-seed it")
                    continue
                if les.category != "new":
                    raise ManifestError(f"{les.where}: {les.lesion_id} first appears at follow-up "
                                        f"{fu.label}: its category must be 'new'")
        plans.append(SubjectPlan(subject, base, tuple(rest)))
    return plans
