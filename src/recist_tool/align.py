"""Lining up a subject's visits for side-by-side reading: which shift puts each follow-up's lesion
where the baseline's is.

The napari reading panel shows the visits side by side with one camera and one slice slider for
every tile. Shifting each follow-up's image by :attr:`Alignment.offsets` (baseline position of the
lesion minus that visit's position of it, LPS mm) makes every tile show its own lesion at the same
place, and one slider step moves every tile by the same distance from its lesion: scrolling is
linked through where the lesion is at each visit, not through raw patient millimetres.

Where a visit's position of the lesion comes from, best first (:data:`SOURCES`):

``stored``
    the reader's stored measurement of the lesion at that visit (its long axis's middle);
``tracked``
    the tracker's proposed position there (:class:`recist_tool.reading.Proposal`);
``registration``
    the baseline position carried by the whole-scan registration of that visit;
``none``
    nothing known: no shift (raw patient millimetres).

With no lesion chosen, the registration's shift at a reference point (the baseline volume's
centre) lines the visits up, or nothing does.

A pure function of positions and registrations; :meth:`recist_tool.reading.ReadingSession.alignment`
gathers them for a read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from recist_tool.store import MeasurementInfo

__all__ = ["SOURCES", "Alignment", "align_visits", "lesion_position"]

#: Where a visit's shift came from, best first.
SOURCES = ("stored", "tracked", "registration", "none")

LPS = tuple[float, float, float]
#: A whole-scan registration of a follow-up: baseline LPS point → that visit's LPS point.
MapPoint = Callable[[Sequence[float] | np.ndarray], Sequence[float]]


@dataclass(frozen=True)
class Alignment:
    """The shift of each visit's image for side-by-side reading.

    Attributes
    ----------
    anchor_lps : tuple of float or None
        Where the tiles are centred: the lesion's baseline position (LPS mm); None without a
        lesion (the view stays where it is).
    offsets : dict
        visit → shift ``(x, y, z)`` LPS mm to add to that visit's positions (zero at baseline).
    sources : dict
        visit → where its shift came from (one of :data:`SOURCES`; ``"baseline"`` for the
        baseline itself).
    """

    anchor_lps: LPS | None
    offsets: dict[str, LPS] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)

    def describe(self, lesion_id: str | None = None) -> str:
        """One line for the reader: what each follow-up was lined up by, e.g.
        ``"T02: W06 by its stored measurement (6.3 mm), W12 not shifted"``."""
        words = {"stored": "its stored measurement", "tracked": "the tracked position",
                 "registration": "the registration"}
        parts = [f"{v} by {words[s]} ({np.linalg.norm(self.offsets[v]):.1f} mm)" if s in words
                 else f"{v} not shifted" for v, s in self.sources.items() if s != "baseline"]
        head = f"{lesion_id}: " if lesion_id else "the whole scans: "
        return head + (", ".join(parts) if parts else "one visit")


def lesion_position(measurement: MeasurementInfo) -> LPS | None:
    """A stored measurement's position: the middle of its long axis (LPS mm); None when it has no
    end points (a lesion recorded as absent, too small, present …)."""
    ends = (getattr(measurement, "endpoints_lps", None) or {}).get("long")
    if not ends:
        return None
    c = np.mean(np.asarray(ends, float), axis=0)
    return (float(c[0]), float(c[1]), float(c[2]))


def _shift(to: Sequence[float] | np.ndarray, frm: Sequence[float] | np.ndarray) -> LPS:
    d = np.asarray(to, float) - np.asarray(frm, float)
    return (float(d[0]), float(d[1]), float(d[2]))


def align_visits(baseline: str, visits: Sequence[str], *,
                 stored: Mapping[str, Sequence[float] | None] | None = None,
                 tracked: Mapping[str, Sequence[float] | None] | None = None,
                 registrations: Mapping[str, MapPoint] | None = None,
                 reference_lps: Sequence[float] | np.ndarray | None = None) -> Alignment:
    """Each visit's shift that puts its lesion where the baseline's is.

    Parameters
    ----------
    baseline : str
        The baseline visit (its shift is zero: the other visits are lined up on it).
    visits : sequence of str
        Every visit to place (the baseline among them or not).
    stored : mapping, optional
        visit → the lesion's stored position there (LPS mm) or None. Empty or None for every
        visit: no lesion is chosen, and the whole scans are lined up.
    tracked : mapping, optional
        visit → the tracker's proposed position of the lesion there, or None.
    registrations : mapping, optional
        visit → its whole-scan registration (baseline LPS point → that visit's LPS point).
    reference_lps : sequence of float, optional
        Where the whole-scan registration's shift is taken when no lesion is chosen (e.g. the
        baseline volume's centre); without it the whole scans are not shifted.

    Returns
    -------
    Alignment
        With a lesion: ``anchor_lps`` is its baseline position (stored; for a lesion first seen
        at a follow-up, that visit's position carried back by its registration's shift there, or
        as it is), each follow-up shifted by the first of stored, tracked, registration (at the
        anchor) that it has, else not at all. Without one: ``anchor_lps`` None and each follow-up
        shifted by its registration at ``reference_lps``, when both are given.

    Examples
    --------
    >>> a = align_visits("BL", ["BL", "W06", "W12"], stored={"BL": (0, 0, 0), "W06": (3, 4, 0)},
    ...                  tracked={"W12": (1, 0, 2)})
    >>> a.anchor_lps, a.offsets["W06"], a.sources["W12"], a.offsets["W12"]
    ((0.0, 0.0, 0.0), (-3.0, -4.0, 0.0), 'tracked', (-1.0, 0.0, -2.0))
    """
    at_stored: dict[str, Sequence[float]] = {v: p for v, p in (stored or {}).items() if p is not None}
    at_tracked: dict[str, Sequence[float]] = {v: p for v, p in (tracked or {}).items()
                                             if p is not None}
    regs = dict(registrations or {})
    offsets: dict[str, LPS] = {}
    sources: dict[str, str] = {}
    zero: LPS = (0.0, 0.0, 0.0)

    def by_registration(v: str, at: Sequence[float] | np.ndarray) -> LPS:
        return _shift(at, regs[v](at))

    anchor: LPS | None = None
    if at_stored or at_tracked:
        if baseline in at_stored:
            anchor = _shift(at_stored[baseline], zero)
        else:  # a lesion first seen at a follow-up: carried back to the baseline
            v = next(v for v in visits if v in at_stored or v in at_tracked)
            p = at_stored[v] if v in at_stored else at_tracked[v]
            back = by_registration(v, p) if v in regs else zero
            anchor = _shift(np.asarray(p, float) + np.asarray(back), zero)
    for v in visits:
        if v == baseline:
            offsets[v], sources[v] = zero, "baseline"
        elif anchor is not None and v in at_stored:
            offsets[v], sources[v] = _shift(anchor, at_stored[v]), "stored"
        elif anchor is not None and v in at_tracked:
            offsets[v], sources[v] = _shift(anchor, at_tracked[v]), "tracked"
        elif v in regs and (anchor is not None or reference_lps is not None):
            at = anchor if anchor is not None else reference_lps
            assert at is not None
            offsets[v], sources[v] = by_registration(v, at), "registration"
        else:
            offsets[v], sources[v] = zero, "none"
    return Alignment(anchor, offsets, sources)
