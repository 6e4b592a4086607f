"""Loader benchmark: recist-tool vs SimpleITK, plain pydicom and dcm2niix, in one run.

Each reader runs in its own fresh process on the same series, so the wall time is the whole
process (interpreter start and imports included) and the memory is that process's peak RSS.
For Python readers the RSS right after imports (the interpreter's baseline) is also recorded,
so the memory the load itself needs can be compared with the int16 volume's size.

Usage::

    python benchmarks/bench_load.py [--out bench-out] [--slices 300] [--repeat 3] [--compile]

The series are made by ``recist_tool.sample_data.write_benchmark_series`` (uncompressed and
JPEG 2000 lossless, 512 x 512 x N) and cached in ``--out``.

``--compile`` byte-compiles recist_tool's modules first, as installing a wheel does. Without it,
a checkout run with ``PYTHONDONTWRITEBYTECODE`` set (or read-only) compiles them from source in
every process, which the other readers' installed packages never do.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_PROBE = r"""
import json, sys, time
def rss(key):
    for line in open('/proc/self/status'):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
{imports}
base = rss('VmRSS:')
t = time.perf_counter()
{load}
t_load = time.perf_counter() - t
print(json.dumps({{'baseline': base, 'peak': rss('VmHWM:'), 'load_s': t_load, 'shape': list(shape)}}))
"""

READERS = {
    "recist (1 process)": (
        "from recist_tool import io",
        "v = io.load_volume(sys.argv[1], workers=1); shape = v.shape",
    ),
    "recist (2 processes)": (
        "from recist_tool import io",
        "v = io.load_volume(sys.argv[1], workers=2); shape = v.shape",
    ),
    "SimpleITK ImageSeriesReader": (
        "import SimpleITK as sitk",
        "r = sitk.ImageSeriesReader(); r.SetFileNames(r.GetGDCMSeriesFileNames(sys.argv[1]));"
        " img = r.Execute(); shape = img.GetSize()[::-1]",
    ),
    "pydicom (plain loop)": (
        "import glob, numpy as np, pydicom",
        "ds = [pydicom.dcmread(f) for f in sorted(glob.glob(sys.argv[1] + '/*'))];"
        " ds.sort(key=lambda d: float(d.ImagePositionPatient[2]));"
        " a = np.stack([d.pixel_array * float(d.RescaleSlope) + float(d.RescaleIntercept)"
        " for d in ds]).astype(np.int16); shape = a.shape",
    ),
}


def run_python(name: str, series: Path) -> dict:
    imports, load = READERS[name]
    code = _PROBE.format(imports=imports, load=load)
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code, str(series)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    out, err = proc.stdout.read(), proc.stderr.read()  # type: ignore[union-attr]
    if status != 0:
        raise RuntimeError(f"{name} failed: {err.strip()[-300:]}")
    res = json.loads(out.strip().splitlines()[-1])
    res.update(wall_s=wall, max_rss_tree=usage.ru_maxrss * 1024)
    return res


# dcm2niix is started by a small Python launcher that reports its child's peak: Linux counts in a
# process's ru_maxrss the memory of the process it was forked from (kept across exec), so started
# from this benchmark (hundreds of MiB after writing the series) it would report ours, not its own.
_LAUNCH = """
import os, subprocess, sys, time
t = time.perf_counter()
p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
_, status, usage = os.wait4(p.pid, 0)
print(time.perf_counter() - t, usage.ru_maxrss, status)
"""


def run_dcm2niix(series: Path) -> dict | None:
    exe = shutil.which("dcm2niix", path=os.pathsep.join([str(Path(sys.executable).parent),
                                                          os.environ.get("PATH", "")]))
    if exe is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run([sys.executable, "-c", _LAUNCH, exe, "-z", "n", "-b", "n", "-o", tmp,
                              str(series)], capture_output=True, text=True, check=True).stdout
    wall, max_rss_kib, status = out.split()
    if int(status) != 0:
        return None
    peak = int(max_rss_kib) * 1024
    return {"wall_s": float(wall), "max_rss_tree": peak, "baseline": None, "peak": peak,
            "load_s": None}


def recist_bytecode_state() -> str:
    """Whether the loader's modules have up-to-date bytecode (else each process compiles them)."""
    import importlib.util

    import recist_tool.io.dicom as mod

    pyc = Path(importlib.util.cache_from_source(mod.__file__))
    if not pyc.exists():
        return "absent"
    return "present" if pyc.stat().st_mtime >= Path(mod.__file__).stat().st_mtime else "stale"


def best_of(fn, repeat: int) -> dict:
    runs = [fn() for _ in range(repeat)]
    runs = [r for r in runs if r is not None]
    if not runs:
        return {}
    best = min(runs, key=lambda r: r["wall_s"])
    best["walls"] = [round(r["wall_s"], 3) for r in runs]
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("bench-out"))
    ap.add_argument("--slices", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--compile", action="store_true",
                    help="byte-compile recist_tool's modules before timing")
    args = ap.parse_args()

    if args.compile:
        import compileall

        import recist_tool

        compileall.compile_dir(Path(recist_tool.__file__).parent, quiet=1)

    from recist_tool.sample_data import write_benchmark_series

    shape = (args.slices, 512, 512)
    vol_bytes = args.slices * 512 * 512 * 2
    results: dict[str, dict[str, dict]] = {}
    load_before = os.getloadavg()
    for syntax in ("explicit", "jpeg2000"):
        series = args.out / f"series_{syntax}_{args.slices}"
        # the marker lies beside the series, not in it: the loader would report it as a
        # skipped non-DICOM file
        done = series.with_name(series.name + ".complete")
        if not done.exists():
            print(f"writing {series} ...", flush=True)
            write_benchmark_series(series, shape=shape, transfer_syntax=syntax, seed=0)
            done.write_text("ok")
        results[syntax] = {}
        for name in READERS:
            if name.startswith("pydicom") and syntax == "jpeg2000":
                continue
            results[syntax][name] = best_of(lambda n=name, s=series: run_python(n, s), args.repeat)
        results[syntax]["dcm2niix (writes .nii)"] = best_of(lambda s=series: run_dcm2niix(s),
                                                            args.repeat)

    load_after = os.getloadavg()
    print(f"\nmachine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}; volume {shape} int16 = {vol_bytes / 2**20:.0f} MiB")
    print(f"recist_tool bytecode: {recist_bytecode_state()} "
          f"({'compiled by --compile' if args.compile else 'not compiled by this run'}); "
          f"PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', '(unset)')}")
    print(f"load average (1, 5, 15 min) before the runs: "
          f"{', '.join(f'{v:.2f}' for v in load_before)}; after: "
          f"{', '.join(f'{v:.2f}' for v in load_after)}")
    for syntax, rows in results.items():
        ref = rows.get("SimpleITK ImageSeriesReader", {}).get("wall_s")
        print(f"\n{syntax}: best of {args.repeat} whole-process runs")
        print(f"{'reader':32s} {'wall s':>7s} {'/SITK':>6s} {'peak MiB':>9s} "
              f"{'above base MiB':>15s} {'/vol':>5s}")
        for name, r in rows.items():
            if not r:
                print(f"{name:32s}   (not available)")
                continue
            above = (r["peak"] - r["baseline"]) if r.get("baseline") is not None else None
            print(f"{name:32s} {r['wall_s']:7.2f} {r['wall_s'] / ref if ref else float('nan'):6.2f} "
                  f"{r['peak'] / 2**20:9.0f} "
                  f"{(above / 2**20) if above is not None else float('nan'):15.0f} "
                  f"{(above / vol_bytes) if above is not None else float('nan'):5.2f}")
    j = results["jpeg2000"]
    one, two = j.get("recist (1 process)"), j.get("recist (2 processes)")
    if one and two:
        print(f"\nJPEG 2000 parallel decoding speed-up, 1 -> 2 processes: "
              f"{one['wall_s'] / two['wall_s']:.2f}x (load only: {one['load_s'] / two['load_s']:.2f}x)")
    if args.json:
        args.json.write_text(json.dumps({"load_average": {"before": load_before,
                                                          "after": load_after},
                                         **results}, indent=1))


if __name__ == "__main__":
    main()
