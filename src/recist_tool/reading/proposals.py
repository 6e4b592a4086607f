"""Follow-up proposals: a baseline lesion tracked to (or to be placed at) a follow-up visit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from recist_tool.reading.findings import Finding
from recist_tool.volume import Volume

__all__ = ["PROPOSAL_REACH_MM", "Proposal"]

#: A click (or a drawn line's middle) at most this far (mm) from a proposed lesion (its tracked
#: mask; without one, its proposed centre) measures that lesion (:meth:`Proposal.reaches`);
#: further off, it is a lesion of its own.
PROPOSAL_REACH_MM = 5.0


@dataclass(frozen=True, eq=False)
class Proposal:
    """A baseline lesion proposed at a follow-up (by tracking, or to be placed by the reader).

    ``status`` is tracking's ``found`` / ``uncertain`` / ``absent?``, or ``place`` for a lesion
    without a stored position (a non-target recorded as present at baseline).
    """

    lesion_id: str
    category: str
    organ: str
    nodal: bool
    status: str
    center_lps: tuple[float, float, float] | None
    confidence: float
    notes: tuple[str, ...]
    finding: Finding | None

    def reaches(self, point_lps: Sequence[float], volume: Volume) -> bool:
        """Whether a point the reader pointed at on the proposal's visit (a click, a drawn line's
        middle) lies on this proposal's lesion: within :data:`PROPOSAL_REACH_MM` of its tracked
        mask, or, tracking having drawn none, of its proposed centre. A proposal without a
        position (``place``) is reached anywhere: the reader is asked to place it.

        Parameters
        ----------
        point_lps : sequence of float
            The point, LPS ``(x, y, z)`` mm.
        volume : Volume
            The series of the proposal's visit (the tracked mask's grid).

        Returns
        -------
        bool
        """
        mask = None if self.finding is None else self.finding.mask
        if mask is not None and not mask.is_empty:
            near = volume.index_to_lps(np.argwhere(mask.mask) + np.asarray(mask.offset))
        elif self.center_lps is not None:
            near = np.asarray(self.center_lps, float)[None]
        else:
            return True
        gap = np.linalg.norm(near - np.asarray(point_lps, float), axis=1).min()
        return bool(gap <= PROPOSAL_REACH_MM)

