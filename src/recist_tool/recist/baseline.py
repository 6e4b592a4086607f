"""Baseline rules: measurability and target selection, with violations reported per lesion.

* Non-nodal lesion measurable: long axis ≥ 10 mm on CT with slices ≤ 5 mm, else ≥ 2 × slice
  thickness.
* Lymph node by short axis: ≥ 15 mm may be a target; 10 to < 15 mm pathological, non-target only;
  < 10 mm normal, not recorded.
* At most 5 targets and at most 2 per organ; all lymph nodes together are one organ, and paired
  organs (lungs, kidneys, ovaries, adrenals) count as one organ.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import cast

from recist_tool.recist.model import (
    NODE_NORMAL_MM,
    Category,
    Lesion,
    LesionState,
    Timepoint,
    to_mm,
)

__all__ = [
    "MAX_TARGETS",
    "MAX_TARGETS_PER_ORGAN",
    "Violation",
    "organ_group",
    "measurable_threshold",
    "check_baseline",
    "limit_violations",
    "select_targets",
]

MAX_TARGETS = 5
MAX_TARGETS_PER_ORGAN = 2
_NODE_TARGET = Decimal(15)
_PAIRED = {
    "LUNGS": "LUNG", "LUNG": "LUNG", "KIDNEYS": "KIDNEY", "KIDNEY": "KIDNEY",
    "OVARIES": "OVARY", "OVARY": "OVARY", "ADRENALS": "ADRENAL GLAND",
    "ADRENAL": "ADRENAL GLAND", "ADRENAL GLAND": "ADRENAL GLAND",
    "ADRENAL GLANDS": "ADRENAL GLAND",
}
_SIDE = re.compile(r"\b(LEFT|RIGHT|BILATERAL|L|R)\b")


@dataclass(frozen=True)
class Violation:
    """One broken baseline rule."""

    lesion_id: str
    rule: str  #: short code: not_measurable, node_non_target_only, normal_node, too_many_targets,
    #: too_many_in_organ, not_measured
    message: str


def organ_group(lesion: Lesion) -> str:
    """The organ a lesion counts against: all nodes are one organ, paired organs one each."""
    if lesion.nodal:
        return "LYMPH NODES"
    name = _SIDE.sub(" ", lesion.organ.upper())
    name = " ".join(name.replace(",", " ").split())
    return _PAIRED.get(name, name)


def measurable_threshold(slice_thickness_mm: Decimal | float | None) -> Decimal:
    """Minimum long axis of a measurable non-nodal lesion: 10 mm, or 2 × slices over 5 mm."""
    st = to_mm(slice_thickness_mm)
    if st is None or st <= 5:
        return Decimal(10)
    return 2 * st


def _diam(tp: Timepoint, lesion: Lesion) -> tuple[Decimal | None, LesionState | None]:
    a = tp.get(lesion.lesion_id)
    if a is None:
        return None, None
    return a.diameter_mm, a.state


def limit_violations(lesions: Sequence[Lesion], category: Category, noun: str = "targets",
                     rules: tuple[str, str] = ("too_many_targets", "too_many_in_organ")
                     ) -> tuple[Violation, ...]:
    """Lesions of ``category`` beyond the first 5, or beyond the first 2 of their organ.

    Parameters
    ----------
    lesions : sequence of Lesion
        In the order they were recorded; lesions of other categories are skipped.
    category : Category
        ``TARGET`` at baseline, ``NEW_TARGET`` for iRECIST new-lesion targets.
    noun, rules : str
        How the messages name the lesions, and the rule codes (all, per organ).

    Returns
    -------
    tuple of Violation
        One per lesion and limit, in lesion order; organs grouped by :func:`organ_group`.
    """
    out: list[Violation] = []
    per_organ: dict[str, int] = {}
    n = 0
    for les in lesions:
        if les.category is not category:
            continue
        n += 1
        if n > MAX_TARGETS:
            out.append(Violation(les.lesion_id, rules[0],
                                 f"{les.lesion_id}: more than {MAX_TARGETS} {noun}"))
        grp = organ_group(les)
        per_organ[grp] = per_organ.get(grp, 0) + 1
        if per_organ[grp] > MAX_TARGETS_PER_ORGAN:
            out.append(Violation(les.lesion_id, rules[1],
                                 f"{les.lesion_id}: more than {MAX_TARGETS_PER_ORGAN} {noun} "
                                 f"in {grp}"))
    return tuple(out)


def check_baseline(lesions: Sequence[Lesion], baseline: Timepoint,
                   slice_thickness_mm: Decimal | float | None = None) -> tuple[Violation, ...]:
    """All baseline rule violations, one entry per lesion and rule, in lesion order."""
    out: list[Violation] = []
    thr = measurable_threshold(slice_thickness_mm)
    limits: dict[str, list[Violation]] = {}
    for v in limit_violations(lesions, Category.TARGET):
        limits.setdefault(v.lesion_id, []).append(v)
    for les in lesions:
        d, state = _diam(baseline, les)
        if les.category is Category.TARGET:
            out += limits.get(les.lesion_id, [])
            if state is not LesionState.MEASURED or d is None:
                out.append(Violation(les.lesion_id, "not_measured",
                                     f"{les.lesion_id}: a target must be measured at baseline "
                                     f"(got {state.value if state else 'nothing'})"))
                continue
            if les.nodal:
                if d < NODE_NORMAL_MM:
                    out.append(Violation(les.lesion_id, "normal_node",
                                         f"{les.lesion_id}: node short axis {d} mm < 10 mm is "
                                         "normal and is not recorded"))
                elif d < _NODE_TARGET:
                    out.append(Violation(les.lesion_id, "node_non_target_only",
                                         f"{les.lesion_id}: node short axis {d} mm (10 to < 15 mm) "
                                         "is pathological but may only be a non-target"))
            elif d < thr:
                out.append(Violation(les.lesion_id, "not_measurable",
                                     f"{les.lesion_id}: long axis {d} mm < {thr} mm is not "
                                     "measurable"))
        elif les.category is Category.NON_TARGET and les.nodal and d is not None \
                and state is LesionState.MEASURED and d < NODE_NORMAL_MM:
            out.append(Violation(les.lesion_id, "normal_node",
                                 f"{les.lesion_id}: node short axis {d} mm < 10 mm is normal "
                                 "and is not recorded"))
    return tuple(out)


def select_targets(candidates: Sequence[tuple[Lesion, Decimal | float]],
                   slice_thickness_mm: Decimal | float | None = None
                   ) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """Suggest targets: the largest measurable lesions within the 5 / 2-per-organ limits.

    Parameters
    ----------
    candidates : sequence of (Lesion, diameter)
        Baseline lesions with their long axis (non-nodal) or short axis (nodal), any category.

    Returns
    -------
    (targets, non_targets, not_recorded) : tuples of lesion ids
        ``not_recorded`` holds normal nodes (< 10 mm).
    """
    thr = measurable_threshold(slice_thickness_mm)
    eligible, non_targets, normal = [], [], []
    for les, d in candidates:
        d = cast(Decimal, to_mm(d))  # a candidate carries a diameter
        if les.nodal:
            if d < NODE_NORMAL_MM:
                normal.append(les.lesion_id)
            elif d < _NODE_TARGET:
                non_targets.append(les.lesion_id)
            else:
                eligible.append((les, d))
        elif d >= thr:
            eligible.append((les, d))
        else:
            non_targets.append(les.lesion_id)
    targets: list[str] = []
    per_organ: dict[str, int] = {}
    for les, _ in sorted(eligible, key=lambda t: (-t[1], t[0].lesion_id)):
        grp = organ_group(les)
        if len(targets) < MAX_TARGETS and per_organ.get(grp, 0) < MAX_TARGETS_PER_ORGAN:
            targets.append(les.lesion_id)
            per_organ[grp] = per_organ.get(grp, 0) + 1
        else:
            non_targets.append(les.lesion_id)
    return tuple(targets), tuple(non_targets), tuple(normal)
