"""Lesion tracking across timepoints: register a follow-up to the baseline, propagate each lesion,
re-segment it, measure it, and say how sure the match is.

Steps (all registration with SimpleITK, points in DICOM LPS millimetres):

1. **Global rigid** registration (Euler 3D, Mattes mutual information, multi-resolution on volumes
   downsampled to 6 mm, then 3 mm): baseline is the fixed image, the follow-up the moving
   one, so the transform maps a baseline point to where it lies in the follow-up.
2. **Local refinement where needed**: per lesion, a rigid registration restricted to a box around
   the lesion (about 3 × its size, at least 60 mm), started from the global transform; kept only
   when it improves the local correlation and moves the lesion ≤ 5 mm from the global match. When the
   local normalised cross-correlation is still below ``deformable_below`` (breathing, posture), a
   coarse B-spline (deformable) registration of that box follows.
3. **Re-segmentation** at the propagated centre with a segmenter of :mod:`recist_tool.segment`; if the
   click misses (shrunken lesion), a few seeds within a small radius whose HU is closest to the
   baseline lesion's are tried. **Measurement** with :func:`recist_tool.measure.measure_mask`.
4. A lesion that cannot be segmented is proposed as ``"absent?"`` for the reader to confirm — never
   as a silent 0 mm.

The match confidence (0–1) averages two independent signs: how well the anatomy around the lesion
matches after registration (local normalised cross-correlation, clipped at 0) and how well the
re-segmented lesion sits where registration put it (``exp(-(d / s)²)``, ``d`` the distance between
the propagated centre and the centroid of the re-segmented mask, ``s`` the baseline lesion radius,
at least 5 mm). ``absent?`` has confidence 0.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from recist_tool.errors import GeometryError, InputError, SegmentationError
from recist_tool.volume import Volume

__all__ = ["BaselineLesion", "TrackedLesion", "TrackResult", "Registration", "register_rigid",
           "track_lesions", "to_sitk", "measurement_kwargs", "baseline_lesions"]

Status = Literal["found", "absent?", "uncertain"]


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
    """

    lesion_id: str
    center_lps: tuple[float, float, float] | None = None
    mask: np.ndarray | None = None
    mask_offset: tuple[int, int, int] = (0, 0, 0)
    nodal: bool = False
    size_mm: float | None = None


@dataclass(frozen=True, eq=False)
class TrackedLesion:
    """What tracking proposes for one lesion at the follow-up (the reader confirms or corrects).

    ``status`` is ``found``, ``uncertain`` (segmented, but far from where the lesion should be, or
    a poor local match) or ``absent?`` (nothing segmentable there: confirm absent or place it).
    ``mask`` is a :class:`recist_tool.segment.LesionMask` and ``measurement`` a
    :class:`recist_tool.measure.AxisMeasurement` (both None when absent?).
    """

    lesion_id: str
    status: Status
    propagated_center_lps: tuple[float, float, float]
    proposed_center_lps: tuple[float, float, float]
    confidence: float
    distance_mm: float | None
    local_ncc: float
    mask: Any = None
    measurement: Any = None
    notes: tuple[str, ...] = ()


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
    img = sitk.GetImageFromArray(np.ascontiguousarray(vol.array, dtype=dtype))
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


def _prepare(img: Any) -> Any:
    import SimpleITK as sitk

    return sitk.Clamp(sitk.Cast(img, sitk.sitkFloat32), sitk.sitkFloat32, -1000.0, 1500.0)


def _method(seed: int = 1) -> Any:
    import SimpleITK as sitk

    r = sitk.ImageRegistrationMethod()
    r.SetMetricAsMattesMutualInformation(numberOfHistogramBins=40)
    r.SetMetricSamplingStrategy(r.RANDOM)
    r.SetMetricSamplingPercentage(0.15, seed)
    r.SetInterpolator(sitk.sitkLinear)
    return r


def register_rigid(baseline: Volume | Any, followup: Volume | Any, *,
                   levels_mm: Sequence[float] = (6.0, 3.0)) -> Registration:
    """Rigid (Euler 3D) registration of ``followup`` to ``baseline`` on downsampled volumes.

    Parameters
    ----------
    baseline, followup : Volume or SimpleITK image
    levels_mm : sequence of float
        Working voxel sizes, coarse to fine (each level starts from the previous result).

    Returns
    -------
    Registration
        ``map_point`` takes a baseline LPS point to the follow-up.
    """
    import SimpleITK as sitk

    t0 = time.perf_counter()
    fixed_full = _prepare(baseline if not isinstance(baseline, Volume) else to_sitk(baseline))
    moving_full = _prepare(followup if not isinstance(followup, Volume) else to_sitk(followup))
    fixed0 = _shrink_to(fixed_full, levels_mm[0])
    centre = fixed0.TransformContinuousIndexToPhysicalPoint(
        [(n - 1) / 2.0 for n in fixed0.GetSize()])
    tx: Any = sitk.Euler3DTransform()
    tx.SetCenter(centre)
    # start from aligned image centres along the table (scan ranges differ between visits)
    metric = float("nan")
    for level in levels_mm:
        fixed = _shrink_to(fixed_full, level)
        moving = _shrink_to(moving_full, level)
        r = _method()
        r.SetOptimizerAsRegularStepGradientDescent(learningRate=level, minStep=0.01 * level,
                                                   numberOfIterations=150,
                                                   relaxationFactor=0.6)
        r.SetOptimizerScalesFromPhysicalShift()
        r.SetInitialTransform(tx, inPlace=False)
        try:
            tx = _as_euler(r.Execute(fixed, moving))
        except RuntimeError as exc:
            raise GeometryError(f"registration failed: {str(exc).splitlines()[0]}") from exc
        metric = float(r.GetMetricValue())
    return Registration(tx, metric, time.perf_counter() - t0, ("rigid",))


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


def _ncc(fixed: Any, moving: Any, transform: Any) -> float:
    import SimpleITK as sitk

    warped = sitk.Resample(moving, fixed, transform, sitk.sitkLinear, -1000.0, sitk.sitkFloat32)
    a = sitk.GetArrayViewFromImage(fixed).astype(np.float64).ravel()
    b = sitk.GetArrayViewFromImage(warped).astype(np.float64).ravel()
    a, b = a - a.mean(), b - b.mean()
    den = math.sqrt(float(a @ a) * float(b @ b))
    return float(a @ b / den) if den > 0 else 0.0


#: Working grid (mm) of the local B-spline stage.
_DEFORMABLE_MM = 3.0


def _refine(fixed_full: Any, moving_full: Any, glob: Any, center: Sequence[float], half_mm: float,
            deformable_below: float, deformable: str, max_local_mm: float = 5.0,
            ) -> tuple[Any, float, list[str]]:
    import SimpleITK as sitk

    notes: list[str] = []
    fixed = _crop(fixed_full, center, half_mm)
    fixed = _shrink_to(fixed, 1.5)
    moving = _shrink_to(_crop(moving_full, glob.TransformPoint(tuple(center)), half_mm * 1.6), 1.5)
    ncc_global = _ncc(fixed, moving, glob)
    r = _method(seed=2)
    r.SetOptimizerAsRegularStepGradientDescent(learningRate=1.0, minStep=0.005,
                                               numberOfIterations=100, relaxationFactor=0.6)
    r.SetOptimizerScalesFromPhysicalShift()
    local = sitk.Euler3DTransform()
    local.SetCenter(tuple(float(v) for v in center))
    local.SetTranslation(tuple(float(v) for v in np.asarray(glob.TransformPoint(tuple(center)))
                               - np.asarray(center)))
    local.SetMatrix(glob.GetMatrix())
    r.SetInitialTransform(local, inPlace=False)
    try:
        refined = _as_euler(r.Execute(fixed, moving))
        ncc = _ncc(fixed, moving, refined)
    except RuntimeError:
        refined, ncc = glob, ncc_global
        notes.append("local refinement failed; global rigid used")
    moved = float(np.linalg.norm(np.asarray(refined.TransformPoint(tuple(center)))
                                 - np.asarray(glob.TransformPoint(tuple(center)))))
    if moved > max_local_mm:
        notes.append(f"local refinement moved the lesion {moved:.1f} mm from the global match; "
                     "rejected")
        refined, ncc = glob, ncc_global
    elif ncc < ncc_global:
        refined, ncc = glob, ncc_global
    else:
        notes.append(f"local rigid refinement (NCC {ncc_global:.2f} → {ncc:.2f})")
    if deformable == "always" or (deformable == "auto" and ncc < deformable_below):
        try:
            mesh = [3] * 3
            bs = sitk.BSplineTransformInitializer(fixed, mesh)
            comp = sitk.CompositeTransform([refined, bs])
            r2 = _method(seed=3)
            r2.SetOptimizerAsLBFGSB(gradientConvergenceTolerance=1e-5, numberOfIterations=40)
            r2.SetInitialTransform(comp, inPlace=True)
            # the 3-node mesh spans the whole box (control points tens of mm apart): a 3 mm
            # working grid resolves it and costs an eighth of the 1.5 mm one
            r2.Execute(_shrink_to(fixed, _DEFORMABLE_MM), _shrink_to(moving, _DEFORMABLE_MM))
            ncc_def = _ncc(fixed, moving, comp)
            moved_def = float(np.linalg.norm(np.asarray(comp.TransformPoint(tuple(center)))
                                             - np.asarray(glob.TransformPoint(tuple(center)))))
            if ncc_def > ncc and moved_def <= max_local_mm:
                notes.append(f"local deformable (B-spline) registration (NCC {ncc:.2f} → "
                             f"{ncc_def:.2f})")
                refined, ncc = comp, ncc_def
        except RuntimeError:
            notes.append("deformable registration failed; rigid kept")
    return refined, ncc, notes


def _mask_centroid_lps(volume: Volume, mask: np.ndarray, offset: Sequence[int]) -> np.ndarray:
    idx = np.argwhere(mask)
    if idx.size == 0:
        raise InputError("empty lesion mask")
    return volume.index_to_lps(idx.mean(axis=0) + np.asarray(offset, float))


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


def track_lesions(
    baseline: Volume, followup: Volume, lesions: Sequence[BaselineLesion], *,
    segmenter: str | Any = "classic", registration: Registration | None = None,
    deformable: Literal["auto", "always", "never"] = "auto", deformable_below: float = 0.5,
    uncertain_beyond: float = 0.5,
) -> TrackResult:
    """Find each baseline lesion in a follow-up series.

    Parameters
    ----------
    baseline, followup : Volume
        The baseline CT and the follow-up CT (any grids; LPS geometry is used throughout).
    lesions : sequence of BaselineLesion
        Centres and/or masks on the baseline.
    segmenter : str or segmenter
        Name in the :mod:`recist_tool.segment` registry (default ``classic``) or an instance.
    registration : Registration, optional
        A global registration to reuse (e.g. from :func:`register_rigid`).
    deformable : {"auto", "always", "never"}
        Local B-spline stage: when the local match stays poor (``auto``), always, or never.
    deformable_below : float
        ``auto`` threshold on the local normalised cross-correlation.
    uncertain_beyond : float
        A segmented lesion whose centroid lies further than this × its baseline size (and more
        than 10 mm) from the propagated centre is ``uncertain``.

    Returns
    -------
    TrackResult
    """
    from recist_tool.measure import measure_mask
    from recist_tool.segment import NoLesionError, Prompt, get_segmenter

    t0 = time.perf_counter()
    if not lesions:
        raise InputError("no baseline lesions to track")
    seg = get_segmenter(segmenter) if isinstance(segmenter, str) else segmenter
    fixed_full = _prepare(to_sitk(baseline))
    moving_full = _prepare(to_sitk(followup))
    reg = registration or register_rigid(fixed_full, moving_full)
    out: list[TrackedLesion] = []
    for les in lesions:
        notes: list[str] = []
        size = les.size_mm
        if les.mask is not None:
            centre = _mask_centroid_lps(baseline, les.mask, les.mask_offset)
            if size is None:
                vox = float(np.prod(baseline.spacing))
                size = 2.0 * (3.0 * les.mask.sum() * vox / (4.0 * math.pi)) ** (1.0 / 3.0)
        elif les.center_lps is not None:
            centre = np.asarray(les.center_lps, float)
        else:
            raise InputError(f"{les.lesion_id}: give a centre or a mask")
        size = float(size) if size else 20.0
        half = max(30.0, 1.5 * size)
        tx, ncc, n2 = _refine(fixed_full, moving_full, reg.transform, centre, half,
                              deformable_below, deformable)
        notes += n2
        p = tx.TransformPoint(tuple(float(v) for v in centre))
        prop = np.asarray(p, float)
        target_hu = _hu_at(baseline, centre)
        seeds = [prop] + _fallback_seeds(followup, prop, min(6.0, max(2.0, size / 4)), target_hu)
        mask = None
        rejected = ""
        max_size = max(3.0 * size, size + 30.0)
        for k, s in enumerate(seeds):
            try:
                cand = seg.segment(followup, Prompt(point_lps=tuple(float(v) for v in s)),
                                   node=les.nodal)
            except (NoLesionError, SegmentationError):
                continue
            extent = float(np.max((np.ptp(np.argwhere(cand.mask), axis=0) + 1)
                                  * np.asarray(followup.spacing)))
            if extent > max_size:
                rejected = (f"what can be segmented there spans {extent:.0f} mm, not a lesion of "
                            f"{size:.0f} mm at baseline")
                continue
            mask = cand
            if k:
                notes.append(f"propagated centre missed the lesion; seed moved "
                             f"{float(np.linalg.norm(s - prop)):.1f} mm")
            break
        sigma = max(5.0, size / 2.0)
        prop_t = (float(prop[0]), float(prop[1]), float(prop[2]))
        if mask is None and rejected:
            notes.append(rejected)
        if mask is None:
            out.append(TrackedLesion(les.lesion_id, "absent?", prop_t, prop_t, 0.0, None, ncc, None,
                                     None, (*notes, "no lesion could be segmented at the "
                                            "propagated position: confirm absent or place it")))
            continue
        c = _mask_centroid_lps(followup, mask.mask, mask.offset)
        d = float(np.linalg.norm(c - prop))
        conf = 0.5 * max(0.0, ncc) + 0.5 * math.exp(-((d / sigma) ** 2))
        status: Status = "found"
        if d > max(10.0, uncertain_beyond * size):
            status = "uncertain"
            notes.append(f"segmented structure lies {d:.1f} mm from the propagated centre")
        try:
            meas = measure_mask(followup, mask.mask, node=les.nodal, offset=mask.offset)
        except Exception as exc:  # noqa: BLE001 - a measurement failure must not hide the match
            meas = None
            notes.append(f"measurement failed: {exc}")
        out.append(TrackedLesion(les.lesion_id, status, prop_t,
                                 (float(c[0]), float(c[1]), float(c[2])), round(conf, 3),
                                 round(d, 2), round(ncc, 3), mask, meas, tuple(notes)))
    return TrackResult(tuple(out), reg, time.perf_counter() - t0,
                       {"segmenter": getattr(seg, "name", str(segmenter))})


def measurement_kwargs(tracked: TrackedLesion, *, mask_path: str | None = None,
                       mask_sha256: str | None = None) -> dict[str, Any]:
    """Keyword arguments for :meth:`recist_tool.store.TrialStore.record_measurement` from a
    proposal the reader accepted (axes rounded to 0.1 mm, end points in LPS, provenance).

    Raises
    ------
    InputError
        For an ``absent?`` proposal: the reader records absence (or a manual measurement) himself.
    """
    from decimal import ROUND_HALF_EVEN, Decimal

    if tracked.status == "absent?" or tracked.measurement is None:
        raise InputError(f"{tracked.lesion_id}: tracking found nothing to record; confirm absent "
                         "or measure it manually")
    m = tracked.measurement

    def tenth(v: float | None) -> Decimal | None:
        return None if v is None else Decimal(repr(float(v))).quantize(Decimal("0.1"),
                                                                       ROUND_HALF_EVEN)

    def seg(s: Any) -> list[list[float]] | None:
        return None if s is None else [[round(float(c), 3) for c in p] for p in s]

    return {
        "long_axis_mm": tenth(m.long_axis_mm),
        "short_axis_mm": tenth(m.short_axis_mm),
        "endpoints_lps": {"long": seg(m.long_axis_endpoints_lps),
                          "short": seg(m.short_axis_endpoints_lps), "slice_index": m.slice_index},
        "volume_ml": None if m.volume_ml is None else Decimal(repr(round(float(m.volume_ml), 3))),
        "segmenter": getattr(tracked.mask, "segmenter", None),
        "segmenter_version": getattr(tracked.mask, "version", None),
        "method": "automatic",
        "mask_path": mask_path,
        "mask_sha256": mask_sha256,
    }


def baseline_lesions(read: Any) -> list[BaselineLesion]:
    """Baseline lesions to track from a stored read (:class:`recist_tool.store.ReadInfo`).

    The centre of each lesion is the midpoint of its stored long-axis end points (LPS); lesions
    without end points (manual states, non-measured non-targets) are left out — the reader places
    those by hand.
    """
    out = []
    for m in read.measurements:
        ends = (m.endpoints_lps or {}).get("long")
        if not ends or len(ends) != 2:
            continue
        a, b = (np.asarray(p, float) for p in ends)
        c = 0.5 * (a + b)
        size = float(m.long_axis_mm) if m.long_axis_mm is not None else float(np.linalg.norm(a - b))
        out.append(BaselineLesion(m.lesion_id, (float(c[0]), float(c[1]), float(c[2])),
                                  nodal=m.nodal, size_mm=size))
    return out
