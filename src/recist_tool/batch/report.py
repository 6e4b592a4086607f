"""Console output of a batch: a rich progress bar with one line per case, per-subject tables.

Lines and cells are :class:`rich.text.Text` with explicit styles, never markup strings, so subject
codes, visit names and error messages (``seed must be [x, y, z] (LPS mm)``) print as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from recist_tool.batch.job import CaseResult
from recist_tool.batch.manifest import Case
from recist_tool.batch.persist import MeasurementRow, ResponseRow

__all__ = ["RichProgress", "case_line", "subject_tables", "truth_table"]


def case_line(case: Case, result: CaseResult) -> Text:
    """One line (styled text, no markup) for a finished case."""
    if not result.ok:
        return Text.assemble(("failed", "red"), f" {case.subject} {case.visit}: {result.error}")
    n = len(result.lesions)
    flags = [f"{les.lesion_id} {les.status}" for les in result.lesions
             if les.status in ("uncertain", "absent?")]
    line = Text.assemble(("ok", "green"), f"     {case.subject} {case.visit}: {n} "
                         f"lesion{'s' if n != 1 else ''} in {result.seconds:.1f} s")
    if flags:
        line.append("; ").append(", ".join(flags), style="yellow")
    return line


class RichProgress:
    """Progress bar with ETA; prints :func:`case_line` above it for each finished case."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            TextColumn("[bold]scoring"), BarColumn(), MofNCompleteColumn(),
            TextColumn("elapsed"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            console=console, transient=False)
        self.task: Any = None

    def __enter__(self) -> RichProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)  # type: ignore[arg-type]

    def start(self, total: int, description: str) -> None:
        """Called once with the number of cases to score."""
        self.console.print(f"scoring {total} series ({description})", highlight=False)
        self.task = self.progress.add_task("scoring", total=total)

    def skipped(self, case: Case) -> None:
        """A case already stored (``--resume``)."""
        self.console.print(Text.assemble(("skip", "dim"), f"   {case.subject} {case.visit}: "
                                         "already stored"), soft_wrap=True)

    def done(self, case: Case, result: CaseResult) -> None:
        """A finished case."""
        self.console.print(case_line(case, result), soft_wrap=True)
        if self.task is not None:
            self.progress.advance(self.task)


def _fmt(v: Decimal | float | None, nd: int = 1) -> str:
    return "" if v is None else f"{float(v):.{nd}f}"


def _pct(v: Decimal | None) -> str:
    return "" if v is None else f"{float(v):+.1f}"


def subject_tables(responses: Sequence[ResponseRow], measurements: Sequence[MeasurementRow],
                   truth: dict[str, Any] | None = None, best: Sequence[Any] = ()) -> list[Table]:
    """Per subject: one row per visit with each lesion's RECIST diameter (short axis of nodes, mm),
    SOD, % change from baseline and nadir, and the responses (and the expected one with a truth)."""
    tables = []
    subjects = list(dict.fromkeys(r.subject for r in responses))
    for sid in subjects:
        rows = [r for r in responses if r.subject == sid]
        ms = [m for m in measurements if m.subject == sid]
        lesion_ids = list(dict.fromkeys(m.lesion_id for m in ms))
        nodal = {m.lesion_id: m.nodal for m in ms}
        crit = rows[0].criteria if rows else ""
        b = next((x for x in best if x.subject == sid), None)
        caption = None if b is None else (f"best overall response {b.best_response}, confirmed "
                                          f"{b.confirmed_best_response}")
        t = Table(title=f"{sid} ({crit}; diameters in mm, nodes by short axis)", title_justify="left",
                  caption=caption, caption_justify="left")
        for col in ("visit", "date"):
            t.add_column(col, no_wrap=True)
        for lid in lesion_ids:
            t.add_column(f"{lid}{' SA' if nodal[lid] else ''}", justify="right", no_wrap=True)
        for col in ("SOD", "Δ% BL", "Δ% nadir", "T", "NT", "new", "overall"):
            t.add_column(col, justify="right" if col in ("SOD", "Δ% BL", "Δ% nadir") else "left",
                         no_wrap=True)
        if truth is not None:
            t.add_column("expected", no_wrap=True)
        by = {(m.visit, m.lesion_id): m for m in ms}
        for r in rows:
            cells: list[str | Text] = [r.visit, r.date.isoformat()]
            for lid in lesion_ids:
                m = by.get((r.visit, lid))
                if m is None:
                    cells.append("")
                elif m.state == "ABSENT":
                    cells.append("absent")
                elif m.state != "MEASURED":
                    cells.append(m.state.lower())
                else:
                    mark = "?" if m.tracking == "uncertain" else ""
                    cells.append(_fmt(m.diameter_mm) + mark)
            overall = r.overall_response or ("baseline" if r.target_response is None else "")
            cells += [_fmt(r.sod_mm), _pct(r.pct_change_from_baseline),
                      _pct(r.pct_change_from_nadir), r.target_response or "",
                      r.non_target_response or "", r.new_lesions or "", overall]
            if truth is not None:
                tp = truth.get("subjects", {}).get(sid, {}).get("timepoints", {}).get(r.visit, {})
                exp = tp.get("overall_response") or ("baseline" if tp else "")
                ok = exp == overall
                cells.append(Text(exp, style="green" if ok else "red"))
            t.add_row(*cells)
        tables.append(t)
    return tables


def truth_table(report: Any) -> Table:
    """Per lesion and visit: measured vs true long axis, error; mismatches in red."""
    t = Table(title=f"Long axis vs ground truth (tolerance {report.tolerance_mm:g} mm)",
              title_justify="left")
    for col in ("subject", "visit", "lesion", "LD mm", "true LD", "error", "SA mm", "true SA"):
        t.add_column(col, justify="right" if "mm" in col or "true" in col or col == "error"
                     else "left", no_wrap=True)
    for c in report.lesions:
        if not c.present:
            t.add_row(c.subject, c.visit, c.lesion_id, (c.state or "missing").lower(), "absent",
                      "", "", "")
            continue
        e = c.long_axis_error_mm
        bad = e is None or abs(e) > report.tolerance_mm
        err = "n/a" if e is None else f"{e:+.2f}"
        t.add_row(c.subject, c.visit, c.lesion_id, _fmt(c.long_axis_mm),
                  f"{c.true_long_axis_mm:.1f}", Text(err, style="red" if bad else "green"),
                  _fmt(c.short_axis_mm), f"{c.true_short_axis_mm:.1f}")
    return t
