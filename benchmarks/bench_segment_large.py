"""A 150 mm lesion from one prompt on a 512×512×300 CT in memory: time, peak memory, accuracy.

The volume is synthesised with numpy (int16, 0.8×0.8×1.5 mm): a torso-like phantom (fat, soft
tissue 40 HU, an enhancing liver-like organ 105 HU) holding a hypodense lobulated mass of 150 mm
long axis (two overlapping ellipsoids, 30 HU, noise 15 HU) across the liver and the soft tissue
beside it: the size and kind of the largest targets of a lung-cancer trial (liver or nodal
mass). Methods, each timed in a fresh subprocess (so that peak memory is its own):

* ``contour-line`` – recist-tool's ``contour`` from a caliper line (the mask's long axis).
* ``default-line`` / ``default-click`` – the default segmenter (``unet``, which routes large
  lesions to ``contour``: ``slicenet``'s weights are not shipped) from the line and from a click
  at the mass's centre.
* ``classic-click`` – the weight-free ``classic`` from the click (sized for smaller lesions).
* peer ``sitk-confidence-connected`` – SimpleITK's ``ConfidenceConnected`` from the same click
  on the whole volume (multiplier 2.5, 3 iterations, 1-voxel initial neighbourhood).

Each method runs one warm-up prompt, then ``--repeat`` timed ones (median reported), and reports
the Dice of its mask against the analytic mass.

Run: ``python benchmarks/bench_segment_large.py [--threads 2] [--repeat 3]``; prints a table.
(It shares its command line and peer with ``bench_segment.py`` in this folder, which Python puts
on ``sys.path`` when it runs a script.)
"""

from __future__ import annotations

import os
import platform
import resource
import statistics
import sys
import time

import numpy as np

SHAPE = (300, 512, 512)
SPACING = (1.5, 0.8, 0.8)
CENTRE = (150, 250, 230)
#: The two ellipsoids of the mass: (offset from CENTRE in mm (z, y, x), semi-axes in mm).
LOBES = (((0.0, 0.0, -20.0), (55.0, 45.0, 55.0)), ((0.0, 10.0, 30.0), (45.0, 40.0, 45.0)))


def _mass(zz, yy, xx) -> np.ndarray:
    out = np.zeros(np.broadcast_shapes(zz.shape, yy.shape, xx.shape), bool)
    for off, semi in LOBES:
        d = sum(((c * s - o) / a) ** 2 for c, s, o, a in zip((zz, yy, xx), SPACING, off, semi,
                                                               strict=True))
        out |= d <= 1.0
    return out


def make_volume():
    from recist_tool.volume import Volume

    nz, ny, nx = SHAPE
    yy, xx = np.ogrid[:ny, :nx]
    plane = np.full((ny, nx), -1000, np.int16)
    plane[((yy - 256) / 230.0) ** 2 + ((xx - 256) / 245.0) ** 2 <= 1] = -90
    plane[((yy - 256) / 210.0) ** 2 + ((xx - 256) / 225.0) ** 2 <= 1] = 40
    plane[((yy - 270) / 120.0) ** 2 + ((xx - 200) / 150.0) ** 2 <= 1] = 105
    arr = np.empty(SHAPE, np.int16)
    rng = np.random.default_rng(0)
    zc, yc, xc = CENTRE
    y = (np.arange(ny) - yc)[:, None]
    x = (np.arange(nx) - xc)[None, :]
    for k in range(nz):  # slice by slice: no full-size temporaries
        arr[k] = plane
        arr[k][_mass(np.asarray(k - zc), y, x)] = 30
        arr[k] += rng.integers(-15, 16, size=(ny, nx), dtype=np.int16)
    return Volume.from_grid(arr, SPACING)


def truth() -> np.ndarray:
    """The mass on the volume's grid (built slice by slice: no full-size float temporaries)."""
    zc, yc, xc = CENTRE
    y = (np.arange(SHAPE[1]) - yc)[:, None]
    x = (np.arange(SHAPE[2]) - xc)[None, :]
    out = np.zeros(SHAPE, bool)
    for k in range(SHAPE[0]):
        out[k] = _mass(np.asarray(k - zc), y, x)
    return out


def run_one(method: str, repeat: int, threads: int) -> dict:
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    vol = make_volume()
    from recist_tool.measure import measure_mask

    ref = truth()
    ends = measure_mask(vol, ref).long_axis_endpoints_voxel
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if method == "sitk-confidence-connected":
        from bench_segment import peer_click

        prompt = peer_click(vol, CENTRE, threads)
    else:
        import torch

        torch.set_num_threads(threads)
        from recist_tool.segment import Prompt, default_segmenter_name, get_segmenter

        name, how = method.rsplit("-", 1)
        seg = get_segmenter(default_segmenter_name() if name == "default" else name)
        p = Prompt(line_zyx=ends) if how == "line" else Prompt.at(*CENTRE)

        def prompt():
            m = seg.segment(vol, p)
            return m.mask, m.offset

    prompt()  # warm-up
    times, mask, off = [], None, (0, 0, 0)
    for _ in range(repeat):
        t0 = time.perf_counter()
        mask, off = prompt()
        times.append(time.perf_counter() - t0)
    full = np.zeros(SHAPE, bool)
    full[tuple(slice(o, o + n) for o, n in zip(off, mask.shape, strict=True))] = mask
    dice = 2.0 * np.count_nonzero(full & ref) / (np.count_nonzero(full) + np.count_nonzero(ref))
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"method": method, "seconds": statistics.median(times), "dice": float(dice),
            "peak_rss_mb": rss1, "volume_rss_mb": rss0}


def main() -> int:
    from bench_segment import run_in_subprocesses

    args, rows = run_in_subprocesses(__file__, __doc__, run_one,
                                     ("contour-line", "default-line", "default-click",
                                      "classic-click", "sitk-confidence-connected"), repeat=3)
    if rows is None:
        return 0
    peer = rows[-1]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"threads {args.threads}; volume {SHAPE} int16 ({np.prod(SHAPE) * 2 / 2**20:.0f} MiB)")
    print("| method | s / prompt (median) | × peer time | peak RSS MB (before the prompt) | Dice |")
    print("| --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['method']} | {r['seconds']:.2f} | {r['seconds'] / peer['seconds']:.2f} | "
              f"{r['peak_rss_mb']:.0f} ({r['volume_rss_mb']:.0f}) | {r['dice']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
