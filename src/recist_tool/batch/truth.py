"""Compare batch results with a ground truth (``ground_truth.json`` of the synthetic trial)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recist_tool.batch.persist import MeasurementRow, ResponseRow
from recist_tool.errors import InputError

__all__ = ["LesionCheck", "ResponseCheck", "TruthReport", "compare_with_truth", "load_truth"]


@dataclass(frozen=True)
class LesionCheck:
    """One lesion at one visit: measured vs true long axis (and short axis)."""

    subject: str
    visit: str
    lesion_id: str
    present: bool
    long_axis_mm: float | None
    true_long_axis_mm: float
    short_axis_mm: float | None
    true_short_axis_mm: float
    state: str | None

    @property
    def long_axis_error_mm(self) -> float | None:
        """Measured − true long axis (None when not measured)."""
        if not self.present or self.long_axis_mm is None:
            return None
        return self.long_axis_mm - self.true_long_axis_mm

    @property
    def short_axis_error_mm(self) -> float | None:
        """Measured − true short axis (None when not measured)."""
        if not self.present or self.short_axis_mm is None:
            return None
        return self.short_axis_mm - self.true_short_axis_mm


@dataclass(frozen=True)
class ResponseCheck:
    """Overall response at one follow-up: computed vs expected."""

    subject: str
    visit: str
    overall: str | None
    expected: str | None

    @property
    def match(self) -> bool:
        """True when equal."""
        return self.overall == self.expected


@dataclass(frozen=True)
class TruthReport:
    """Result of :func:`compare_with_truth`."""

    responses: tuple[ResponseCheck, ...]
    lesions: tuple[LesionCheck, ...]
    tolerance_mm: float
    problems: tuple[str, ...] = field(default_factory=tuple)

    @property
    def n_matched(self) -> int:
        """Follow-ups whose overall response equals the truth."""
        return sum(r.match for r in self.responses)

    @property
    def max_long_axis_error_mm(self) -> float:
        """Largest |measured − true| long axis over present lesions."""
        errs = [abs(e) for e in (c.long_axis_error_mm for c in self.lesions) if e is not None]
        return max(errs, default=0.0)

    @property
    def ok(self) -> bool:
        """Every response matches, every present lesion is measured within tolerance, every
        absent one is recorded absent."""
        return not self.problems

    def summary(self) -> str:
        """One line: responses matched and the largest long-axis error."""
        return (f"responses {self.n_matched}/{len(self.responses)} match the ground truth; "
                f"long axis max |error| {self.max_long_axis_error_mm:.2f} mm over "
                f"{sum(c.present for c in self.lesions)} measured lesions "
                f"(tolerance {self.tolerance_mm:g} mm)")


def load_truth(path: str | Path) -> dict[str, Any]:
    """Read a ground-truth JSON file (the synthetic trial's ``ground_truth.json``)."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read the ground truth: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("subjects"), dict):
        raise InputError(f"{path}: no 'subjects' in the ground truth")
    return doc


def compare_with_truth(truth: dict[str, Any], responses: Sequence[ResponseRow],
                       measurements: Sequence[MeasurementRow], *, tolerance_mm: float = 1.5,
                       subjects: Sequence[str] | None = None) -> TruthReport:
    """Check overall responses and long axes against the ground truth.

    Parameters
    ----------
    truth : dict
        ``{"subjects": {S: {"timepoints": {V: {"overall_response", "lesions": {...}}}}}}``.
    responses, measurements : sequences of rows
        What the batch stored (:func:`~recist_tool.batch.persist.collect_outputs`).
    tolerance_mm : float
        Largest accepted |measured − true| long axis.
    subjects : sequence of str, optional
        Subjects to check (default: every subject of the truth).
    """
    resp = {(r.subject, r.visit): r for r in responses}
    meas = {(m.subject, m.visit, m.lesion_id): m for m in measurements}
    rchecks, lchecks, problems = [], [], []
    for sid, subj in truth["subjects"].items():
        if subjects is not None and sid not in subjects:
            continue
        for visit, tp in subj["timepoints"].items():
            exp = tp.get("overall_response")
            if exp is not None:
                r = resp.get((sid, visit))
                got = None if r is None else r.overall_response
                rchecks.append(ResponseCheck(sid, visit, got, exp))
                if got != exp:
                    problems.append(f"{sid} {visit}: overall {got or 'missing'}, expected {exp}")
            for lid, les in tp.get("lesions", {}).items():
                m = meas.get((sid, visit, lid))
                la = None if m is None or m.long_axis_mm is None else float(m.long_axis_mm)
                sa = None if m is None or m.short_axis_mm is None else float(m.short_axis_mm)
                c = LesionCheck(sid, visit, lid, bool(les["present"]), la,
                                float(les["long_axis_mm"]), sa, float(les["short_axis_mm"]),
                                None if m is None else m.state)
                lchecks.append(c)
                if not c.present:
                    if m is not None and m.state != "ABSENT":
                        problems.append(f"{sid} {visit} {lid}: {m.state}, expected absent")
                elif la is None:
                    problems.append(f"{sid} {visit} {lid}: not measured "
                                    f"({'missing' if m is None else m.state})")
                elif abs(la - c.true_long_axis_mm) > tolerance_mm:
                    problems.append(f"{sid} {visit} {lid}: long axis {la:.1f} mm, true "
                                    f"{c.true_long_axis_mm:.1f} mm (|error| > {tolerance_mm:g} mm)")
    return TruthReport(tuple(rchecks), tuple(lchecks), tolerance_mm, tuple(problems))
