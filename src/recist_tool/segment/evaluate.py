"""Evaluation of segmenters on datasets of lesions with reference masks (ULS23-style metrics).

Per lesion the segmenter gets one prompt of the kind asked for (:data:`PROMPT_KINDS`):

* ``click``: the *centre click*, the reference voxel deepest inside the lesion (air of cavities
  skipped);
* ``line``: a reader's caliper line, the reference mask's long axis (as
  :func:`recist_tool.measure.measure_mask` finds it) with each end moved in the slice plane by a
  seeded random offset of up to :data:`LINE_JITTER` of its length (a reader's imprecision);
* ``box``: the reference's bounding box grown by :data:`BOX_MARGIN` of its extent on each side.

Dice, long- and short-axis errors (mm, and symmetric relative ``|a-b|/((a+b)/2)``) compare its
mask with the reference, both measured by :func:`recist_tool.measure.measure_mask`. Three further
prompts of the same kind (clicks at random voxels at least half the lesion's depth inside it; lines
with other random offsets; boxes with margins drawn between 0 and twice :data:`BOX_MARGIN`),
seeded per lesion, give the consistency Dice (mean pairwise Dice). A prompt answered with
:class:`~recist_tool.segment.base.NoLesionError` scores Dice 0. Summaries are given for the whole
set and per reference long-axis bin (:data:`SIZE_BINS_MM`). Time per prompt is wall-clock time of
``segment()`` only, volume already in memory.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
from scipy import ndimage

from recist_tool.errors import InputError, SegmentationError
from recist_tool.segment.base import NoLesionError, Prompt, Segmenter, dice
from recist_tool.segment.seed import AIR_MAX_HU
from recist_tool.volume import Volume

#: Prompt kinds a lesion can be evaluated from.
PROMPT_KINDS = ("click", "line", "box")
#: A ``line`` prompt's ends are moved in the slice plane by up to this share of its length.
LINE_JITTER = 0.10
#: A ``box`` prompt is the reference's bounding box grown by this share of its extent per side.
BOX_MARGIN = 0.10
#: Reference long-axis bins (mm, ``[lo, hi)``) of the per-size summaries.
SIZE_BINS_MM = ((10.0, 20.0), (20.0, 50.0), (50.0, 100.0), (100.0, float("inf")))


def lidc_patient(name: str) -> str:
    """Patient ID of an LIDC crop file or key, e.g. ``LIDC-IDRI-0003`` for ``LIDC-IDRI-0003_R_2``."""
    m = re.match(r"(LIDC-IDRI-\d+)", name)
    return m.group(1) if m else name.split("_")[0]


def lidc_split(name: str) -> str:
    """Deterministic patient-level split of the LIDC crops: ``train`` or ``validation``.

    Rule: a patient is in ``validation`` when the first 8 hex digits of SHA-256 of its ID
    (``LIDC-IDRI-NNNN``) read as an integer are divisible by 5 (about 20 % of patients);
    all crops of one patient fall on the same side.
    """
    pid = lidc_patient(name)
    h = int(hashlib.sha256(pid.encode()).hexdigest()[:8], 16)
    return "validation" if h % 5 == 0 else "train"


#: Real datasets of one lesion per patient that shipped weights are trained on (their train
#: split only): their cases are split with :func:`case_split`.
SPLIT_BY_CASE = ("sts_extremity",)


def case_split(name: str) -> str:
    """Deterministic case-level split of a :data:`SPLIT_BY_CASE` dataset (one patient per case):
    ``validation`` when the first 8 hex digits of SHA-256 of the case name (e.g. ``STS_004``)
    read as an integer are divisible by 4 (9 of the 26 sarcomas), else ``train``."""
    h = int(hashlib.sha256(name.encode()).hexdigest()[:8], 16)
    return "validation" if h % 4 == 0 else "train"


# --------------------------------------------------------------------------- datasets
@dataclass(frozen=True)
class Case:
    """One lesion of a dataset: an image and its reference mask (paths, or in memory); ``node``:
    the lesion is a lymph node (segmented and measured as one, as a reader would flag it);
    ``label``: the lesion is the voxels of this value in a label map of several lesions (else
    every non-zero voxel)."""

    name: str
    image: Path | None = None
    mask: Path | None = None
    volume: Volume | None = None
    reference: np.ndarray | None = None
    group: str = ""
    node: bool = False
    label: int | None = None

    @property
    def image_key(self) -> str:
        """What identifies the case's image: its path, or the volume held in memory (cases with
        the same key are lesions of one image)."""
        return str(self.image) if self.image is not None else f"in-memory:{id(self.volume)}"

    def load(self) -> tuple[Volume, np.ndarray]:
        """The CT volume and the boolean reference mask on its grid."""
        if self.volume is not None and self.reference is not None:
            return self.volume, np.asarray(self.reference, bool)
        from recist_tool.io import load_volume

        vol = load_volume(cast(Path, self.image))  # a case not in memory has both paths
        ref_vol = load_volume(cast(Path, self.mask))
        arr = np.asarray(ref_vol.array)
        ref = arr != 0 if self.label is None else arr == self.label
        if ref.shape != vol.shape:
            raise InputError(f"{self.mask}: mask shape {ref.shape} differs from image {vol.shape}")
        return vol, ref


@dataclass
class Dataset:
    """A named list of cases; ``split`` says which part of a split dataset it is."""

    name: str
    cases: list[Case]
    split: str = "all"
    source: str = ""


_IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd")


def _stem(p: Path) -> str:
    n = p.name
    for suf in _IMAGE_SUFFIXES:
        if n.endswith(suf):
            return n[: -len(suf)]
    return p.stem


def discover_dataset(path: str | Path, split: str = "validation") -> Dataset:
    """Read a dataset folder.

    Layouts
    -------
    * ``image/`` and ``mask/`` with matching file names (like ``lidc_nodules``). LIDC-IDRI crops
      are split by patient with :func:`lidc_split`, the sarcomas (:data:`SPLIT_BY_CASE`) by case
      with :func:`case_split`; ``split`` chooses ``validation`` (default), ``train`` or ``all``.
    * ``image.*`` beside ``label.*`` or ``tumours.*`` (like ``pyradiomics_lung1`` and the
      3D-IRCADb folders): **each label value is one lesion** (one case per value, named
      ``FOLDER#VALUE`` when there are several).
    * A folder of such folders (like ``ircadb_liver``): the cases of every sub-folder.
    * ``synthetic`` or ``synthetic:N``: the built-in synthetic set (fixed seed, N cases,
      default 20), generated in memory.
    """
    s = str(path)
    if s == "synthetic" or s.startswith("synthetic:"):
        from recist_tool.segment.synthetic import synthetic_dataset

        text = s.split(":", 1)[1] if ":" in s else "20"
        if not text.isdigit() or int(text) < 1:
            raise InputError(f"dataset {s!r}: synthetic:N takes a whole number of cases, 1 or more")
        n = int(text)
        cases = [Case(c.name, volume=c.volume, reference=c.mask, group=c.kind,
                      node=c.kind == "node") for c in synthetic_dataset(n)]
        return Dataset(f"synthetic:{n}", cases, "all", "synthetic")
    p = Path(path)
    if not p.is_dir():
        raise InputError(f"dataset {p} is not a folder (nor 'synthetic[:N]')")
    if (p / "image").is_dir() and (p / "mask").is_dir():
        masks = {_stem(m): m for m in (p / "mask").iterdir() if m.is_file()}
        cases = []
        is_lidc = False
        by_case = p.name in SPLIT_BY_CASE
        for img in sorted((p / "image").iterdir()):
            key = _stem(img)
            if key not in masks:
                continue
            lidc = key.startswith("LIDC-IDRI-")
            is_lidc |= lidc
            if lidc and split != "all" and lidc_split(key) != split:
                continue
            if by_case and split != "all" and case_split(key) != split:
                continue
            cases.append(Case(key, img, masks[key], group=lidc_patient(key) if lidc else key))
        if not cases and not is_lidc:
            raise InputError(f"dataset {p}: no image/ file has a mask/ file of the same name")
        return Dataset(p.name, cases, split if is_lidc or by_case else "all", str(p))
    labelled = _label_map_cases(p)
    if labelled is None:
        labelled = [c for sub in sorted(q for q in p.iterdir() if q.is_dir())
                    for c in (_label_map_cases(sub) or [])]
    if labelled:
        return Dataset(p.name, labelled, "all", str(p))
    raise InputError(f"dataset {p}: expected image/ + mask/ folders, image.* + label.* (or "
                     f"tumours.*) files, or folders of those")


#: File-name stems of a label map beside ``image.*`` (one lesion per label value).
LABEL_MAP_STEMS = ("label", "tumours")


def _label_map_cases(folder: Path) -> list[Case] | None:
    """One case per label value of the ``image.*`` + label map of ``folder``; None when the
    folder does not hold exactly one image and one label map."""
    images = [f for f in folder.iterdir() if _stem(f) == "image"]
    labels = [f for f in folder.iterdir() if _stem(f) in LABEL_MAP_STEMS]
    if len(images) != 1 or len(labels) != 1:
        return None
    from recist_tool.io import load_volume

    values = [int(v) for v in np.unique(np.asarray(load_volume(labels[0]).array)) if v != 0]
    if len(values) <= 1:
        return [Case(folder.name, images[0], labels[0], group=folder.name)]
    return [Case(f"{folder.name}#{v}", images[0], labels[0], group=folder.name, label=v)
            for v in values]


# --------------------------------------------------------------------------- thick slices
def thick_slices(volume: Volume, mask: np.ndarray, k: int, phase: int = 0
                 ) -> tuple[Volume, np.ndarray] | None:
    """A lesion image re-sliced as thick-slice CT: ``k`` times thicker slices, and its mask.

    The thin slices are resampled onto slices ``k * dz`` apart, the first centred on slice
    ``phase + (k - 1) / 2``, through a triangular slice-sensitivity profile with a full width at
    half maximum of ``k * dz`` (cut at the ends of the stack), as a thick helical reconstruction
    averages thin ones. The mask goes through the same profile, and a thick voxel is lesion when
    at least half of it is: the convention of outlines drawn on thick slices, which stop where a
    voxel is about half lesion (partial volume), while thin-slice outlines such as LIDC's keep
    each voxel of ground glass and rim.

    Parameters
    ----------
    volume : Volume
        The image, an evenly spaced stack (tilted or not).
    mask : numpy.ndarray
        Its boolean lesion mask.
    k : int
        Thin slices per thick slice (2 or more).
    phase : int
        Index of the first thin slice of the first thick slice (``0 <= phase < k``).

    Returns
    -------
    (Volume, numpy.ndarray) or None
        The thick-slice volume and its mask; None when fewer than two thick slices fit.
    """
    if k < 2 or not 0 <= phase < k:
        raise ValueError(f"thick_slices needs k >= 2 and 0 <= phase < k, got k={k}, phase={phase}")
    if not volume.is_uniform:
        raise ValueError("thick_slices needs evenly spaced slices")
    nz = volume.shape[0]
    centres = np.arange(phase + (k - 1) / 2, nz - (k - 1) / 2 - 0.5, k)
    if len(centres) < 2:
        return None
    # weights[i, j]: share of thin slice j in thick slice i (a triangle of half-width k)
    weights = np.clip(1 - np.abs(np.arange(nz)[None, :] - centres[:, None]) / k, 0, None)
    weights /= weights.sum(axis=1, keepdims=True)
    arr = np.tensordot(weights, np.asarray(volume.array, np.float32), axes=1).astype(np.float32)
    thick = np.tensordot(weights, np.asarray(mask, np.float32), axes=1) >= 0.5
    pos = np.array([volume.index_to_lps((c, 0.0, 0.0)) for c in centres])
    spacing = (k * volume.spacing[0], volume.spacing[1], volume.spacing[2])
    return Volume(arr, spacing, pos[0], volume.direction, pos, volume.meta), thick


def reslice_case(volume: Volume, reference: np.ndarray, slice_mm: float,
                 tolerance: float = 0.2) -> tuple[Volume, np.ndarray] | None:
    """A lesion re-sliced by :func:`thick_slices` to slices about ``slice_mm`` thick, or None.

    ``k`` is the whole number of slices whose ``k * dz`` is nearest ``slice_mm``. None (the
    lesion is left out) when the slices are too thick for ``k >= 2`` within ``tolerance``
    (relative), are unevenly spaced, are too few for two thick slices, or when the thick mask is
    empty.
    """
    k = max(2, int(round(slice_mm / volume.spacing[0])))
    if abs(k * volume.spacing[0] - slice_mm) > tolerance * slice_mm or not volume.is_uniform:
        return None
    out = thick_slices(volume, reference, k)
    return None if out is None or not out[1].any() else out


# --------------------------------------------------------------------------- clicks and metrics
def centre_click(volume: Volume, reference: np.ndarray) -> tuple[int, int, int]:
    """The lesion voxel deepest (mm) inside the lesion's tissue (air of cavities excluded)."""
    sp = volume.spacing
    tissue = reference & (np.asarray(volume.array) >= AIR_MAX_HU)
    part = tissue if tissue.any() else reference
    edt = ndimage.distance_transform_edt(np.pad(part, 1), sampling=sp)[1:-1, 1:-1, 1:-1]
    return tuple(int(v) for v in np.unravel_index(np.argmax(edt), edt.shape))  # type: ignore[return-value]


def inner_clicks(volume: Volume, reference: np.ndarray, n: int, rng: np.random.Generator
                 ) -> list[tuple[int, int, int]]:
    """``n`` different clicks inside the lesion's tissue, at least half its maximal depth deep."""
    sp = volume.spacing
    tissue = reference & (np.asarray(volume.array) >= AIR_MAX_HU)
    part = tissue if tissue.any() else reference
    edt = ndimage.distance_transform_edt(np.pad(part, 1), sampling=sp)[1:-1, 1:-1, 1:-1]
    pts = np.argwhere(edt >= 0.5 * edt.max())
    pick = rng.choice(len(pts), size=min(n, len(pts)), replace=False)
    return [tuple(int(v) for v in pts[i]) for i in pick]  # type: ignore[misc]


def reference_line(volume: Volume, reference: np.ndarray, rng: np.random.Generator | None,
                   jitter: float = LINE_JITTER, node: bool = False
                   ) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """A reader's caliper line on a reference mask: its long axis, each end moved at random.

    Parameters
    ----------
    volume : Volume
    reference : numpy.ndarray
        Boolean lesion mask on ``volume``'s grid.
    rng : numpy.random.Generator or None
        Draws the offsets; None gives the exact long axis.
    jitter : float
        Each end moves in the slice plane by a uniform random offset within a disc of radius
        ``jitter`` times the line's length (mm, converted with the in-plane pixel spacing).
    node : bool
        Measure the reference as a lymph node (slice of the largest short axis).

    Returns
    -------
    tuple
        The two end points, fractional voxel indices ``(z, y, x)``.

    Examples
    --------
    >>> from recist_tool.segment.synthetic import make_case
    >>> case = make_case("liver_met", 20.0, seed=1)  # mean radius 20 mm
    >>> a, b = reference_line(case.volume, case.mask, None)  # its exact long axis
    >>> round(float(np.hypot(*(np.subtract(a, b)[1:] * case.volume.spacing[1:]))))  # mm
    43
    """
    from recist_tool.measure import measure_mask

    m = measure_mask(volume, reference, node=node)
    ends = np.asarray(m.long_axis_endpoints_voxel, float)
    if rng is not None and jitter > 0:
        radius_mm = jitter * m.long_axis_mm
        for end in ends:
            r = radius_mm * np.sqrt(rng.uniform())
            t = rng.uniform(0.0, 2.0 * np.pi)
            end[1:] += np.array([r * np.sin(t), r * np.cos(t)]) / np.asarray(volume.spacing[1:])
    limit = np.asarray(volume.shape, float) - 1.0
    ends = np.clip(ends, 0.0, limit)
    return tuple(float(v) for v in ends[0]), tuple(float(v) for v in ends[1])  # type: ignore[return-value]


def reference_box(volume: Volume, reference: np.ndarray, margin: float = BOX_MARGIN
                  ) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """The reference's bounding box (voxel indices, inclusive) grown by ``margin`` of its
    extent on each side and clipped to the volume."""
    nz = np.argwhere(reference)
    lo, hi = nz.min(axis=0).astype(float), nz.max(axis=0).astype(float)
    grow = margin * (hi - lo + 1.0)
    lo = np.clip(np.floor(lo - grow), 0, None)
    hi = np.minimum(np.ceil(hi + grow), np.asarray(volume.shape) - 1.0)
    return tuple(float(v) for v in lo), tuple(float(v) for v in hi)  # type: ignore[return-value]


def make_prompt(kind: str, volume: Volume, reference: np.ndarray,
                rng: np.random.Generator | None, node: bool = False) -> Prompt:
    """A prompt of ``kind`` (:data:`PROMPT_KINDS`) for a lesion; ``rng=None`` gives the primary
    one (centre click, line with seeded offsets drawn by the caller, box with
    :data:`BOX_MARGIN`), a generator a further one for the consistency Dice."""
    if kind == "click":
        click = (centre_click(volume, reference) if rng is None
                 else inner_clicks(volume, reference, 1, rng)[0])
        return Prompt(point_zyx=click)
    if kind == "line":
        return Prompt(line_zyx=reference_line(volume, reference, rng, node=node))
    if kind == "box":
        margin = BOX_MARGIN if rng is None else rng.uniform(0.0, 2.0 * BOX_MARGIN)
        return Prompt(box_zyx=reference_box(volume, reference, margin))
    raise ValueError(f"prompt kind must be one of {', '.join(PROMPT_KINDS)}, got {kind!r}")


def symmetric_relative_error(a: float, b: float) -> float:
    """``|a - b| / ((a + b) / 2)``; 0 when both are 0."""
    m = 0.5 * (a + b)
    return 0.0 if m == 0 else abs(a - b) / m


def _measure(volume: Volume, mask: np.ndarray, offset=(0, 0, 0), node: bool = False):
    """Long and short axis (mm) of a mask through ``recist_tool.measure`` (None if absent)."""
    try:
        from recist_tool.measure import measure_mask
    except ImportError:  # measurement not installed: axis errors are left out
        return None
    r = measure_mask(volume, mask, node=node, offset=offset)
    return float(r.long_axis_mm), float(r.short_axis_mm or 0.0)


@dataclass
class CaseResult:
    """Metrics of one lesion (``None`` where not measurable)."""

    name: str
    dice: float
    long_axis_ref_mm: float | None = None
    short_axis_ref_mm: float | None = None
    long_axis_mm: float | None = None
    short_axis_mm: float | None = None
    consistency_dice: float | None = None
    no_lesion: bool = False
    leak_bounded: bool = False
    seconds: list[float] = field(default_factory=list)

    @property
    def long_axis_error_mm(self) -> float | None:
        if self.long_axis_mm is None or self.long_axis_ref_mm is None:
            return None
        return abs(self.long_axis_mm - self.long_axis_ref_mm)

    @property
    def short_axis_error_mm(self) -> float | None:
        if self.short_axis_mm is None or self.short_axis_ref_mm is None:
            return None
        return abs(self.short_axis_mm - self.short_axis_ref_mm)

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "seconds"}
        d["long_axis_error_mm"] = self.long_axis_error_mm
        d["short_axis_error_mm"] = self.short_axis_error_mm
        d["seconds_per_click"] = float(np.mean(self.seconds)) if self.seconds else None
        return d


def evaluate_case(volume: Volume, reference: np.ndarray, segmenter: Segmenter, name: str = "",
                  clicks: int = 3, seed: int = 0, node: bool = False,
                  prompt: str = "click") -> CaseResult:
    """Segment one lesion from its primary prompt and from ``clicks`` further prompts.

    Dice and axis errors use the primary prompt (see :func:`make_prompt`; a line's offsets are
    seeded by ``seed`` and the case's name); consistency is the mean pairwise Dice of the masks
    from the further prompts (a prompt that finds no lesion counts as an empty mask).
    """
    ref = np.asarray(reference, bool)
    ref_axes = _measure(volume, ref, node=node)
    res = CaseResult(name, 0.0)
    if ref_axes is not None:
        res.long_axis_ref_mm, res.short_axis_ref_mm = ref_axes
    rng = np.random.default_rng(_name_seed(name, seed))

    def run(p: Prompt):
        t0 = time.perf_counter()
        try:
            m = segmenter.segment(volume, p, node=node)
        except NoLesionError:
            m = None
        res.seconds.append(time.perf_counter() - t0)
        return m

    m = run(make_prompt(prompt, volume, ref, rng if prompt == "line" else None, node=node))
    if m is None:
        res.no_lesion = True
    else:
        res.dice = dice(m.full(), ref)
        res.leak_bounded = m.leak_bounded
        axes = _measure(volume, m.mask, offset=m.offset, node=node)
        if axes is not None:
            res.long_axis_mm, res.short_axis_mm = axes
    if clicks >= 2:
        masks = []
        variants = ([Prompt(point_zyx=c) for c in inner_clicks(volume, ref, clicks, rng)]
                    if prompt == "click" else
                    [make_prompt(prompt, volume, ref, rng, node=node) for _ in range(clicks)])
        for p in variants:
            mm = run(p)
            masks.append(np.zeros(volume.shape, bool) if mm is None else mm.full())
        pairs = [dice(masks[i], masks[j]) if (masks[i].any() or masks[j].any()) else 0.0
                 for i in range(len(masks)) for j in range(i + 1, len(masks))]
        res.consistency_dice = float(np.mean(pairs)) if pairs else None
    return res


def _name_seed(name: str, seed: int) -> int:
    return int(hashlib.sha256(f"{seed}:{name}".encode()).hexdigest()[:8], 16)


def _stat(values, fn) -> float | None:
    v = [x for x in values if x is not None]
    return float(fn(v)) if v else None


def size_bin(long_axis_mm: float | None) -> str | None:
    """Name (``"10-20"``, ..., ``">100"``) of the :data:`SIZE_BINS_MM` bin of a long axis;
    None below the first bin or without a measurement."""
    if long_axis_mm is None:
        return None
    for lo, hi in SIZE_BINS_MM:
        if lo <= long_axis_mm < hi:
            return f">{lo:g}" if hi == float("inf") else f"{lo:g}-{hi:g}"
    return None


def summarise_by_size(results: list[CaseResult]) -> dict[str, dict[str, Any]]:
    """Dice, relative long-axis error and consistency per :data:`SIZE_BINS_MM` bin of the
    reference long axis (bins without a lesion are left out)."""
    out: dict[str, dict[str, Any]] = {}
    for lo, _ in SIZE_BINS_MM:
        key = size_bin(lo)
        part = [r for r in results if size_bin(r.long_axis_ref_mm) == key]
        if not part:
            continue
        la_rel = [symmetric_relative_error(r.long_axis_mm or 0.0, cast(float, r.long_axis_ref_mm))
                  for r in part]
        out[key] = {  # type: ignore[index]
            "n": len(part),
            "dice_mean": _stat([r.dice for r in part], np.mean),
            "long_axis_error_mm_median": _stat([r.long_axis_error_mm for r in part], np.median),
            "long_axis_rel_error_median": _stat(la_rel, np.median),
            "consistency_dice_mean": _stat([r.consistency_dice for r in part], np.mean),
        }
    return out


def summarise(name: str, split: str, results: list[CaseResult], skipped_small: int,
              segmenter: Segmenter) -> dict[str, Any]:
    """Dataset-level metrics with the ULS23-style keys, and per size bin (``by_size``)."""
    la = [r.long_axis_error_mm for r in results]
    sa = [r.short_axis_error_mm for r in results]
    la_rel = [symmetric_relative_error(r.long_axis_mm or 0.0, r.long_axis_ref_mm)
              for r in results if r.long_axis_ref_mm is not None]
    sa_rel = [symmetric_relative_error(r.short_axis_mm or 0.0, r.short_axis_ref_mm)
              for r in results if r.short_axis_ref_mm is not None]
    secs = [s for r in results for s in r.seconds]
    return {
        "dataset": name,
        "split": split,
        "segmenter": segmenter.name,
        "segmenter_version": segmenter.version,
        "n": len(results),
        "n_skipped_small": skipped_small,
        "n_no_lesion": sum(r.no_lesion for r in results),
        "n_leak_bounded": sum(r.leak_bounded for r in results),
        "dice_mean": _stat([r.dice for r in results], np.mean),
        "dice_median": _stat([r.dice for r in results], np.median),
        "long_axis_error_mm_median": _stat(la, np.median),
        "long_axis_error_mm_mean": _stat(la, np.mean),
        "short_axis_error_mm_median": _stat(sa, np.median),
        "long_axis_rel_error_median": _stat(la_rel, np.median),
        "short_axis_rel_error_median": _stat(sa_rel, np.median),
        "consistency_dice_mean": _stat([r.consistency_dice for r in results], np.mean),
        "seconds_per_click": _stat(secs, np.mean),
        "by_size": summarise_by_size(results),
    }


def evaluate_dataset(dataset: Dataset, segmenter: Segmenter, min_diameter_mm: float | None = None,
                     clicks: int = 3, seed: int = 0, per_case: bool = False,
                     progress: Callable[[str], None] | None = None,
                     slice_mm: float | None = None, prompt: str = "click") -> dict[str, Any]:
    """Evaluate a segmenter on every case of a dataset.

    Parameters
    ----------
    dataset : Dataset
    segmenter : Segmenter
    min_diameter_mm : float, optional
        Skip lesions whose reference long axis (measured on the reference mask) is smaller.
    clicks : int
        Further prompts per lesion for the consistency Dice (0 or 1 disables it).
    seed : int
        Seed of the click positions and line offsets.
    per_case : bool
        Include a ``cases`` list in the result.
    slice_mm : float, optional
        Re-slice every lesion first as thick-slice CT of about this thickness
        (:func:`reslice_case`, one lesion in memory at a time); the result is named
        ``NAME@SLICE_MMmm`` and counts the lesions left out (``n_not_resliced``) and, of those
        evaluated, the ones that reach the first or last slice (``n_cut_by_stack``).
    prompt : {"click", "line", "box"}
        What each lesion is segmented from (see the module docstring); the result says it.

    Returns
    -------
    dict
        Keys ``n``, ``dice_mean``, ``long_axis_error_mm_median``, ``long_axis_rel_error_median``,
        ``short_axis_error_mm_median``, ``consistency_dice_mean``, ``seconds_per_click``,
        ``by_size`` and more (see :func:`summarise`).
    """
    if prompt not in PROMPT_KINDS:
        raise ValueError(f"prompt must be one of {', '.join(PROMPT_KINDS)}, got {prompt!r}")
    results, skipped, not_resliced, cut = [], 0, 0, 0
    for case in dataset.cases:
        vol, ref = case.load()
        if slice_mm is not None:
            thick = reslice_case(vol, ref, slice_mm)
            if thick is None:
                not_resliced += 1
                continue
            vol, ref = thick
        if not ref.any():
            skipped += 1
            continue
        if min_diameter_mm:
            axes = _measure(vol, ref, node=case.node)
            if axes is None:
                raise SegmentationError("--min-diameter needs recist_tool.measure")
            if axes[0] < min_diameter_mm:
                skipped += 1
                continue
        results.append(evaluate_case(vol, ref, segmenter, case.name, clicks, seed, node=case.node,
                                     prompt=prompt))
        cut += bool(ref[0].any() or ref[-1].any())
        if progress:
            progress(case.name)
    name = dataset.name if slice_mm is None else f"{dataset.name}@{slice_mm:g}mm"
    out = summarise(name, dataset.split, results, skipped, segmenter)
    out["min_diameter_mm"] = min_diameter_mm
    out["prompt"] = prompt
    if slice_mm is not None:
        out.update(slice_mm=slice_mm, n_not_resliced=not_resliced,
                   n_cut_by_stack=cut)
    if per_case:
        out["cases"] = [r.to_dict() for r in results]
    return out
