"""Pulling a CT series from a PACS against reading the same files from disk.

Writes a 300 × 512 × 512 series (``write_benchmark_series``, uncompressed Explicit VR Little
Endian, 150 MiB), stores it in a throw-away Orthanc on 127.0.0.1 (``.ci/orthanc.sh``, or the one in
``$RECIST_TEST_ORTHANC_URL``), then times in this process, ``--repeat`` rounds, each round every
read once in turn (so a busy machine's load falls on all of them alike):

* disk: ``load_volume(folder)`` (files in the page cache, as they are after a first read);
* WADO-RS: ``load_volume("pacs://web/STUDY/SERIES")`` with an empty cache each time (QIDO-RS
  search, WADO-RS retrieve written to the cache while the loader reads the headers of the
  instances already written, then the pixels);
* WADO-RS, retrieve then load: the same search, retrieve and loader one after the other (the
  series complete in the cache first: what ``load_volume`` did before the two overlapped);
* WADO-RS, retrieve only: the search and the retrieve into the cache;
* C-GET: the same by DIMSE, overlapped and one after the other;
* cached: ``load_volume`` of the reference again (search, then the cached files).

Prints the median and range of each, the median over the disk's median, the median CPU time of
this process and its worker processes (not the server's) per read, and the load average before
and after. Goal: WADO-RS ≤ 1.5 × the disk time on loopback.

    python benchmarks/bench_pacs.py [--out /tmp/bench-pacs] [--repeat 7] [--slices 300]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
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


def _cpu() -> float:
    """CPU seconds (user + system) of this process and of its ended worker processes."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _rounds(reads: dict, repeat: int, before: dict
            ) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Wall seconds and CPU seconds (:func:`_cpu`, the server's not counted) of each read,
    ``repeat`` rounds of every read once in turn."""
    times: dict[str, list[float]] = {name: [] for name in reads}
    cpu: dict[str, list[float]] = {name: [] for name in reads}
    for _ in range(repeat):
        for name, fn in reads.items():
            if name in before:
                before[name]()
            c, t = _cpu(), time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
            cpu[name].append(_cpu() - c)
    return times, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "bench-pacs")
    ap.add_argument("--repeat", type=int, default=7)
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

        def one_after_the_other(reference: str, load: bool = True) -> None:
            r = pacs.parse_ref(reference)
            srv = pacs.server(r.server)
            n = pacs.find_series(srv, r.study_uid, r.series_uid)[0]["n"]
            with pacs.fetch_series(srv, r.study_uid, r.series_uid, n) as entry:
                folder = entry.instances  # the whole series retrieved here
                if load:
                    load_volume(folder)

        load0 = os.getloadavg()
        reads = {
            "disk (page cache)": lambda: load_volume(series_dir),
            "WADO-RS, empty cache": lambda: load_volume(ref),
            "WADO-RS, empty cache, retrieve then load": lambda: one_after_the_other(ref),
            "WADO-RS, retrieve only": lambda: one_after_the_other(ref, load=False),
            "C-GET, empty cache": lambda: load_volume(ref_dimse),
            "C-GET, empty cache, retrieve then load": lambda: one_after_the_other(ref_dimse),
            "WADO-RS reference, cached": lambda: load_volume(ref),
        }
        before = {name: empty_cache for name in reads if "empty" in name or "only" in name}
        before["WADO-RS reference, cached"] = lambda: (empty_cache(), load_volume(ref))
        times, cpu = _rounds(reads, args.repeat, before)
        load1 = os.getloadavg()
        import numpy as np

        empty_cache()
        assert np.array_equal(load_volume(ref).array, disk_vol.array)
        assert np.array_equal(load_volume(ref_dimse).array, disk_vol.array)
    finally:
        if started:
            subprocess.run(["bash", str(REPO / ".ci" / "orthanc.sh"), "--stop",
                            env["RECIST_TEST_ORTHANC_DIR"]], check=False)
    mib = sum(f.stat().st_size for f in files) / 2**20
    print(f"{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}; "
          f"load average (1, 5, 15 min) before {load0[0]:.1f} {load0[1]:.1f} {load0[2]:.1f}, "
          f"after {load1[0]:.1f} {load1[1]:.1f} {load1[2]:.1f}")
    print(f"series: {len(files)} files, {mib:.0f} MiB; upload by STOW-RS (50 a request) "
          f"{upload:.2f} s; {args.repeat} rounds")
    disk = statistics.median(times["disk (page cache)"])
    disk_cpu = statistics.median(cpu["disk (page cache)"])
    print("| read | median s | range s | median / disk median | CPU s (median) | CPU / disk CPU |\n"
          "| --- | --- | --- | --- | --- | --- |")
    for name, ts in times.items():
        med, med_cpu = statistics.median(ts), statistics.median(cpu[name])
        print(f"| {name} | {med:.2f} | {min(ts):.2f}–{max(ts):.2f} | {med / disk:.2f} "
              f"| {med_cpu:.2f} | {med_cpu / disk_cpu:.2f} |")
    wado = statistics.median(times["WADO-RS, empty cache"])
    print(f"goal WADO-RS <= 1.5 x disk: {'met' if wado <= 1.5 * disk else 'NOT met'} "
          f"({wado / disk:.2f} x, medians)")


if __name__ == "__main__":
    main()
