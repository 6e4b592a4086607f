"""Accuracy study behind docs/measurement.md (boundary choice, ellipsoids, anisotropy, LIDC).

Run: ``python benchmarks/measure_accuracy.py [--lidc PATH]``; prints the tables quoted in
``docs/measurement.md``. Errors are in units of the smaller pixel spacing unless stated.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recist_tool.measure import measure_mask  # noqa: E402
from recist_tool.measure.planar import long_axis, perpendicular_chord, slice_outline  # noqa: E402
from recist_tool.volume import Volume  # noqa: E402
from tests.measure.shapes import (  # noqa: E402
    Ellipsoid,
    ellipse_slice,
    random_rotation,
    volume_from_sitk,
)


def boundary_choice(n: int = 1200, seed: int = 42) -> None:
    rng = np.random.default_rng(seed)
    variants = {
        "binary mask, 0.5 iso-contour": (0.0, False, False),
        "Gaussian 1 px, no end corrections": (1.0, False, False),
        "chosen": (None, True, True),
    }
    res = {k: {"LD": [], "SA": []} for k in variants}
    size = []
    for _ in range(n):
        d = rng.uniform(5, 80)
        a, b = d / 2, d / 2 * rng.uniform(0.5, 1.0)
        dy = rng.uniform(0.5, 1.0)
        dx = dy if rng.random() < 0.5 else rng.uniform(0.5, 1.0)
        m = ellipse_slice(rng, a, b, rng.uniform(0, np.pi), dy, dx)
        px = min(dy, dx)
        for k, (sig, corr, den) in variants.items():
            o = slice_outline(m, (dy, dx), sigma_px=sig)
            la = long_axis(o, correct=corr)
            sa = perpendicular_chord(o, (la.q - la.p) / la.length, denoise=den)
            res[k]["LD"].append((la.length - 2 * a) / px)
            res[k]["SA"].append((sa.length - 2 * b) / px)
        size.append(d / px)
    small = np.array(size) < 15
    print(f"\n{n} ellipses, 5-80 mm, pixels 0.5-1.0 mm (half row != column), seed {seed}\n")
    print("| outline | axis | mean | median abs | p95 abs | max abs | max abs, < 15 px |")
    print("|---|---|---|---|---|---|---|")
    for k, v in res.items():
        for axis in ("LD", "SA"):
            e = np.array(v[axis])
            print(f"| {k} | {axis} | {e.mean():+.2f} | {np.median(abs(e)):.2f} | "
                  f"{np.percentile(abs(e), 95):.2f} | {abs(e).max():.2f} | "
                  f"{abs(e[small]).max():.2f} |")


def anisotropic(n: int = 400, seed: int = 5) -> None:
    rng = np.random.default_rng(seed)
    ld, sa = [], []
    for _ in range(n):
        d = rng.uniform(5, 80)
        a, b = d / 2, d / 2 * rng.uniform(0.5, 1.0)
        fine, coarse = 0.5, rng.uniform(0.9, 1.0)
        dy, dx = (fine, coarse) if rng.random() < 0.5 else (coarse, fine)
        m = ellipse_slice(rng, a, b, rng.uniform(0, np.pi), dy, dx)
        o = slice_outline(m, (dy, dx))
        la = long_axis(o)
        s = perpendicular_chord(o, (la.q - la.p) / la.length)
        ld.append(abs(la.length - 2 * a) / fine)
        sa.append(abs(s.length - 2 * b) / fine)
    print(f"\n{n} ellipses on 0.5 x 0.9-1.0 mm pixels: LD median {np.median(ld):.2f} max "
          f"{max(ld):.2f}, SA median {np.median(sa):.2f} max {max(sa):.2f} (smaller pixels)")


def ellipsoids(n: int = 40, seed: int = 99) -> None:
    rng = np.random.default_rng(seed)
    ld, sa, vol, d3, d3g = [], [], [], [], []
    for _ in range(n):
        major = rng.uniform(10, 60)
        axes = (major / 2, major / 2 * rng.uniform(0.6, 1), major / 2 * rng.uniform(0.6, 1))
        dy = rng.uniform(0.5, 1.0)
        dx = dy if rng.random() < 0.5 else rng.uniform(0.5, 1.0)
        spacing = (rng.uniform(0.6, 2.5), dy, dx)
        ell = Ellipsoid(axes, random_rotation(rng), np.zeros(3))
        r0 = max(axes) + 3
        shape = [int(np.ceil(2 * r0 / s)) + 2 for s in spacing]
        grid = Volume.from_grid(np.zeros(shape, np.uint8), spacing,
                                -r0 + rng.uniform(0, 1, 3) * np.array(spacing)[::-1])
        r = measure_mask(grid, ell.rasterise(grid))
        truth = [ell.section_axes(grid, k) for k in range(grid.shape[0])]
        px = min(dy, dx)
        ld.append((r.long_axis_mm - max(t[0] for t in truth)) / px)
        sa.append((r.short_axis_mm - truth[r.slice_index][1]) / px)
        vol.append(r.volume_ml / ell.volume_ml - 1)
        d3.append(r.max_3d_diameter_mm - 2 * axes[0])
        d3g.append(d3[-1] / spacing[0])
    print(f"\n{n} ellipsoids, 10-60 mm, random rotations, slice gap 0.6-2.5 mm, seed {seed}")
    for name, e in (("LD (px)", ld), ("SA (px)", sa), ("volume (relative)", vol),
                    ("max 3D diameter (mm)", d3)):
        e = np.array(e)
        print(f"  {name}: mean {e.mean():+.3f}, median abs {np.median(abs(e)):.3f}, "
              f"max abs {abs(e).max():.3f}")
    print(f"  max 3D diameter error / slice gap: max {max(d3g):.2f}")


def lidc(folder: Path) -> None:
    import time

    import SimpleITK as sitk
    from scipy.ndimage import binary_erosion
    from scipy.spatial.distance import pdist

    with open(folder / "nodules.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    diffs, times, multi = [], [], 0
    for row in rows:
        vol = volume_from_sitk(sitk.ReadImage(str(folder / "mask" / f"{row['key']}.nii.gz")))
        m = vol.array > 0
        t = time.perf_counter()
        r = measure_mask(vol)
        times.append(time.perf_counter() - t)
        ref = 0.0
        for k in range(m.shape[0]):
            pts = np.argwhere(m[k] & ~binary_erosion(m[k])) * np.array(vol.spacing[1:])
            if pts.shape[0] > 1:
                ref = max(ref, float(pdist(pts).max()))
        diffs.append((r.long_axis_mm - ref) / min(vol.spacing[1:]))
        multi += r.n_components > 1
        assert r.short_axis_mm <= r.long_axis_mm + 1e-9
    d = np.array(diffs)
    print(f"\n{len(rows)} LIDC masks: LD - pixel-centre pdist {d.min():+.2f} .. {d.max():+.2f} px "
          f"(median {np.median(d):+.2f}); {multi} with several parts on the measured slice; "
          f"{np.median(times) * 1000:.1f} ms median, {max(times) * 1000:.1f} ms max")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    from tests.conftest import shared_data_dir

    ap.add_argument("--lidc", type=Path, default=shared_data_dir() / "lesions/lidc_nodules")
    args = ap.parse_args()
    boundary_choice()
    anisotropic()
    ellipsoids()
    if args.lidc.is_dir():
        lidc(args.lidc)


if __name__ == "__main__":
    main()
