"""Train the ``slicenet`` segmenter (:mod:`recist_tool.segment.slicenet`); writes
``models/slicenet.pt``.

Data (all from ``../shared/data``, nothing downloaded; licences in ``MODEL_CARD.md``):

* the soft-tissue sarcomas (``lesions/sts_extremity``, CC BY 3.0), **train split only**
  (:func:`recist_tool.segment.evaluate.case_split`; the validation cases are never read here);
* LIDC-IDRI nodule crops (CC BY 3.0), **train split only** (:func:`lidc_split`), nodules of
  :data:`LIDC_LENGTH_MM` (the crops hold no more context than that);
* synthetic lesions of 10 to 150 mm painted into real CT backgrounds (pyradiomics lung1's chest,
  the sarcoma train cases' limbs away from their tumours) and into the sample-data phantoms
  (:func:`synthetic_item`): lung masses clipped to the lung so that they abut the mediastinum and
  chest wall with no contrast, cavitating masses, hypo-, hyper-dense and rim-enhancing liver-like
  metastases, low-contrast soft-tissue masses, nodes and nodal conglomerates in fat.

Never the evaluation-only sets (3D-IRCADb, the IBSI lung tumour).

Each training sample is one tile (:func:`sample`, shares :data:`KIND_SHARES`): the prompt's
slice with a line (the slice's long axis, each end moved by up to :data:`LINE_JITTER_MAX` of its
length), a box or a click (on tiles from 0.35 to 3 times the lesion's length: the click search
goes from small to large); or a slice inside the lesion with the prior of the slice before it;
or, **as often**, a slice one to :data:`PAST_END_MAX` slices past the lesion's end with the
lesion's last slice's mask as its prior and an empty target (the prior the outline carries
there when it does not stop); or a click on other tissue, seen on a tile 80-300 mm wide, with
an empty target. Every prior is perturbed (:func:`perturb_prior`: grown or shrunk by up to
three pixels, shifted, or dropped), so that where the lesion ends only the CT can tell. Each
tile also holds the CT of the slices behind and ahead of it in the direction of travel
(``slicenet``'s channels 5-8). Tiles are rotated, flipped, scaled (side :data:`SIDE_JITTER` ×
length) and their HU shifted.

The learning rate follows a cosine from ``--lr`` to 0 over ``--iterations`` or ``--max-minutes``,
whichever ends first (so a run cut by its time budget still ends annealed).

Run (recipe ``slicenet-v2``, 2026-12-05, figures in ``MODEL_CARD.md``; weights kept out of the
repository)::

    python models/train_slicenet.py --iterations 6000 --max-minutes 72 --threads 2 \
        --out /path/to/slicenet.pt
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "models"))

from train_data import PHANTOMS, shape_field  # noqa: E402 - models/, the script's own folder

from recist_tool.io import load_volume  # noqa: E402
from recist_tool.sample_data.generate import lesion_free_volume  # noqa: E402
from recist_tool.segment.evaluate import case_split, lidc_split  # noqa: E402
from recist_tool.segment.slicenet import (  # noqa: E402
    FEATURES,
    MIN_SIDE_MM,
    N_INPUTS,
    SIDE_PER_LENGTH,
    TILE,
    WINDOWS,
    build_network,
    longest_chord,
    neighbour_slices,
    tile_coords,
    tile_input,
    to_tile,
)

SEED = 20261204
#: LIDC nodules used: long axes (mm) whose tile stays inside the crop.
LIDC_LENGTH_MM = (5.0, 14.0)
#: Tile side over the lesion's length, drawn uniformly (inference uses SIDE_PER_LENGTH).
SIDE_JITTER = (1.6, 2.6)
#: Largest random move of a line's end, as a share of its length (evaluation uses 0.10).
LINE_JITTER_MAX = 0.15
#: Sample kinds (:func:`sample`) and their shares: a prompt slice, a carried slice inside the
#: lesion, a carried slice past its end (as often as inside), a click on other tissue.
KINDS = ("prompt", "inside", "past", "negative")
KIND_SHARES = (0.31, 0.32, 0.32, 0.05)
#: A slice past the end is 1 to this many slices beyond the lesion's last one.
PAST_END_MAX = 3
#: Share of carried slices whose prior is dropped (an empty prior channel).
PRIOR_DROPOUT = 0.1
#: Largest grow (+) or shrink (-) of a prior, pixels.
PRIOR_MORPH_MAX = 3
#: Standard deviation of a prior's shift (pixels, each axis).
PRIOR_SHIFT_SD = 1.5
#: Shares of the prompt kinds on a prompt slice: line, box, click.
PROMPT_SHARES = (0.5, 0.2, 0.3)
#: Shares of the sources: real sarcomas, LIDC, synthetic.
SOURCE_SHARES = (0.35, 0.15, 0.50)
#: Synthetic lesions generated (each gives many tiles).
N_SYNTHETIC = 360


class Item(NamedTuple):
    """One 3D lesion: HU (int16), mask, spacing (z, y, x) mm, and its length (the longest
    in-plane chord over its slices, sampled), which sizes the tiles of its carried slices."""

    hu: np.ndarray
    mask: np.ndarray
    spacing: np.ndarray
    name: str
    length_mm: float


def make_item(hu: np.ndarray, mask: np.ndarray, spacing, name: str) -> Item:
    sp = np.asarray(spacing, float)
    zs = np.flatnonzero(mask.any(axis=(1, 2)))
    length = 0.0
    for z in zs[:: max(1, len(zs) // 8)]:
        e = longest_chord(mask[z], sp[1:])
        length = max(length, float(np.hypot(*((e[0] - e[1]) * sp[1:]))))
    return Item(hu, mask, sp, name, length)


# --------------------------------------------------------------------------- real data
def load_sarcomas(data: Path) -> list[Item]:
    folder = data / "lesions/sts_extremity"
    out = []
    for img in sorted((folder / "image").glob("*.nii.gz")):
        name = img.name.split(".")[0]
        if case_split(name) != "train":
            continue
        v = load_volume(img)
        m = np.asarray(load_volume(folder / "mask" / img.name).array) > 0
        out.append(make_item(np.asarray(v.array).astype(np.int16), m, v.spacing, name))
    return out


def load_lidc(data: Path) -> list[Item]:
    folder = data / "lesions/lidc_nodules"
    out = []
    for img in sorted((folder / "image").glob("*.nii.gz")):
        if lidc_split(img.name) != "train":
            continue
        m = np.asarray(load_volume(folder / "mask" / img.name).array) > 0
        if m.sum() < 8:
            continue
        v = load_volume(img)
        sp = np.asarray(v.spacing)
        ext = (np.ptp(np.argwhere(m)[:, 1:], axis=0) + 1) * sp[1:]
        if not LIDC_LENGTH_MM[0] <= ext.max() <= LIDC_LENGTH_MM[1]:
            continue
        out.append(make_item(np.asarray(v.array).astype(np.int16), m, sp, img.name))
    return out


# --------------------------------------------------------------------------- synthetic
def _body_lung(hu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-slice body and aerated-lung masks of a CT block."""
    body = np.zeros(hu.shape, bool)
    for z in range(hu.shape[0]):
        body[z] = ndimage.binary_fill_holes(ndimage.binary_opening(hu[z] > -400, iterations=2))
    lung = body & (hu < -400)
    lung = ndimage.binary_opening(lung, iterations=1)
    lung = np.stack([ndimage.binary_fill_holes(s) for s in lung]) & body
    # vessels inside the lung belong to it
    lung = np.stack([ndimage.binary_closing(s, iterations=4) for s in lung]) & body
    return body, lung


class Background(NamedTuple):
    hu: np.ndarray
    spacing: np.ndarray
    lung: np.ndarray
    soft: np.ndarray
    fat: np.ndarray
    lung_mask: np.ndarray


def load_backgrounds(data: Path, sarcomas: list[Item]) -> list[Background]:
    out = []
    p = data / "lesions/pyradiomics_lung1/image.nrrd"
    if p.exists():
        v = load_volume(p)
        lab = np.asarray(load_volume(data / "lesions/pyradiomics_lung1/label.nrrd").array) > 0
        out.append(_background(np.asarray(v.array), np.asarray(v.spacing), lab))
    for it in sarcomas[:10]:
        out.append(_background(it.hu.astype(np.float32), it.spacing, it.mask))
    for i, (px, dz, contrast) in enumerate(PHANTOMS):
        v = lesion_free_volume(px, dz, contrast, seed=i)
        out.append(_background(np.asarray(v.array), np.asarray(v.spacing), None))
    return out


def _background(hu: np.ndarray, sp: np.ndarray, lesion: np.ndarray | None) -> Background:
    hu = np.asarray(hu, np.float32)
    body, lung = _body_lung(hu)
    keep = None
    if lesion is not None:
        keep = ndimage.distance_transform_edt(~lesion, sampling=sp) < 25.0
    sm = ndimage.uniform_filter(hu, (1, 5, 5))
    inner = np.zeros(hu.shape, bool)
    inner[1:-1, 8:-8, 8:-8] = True
    inner &= body if keep is None else body & ~keep
    rng = np.random.default_rng(0)

    def pick(m):
        pts = np.argwhere(m)
        return pts[rng.permutation(len(pts))[:20000]]

    return Background(hu, sp, pick(inner & lung & (sm < -600)),
                      pick(inner & (sm > 20) & (sm < 120)),
                      pick(inner & (sm > -150) & (sm < -50)), lung)


def synthetic_item(rng, bgs: list[Background], k: int) -> Item | None:
    """One synthetic lesion painted into a background block (resampled so that the block is at
    most 160 pixels wide)."""
    kind = ["lung", "lung", "cavity", "liver", "soft", "soft", "node", "conglomerate"][k % 8]
    bg = bgs[rng.integers(len(bgs))]
    pts = bg.lung if kind in ("lung", "cavity") else bg.fat if kind in (
        "node", "conglomerate") else bg.soft
    if len(pts) == 0:
        return None
    c = pts[rng.integers(len(pts))].astype(float)
    length = float(np.exp(rng.uniform(np.log(10.0), np.log(150.0))))
    if kind in ("node",):
        length = min(length, 50.0)
    sp = bg.spacing.copy()
    half_mm = 2.0 * length  # a rotated tile of 2.6 lengths stays inside
    step = max(sp[1], 2 * half_mm / 160.0)
    n_xy = int(np.ceil(2 * half_mm / step))
    n_z = int(np.ceil((1.4 * length) / sp[0])) + 4
    zs = c[0] + (np.arange(n_z) - n_z / 2)
    ys = c[1] + (np.arange(n_xy) - n_xy / 2) * step / sp[1]
    xs = c[2] + (np.arange(n_xy) - n_xy / 2) * step / sp[2]
    g = np.meshgrid(zs, ys, xs, indexing="ij")
    hu = ndimage.map_coordinates(bg.hu, g, order=1, mode="nearest")
    wsp = np.array([sp[0], step, step])
    centre = np.array([n_z / 2, n_xy / 2, n_xy / 2])
    r = length / 2
    if kind == "node":
        radii = r * np.array([rng.uniform(0.6, 1.2), 1.0, rng.uniform(0.5, 0.9)])
        rho = shape_field(rng, hu.shape, wsp, centre, radii, rng.choice([0.0, 0.1]))
    elif kind == "conglomerate":
        rho = np.full(hu.shape, np.inf)
        for _ in range(rng.integers(2, 5)):
            off = rng.normal(0, r * 0.35, 3) / wsp
            rr = r * rng.uniform(0.3, 0.55) * rng.uniform(0.7, 1.2, 3)
            rho = np.minimum(rho, shape_field(rng, hu.shape, wsp, centre + off, rr, 0.05))
    else:
        radii = r * rng.uniform(0.6, 1.0, 3)
        radii[int(np.argmax(radii))] = r
        rho = shape_field(rng, hu.shape, wsp, centre, radii, rng.choice([0.0, rng.uniform(0.05, 0.3)]))
    mask = rho < 1.0
    if kind in ("lung", "cavity"):  # a lung mass stops at the mediastinum and chest wall
        lung = ndimage.map_coordinates(bg.lung_mask.astype(np.float32), g, order=1) > 0.5
        mask &= ndimage.binary_dilation(lung, iterations=1)
    if mask.sum() < 20:
        return None
    local = float(np.median(hu[mask]))
    val = np.zeros(hu.shape, np.float32)
    if kind in ("lung", "cavity"):
        val[:] = rng.uniform(10, 60)
    elif kind == "liver":
        style = rng.integers(4)
        val[:] = local + (rng.uniform(-90, -25) if style in (0, 3) else rng.uniform(20, 60))
        if style == 2:  # rim enhancing
            val[:] = local - rng.uniform(30, 80)
            val[(rho > rng.uniform(0.7, 0.85)) & mask] = local + rng.uniform(20, 60)
        if style == 3:  # necrotic core
            val[rho < rng.uniform(0.3, 0.7)] = rng.uniform(0, 20)
    elif kind in ("node", "conglomerate"):
        val[:] = rng.uniform(20, 60)
    else:  # soft-tissue mass against muscle: low contrast, heterogeneous
        val[:] = local + rng.choice([-1, 1]) * rng.uniform(8, 50)
        if rng.random() < 0.3:
            val[rho < rng.uniform(0.3, 0.7)] = local - rng.uniform(20, 60)
    if kind == "cavity":
        val[rho < rng.uniform(0.3, 0.7)] = rng.uniform(-1000, -900)
    val += ndimage.gaussian_filter(rng.normal(0, 1, hu.shape), 1.0).astype(np.float32) * rng.uniform(
        5, 30)
    alpha = ndimage.gaussian_filter(mask.astype(np.float32),
                                    rng.uniform(0.3, 1.5) / wsp)
    img = hu * (1 - alpha) + val * alpha
    return make_item(np.clip(img, -1024, 3000).astype(np.int16), mask, wsp,
                     f"synthetic-{kind}-{k}")


# --------------------------------------------------------------------------- tiles
def _tile_of(mask2: np.ndarray, coords: np.ndarray) -> np.ndarray:
    return ndimage.map_coordinates(mask2.astype(np.float32), coords, order=1, mode="constant")


def perturb_prior(rng, prev: np.ndarray) -> np.ndarray:
    """The prior as the network might have made it: dropped (:data:`PRIOR_DROPOUT`: empty),
    else grown or shrunk by up to :data:`PRIOR_MORPH_MAX` pixels and shifted by a rounded
    normal step of :data:`PRIOR_SHIFT_SD` pixels."""
    if rng.random() < PRIOR_DROPOUT:
        return np.zeros_like(prev, dtype=bool)
    it = int(rng.integers(-PRIOR_MORPH_MAX, PRIOR_MORPH_MAX + 1))
    out = prev.astype(bool)
    if it > 0:
        out = ndimage.binary_dilation(out, iterations=it)
    elif it < 0:
        eroded = ndimage.binary_erosion(out, iterations=-it)
        out = eroded if eroded.any() else out
    step = np.rint(rng.normal(0, PRIOR_SHIFT_SD, 2)).astype(int)
    return ndimage.shift(out, step, order=0, mode="constant", cval=False)


def draw_kind(rng) -> str:
    """One sample kind, drawn with :data:`KIND_SHARES`."""
    return KINDS[int(rng.choice(len(KINDS), p=KIND_SHARES))]


def past_end_slices(item: Item, rng) -> tuple[int, int] | None:
    """``(end, z)``: one of the lesion's end slices and a slice 1 to :data:`PAST_END_MAX`
    beyond it inside the scan (None when the lesion reaches both ends of its scan)."""
    zs = np.flatnonzero(item.mask.any(axis=(1, 2)))
    options = [(int(end), int(end) + d * k) for end, d in ((zs[0], -1), (zs[-1], 1))
               for k in range(1, PAST_END_MAX + 1)
               if 0 <= int(end) + d * k < item.mask.shape[0]]
    return options[int(rng.integers(len(options)))] if options else None


def sample(rng, item: Item, kind: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One training tile ``(x, y)`` from a lesion (see the module docstring); ``kind`` one of
    :data:`KINDS` (drawn when None)."""
    hu, m, sp = item.hu, item.mask, item.spacing
    sp2 = sp[1:]
    zs = np.flatnonzero(m.any(axis=(1, 2)))
    kind = draw_kind(rng) if kind is None else kind
    angle = rng.uniform(0, 2 * np.pi)
    fac = rng.uniform(*SIDE_JITTER)
    direction = int(rng.choice([-1, 1]))
    if kind == "inside" and len(zs) < 2:
        kind = "prompt"
    if kind == "prompt":
        z = int(rng.choice(zs))
        m2 = m[z]
        ends = longest_chord(m2, sp2)
        length = float(np.hypot(*((ends[0] - ends[1]) * sp2))) + sp2.mean()
        pk = rng.choice(3, p=PROMPT_SHARES)
        line = box = None
        if pk == 0:
            line = ends.copy()
            for e in line:
                rad = rng.uniform(0, LINE_JITTER_MAX) * length
                t = rng.uniform(0, 2 * np.pi)
                e += np.array([np.sin(t), np.cos(t)]) * rad / sp2
            centre = line.mean(axis=0)
        elif pk == 1:
            nz = np.argwhere(m2)
            lo, hi = nz.min(0).astype(float), nz.max(0).astype(float)
            grow = rng.uniform(0, 0.2) * (hi - lo + 1)
            box = np.stack([lo - grow, hi + grow])
            centre = box.mean(axis=0)
            length = float(np.max((box[1] - box[0] + 1) * sp2))
        else:
            dist = ndimage.distance_transform_edt(m2)
            inner = np.argwhere(dist >= rng.uniform(0.2, 0.7) * dist.max())
            centre = inner[rng.integers(len(inner))] + rng.uniform(-0.5, 0.5, 2)
            line = np.stack([centre, centre])
            # a click has no size: tiles from far smaller than the lesion (which then fills
            # them, as at the first, small lengths of the click search) to much larger
            fac = float(np.exp(rng.uniform(np.log(0.35), np.log(3.0))))
        side = max(fac * length, MIN_SIDE_MM)
        if pk != 2:
            centre = centre + rng.normal(0, 0.03 * length, 2) / sp2
        coords = tile_coords(centre, side, sp2, angle)
        x = tile_input(hu[z], coords,
                       to_tile(line, centre, side, sp2, angle) if line is not None else None,
                       to_tile(box, centre, side, sp2, angle) if box is not None else None,
                       neighbours=neighbour_slices(hu, z, direction))
        y = _tile_of(m2, coords)
    elif kind in ("inside", "past"):
        if kind == "past":
            pair = past_end_slices(item, rng)
            if pair is None:
                return sample(rng, item)
            z_prev, z = pair
        else:
            z_prev = int(rng.choice(zs[:-1] if rng.random() < 0.5 else zs[1:]))
            z = z_prev + (1 if z_prev in zs[:-1] and (z_prev == zs[0] or rng.random() < 0.5)
                          else -1)
            z = int(np.clip(z, 0, m.shape[0] - 1))
        direction = 1 if z > z_prev else -1
        true_prev = m[z_prev]
        prev = perturb_prior(rng, true_prev)
        ends = longest_chord(true_prev, sp2)
        length = max(float(np.hypot(*((ends[0] - ends[1]) * sp2))), 3.0)
        # the tile's size is the lesion's, not the slice's: as at inference
        length = max(length, item.length_mm)
        side = max(fac * length, MIN_SIDE_MM)
        centre = (np.array(ndimage.center_of_mass(prev if prev.any() else true_prev))
                  + rng.normal(0, 1.0, 2))
        coords = tile_coords(centre, side, sp2, angle)
        prior = _tile_of(prev, coords) > 0.5
        x = tile_input(hu[z], coords, None, None, prior, neighbour_slices(hu, z, direction))
        y = _tile_of(m[z], coords)
    else:  # a click on tissue that is not this lesion
        z = int(rng.integers(m.shape[0]))
        far = ~ndimage.binary_dilation(m[z], iterations=10)
        cand = np.argwhere(far & (hu[z] > -100) & (hu[z] < 200))
        if len(cand) == 0:
            return sample(rng, item)
        centre = cand[rng.integers(len(cand))].astype(float)
        side = rng.uniform(80, 300)  # wide enough to see that the tissue is no lesion
        coords = tile_coords(centre, side, sp2, angle)
        x = tile_input(hu[z], coords, to_tile(np.stack([centre, centre]), centre, side, sp2,
                                              angle), neighbours=neighbour_slices(hu, z, direction))
        y = np.zeros((TILE, TILE), np.float32)
        if _tile_of(m[z], coords)[TILE // 2 - 2:TILE // 2 + 3, TILE // 2 - 2:TILE // 2 + 3].any():
            return sample(rng, item)
    if rng.random() < 0.5:
        x, y = x[:, :, ::-1], y[:, ::-1]
    shift = rng.uniform(-25, 25) / np.array([wh - wl for wl, wh in WINDOWS])
    x = x.copy()
    x[[0, 5, 7]] += shift[0]  # the wide window of this slice and its neighbours
    x[[1, 6, 8]] += shift[1]  # the soft-tissue window
    return np.ascontiguousarray(x, np.float32), np.ascontiguousarray(y > 0.5, np.float32)


def make_batch(rng, n, sources):
    xs, ys = [], []
    p = np.array([s for s, items in zip(SOURCE_SHARES, sources, strict=True) if items])
    pool = [items for items in sources if items]
    for _ in range(n):
        items = pool[int(rng.choice(len(pool), p=p / p.sum()))]
        x, y = sample(rng, items[rng.integers(len(items))])
        xs.append(x)
        ys.append(y[None])
    return np.stack(xs), np.stack(ys)


# --------------------------------------------------------------------------- training
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=ROOT / "models" / "slicenet.pt")
    ap.add_argument("--iterations", type=int, default=5000)
    ap.add_argument("--batch", type=int, default=24)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-minutes", type=float, default=110.0)
    ap.add_argument("--seed", type=int, default=SEED)
    args = ap.parse_args(argv)
    import torch

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    t0 = time.time()
    sarc = load_sarcomas(args.data)
    lidc = load_lidc(args.data)
    bgs = load_backgrounds(args.data, sarc)
    synth = []
    k = 0
    while len(synth) < N_SYNTHETIC and k < 4 * N_SYNTHETIC:
        it = synthetic_item(rng, bgs, k)
        k += 1
        if it is not None:
            synth.append(it)
    print(f"data: {len(sarc)} sarcomas, {len(lidc)} LIDC, {len(synth)} synthetic "
          f"({time.time() - t0:.0f} s)", flush=True)
    net = build_network(FEATURES, N_INPUTS)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    ema = None
    done = 0
    for i in range(args.iterations):
        # cosine to 0 at the last iteration or at --max-minutes, whichever comes first
        frac = min(1.0, max(i / args.iterations,
                            (time.time() - t0) / 60 / args.max_minutes))
        lr = args.lr * 0.5 * (1 + math.cos(math.pi * frac))
        for g in opt.param_groups:
            g["lr"] = lr
        xb, yb = make_batch(rng, args.batch, (sarc, lidc, synth))
        x, y = torch.from_numpy(xb), torch.from_numpy(yb)
        logit = net(x)
        bce = torch.nn.functional.binary_cross_entropy_with_logits(logit, y)
        p = torch.sigmoid(logit)
        inter = (p * y).sum((1, 2, 3))
        dice = 1 - (2 * inter + 1) / (p.sum((1, 2, 3)) + y.sum((1, 2, 3)) + 1)
        loss = bce + dice.mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        value = float(loss.detach())
        ema = value if ema is None else 0.98 * ema + 0.02 * value
        done = i + 1
        if i % 100 == 0:
            print(f"{i} loss {ema:.4f} lr {lr:.5f} {(time.time() - t0) / 60:.1f} min", flush=True)
        if (time.time() - t0) / 60 > args.max_minutes:
            break
        if done % 500 == 0:  # a checkpoint to look at while training goes on
            _save(args, net, done, ema, t0, (sarc, lidc, synth))
    _save(args, net, done, ema, t0, (sarc, lidc, synth))
    return 0


def _save(args, net, done, ema, t0, sources) -> None:
    import torch

    sarc, lidc, synth = sources
    meta = {"version": "2", "recipe": "slicenet-v2", "inputs": N_INPUTS,
            "features": list(FEATURES), "tile": TILE,
            "kind_shares": dict(zip(KINDS, KIND_SHARES, strict=True)),
            "past_end_max": PAST_END_MAX, "prior_dropout": PRIOR_DROPOUT,
            "side_per_length": SIDE_PER_LENGTH, "seed": args.seed, "iterations_done": done,
            "iterations_planned": args.iterations, "max_minutes": args.max_minutes,
            "batch": args.batch, "lr": args.lr,
            "threads": args.threads, "minutes": round((time.time() - t0) / 60, 1),
            "final_loss_ema": ema, "sources": {"sts_extremity_train": len(sarc),
                                               "lidc_train": len(lidc), "synthetic": len(synth)}}
    was_training = net.training
    net.eval()
    torch.save({"state_dict": net.state_dict(), "meta": meta}, args.out)
    args.out.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    print(json.dumps(meta), flush=True)
    net.train(was_training)


if __name__ == "__main__":
    raise SystemExit(main())
