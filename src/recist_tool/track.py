"""Lesion tracking across timepoints: register a follow-up to the baseline, propagate each lesion,
re-segment it, measure it, and say how sure the match is.

Steps (all registration with SimpleITK, points in DICOM LPS millimetres):

1. **The baseline first**: each lesion is outlined again by its own segmenter (below) from a click
   at its centre (and from its line when no mask is given); where the lesions lie (a ball round
   each outline, :data:`LESION_MARGIN_MM`) is left out of every image match that follows, since a
   lesion's own growth or shrinkage is not the patient's motion.
2. **Global rigid** registration (Euler 3D, Mattes mutual information drawing at most
   :data:`METRIC_SAMPLES` voxels an iteration, on block-averaged copies at 6 mm then 3 mm, each
   made once and reused by the lesion-level stage): baseline is the fixed image, the follow-up
   the moving one, so the transform maps a baseline point to where it lies in the follow-up.
3. **Lesion-level alignment, doubted**: per lesion, a similarity transform (a turn, a shift and a
   growth factor about the centroid of its baseline outline) fitted to the lesion itself and a
   rim of :data:`LESION_BOX_MARGIN_MM`, started from the global transform, on a coarse grid and
   then the working grid: a lesion grows or shrinks about its middle, so a fit that may scale
   finds where the middle went, while a rigid match (of the tissue round the lesion, which its
   growth pushes, or of a limb scan that slides along itself) can be tens of mm off. When it
   places the lesion more than :data:`DISAGREE_MM` from the global match, the two alignments
   disagree: the one whose normalised cross-correlation (NCC) with the baseline on that box is
   higher (the global one tried with growth factors :data:`GLOBAL_SCALES`, both on the voxels
   each keeps inside the follow-up's field) is kept, and the choice is reported; when their
   NCCs lie within :data:`DOUBT_NCC_MARGIN` of each other the image cannot tell them apart and
   the lesion can only be ``uncertain``. The lesion's map (:attr:`TrackedLesion.transform`) is
   that alignment with the growth it read; lines and masks are carried by the alignment alone.
   Where the lesion-level fit is not kept and the NCC outside the lesions is below
   ``deformable_below`` (breathing, posture), a coarse B-spline (deformable) registration of a
   box round the lesion follows.
4. **Re-segmentation with the lesion's own segmenter**: each lesion keeps, at every follow-up, the
   segmenter, tissue route and edge rule of its baseline mask (:func:`kept_segmenter_spec`: the
   default ``unet`` that handed a liver lesion to ``classic`` at baseline is not asked again at
   the follow-up, ``classic`` is), unless :attr:`BaselineLesion.segmenter` (the reader's choice)
   says otherwise; :attr:`TrackedLesion.segmenter_spec` says which was used. The first prompt is
   a click at the propagated centre; if it misses (shrunken lesion), a few seeds within a small
   radius whose HU is closest to the baseline lesion's are tried. When the baseline has a long-axis
   line (:attr:`BaselineLesion.line_lps`), the follow-up is then outlined from that line carried
   by the registration, scaled by the change between the follow-up's and the baseline's click
   outlines (:data:`LINE_SCALE_RANGE`) about the carried centroid of the baseline outline, and
   moved where the follow-up click's outline lies off where that puts the baseline click's (a
   lesion shrinking towards one side moves its middle; :data:`LINE_FOLLOW_SLACK_MM`), as the
   baseline was read. **Measurement** with :func:`recist_tool.measure.measure_mask`.
5. **Resemblance**: the follow-up mask is compared with the baseline lesion's mask — outlined again
   by the same segmenter from a click at its centre, the prompt the follow-up gets, so that like
   is compared with like — carried by the registration (:func:`resemblance`): the distance of its
   centroid from the propagated baseline centroid, how much of the smaller of the two lies in the
   other, its shape against the baseline mask scaled to the same volume, its size ratio and its
   upper-quartile HU; then the distance of its centroid from the reader's carried centre, and,
   with a reader's line, whether the baseline outline measures that line (``reader_line``) and
   whether the outlines from the click and from the line are one lesion (``prompt_mm``). Only a
   mask that passes every check (limits in :data:`FOUND_LIMITS`) is ``found``; any other is
   ``uncertain``, with the failing checks in its notes.
6. A lesion that cannot be segmented is proposed as ``"absent?"`` for the reader to confirm — never
   as a silent 0 mm.

The confidence (0–1) is calibrated: the probability, measured with ``recist evaluate-tracking``
on the trainable sets, that a follow-up mask with these resemblance figures is the right lesion
(its centroid within 5 mm of the lesion's): :func:`calibrated_confidence`, a logistic model
(:data:`CONFIDENCE_MODEL`) of :data:`CONFIDENCE_FEATURES`; ``found`` needs every check within its
limit, no registration doubt and a confidence of at least :data:`FOUND_MIN_CONFIDENCE`. A mask
that fails a check, or whose alignment is in doubt, is given at most
:data:`UNCERTAIN_MAX_CONFIDENCE`: among such masks even the best-scored were the right lesion about
half the time. What 0.8 means, measured, is written in ``docs/tracking.md``. The lowest
per-check score ``1 / (1 + (x / limit)⁴)`` (``x`` the check's excess, 0.5 at a limit) is kept in
the checks as ``margin``.
``absent?`` has confidence 0.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np

from recist_tool.errors import GeometryError, InputError, SegmentationError
from recist_tool.stages import timed
from recist_tool.volume import Volume

if TYPE_CHECKING:
    from recist_tool.measure import AxisMeasurement
    from recist_tool.measure.result import Point3, Segment3
    from recist_tool.segment import LesionMask

__all__ = ["BaselineLesion", "TrackedLesion", "TrackResult", "Registration", "register_rigid",
           "track_lesions", "to_sitk", "measurement_kwargs", "baseline_lesions",
           "kept_segmenter_spec", "resemblance", "stored_segmenter_spec", "FOUND_LIMITS", "DISAGREE_MM",
           "DOUBT_NCC_MARGIN", "CONFIDENCE_MODEL", "CONFIDENCE_FEATURES", "FOUND_MIN_CONFIDENCE",
           "UNCERTAIN_MAX_CONFIDENCE",
           "calibrated_confidence", "confidence_features"]

Status = Literal["found", "absent?", "uncertain"]

# --- the thresholds of tracking (one place) -------------------------------------------------------
#: Global and lesion-level alignments that place the lesion further apart than this (mm) disagree:
#: the one that matches the image around the lesion better is kept, and the choice is reported.
DISAGREE_MM = 5.0
#: Disagreeing alignments whose local NCCs differ by less than this cannot be told apart by the
#: image: the lesion is ``uncertain`` whatever its mask looks like.
DOUBT_NCC_MARGIN = 0.02
#: The limits of the resemblance checks (:func:`resemblance`) a follow-up mask must all pass to be
#: ``found``: ``shift_mm`` the distance (mm) between its centroid and the propagated centroid of
#: the baseline mask; ``containment`` the least share of the smaller mask (baseline carried to the
#: follow-up, or follow-up) that lies in the other; ``shape_dice`` the least Dice between the
#: follow-up mask and the baseline mask scaled to the same volume and centred on it; ``size_ratio``
#: the follow-up/baseline equivalent-diameter ratio allowed (low, high); ``hu_diff`` the largest
#: difference (HU) between the two masks' upper-quartile HU (:data:`HU_PERCENTILE`); ``centre_mm``
#: the distance (mm) between its centroid and the propagated centre of the lesion (the midpoint
#: of the reader's line as carried and scaled for the follow-up's line prompt, or the centre
#: given): a baseline outline off the reader's lesion (the
#: default's sarcoma masks, up to 29 mm off) is followed faithfully, but is not the lesion.
#: ``reader_line`` how far (a share) the baseline outline's long axis may differ from the reader's
#: line: an outline that stops short of the line (a liver tumour outlined 14 % short, its centroid
#: 8.5 mm off the tumour's) follows another extent of the lesion than the one read; 10 % is a
#: third of the change that makes a partial response. ``prompt_mm`` the largest distance (mm)
#: between the centroids of the outlines the lesion's segmenter draws from a click at the line's
#: midpoint and from the line, at baseline and at the follow-up: where they part by more than half
#: of the 5 mm that makes a wrong lesion, the lesion's extent depends on the prompt (a sarcoma whose
#: two outlines lay 5.2 mm apart had its line outline's centroid 8.2 mm off the tumour's).
FOUND_LIMITS: dict[str, Any] = {"shift_mm": 4.0, "containment": 0.6, "shape_dice": 0.5,
                                "size_ratio": (0.25, 2.5), "hu_diff": 150.0, "centre_mm": 5.0,
                                "reader_line": 0.10, "prompt_mm": 2.5}
#: The percentile of HU inside a mask that the HU check compares: the lesion's body, where the
#: median of a small lesion on thick slices moves with the partial volume of its rim (the lung1
#: tumour, 18 mm on 5 mm slices, turned 2.6 degrees and shifted 12 mm: 128 HU lower at the same
#: size, hence a limit of 150 HU, which still parts soft tissue from fat or air).
HU_PERCENTILE = 75.0
#: The follow-up's line prompt is the baseline line scaled by the change between the two clicks'
#: masks, held to this range (a click's mask can leak or stop short).
LINE_SCALE_RANGE = (0.3, 2.5)
#: The follow-up's line prompt moves with the click's outline (its centroid against where the
#: scaled line puts the baseline click outline's) when that move exceeds the ``prompt_mm`` limit
#: (the outlines' own variation) and is at most the change of that outline's radius plus this
#: (mm, what the alignments may be off by): further, the click outlined something else, and the
#: line is scaled in place.
LINE_FOLLOW_SLACK_MM = 5.0
#: The most voxels a registration metric draws at each iteration (seeded): an iteration costs the
#: same on a full-size scan as on a small crop.
METRIC_SAMPLES = 20000
#: The alignments match the image outside a ball around each baseline lesion (its outline's
#: farthest voxel from its centroid plus this margin, mm): a lesion that grew or shrank pulls a
#: rigid match of a box it fills towards one of its edges (7 mm off on a liver tumour grown 1.25x),
#: while the anatomy around it has not changed.
LESION_MARGIN_MM = 3.0
#: The least share of an image the lesions may leave to the match; below it they are not left out
#: (a scan cropped to its lesion).
MIN_OUTSIDE = 0.25
#: The least share of the baseline a whole-scan alignment may carry into the follow-up's field: a
#: run that slides a limb scan along itself until little of the two overlaps (173 mm on a
#: sarcoma grown 1.25x) matches what is left well, and is dropped.
MIN_OVERLAP = 0.5
#: The whole-scan rigid match's grids (mm), coarse to fine.
RIGID_LEVELS_MM = (6.0, 3.0)
#: Checks score ``1 / (1 + (x / limit) ** CONFIDENCE_POWER)``: 0.5 at the limit.
CONFIDENCE_POWER = 4


@dataclass(frozen=True)
class BaselineLesion:
    """A lesion at baseline: its centre (LPS mm) or a mask on the baseline grid.

    Parameters
    ----------
    lesion_id : str
        ``T01``, ``NT01``, ...
    center_lps : tuple of float, optional
        Seed / centre in LPS ``(x, y, z)`` mm. Derived from ``mask`` when omitted.
    mask : numpy.ndarray, optional
        Boolean ``(z, y, x)`` mask on the baseline grid, or a crop placed at ``mask_offset``.
    mask_offset : tuple of int
        Index of the crop's first voxel in the baseline volume.
    nodal : bool
        Lymph node (measured by its short axis).
    size_mm : float, optional
        Baseline long axis; sets the search scale (estimated from ``mask`` when omitted).
    line_lps : pair of points, optional
        The reader's long-axis line at baseline (two LPS points): the lesion's centre is its
        midpoint, and the follow-up is outlined from it as carried by the registration.
    segmenter : str, optional
        The segmenter spec (``name`` or ``name:key=value,...``) to measure this lesion with at
        the follow-up: the one of its baseline mask (:func:`kept_segmenter_spec`) or the reader's
        choice. None: the one :func:`track_lesions` is given, routed at baseline once.
    """

    lesion_id: str
    center_lps: tuple[float, float, float] | None = None
    mask: np.ndarray | None = None
    mask_offset: tuple[int, int, int] = (0, 0, 0)
    nodal: bool = False
    size_mm: float | None = None
    segmenter: str | None = None
    line_lps: tuple[tuple[float, float, float], tuple[float, float, float]] | None = None


@dataclass(frozen=True, eq=False)
class TrackedLesion:
    """What tracking proposes for one lesion at the follow-up (the reader confirms or corrects).

    ``status`` is ``found``, ``uncertain`` (segmented, but the mask does not resemble the baseline
    lesion carried by the registration, or the registration is in doubt) or ``absent?`` (nothing
    segmentable there: confirm absent or place it). ``mask`` is a
    :class:`recist_tool.segment.LesionMask` and ``measurement`` a
    :class:`recist_tool.measure.AxisMeasurement` (both None when absent?). ``segmenter_spec`` is
    the segmenter the lesion was measured with; ``checks`` the resemblance figures
    (:func:`resemblance`, ``centre_mm`` and ``reader_line``), ``registration`` which alignment was
    kept and why (``scale``: the growth the lesion-level fit read), and ``transform`` that
    alignment with that growth about the baseline outline's centroid (SimpleITK, baseline LPS →
    follow-up LPS: where a point of the lesion lies at the follow-up).
    """

    lesion_id: str
    status: Status
    propagated_center_lps: tuple[float, float, float]
    proposed_center_lps: tuple[float, float, float]
    confidence: float
    distance_mm: float | None
    local_ncc: float
    mask: LesionMask | None = None
    measurement: AxisMeasurement | None = None
    notes: tuple[str, ...] = ()
    segmenter_spec: str | None = None
    checks: dict[str, Any] = field(default_factory=dict)
    registration: dict[str, Any] = field(default_factory=dict)
    transform: Any = None

    def map_point(self, lps: Sequence[float] | np.ndarray) -> tuple[float, float, float]:
        """Baseline LPS point → follow-up LPS point by the alignment kept for this lesion."""
        p = self.transform.TransformPoint(tuple(float(v) for v in lps))
        return (float(p[0]), float(p[1]), float(p[2]))


@dataclass(frozen=True)
class Registration:
    """A follow-up → baseline registration: ``transform`` maps baseline LPS to follow-up LPS."""

    transform: Any
    metric: float
    seconds: float
    stages: tuple[str, ...]

    def map_point(self, lps: Sequence[float]) -> tuple[float, float, float]:
        """Baseline LPS point → follow-up LPS point."""
        p = self.transform.TransformPoint(tuple(float(v) for v in lps))
        return (float(p[0]), float(p[1]), float(p[2]))


@dataclass(frozen=True, eq=False)
class TrackResult:
    """Per-lesion proposals and the global registration."""

    lesions: tuple[TrackedLesion, ...]
    registration: Registration
    seconds: float
    info: dict[str, Any] = field(default_factory=dict)

    def get(self, lesion_id: str) -> TrackedLesion:
        """The proposal for one lesion."""
        for t in self.lesions:
            if t.lesion_id == lesion_id:
                return t
        raise KeyError(lesion_id)


# --- SimpleITK plumbing --------------------------------------------------------------------------

def to_sitk(volume: Volume, dtype: Any = np.float32) -> Any:
    """A SimpleITK image with the volume's exact LPS geometry (resampled first when sheared or
    unevenly spaced, since an ITK image is a regular grid)."""
    import SimpleITK as sitk

    vol = volume if volume.is_orthogonal_grid else volume.resample_orthogonal()
    return _with_geometry(sitk.GetImageFromArray(np.ascontiguousarray(vol.array, dtype=dtype)), vol)


def _with_geometry(img: Any, vol: Volume) -> Any:
    """``img`` (made from ``vol.array`` of an orthogonal ``vol``) placed at ``vol``'s LPS grid."""
    img.SetSpacing(tuple(float(s) for s in vol.spacing[::-1]))
    img.SetOrigin(tuple(float(v) for v in vol.slice_positions[0]))
    img.SetDirection(tuple(float(v) for v in vol.direction[:, ::-1].ravel()))
    return img


def _shrink_to(img: Any, target_mm: float) -> Any:
    import SimpleITK as sitk

    factors = [max(1, int(round(target_mm / s))) for s in img.GetSpacing()]
    if all(f == 1 for f in factors):
        return img
    return sitk.BinShrink(img, factors)  # block averages: downsampling without aliasing


class _Pyramid:
    """A prepared image (:func:`_prepare`) and its block-averaged copies, each made once.

    Made from a :class:`Volume` with ``levels``, it makes those copies at once and drops the
    full-resolution image; a level asked for later is made from the volume again.
    """

    def __init__(self, img: Any = None, *, volume: Volume | None = None,
                 levels: Sequence[float] = ()) -> None:
        self._full = img
        self._volume = volume
        self._levels: dict[float, Any] = {}
        for level in levels:
            self.at(level)
        if volume is not None and levels:
            self._full = None

    @property
    def full(self) -> Any:
        """The prepared full-resolution image."""
        if self._full is None:
            assert self._volume is not None
            self._full = _prepared_volume(self._volume)
        return self._full

    def at(self, level_mm: float) -> Any:
        """The image on a grid of about ``level_mm``."""
        if level_mm not in self._levels:
            self._levels[level_mm] = _shrink_to(self.full, level_mm)
        return self._levels[level_mm]


@timed("register")
def _pyramid(image: Volume | Any, levels: Sequence[float] = ()) -> _Pyramid:
    """The pyramid of a volume, a SimpleITK image or (unchanged) a pyramid; with ``levels``, a
    volume's pyramid keeps only those grids (see :class:`_Pyramid`)."""
    if isinstance(image, _Pyramid):
        return image
    if isinstance(image, Volume):
        return _Pyramid(volume=image, levels=levels)
    return _Pyramid(_prepare(image))


#: The HU range registration sees: air to dense bone; metal and contrast streaks do not dominate.
_MATCH_HU = (-1000.0, 1500.0)


def _prepare(img: Any) -> Any:
    import SimpleITK as sitk

    return sitk.Clamp(sitk.Cast(img, sitk.sitkFloat32), sitk.sitkFloat32, *_MATCH_HU)


def _prepared_volume(volume: Volume) -> Any:
    """:func:`_prepare` of a volume with the fewest full-size copies: HU clamped in the volume's
    own type, handed to ITK, cast to float there (peak: the clamped copy in ITK and the float
    image, instead of four float copies)."""
    import SimpleITK as sitk

    vol = volume if volume.is_orthogonal_grid else volume.resample_orthogonal()
    arr = vol.array
    if not (arr.dtype.kind == "f" or (arr.dtype.kind == "i" and arr.dtype.itemsize >= 2)):
        arr = arr.astype(np.float32)  # a type that cannot hold the range (uint8, uint16)
    lo, hi = (np.asarray(v).astype(arr.dtype) for v in _MATCH_HU)
    clamped = np.clip(arr, lo, hi)  # in the volume's own type: no float64 copy
    img = _with_geometry(sitk.GetImageFromArray(clamped), vol)
    del clamped
    return sitk.Cast(img, sitk.sitkFloat32)


def _method(fixed: Any, seed: int = 1) -> Any:
    """Mattes mutual information drawing at most :data:`METRIC_SAMPLES` voxels of ``fixed``."""
    import SimpleITK as sitk

    r = sitk.ImageRegistrationMethod()
    r.SetMetricAsMattesMutualInformation(numberOfHistogramBins=40)
    n = float(np.prod(fixed.GetSize()))
    r.SetMetricSamplingStrategy(r.RANDOM)
    r.SetMetricSamplingPercentage(min(1.0, METRIC_SAMPLES / n), seed)
    r.SetInterpolator(sitk.sitkLinear)
    return r


def _metric(fixed: Any, moving: Any, transform: Any, mask: Any = None) -> float:
    """Mattes mutual information (lower is better) of ``transform`` on every voxel of ``fixed``
    (within ``mask``)."""
    import SimpleITK as sitk

    ev = sitk.ImageRegistrationMethod()
    if mask is not None:
        ev.SetMetricFixedMask(mask)
    ev.SetMetricAsMattesMutualInformation(numberOfHistogramBins=40)
    ev.SetMetricSamplingStrategy(ev.NONE)
    ev.SetInterpolator(sitk.sitkLinear)
    ev.SetInitialTransform(transform)
    return float(ev.MetricEvaluate(fixed, moving))


def _outside(img: Any, balls: Sequence[tuple[np.ndarray, float]]) -> np.ndarray | None:
    """``(z, y, x)`` booleans: the voxels of ``img`` outside every ball (LPS centre, radius mm);
    None when no ball touches it or when they leave less than :data:`MIN_OUTSIDE` of it."""
    if not balls:
        return None
    size = img.GetSize()
    sp = np.asarray(img.GetSpacing())
    d = np.asarray(img.GetDirection()).reshape(3, 3)
    o = np.asarray(img.GetOrigin())
    axes = [np.arange(n) * sp[i] for i, n in enumerate(size)]
    keep = np.ones(size[::-1], bool)
    for c, r in balls:
        # the ball in the image's own (x, y, z) axes, then its voxels
        q = d.T @ (np.asarray(c, float) - o)
        dist2 = ((axes[0] - q[0]) ** 2)[None, None, :] + ((axes[1] - q[1]) ** 2)[None, :, None] \
            + ((axes[2] - q[2]) ** 2)[:, None, None]
        keep &= dist2 > r * r
    if keep.all() or keep.mean() < MIN_OUTSIDE:
        return None
    return keep


def _overlap(fixed: Any, moving: Any, transform: Any) -> float:
    """The share of ``fixed``'s voxels (every other one along each axis) that ``transform`` (an
    Euler 3D) carries inside ``moving``'s field."""
    size = np.asarray(fixed.GetSize())
    idx = np.stack(np.meshgrid(*[np.arange(0, n, 2) for n in size], indexing="ij"),
                   -1).reshape(-1, 3).astype(float)
    d = np.asarray(fixed.GetDirection()).reshape(3, 3)
    pts = np.asarray(fixed.GetOrigin()) + (idx * np.asarray(fixed.GetSpacing())) @ d.T
    r = np.asarray(transform.GetMatrix()).reshape(3, 3)
    c = np.asarray(transform.GetCenter())
    q = (pts - c) @ r.T + c + np.asarray(transform.GetTranslation())
    dm = np.asarray(moving.GetDirection()).reshape(3, 3)
    j = ((q - np.asarray(moving.GetOrigin())) @ dm) / np.asarray(moving.GetSpacing())
    inside = np.all((j >= -0.5) & (j <= np.asarray(moving.GetSize()) - 0.5), axis=1)
    return float(inside.mean())


def _as_mask(img: Any, keep: np.ndarray) -> Any:
    import SimpleITK as sitk

    m = sitk.GetImageFromArray(keep.astype(np.uint8))
    m.CopyInformation(img)
    return m


@timed("register")
def register_rigid(baseline: Volume | Any, followup: Volume | Any, *,
                   levels_mm: Sequence[float] = RIGID_LEVELS_MM,
                   exclude: Sequence[tuple[Sequence[float], float]] = ()) -> Registration:
    """Rigid (Euler 3D) registration of ``followup`` to ``baseline`` on downsampled volumes.

    Parameters
    ----------
    baseline, followup : Volume or SimpleITK image
    levels_mm : sequence of float
        Working voxel sizes, coarse to fine (each level starts from the previous result).
    exclude : sequence of (LPS point, radius mm)
        Balls of the baseline left out of the image match (the lesions, whose change is not the
        patient's motion); ignored where they would leave less than :data:`MIN_OUTSIDE`.

    Returns
    -------
    Registration
        ``map_point`` takes a baseline LPS point to the follow-up.
    """
    import SimpleITK as sitk

    t0 = time.perf_counter()
    pf, pm = _pyramid(baseline), _pyramid(followup)
    coarse = levels_mm[0]
    fixed0 = pf.at(coarse)
    centre = fixed0.TransformContinuousIndexToPhysicalPoint(
        [(n - 1) / 2.0 for n in fixed0.GetSize()])
    # two starts: the image centres aligned (scan ranges differ between visits), and the body's
    # centres of mass aligned; the coarsest level runs from each and the best match (a start or
    # a result, on every voxel of that level) goes on to the finer levels (on a small scan that a
    # lesion fills, one start can run off when the lesion has grown or shrunk)
    starts = [np.zeros(3)]
    shift = _body_centre(pm.at(coarse)) - _body_centre(fixed0)
    if np.all(np.isfinite(shift)) and np.linalg.norm(shift) > 1.0:
        starts.append(shift)

    balls = [(np.asarray(c, float), float(r)) for c, r in exclude]
    keep = _outside(pf.at(levels_mm[-1]), balls)
    fmask = None if keep is None else _as_mask(pf.at(levels_mm[-1]), keep)

    def run(tx: Any, level: float) -> Any:
        fixed, moving = pf.at(level), pm.at(level)
        r = _method(fixed)
        if fmask is not None:
            r.SetMetricFixedMask(fmask)
        r.SetOptimizerAsRegularStepGradientDescent(learningRate=0.5 * level, minStep=0.01 * level,
                                                   numberOfIterations=150,
                                                   relaxationFactor=0.6)
        r.SetOptimizerScalesFromPhysicalShift()
        r.SetInitialTransform(tx, inPlace=False)
        try:
            return _as_euler(r.Execute(fixed, moving))
        except RuntimeError as exc:
            raise GeometryError(f"registration failed: {str(exc).splitlines()[0]}") from exc

    best: tuple[float, Any] | None = None
    for start in starts:
        tx: Any = sitk.Euler3DTransform()
        tx.SetCenter(centre)
        tx.SetTranslation(tuple(float(v) for v in start))
        for k, cand in enumerate((tx, run(sitk.Euler3DTransform(tx), coarse))):
            if k and _overlap(fixed0, pm.at(coarse), cand) < MIN_OVERLAP:
                continue  # run off the scan: the metric on what little overlaps says nothing
            m = _metric(fixed0, pm.at(coarse), cand, fmask)
            if best is None or m < best[0]:
                best = (m, cand)
    assert best is not None
    tx = best[1]
    metric = best[0]
    for level in levels_mm[1:]:  # a level that ends worse than its start is undone
        new = run(tx, level)
        if _overlap(pf.at(level), pm.at(level), new) < MIN_OVERLAP:
            continue
        m_old, m_new = (_metric(pf.at(level), pm.at(level), t, fmask) for t in (tx, new))
        tx, metric = (new, m_new) if m_new <= m_old else (tx, m_old)
    return Registration(tx, metric, time.perf_counter() - t0, ("rigid",))


def _body_centre(small: Any) -> np.ndarray:
    """Centre of mass (LPS mm) of the voxels denser than fat-and-air (> -400 HU)."""
    import SimpleITK as sitk

    arr = sitk.GetArrayViewFromImage(small)
    idx = np.argwhere(arr > -400.0)
    if idx.size == 0:
        return np.full(3, np.nan)
    c = idx.mean(axis=0)[::-1]
    return np.asarray(small.TransformContinuousIndexToPhysicalPoint(tuple(float(v) for v in c)))


def _as_euler(t: Any) -> Any:
    import SimpleITK as sitk

    try:
        return sitk.Euler3DTransform(t)
    except RuntimeError:
        comp = sitk.CompositeTransform(t)
        return sitk.Euler3DTransform(comp.GetNthTransform(comp.GetNumberOfTransforms() - 1))


# --- per lesion --------------------------------------------------------------------------------

def _crop(img: Any, center: Sequence[float], half_mm: float) -> Any:
    import SimpleITK as sitk

    sp = np.asarray(img.GetSpacing())
    size = np.asarray(img.GetSize())
    c = np.asarray(img.TransformPhysicalPointToContinuousIndex(tuple(center)))
    lo = np.clip(np.floor(c - half_mm / sp), 0, size - 1).astype(int)
    hi = np.clip(np.ceil(c + half_mm / sp), 0, size - 1).astype(int)
    ext = np.maximum(hi - lo + 1, 1)
    return sitk.RegionOfInterest(img, [int(v) for v in ext], [int(v) for v in lo])


def _ncc(fixed: Any, moving: Any, transform: Any, keep: np.ndarray | None = None) -> float:
    """Normalised cross-correlation of ``fixed`` and ``moving`` carried onto it (on the voxels
    ``keep`` holds)."""
    import SimpleITK as sitk

    warped = sitk.Resample(moving, fixed, transform, sitk.sitkLinear, -1000.0, sitk.sitkFloat32)
    a = sitk.GetArrayViewFromImage(fixed).astype(np.float64)
    b = sitk.GetArrayViewFromImage(warped).astype(np.float64)
    a, b = (a.ravel(), b.ravel()) if keep is None else (a[keep], b[keep])
    a, b = a - a.mean(), b - b.mean()
    den = math.sqrt(float(a @ a) * float(b @ b))
    return float(a @ b / den) if den > 0 else 0.0


def _ncc_many(fixed: Any, moving: Any, transforms: Sequence[Any]) -> list[float]:
    """NCC of ``fixed`` with ``moving`` carried by each transform, all on the voxels that every
    one carries inside ``moving``'s field: a placement is not judged by how much of the box it
    leaves outside a follow-up that covers another range."""
    import SimpleITK as sitk

    ones = sitk.Image(moving.GetSize(), sitk.sitkUInt8) + 1
    ones.CopyInformation(moving)
    a = sitk.GetArrayViewFromImage(fixed).astype(np.float64)
    keep = np.ones(a.shape, bool)
    warped = []
    for t in transforms:
        keep &= sitk.GetArrayViewFromImage(
            sitk.Resample(ones, fixed, t, sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)) > 0
        warped.append(sitk.GetArrayFromImage(
            sitk.Resample(moving, fixed, t, sitk.sitkLinear, -1000.0, sitk.sitkFloat32)))
    if keep.sum() < 10:
        return [0.0] * len(warped)
    out = []
    x = a[keep] - a[keep].mean()
    for w in warped:
        y = w[keep].astype(np.float64)
        y = y - y.mean()
        den = math.sqrt(float(x @ x) * float(y @ y))
        out.append(float(x @ y / den) if den > 0 else 0.0)
    return out


#: Working grid (mm) of the lesion-level alignment of a box up to 60 mm from its centre.
_LOCAL_MM = 1.5
#: Working grid (mm) of the local B-spline stage and of the NCC around the lesion.
_DEFORMABLE_MM = 3.0


#: The lesion-level alignment matches a box of the lesion's outline radius plus this (mm), at
#: least :data:`_LESION_BOX_MIN_MM` from its centre.
LESION_BOX_MARGIN_MM = 5.0
_LESION_BOX_MIN_MM = 30.0
#: The growth (diameter factor) a lesion-level alignment may find; outside it the fit has run off.
LESION_SCALE_RANGE = (0.4, 2.5)
#: The growth factors the whole-scan match is tried with when it is compared with the
#: lesion-level one.
GLOBAL_SCALES = (0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.25, 1.4, 1.6)


def _similarity(center: Sequence[float], start: Any, scale: float = 1.0) -> Any:
    """A similarity transform about ``center`` that places it where ``start`` does, turned as
    ``start`` (an Euler 3D) is, scaled by ``scale``."""
    import SimpleITK as sitk

    s = sitk.Similarity3DTransform()
    s.SetCenter(tuple(float(v) for v in center))
    s.SetMatrix(start.GetMatrix())
    s.SetTranslation(tuple(float(v) for v in np.asarray(start.TransformPoint(tuple(center)))
                           - np.asarray(center, float)))
    s.SetScale(float(scale))
    return s


def _rigid_part(sim: Any, center: Sequence[float]) -> Any:
    """The Euler 3D transform that turns as ``sim`` does and takes ``center`` where it does: the
    lesion's alignment without its growth."""
    import SimpleITK as sitk

    scale = float(sim.GetScale())
    e = sitk.Euler3DTransform()
    e.SetCenter(tuple(float(v) for v in center))
    e.SetMatrix(tuple(float(v) for v in np.asarray(sim.GetMatrix()) / scale))
    e.SetTranslation(tuple(float(v) for v in np.asarray(sim.TransformPoint(tuple(center)))
                           - np.asarray(center, float)))
    return e


def _with_growth(tx: Any, center: Sequence[float], scale: float) -> Any:
    """``tx`` after a growth by ``scale`` about ``center`` (``tx`` itself at 1)."""
    import SimpleITK as sitk

    if scale == 1.0:
        return tx
    g = sitk.Similarity3DTransform()
    g.SetCenter(tuple(float(v) for v in center))
    g.SetScale(float(scale))
    return sitk.CompositeTransform([tx, g])  # g first, then tx


@timed("register")
def _refine(pf: _Pyramid, pm: _Pyramid, glob: Any, center: Sequence[float], half_mm: float,
            deformable_below: float, deformable: str,
            balls: Sequence[tuple[np.ndarray, float]] = (), radius_mm: float | None = None,
            ) -> tuple[Any, float, list[str], dict[str, Any]]:
    """The lesion's transform, its local NCC, notes, and what was chosen (``chosen``,
    ``disagreement_mm``, ``ncc_global``, ``ncc_local``, ``scale``, ``doubt``).

    The lesion-level alignment matches the lesion itself and a rim of
    :data:`LESION_BOX_MARGIN_MM` round its outline (``radius_mm`` from ``center``) with a
    similarity transform (a turn, a shift and a growth factor about ``center``), started from the
    whole-scan match: a lesion grows or shrinks about its middle, so a fit that may scale finds
    its middle where a rigid one, or one that leaves the lesion out, is pulled by the change (on a
    scan cropped to a limb the lesion and the tissue its growth pushes are most of the image).
    The two are compared by NCC on that box, the whole-scan match scaled by the same factor. The
    transform returned is rigid (the growth left out), and equals the kept one at ``center``.
    The B-spline stage matches the box ``half_mm`` outside the ``balls`` (the lesions)."""
    import SimpleITK as sitk

    notes: list[str] = []
    carried = glob.TransformPoint(tuple(center))
    radius = 0.5 * half_mm / 1.5 if radius_mm is None else float(radius_mm)
    half_l = max(_LESION_BOX_MIN_MM, radius + LESION_BOX_MARGIN_MM)
    level = _LOCAL_MM if half_l <= 2 * _LESION_BOX_MIN_MM else _DEFORMABLE_MM
    fixed = _crop(pf.at(level), center, half_l)
    moving = pm.at(level)

    def fit(start: Any, at: float) -> Any:
        f = _crop(pf.at(at), center, half_l)
        r = _method(f, seed=2)
        # the metric's gradient taken where it samples, not filtered over the whole follow-up
        # first (a full-size series at 1.5 mm: about 4 s a fit, 40 of 42 s of a follow-up)
        r.SetMetricUseMovingImageGradientFilter(False)
        r.SetOptimizerAsRegularStepGradientDescent(learningRate=at, minStep=0.005 * at,
                                                   numberOfIterations=150, relaxationFactor=0.6)
        r.SetOptimizerScalesFromPhysicalShift()
        r.SetInitialTransform(start, inPlace=False)
        out = r.Execute(f, pm.at(at))
        if out.GetName() == "CompositeTransform":
            out = sitk.CompositeTransform(out).GetNthTransform(0)
        return sitk.Similarity3DTransform(out)

    info: dict[str, Any] = {"chosen": "global", "ncc_global": None, "ncc_local": None,
                            "disagreement_mm": 0.0, "scale": 1.0, "doubt": False}
    # two runs from the whole-scan match: on the working grid, and coarse first (a wide capture:
    # the whole-scan match can be tens of mm off along a limb), on a grid that leaves the box
    # at least 20 voxels a side
    coarse = next((c for c in (RIGID_LEVELS_MM[0], _DEFORMABLE_MM) if half_l / c >= 10.0), level)
    fits = []
    for path in ((level,), (coarse, level)) if coarse > level else ((level,),):
        try:
            sim = _similarity(center, glob)
            for at in path:
                sim = fit(sim, at)
        except RuntimeError:
            continue
        if LESION_SCALE_RANGE[0] <= float(sim.GetScale()) <= LESION_SCALE_RANGE[1]:
            fits.append(sim)
    # the whole-scan match with the growth that suits it best: the two are compared on where
    # they put the lesion, not on whether it grew
    grid = [_similarity(center, glob, g) for g in GLOBAL_SCALES]
    coarse_box = _crop(pf.at(_DEFORMABLE_MM), center, half_l)  # the factor chosen on 3 mm
    g_ncc = [_ncc(coarse_box, pm.at(_DEFORMABLE_MM), t) for t in grid]
    glob_s = grid[int(np.argmax(g_ncc))]
    if not fits:
        ncc = ncc_global = _ncc(fixed, moving, glob_s)
        info["ncc_global"] = round(ncc_global, 3)
        notes.append("lesion-level alignment failed; the whole-scan one used")
    refined: Any = glob
    if fits:
        *nccs, ncc_global = _ncc_many(fixed, moving, [*fits, glob_s])
        k = int(np.argmax(nccs))
        sim, ncc = fits[k], nccs[k]
        scale = float(sim.GetScale())
        moved = float(np.linalg.norm(np.asarray(sim.TransformPoint(tuple(center)))
                                     - np.asarray(carried)))
        info.update(ncc_global=round(ncc_global, 3), ncc_local=round(ncc, 3),
                    disagreement_mm=round(moved, 2), scale=round(scale, 3))
        if moved > DISAGREE_MM:
            better = "lesion-level" if ncc > ncc_global else "whole-scan"
            notes.append(f"whole-scan and lesion-level alignments disagree by {moved:.1f} mm; "
                         f"the {better} one kept on image similarity around the lesion (NCC "
                         f"{ncc_global:.2f} whole-scan, {ncc:.2f} lesion-level)")
            if abs(ncc - ncc_global) < DOUBT_NCC_MARGIN:
                info["doubt"] = True
                notes.append("the image does not tell the two alignments apart: uncertain")
        if moved > DISAGREE_MM and ncc < ncc_global:
            ncc = ncc_global
        else:  # agreeing, the fit of the lesion itself is the closer one
            refined = _rigid_part(sim, center)
            info["chosen"] = "local"
            if moved <= DISAGREE_MM:
                notes.append(f"lesion-level alignment (NCC {ncc_global:.2f} → {ncc:.2f}, "
                             f"growth {scale:.2f})")
    fixed_c = _crop(pf.at(_DEFORMABLE_MM), center, half_mm)  # the B-spline's box and grid
    keep = _outside(fixed_c, balls)
    ncc_out = _ncc(fixed_c, pm.at(_LOCAL_MM), refined, keep)
    # the lesion-level fit matched the lesion itself: a coarse B-spline of the tissue round it
    # (fitted outside the lesions) does not move the lesion better, only where that fit was not kept
    if deformable == "always" or (deformable == "auto" and ncc_out < deformable_below
                                  and not info["chosen"].startswith("local")):
        try:
            moving_c = _crop(pm.at(_DEFORMABLE_MM), carried, half_mm * 1.6)
            mesh = [3] * 3
            bs = sitk.BSplineTransformInitializer(fixed_c, mesh)
            comp = sitk.CompositeTransform([refined, bs])
            r2 = _method(fixed_c, seed=3)
            if keep is not None:
                r2.SetMetricFixedMask(_as_mask(fixed_c, keep))
            r2.SetOptimizerAsLBFGSB(gradientConvergenceTolerance=1e-5, numberOfIterations=40)
            r2.SetInitialTransform(comp, inPlace=True)
            # the 3-node mesh spans the whole box (control points tens of mm apart): a 3 mm
            # working grid resolves it
            r2.Execute(fixed_c, moving_c)
            ncc_def = _ncc(fixed_c, pm.at(_LOCAL_MM), comp, keep)
            moved_def = float(np.linalg.norm(np.asarray(comp.TransformPoint(tuple(center)))
                                             - np.asarray(refined.TransformPoint(tuple(center)))))
            if ncc_def > ncc_out and moved_def <= DISAGREE_MM:
                notes.append(f"local deformable (B-spline) registration (NCC outside the "
                             f"lesions {ncc_out:.2f} → {ncc_def:.2f})")
                refined = comp
                info["chosen"] += "+deformable"
        except RuntimeError:
            notes.append("deformable registration failed; rigid kept")
    return refined, ncc, notes, info


def _mask_centroid_lps(volume: Volume, mask: np.ndarray, offset: Sequence[int]) -> np.ndarray:
    idx = np.argwhere(mask)
    if idx.size == 0:
        raise InputError("empty lesion mask")
    return volume.index_to_lps(idx.mean(axis=0) + np.asarray(offset, float))


def _holds(volume: Volume, lesion_mask: LesionMask, lps: Sequence[float] | np.ndarray) -> bool:
    """Whether the voxel at ``lps`` lies in ``lesion_mask`` (a :class:`LesionMask` on ``volume``)."""
    idx = np.rint(volume.lps_to_index(np.asarray(lps, float))).astype(int)
    idx -= np.asarray(lesion_mask.offset, int)
    m = lesion_mask.mask
    return bool(np.all((idx >= 0) & (idx < np.asarray(m.shape))) and m[tuple(idx)])


def _hu_at(volume: Volume, lps: Sequence[float], radius_vox: int = 1) -> float:
    idx = np.rint(volume.lps_to_index(np.asarray(lps, float))).astype(int)
    lo = np.clip(idx - radius_vox, 0, np.asarray(volume.shape) - 1)
    hi = np.clip(idx + radius_vox + 1, 1, np.asarray(volume.shape))
    return float(np.median(volume.array[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]))


def _fallback_seeds(volume: Volume, center: np.ndarray, radius_mm: float, target_hu: float,
                    n: int = 4) -> list[np.ndarray]:
    """Seeds within ``radius_mm`` of ``center`` whose HU is closest to ``target_hu``."""
    step = max(1.0, radius_mm / 3)
    g = np.arange(-radius_mm, radius_mm + 1e-6, step)
    pts = np.array([(x, y, z) for x in g for y in g for z in g if x * x + y * y + z * z
                    <= radius_mm ** 2 + 1e-6]) + center
    idx = np.rint(volume.lps_to_index(pts)).astype(int)
    inside = np.all((idx >= 0) & (idx < np.asarray(volume.shape)), axis=1)
    pts, idx = pts[inside], idx[inside]
    if len(pts) == 0:
        return []
    hu = volume.array[idx[:, 0], idx[:, 1], idx[:, 2]].astype(float)
    order = np.argsort(np.abs(hu - target_hu), kind="stable")
    return [pts[i] for i in order[:n]]


def _spec_text(name: str, opts: dict[str, Any]) -> str:
    """``name:key=value,...`` that :func:`~recist_tool.segment.parse_segmenter_spec` reads back."""
    import json
    import re

    def lit(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        text = str(v)
        if re.fullmatch(r"[A-Za-z][A-Za-z0-9_\-]*", text) and text not in ("true", "false",
                                                                          "inf", "nan"):
            return text  # read back as text (not a TOML literal)
        return json.dumps(text)  # a TOML basic string

    if not opts:
        return name
    return name + ":" + ",".join(f"{k}={lit(v)}" for k, v in sorted(opts.items()))


def kept_segmenter_spec(mask: LesionMask, spec: str) -> str:
    """The segmenter spec that measures a lesion at follow-ups as ``mask`` was measured at baseline.

    Parameters
    ----------
    mask : LesionMask
        The baseline mask (its ``segmenter``, ``info["routed_by"]`` and ``info["edge"]``).
    spec : str
        The spec that made it (``unet``, ``classic:band_fraction=0.5``...).

    Returns
    -------
    str
        ``spec`` when the mask is that segmenter's own answer, with a ``unet`` edge rule chosen by
        ``auto`` fixed to the rule it chose (``edge=half-contrast``) and its tissue routing
        switched off (``lung_only=false``: the network answered at baseline, so it answers again);
        the segmenter the baseline was handed to (``classic``, ``contour``) when it was routed.
    """
    from recist_tool.segment import parse_segmenter_spec

    name, opts = parse_segmenter_spec(spec)
    if mask.segmenter != name:
        return str(mask.segmenter)  # routed at baseline: that segmenter, as the router built it
    if name == "unet" and "routed_by" not in (mask.info or {}):
        rule = ((mask.info or {}).get("edge") or {}).get("rule")
        if rule:
            opts["edge"] = rule
        if "fallback" not in str(mask.version):
            opts["lung_only"] = False
    return _spec_text(name, opts)


def _score(excess: float) -> float:
    """A check's score from its excess as a share of its limit (1 at the limit → 0.5)."""
    return 1.0 / (1.0 + max(0.0, excess) ** CONFIDENCE_POWER)


#: The figures the calibrated confidence reads (:func:`confidence_features`), each 0 for a
#: follow-up mask that is the carried baseline outline: ``shift`` log(1 + ``shift_mm``),
#: ``centre`` log(1 + ``centre_mm``), ``containment`` 1 − containment, ``shape`` 1 −
#: ``shape_dice``, ``growth`` |log(``size_ratio`` / the lesion-level alignment's growth)| (a
#: mask that grew otherwise than the image around the lesion), ``reader_line`` |``reader_line``
#: − 1|, ``prompt`` log(1 + ``prompt_mm``) (:data:`PROMPT_MISSING_MM` when the click outlined
#: nothing), ``hu`` |``hu_diff``| / 100.
CONFIDENCE_FEATURES = ("shift", "centre", "containment", "shape", "growth", "reader_line",
                       "prompt", "hu")
#: ``prompt_mm`` taken for a follow-up whose click outlined nothing.
PROMPT_MISSING_MM = 20.0
#: The calibrated confidence: a logistic model of :data:`CONFIDENCE_FEATURES` (standardised by
#: ``mean`` and ``scale``) giving the probability that the follow-up mask is the right lesion
#: (its centroid within 5 mm of the true lesion's). Fitted with ``python -m
#: recist_tool.track_eval fit`` (L2-penalised, ``ridge``) on ``recist evaluate-tracking`` runs of
#: the trainable sets only (pyradiomics lung1 and the sarcomas; never 3D-IRCADb); its fit and
#: reliability are in docs/tracking.md.
CONFIDENCE_MODEL: dict[str, Any] = {
    "features": CONFIDENCE_FEATURES,
    "mean": (1.779632, 2.539008, 0.088371, 0.147354, 0.124677, 0.074218, 2.281255, 0.08516),
    "scale": (0.900108, 0.822667, 0.151768, 0.112147, 0.28783, 0.059792, 1.128187, 0.190467),
    "coef": (-0.590261, -1.954413, -0.215373, 0.0, -0.489869, 0.0, 0.0, 0.0),
    "intercept": -1.892208, "ridge": 1.0,
    "fitted_on": "pyradiomics_lung1, sts_extremity (evaluate-tracking, seeds 0-3, 2026-12-05, "
                 "at 94a0a1b)",
    "n": 294, "right": 75,
}
#: The least calibrated confidence of a ``found`` lesion (besides every check within its limit).
FOUND_MIN_CONFIDENCE = 0.5
#: The most an ``uncertain`` mask is given: one that fails a check (or whose alignment is in
#: doubt) is shown to the reader below :data:`FOUND_MIN_CONFIDENCE`, never as a likely match.
#: Measured (docs/tracking.md, 2026-12-05): of the masks failing a check that the model scored
#: at 0.5 or more, about half were the right lesion on lung1 and the sarcomas, none on 3D-IRCADb.
UNCERTAIN_MAX_CONFIDENCE = 0.49


def confidence_features(checks: dict[str, Any], registration: dict[str, Any] | None = None
                        ) -> list[float]:
    """:data:`CONFIDENCE_FEATURES` of a follow-up mask from its resemblance figures
    (:attr:`TrackedLesion.checks`) and its lesion-level alignment
    (:attr:`TrackedLesion.registration`)."""
    reg = registration or {}
    scale = float(reg.get("scale") or 1.0)
    ratio = max(float(checks.get("size_ratio") or 0.0), 1e-3)
    prompt = checks.get("prompt_mm", 0.0)
    return [math.log1p(float(checks.get("shift_mm", 0.0))),
            math.log1p(float(checks.get("centre_mm", 0.0))),
            1.0 - float(checks.get("containment", 1.0)),
            1.0 - float(checks.get("shape_dice", 1.0)),
            abs(math.log(ratio / scale)),
            abs(float(checks.get("reader_line", 1.0)) - 1.0),
            math.log1p(PROMPT_MISSING_MM if prompt is None else float(prompt)),
            abs(float(checks.get("hu_diff", 0.0))) / 100.0]


def calibrated_confidence(checks: dict[str, Any], registration: dict[str, Any] | None = None,
                          model: dict[str, Any] | None = None) -> float:
    """The probability that a follow-up mask is the right lesion (:data:`CONFIDENCE_MODEL`), at
    most :data:`UNCERTAIN_MAX_CONFIDENCE` when ``checks["failed"]`` names a check or
    ``registration["doubt"]`` is true."""
    m = model or CONFIDENCE_MODEL
    z = (np.asarray(confidence_features(checks, registration)) - np.asarray(m["mean"], float)) \
        / np.asarray(m["scale"], float)
    t = float(m["intercept"]) + float(np.asarray(m["coef"], float) @ z)
    p = 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, t))))
    if checks.get("failed") or (registration or {}).get("doubt"):
        return min(p, UNCERTAIN_MAX_CONFIDENCE)
    return p


def resemblance(baseline: Volume, base_mask: np.ndarray, base_offset: Sequence[int],
                followup: Volume, fu_mask: np.ndarray, fu_offset: Sequence[int],
                transform: Any) -> dict[str, Any]:
    """How much a follow-up mask resembles the baseline lesion carried by the registration.

    Parameters
    ----------
    baseline, followup : Volume
    base_mask, fu_mask : numpy.ndarray
        Boolean crops placed at ``base_offset`` / ``fu_offset`` in their volumes.
    transform : SimpleITK transform
        Maps a baseline LPS point to the follow-up.

    Returns
    -------
    dict
        ``shift_mm``, ``containment``, ``shape_dice``, ``size_ratio``, ``hu_diff`` (see
        :data:`FOUND_LIMITS`), ``failed`` (the names of the checks outside their limits) and
        ``margin`` (the lowest check score, 0.5 at a limit).
    """
    import SimpleITK as sitk

    bvox = float(np.prod(baseline.spacing))
    fvox = float(np.prod(followup.spacing))
    nb, nf = int(base_mask.sum()), int(fu_mask.sum())
    cb = _mask_centroid_lps(baseline, base_mask, base_offset)
    cf = _mask_centroid_lps(followup, fu_mask, fu_offset)
    shift = float(np.linalg.norm(cf - np.asarray(transform.TransformPoint(tuple(map(float, cb))))))
    ratio = ((nf * fvox) / (nb * bvox)) ** (1.0 / 3.0)
    # the baseline neighbourhood large enough to hold the follow-up mask when it is near
    size = 2.0 * (3.0 * nb * bvox / (4.0 * math.pi)) ** (1.0 / 3.0)
    margin = np.ceil(max(10.0, 0.6 * max(1.0, ratio) * size) / np.asarray(baseline.spacing))
    lo = (np.asarray(base_offset) - margin).astype(int)
    hi = (np.asarray(base_offset) + base_mask.shape + margin).astype(int)
    ref_vol = baseline.crop(lo, hi)
    lo = np.clip(lo, 0, None)
    b_arr = np.zeros(ref_vol.shape, np.uint8)
    o = np.asarray(base_offset) - lo
    b_arr[o[0]:o[0] + base_mask.shape[0], o[1]:o[1] + base_mask.shape[1],
          o[2]:o[2] + base_mask.shape[2]] = base_mask
    ref = to_sitk(ref_vol.with_array(b_arr), np.uint8)
    fu_vol = followup.crop(fu_offset, np.asarray(fu_offset) + fu_mask.shape)
    fu_img = to_sitk(fu_vol.with_array(fu_mask.astype(np.uint8)), np.uint8)
    warped = sitk.GetArrayFromImage(
        sitk.Resample(fu_img, ref, transform, sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)) > 0
    b = b_arr > 0
    inter = float(np.count_nonzero(warped & b)) * bvox
    containment = inter / min(nf * fvox, nb * bvox)
    shape_dice = 0.0
    if warped.any():
        # the baseline mask scaled to the follow-up's volume, centred on the carried mask
        cw = ref_vol.index_to_lps(np.argwhere(warped).mean(axis=0))
        aff = sitk.AffineTransform(3)
        aff.SetMatrix(tuple((np.eye(3) / ratio).ravel()))
        aff.SetCenter(tuple(float(v) for v in cw))
        aff.SetTranslation(tuple(float(v) for v in cb - cw))
        scaled = sitk.GetArrayFromImage(
            sitk.Resample(ref, ref, aff, sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)) > 0
        tot = int(scaled.sum()) + int(warped.sum())
        shape_dice = 2.0 * float(np.count_nonzero(scaled & warped)) / tot if tot else 0.0
    # the upper quartile: the lesion's body, less the partial volume of its rim
    hb = float(np.percentile(baseline.array[tuple(np.asarray(base_offset)[:, None]
                                                  + np.nonzero(base_mask))], HU_PERCENTILE))
    hf = float(np.percentile(followup.array[tuple(np.asarray(fu_offset)[:, None]
                                                  + np.nonzero(fu_mask))], HU_PERCENTILE))
    lim = FOUND_LIMITS
    lo_r, hi_r = lim["size_ratio"]
    excess = {
        "shift_mm": shift / lim["shift_mm"],
        "containment": (1.0 - containment) / (1.0 - lim["containment"]),
        "shape_dice": (1.0 - shape_dice) / (1.0 - lim["shape_dice"]),
        "size_ratio": max(math.log(ratio) / math.log(hi_r), math.log(ratio) / math.log(lo_r))
        if ratio > 0 else math.inf,
        "hu_diff": abs(hf - hb) / lim["hu_diff"],
    }
    return {"shift_mm": round(shift, 2), "containment": round(containment, 3),
            "shape_dice": round(shape_dice, 3), "size_ratio": round(ratio, 3),
            "hu_diff": round(hf - hb, 1),
            "failed": [k for k, x in excess.items() if x > 1.0],
            "margin": round(min(_score(x) for x in excess.values()), 3)}


def _long_axis(volume: Volume, mask: LesionMask, node: bool) -> float:
    """A lesion mask's RECIST axis (mm): the short axis of a node, else the long axis."""
    from recist_tool.measure import measure_mask

    m = measure_mask(volume, mask.mask, node=node, offset=mask.offset)
    return float(cast(float, m.short_axis_mm if node else m.long_axis_mm))  # a mask has both axes


def _line_zyx(volume: Volume, ends_lps: np.ndarray) -> Segment3:
    """A line prompt (voxel indices, both ends on their mean slice, inside the volume) from two
    LPS points."""
    idx = volume.lps_to_index(np.asarray(ends_lps, float))
    idx[:, 0] = idx[:, 0].mean()
    idx = np.clip(idx, 0.0, np.asarray(volume.shape, float) - 1.0)
    return cast("Point3", tuple(float(v) for v in idx[0])), cast("Point3", tuple(float(v) for v in idx[1]))


def _equivalent_diameter(volume: Volume, mask: np.ndarray) -> float:
    return 2.0 * (3.0 * float(mask.sum()) * float(np.prod(volume.spacing))
                  / (4.0 * math.pi)) ** (1.0 / 3.0)


def track_lesions(
    baseline: Volume, followup: Volume, lesions: Sequence[BaselineLesion], *,
    segmenter: str | Any = "classic", registration: Registration | None = None,
    deformable: Literal["auto", "always", "never"] = "auto", deformable_below: float = 0.5,
    make_segmenter: Callable[[str], Any] | None = None,
) -> TrackResult:
    """Find each baseline lesion in a follow-up series.

    Parameters
    ----------
    baseline, followup : Volume
        The baseline CT and the follow-up CT (any grids; LPS geometry is used throughout).
    lesions : sequence of BaselineLesion
        Centres and/or masks on the baseline, each optionally with the segmenter it keeps.
    segmenter : str or segmenter
        Spec in the :mod:`recist_tool.segment` registry (default ``classic``; options as
        ``name:key=value``) or an instance: it segments a lesion that names no segmenter of its
        own, first at baseline (when no mask is given) to learn its route
        (:func:`kept_segmenter_spec`), then at the follow-up with that route.
    registration : Registration, optional
        A global registration to reuse (e.g. from :func:`register_rigid`).
    deformable : {"auto", "always", "never"}
        Local B-spline stage: when the local match stays poor (``auto``), always, or never.
    deformable_below : float
        ``auto`` threshold on the local normalised cross-correlation.
    make_segmenter : callable, optional
        Spec → segmenter (e.g. a cache of loaded models); default: a new one per call.

    Returns
    -------
    TrackResult
        ``info["segmenters"]``: the spec each lesion was measured with.
    """
    from recist_tool.measure import measure_mask
    from recist_tool.segment import NoLesionError, Prompt, get_segmenter, parse_segmenter_spec
    from recist_tool.segment.base import with_scan_edges

    t0 = time.perf_counter()
    if not lesions:
        raise InputError("no baseline lesions to track")
    default_spec = segmenter if isinstance(segmenter, str) else None
    cache: dict[str, Any] = {}
    if default_spec is None:
        cache[""] = segmenter

    def seg_for(spec: str | None) -> Any:
        key = spec or default_spec or ""
        if key not in cache:
            if make_segmenter is not None:
                cache[key] = make_segmenter(key)
            else:
                name, opts = parse_segmenter_spec(key)
                cache[key] = get_segmenter(name, **opts)
        return cache[key]

    # the baseline first: each lesion's outline, route and size, and where the lesions lie, which
    # the alignments leave out of their image match (a lesion's own change must not move them)
    prepared: list[tuple[Any, ...]] = []
    used: dict[str, str] = {}
    for les in lesions:
        notes: list[str] = []
        spec = les.segmenter
        line = None if les.line_lps is None else np.asarray(les.line_lps, float)
        if line is not None:
            centre = line.mean(axis=0)
        elif les.mask is not None:
            centre = _mask_centroid_lps(baseline, les.mask, les.mask_offset)
        elif les.center_lps is not None:
            centre = np.asarray(les.center_lps, float)
        else:
            raise InputError(f"{les.lesion_id}: give a centre, a line or a mask")
        # the baseline lesion as its segmenter outlines it from a click at its centre, the prompt
        # the follow-up gets first: its route, and the size the follow-up click is compared with
        base_mask, base_off = les.mask, les.mask_offset
        click_la: float | None = None
        click_c: np.ndarray | None = None
        click_r = 0.0
        try:
            bm = seg_for(spec).segment(baseline, Prompt(point_lps=cast("Point3", tuple(map(float, centre)))),
                                       node=les.nodal)
            if spec is None and default_spec is not None:
                spec = kept_segmenter_spec(bm, default_spec)
            if bm.mask.any():
                click_la = _long_axis(baseline, bm, les.nodal)
                click_c = _mask_centroid_lps(baseline, bm.mask, bm.offset)
                click_r = float(np.max(np.linalg.norm(baseline.index_to_lps(
                    np.argwhere(bm.mask) + np.asarray(bm.offset, float)) - click_c, axis=1)))
                if line is None:
                    base_mask, base_off = bm.mask, bm.offset
        except (NoLesionError, SegmentationError) as exc:
            if base_mask is None and line is None:
                notes.append(f"the baseline lesion cannot be outlined again ({exc}); its "
                             "resemblance is not checked")
        if line is not None and base_mask is None:
            try:  # the baseline as read from its line, with the lesion's segmenter
                lm = seg_for(spec).segment(baseline, Prompt(line_zyx=_line_zyx(baseline, line)),
                                           node=les.nodal)
                base_mask, base_off = lm.mask, lm.offset
            except (NoLesionError, SegmentationError) as exc:
                notes.append(f"the baseline lesion cannot be outlined from its line ({exc}); its "
                             "resemblance is not checked")
        if base_mask is not None and not np.any(base_mask):
            base_mask = None
        base_la = 0.0
        if base_mask is not None and line is not None:
            base_la = float(measure_mask(baseline, base_mask, offset=base_off).long_axis_mm)
        size = les.size_mm
        if size is None and base_mask is not None:
            size = _equivalent_diameter(baseline, base_mask)
        size = float(size) if size else 20.0
        seg = seg_for(spec)
        spec_used = spec or default_spec or str(getattr(seg, "name", segmenter))
        used[les.lesion_id] = spec_used
        if les.segmenter is not None:
            notes.append(f"measured with {spec_used}, the segmenter kept for this lesion")
        elif spec is not None and spec != default_spec:
            notes.append(f"measured with {spec_used}, as at baseline")
        if base_mask is not None:
            pts = baseline.index_to_lps(np.argwhere(base_mask) + np.asarray(base_off, float))
            middle = pts.mean(axis=0)
            radius = float(np.max(np.linalg.norm(pts - middle, axis=1)))
        else:
            middle, radius = centre, 0.5 * size
        # the same segmenter from the click and from the line: where the two outlines part, the
        # lesion's extent (and so its middle) depends on the prompt
        prompt_mm = (None if click_c is None or base_mask is None
                     else float(np.linalg.norm(click_c - middle)))
        click = None if click_la is None or click_c is None else (click_la, click_c, click_r)
        prepared.append((les, notes, line, centre, base_mask, base_off, click, base_la, size,
                         seg, spec_used, prompt_mm, (middle, radius + LESION_MARGIN_MM)))
    # the grids tracking works on, made once; the full-resolution float copies (376 MB each for a
    # 512² x 376-slice series) are let go
    levels = (*RIGID_LEVELS_MM, _LOCAL_MM, _DEFORMABLE_MM)
    pf, pm = (_pyramid(v, levels) for v in (baseline, followup))
    balls = [p[-1] for p in prepared]
    reg = registration or register_rigid(pf, pm, exclude=balls)
    out: list[TrackedLesion] = []
    for (les, notes, line, centre, base_mask, base_off, click, base_la, size, seg, spec_used,
         prompt_mm, (middle, ball_r)) in prepared:
        half = max(30.0, 1.5 * size)
        # the box around the lesion's middle (its outline's centroid): the anatomy its growth or
        # shrinkage pushes lies evenly round it, and does not pull the match to one side
        tx, ncc, n2, reg_info = _refine(pf, pm, reg.transform, middle, half,
                                        deformable_below, deformable, balls,
                                        ball_r - LESION_MARGIN_MM)
        notes += n2
        # the lesion's map: the alignment with the growth the lesion-level fit read, about the
        # outline's centroid (a point of the lesion lies there grown or shrunk with it); lines
        # and masks are carried by the alignment alone (the line is scaled by the masks' change)
        growth = float(reg_info["scale"]) if reg_info["chosen"].startswith("local") else 1.0
        lesion_map = _with_growth(tx, middle, growth)
        p = lesion_map.TransformPoint(tuple(float(v) for v in centre))
        prop = np.asarray(p, float)
        target_hu = _hu_at(baseline, centre)
        seeds = [prop] + _fallback_seeds(followup, prop, min(6.0, max(2.0, size / 4)), target_hu)
        mask = None
        rejected = ""
        reader_c = prop  # where the reader's centre lies at the follow-up
        if line is not None and click is None:
            # read from a line whose middle no click outlines at baseline (a cavity there, or
            # tissue the segmenter refuses from a click): no click outline to scale the line
            # by, so the baseline line is carried by the lesion's map, with the growth its fit
            # read (a lesion whose baseline click outlines it, and whose follow-up clicks find
            # nothing, is proposed absent?: a line would outline whatever lies there); the
            # clicks below are tried only when the line outlines nothing
            carried = np.array([lesion_map.TransformPoint(tuple(map(float, e))) for e in line])
            try:
                lm = seg.segment(followup, Prompt(line_zyx=_line_zyx(followup, carried)),
                                 node=les.nodal)
                if lm.mask.any():
                    mask, reader_c = lm, carried.mean(axis=0)
                    notes.append("outlined from the baseline line carried by the alignment, "
                                 f"scaled by the growth it read ({growth:.2f})")
            except (NoLesionError, SegmentationError):
                notes.append("the carried baseline line finds no lesion")
        max_size = max(3.0 * size, size + 30.0)
        too_big: list[Any] = []  # masks refused for their size: a seed inside one is not tried
        for k, s in enumerate(seeds if mask is None else ()):
            if any(_holds(followup, m, s) for m in too_big):
                continue
            try:
                cand = seg.segment(followup, Prompt(point_lps=cast("Point3", tuple(float(v) for v in s))),
                                   node=les.nodal)
            except (NoLesionError, SegmentationError):
                continue
            extent = float(np.max((np.ptp(np.argwhere(cand.mask), axis=0) + 1)
                                  * np.asarray(followup.spacing)))
            if extent > max_size:
                rejected = (f"what can be segmented there spans {extent:.0f} mm, not a lesion of "
                            f"{size:.0f} mm at baseline")
                too_big.append(cand)
                continue
            mask = cand
            if k:
                notes.append(f"propagated centre missed the lesion; seed moved "
                             f"{float(np.linalg.norm(s - prop)):.1f} mm")
            break
        if mask is not None and line is not None and click is not None and click[0]:
            # outline the follow-up as the baseline was read, from a line: the baseline's line
            # carried by the registration, scaled by the change between the clicks' outlines
            # (the baseline's at its centre, the follow-up's at the propagated centre) about the
            # carried centroid of the baseline outline (a lesion grows or shrinks about its
            # middle, which the midpoint of a line across an irregular lesion need not be), and
            # moved where the follow-up click's outline lies off where that scaling puts it: a
            # lesion that shrinks towards one side moves its middle (the full-size trial's lung
            # primary, towards the mediastinum: a line scaled in place lay 12-13 mm off it and
            # outlined 28.6 mm for 54.7 mm)
            click_la, click_c, click_r = click
            change = float(np.clip(_long_axis(followup, mask, les.nodal) / click_la,
                                   *LINE_SCALE_RANGE))
            ends = np.array([tx.TransformPoint(tuple(map(float, e))) for e in line])
            mid = (ends.mean(axis=0) if base_mask is None else np.asarray(tx.TransformPoint(
                tuple(map(float, _mask_centroid_lps(baseline, base_mask, base_off))))))
            expected = mid + change * (np.asarray(tx.TransformPoint(tuple(map(float, click_c))))
                                       - mid)
            moved = _mask_centroid_lps(followup, mask.mask, mask.offset) - expected
            off = float(np.linalg.norm(moved))
            # followed when beyond the outlines' own variation (the prompt_mm limit), when the click's
            # outline is the lesion as read at baseline (it and the line's part by no more than
            # that), and by at most the change of its radius plus the alignments' slack (further,
            # the click outlined something else)
            slack = FOUND_LIMITS["prompt_mm"]
            allowed = abs(1.0 - change) * click_r + LINE_FOLLOW_SLACK_MM
            if prompt_mm is None or prompt_mm > slack or off <= slack:
                moved = np.zeros(3)
            elif off > allowed:
                notes.append(f"the follow-up click's outline lies {off:.1f} mm from where the "
                             f"lesion's change puts it (more than {allowed:.1f} mm): the line is "
                             "scaled in place")
                moved = np.zeros(3)
            scaled = mid + moved + (ends - mid) * change
            reader_c = scaled.mean(axis=0)  # the reader's centre moves with the lesion
            try:
                lm = seg.segment(followup, Prompt(line_zyx=_line_zyx(followup, scaled)),
                                 node=les.nodal)
                if lm.mask.any():
                    fu_prompt = float(np.linalg.norm(
                        _mask_centroid_lps(followup, lm.mask, lm.offset)
                        - _mask_centroid_lps(followup, mask.mask, mask.offset)))
                    prompt_mm = None if prompt_mm is None else max(prompt_mm, fu_prompt)
                    mask = lm
                    notes.append(f"outlined from the baseline line carried to the follow-up, "
                                 f"moved {np.linalg.norm(moved):.1f} mm and scaled by "
                                 f"{change:.2f} as the clicks' outlines changed")
            except (NoLesionError, SegmentationError):
                notes.append("the carried baseline line finds no lesion; the click's mask kept")
        prop_t = (float(prop[0]), float(prop[1]), float(prop[2]))
        if mask is None and rejected:
            notes.append(rejected)
        if mask is None:
            out.append(TrackedLesion(les.lesion_id, "absent?", prop_t, prop_t, 0.0, None, ncc, None,
                                     None, (*notes, "no lesion could be segmented at the "
                                            "propagated position: confirm absent or place it"),
                                     spec_used, {}, reg_info, lesion_map))
            continue
        mask = with_scan_edges(mask)  # a follow-up cut by the scan says so, as a baseline does
        c = _mask_centroid_lps(followup, mask.mask, mask.offset)
        d = float(np.linalg.norm(c - reader_c))
        status: Status = "found"
        checks: dict[str, Any] = {}
        if base_mask is not None:
            checks = resemblance(baseline, base_mask, base_off, followup, mask.mask, mask.offset,
                                 tx)
            # and the reader's centre: the outline must sit where the reader's line (or the given
            # centre) is carried, not only where the baseline outline is
            checks["centre_mm"] = round(d, 2)
            x = d / FOUND_LIMITS["centre_mm"]
            if x > 1.0:
                checks["failed"] = [*checks["failed"], "centre_mm"]
            checks["margin"] = round(min(float(checks["margin"]), _score(x)), 3)
            if line is not None:
                # the baseline outline must measure what the reader measured: one that stops
                # short of the reader's line or runs past it is another extent of the lesion,
                # and the follow-up (outlined the same way) is not comparable with the reading
                la = float(np.linalg.norm(line[1] - line[0]))
                checks["reader_line"] = round(base_la / la, 3) if la > 0 else 0.0
                x = abs(checks["reader_line"] - 1.0) / FOUND_LIMITS["reader_line"]
                # and the outlines from the click and from the line must be one lesion, at
                # baseline and at the follow-up (None: the click outlined nothing there)
                checks["prompt_mm"] = None if prompt_mm is None else round(prompt_mm, 2)
                y = math.inf if prompt_mm is None else prompt_mm / FOUND_LIMITS["prompt_mm"]
                for name, v in (("reader_line", x), ("prompt_mm", y)):
                    if v > 1.0:
                        checks["failed"] = [*checks["failed"], name]
                    checks["margin"] = round(min(float(checks["margin"]), _score(v)), 3)
            conf = calibrated_confidence(checks, reg_info)
            if checks["failed"]:
                status = "uncertain"
                notes.append("the mask does not resemble the baseline lesion: "
                             + ", ".join(f"{k} {checks[k]}" for k in checks["failed"]))
            elif conf < FOUND_MIN_CONFIDENCE:
                status = "uncertain"
                notes.append(f"every check is within its limit, but masks with these figures "
                             f"were the right lesion {conf:.0%} of the time")
        else:
            conf = min(UNCERTAIN_MAX_CONFIDENCE, _score(d / FOUND_LIMITS["shift_mm"]))
            status = "uncertain"
        if reg_info["doubt"]:  # its confidence is capped already (calibrated_confidence)
            status = "uncertain"
        try:
            meas = measure_mask(followup, mask.mask, node=les.nodal, offset=mask.offset)
        except Exception as exc:  # noqa: BLE001 - a measurement failure must not hide the match
            meas = None
            notes.append(f"measurement failed: {exc}")
        out.append(TrackedLesion(les.lesion_id, status, prop_t,
                                 (float(c[0]), float(c[1]), float(c[2])), round(conf, 3),
                                 round(d, 2), round(ncc, 3), mask, meas, tuple(notes), spec_used,
                                 checks, reg_info, lesion_map))
    return TrackResult(tuple(out), reg, time.perf_counter() - t0,
                       {"segmenter": getattr(seg_for(None), "name", str(segmenter)),
                        "segmenters": used})


def measurement_kwargs(tracked: TrackedLesion, *, mask_path: str | None = None,
                       mask_sha256: str | None = None) -> dict[str, Any]:
    """Keyword arguments for :meth:`recist_tool.store.TrialStore.record_measurement` from a
    proposal the reader accepted (axes rounded to 0.1 mm, end points in LPS, provenance).

    Raises
    ------
    InputError
        For an ``absent?`` proposal: the reader records absence (or a manual measurement) himself.
    """
    from recist_tool.store.values import axis_endpoints, measurement_values

    if tracked.status == "absent?" or tracked.measurement is None:
        raise InputError(f"{tracked.lesion_id}: tracking found nothing to record; confirm absent "
                         "or measure it manually")
    m = tracked.measurement
    return measurement_values(
        m.long_axis_mm, m.short_axis_mm, m.volume_ml, axis_endpoints(m),
        segmenter=getattr(tracked.mask, "segmenter", None),
        segmenter_version=getattr(tracked.mask, "version", None),
        method="automatic", mask_path=mask_path, mask_sha256=mask_sha256)


def stored_segmenter_spec(segmenter: str | None, version: str | None,
                          endpoints: dict[str, Any] | None) -> str | None:
    """The segmenter spec a stored measurement was made with: the ``segmenter_spec`` kept in its
    end points when there is one, else its segmenter's name (a ``unet`` version ending in
    ``/half-contrast`` or ``/learnt`` keeps that edge rule); None for a manual measurement."""
    spec = (endpoints or {}).get("segmenter_spec")
    if spec:
        return str(spec)
    if not segmenter:
        return None
    for rule in ("half-contrast", "learnt"):
        if segmenter == "unet" and str(version or "").endswith("/" + rule):
            return _spec_text("unet", {"edge": rule})
    return str(segmenter)


def baseline_lesions(read: Any) -> list[BaselineLesion]:
    """Baseline lesions to track from a stored read (:class:`recist_tool.store.ReadInfo`).

    The centre of each lesion is the midpoint of its stored long-axis end points (LPS), which are
    also the line the follow-up is outlined from; lesions
    without end points (manual states, non-measured non-targets) are left out — the reader places
    those by hand. Each keeps the segmenter it was measured with (:func:`stored_segmenter_spec`).
    """
    out = []
    for m in read.measurements:
        ends = (m.endpoints_lps or {}).get("long")
        if not ends or len(ends) != 2:
            continue
        a, b = (np.asarray(p, float) for p in ends)
        c = 0.5 * (a + b)
        size = float(m.long_axis_mm) if m.long_axis_mm is not None else float(np.linalg.norm(a - b))
        spec = stored_segmenter_spec(getattr(m, "segmenter", None),
                                     getattr(m, "segmenter_version", None), m.endpoints_lps)
        out.append(BaselineLesion(m.lesion_id, (float(c[0]), float(c[1]), float(c[2])),
                                  nodal=m.nodal, size_mm=size, segmenter=spec,
                                  line_lps=cast("Segment3", (tuple(map(float, a)), tuple(map(float, b))))))
    return out
