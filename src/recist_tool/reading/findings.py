"""What a reader finds before it is stored: :class:`Finding`, the reading's vocabularies, and the
mask overlap tests that keep one lesion from being stored twice.

A :class:`Finding` is a plain value (a measurement, its mask and where it came from) that the
caller keeps until the reader confirms it; :class:`recist_tool.reading.ReadingSession` stores it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from recist_tool.recist.model import Category, LesionState
from recist_tool.volume import Volume

if TYPE_CHECKING:
    from recist_tool.measure import AxisMeasurement
    from recist_tool.segment import LesionMask

__all__ = ["CATEGORIES", "LESION_ID_PREFIX", "MIN_LINE_MM", "ORGANS", "OVERLAP_FRACTION", "STATES",
           "AddedLesion", "Finding", "shared_fraction", "voxel_in_mask"]

#: Lesion categories offered to the reader (store values on the right).
CATEGORIES: dict[str, Category] = {"target": Category.TARGET, "non-target": Category.NON_TARGET,
                                   "new": Category.NEW}
#: Organs / sites offered in the reading workstation (free text is accepted too).
ORGANS: tuple[str, ...] = (
    "lung", "liver", "lymph node", "adrenal gland", "kidney", "bone", "brain", "pleura",
    "peritoneum", "spleen", "pancreas", "soft tissue", "other",
)
#: Assessments of a lesion that is not measured, as the reader names them → store state.
STATES: dict[str, LesionState] = {
    "absent": LesionState.ABSENT, "too small": LesionState.TOO_SMALL,
    "not evaluable": LesionState.NOT_EVALUATED, "present": LesionState.PRESENT,
    "unequivocal progression": LesionState.UNEQUIVOCAL_PROGRESSION,
    "equivocal": LesionState.EQUIVOCAL,
}
#: The lesion id prefix of each stored category (``T01``, ``NT01``, ``NL01``).
LESION_ID_PREFIX: dict[str, str] = {Category.TARGET: "T", Category.NON_TARGET: "NT",
                                    Category.NEW: "NL"}
#: Two lesions of one visit whose masks share this fraction of the smaller one's voxels (or more)
#: are taken for the same lesion: storing the second is refused (it would be counted twice).
OVERLAP_FRACTION = 0.1
#: The shortest caliper line taken as a line prompt (shorter: a click, not a line).
MIN_LINE_MM = 3.0


@dataclass(frozen=True, eq=False)
class Finding:
    """A lesion segmented or measured on one visit and not stored yet.

    Attributes
    ----------
    visit : str
        The visit whose series it was found on.
    measurement : AxisMeasurement
        The current measurement (automatic, from an edited mask, or from caliper lines).
    mask : LesionMask or None
        The lesion mask (crop + offset on the series grid); None for a caliper-only measurement.
    automatic : AxisMeasurement or None
        The segmenter's own measurement, kept so that a manual correction is stored after it (the
        audit trail then holds both values).
    edited : bool
        The reader painted the mask or moved axis end points: stored as ``method="manual"``.
    nodal : bool
        Measured as a lymph node (short axis).
    tracking : dict
        Status / confidence when the finding comes from follow-up tracking.
    automatic_mask : LesionMask or None
        The segmenter's own mask (stored with the automatic value before a correction).
    """

    visit: str
    measurement: AxisMeasurement
    mask: LesionMask | None = None
    automatic: AxisMeasurement | None = None
    edited: bool = False
    nodal: bool = False
    tracking: dict[str, Any] = field(default_factory=dict)
    automatic_mask: LesionMask | None = None

    @property
    def method(self) -> str:
        """``automatic`` or ``manual`` (as stored)."""
        return "manual" if self.edited else "automatic"

    @property
    def source(self) -> str:
        """Where the measurement comes from: ``tracking`` (a tracked proposal as proposed),
        ``tracking, corrected`` (then edited by the reader), ``click`` (the segmenter from the
        reader's click), ``line prompt`` (the segmenter from a line the reader drew), ``edited``
        (the reader painted or erased the mask, or moved the axis end points) or ``line`` (the
        reader's caliper line, no mask)."""
        if self.tracking:
            return "tracking, corrected" if self.edited else "tracking"
        if self.mask is None:
            return "line"
        if self.edited:
            return "edited"
        return "line prompt" if getattr(self.mask.prompt, "line_zyx", None) is not None else "click"

    @property
    def diameter_mm(self) -> float | None:
        """The RECIST diameter: short axis of a node, long axis otherwise."""
        m = self.measurement
        return m.short_axis_mm if self.nodal else m.long_axis_mm

    def centroid_lps(self, volume: Volume) -> tuple[float, float, float] | None:
        """Centroid of the mask in LPS mm (None without a mask)."""
        if self.mask is None or self.mask.is_empty:
            return None
        idx = np.argwhere(self.mask.mask).mean(axis=0) + np.asarray(self.mask.offset, float)
        c = volume.index_to_lps(idx)
        return (float(c[0]), float(c[1]), float(c[2]))


@dataclass(frozen=True)
class AddedLesion:
    """Result of :meth:`ReadingSession.add_lesion`."""

    lesion_id: str
    category: str
    violations: tuple[Any, ...] = ()


# --- masks -----------------------------------------------------------------------------------------

def shared_fraction(a: tuple[np.ndarray, Sequence[int]], b: tuple[np.ndarray, Sequence[int]]
                    ) -> float:
    """Voxels two mask crops ``(crop, offset)`` on one grid share, as a fraction of the smaller."""
    (ma, oa), (mb, ob) = a, b
    lo = np.maximum(oa, ob)
    hi = np.minimum(np.asarray(oa) + ma.shape, np.asarray(ob) + mb.shape)
    if np.any(hi <= lo):
        return 0.0
    sa = tuple(slice(int(x - o), int(y - o)) for x, y, o in zip(lo, hi, oa, strict=True))
    sb = tuple(slice(int(x - o), int(y - o)) for x, y, o in zip(lo, hi, ob, strict=True))
    shared = int(np.count_nonzero(ma[sa] & mb[sb]))
    smaller = min(int(np.count_nonzero(ma)), int(np.count_nonzero(mb)))
    return shared / smaller if smaller else 0.0


def voxel_in_mask(m: tuple[np.ndarray, Sequence[int]], index: Any) -> bool:
    """Whether the voxel nearest to ``index`` ``(z, y, x)`` is in the mask crop ``(crop, offset)``."""
    crop, off = m
    k = np.rint(np.asarray(index, float)).astype(int) - np.asarray(off)
    return bool(np.all(k >= 0) and np.all(k < crop.shape) and crop[tuple(k)])

