"""Long/short axis from a lesion mask: recist-tool against two peers, in one run.

Peers
-----
* scikit-image: ``regionprops(mask, spacing=...)[0].feret_diameter_max`` (long axis only).
* The ULS23 evaluator's algorithm (re-implemented here from its description): on every slice
  the largest connected part, its boundary pixels (part minus its erosion), all pairwise
  distances (``pdist`` + ``squareform``) for the long axis; then, on the long-axis slice, a loop
  over all boundary-pixel pairs for the longest one within 1 degree of perpendicular (the
  tolerance grows by 1 degree until a pair is found) for the short axis.
* The same brute force vectorised with numpy (the strongest form of the pairwise search), and
  ``pdist`` alone for the long axis only.

Truth: rasterised ellipses / ellipsoids (voxel-centre sampling) at random orientations and
sub-pixel positions, whose exact long axis (2a) and short axis (2b) are known.

Times: per shape, the minimum over repeats (the benchmark machine is shared); the table shows the
median over shapes. Run: ``python benchmarks/bench_measure.py [--quick]``; prints markdown
tables.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from functools import partial

import numpy as np
from scipy.ndimage import binary_erosion
from scipy.spatial.distance import cdist, pdist, squareform
from skimage.measure import regionprops

from recist_tool.measure import measure_mask
from recist_tool.measure.planar import long_axis, slice_outline
from recist_tool.volume import Volume


# ----------------------------------------------------------------------------- shapes
def ellipse(rng, a: float, b: float, dy: float, dx: float) -> np.ndarray:
    th = rng.uniform(0, np.pi)
    r = a + 3.0
    ny, nx = int(np.ceil(2 * r / dy)) + 4, int(np.ceil(2 * r / dx)) + 4
    y = (np.arange(ny) - ny / 2 + rng.uniform()) * dy
    x = (np.arange(nx) - nx / 2 + rng.uniform()) * dx
    yy, xx = np.meshgrid(y, x, indexing="ij")
    u = xx * np.cos(th) + yy * np.sin(th)
    v = -xx * np.sin(th) + yy * np.cos(th)
    return (u / a) ** 2 + (v / b) ** 2 <= 1.0


def ellipsoid(rng, axes, spacing) -> tuple[np.ndarray, float, float]:
    """Axial-plane-aligned ellipsoid (long axis in plane) rotated about z; returns truth LD, SA
    of the best slice computed exactly on the grid's slice planes."""
    a, b, c = axes
    dz, dy, dx = spacing
    th = rng.uniform(0, np.pi)
    r = a + 3.0
    n = [int(np.ceil(2 * (c + 3) / dz)) + 2, int(np.ceil(2 * r / dy)) + 4,
         int(np.ceil(2 * r / dx)) + 4]
    z = (np.arange(n[0]) - n[0] / 2 + rng.uniform()) * dz
    y = (np.arange(n[1]) - n[1] / 2 + rng.uniform()) * dy
    x = (np.arange(n[2]) - n[2] / 2 + rng.uniform()) * dx
    zz, yy, xx = np.meshgrid(z, y, x, indexing="ij")
    u = xx * np.cos(th) + yy * np.sin(th)
    v = -xx * np.sin(th) + yy * np.cos(th)
    m = (u / a) ** 2 + (v / b) ** 2 + (zz / c) ** 2 <= 1.0
    scale = np.sqrt(np.clip(1 - (z / c) ** 2, 0, None)).max()
    return m, 2 * a * scale, 2 * b * scale


# ----------------------------------------------------------------------------- peers
def ours_ld(m2d: np.ndarray, dy: float, dx: float) -> float:
    return long_axis(slice_outline(m2d, (dy, dx))).length


def pdist_ld(m2d: np.ndarray, dy: float, dx: float) -> float:
    return float(pdist(np.argwhere(m2d & ~binary_erosion(m2d)) * np.array([dy, dx])).max())


def skimage_feret(m2d: np.ndarray, dy: float, dx: float) -> float:
    return float(regionprops(m2d.astype(np.uint8), spacing=(dy, dx))[0].feret_diameter_max)


def uls_style(mask: np.ndarray, dy: float, dx: float) -> tuple[float, float]:
    """Brute force as in the ULS23 evaluator: per-slice boundary pdist, then perpendicular SA."""
    best, best_pts, best_pair = 0.0, None, None
    for k in range(mask.shape[0]):
        s = mask[k]
        if not s.any():
            continue
        pts = np.argwhere(s & ~binary_erosion(s)) * np.array([dy, dx])
        if pts.shape[0] < 2:
            continue
        d = squareform(pdist(pts))
        i, j = np.unravel_index(int(np.argmax(d)), d.shape)
        if d[i, j] > best:
            best, best_pts, best_pair = float(d[i, j]), pts, (pts[i], pts[j])
    if best_pts is None:
        return 0.0, 0.0
    u = (best_pair[1] - best_pair[0]) / best
    ii, jj = np.triu_indices(best_pts.shape[0], 1)
    v = best_pts[jj] - best_pts[ii]
    length = np.hypot(v[:, 0], v[:, 1])
    ok = length > 0
    cosang = np.abs(v[ok] @ u) / length[ok]
    for tol_deg in range(1, 91):
        sel = cosang <= np.sin(np.radians(tol_deg))
        if sel.any():
            return best, float(length[ok][sel].max())
    return best, 0.0


def brute_force_all(mask: np.ndarray, spacing) -> tuple[float, float, float]:
    """Pairwise search for everything ``measure_mask`` returns: per-slice LD + SA (vectorised,
    :func:`uls_style`) and the maximal 3D diameter over all 3D boundary voxels (blockwise
    pairwise distances, so memory stays bounded)."""
    dz, dy, dx = spacing
    ld, sa = uls_style(mask, dy, dx)
    pts = np.argwhere(mask & ~binary_erosion(mask)) * np.array([dz, dy, dx])
    best = 0.0
    for k in range(0, pts.shape[0], 2048):
        best = max(best, float(cdist(pts[k:k + 2048], pts[k:]).max()))
    return ld, sa, best


def uls23_algorithm(mask: np.ndarray, dy: float, dx: float) -> tuple[float, float]:
    """The ULS23 evaluator's long/short axis algorithm, pure-Python pair loop included."""
    import itertools

    from scipy.ndimage import label

    best, best_z_pts, best_pair = 0.0, None, None
    for k in range(mask.shape[0]):
        lab, n = label(mask[k])
        if n == 0:
            continue
        if n > 1:
            counts = np.bincount(lab.ravel())
            counts[0] = 0
            lab = (lab == int(np.argmax(counts))).astype(int)
        part = lab > 0
        pts = np.argwhere(part & ~binary_erosion(part)) * np.array([dy, dx])
        if pts.shape[0] < 2:
            continue
        d = squareform(pdist(pts))
        i, j = np.unravel_index(int(np.argmax(d)), d.shape)
        if d[i, j] > best:
            best, best_z_pts, best_pair = float(d[i, j]), pts, (pts[i], pts[j])
    if best_z_pts is None:
        return 0.0, 0.0
    u = best_pair[1] - best_pair[0]
    nu = float(np.hypot(*u))
    short, tol = 0.0, 0
    while short == 0.0 and tol <= 90:
        for p3, p4 in itertools.combinations(best_z_pts, 2):
            v = p4 - p3
            nv = float(np.hypot(*v))
            if nv == 0:
                continue
            cosang = max(-1.0, min(1.0, float(u @ v) / (nu * nv)))
            if abs(np.degrees(np.arccos(cosang)) - 90.0) < tol and nv > short:
                short = nv
        tol += 1
    return best, short


def timed(fn, repeat: int) -> tuple[object, float]:
    t = time.perf_counter()
    out = fn()
    times = [time.perf_counter() - t] if repeat == 0 else []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    # the minimum of the repeats: the machine is shared, the minimum is the least disturbed
    return out, min(times) * 1000.0


# ----------------------------------------------------------------------------- runs
def bench_2d(sizes, n, dy, dx, repeat, seed=1) -> None:
    rng = np.random.default_rng(seed)
    px = min(dy, dx)
    print(f"\n### 2D ellipses, pixel spacing {dy} x {dx} mm, {n} per size (errors vs 2a)\n")
    print("| LD mm | method | mean err (px) | median abs err (px) | max abs err (px) | "
          "SA median / max abs err (px) | time ms (median of per-shape minima) |")
    print("|---|---|---|---|---|---|---|")
    for size in sizes:
        rows: dict[str, dict[str, list[float]]] = {}
        for _ in range(n):
            a = size / 2
            b = a * rng.uniform(0.5, 1.0)
            m = ellipse(rng, a, b, dy, dx)
            vol = Volume.from_grid(m[None].astype(np.uint8), (5.0, dy, dx))
            r, t_full = timed(partial(measure_mask, vol), repeat)
            _, t_ld = timed(partial(ours_ld, m, dy, dx), repeat)
            fer, t_sk = timed(partial(skimage_feret, m, dy, dx), repeat)
            (uld, usa), t_u = timed(partial(uls_style, m[None], dy, dx), repeat)
            (gld, gsa), t_g = timed(partial(uls23_algorithm, m[None], dy, dx), 0)
            _, t_upd = timed(partial(pdist_ld, m, dy, dx), repeat)
            for name, ld, sa, t in (
                ("recist-tool measure_mask (LD+SA+vol+3D)", r.long_axis_mm, r.short_axis_mm,
                 t_full),
                ("recist-tool long axis only", r.long_axis_mm, None, t_ld),
                ("skimage feret_diameter_max", fer, None, t_sk),
                ("ULS23 evaluator algorithm (LD + SA)", gld, gsa, t_g),
                ("brute force vectorised (LD + SA)", uld, usa, t_u),
                ("brute force pdist (LD only)", uld, None, t_upd),
            ):
                row = rows.setdefault(name, {"e": [], "sa": [], "t": []})
                row["e"].append((ld - 2 * a) / px)
                if sa is not None:
                    row["sa"].append(abs(sa - 2 * b) / px)
                row["t"].append(t)
        for name, row in rows.items():
            e = np.array(row["e"])
            sa = (f"{np.median(row['sa']):.2f} / {np.max(row['sa']):.2f}" if row["sa"] else "-")
            print(f"| {size:g} | {name} | {e.mean():+.2f} | {np.median(np.abs(e)):.2f} | "
                  f"{np.abs(e).max():.2f} | {sa} | {np.median(row['t']):.2f} |")


def bench_3d(cases, repeat, seed=2) -> None:
    rng = np.random.default_rng(seed)
    print("\n### 3D lesions (ellipsoid, long axis in the axial plane), whole mask\n")
    print("| lesion | spacing (z, y, x) mm | slices | recist-tool ms (all outputs) | ULS23 "
          "algorithm ms (LD + SA; ratio) | vectorised brute force ms (LD + SA; ratio) | pairwise "
          "search, same outputs ms (LD + SA + 3D diameter; ratio) | LD err ours / brute (mm) | "
          "SA err ours / ULS23 / vectorised (mm) | 3D diameter err ours / pairwise (mm) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for axes, spacing in cases:
        m, ld_true, sa_true = ellipsoid(rng, axes, spacing)
        vol = Volume.from_grid(m.astype(np.uint8), spacing)
        r, t_ours = timed(partial(measure_mask, vol), repeat)
        (uld, usa), t_u = timed(partial(uls_style, m, *spacing[1:]), max(1, repeat // 3))
        (gld, gsa), t_g = timed(partial(uls23_algorithm, m, *spacing[1:]), 0)
        (_, _, bd3), t_b = timed(partial(brute_force_all, m, spacing), 0)
        nz = int(m.any(axis=(1, 2)).sum())
        d3_true = 2.0 * max(axes)
        print(f"| {2 * axes[0]:g} x {2 * axes[1]:g} x {2 * axes[2]:g} mm | "
              f"{spacing[0]:g}, {spacing[1]:g}, {spacing[2]:g} | {nz} | {t_ours:.1f} | "
              f"{t_g:.0f} ({t_g / t_ours:.0f}x) | {t_u:.1f} ({t_u / t_ours:.1f}x) | "
              f"{t_b:.0f} ({t_b / t_ours:.0f}x) | "
              f"{r.long_axis_mm - ld_true:+.2f} / {uld - ld_true:+.2f} | "
              f"{r.short_axis_mm - sa_true:+.2f} / {gsa - sa_true:+.2f} / {usa - sa_true:+.2f} | "
              f"{r.max_3d_diameter_mm - d3_true:+.2f} / {bd3 - d3_true:+.2f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer shapes and repeats")
    ap.add_argument("--only-3d", action="store_true", help="only the whole-lesion table")
    args = ap.parse_args()
    n, repeat = (5, 3) if args.quick else (20, 7)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, numpy {np.__version__}")
    if not args.only_3d:
        sizes = [5, 10, 20, 30, 50, 60, 80, 100]
        bench_2d(sizes, n, 0.7, 0.7, repeat)
        bench_2d([10, 30, 60], n, 0.6, 0.85, repeat, seed=3)
    bench_3d([
        ((30, 22, 20), (5.0, 0.7, 0.7)),
        ((30, 22, 20), (2.5, 0.7, 0.7)),
        ((30, 22, 20), (1.0, 0.7, 0.7)),
        ((25, 20, 18), (1.0, 0.7, 0.7)),
        ((40, 30, 25), (1.25, 0.7, 0.7)),
        ((50, 35, 30), (2.5, 0.8, 0.8)),
    ], repeat)


if __name__ == "__main__":
    main()
