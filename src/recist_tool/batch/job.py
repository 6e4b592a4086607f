"""The per-case job: load → segment (baseline seeds) or track (follow-ups) → measure.

:func:`score_case` runs in a worker process (local pool or Dask worker). It touches no database and
returns plain picklable dataclasses; the client alone writes the store and the output files. The
segmenter and the last loaded volumes are cached per worker process (:func:`worker_segmenter`,
:func:`cached_volume`), so a model is loaded once per worker, not once per case.
"""

from __future__ import annotations

import datetime as _dt
import os
import socket
import time
import traceback
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, cast

from recist_tool.batch.manifest import Case, LesionSeed
from recist_tool.errors import InputError, RecistToolError
from recist_tool.recist.model import LesionState, to_stored_mm
from recist_tool.segment.registry import parse_segmenter_spec
from recist_tool.volume import VolumeMeta

if TYPE_CHECKING:
    from recist_tool.measure.result import Segment3

__all__ = ["BaselineLesionRef", "BaselineRef", "CaseResult", "LesionResult", "cached_volume",
           "init_worker", "parse_segmenter_spec", "score_case", "worker_segmenter"]


@dataclass(frozen=True)
class LesionResult:
    """One lesion at one visit as scored by the job (floats in mm / mL; the store rounds).

    Attributes
    ----------
    lesion_id, category, organ, nodal
        As in the manifest (category ``target``, ``non-target`` or ``new``).
    state : str
        RECIST lesion state for the store: ``MEASURED``, ``ABSENT`` (tracking found nothing) or
        ``PRESENT`` (a new lesion listed without a seed).
    long_axis_mm, short_axis_mm, volume_ml : float or None
    endpoints_lps : dict or None
        ``long`` / ``short`` axis end points (LPS mm), ``slice_index``, ``centroid_lps`` of the mask
        and, for tracked lesions, ``tracking`` (status, confidence).
    status : str
        ``seeded`` (segmented at the manifest's seed), ``found`` / ``uncertain`` / ``absent?``
        (tracked from baseline), ``present`` (not measured).
    confidence : float or None
        Tracking match confidence (0–1); None for seeded lesions.
    segmenter, segmenter_version : str or None
        The segmenter that made the mask (after any tissue routing) and its version.
    notes : tuple of str
    segmenter_spec : str or None
        The segmenter spec this lesion is measured with at every visit
        (:func:`recist_tool.track.kept_segmenter_spec` of its baseline mask); also kept in
        ``endpoints_lps["segmenter_spec"]`` so that a resumed run tracks with it.
    mask : Volume or None
        The lesion mask as a uint8 crop of the series with that crop's exact geometry (small; it
        travels back to the client, which writes it next to the database's outputs).
    """

    lesion_id: str
    category: str
    organ: str
    nodal: bool
    state: str
    long_axis_mm: float | None = None
    short_axis_mm: float | None = None
    volume_ml: float | None = None
    endpoints_lps: dict[str, Any] | None = None
    status: str = "seeded"
    confidence: float | None = None
    segmenter: str | None = None
    segmenter_version: str | None = None
    notes: tuple[str, ...] = ()
    mask: Any = field(default=None, compare=False, repr=False)
    segmenter_spec: str | None = None

    @property
    def centroid_lps(self) -> tuple[float, float, float] | None:
        """Centroid of the lesion mask (LPS mm), when segmented."""
        c = (self.endpoints_lps or {}).get("centroid_lps")
        return None if c is None else (float(c[0]), float(c[1]), float(c[2]))


@dataclass(frozen=True)
class CaseResult:
    """Outcome of one case. ``ok`` False carries a one-line ``error``; lesions are then empty.

    ``seconds`` is the case's wall time in the worker, ``cpu_seconds`` its CPU time there.
    ``stages`` splits the wall time into ``(stage, seconds)`` pairs: ``load`` (reading the
    series, and the baseline's for a follow-up unless the worker holds it), ``register``
    (tracking's pyramids and registrations), ``segment`` (segmentation and the rest of tracking)
    and ``measure`` (:func:`~recist_tool.measure.measure_mask`); ``peak_rss_mib`` is the worker
    process's peak resident memory so far (MiB; None where the platform does not say).
    """

    subject: str
    visit: str
    date: _dt.date
    ok: bool
    lesions: tuple[LesionResult, ...] = ()
    error: str | None = None
    series_uid: str | None = None
    study_uid: str | None = None
    n_slices: int | None = None
    seconds: float = 0.0
    worker: str = ""
    notes: tuple[str, ...] = ()
    cpu_seconds: float = 0.0
    stages: tuple[tuple[str, float], ...] = ()
    peak_rss_mib: float | None = None

    @property
    def key(self) -> tuple[str, str]:
        """``(subject, visit)``."""
        return (self.subject, self.visit)


@dataclass(frozen=True)
class BaselineLesionRef:
    """What tracking needs of a baseline lesion: its centre, size, kind, the segmenter spec it
    keeps at every follow-up (None: the run's) and its long axis (two LPS points), from which the
    follow-up is outlined."""

    lesion_id: str
    category: str
    organ: str
    nodal: bool
    center_lps: tuple[float, float, float]
    size_mm: float
    segmenter: str | None = None
    line_lps: tuple[tuple[float, float, float], tuple[float, float, float]] | None = None


@dataclass(frozen=True)
class BaselineRef:
    """The baseline a follow-up is tracked from: where its series is and its lesions."""

    series_path: str
    series_uid: str | None
    lesions: tuple[BaselineLesionRef, ...] = field(default_factory=tuple)

    @classmethod
    def from_result(cls, case: Case, result: CaseResult) -> BaselineRef:
        """From a successful baseline :class:`CaseResult`."""
        refs = []
        for les in result.lesions:
            c = les.centroid_lps
            if c is None or les.long_axis_mm is None:
                raise InputError(f"{case.label} {les.lesion_id}: baseline lesion was not measured")
            # the size as the store keeps it (0.1 mm), so that a resumed run tracks identically
            size = float(to_stored_mm(les.long_axis_mm))  # type: ignore[arg-type]
            refs.append(BaselineLesionRef(les.lesion_id, les.category, les.organ, les.nodal, c,
                                          size, les.segmenter_spec,
                                          long_axis_line(les.endpoints_lps)))
        return cls(case.series_path, case.series_uid, tuple(refs))


def long_axis_line(endpoints: dict[str, Any] | None
                   ) -> tuple[tuple[float, float, float], tuple[float, float, float]] | None:
    """The long axis (two LPS points) kept in a measurement's end points, or None."""
    ends = (endpoints or {}).get("long")
    if not ends or len(ends) != 2:
        return None
    a, b = ([float(v) for v in p] for p in ends)
    return (a[0], a[1], a[2]), (b[0], b[1], b[2])


# --- per-worker state ------------------------------------------------------------------------------

_SEGMENTERS: dict[str, Any] = {}
_VOLUMES: OrderedDict[tuple[str, str | None], Any] = OrderedDict()
#: Volumes kept per worker (a subject's baseline is reused by its follow-ups on the same worker).
VOLUME_CACHE_SIZE = 2


def init_worker(segmenter: str | None = None, threads: int = 1) -> None:
    """Worker initializer: one thread for torch, SimpleITK and BLAS; load the segmenter once.

    Parameters
    ----------
    segmenter : str, optional
        Registry name to load now (otherwise loaded by the first case).
    threads : int
        Threads per worker for torch and SimpleITK.
    """
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(threads))
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    import SimpleITK as sitk

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)
    if segmenter:
        worker_segmenter(segmenter)


def worker_segmenter(spec: str) -> Any:
    """The segmenter ``spec`` (see :func:`parse_segmenter_spec`), created once per process and
    reused by every case.

    Raises
    ------
    UsageError
        Options the segmenter does not accept.
    """
    seg = _SEGMENTERS.get(spec)
    if seg is None:
        from recist_tool.segment import get_segmenter

        name, opts = parse_segmenter_spec(spec)
        seg = get_segmenter(name, **opts)
        _SEGMENTERS[spec] = seg
    return seg


def cached_volume(path: str, series_uid: str | None) -> Any:
    """:func:`recist_tool.io.load_volume` with a small per-process cache (single-process reads)."""
    from recist_tool.io import load_volume

    key = (path, series_uid)
    vol = _VOLUMES.get(key)
    if vol is not None:
        _VOLUMES.move_to_end(key)
        return vol
    vol = load_volume(path, series_uid, workers=1)
    modality = getattr(vol.meta, "modality", None)
    if modality not in (None, "", "CT"):
        raise InputError(f"{path}: modality {modality}, not CT")
    _VOLUMES[key] = vol
    while len(_VOLUMES) > VOLUME_CACHE_SIZE:
        _VOLUMES.popitem(last=False)
    return vol


# --- the job ---------------------------------------------------------------------------------------

def _r(v: Any, nd: int = 3) -> float | None:
    return None if v is None else round(float(v), nd)


def _from_measurement(les: LesionSeed | BaselineLesionRef, mask: Any, meas: Any, volume: Any,
                      status: str, confidence: float | None = None,
                      notes: tuple[str, ...] = (), options: str = "", spec: str | None = None,
                      tracking: dict[str, Any] | None = None) -> LesionResult:
    import numpy as np

    from recist_tool.store.values import axis_endpoints

    idx = np.argwhere(mask.mask)
    off = tuple(int(v) for v in mask.offset)
    crop = volume.crop(off, tuple(o + n for o, n in zip(off, mask.mask.shape, strict=True)))
    crop = crop.with_array(np.asarray(mask.mask, np.uint8))
    crop = replace(crop, meta=VolumeMeta())
    centroid = volume.index_to_lps(idx.mean(axis=0) + np.asarray(mask.offset, float))
    ends = axis_endpoints(meas, centroid_lps=centroid, segmenter_spec=spec,
                          tracking=None if status == "seeded" else
                          {"status": status, "confidence": confidence, **(tracking or {})})
    return LesionResult(
        les.lesion_id, les.category, les.organ, les.nodal, LesionState.MEASURED,
        _r(meas.long_axis_mm), _r(meas.short_axis_mm), _r(meas.volume_ml, 4), ends, status,
        confidence, mask.segmenter, stored_version(mask.version, options),
        tuple(mask.warnings) + notes, crop, spec)


def stored_version(version: str, options: str = "") -> str:
    """The segmenter version a batch stores with a measurement: the segmenter's own, with the
    options of the run's segmenter spec, e.g. ``1.2 (band_fraction=0.5)``."""
    return f"{version} ({options})" if options else version


def _seeded(volume: Any, les: LesionSeed, seg: Any, case: Case, options: str = "",
            spec: str | None = None) -> LesionResult:
    import numpy as np

    from recist_tool.segment import NoLesionError, Prompt
    from recist_tool.segment.workflow import segment_and_measure

    if les.seed_lps is None:
        return LesionResult(les.lesion_id, les.category, les.organ, les.nodal, LesionState.PRESENT,
                            status="present", notes=("listed without a seed: recorded present",))
    try:
        line = (None if les.line_lps is None else
                cast("Segment3", tuple(tuple(float(v) for v in volume.lps_to_index(np.asarray(e, float)))
                                     for e in les.line_lps)))
        mask, meas = segment_and_measure(volume, Prompt(point_lps=les.seed_lps, line_zyx=line),
                                         seg, node=les.nodal)
    except NoLesionError as exc:
        raise InputError(f"{les.lesion_id} ({os.path.basename(les.where)}): {exc}") from exc
    if meas is None:  # pragma: no cover - measure ships with the package
        raise InputError("recist_tool.measure is not available")
    from recist_tool.track import kept_segmenter_spec

    kept = kept_segmenter_spec(mask, spec) if spec else None
    return _from_measurement(les, mask, meas, volume, "seeded", options=options, spec=kept)


def _tracked(baseline_vol: Any, volume: Any, refs: list[BaselineLesionRef], spec: str,
             options: str = "") -> list[LesionResult]:
    """Track ``refs`` into ``volume``; each lesion keeps its own segmenter spec (the run's
    ``spec`` for a lesion that names none)."""
    from recist_tool.track import BaselineLesion, track_lesions

    res = track_lesions(baseline_vol, volume,
                        [BaselineLesion(r.lesion_id, r.center_lps, nodal=r.nodal, size_mm=r.size_mm,
                                        segmenter=r.segmenter, line_lps=r.line_lps)
                         for r in refs], segmenter=spec, make_segmenter=worker_segmenter)
    out = []
    for ref in refs:
        t = res.get(ref.lesion_id)
        if t.status == "absent?" or t.measurement is None:
            out.append(LesionResult(
                ref.lesion_id, ref.category, ref.organ, ref.nodal, LesionState.ABSENT,
                long_axis_mm=None, short_axis_mm=None,
                endpoints_lps={"tracking": {"status": "absent?", "confidence": 0.0,
                                            "propagated_center_lps": [
                                                round(v, 3) for v in t.propagated_center_lps]}},
                status="absent?", confidence=0.0, segmenter=res.info.get("segmenter"),
                notes=(*t.notes, "recorded ABSENT by batch tracking: confirm on review"),
                segmenter_spec=t.segmenter_spec))
            continue
        out.append(_from_measurement(
            ref, t.mask, t.measurement, volume, t.status, float(t.confidence), tuple(t.notes),
            options, t.segmenter_spec,
            {"checks": {k: v for k, v in t.checks.items() if k != "confidence"},
             "registration": t.registration}))
    return out


def score_case(case: Case, baseline: BaselineRef | None = None, *,
               segmenter: str = "classic") -> CaseResult:
    """Score one series: baseline seeds are segmented; follow-ups are tracked from ``baseline``.

    Parameters
    ----------
    case : Case
        The series and the lesions seeded on it (for a follow-up: new lesions or re-seeds).
    baseline : BaselineRef, optional
        For a follow-up: the baseline series and its lesions' centres. ``None`` for a baseline.
    segmenter : str
        Registry name, optionally with constructor options (``classic:band_fraction=0.5``, see
        :func:`parse_segmenter_spec`); created once per worker.

    Returns
    -------
    CaseResult
        ``ok`` False with a one-line ``error`` for a bad series (cannot be read, not CT, a seed not
        on a lesion, tracking failure); never raises for those.
    """
    from recist_tool.stages import collect

    with collect() as stages:
        res = _score_case(case, baseline, segmenter)
    return replace(res, stages=tuple((k, round(v, 4)) for k, v in stages.items()),
                   peak_rss_mib=_peak_rss_mib())


def _peak_rss_mib() -> float | None:
    """This process's peak resident memory (MiB), or None without ``resource`` (Windows)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return None
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)


def _score_case(case: Case, baseline: BaselineRef | None, segmenter: str) -> CaseResult:
    from recist_tool.stages import stage

    t0 = time.perf_counter()
    c0 = time.process_time()
    worker = f"{socket.gethostname()}:{os.getpid()}"

    def fail(msg: str) -> CaseResult:
        return CaseResult(case.subject, case.visit, case.date, False, error=msg,
                          seconds=time.perf_counter() - t0, worker=worker,
                          cpu_seconds=time.process_time() - c0)

    try:
        seg = worker_segmenter(segmenter)
        options = segmenter.partition(":")[2]
        with stage("load"):
            vol = cached_volume(case.series_path, case.series_uid)
        lesions: list[LesionResult] = []
        seeded_ids = {les.lesion_id for les in case.lesions}
        if baseline is not None:
            refs = [r for r in baseline.lesions if r.lesion_id not in seeded_ids]
            if refs:
                with stage("load"):
                    bvol = cached_volume(baseline.series_path, baseline.series_uid)
                with stage("segment"):
                    lesions += _tracked(bvol, vol, refs, segmenter, options)
        ref_by_id = {r.lesion_id: r for r in (baseline.lesions if baseline else ())}
        for les in case.lesions:
            ref = ref_by_id.get(les.lesion_id)
            if ref is not None:  # re-seeded baseline lesion keeps its baseline category
                les = replace(les, category=ref.category, organ=ref.organ, nodal=ref.nodal)
            with stage("segment"):
                lesions.append(_seeded(vol, les, seg, case, options, segmenter))
    except RecistToolError as exc:
        return fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    except MemoryError:
        return fail("out of memory")
    except Exception as exc:  # noqa: BLE001 - one bad case must not stop the batch
        last = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        where = f" at {os.path.basename(last.filename)}:{last.lineno}" if last else ""
        return fail(f"internal error {type(exc).__name__}: {exc}{where}")
    meta = vol.meta
    return CaseResult(case.subject, case.visit, case.date, True, tuple(lesions),
                      series_uid=getattr(meta, "series_uid", None),
                      study_uid=getattr(meta, "study_uid", None), n_slices=int(vol.shape[0]),
                      seconds=time.perf_counter() - t0, worker=worker,
                      cpu_seconds=time.process_time() - c0)
