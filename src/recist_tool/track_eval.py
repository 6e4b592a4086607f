"""Evaluation of lesion tracking on follow-ups made from real CT with known motion and growth.

For each lesion of a dataset (the layouts of :func:`recist_tool.segment.evaluate.discover_dataset`:
``image/`` + ``mask/``, or ``image.*`` + a label map), follow-ups are made from the baseline CT
itself, so that where every baseline point lies in the follow-up is known exactly:

* a **patient shift**: a rigid turn of up to :data:`ROTATION_MAX_DEG` about a random axis through
  the middle of the scan and a translation of :data:`SHIFT_MM` (a random direction);
* a **breathing shift**: a smooth displacement, mostly head–feet with a little front–back, of
  :data:`BREATHING_MM` at its peak, falling off as a Gaussian (width :data:`BREATHING_WIDTH`
  of the scan's extent) around a random point;
* **growth or shrinkage** of every lesion by a factor of its diameter (:data:`FOLLOWUPS`: 0.7,
  1.0, 1.25): the image is scaled about the lesion's centroid, uniformly within the lesion and a
  2 mm rim, so the lesion keeps its own edge and texture; the tissue around it, out to
  :data:`GROWTH_BLEND` × its radius, is stretched or compressed to take up the change (a smooth,
  one-to-one radial map), and nothing beyond moves;
* fresh image noise (:data:`NOISE_HU`);
* the follow-up's field of view: the largest box of the baseline grid that shows only scanned
  anatomy (:func:`_scanned_box`), as a real follow-up covers a somewhat different range.

The follow-up is the baseline resampled through that map (SimpleITK, linear, on the baseline's
grid), and the true follow-up lesion is the reference mask resampled through the same map. The
baseline is read as a reader would: the default segmenter from the reference's long axis (a
caliper line); the follow-up is tracked with :func:`recist_tool.track.track_lesions` from that
line and mask, the lesion keeping its baseline segmenter. Every draw is seeded from ``seed``, the
dataset and the case name, so a run is repeatable.

Per lesion and follow-up: the status, the confidence, the **centroid error** (mm, the follow-up
mask's centroid against the true follow-up lesion's), the **registration error** (mm, the reference
lesion's baseline centroid carried by the alignment tracking kept for that lesion, against where the
map takes it: the one point of the lesion that its growth or shrinkage leaves in place, so that the
figure is the alignment's error and not the growth, which no rigid alignment follows), the
follow-up/baseline long-axis
**ratio** measured and its **true** value (the reference masks measured the same way), and the
seconds :func:`~recist_tool.track.track_lesions` took.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from recist_tool.errors import InputError
from recist_tool.volume import Volume

if TYPE_CHECKING:
    from recist_tool.measure.result import Segment3

__all__ = ["FOLLOWUPS", "Motion", "TrackingCase", "draw_motion", "make_followup",
           "evaluate_tracking_case", "summarise_tracking", "CORRECT_WITHIN_MM"]

#: Range of the patient's rigid turn (degrees, uniform up to this).
ROTATION_MAX_DEG = 3.0
#: Range of the patient's rigid translation (mm, uniform).
SHIFT_MM = (8.0, 15.0)
#: Range of the breathing displacement at its peak (mm, uniform).
BREATHING_MM = (6.0, 10.0)
#: Width (standard deviation) of the breathing displacement as a share of the scan's extent.
BREATHING_WIDTH = 0.5
#: Follow-ups made per lesion: name → factor on the lesion's diameter.
FOLLOWUPS: dict[str, float] = {"shrink": 0.7, "stable": 1.0, "growth": 1.25}
#: Growth or shrinkage of a lesion of radius ``r`` is taken up by the tissue within this × ``r``
#: (at least 20 mm) outside it; beyond, nothing changes.
GROWTH_BLEND = 1.0
#: Image noise added to a follow-up (HU, Gaussian standard deviation).
NOISE_HU = 8.0
#: Grid (mm) on which the displacement field of a follow-up is sampled.
FIELD_MM = 2.0
#: A follow-up mask whose centroid lies within this (mm) of the true lesion's is the right lesion.
CORRECT_WITHIN_MM = 5.0
#: The largest error of the follow-up/baseline long-axis ratio a ``found`` lesion may have (the
#: goal of issue #36): the summary counts the ``found`` ones beyond it.
RATIO_ERROR_MAX = 0.15
#: Value outside the scanned field (air).
OUTSIDE_HU = -1024.0


@dataclass(frozen=True)
class Motion:
    """A follow-up's known motion: ``rotation`` (3 × 3) about ``centre`` and ``shift`` (mm, LPS),
    breathing ``breath`` (mm vector at the peak) around ``breath_centre`` with width
    ``breath_sigma`` (mm), and ``growth`` (diameter factor) of every lesion."""

    rotation: np.ndarray
    centre: np.ndarray
    shift: np.ndarray
    breath: np.ndarray
    breath_centre: np.ndarray
    breath_sigma: float
    growth: float

    def describe(self) -> dict[str, float]:
        """Angle (degrees), translation and breathing peak (mm), growth factor."""
        ang = math.degrees(math.acos(max(-1.0, min(1.0, (np.trace(self.rotation) - 1) / 2))))
        return {"rotation_deg": round(ang, 2), "shift_mm": round(float(np.linalg.norm(self.shift)), 2),
                "breathing_mm": round(float(np.linalg.norm(self.breath)), 2),
                "growth": self.growth}


def _seed(*parts: Any) -> int:
    return int(hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:12], 16)


def _extent(volume: Volume) -> tuple[np.ndarray, np.ndarray]:
    corners = np.array([[z, y, x] for z in (0, volume.shape[0] - 1)
                        for y in (0, volume.shape[1] - 1) for x in (0, volume.shape[2] - 1)], float)
    lps = volume.index_to_lps(corners)
    return lps.min(axis=0), lps.max(axis=0)


def draw_motion(volume: Volume, growth: float, rng: np.random.Generator) -> Motion:
    """A random patient shift, breathing shift and the given growth (see the module docstring)."""
    lo, hi = _extent(volume)
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    ang = math.radians(rng.uniform(0.0, ROTATION_MAX_DEG))
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    rot = np.eye(3) + math.sin(ang) * k + (1 - math.cos(ang)) * (k @ k)
    d = rng.normal(size=3)
    shift = d / np.linalg.norm(d) * rng.uniform(*SHIFT_MM)
    breath_dir = np.array([0.0, rng.uniform(-0.3, 0.3), 1.0])  # head-feet, a little front-back
    breath = breath_dir / np.linalg.norm(breath_dir) * rng.uniform(*BREATHING_MM)
    breath *= rng.choice([-1.0, 1.0])
    centre = 0.5 * (lo + hi)
    bc = lo + rng.uniform(0.25, 0.75, size=3) * (hi - lo)
    sigma = BREATHING_WIDTH * float(np.max(hi - lo))
    return Motion(rot, centre, shift, breath, bc, sigma, float(growth))


@dataclass(frozen=True)
class _Growth:
    centre: np.ndarray
    inner: float  # follow-up radius (mm) within which the image is scaled uniformly
    outer: float  # follow-up radius beyond which nothing changes


def _growth_regions(volume: Volume, masks: Sequence[np.ndarray], factor: float) -> list[_Growth]:
    out = []
    for m in masks:
        lps = volume.index_to_lps(np.argwhere(m).astype(float))
        c = lps.mean(axis=0)
        r = float(np.max(np.linalg.norm(lps - c, axis=1))) + 2.0
        # the lesion and a 2 mm rim scaled; the tissue within GROWTH_BLEND of it takes up the change
        out.append(_Growth(c, factor * r, max(factor, 1.0) * r + max(GROWTH_BLEND * r, 20.0)))
    return out


def _radial_source(r: np.ndarray, inner: float, outer: float, factor: float) -> np.ndarray:
    """Follow-up radius → baseline radius: ``r / factor`` inside ``inner``, ``r`` beyond ``outer``,
    a cubic Hermite in between matching values and slopes (monotone for the factors used)."""
    y0, y1 = inner / factor, outer
    width = outer - inner
    t = np.clip((r - inner) / width, 0.0, 1.0)
    h00, h10 = 2 * t ** 3 - 3 * t ** 2 + 1, t ** 3 - 2 * t ** 2 + t
    h01, h11 = -2 * t ** 3 + 3 * t ** 2, t ** 3 - t ** 2
    mid = h00 * y0 + h10 * width / factor + h01 * y1 + h11 * width
    return np.where(r <= inner, r / factor, np.where(r >= outer, r, mid))


def _pull_back(q: np.ndarray, motion: Motion, regions: Sequence[_Growth]) -> np.ndarray:
    """Follow-up LPS points → the baseline points they show (the inverse of the motion)."""
    p = (q - motion.centre - motion.shift) @ motion.rotation + motion.centre  # undo the turn
    g = np.exp(-np.sum((p - motion.breath_centre) ** 2, axis=1) / (2 * motion.breath_sigma ** 2))
    p = p - g[:, None] * motion.breath[None, :]
    if motion.growth != 1.0:
        for reg in regions:
            v = p - reg.centre
            r = np.linalg.norm(v, axis=1)
            near = r < reg.outer
            rs = _radial_source(r[near], reg.inner, reg.outer, motion.growth)
            p[near] = reg.centre + v[near] * (rs / np.maximum(r[near], 1e-9))[:, None]
    return p


def _push(points: np.ndarray, motion: Motion, regions: Sequence[_Growth]) -> np.ndarray:
    """Baseline LPS points → where they lie in the follow-up (:func:`_pull_back` inverted by
    fixed-point iteration; the map is close to rigid, so it converges to far below 0.01 mm)."""
    q = (points - motion.centre) @ motion.rotation.T + motion.centre + motion.shift
    for _ in range(100):
        err = _pull_back(q, motion, regions) - points
        q = q - err @ motion.rotation.T
        if float(np.max(np.abs(err))) < 1e-4:
            break
    return q


def make_followup(volume: Volume, masks: Sequence[np.ndarray], motion: Motion,
                  rng: np.random.Generator) -> tuple[Volume, list[np.ndarray], Any]:
    """The follow-up CT and its true lesion masks under ``motion``.

    Parameters
    ----------
    volume : Volume
        Baseline CT (an orthogonal grid).
    masks : sequence of numpy.ndarray
        Boolean lesion masks on the baseline grid.
    motion : Motion
    rng : numpy.random.Generator
        Draws the follow-up's image noise.

    Returns
    -------
    followup : Volume
        On the baseline's grid.
    true_masks : list of numpy.ndarray
        The lesions as they lie in the follow-up.
    push : callable
        Baseline LPS points ``(n, 3)`` → follow-up LPS points.
    """
    import SimpleITK as sitk

    from recist_tool.track import to_sitk

    if not volume.is_orthogonal_grid:
        raise InputError("evaluate-tracking needs a regularly spaced, unsheared series")
    regions = _growth_regions(volume, masks, motion.growth)
    img = to_sitk(volume, np.float32)
    lo, hi = _extent(volume)
    size = [int(math.ceil((hi[i] - lo[i]) / FIELD_MM)) + 3 for i in range(3)]
    # the field's grid in LPS axes (x, y, z), covering the scan with a voxel to spare
    origin = lo - FIELD_MM
    ii = np.stack(np.meshgrid(*[np.arange(n) for n in size[::-1]], indexing="ij"), -1)
    pts = origin + ii.reshape(-1, 3)[:, ::-1] * FIELD_MM  # (z, y, x) order of the array
    disp = (_pull_back(pts, motion, regions) - pts).reshape(*size[::-1], 3)
    field = sitk.GetImageFromArray(disp.astype(np.float64), isVector=True)
    field.SetOrigin(tuple(float(v) for v in origin))
    field.SetSpacing((FIELD_MM,) * 3)
    tx = sitk.DisplacementFieldTransform(field)
    warped = sitk.Resample(img, img, tx, sitk.sitkLinear, OUTSIDE_HU, sitk.sitkFloat32)
    arr = sitk.GetArrayFromImage(warped)
    arr = arr + rng.normal(0.0, NOISE_HU, arr.shape).astype(np.float32)
    lo_i, hi_i = _scanned_box(volume, motion, regions)
    box = (slice(lo_i[0], hi_i[0]), slice(lo_i[1], hi_i[1]), slice(lo_i[2], hi_i[2]))
    fu = volume.with_array(np.rint(arr).astype(np.int16)).crop(lo_i, hi_i)
    truths = []
    for m in masks:
        mi = to_sitk(volume.with_array(m.astype(np.float32)), np.float32)
        truths.append(sitk.GetArrayFromImage(
            sitk.Resample(mi, mi, tx, sitk.sitkLinear, 0.0, sitk.sitkFloat32))[box] >= 0.5)
    return fu, truths, (lambda p: _push(np.atleast_2d(np.asarray(p, float)), motion, regions))


def _scanned_box(volume: Volume, motion: Motion, regions: Sequence[_Growth],
                 samples: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """The largest box of the baseline grid (``(z, y, x)`` start, stop) whose every voxel shows
    a point the baseline scanned: the follow-up's field of view. A patient who moved shows, at
    the edges of the baseline's field, anatomy the baseline never saw; a real follow-up covers a
    somewhat different range, not anatomy cut off by air (which on a scan cropped to a limb
    makes edges that match nothing)."""
    shape = np.asarray(volume.shape)
    axes = [np.unique(np.linspace(0, n - 1, min(int(n), samples)).round().astype(int))
            for n in shape]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3).astype(float)
    src = volume.lps_to_index(_pull_back(volume.index_to_lps(grid), motion, regions))
    ok = np.all((src >= -0.5) & (src <= shape - 0.5), axis=1).reshape([len(a) for a in axes])
    lo = [0, 0, 0]
    hi = [len(a) for a in axes]
    while True:  # shed the face with the most unscanned samples until none is left
        sub = ok[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
        if sub.size == 0:
            raise InputError("the follow-up's motion leaves nothing of the scan")
        if sub.all():
            break
        worst, face = -1.0, (0, 0)
        for ax in range(3):
            if hi[ax] - lo[ax] < 2:
                continue
            for side, idx in ((0, 0), (1, -1)):
                bad = float(np.mean(~np.take(sub, idx, axis=ax)))
                if bad > worst:
                    worst, face = bad, (ax, side)
        ax, side = face
        if side == 0:
            lo[ax] += 1
        else:
            hi[ax] -= 1
    start = np.array([axes[k][lo[k]] for k in range(3)])
    stop = np.array([axes[k][hi[k] - 1] + 1 for k in range(3)])
    return start, stop


@dataclass(frozen=True)
class TrackingCase:
    """One lesion at one made follow-up (distances in mm). ``baseline_centroid_error_mm``: how far
    the baseline mask's centroid lies from the reference's (the segmenter's part of an error);
    ``seconds`` / ``cpu_seconds``: wall and CPU time of tracking the whole follow-up."""

    dataset: str
    case: str
    lesion: str
    followup: str
    status: str
    confidence: float
    segmenter: str | None
    centroid_error_mm: float | None
    registration_error_mm: float
    ratio: float | None
    true_ratio: float
    baseline_long_axis_mm: float
    seconds: float
    motion: dict[str, float]
    registration: str = ""
    failed_checks: tuple[str, ...] = ()
    baseline_centroid_error_mm: float | None = None
    cpu_seconds: float = 0.0
    checks: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio_error(self) -> float | None:
        """``|ratio − true ratio|``; None without a measurement."""
        return None if self.ratio is None else abs(self.ratio - self.true_ratio)

    @property
    def correct(self) -> bool:
        """The follow-up mask is the right lesion (centroid within :data:`CORRECT_WITHIN_MM`)."""
        return self.centroid_error_mm is not None and self.centroid_error_mm <= CORRECT_WITHIN_MM

    def to_dict(self) -> dict[str, Any]:
        """Plain values (JSON), with the ratio error."""
        d = asdict(self)
        d["ratio_error"] = None if self.ratio_error is None else round(self.ratio_error, 4)
        return d


def evaluate_tracking_case(volume: Volume, masks: Sequence[np.ndarray], names: Sequence[str], *,
                           dataset: str, case: str, segmenter: str, seed: int = 0,
                           followups: Sequence[str] = tuple(FOLLOWUPS)) -> list[TrackingCase]:
    """Make the follow-ups of one CT with its lesions and track every lesion in each.

    Parameters
    ----------
    volume : Volume
        The baseline CT.
    masks : sequence of numpy.ndarray
        The lesions' reference masks on its grid.
    names : sequence of str
        A name per lesion.
    dataset, case : str
        Names for the report and the seeds.
    segmenter : str
        Segmenter spec measuring the baseline from each reference's long axis.
    seed : int
        Base of every random draw.
    followups : sequence of str
        Keys of :data:`FOLLOWUPS`.

    Returns
    -------
    list of TrackingCase
    """
    from recist_tool.measure import measure_mask
    from recist_tool.segment import NoLesionError, Prompt, get_segmenter, parse_segmenter_spec
    from recist_tool.segment.evaluate import reference_line
    from recist_tool.track import BaselineLesion, kept_segmenter_spec, track_lesions

    unknown = [f for f in followups if f not in FOLLOWUPS]
    if unknown:
        raise InputError(f"unknown follow-up {unknown[0]!r}; choose from {', '.join(FOLLOWUPS)}")
    name, opts = parse_segmenter_spec(segmenter)
    seg = get_segmenter(name, **opts)
    lesions, true_la, kept = [], [], []
    for les_name, m in zip(names, masks, strict=True):
        true_la.append(measure_mask(volume, m).long_axis_mm)
        line = reference_line(volume, m, None)
        try:
            bm = seg.segment(volume, Prompt(line_zyx=line))
        except NoLesionError as exc:
            raise InputError(f"{case} {les_name}: the baseline cannot be segmented ({exc})"
                             ) from exc
        la = measure_mask(volume, bm.mask, offset=bm.offset).long_axis_mm
        spec = kept_segmenter_spec(bm, segmenter)
        ends = volume.index_to_lps(np.asarray(line, float))
        base_err = float(np.linalg.norm(
            volume.index_to_lps(np.argwhere(bm.mask).mean(axis=0) + np.asarray(bm.offset, float))
            - volume.index_to_lps(np.argwhere(m).mean(axis=0))))
        kept.append((volume.index_to_lps(np.argwhere(m).mean(axis=0)), la, base_err))
        lesions.append(BaselineLesion(les_name, mask=bm.mask, mask_offset=bm.offset, size_mm=la,
                                      segmenter=spec,
                                      line_lps=cast("Segment3", (tuple(map(float, ends[0])),
                                                                 tuple(map(float, ends[1]))))))
    out = []
    for fname in followups:
        rng = np.random.default_rng(_seed(seed, dataset, case, fname))
        motion = draw_motion(volume, FOLLOWUPS[fname], rng)
        fu, truths, push = make_followup(volume, masks, motion, rng)
        t0, c0 = time.perf_counter(), time.process_time()
        res = track_lesions(volume, fu, lesions, segmenter=segmenter)
        secs, cpu = time.perf_counter() - t0, time.process_time() - c0
        for les, truth, (c_ref, la, base_err), tla in zip(lesions, truths, kept, true_la,
                                                          strict=True):
            t = res.get(les.lesion_id)
            reg_err = float(np.linalg.norm(np.asarray(t.map_point(c_ref)) - push(c_ref)[0]))
            true_c = fu.index_to_lps(np.argwhere(truth).mean(axis=0)) if truth.any() else None
            cen_err = (None if t.mask is None or true_c is None else
                       float(np.linalg.norm(np.asarray(t.proposed_center_lps) - true_c)))
            true_fu_la = measure_mask(fu, truth).long_axis_mm if truth.any() else 0.0
            ratio = (None if t.measurement is None or not la else
                     float(t.measurement.long_axis_mm) / float(la))
            out.append(TrackingCase(
                dataset, case, les.lesion_id, fname, t.status, float(t.confidence),
                t.segmenter_spec, None if cen_err is None else round(cen_err, 2),
                round(reg_err, 2), None if ratio is None else round(ratio, 4),
                round(float(true_fu_la) / float(tla), 4), round(float(la), 1), round(secs, 2),
                motion.describe(), str(t.registration.get("chosen", "")),
                tuple(t.checks.get("failed", ())), round(base_err, 2), round(cpu, 2),
                {**{k: v for k, v in t.checks.items() if k != "failed"},
                 **{f"registration_{k}": v for k, v in t.registration.items()}}))
    return out


def _stats(values: Sequence[float | None]) -> dict[str, float | None]:
    v = np.asarray([x for x in values if x is not None], float)
    if v.size == 0:
        return {"n": 0, "median": None, "max": None}
    return {"n": int(v.size), "median": round(float(np.median(v)), 3),
            "max": round(float(v.max()), 3)}


#: Confidence bins of the calibration table (lower edges).
CONFIDENCE_BINS = (0.0, 0.2, 0.5, 0.8, 0.9)
#: Confidences reported as thresholds: the share of right lesions among those at or above each.
CONFIDENCE_THRESHOLDS = (0.5, 0.8, 0.9)


def summarise_tracking(results: Sequence[TrackingCase]) -> dict[str, Any]:
    """Status counts, centroid / registration / ratio errors (all lesions and ``found`` ones),
    the shrink follow-ups' ratios, wrong lesions stored as found, ``found`` lesions whose ratio
    is more than :data:`RATIO_ERROR_MAX` off (``found_ratio_off``), right lesions (mask within
    :data:`CORRECT_WITHIN_MM`) and how many of them are found, the confidence calibration (share
    of right lesions per confidence bin, and at or above each edge) and the wall and CPU seconds
    per follow-up."""
    found = [r for r in results if r.status == "found"]
    status: dict[str, int] = {}
    for r in results:
        status[r.status] = status.get(r.status, 0) + 1
    calib = []
    edges = (*CONFIDENCE_BINS, 1.0001)
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        inbin = [r for r in results if lo <= r.confidence < hi]
        calib.append({"confidence": f"{lo:.1f}-{min(hi, 1.0):.1f}", "n": len(inbin),
                      "mean_confidence": (round(float(np.mean([r.confidence for r in inbin])), 3)
                                          if inbin else None),
                      "right_lesion": (round(sum(r.correct for r in inbin) / len(inbin), 3)
                                       if inbin else None),
                      "ratio_within_0.05": (round(sum((r.ratio_error or 9) <= 0.05 for r in inbin)
                                                  / len(inbin), 3) if inbin else None)})
    at_or_above = []
    for lo in CONFIDENCE_THRESHOLDS:
        over = [r for r in results if r.confidence >= lo]
        at_or_above.append({"confidence": lo, "n": len(over),
                            "right_lesion": (round(sum(r.correct for r in over) / len(over), 3)
                                             if over else None)})
    times: dict[tuple[str, str, str], float] = {}
    cpu: dict[tuple[str, str, str], float] = {}
    for r in results:
        times[(r.dataset, r.case, r.followup)] = r.seconds
        cpu[(r.dataset, r.case, r.followup)] = r.cpu_seconds
    return {
        "n": len(results),
        "status": status,
        "found_wrong_lesion": sum(1 for r in found if not r.correct),
        "found_ratio_off": sum(1 for r in found if (r.ratio_error or 0.0) > RATIO_ERROR_MAX),
        "right_lesion": sum(1 for r in results if r.correct),
        "right_lesion_found": sum(1 for r in found if r.correct),
        "centroid_error_mm": _stats([r.centroid_error_mm for r in results]),
        "centroid_error_found_mm": _stats([r.centroid_error_mm for r in found]),
        "registration_error_mm": _stats([r.registration_error_mm for r in results]),
        "ratio_error": _stats([r.ratio_error for r in results]),
        "ratio_error_found": _stats([r.ratio_error for r in found]),
        "shrink_ratios": [r.ratio for r in results if r.followup == "shrink"],
        "calibration": calib,
        "calibration_at_or_above": at_or_above,
        "brier": (round(float(np.mean([(r.confidence - r.correct) ** 2 for r in results])), 4)
                  if results else None),
        "seconds_per_followup": _stats(list(times.values())),
        "cpu_seconds_per_followup": _stats(list(cpu.values())),
    }


# --- calibrating the confidence ----------------------------------------------------------------

def _registration_of(checks: dict[str, Any]) -> dict[str, Any]:
    return {k[len("registration_"):]: v for k, v in checks.items() if k.startswith("registration_")}


def _calibration_rows(cases: Sequence[TrackingCase]) -> tuple[list[TrackingCase], np.ndarray]:
    """The cases with a follow-up mask compared with the baseline, and their features."""
    from recist_tool.track import confidence_features

    rows = [c for c in cases if c.centroid_error_mm is not None and "shift_mm" in c.checks]
    x = np.array([confidence_features(c.checks, _registration_of(c.checks)) for c in rows],
                 float).reshape(len(rows), -1)
    return rows, x


def _logistic(z: np.ndarray, y: np.ndarray, ridge: float) -> np.ndarray:
    """Weights (intercept first) of an L2-penalised logistic regression of ``y`` on the columns
    of ``z`` (its first a column of ones, not penalised), by Newton's method."""
    pen = np.full(z.shape[1], float(ridge))
    pen[0] = 0.0
    w = np.zeros(z.shape[1])
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ w, -50, 50)))
        grad = z.T @ (y - p) - pen * w
        hess = (z * (p * (1 - p))[:, None]).T @ z + np.diag(pen) + 1e-9 * np.eye(z.shape[1])
        step = np.linalg.solve(hess, grad)
        w += step
        if float(np.max(np.abs(step))) < 1e-10:
            break
    return w


def fit_confidence(cases: Sequence[TrackingCase], *, ridge: float = 1.0,
                   fitted_on: str = "") -> dict[str, Any]:
    """A logistic model of :data:`recist_tool.track.CONFIDENCE_FEATURES` for "the follow-up mask
    is the right lesion" (:attr:`TrackingCase.correct`), L2-penalised (``ridge`` on the
    standardised coefficients, not on the intercept), fitted by Newton's method: deterministic.

    Every feature is a departure from the carried baseline lesion, so none may raise the
    probability: a feature whose coefficient comes out positive (a few dozen follow-ups can say
    so by chance) is dropped (coefficient 0), the one with the largest first, and the rest
    refitted.

    Returns the model in the form of :data:`recist_tool.track.CONFIDENCE_MODEL`."""
    from recist_tool.track import CONFIDENCE_FEATURES

    rows, x = _calibration_rows(cases)
    if not rows:
        raise InputError("no follow-up masks to calibrate on")
    y = np.array([c.correct for c in rows], float)
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    z = (x - mean) / scale
    cols = list(range(x.shape[1]))
    while True:
        w = _logistic(np.hstack([np.ones((len(rows), 1)), z[:, cols]]), y, ridge)
        if not cols or float(np.max(w[1:])) <= 0.0:
            break
        cols.pop(int(np.argmax(w[1:])))
    coef = np.zeros(x.shape[1])
    coef[cols] = w[1:]
    r6 = lambda v: tuple(round(float(t), 6) for t in v)  # noqa: E731
    return {"features": CONFIDENCE_FEATURES, "mean": r6(mean), "scale": r6(scale),
            "coef": r6(coef), "intercept": round(float(w[0]), 6), "ridge": float(ridge),
            "fitted_on": fitted_on, "n": len(rows), "right": int(y.sum())}


def predict_confidence(cases: Sequence[TrackingCase], model: dict[str, Any]) -> list[float]:
    """The calibrated confidence ``model`` gives each case (0 for one without a mask), as
    :func:`recist_tool.track.track_lesions` gives it: at most
    :data:`~recist_tool.track.UNCERTAIN_MAX_CONFIDENCE` for a mask that failed a check."""
    from recist_tool.track import calibrated_confidence

    return [calibrated_confidence({**c.checks, "failed": list(c.failed_checks)},
                                  _registration_of(c.checks), model)
            if c.centroid_error_mm is not None and "shift_mm" in c.checks else 0.0
            for c in cases]


def held_out_confidence(cases: Sequence[TrackingCase], *, ridge: float = 1.0) -> list[float]:
    """Each case's confidence from a model fitted without its image (leave one image out): how
    the calibration holds on an image it has not seen."""
    out = [0.0] * len(cases)
    keys = sorted({(c.dataset, c.case) for c in cases})
    for key in keys:
        train = [c for c in cases if (c.dataset, c.case) != key]
        idx = [i for i, c in enumerate(cases) if (c.dataset, c.case) == key]
        try:
            model = fit_confidence(train, ridge=ridge)
        except InputError:
            continue
        for i, p in zip(idx, predict_confidence([cases[i] for i in idx], model), strict=True):
            out[i] = p
    return out


def with_confidence(cases: Sequence[TrackingCase], confidences: Sequence[float]
                    ) -> list[TrackingCase]:
    """The cases with these confidences (for :func:`summarise_tracking`'s calibration table)."""
    from dataclasses import replace

    return [replace(c, confidence=round(float(p), 3))
            for c, p in zip(cases, confidences, strict=True)]


def load_cases(path: str) -> list[TrackingCase]:
    """The per-lesion rows of a ``recist evaluate-tracking --per-lesion --json`` output."""
    import json
    from dataclasses import fields

    with open(path, encoding="utf-8") as fh:
        got = json.load(fh)
    names = {f.name for f in fields(TrackingCase)}
    out = []
    for row in got.get("lesions") or []:
        d = {k: v for k, v in row.items() if k in names}
        d["failed_checks"] = tuple(d.get("failed_checks", ()))
        out.append(TrackingCase(**d))
    return out


def _main(argv: Sequence[str] | None = None) -> int:
    """``python -m recist_tool.track_eval fit RUN.json... [--sets a,b] [--ridge 1]``: fit the
    calibrated confidence on the named sets' rows and print the model (JSON) and its
    reliability: in-sample and leave-one-image-out per set, and on the other sets held out."""
    import argparse
    import json

    ap = argparse.ArgumentParser(prog="python -m recist_tool.track_eval")
    ap.add_argument("command", choices=["fit"])
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--sets", default="pyradiomics_lung1,sts_extremity",
                    help="datasets to fit on (never an evaluation-only set)")
    ap.add_argument("--ridge", type=float, default=1.0)
    a = ap.parse_args(argv)
    cases = [c for path in a.runs for c in load_cases(path)]
    sets = [t.strip() for t in a.sets.split(",") if t.strip()]
    train = [c for c in cases if c.dataset in sets]
    model = fit_confidence(train, ridge=a.ridge, fitted_on=", ".join(sets))
    held = held_out_confidence(train, ridge=a.ridge)

    def table(rows: Sequence[TrackingCase]) -> dict[str, Any]:
        s = summarise_tracking(rows)
        return {"n": s["n"], "brier": s["brier"], "bins": s["calibration"],
                "at_or_above": s["calibration_at_or_above"]}

    report: dict[str, Any] = {"model": model, "in_sample": {}, "leave_one_image_out": {},
                              "held_out_sets": {}}
    for name in sorted({c.dataset for c in cases}):
        rows = [c for c in cases if c.dataset == name]
        scored = with_confidence(rows, predict_confidence(rows, model))
        if name in sets:
            report["in_sample"][name] = table(scored)
            report["leave_one_image_out"][name] = table(with_confidence(
                rows, [p for c, p in zip(train, held, strict=True) if c.dataset == name]))
        else:
            report["held_out_sets"][name] = table(scored)
    report["in_sample"]["all"] = table(with_confidence(train, predict_confidence(train, model)))
    report["leave_one_image_out"]["all"] = table(with_confidence(train, held))
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":  # pragma: no cover - the fitting recipe, run by hand
    raise SystemExit(_main())
