"""Pulling a CT series from a PACS against reading the same files from disk.

Writes a 300 × 512 × 512 series (``write_benchmark_series``, uncompressed Explicit VR Little
Endian, 150 MiB), stores it in a throw-away Orthanc on 127.0.0.1 (``.ci/orthanc.sh``, or the one in
``$RECIST_TEST_ORTHANC_URL``), then times in this process, best of ``--repeat``:

* disk: ``load_volume(folder)`` (files in the page cache, as they are after a first read);
* WADO-RS: ``load_volume("pacs://web/STUDY/SERIES")`` with an empty cache each time (QIDO-RS
  search, WADO-RS retrieve written to the cache, the same loader on the cached files);
* C-GET: the same by DIMSE;
* cached: ``load_volume`` of the reference again (search, then the cached files).

Goal: WADO-RS ≤ 1.5 × the disk time on loopback.

    python benchmarks/bench_pacs.py [--out /tmp/bench-pacs] [--repeat 5] [--slices 300]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _server() -> tuple[dict[str, str], bool]:
    """The Orthanc's variables (see .ci/orthanc.sh) and whether this run started it."""
    if os.environ.get("RECIST_TEST_ORTHANC_URL"):
        return {k: v for k, v in os.environ.items() if k.startswith("RECIST_TEST_ORTHANC_")}, False
    run = subprocess.run(["bash", str(REPO / ".ci" / "orthanc.sh"), "--no-install"],
                         capture_output=True, text=True, check=True)
    return dict(line.split("=", 1) for line in run.stdout.splitlines() if "=" in line), True


def _best(fn, repeat: int, before=None) -> float:
    times = []
    for _ in range(repeat):
        if before is not None:
            before()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "bench-pacs")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--slices", type=int, default=300)
    args = ap.parse_args()

    from recist_tool.io import load_volume, pacs
    from recist_tool.sample_data import write_benchmark_series

    series_dir = args.out / f"series-{args.slices}"
    if not (series_dir / "done").exists():
        shutil.rmtree(series_dir, ignore_errors=True)
        write_benchmark_series(series_dir, shape=(args.slices, 512, 512))
        (series_dir / "done").touch()
    files = sorted(p for p in series_dir.rglob("*.dcm"))
    env, started = _server()
    try:
        host, _, port = env["RECIST_TEST_ORTHANC_DICOM"].rpartition(":")
        toml = args.out / "trial.toml"
        toml.write_text(f"""[pacs.web]
url = "{env['RECIST_TEST_ORTHANC_URL']}/dicom-web"
credentials = "{env['RECIST_TEST_ORTHANC_CREDENTIALS']}"
[pacs.dimse]
dicom = "{host}:{port}"
aet = "{env['RECIST_TEST_ORTHANC_AET']}"
calling_aet = "{env['RECIST_TEST_ORTHANC_CALLING_AET']}"
""")
        cache = args.out / "cache"
        os.environ.update({"RECIST_PACS_CONFIG": str(toml), "RECIST_PACS_CACHE": str(cache)})
        t = time.perf_counter()
        for i in range(0, len(files), 50):
            pacs.send("web", files[i:i + 50])
        upload = time.perf_counter() - t
        disk_vol = load_volume(series_dir)
        ref = f"pacs://web/{disk_vol.meta.study_uid}/{disk_vol.meta.series_uid}"
        ref_dimse = ref.replace("//web/", "//dimse/")

        def empty_cache() -> None:
            shutil.rmtree(cache, ignore_errors=True)

        disk = _best(lambda: load_volume(series_dir), args.repeat)
        wado = _best(lambda: load_volume(ref), args.repeat, empty_cache)
        cget = _best(lambda: load_volume(ref_dimse), args.repeat, empty_cache)
        load_volume(ref)
        cached = _best(lambda: load_volume(ref), args.repeat)
        import numpy as np

        assert np.array_equal(load_volume(ref).array, disk_vol.array)
    finally:
        if started:
            subprocess.run(["bash", str(REPO / ".ci" / "orthanc.sh"), "--stop",
                            env["RECIST_TEST_ORTHANC_DIR"]], check=False)
    mib = sum(f.stat().st_size for f in files) / 2**20
    print(f"{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}; "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"series: {len(files)} files, {mib:.0f} MiB; upload by STOW-RS (50 a request) "
          f"{upload:.2f} s; best of {args.repeat}")
    print("| read | wall s | / disk |\n| --- | --- | --- |")
    for name, sec in (("disk (page cache)", disk), ("WADO-RS, empty cache", wado),
                      ("C-GET, empty cache", cget), ("WADO-RS reference, cached", cached)):
        print(f"| {name} | {sec:.2f} | {sec / disk:.2f} |")
    print(f"goal WADO-RS <= 1.5 x disk: {'met' if wado <= 1.5 * disk else 'NOT met'} "
          f"({wado / disk:.2f} x)")


if __name__ == "__main__":
    main()
