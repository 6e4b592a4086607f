"""One click → mask (→ diameters) on a 512×512×300 CT already in memory: time and peak memory.

Methods, each timed in a fresh subprocess (so that peak memory is its own):

* ``classic`` – recist-tool's weight-free segmenter.
* ``unet`` – recist-tool's promptable 3D U-Net (skipped when no weights are installed).
* ``unet-off-centre`` – the same network, clicked :data:`OFF_CENTRE_MM` from the nodule's centre:
  its worst case, a second prediction recentred on the first mask.
* peer ``sitk-confidence-connected`` – SimpleITK's ``ConfidenceConnected`` region growing from the
  same seed on the whole volume (multiplier 2.5, 3 iterations, 1-voxel initial neighbourhood):
  the usual one-call seeded segmentation a user would otherwise reach for.

The volume is synthesised with numpy (int16, 0.7×0.7×1.0 mm): a torso-like phantom (soft tissue,
fat, lungs) with a 12 mm-radius solid nodule in the lung; the click is at the nodule's centre.
Each method runs one warm-up click, then ``--repeat`` timed clicks (median reported); "with
diameters" adds :func:`recist_tool.measure.measure_mask` on the result.

Run: ``python benchmarks/bench_segment.py [--threads 2] [--repeat 5]``; prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

import numpy as np

SHAPE = (300, 512, 512)
SPACING = (1.0, 0.7, 0.7)
SEED = (150, 220, 150)
#: ``unet-off-centre`` clicks this far (mm, along x) from the nodule's centre
OFF_CENTRE_MM = 8.0


def make_volume():
    from recist_tool.volume import Volume

    nz, ny, nx = SHAPE
    yy, xx = np.ogrid[:ny, :nx]
    plane = np.full((ny, nx), -1000, np.int16)
    body = ((yy - 256) / 230.0) ** 2 + ((xx - 256) / 245.0) ** 2 <= 1
    plane[body] = -90
    inner = ((yy - 256) / 210.0) ** 2 + ((xx - 256) / 225.0) ** 2 <= 1
    plane[inner] = 40
    for cx in (150, 362):
        plane[((yy - 230) / 150.0) ** 2 + ((xx - cx) / 85.0) ** 2 <= 1] = -850
    arr = np.empty(SHAPE, np.int16)
    rng = np.random.default_rng(0)
    for k in range(nz):  # slice by slice: no full-size temporaries
        arr[k] = plane + rng.integers(-15, 16, size=(ny, nx), dtype=np.int16)
    h = 20  # nodule painted in a local box around the seed
    z, y, x = np.ogrid[-h:h + 1, -h:h + 1, -h:h + 1]
    ball = (z * SPACING[0]) ** 2 + (y * SPACING[1]) ** 2 + (x * SPACING[2]) ** 2 <= 12.0**2
    box = arr[SEED[0] - h:SEED[0] + h + 1, SEED[1] - h:SEED[1] + h + 1, SEED[2] - h:SEED[2] + h + 1]
    box[ball] = 35 + rng.integers(-15, 16, size=int(ball.sum()), dtype=np.int16)
    return Volume.from_grid(arr, SPACING)


def peer_click(vol, seed: tuple[int, int, int], threads: int):
    """The peer: SimpleITK ``ConfidenceConnected`` from ``seed`` (z, y, x) on the whole volume,
    as a callable returning ``(mask, offset)``."""
    import SimpleITK as sitk

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)

    def click():
        img = sitk.GetImageFromArray(vol.array)
        img.SetSpacing(tuple(vol.spacing)[::-1])
        m = sitk.ConfidenceConnected(img, seedList=[tuple(seed)[::-1]], numberOfIterations=3,
                                     multiplier=2.5, initialNeighborhoodRadius=1, replaceValue=1)
        return sitk.GetArrayViewFromImage(m) > 0, (0, 0, 0)

    return click


def run_one(method: str, repeat: int, threads: int) -> dict:
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    vol = make_volume()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if method == "sitk-confidence-connected":
        click = peer_click(vol, SEED, threads)
    else:
        import torch

        torch.set_num_threads(threads)
        from recist_tool.segment import Prompt, get_segmenter

        name = method.removesuffix("-off-centre")
        if name == "unet-half-contrast":  # the network's mask cut back to the half-contrast edge
            seg = get_segmenter("unet", edge="half-contrast")
        else:
            seg = get_segmenter(name)
        if getattr(seg, "is_fallback", False):
            return {"method": method, "skipped": "no unet weights installed"}
        at = SEED
        if method.endswith("-off-centre"):
            at = (SEED[0], SEED[1], SEED[2] + round(OFF_CENTRE_MM / SPACING[2]))

        def click():
            m = seg.segment(vol, Prompt.at(*at))
            return m.mask, m.offset

    from recist_tool.measure import measure_mask

    click()  # warm-up
    t_seg, t_all, n_vox = [], [], 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        mask, off = click()
        t1 = time.perf_counter()
        measure_mask(vol, mask, offset=off)
        t2 = time.perf_counter()
        t_seg.append(t1 - t0)
        t_all.append(t2 - t0)
        n_vox = int(np.count_nonzero(mask))
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"method": method, "seconds_click": statistics.median(t_seg),
            "seconds_with_diameters": statistics.median(t_all), "voxels": n_vox,
            "peak_rss_mb": rss1, "volume_rss_mb": rss0}


def run_in_subprocesses(script: str, doc: str, run_one_fn, methods: tuple[str, ...],
                        repeat: int) -> tuple[argparse.Namespace, list[dict] | None]:
    """Command line of a segmentation benchmark: ``--one METHOD`` runs one method here and prints
    its JSON row (returns ``None`` rows); otherwise each method runs in a fresh subprocess of
    ``script`` (so that peak memory is its own) and their rows are returned."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=repeat)
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(run_one_fn(args.one, args.repeat, args.threads)))
        return args, None
    rows = []
    for method in methods:
        env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
        out = subprocess.run([sys.executable, script, "--one", method, "--repeat",
                              str(args.repeat), "--threads", str(args.threads)],
                             capture_output=True, text=True, env=env, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return args, rows


def main() -> int:
    args, rows = run_in_subprocesses(__file__, __doc__, run_one,
                                     ("classic", "unet", "unet-off-centre", "unet-half-contrast",
                                      "sitk-confidence-connected"), repeat=5)
    if rows is None:
        return 0
    peer = next(r for r in rows if r["method"] == "sitk-confidence-connected")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"threads {args.threads}; volume {SHAPE} int16 ({np.prod(SHAPE) * 2 / 2**20:.0f} MiB)")
    print("| method | s / click (median) | s incl. diameters | × peer time | peak RSS MB "
          "(volume alone) | voxels |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        if "skipped" in r:
            print(f"| {r['method']} | skipped: {r['skipped']} | | | | |")
            continue
        print(f"| {r['method']} | {r['seconds_click']:.3f} | {r['seconds_with_diameters']:.3f} | "
              f"{r['seconds_click'] / peer['seconds_click']:.2f} | {r['peak_rss_mb']:.0f} "
              f"({r['volume_rss_mb']:.0f}) | {r['voxels']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
