"""The reading's timepoint table: lesions × visits with the sum of diameters, % change and
responses, built from a reader's stored reads (:func:`reading_table`)."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

__all__ = ["ReadingTable", "TableRow", "VisitResponse", "reading_table"]


@dataclass(frozen=True)
class TableRow:
    """One lesion across visits: visit → cell text (``28.4``, ``ABSENT``, ``-`` ...)."""

    lesion_id: str
    category: str
    organ: str
    nodal: bool
    cells: dict[str, str]


@dataclass(frozen=True)
class VisitResponse:
    """The stored responses of one visit (engine's and, once signed, the confirmed one)."""

    visit: str
    date: _dt.date
    sod_mm: Decimal | None
    pct_from_baseline: Decimal | None
    pct_from_nadir: Decimal | None
    target: str | None
    non_target: str | None
    new_lesions: str | None
    overall: str | None
    reasons: tuple[str, ...]
    confirmed_overall: str | None
    status: str


@dataclass(frozen=True)
class ReadingTable:
    """Lesions × timepoints with the sum of diameters, % change and responses."""

    visits: tuple[tuple[str, _dt.date], ...]
    rows: tuple[TableRow, ...]
    responses: dict[str, VisitResponse]

    def as_text(self) -> str:
        """Plain-text rendering (for logs and tests)."""
        head = ["lesion"] + [v for v, _ in self.visits]
        lines = ["\t".join(head)]
        for r in self.rows:
            lines.append("\t".join([r.lesion_id] + [r.cells.get(v, "") for v, _ in self.visits]))
        for name, get in (("SOD", lambda x: x.sod_mm), ("% BL", lambda x: x.pct_from_baseline),
                          ("overall", lambda x: x.confirmed_overall or x.overall)):
            vals = []
            for v, _ in self.visits:
                resp = self.responses.get(v)
                val = None if resp is None else get(resp)
                vals.append("" if val is None else str(val))
            lines.append("\t".join([name, *vals]))
        return "\n".join(lines)


def reading_table(visits: Sequence[tuple[str, _dt.date]], lesions: Sequence[Any],
                  reads: Sequence[Any]) -> ReadingTable:
    """Lesions × timepoints, SOD, % change and responses of one reader's reads.

    The % changes are the engine's (:func:`recist_tool.recist.timepoint.pct_change`, 0.01 %),
    from the sums stored with each response, as the reports show them. The baseline (first
    visit) has no response: its SOD is the sum of its targets once each is measured or absent.

    Parameters
    ----------
    visits : sequence of (str, datetime.date)
        The subject's visits in date order (the first is the baseline).
    lesions : sequence of LesionInfo
        The reader's lesions (:meth:`recist_tool.store.TrialStore.lesions`), in table order.
    reads : sequence of ReadInfo or None
        The reader's read of each visit (None where there is none yet), as ``visits``.

    Returns
    -------
    ReadingTable
    """
    from recist_tool.recist import Category
    from recist_tool.recist.timepoint import pct_change

    cells: dict[str, dict[str, str]] = {les.lesion_id: {} for les in lesions}
    responses: dict[str, VisitResponse] = {}
    bl_sod: Decimal | None = None
    for k, ((visit, date), read) in enumerate(zip(visits, reads, strict=True)):
        if read is None:
            continue
        for m in read.measurements:
            d = m.diameter_mm
            text = m.state if m.state != "MEASURED" or d is None else f"{d}"
            if m.method == "manual" and m.state == "MEASURED":
                text += " (m)"
            cells.setdefault(m.lesion_id, {})[visit] = text
        r = read.response
        if r is not None:
            # the engine's percentages (what it stored with the response, and what the
            # reports show), from the stored sums
            pct = None if r.sod_mm is None else pct_change(r.sod_mm, r.baseline_mm)
            pctn = None if r.sod_mm is None else pct_change(r.sod_mm, r.nadir_mm)
            responses[visit] = VisitResponse(visit, date, r.sod_mm, pct, pctn, r.target,
                                             r.non_target, r.new_lesions, r.overall, r.reasons,
                                             r.confirmed_overall, read.status)
        elif k == 0:
            tgt = [m for m in read.measurements if m.category == Category.TARGET.value]
            if tgt and all(m.diameter_mm is not None or m.state == "ABSENT" for m in tgt):
                bl_sod = sum((m.diameter_mm or Decimal(0) for m in tgt), Decimal(0))
            responses[visit] = VisitResponse(visit, date, bl_sod, None, None, None, None, None,
                                             None, (), None, read.status)
    rows = tuple(TableRow(les.lesion_id, les.category.value, les.organ, les.nodal,
                          cells.get(les.lesion_id, {})) for les in lesions)
    return ReadingTable(tuple(visits), rows, responses)
