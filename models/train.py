"""Train the ``unet`` lesion segmenter from a fixed seed; writes ``models/unet_lesion.pt``.

Data (all from ``../shared/data``, nothing downloaded; drawn by ``models/train_data.py``):

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

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # train_data, beside this script

from train_data import (  # noqa: E402 - models/, the script's own folder
    FINETUNE_LIDC_FRACTION,
    LIDC_FRACTION,
    lidc_probabilities,
    load_backgrounds,
    load_lidc_train,
    make_batch,
)

from recist_tool.segment.unet import (  # noqa: E402
    CHANNELS,
    PATCH_SHAPE,
    WORK_SPACING,
    build_network,
)

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
