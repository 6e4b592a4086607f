"""Core types of lesion segmentation: :class:`Prompt`, :class:`LesionMask`, :class:`Segmenter`.

A segmenter turns a :class:`~recist_tool.volume.Volume` and a :class:`Prompt` (one click, in voxel
or patient coordinates, optionally a box or a RECIST line) into a :class:`LesionMask`. A click that
is not on a lesion (air, bone, outside the body or the volume) raises :class:`NoLesionError`;
segmenters never return an empty or arbitrary blob for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, cast, runtime_checkable

import numpy as np

from recist_tool.errors import SegmentationError
from recist_tool.volume import Volume


class NoLesionError(SegmentationError):
    """The prompt does not point at a lesion (air, bone, fat, outside the body or the volume).

    The CLI turns it into one line and exit code 3. Attribute :attr:`reason` is a short stable
    code: ``outside_volume``, ``air``, ``bone``, ``fat``, ``no_boundary``, ``too_small``.
    """

    def __init__(self, message: str, reason: str = "no_lesion") -> None:
        super().__init__(message)
        self.reason = reason


def _vec3(v: Sequence[float] | np.ndarray, name: str) -> tuple[float, float, float]:
    a = np.asarray(v, dtype=np.float64).reshape(-1)
    if a.shape != (3,) or not np.all(np.isfinite(a)):
        raise SegmentationError(f"{name} must be three finite numbers, got {v!r}")
    return (float(a[0]), float(a[1]), float(a[2]))


@dataclass(frozen=True)
class Prompt:
    """Where the user points: one seed, optionally a box or a RECIST caliper line.

    Give at most one of ``point_zyx`` (voxel indices, fractional allowed, array order
    ``(z, y, x)``) or ``point_lps`` (patient coordinates, LPS ``(x, y, z)`` mm); without a point,
    the centre of the line, else of the box, is the seed. Use :meth:`seed_index` to get the voxel
    seed whichever was given, and :meth:`check` to refuse a prompt that does not fit a volume.

    Parameters
    ----------
    point_zyx : tuple of float, optional
        Seed in voxel indices ``(z, y, x)``.
    point_lps : tuple of float, optional
        Seed in LPS millimetres ``(x, y, z)``.
    box_zyx : tuple of two (z, y, x) tuples, optional
        Inclusive voxel bounds ``(lo, hi)`` that the lesion lies in; segmenters clip to it.
    line_zyx : tuple of two (z, y, x) tuples, optional
        End points (voxel indices) of a RECIST long-axis line drawn by the user: location, size,
        orientation and two points of the lesion's boundary. Without a point, its centre seeds
        the lesion, or, when the centre is air (a cavity), the tissue on the line nearest to it;
        its length sizes the region of interest.

    Examples
    --------
    >>> Prompt(line_zyx=((10, 40, 30), (10, 40, 70))).to_dict()["line_zyx"]
    [[10.0, 40.0, 30.0], [10.0, 40.0, 70.0]]
    >>> Prompt(line_zyx=((10, 40, 30), (10, 40, 30)))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    recist_tool.errors.SegmentationError: the line has zero length: both ends are at ...
    """

    point_zyx: tuple[float, float, float] | None = None
    point_lps: tuple[float, float, float] | None = None
    box_zyx: tuple[tuple[float, float, float], tuple[float, float, float]] | None = None
    line_zyx: tuple[tuple[float, float, float], tuple[float, float, float]] | None = None

    def __post_init__(self) -> None:
        given = [p is not None for p in (self.point_zyx, self.point_lps)]
        if all(given):
            raise SegmentationError("give the seed in voxel or in patient coordinates, not both")
        if not any(given) and self.line_zyx is None and self.box_zyx is None:
            raise SegmentationError("a prompt needs a seed point, a RECIST line or a box")
        if self.point_zyx is not None:
            object.__setattr__(self, "point_zyx", _vec3(self.point_zyx, "point_zyx"))
        if self.point_lps is not None:
            object.__setattr__(self, "point_lps", _vec3(self.point_lps, "point_lps"))
        if self.box_zyx is not None:
            lo, hi = (_vec3(b, "box_zyx") for b in self.box_zyx)
            if any(h < low for low, h in zip(lo, hi, strict=True)):
                raise SegmentationError(f"box corners must satisfy lo <= hi, got {lo}..{hi}")
            object.__setattr__(self, "box_zyx", (lo, hi))
        if self.line_zyx is not None:
            a, b = (_vec3(p, "line_zyx") for p in self.line_zyx)
            if a == b:
                raise SegmentationError(f"the line has zero length: both ends are at "
                                        f"(z, y, x) = {a}")
            object.__setattr__(self, "line_zyx", (a, b))

    @classmethod
    def at(cls, z: float, y: float, x: float) -> Prompt:
        """Prompt from a voxel seed ``(z, y, x)``."""
        return cls(point_zyx=(z, y, x))

    @classmethod
    def at_lps(cls, x: float, y: float, z: float) -> Prompt:
        """Prompt from an LPS seed ``(x, y, z)`` in mm."""
        return cls(point_lps=(x, y, z))

    def seed_index(self, volume: Volume) -> np.ndarray:
        """The seed as fractional voxel indices ``(z, y, x)`` on ``volume``'s grid.

        Raises
        ------
        NoLesionError
            When the seed lies outside the volume (reason ``outside_volume``).
        """
        if self.point_zyx is not None:
            idx = np.asarray(self.point_zyx, float)
        elif self.point_lps is not None:
            idx = np.asarray(volume.lps_to_index(np.asarray(self.point_lps, float)), float)
        elif self.line_zyx is not None:
            idx = _line_seed(volume, *(np.asarray(p, float) for p in self.line_zyx))
        else:
            a, b = (np.asarray(p, float) for p in self.box_zyx)  # type: ignore[union-attr]
            idx = 0.5 * (a + b)
        if not _inside(idx, volume.shape):
            raise NoLesionError(
                f"no lesion at this point: seed (z, y, x) = {tuple(round(float(v), 1) for v in idx)} "
                f"lies outside the volume of shape {volume.shape}", reason="outside_volume")
        return idx

    def check(self, volume: Volume) -> None:
        """Refuse a prompt that cannot be used on ``volume``, with a one-line reason.

        Raises
        ------
        SegmentationError
            A line end or box corner outside the volume, or a seed point outside its box.
        NoLesionError
            The seed lies outside the volume (reason ``outside_volume``).
        """
        for what, pts in (("line", self.line_zyx), ("box", self.box_zyx)):
            for p in pts or ():
                if not _inside(np.asarray(p, float), volume.shape):
                    raise SegmentationError(
                        f"the {what} reaches outside the volume: (z, y, x) = "
                        f"{tuple(round(v, 1) for v in p)} is not inside shape {volume.shape}")
        seed = self.seed_index(volume)
        if self.box_zyx is not None:
            lo, hi = (np.asarray(b, float) for b in self.box_zyx)
            if np.any(seed < lo - 0.5) or np.any(seed > hi + 0.5):
                raise SegmentationError(
                    f"the seed (z, y, x) = {tuple(round(float(v), 1) for v in seed)} lies "
                    f"outside its box {self.box_zyx[0]}..{self.box_zyx[1]}")

    def seed_voxel(self, volume: Volume) -> tuple[int, int, int]:
        """The seed rounded to the nearest voxel ``(z, y, x)`` inside ``volume``."""
        idx = np.rint(self.seed_index(volume)).astype(int)
        idx = np.clip(idx, 0, np.asarray(volume.shape) - 1)
        return (int(idx[0]), int(idx[1]), int(idx[2]))

    def line_length_mm(self, volume: Volume) -> float | None:
        """Length (mm) of the RECIST line in patient space, or ``None`` without a line."""
        if self.line_zyx is None:
            return None
        a, b = (volume.index_to_lps(np.asarray(p, float)) for p in self.line_zyx)
        return float(np.linalg.norm(a - b))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (voxel order says ``zyx``, patient order ``lps``)."""
        d: dict[str, Any] = {}
        if self.point_zyx is not None:
            d["point_zyx"] = list(self.point_zyx)
        if self.point_lps is not None:
            d["point_lps"] = list(self.point_lps)
        if self.box_zyx is not None:
            d["box_zyx"] = [list(p) for p in self.box_zyx]
        if self.line_zyx is not None:
            d["line_zyx"] = [list(p) for p in self.line_zyx]
        return d


def _line_seed(volume: Volume, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The seed of a line-only prompt: the line's midpoint, or when that voxel is air (the
    cavity of a cavitating lesion, which a reader's line crosses) the middle of the stretch of
    tissue (at least ``AIR_MAX_HU``) on the line's inner 80 % nearest to the midpoint: the
    middle of the wall, not its partial-volume edge."""
    from recist_tool.segment.seed import AIR_MAX_HU

    mid = 0.5 * (a + b)
    t = np.linspace(0.1, 0.9, 161)
    pts = a[None, :] + t[:, None] * (b - a)[None, :]
    if not all(_inside(q, volume.shape) for q in (pts[0], pts[-1])):
        return mid
    vox = np.clip(np.rint(pts).astype(int), 0, np.asarray(volume.shape) - 1)
    tissue = np.asarray(volume.array[tuple(vox.T)], float) >= AIR_MAX_HU
    if tissue[len(t) // 2] or not tissue.any():
        return mid
    edges = np.flatnonzero(np.diff(np.concatenate([[0], tissue.astype(int), [0]])))
    runs = edges.reshape(-1, 2)  # [start, stop) of each stretch of tissue
    centres = 0.5 * (runs[:, 0] + runs[:, 1] - 1)
    k = int(np.argmin(np.abs(centres - len(t) // 2)))
    return pts[int(round(centres[k]))]


def _inside(idx: np.ndarray, shape: Sequence[int]) -> bool:
    """Whether fractional voxel indices lie within the volume (half a voxel beyond its centres)."""
    return bool(np.all(idx >= -0.5) and np.all(idx <= np.asarray(shape, float) - 0.5))


@dataclass(frozen=True, eq=False)
class LesionMask:
    """A lesion mask on a volume's grid, stored as a crop plus its offset, with provenance.

    Parameters
    ----------
    mask : numpy.ndarray
        Boolean ``(z, y, x)`` crop.
    offset : tuple of int
        Index in the full volume of the crop's first voxel.
    volume_shape : tuple of int
        Shape of the full volume the mask belongs to.
    segmenter : str
        Registry name of the segmenter that produced it.
    version : str
        Segmenter version (for weights: a short hash of the weight file).
    prompt : Prompt
        The prompt used.
    leak_bounded : bool
        True when the mask reached the edge of the region the segmenter looked at, so the
        lesion may extend further (or the result leaked into neighbouring tissue and was cut).
    warnings : tuple of str
        Human-readable notes (e.g. fall-back from ``unet`` to ``classic``).
    info : dict
        Segmenter-specific details (thresholds, timings, working spacing).
    """

    mask: np.ndarray
    offset: tuple[int, int, int]
    volume_shape: tuple[int, int, int]
    segmenter: str
    version: str
    prompt: Prompt
    leak_bounded: bool = False
    warnings: tuple[str, ...] = ()
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        m = np.asarray(self.mask).astype(bool, copy=False)
        if m.ndim != 3:
            raise SegmentationError(f"a lesion mask must be 3D, got shape {m.shape}")
        object.__setattr__(self, "mask", m)
        object.__setattr__(self, "offset", tuple(int(v) for v in self.offset))
        object.__setattr__(self, "volume_shape", tuple(int(v) for v in self.volume_shape))
        hi = np.asarray(self.offset) + np.asarray(m.shape)
        if np.any(np.asarray(self.offset) < 0) or np.any(hi > np.asarray(self.volume_shape)):
            raise SegmentationError("lesion mask crop does not fit inside the volume")

    @property
    def n_voxels(self) -> int:
        """Number of lesion voxels."""
        return int(np.count_nonzero(self.mask))

    @property
    def is_empty(self) -> bool:
        """True when no voxel is set."""
        return self.n_voxels == 0

    @property
    def slices(self) -> tuple[slice, slice, slice]:
        """Slices of the full volume that the crop covers."""
        return tuple(slice(o, o + n) for o, n in zip(self.offset, self.mask.shape, strict=True))  # type: ignore[return-value]

    def full(self) -> np.ndarray:
        """The mask on the full volume grid (boolean, shape :attr:`volume_shape`)."""
        out = np.zeros(self.volume_shape, dtype=bool)
        out[self.slices] = self.mask
        return out

    def tight(self) -> LesionMask:
        """The same mask cropped to its bounding box (unchanged when empty)."""
        if self.is_empty:
            return self
        nz = np.nonzero(self.mask)
        lo = [int(a.min()) for a in nz]
        hi = [int(a.max()) + 1 for a in nz]
        sub = self.mask[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
        off = cast("tuple[int, int, int]", tuple(o + v for o, v in zip(self.offset, lo, strict=True)))
        return LesionMask(sub, off, self.volume_shape, self.segmenter, self.version, self.prompt,
                          self.leak_bounded, self.warnings, dict(self.info))

    def volume_ml(self, volume: Volume) -> float:
        """Lesion volume in mL using the volume's real slice gaps."""
        per_slice = self.mask.sum(axis=(1, 2))
        vox = volume.voxel_volume_ml()[self.offset[0]:self.offset[0] + self.mask.shape[0]]
        return float(np.sum(per_slice * vox))

    def provenance(self) -> dict[str, Any]:
        """JSON-ready provenance: segmenter, version, prompt, flags and warnings."""
        return {
            "segmenter": self.segmenter,
            "version": self.version,
            "prompt": self.prompt.to_dict(),
            "leak_bounded": self.leak_bounded,
            "warnings": list(self.warnings),
        }


@runtime_checkable
class Segmenter(Protocol):
    """What every segmenter (built-in or plug-in) provides.

    Attributes
    ----------
    name : str
        Registry name (``classic``, ``unet``, a plug-in's name).
    version : str
        Version string recorded in each mask's provenance.
    """

    name: str
    version: str

    def segment(self, volume: Volume, prompt: Prompt, *, node: bool = False) -> LesionMask:
        """Segment the lesion the prompt points at.

        Parameters
        ----------
        volume : Volume
            The CT (HU).
        prompt : Prompt
            Seed and optional box / line.
        node : bool
            Hint that the lesion is a lymph node.

        Raises
        ------
        NoLesionError
            When the prompt is not on a lesion.
        SegmentationError
            For any other failure the user should hear about.
        """
        ...


def clip_to_box(mask: np.ndarray, offset: Sequence[int], box, refuse_empty: bool = False
                ) -> np.ndarray:
    """``mask`` (a crop placed at ``offset`` on the volume grid) without the voxels outside a
    prompt's box (inclusive voxel corners ``(lo, hi)``, fractional allowed).

    Raises
    ------
    NoLesionError
        With ``refuse_empty``, when nothing of the mask is inside the box.
    """
    lo = np.floor(np.asarray(box[0]) - np.asarray(offset)).astype(int)
    hi = np.ceil(np.asarray(box[1]) - np.asarray(offset)).astype(int) + 1
    keep = np.zeros_like(mask)
    keep[tuple(slice(max(a, 0), max(b, 0)) for a, b in zip(lo, hi, strict=True))] = True
    out = mask & keep
    if refuse_empty and not out.any():
        raise NoLesionError("no lesion inside the box", reason="no_boundary")
    return out


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice coefficient of two boolean arrays of the same shape (1.0 when both are empty)."""
    a = np.asarray(a, bool)
    b = np.asarray(b, bool)
    if a.shape != b.shape:
        raise SegmentationError(f"masks differ in shape: {a.shape} vs {b.shape}")
    s = int(a.sum()) + int(b.sum())
    return 1.0 if s == 0 else 2.0 * int(np.logical_and(a, b).sum()) / s


def scan_edges(lesion: LesionMask) -> list[str]:
    """The edges of the scanned volume that a lesion mask reaches.

    Parameters
    ----------
    lesion : LesionMask
        A mask on its volume's grid.

    Returns
    -------
    list of str
        ``"first slice"``, ``"last slice"`` and ``"image edge"`` (a row or column at the border
        of the slices), in that order, for those reached; empty when none is.
    """
    if lesion.is_empty:
        return []
    box = lesion.tight()  # the mask's bounding box on the volume grid
    lo = np.asarray(box.offset)
    hi = lo + np.asarray(box.mask.shape)
    shape = np.asarray(box.volume_shape)
    out = []
    if lo[0] == 0:
        out.append("first slice")
    if hi[0] == shape[0]:
        out.append("last slice")
    if np.any(lo[1:] == 0) or np.any(hi[1:] == shape[1:]):
        out.append("image edge")
    return out


def with_scan_edges(lesion: LesionMask) -> LesionMask:
    """``lesion``, flagged when it reaches an edge of the scanned volume (:func:`scan_edges`):
    ``leak_bounded`` set, ``info["scan_edge"]`` naming the edges and a warning that the lesion
    may extend beyond the scan and its diameters be too short. Every path that segments a
    lesion for a reader (a click or a line, a batch seed, a tracked follow-up) passes its mask
    through this.
    """
    edges = scan_edges(lesion)
    if not edges:
        return lesion
    return replace(
        lesion, leak_bounded=True, info={**lesion.info, "scan_edge": edges},
        warnings=(*lesion.warnings, f"the lesion reaches the {' and the '.join(edges)} of the "
                  "scanned volume: it may extend beyond the scan, and its diameters may be "
                  "too short"))
