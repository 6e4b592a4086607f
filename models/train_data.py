"""The training data of ``models/train.py`` (the ``unet`` lesion segmenter): what a training
sample is drawn from and how.

* LIDC-IDRI nodule crops with consensus masks, train split only (:func:`load_lidc_train`), drawn
  uniformly or by size (:func:`lidc_probabilities`), optionally re-sliced as thick-slice CT
  (:func:`thick_slab`), a box around a click inside the nodule (:func:`lidc_sample`);
* synthetic lesions painted into real CT backgrounds and the sample-data phantoms
  (:func:`load_backgrounds`, :func:`synth_sample`), kept :data:`KEEP_AWAY_MM` from a
  background's labelled real tumour;
* negative clicks in soft tissue with an empty target (:func:`negative_sample`);
* flips, intensity and noise (:func:`augment`), and the mix of all of them into a batch of
  network inputs and targets (:func:`make_batch`).

Nothing here trains or writes; ``models/train_slicenet.py`` takes the phantoms and
:func:`shape_field` from it too. A script module beside ``train.py``, not part of the package:
``models/`` is put on ``sys.path`` by the scripts that import it.
"""

from __future__ import annotations

import sys
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
from recist_tool.segment.unet import PATCH_SHAPE, WORK_SPACING, make_input  # noqa: E402
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


def shape_field(rng, shape, spacing, centre, radii, lobes: float):
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
    rho = shape_field(rng, bg.shape, sp, c_work, radii, lobes)
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
