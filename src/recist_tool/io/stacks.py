"""Group frames into stacks of parallel slices and describe their geometry.

Frames are grouped by SeriesInstanceUID, then by orientation, matrix size and pixel spacing, so a
UID holding two stacks is split, never mixed. Inside a stack, slices are ordered by their position
projected on the slice normal (never by InstanceNumber or file name), and the geometry is examined:
gantry tilt (a sheared stack), missing slices, non-uniform gaps, duplicate positions, thick slices.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recist_tool.io.dicom_headers import FrameHeader, Skipped
from recist_tool.io.pixels import pixel_difference
from recist_tool.volume import (
    SHEAR_TOLERANCE_MM,
    UNIFORM_TOLERANCE_MM,
    GeometryWarning,
)

#: Slices closer than this along the normal (mm) are at the same position.
DUPLICATE_TOLERANCE_MM = 0.01
#: RECIST 1.1: above this slice thickness (mm) the minimum measurable size is 2 × thickness.
THICK_SLICE_MM = 5.0
#: Skip reasons that stand for a whole series (or one of its stacks) that could not be built.
SERIES_FAILURES = ("CONFLICTING_DUPLICATE", "DUPLICATE_POSITION", "NOT_A_VOLUME", "SINGLE_SLICE")


@dataclass
class Stack:
    """One stack of parallel CT slices: what becomes one :class:`~recist_tool.volume.Volume`.

    Attributes
    ----------
    stack_id : str
        The SeriesInstanceUID, suffixed ``#2``, ``#3``... when one UID holds several stacks.
    frames : list of FrameHeader
        Sorted along the slice normal.
    warnings : list of GeometryWarning
    folder : str
        Folder of the stack's first file, relative to the scanned path.
    """

    stack_id: str
    frames: list[FrameHeader]
    warnings: list[GeometryWarning] = field(default_factory=list)
    folder: str = ""

    @property
    def first(self) -> FrameHeader:
        return self.frames[0]

    @property
    def series_uid(self) -> str:
        return self.first.series_uid

    @property
    def normal(self) -> np.ndarray:
        return np.cross(self.first.orientation[:3], self.first.orientation[3:])

    @property
    def positions(self) -> np.ndarray:
        """``(nz, 3)`` ImagePositionPatient of the slices, in stack order."""
        return np.array([f.position for f in self.frames])

    @property
    def locations(self) -> np.ndarray:
        """Slice plane distances along the normal from the first slice (mm)."""
        p = self.positions
        return (p - p[0]) @ self.normal

    @property
    def slice_thickness_mm(self) -> float | None:
        """Median SliceThickness of the slices that give a finite non-zero one, else ``None``."""
        t = [f.slice_thickness for f in self.frames
             if f.slice_thickness and math.isfinite(f.slice_thickness)]
        # statistics.median: np.median would import numpy.ma (~10 ms) for one number.
        return float(statistics.median(t)) if t else None

    @property
    def spacing_zyx_mm(self) -> tuple[float, float, float]:
        loc = self.locations
        dz = float(np.mean(np.diff(loc))) if loc.size > 1 else (self.slice_thickness_mm or 1.0)
        return (dz, *self.first.pixel_spacing)

    def summary(self) -> dict[str, Any]:
        """The ``recist info`` entry for this stack (JSON-ready)."""
        f = self.first
        return {
            "series_uid": self.stack_id,
            "folder": self.folder,
            "modality": f.modality,
            "series_description": f.series_description,
            "series_number": f.series_number,
            "study_date": f.study_date,
            "n_slices": len(self.frames),
            "shape_zyx": [len(self.frames), f.rows, f.columns],
            "spacing_zyx_mm": [round(v, 4) for v in self.spacing_zyx_mm],
            "slice_thickness_mm": self.slice_thickness_mm,
            "transfer_syntax": f.transfer_syntax,
            "warnings": [w.code for w in self.warnings],
            "warning_details": [w.message for w in self.warnings],
        }


def _geometry_key(f: FrameHeader) -> tuple:
    return (tuple(np.round(f.orientation, 3)), f.rows, f.columns,
            tuple(round(s, 4) for s in f.pixel_spacing))


def group_stacks(frames: list[FrameHeader]) -> tuple[list[Stack], list[Skipped]]:
    """Group frames into stacks and examine each stack's geometry.

    Returns
    -------
    stacks : list of Stack
    skipped : list of Skipped
        Frames that form no volume (lone localizers, single slices, images at one position).
    """
    by_series: dict[str, list[FrameHeader]] = defaultdict(list)
    for f in frames:
        by_series[f.series_uid].append(f)
    stacks: list[Stack] = []
    skipped: list[Skipped] = []
    for uid, series_frames in by_series.items():
        groups: dict[tuple, list[FrameHeader]] = defaultdict(list)
        for f in series_frames:
            groups[_geometry_key(f)].append(f)
        ordered = sorted(groups.values(), key=len, reverse=True)
        main = ordered[0]
        main_normal = np.cross(main[0].orientation[:3], main[0].orientation[3:])
        kept: list[list[FrameHeader]] = [main]
        for g in ordered[1:]:
            n = np.cross(g[0].orientation[:3], g[0].orientation[3:])
            if len(g) == 1 and len(main) > 1 and abs(float(n @ main_normal)) < 0.5:
                skipped.append(Skipped(str(g[0].path), "LOCALIZER",
                                       "lone slice orthogonal to the rest of its series", uid))
            else:
                kept.append(g)
        mixed: list[GeometryWarning] = []
        if len(kept) > 1:
            orients = {g[0].orientation.round(3).tobytes() for g in kept}
            sizes = {(g[0].rows, g[0].columns, g[0].pixel_spacing) for g in kept}
            if len(orients) > 1:
                mixed.append(GeometryWarning(
                    "MIXED_ORIENTATION", f"series {uid} holds {len(kept)} stacks of different "
                    "orientation; split into separate volumes"))
            if len(sizes) > 1:
                mixed.append(GeometryWarning(
                    "MIXED_MATRIX", f"series {uid} holds stacks of different matrix size or "
                    "pixel spacing; split into separate volumes"))
        for g in kept:
            new, skip = _build_stacks(g)
            skipped.extend(skip)
            for s in new:
                s.warnings[:0] = mixed
            stacks.extend(new)
    # Give each stack a unique id: the UID, then UID#2, UID#3 ...
    seen: Counter[str] = Counter()
    for s in stacks:
        seen[s.series_uid] += 1
        s.stack_id = s.series_uid if seen[s.series_uid] == 1 else f"{s.series_uid}#{seen[s.series_uid]}"
    return stacks, skipped


def _sort_along_normal(frames: list[FrameHeader]) -> tuple[list[FrameHeader], np.ndarray]:
    n = np.cross(frames[0].orientation[:3], frames[0].orientation[3:])
    loc = np.array([f.position @ n for f in frames])
    order = sorted(range(len(frames)), key=lambda i: (loc[i], frames[i].instance_number or 0))
    return [frames[i] for i in order], loc[order]


def _drop_copies(frames: list[FrameHeader], loc: np.ndarray) -> tuple[list[int], Skipped | None]:
    """Drop the extra copies of one instance found at one position.

    Copies are frames with the same SOPInstanceUID and frame number whose positions along the
    normal are closer than :data:`DUPLICATE_TOLERANCE_MM` (``frames`` sorted along it). Their
    pixels are compared (only theirs are read while scanning): identical copies are dropped;
    copies that differ mean the series cannot be trusted, and nothing is kept.

    Returns
    -------
    keep : list of int
        Indices of the frames to keep, in order.
    conflict : Skipped or None
        ``CONFLICTING_DUPLICATE`` naming both files when two copies differ.
    """
    keep: list[int] = []
    first_at_position: dict[tuple[str, int | None], int] = {}
    for i, f in enumerate(frames):
        if i and loc[i] - loc[i - 1] >= DUPLICATE_TOLERANCE_MM:
            first_at_position = {}
        key = (f.sop_instance_uid, f.frame)
        j = first_at_position.get(key) if f.sop_instance_uid else None
        if j is None:
            first_at_position[key] = i
            keep.append(i)
            continue
        why = pixel_difference(frames[j], f)
        if why is not None:
            return keep, Skipped(
                str(f.path.parent), "CONFLICTING_DUPLICATE",
                f"series {f.series_uid}: instance {f.sop_instance_uid} is stored twice at one "
                f"position with {why}: {frames[j].path} and {f.path}", f.series_uid)
    return keep, None


def _build_stacks(frames: list[FrameHeader], depth: int = 0) -> tuple[list[Stack], list[Skipped]]:
    frames, loc = _sort_along_normal(frames)
    where = str(frames[0].path.parent)
    uid = frames[0].series_uid
    if len(frames) == 1:
        return [], [Skipped(str(frames[0].path), "SINGLE_SLICE",
                            "a series of one slice is not a volume", uid)]
    if float(np.ptp(loc)) < DUPLICATE_TOLERANCE_MM:
        return [], [Skipped(where, "NOT_A_VOLUME",
                            f"{len(frames)} images of series {uid} all lie at one position", uid)]
    warnings: list[GeometryWarning] = []
    keep, conflict = _drop_copies(frames, loc)
    if conflict is not None:
        return [], [conflict]
    if len(keep) < len(frames):
        warnings.append(GeometryWarning(
            "DUPLICATE_FILE", f"{len(frames) - len(keep)} duplicate copies of the same "
            "instance ignored"))
        frames = [frames[i] for i in keep]
        loc = loc[keep]
        if len(frames) == 1:
            return [], [Skipped(str(frames[0].path), "SINGLE_SLICE",
                                "a series of one slice (and copies of it) is not a volume", uid)]
    dup = np.flatnonzero(np.diff(loc) < DUPLICATE_TOLERANCE_MM)
    if dup.size:
        acq = {f.acquisition_number for f in frames}
        if len(acq) > 1 and depth == 0:
            out: list[Stack] = []
            skipped: list[Skipped] = []
            for a in sorted(acq, key=lambda v: (v is None, v)):
                sub = [f for f in frames if f.acquisition_number == a]
                s, k = _build_stacks(sub, depth + 1)
                for st in s:
                    st.warnings.insert(0, GeometryWarning(
                        "MULTIPLE_ACQUISITIONS", f"series holds several acquisitions at the same "
                        f"positions; this volume is acquisition {a}"))
                out.extend(s)
                skipped.extend(k)
            return out, skipped
        return [], [Skipped(where, "DUPLICATE_POSITION",
                            f"series {uid}: {dup.size} slice positions occur twice with different "
                            "images; not one volume", uid)]
    stack = Stack(uid, frames, warnings)
    stack.warnings.extend(describe_geometry(stack))
    return [stack], []


def report_dropped(stacks: list[Stack], skipped: list[Skipped]) -> None:
    """Tell each stack what it may be missing: ``DROPPED_SLICES`` and ``UNREADABLE_FILES``.

    ``DROPPED_SLICES``: skipped objects that claimed to belong to the stack's series (files with
    a bad header, truncated pixel data, no geometry...; slices left out of its stacks), see
    :attr:`Skipped.series_uid`. When a series was split, each of its stacks says so: which one a
    lost slice belonged to is not known. ``UNREADABLE_FILES``: files that could not be read far
    enough to know their series (damaged headers, corrupt zip members), on every stack found.
    """
    lost: dict[str, list[Skipped]] = defaultdict(list)
    for k in skipped:
        if k.series_uid is not None:
            lost[k.series_uid].append(k)
    unread = [k for k in skipped if k.series_uid is None and k.reason == "UNREADABLE"]
    for s in stacks:
        if lost.get(s.series_uid):
            s.warnings.append(GeometryWarning(
                "DROPPED_SLICES", f"{_count(lost[s.series_uid])} of series {s.series_uid} are "
                "in none of its volumes; see the skipped list"))
        if unread:
            s.warnings.append(GeometryWarning(
                "UNREADABLE_FILES", f"{_count(unread)} could not be read; they may hold slices "
                "of this series"))


def _count(skipped: list[Skipped]) -> str:
    """``"3 object(s) (TRUNCATED ×3: IM1, IM3, IM5)"``."""
    reasons = ", ".join(f"{r} ×{n}" for r, n in Counter(k.reason for k in skipped).most_common())
    names = ", ".join(Path(k.path).name for k in skipped[:3]) + (", ..." if len(skipped) > 3 else "")
    return f"{len(skipped)} object(s) ({reasons}: {names})"


def describe_geometry(stack: Stack) -> list[GeometryWarning]:
    """Warnings about a sorted stack: tilt, missing slices, uneven gaps, thick slices."""
    out: list[GeometryWarning] = []
    pos = stack.positions
    loc = stack.locations
    gaps = np.diff(loc)
    r, c = stack.first.orientation[:3], stack.first.orientation[3:]
    d = pos - pos[0]
    drift = np.stack([d @ c, d @ r], axis=1)
    if float(np.max(np.abs(drift))) > SHEAR_TOLERANCE_MM:
        table_step = float(np.linalg.norm(pos[-1] - pos[0])) / (len(loc) - 1)
        angle = float(np.degrees(np.arctan2(np.linalg.norm(drift[-1]), loc[-1])))
        tag = stack.first.gantry_tilt
        tag_txt = f"GantryDetectorTilt {tag:+.1f}°" if tag else "tilt tag absent"
        out.append(GeometryWarning(
            "GANTRY_TILT", f"slices are sheared by {angle:.1f}° ({tag_txt}); native slices are "
            f"kept with the exact sheared geometry (table step {table_step:.3f} mm, "
            f"gap between planes {float(np.mean(gaps)):.3f} mm)"))
    if float(np.ptp(gaps)) > UNIFORM_TOLERANCE_MM:
        base = float(np.min(gaps))
        mult = gaps / base
        steps = np.rint(mult)
        tol = max(UNIFORM_TOLERANCE_MM, 0.01 * base)
        if np.all(np.abs(gaps - steps * base) <= tol) and steps.max() >= 2:
            missing = int(np.sum(steps - 1))
            at = [round(float(loc[i]), 2) for i in np.flatnonzero(steps >= 2)]
            out.append(GeometryWarning(
                "MISSING_SLICE", f"{missing} slice(s) missing in a {base:.3f} mm stack (after "
                f"slice plane(s) at {at} mm from the first); real gaps kept"))
        else:
            out.append(GeometryWarning(
                "NONUNIFORM_SPACING", f"slice gaps vary from {gaps.min():.3f} to "
                f"{gaps.max():.3f} mm; real per-slice positions kept"))
    thick = stack.slice_thickness_mm
    thick_src = "slice thickness"
    if thick is None:
        thick, thick_src = float(statistics.median(gaps.tolist())), "slice gap"
    if thick > THICK_SLICE_MM:
        out.append(GeometryWarning(
            "THICK_SLICES", f"{thick_src} {thick:.2f} mm > {THICK_SLICE_MM:g} mm: RECIST "
            f"minimum measurable size becomes {2 * thick:.1f} mm"))
    return out
