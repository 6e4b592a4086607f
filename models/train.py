"""Train the ``unet`` lesion segmenter from a fixed seed; writes ``models/unet_lesion.pt``.

Data (all from ``../shared/data``, nothing downloaded):

* LIDC-IDRI nodule crops with consensus masks, **train split only** (patients whose split is
  ``train`` under :func:`recist_tool.segment.evaluate.lidc_split`; validation patients are never
  read here).
* Synthetic lesions painted into real CT backgrounds (pyradiomics lung1, the TotalSegmentator
  CT, the tilted GE head CT) and into the lesion-free **sample-data phantoms** (the anatomy of
  ``recist_tool.sample_data`` on two of the sample trial's series geometries, with and without
  contrast; :data:`PHANTOM_SHARE` of the draws): lung nodules (solid, part-solid, cavitating,
  spiculated) in aerated lung, soft-tissue and hypodense liver-like metastases in soft tissue,
  lymph nodes in fat; spheres to lobulated ellipsoids, sharp to soft edges; thick-slice blur,
  noise, intensity and click-position augmentation. Nothing is painted, and no negative click
  falls, within :data:`KEEP_AWAY_MM` of a background's labelled real tumour (lung1's): the
  unlabelled real tumour stays out of the 48 mm training boxes (only the 96 mm boxes of large
  lesions can reach it).
* A few negative clicks (soft tissue without a lesion) with an empty target.

Run (the shipped weights: two runs, MODEL_CARD.md "Recipe"; about 110 min on a 2-core box with
AVX-512, about 3.5 h on an AVX2-only one)::

    python models/train.py --iterations 20000 --finetune-iterations 4000 --threads 2  # run 1
    mv models/unet_lesion.pt models/unet_lesion_run1.pt; rm models/unet_lesion.ckpt
    python models/train.py --init models/unet_lesion_run1.pt --iterations 0 \
        --finetune-iterations 3000 --lidc-sampling size --threads 2                   # run 2

The main stage (``--iterations``, cosine schedule from ``--lr``) mixes LIDC crops and synthetic
lesions; a fine-tuning stage (``--finetune-iterations``, a fresh cosine schedule from
``--finetune-lr``) follows with :data:`FINETUNE_LIDC_FRACTION` LIDC samples. A shorter run is the
same recipe with smaller counts (the schedules follow them) and ``--max-minutes`` as a hard
wall-clock cap. Last, the lesion probability threshold is calibrated on the LIDC train split
(:func:`calibrate_threshold`, a few minutes) and stored with the weights. Training resumes from
the checkpoint beside ``--out``; ``--init WEIGHTS`` starts from earlier weights instead of a
random network (a further stage: ``--iterations 0 --finetune-iterations N``), and their SHA-256
is recorded in the new weights' metadata. A CUDA GPU is used when present. ``--channels`` (network
width), ``--precision`` (bf16 autocast), ``--lidc-sampling`` (uniform, or in proportion to the
nodule's long axis), ``--thick-slab-share`` (LIDC draws re-sliced as thick-slice CT) and
``--lidc-outside`` (target beyond a LIDC crop's end slices: 0, or unknown) default to run 1's
8,16,32,64, fp32, uniform, 0 and zero; other values give run 2 and the recipes tried and not
shipped (MODEL_CARD.md). ``--compile`` runs the training steps through ``torch.compile`` (about
30 % faster on a CPU; the weights are the same network's).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from recist_tool.io import load_volume  # noqa: E402
from recist_tool.sample_data.generate import lesion_free_volume  # noqa: E402
from recist_tool.segment.evaluate import lidc_split, thick_slices  # noqa: E402
from recist_tool.segment.grid import WorkGrid  # noqa: E402
from recist_tool.segment.unet import (  # noqa: E402
    CHANNELS,
    PATCH_SHAPE,
    WORK_SPACING,
    build_network,
    make_input,
)
from recist_tool.volume import Volume  # noqa: E402

#: Share of samples drawn from the LIDC train crops; synthetic lesions fill the rest up to
#: 95 %, negative clicks the last 5 %.
LIDC_FRACTION = 0.5
#: Share of LIDC samples in the fine-tuning stage that follows the main schedule: the real
#: outlines (ground glass, spiculae and all) set the boundary convention the network ends with.
FINETUNE_LIDC_FRACTION = 0.8
#: ``--lidc-sampling size``: a crop is drawn with probability proportional to its reference long
#: axis clipped to this range (mm), so the measurable (>= 10 mm) nodules, whose outlines RECIST
#: reads, are drawn about twice as often as under uniform sampling and the tiny ones less.
SIZE_WEIGHT_MM = (6.0, 30.0)
#: ``--thick-slab-share``: slab thicknesses (mm) of LIDC crops re-sliced as thick-slice CT.
#: The LIDC slices are 0.45-2.5 mm thick, trial CT is often 5 mm; see :func:`thick_slab`.
THICK_SLAB_MM = (3.0, 5.5)

#: Real CT backgrounds for the synthetic lesions: (image, label of its real lesions or None).
#: Lesions and negative clicks are kept :data:`KEEP_AWAY_MM` from a labelled real lesion, so that
#: the 48 mm training boxes do not hold an unlabelled real tumour.
BACKGROUNDS = [
    ("lesions/pyradiomics_lung1/image.nrrd", "lesions/pyradiomics_lung1/label.nrrd"),
    ("dicom/totalsegmentator_ct_j2k/dicom", None),
    ("dicom/dcm_qa_ct/GE_tilt_variable_spacing", None),
]
KEEP_AWAY_MM = 40.0
#: The sample-data phantoms (``recist_tool.sample_data``'s anatomy, lesion-free) as further
#: backgrounds: (pixel spacing, slice thickness, contrast), as in the sample trial's series.
PHANTOMS = [(0.8203125, 2.5, True), (0.859375, 5.0, False)]
#: Share of synthetic lesions and negative clicks drawn on a phantom rather than on real CT.
PHANTOM_SHARE = 0.25


def load_lidc_train(data: Path) -> list[tuple[object, np.ndarray]]:
    """(Volume, mask) of every LIDC crop whose patient is in the train split."""
    out = []
    for img in sorted((data / "lesions/lidc_nodules/image").glob("*.nii.gz")):
        if lidc_split(img.name) != "train":
            continue
        v = load_volume(img)
        m = np.asarray(load_volume(data / "lesions/lidc_nodules/mask" / img.name).array) > 0
        if m.sum() >= 4:
            out.append((v, m))
    return out


def lidc_probabilities(lidc: list[tuple[Volume, np.ndarray]], sampling: str) -> np.ndarray | None:
    """Probability of drawing each LIDC crop, or None for uniform draws.

    Parameters
    ----------
    lidc : list of (Volume, numpy.ndarray)
        The crops and their reference masks, as from :func:`load_lidc_train`.
    sampling : {"uniform", "size"}
        ``size``: proportional to the mask's RECIST long axis clipped to :data:`SIZE_WEIGHT_MM`.

    Returns
    -------
    numpy.ndarray or None
        Probabilities summing to 1, one per crop; None for ``uniform``.
    """
    if sampling == "uniform":
        return None
    if sampling != "size":
        raise ValueError(f"unknown LIDC sampling {sampling!r}: uniform or size")
    from recist_tool.measure.mask import measure_mask

    long_axes = np.array([measure_mask(v, m).long_axis_mm for v, m in lidc], float)
    w = np.clip(long_axes, *SIZE_WEIGHT_MM)
    return w / w.sum()


def inner_points(mask: np.ndarray, spacing, frac: float = 0.4) -> np.ndarray:
    """Voxels of the mask at least ``frac`` of its maximal depth (mm) from its edge."""
    d = ndimage.distance_transform_edt(np.pad(mask, 1), sampling=spacing)[1:-1, 1:-1, 1:-1]
    pts = np.argwhere(d >= frac * d.max())
    return pts if len(pts) else np.argwhere(mask)


def thick_slab(rng, vol: Volume, mask: np.ndarray, slab_mm=THICK_SLAB_MM
               ) -> tuple[Volume, np.ndarray] | None:
    """A LIDC crop re-sliced as thick-slice CT (:func:`~recist_tool.segment.evaluate.thick_slices`),
    or None where it cannot be.

    ``k`` thin slices per thick one, with ``k * dz`` within ``slab_mm``, and the phase of the
    first thick slice are drawn at random. None when no ``k >= 2`` fits ``slab_mm``, fewer than
    two thick slices fit the crop, the crop's slices are unevenly spaced, or the thick mask has
    fewer than 4 voxels.
    """
    dz = vol.spacing[0]
    ks = [k for k in range(2, 16) if slab_mm[0] <= k * dz <= slab_mm[1]]
    if not ks or not vol.is_uniform:
        return None
    k = int(rng.choice(ks))
    out = thick_slices(vol, mask, k, int(rng.integers(k)))
    return None if out is None or out[1].sum() < 4 else out


def lidc_sample(rng, item, outside: str = "zero"):
    """A training box around a click inside a LIDC crop's nodule: image, target, click, spacing.

    The box reaches past the crop's first and last slices, where the image repeats the edge
    slice; the crops end about where their nodule does (355 of the 654 have nodule in their first
    or last slice). With ``outside="zero"`` (run 1's recipe) the target is 0 there, which
    teaches the network that a repeated slice of nodule is not nodule; ``"ignore"`` makes it
    NaN, unknown, left out of the loss. (In-plane the crops have lung around their nodule.)
    """
    if outside not in ("zero", "ignore"):
        raise ValueError(f"unknown outside {outside!r}: zero or ignore")
    vol, mask = item
    pts = inner_points(mask, vol.spacing, rng.uniform(0.0, 0.6))
    click_idx = pts[rng.integers(len(pts))] + rng.uniform(-0.4, 0.4, 3)
    click = vol.index_to_lps(click_idx)
    jitter = vol.direction @ rng.uniform(-3, 3, 3)
    grid = WorkGrid.centred(vol, click + jitter, WORK_SPACING, PATCH_SHAPE)
    img = grid.sample(vol, mode="nearest")
    tgt = grid.sample(vol, mask.astype(np.float32), mode="constant") > 0.5
    if outside == "ignore":  # the box is aligned with the crop: one native z per box slice
        z = vol.lps_to_index(grid.work_to_lps(np.c_[np.arange(grid.shape[0]),
                                                    np.zeros((grid.shape[0], 2))]))[:, 0]
        beyond = (z < -0.5) | (z > vol.shape[0] - 0.5)
        tgt = np.where(beyond[:, None, None], np.nan, tgt).astype(np.float32)
    return img, tgt, grid.lps_to_work(click), WORK_SPACING


def _shape_field(rng, shape, spacing, centre, radii, lobes: float):
    """Signed 'radius ratio' field: < 1 inside a lobulated ellipsoid."""
    zz, yy, xx = [(np.arange(n) - c) * s for n, c, s in zip(shape, centre, spacing, strict=True)]
    p = np.stack(np.meshgrid(zz, yy, xx, indexing="ij"), -1)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    u = (p @ q) / np.asarray(radii)
    rho = np.linalg.norm(u, axis=-1)
    if lobes > 0:
        dirn = u / np.maximum(rho[..., None], 1e-6)
        pert = np.zeros(shape)
        for _ in range(4):
            f = rng.normal(size=3) * rng.uniform(1.0, 3.0)
            pert += np.sin(dirn @ f + rng.uniform(0, 2 * np.pi))
        rho = rho * (1.0 + lobes * pert / 4.0)
    return rho


def synth_sample(rng, bgs):
    """A synthetic lesion painted into a real CT background patch."""
    big = rng.random() < 0.15
    scale = 2.0 if big else 1.0
    sp = tuple(s * scale for s in WORK_SPACING)
    kind = rng.choice(["solid", "solid", "partsolid", "cavity", "spicule", "liver", "node", "soft"])
    lung = kind in ("solid", "partsolid", "cavity", "spicule")
    for _ in range(50):
        bg = pick_background(rng, bgs)
        vol = bg.volume
        # nodes in fat (as in the mediastinum and axillae), other lesions in soft tissue: a
        # lesion painted into tissue of its own density would be invisible
        pts = bg.lung if lung else bg.fat if kind == "node" else bg.soft
        if len(pts):
            break
    centre_idx = pts[rng.integers(len(pts))] + rng.uniform(-0.5, 0.5, 3)
    centre = vol.index_to_lps(centre_idx)
    grid = WorkGrid.centred(vol, centre + vol.direction @ rng.uniform(-4, 4, 3) * scale, sp,
                            PATCH_SHAPE)
    bg = grid.sample(vol, mode="nearest")
    c_work = grid.lps_to_work(centre)
    r0 = rng.uniform(2.5, 16.0) * scale if not big else rng.uniform(18, 38)
    if kind == "node":
        radii = r0 * np.array([rng.uniform(1.0, 1.6), 1.0, rng.uniform(0.45, 0.8)])
    else:
        radii = r0 * rng.uniform(0.7, 1.3, 3)
    lobes = rng.choice([0.0, rng.uniform(0.05, 0.35)])
    rho = _shape_field(rng, bg.shape, sp, c_work, radii, lobes)
    mask = rho < 1.0
    if kind == "spicule":
        for _ in range(rng.integers(3, 8)):
            d = rng.normal(size=3)
            d /= np.linalg.norm(d)
            zz, yy, xx = [(np.arange(n) - c) * s for n, c, s in zip(bg.shape, c_work, sp, strict=True)]
            p = np.stack(np.meshgrid(zz, yy, xx, indexing="ij"), -1)
            t = p @ d
            perp = np.linalg.norm(p - t[..., None] * d, axis=-1)
            mask |= (perp < rng.uniform(0.5, 1.2)) & (t > 0) & (t < r0 * rng.uniform(1.2, 1.8))
    local = float(np.median(bg[mask])) if mask.any() else float(np.median(bg))
    val = np.zeros(bg.shape, np.float32)
    if kind in ("solid", "spicule", "cavity"):
        val[:] = rng.uniform(-60, 70)
    elif kind == "partsolid":
        val[:] = rng.uniform(-650, -350)
        val[rho < rng.uniform(0.3, 0.7)] = rng.uniform(-60, 40)
    elif kind == "liver":
        val[:] = local - rng.uniform(25, 90)
    elif kind == "node":
        val[:] = rng.uniform(15, 70)
    else:
        val[:] = local + rng.choice([-1, 1]) * rng.uniform(30, 80)
    if kind == "cavity":
        val[rho < rng.uniform(0.35, 0.75)] = rng.uniform(-1000, -850)
    val += ndimage.gaussian_filter(rng.normal(0, 1, bg.shape), 1.0).astype(np.float32) * rng.uniform(0, 40)
    edge = rng.uniform(0.2, 1.6)
    alpha = ndimage.gaussian_filter(mask.astype(np.float32), edge / np.asarray(sp))
    img = bg * (1 - alpha) + val * alpha
    if rng.random() < 0.5:  # thick-slice partial volume
        img = ndimage.gaussian_filter1d(img, rng.uniform(0.5, 2.0) / scale, axis=0)
    pts = inner_points(mask, sp, rng.uniform(0.0, 0.6))
    if kind == "cavity":  # clicks on the wall, not in the air
        ok = img[tuple(pts.T)] > -400
        pts = pts[ok] if ok.any() else pts
    click = pts[rng.integers(len(pts))] + rng.uniform(-0.4, 0.4, 3)
    return img.astype(np.float32), mask, click, sp


def negative_sample(rng, bgs):
    bg = pick_background(rng, bgs)
    vol = bg.volume
    c = vol.index_to_lps(bg.soft[rng.integers(len(bg.soft))])
    grid = WorkGrid.centred(vol, c, WORK_SPACING, PATCH_SHAPE)
    img = grid.sample(vol, mode="nearest")
    return img, np.zeros(img.shape, bool), grid.lps_to_work(c), WORK_SPACING


class Background(NamedTuple):
    """A CT background: candidate lesion centres (voxel indices) by tissue, and its weight."""

    volume: Volume
    lung: np.ndarray
    soft: np.ndarray
    fat: np.ndarray
    weight: float


def _candidate_points(v, keep_out: np.ndarray | None = None):
    """Voxel indices of aerated lung, soft tissue and fat (20 000 each at most) of a volume."""
    a = np.asarray(v.array)
    margin = (2, 24, 24)
    inner = np.zeros(a.shape, bool)
    inner[margin[0]:-margin[0], margin[1]:-margin[1], margin[2]:-margin[2]] = True
    if keep_out is not None:
        inner &= ~keep_out
    sm = ndimage.uniform_filter(a.astype(np.float32), (1, 5, 5))
    lung = np.argwhere(inner & (sm > -930) & (sm < -750))
    soft = np.argwhere(inner & (sm > 20) & (sm < 180))
    fat = np.argwhere(inner & (sm > -150) & (sm < -60))
    rng = np.random.default_rng(0)
    return tuple(p[rng.permutation(len(p))[:20000]] for p in (lung, soft, fat))


def load_backgrounds(data: Path):
    """The :class:`Background` of every real CT of :data:`BACKGROUNDS` found under ``data``,
    then the :data:`PHANTOMS`, which together get :data:`PHANTOM_SHARE` of the draws."""
    out = []
    for rel, label in BACKGROUNDS:
        p = data / rel
        if not p.exists():
            continue
        v = load_volume(p)
        keep_out = None
        if label is not None and (data / label).exists():
            lab = np.asarray(load_volume(data / label).array) > 0
            keep_out = ndimage.distance_transform_edt(~lab, sampling=v.spacing) < KEEP_AWAY_MM
        out.append(Background(v, *_candidate_points(v, keep_out), 1.0))
    n_real = len(out)
    for i, (px, dz, contrast) in enumerate(PHANTOMS):
        v = lesion_free_volume(px, dz, contrast, seed=i)
        w = PHANTOM_SHARE / (1 - PHANTOM_SHARE) * max(n_real, 1) / len(PHANTOMS)
        out.append(Background(v, *_candidate_points(v), w))
    return out


def pick_background(rng, bgs):
    """One background, drawn in proportion to its weight."""
    w = np.array([b.weight for b in bgs])
    return bgs[int(rng.choice(len(bgs), p=w / w.sum()))]


def augment(rng, img, tgt, click):
    if rng.random() < 0.5:
        img, tgt = img[:, :, ::-1], tgt[:, :, ::-1]
        click = np.array([click[0], click[1], img.shape[2] - 1 - click[2]])
    if rng.random() < 0.5:
        img, tgt = img[:, ::-1], tgt[:, ::-1]
        click = np.array([click[0], img.shape[1] - 1 - click[1], click[2]])
    img = img * rng.uniform(0.95, 1.05) + rng.uniform(-20, 20)
    img = img + rng.normal(0, rng.uniform(0, 20), img.shape)
    return np.ascontiguousarray(img, np.float32), np.ascontiguousarray(tgt), click


def make_batch(rng, n, lidc, bgs, lidc_fraction: float = LIDC_FRACTION, lidc_p=None,
               thick_share: float = 0.0, lidc_outside: str = "zero"):
    """``n`` training samples: inputs ``(n, 2, *PATCH_SHAPE)`` and targets ``(n, 1, ...)``
    (NaN where unknown: outside a LIDC crop with ``lidc_outside="ignore"``)."""
    xs, ys = [], []
    for _ in range(n):
        r = rng.random()
        if r < lidc_fraction and lidc:
            k = rng.integers(len(lidc)) if lidc_p is None else rng.choice(len(lidc), p=lidc_p)
            item = lidc[k]
            if thick_share > 0 and rng.random() < thick_share:
                item = thick_slab(rng, *item) or item
            img, tgt, click, sp = lidc_sample(rng, item, lidc_outside)
        elif r < 0.95:
            img, tgt, click, sp = synth_sample(rng, bgs)
        else:
            img, tgt, click, sp = negative_sample(rng, bgs)
        img, tgt, click = augment(rng, img, tgt, click)
        xs.append(make_input(img, click, sp))
        ys.append(tgt[None].astype(np.float32))
    return np.stack(xs), np.stack(ys)


#: Thresholds tried by :func:`calibrate_threshold`.
CALIBRATION_THRESHOLDS = (0.2, 0.25, 0.3, 0.4, 0.5)


def calibrate_threshold(weights: Path, data: Path, threads: int) -> tuple[float, dict]:
    """The probability threshold with the best mean Dice on the LIDC **train** split.

    Centre clicks on the train crops whose reference long axis is at least 10 mm; the validation
    patients are not read. Returns the threshold and the mean Dice of every one tried. The
    network's answer to a given input is computed once for all thresholds (only the recentred
    second prediction, whose centre depends on the threshold, may differ between them).
    """
    import hashlib

    from recist_tool.segment.evaluate import discover_dataset, evaluate_dataset
    from recist_tool.segment.unet import UNetSegmenter

    class _Memoised(UNetSegmenter):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.cache: dict[bytes, np.ndarray] = {}

        def predict_patch(self, x: np.ndarray) -> np.ndarray:
            key = hashlib.sha1(np.ascontiguousarray(x).tobytes()).digest()
            if key not in self.cache:
                self.cache[key] = super().predict_patch(x)
            return self.cache[key]

    ds = discover_dataset(data / "lesions/lidc_nodules", split="train")
    seg = _Memoised(weights, threads=threads)
    scores = {}
    for t in CALIBRATION_THRESHOLDS:
        seg.threshold = t
        scores[t] = evaluate_dataset(ds, seg, min_diameter_mm=10, clicks=0)["dice_mean"]
        print(f"calibration: threshold {t} train Dice {scores[t]:.4f}", flush=True)
    return max(scores, key=lambda t: scores[t]), scores


def load_init(path: Path) -> dict:
    """Weights to start a further training stage from (``--init``): their float32 state dict,
    channels, metadata and the SHA-256 of the file (recorded in the new weights' metadata)."""
    import hashlib

    import torch

    st = torch.load(path, map_location="cpu", weights_only=True)
    meta = st.get("meta", {})
    return {"state_dict": {k: v.float() for k, v in st["state_dict"].items()},
            "channels": tuple(meta.get("channels", CHANNELS)), "meta": meta,
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def parse_channels(text: str) -> tuple[int, ...]:
    """``--channels`` ("16,32,64,128") as a tuple; ValueError unless every working box side
    (:data:`PATCH_SHAPE`) is divisible by the pooling of its deepest level."""
    try:
        channels = tuple(int(c) for c in text.split(","))
    except ValueError:
        raise ValueError(f"--channels: {text!r} is not a comma-separated list of integers") from None
    if len(channels) < 2 or min(channels) < 1:
        raise ValueError(f"--channels: {text!r} needs two or more positive channel counts")
    pool = 2 ** (len(channels) - 1)
    if any(n % pool for n in PATCH_SHAPE):
        raise ValueError(f"--channels: {len(channels)} levels need a working box divisible by "
                         f"{pool}; it is {PATCH_SHAPE}")
    return channels


def resolve_precision(choice: str, device: str, cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """``bf16`` or ``fp32`` for ``--precision`` (``auto``: bf16 where the hardware has it).

    On 2 CPU cores with native bf16 (avx512_bf16) a training step is about 1.6x faster under
    bf16 autocast (0.124 against 0.202 s for the shipped network, 0.197 against 0.309 s for
    channels 16/32/64/128, batch 2); CPUs without it would emulate bf16 and run slower, so
    ``auto`` keeps fp32 there (and where ``cpuinfo`` cannot be read).
    """
    if choice != "auto":
        return choice
    if device.startswith("cuda"):
        return "bf16"
    try:
        flags = cpuinfo.read_text()
    except OSError:
        return "fp32"
    return "bf16" if ("avx512_bf16" in flags or "amx_bf16" in flags) else "fp32"


def _save(out: Path, state_dict, meta: dict) -> None:
    import torch

    torch.save({"state_dict": state_dict, "meta": meta}, out)
    out.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")


def _calibrate_into(out: Path, data: Path, threads: int) -> None:
    import torch

    t0 = time.time()
    threshold, scores = calibrate_threshold(out, data, threads)
    st = torch.load(out, map_location="cpu", weights_only=True)
    meta = dict(st["meta"], threshold=threshold,
                calibration={"split": "LIDC train, centre clicks, long axis >= 10 mm",
                             "dice_mean": {str(k): round(v, 4) for k, v in scores.items()},
                             "minutes": round((time.time() - t0) / 60, 1)})
    _save(out, st["state_dict"], meta)
    print(json.dumps(meta), flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=ROOT / "models" / "unet_lesion.pt")
    ap.add_argument("--seed", type=int, default=20261124)
    ap.add_argument("--iterations", type=int, default=20000)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--finetune-iterations", type=int, default=4000)
    ap.add_argument("--finetune-lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-minutes", type=float, default=120.0)
    ap.add_argument("--checkpoint-every", type=int, default=250)
    ap.add_argument("--device", default=None)
    ap.add_argument("--channels", default=None,
                    help="channels of the encoder levels, comma-separated (default "
                         f"{','.join(str(c) for c in CHANNELS)}, or those of --init)")
    ap.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="fp32",
                    help="bf16 autocast of the network's forward pass (weights, optimiser and "
                         "loss stay fp32); auto: bf16 on CUDA and on CPUs with native bf16 "
                         "(avx512_bf16/amx_bf16), fp32 elsewhere. Default fp32: the shipped "
                         "weights were trained so")
    ap.add_argument("--lidc-sampling", choices=("uniform", "size"), default="uniform",
                    help="how LIDC crops are drawn: uniform (the shipped recipe) or in "
                         "proportion to their long axis (SIZE_WEIGHT_MM)")
    ap.add_argument("--thick-slab-share", type=float, default=0.0,
                    help="share of LIDC draws re-sliced as thick-slice CT (thick_slab, "
                         "THICK_SLAB_MM); default 0, as run 1 was trained")
    ap.add_argument("--lidc-outside", choices=("zero", "ignore"), default="zero",
                    help="target of a training box beyond its LIDC crop (the image repeats the "
                         "crop's edge there): zero (run 1's recipe) or ignore (left out of the "
                         "loss)")
    ap.add_argument("--compile", action="store_true",
                    help="run the training steps through torch.compile (a C++ compiler is "
                         "needed; about a minute to compile, then a CPU step costs 0.22 s "
                         "against 0.31 s on an AVX2 box); the weights are those of the plain "
                         "network, so inference is unchanged")
    ap.add_argument("--init", type=Path, default=None,
                    help="start from these weights (a weight file written by this script) "
                         "instead of a random network: a further training stage on top of "
                         "earlier weights; their channels are used")
    ap.add_argument("--calibrate-only", action="store_true",
                    help="only (re)calibrate the threshold of the weights at --out")
    args = ap.parse_args(argv)
    lidc_dir = args.data / "lesions/lidc_nodules"
    if not lidc_dir.is_dir():
        ap.error(f"the LIDC crops are needed for training and calibration: {lidc_dir} not found "
                 f"(--data)")
    if args.compile and not any(shutil.which(c) for c in ("g++", "c++", "clang++")):
        ap.error("--compile: no C++ compiler found (torch.compile needs one on a CPU); "
                 "install g++ or leave --compile out")
    if args.calibrate_only and not args.out.is_file():
        ap.error(f"--calibrate-only: no weights at {args.out}")
    if not args.out.parent.is_dir():
        ap.error(f"--out: folder {args.out.parent} does not exist")
    if args.init is not None and not args.init.is_file():
        ap.error(f"--init: no weights at {args.init}")
    try:
        channels = parse_channels(args.channels) if args.channels else None
    except ValueError as exc:
        ap.error(str(exc))
    if args.calibrate_only:
        _calibrate_into(args.out, args.data, args.threads)
        return 0
    init = None
    if args.init is not None:
        try:
            init = load_init(args.init)
        except Exception as exc:  # not a weight file of this script: say so in one line
            why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            ap.error(f"--init: {args.init} is not a weight file of this script ({why})")
        if channels is not None and channels != init["channels"]:
            ap.error(f"--init: {args.init} has channels "
                     f"{','.join(map(str, init['channels']))}, not {args.channels}")
        channels = init["channels"]
    channels = channels or CHANNELS

    import torch

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    precision = resolve_precision(args.precision, device)
    rng = np.random.default_rng(args.seed)
    t0 = time.time()
    lidc = load_lidc_train(args.data)
    lidc_p = lidc_probabilities(lidc, args.lidc_sampling)
    bgs = load_backgrounds(args.data)
    print(f"data: {len(lidc)} LIDC train crops, {len(bgs)} backgrounds "
          f"({time.time() - t0:.0f} s)", flush=True)
    net = build_network(channels)
    if init is not None:
        net.load_state_dict(init["state_dict"])
    # channels-last activations: oneDNN's 3D convolutions run about 20 % faster on an AVX2 CPU
    net = net.to(device, memory_format=torch.channels_last_3d)
    n_params = sum(p.numel() for p in net.parameters())
    forward = torch.compile(net) if args.compile else net  # same parameters as net
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    ckpt = args.out.with_suffix(".ckpt")
    start = 0
    minutes_before = 0.0  # training minutes of earlier runs resumed from the checkpoint
    if ckpt.exists():
        st = torch.load(ckpt, map_location="cpu", weights_only=False)
        made_with = tuple(st.get("channels", CHANNELS))
        if made_with != channels:
            ap.error(f"--channels: the checkpoint {ckpt} was made with channels "
                     f"{','.join(map(str, made_with))}; pass those or remove the checkpoint")
        for opt_name, default in (("lidc_sampling", "uniform"), ("thick_slab_share", 0.0),
                                  ("lidc_outside", "zero")):
            made_so = st.get(opt_name, default)
            if made_so != getattr(args, opt_name):
                flag = "--" + opt_name.replace("_", "-")
                ap.error(f"{flag}: the checkpoint {ckpt} was made with {flag} {made_so}; "
                         f"pass that or remove the checkpoint")
        started_from = st.get("init_sha256")
        if started_from != (init["sha256"] if init else None):
            made = (f"from --init weights {started_from[:12]}" if started_from
                    else "without --init")
            ap.error(f"--init: the checkpoint {ckpt} was made {made}; remove it to start this "
                     f"stage (a finished run leaves its checkpoint beside --out)")
        net.load_state_dict(st["state_dict"])
        opt.load_state_dict(st["opt"])
        start = st["iteration"]
        rng = st["rng"]
        minutes_before = float(st.get("minutes", 0.0))
        print(f"resumed at iteration {start}", flush=True)
    print(f"network: {n_params} parameters, channels {channels}; device {device}; "
          f"threads {args.threads}; precision {precision}"
          f"{'; torch.compile' if args.compile else ''}", flush=True)
    t_start = time.time()
    ema = None
    done = start
    total = args.iterations + args.finetune_iterations
    for it in range(start, total):
        if it < args.iterations:
            lr = args.lr * 0.5 * (1 + math.cos(math.pi * it / args.iterations))
            lr = lr * min(1.0, (it + 1) / 200)
            fraction = LIDC_FRACTION
        else:
            j = it - args.iterations
            lr = args.finetune_lr * 0.5 * (1 + math.cos(math.pi * j / args.finetune_iterations))
            fraction = FINETUNE_LIDC_FRACTION
        for g in opt.param_groups:
            g["lr"] = lr
        x, y = make_batch(rng, args.batch, lidc, bgs, fraction, lidc_p, args.thick_slab_share,
                          args.lidc_outside)
        x = torch.from_numpy(x).to(device, memory_format=torch.channels_last_3d)
        y = torch.from_numpy(y).to(device, memory_format=torch.channels_last_3d)
        with torch.autocast(device.split(":")[0], dtype=torch.bfloat16,
                            enabled=precision == "bf16"):
            logit = forward(x)
        logit = logit.float()
        p = torch.sigmoid(logit)
        if args.lidc_outside == "ignore":  # NaN target: unknown, out of both terms of the loss
            known = ~torch.isnan(y)
            y = torch.nan_to_num(y)
            bce = torch.nn.functional.binary_cross_entropy_with_logits(
                logit, y, weight=known.float(), reduction="sum") / known.sum()
            p = p * known
        else:
            bce = torch.nn.functional.binary_cross_entropy_with_logits(logit, y)
        inter = (p * y).sum(dim=(1, 2, 3, 4))
        den = p.sum(dim=(1, 2, 3, 4)) + y.sum(dim=(1, 2, 3, 4))
        dsc = 1 - (2 * inter + 1) / (den + 1)
        loss = bce + dsc.mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
        done = it + 1
        elapsed = (time.time() - t_start) / 60
        if (it + 1) % 50 == 0:
            print(f"it {it + 1} loss {ema:.4f} lr {lr:.2e} {elapsed:.1f} min", flush=True)
        if (it + 1) % args.checkpoint_every == 0:
            torch.save({"state_dict": net.state_dict(), "opt": opt.state_dict(),
                        "channels": list(channels), "lidc_sampling": args.lidc_sampling,
                        "thick_slab_share": args.thick_slab_share,
                        "lidc_outside": args.lidc_outside,
                        "init_sha256": init["sha256"] if init else None,
                        "iteration": done, "rng": rng,
                        "minutes": minutes_before + elapsed}, ckpt)
        if elapsed > args.max_minutes:
            print(f"wall-clock cap reached at iteration {it + 1}", flush=True)
            break
    meta = {"version": "1", "channels": list(channels), "precision": precision, "seed": args.seed,
            "iterations_done": done, "iterations_planned": total,
            "finetune_iterations": args.finetune_iterations, "finetune_lr": args.finetune_lr,
            "lidc_fraction": LIDC_FRACTION, "finetune_lidc_fraction": FINETUNE_LIDC_FRACTION,
            "batch": args.batch, "lr": args.lr, "threads": args.threads, "device": device,
            "minutes": round(minutes_before + (time.time() - t_start) / 60, 1),
            "lidc_train_crops": len(lidc), "lidc_sampling": args.lidc_sampling,
            "thick_slab_share": args.thick_slab_share, "lidc_outside": args.lidc_outside,
            "compiled": args.compile, "work_spacing_mm": list(WORK_SPACING),
            "patch_shape": list(PATCH_SHAPE),
            "final_loss_ema": ema}
    if init is not None:
        meta["init"] = {"file": args.init.name, "sha256": init["sha256"],
                        "iterations_done": init["meta"].get("iterations_done"),
                        "minutes": init["meta"].get("minutes")}
    sd = {k: v.detach().cpu().half() for k, v in net.state_dict().items()}
    _save(args.out, sd, meta)
    _calibrate_into(args.out, args.data, args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
