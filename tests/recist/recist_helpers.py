"""Small builders for synthetic RECIST cases (no shared data)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from recist_tool.recist import Category, Lesion, LesionAssessment, LesionState, Timepoint

D0 = dt.date(2024, 1, 1)

S = LesionState


def les(lid: str, organ: str = "LIVER", nodal: bool = False) -> Lesion:
    """Category from the id prefix: T target, NT non-target, NLT/NLNT/NL new."""
    for prefix, cat in (("NLT", Category.NEW_TARGET), ("NLNT", Category.NEW_NON_TARGET),
                        ("NL", Category.NEW), ("NT", Category.NON_TARGET), ("T", Category.TARGET)):
        if lid.startswith(prefix):
            return Lesion(lid, cat, organ=organ, nodal=nodal)
    raise ValueError(lid)


def tp(day: int, **values) -> Timepoint:
    """A timepoint ``day`` days after D0; values: id=number (mm) or id=LesionState."""
    out = []
    for lid, v in values.items():
        if isinstance(v, LesionState):
            out.append(LesionAssessment(lid, v))
        elif isinstance(v, tuple):
            diam = Decimal(str(v[1])) if v[1] is not None else None
            out.append(LesionAssessment(lid, v[0], diam))
        else:
            out.append(LesionAssessment(lid, S.MEASURED, Decimal(str(v))))
    d = D0 + dt.timedelta(days=day)
    return Timepoint(f"DAY {day}", d, tuple(out), Decimal(day), d.isoformat())
