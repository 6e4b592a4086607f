"""The RECIST 1.1 response each follow-up of the synthetic trial is designed to have.

Deliberately small and independent of the project's RECIST engine, so that the engine can be
checked against it. Arithmetic is exact: diameters are rounded to 0.1 mm and handled as integer
tenths of a millimetre; percentages are :class:`decimal.Decimal`.

Rules (RECIST 1.1, Eisenhauer et al. 2009):

* Sum of diameters (SOD): long axis of non-nodal targets + short axis of nodal targets; a lesion
  that disappeared counts 0.
* Target CR: every non-nodal target gone and every nodal target short axis < 10 mm.
  PD: SOD >= 120 % of the nadir (smallest earlier SOD, baseline included) *and* >= nadir + 5 mm.
  PR: SOD <= 70 % of baseline. Otherwise SD.
* Non-target CR: every non-target gone and non-target nodes < 10 mm; otherwise non-CR/non-PD
  (the design has no unequivocal non-target progression); ``ND`` when there are none.
* Overall: PD if target PD or any new lesion; CR if target CR and non-target CR/ND; PR if target
  CR with non-target non-CR/non-PD, or target PR; SD if target SD.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

__all__ = ["ExpectedResponse", "tenths", "expected_responses", "check_margins"]


def tenths(mm: float) -> int:
    """``mm`` rounded half-up to 0.1 mm, as an integer number of tenths."""
    return int((Decimal(repr(float(mm))) * 10).quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class ExpectedResponse:
    """Response of one follow-up. Sums in tenths of a millimetre, percentages as Decimal."""

    target: str
    non_target: str
    new_lesions: bool
    overall: str
    sod_tenths: int
    baseline_tenths: int
    nadir_tenths: int
    change_from_baseline_pct: Decimal
    change_from_nadir_pct: Decimal

    def as_json(self) -> dict[str, Any]:
        """JSON-friendly dict (mm and percent as floats rounded for display)."""
        return {
            "overall_response": self.overall,
            "target_response": self.target,
            "non_target_response": self.non_target,
            "new_lesions": self.new_lesions,
            "sod_mm": self.sod_tenths / 10,
            "sod_baseline_mm": self.baseline_tenths / 10,
            "sod_nadir_mm": self.nadir_tenths / 10,
            "change_from_baseline_pct": float(round(self.change_from_baseline_pct, 2)),
            "change_from_nadir_pct": float(round(self.change_from_nadir_pct, 2)),
        }


def _diameter(les: dict[str, Any]) -> int:
    if not les.get("present", True):
        return 0
    return tenths(les["short_axis_mm"] if les["nodal"] else les["long_axis_mm"])


def _sod(lesions: dict[str, dict[str, Any]], target_ids: list[str]) -> int:
    return sum(_diameter(lesions[i]) for i in target_ids)


def _pct(value: int, ref: int) -> Decimal:
    return (Decimal(value - ref) * 100 / Decimal(ref)) if ref else Decimal(0)


def expected_responses(
    timepoints: list[dict[str, dict[str, Any]]],
) -> list[ExpectedResponse | None]:
    """Expected response of each timepoint (``None`` for the baseline, the first one).

    Parameters
    ----------
    timepoints : list of dict
        In visit order; each maps lesion id to a ground-truth lesion dict with ``category``,
        ``nodal``, ``present``, ``long_axis_mm``, ``short_axis_mm``. Targets and non-targets are
        those of the baseline.
    """
    base = timepoints[0]
    target_ids = [i for i, les in base.items() if les["category"] == "target"]
    nt_ids = [i for i, les in base.items() if les["category"] == "non-target"]
    baseline = _sod(base, target_ids)
    history = [baseline]
    out: list[ExpectedResponse | None] = [None]
    for tp in timepoints[1:]:
        sod = _sod(tp, target_ids)
        nadir = min(history)
        if all((tp[i]["nodal"] and _diameter(tp[i]) < 100) or _diameter(tp[i]) == 0
               for i in target_ids):
            target = "CR"
        elif sod * 10 >= nadir * 12 and sod - nadir >= 50:
            target = "PD"
        elif sod * 10 <= baseline * 7:
            target = "PR"
        else:
            target = "SD"
        if not nt_ids:
            non_target = "ND"
        elif all(_diameter(tp[i]) == 0 or (tp[i]["nodal"] and _diameter(tp[i]) < 100)
                 for i in nt_ids):
            non_target = "CR"
        else:
            non_target = "NN"
        new = any(les["category"] == "new" and les.get("present", True) for les in tp.values())
        if target == "PD" or new:
            overall = "PD"
        elif target == "CR":
            overall = "CR" if non_target in ("CR", "ND") else "PR"
        else:
            overall = target
        out.append(ExpectedResponse(target, non_target, new, overall, sod, baseline, nadir,
                                    _pct(sod, baseline), _pct(sod, nadir)))
        history.append(sod)
    return out


def check_margins(resp: ExpectedResponse, min_pp: Decimal = Decimal(3),
                  min_mm_tenths: int = 20) -> list[str]:
    """Reasons why ``resp`` lies too close to a threshold (empty when it is safely away).

    The −30 % (from baseline) and +20 % (from nadir) thresholds must be at least ``min_pp``
    percentage points away; the +5 mm rule at least ``min_mm_tenths`` away when +20 % is met.
    """
    problems = []
    if abs(resp.change_from_baseline_pct - Decimal(-30)) < min_pp:
        problems.append(f"change from baseline {resp.change_from_baseline_pct:.2f} % is near -30 %")
    if abs(resp.change_from_nadir_pct - Decimal(20)) < min_pp:
        problems.append(f"change from nadir {resp.change_from_nadir_pct:.2f} % is near +20 %")
    if (resp.change_from_nadir_pct >= 20
            and abs((resp.sod_tenths - resp.nadir_tenths) - 50) < min_mm_tenths):
        problems.append("absolute increase from nadir is near 5 mm")
    return problems
