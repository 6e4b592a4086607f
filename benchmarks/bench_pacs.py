"""Pulling a CT series from a PACS against reading the same files from disk.

Writes a 300 × 512 × 512 series (``write_benchmark_series``, uncompressed Explicit VR Little
Endian, 150 MiB), stores it in a throw-away Orthanc on 127.0.0.1 (``.ci/orthanc.sh``, or the one in
``$RECIST_TEST_ORTHANC_URL``), then times in this process, ``--repeat`` rounds, each round every
read once in turn (so a busy machine's load falls on all of them alike):

* disk: ``load_volume(folder)`` (files in the page cache, as they are after a first read);
* WADO-RS: ``load_volume("pacs://web/STUDY/SERIES")`` with an empty cache each time (QIDO-RS
  search, WADO-RS retrieve written to the cache while a header process reads each instance's
  headers from its first bytes as received, then the pixels from the files);
* WADO-RS, headers from the files: the same with the loader's header processes reading the
  headers of the instances already written (``pacs.HEADERS_FROM_BYTES`` False: the way before
  2026-12-05);
* disk and WADO-RS with ``workers=1`` (as batch workers load): no header processes; the
  receiving thread reads each instance's headers from its bytes;
* WADO-RS, retrieve then load: the same search, retrieve and loader one after the other (the
  series complete in the cache first: what ``load_volume`` did before the two overlapped);
* WADO-RS, retrieve only: the search and the retrieve into the cache;
* C-GET: the same by DIMSE, overlapped and one after the other;
* cached: ``load_volume`` of the reference again (search, then the cached files);
* creating as many empty files in the cache folder as the series has (what the file system
  costs a retrieve beyond the bytes: on a journal-less ext4 it varies with the files other
  processes deleted there in the last minutes);
* with ``--before FILE`` (an earlier ``recist_tool/io/pacs/dicomweb.py``, e.g. from ``git show``):
  the WADO-RS reads again with that module's retrieve, alternating with the current one;
* with ``--storage-cache-mb MB``: the WADO-RS reads again from a second Orthanc whose storage
  cache is ``MB`` (the first: ``.ci/orthanc.sh``'s, 0, or the one ``$RECIST_TEST_ORTHANC_URL`` names).

The cache is emptied before each read by emptying its files and moving them aside, deleted at
the end, so that the run's own deletions (a series every read, which no user makes) do not slow
the next reads' file creation; ``--empty-by delete`` deletes them instead.

Prints the median and range of each, the median over the disk's median, the median CPU time of
this process and its worker processes and of the Orthanc process (where its pid is readable) per
read, and the load average before and after. Goal: WADO-RS ≤ 1.5 × the disk time on loopback.

    python benchmarks/bench_pacs.py [--out /tmp/bench-pacs] [--cache DIR] [--repeat 7]
        [--slices 300] [--no-dimse] [--empty-by move|delete] [--before OLD_DICOMWEB.py]
        [--storage-cache-mb 128]
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import cast

REPO = Path(__file__).resolve().parents[1]


def _server(storage_cache_mb: int | None = None) -> tuple[dict[str, str], bool]:
    """The Orthanc's variables (see .ci/orthanc.sh) and whether this run started it."""
    if storage_cache_mb is None and os.environ.get("RECIST_TEST_ORTHANC_URL"):
        return {k: v for k, v in os.environ.items() if k.startswith("RECIST_TEST_ORTHANC_")}, False
    env = dict(os.environ)
    if storage_cache_mb is not None:
        env["RECIST_ORTHANC_STORAGE_CACHE_MB"] = str(storage_cache_mb)
    run = subprocess.run(["bash", str(REPO / ".ci" / "orthanc.sh"), "--no-install"],
                         capture_output=True, text=True, check=True, env=env)
    return dict(line.split("=", 1) for line in run.stdout.splitlines() if "=" in line), True


def _server_cpu(env: dict[str, str]) -> Callable[[], float]:
    """CPU seconds (user + system) of the Orthanc process so far; NaN where it cannot be read."""
    try:
        pid = int((Path(env["RECIST_TEST_ORTHANC_DIR"]) / "orthanc.pid").read_text())
    except (KeyError, OSError, ValueError):
        return lambda: math.nan
    stat, tick = Path(f"/proc/{pid}/stat"), os.sysconf("SC_CLK_TCK")

    def cpu() -> float:
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            return math.nan
        return (int(fields[11]) + int(fields[12])) / tick  # utime, stime

    return cpu


def _retrieve_from(path: Path) -> Callable[..., int]:
    """``retrieve_series`` of another copy of ``recist_tool/io/pacs/dicomweb.py``."""
    spec = importlib.util.spec_from_file_location("dicomweb_before", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return cast(Callable[..., int], module.retrieve_series)


def _cpu() -> float:
    """CPU seconds (user + system) of this process and of its ended worker processes."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _rounds(reads: dict, repeat: int, before: dict, server_cpu: dict
            ) -> tuple[dict[str, list[float]], dict[str, list[float]], dict[str, list[float]]]:
    """Wall seconds, CPU seconds of this process (:func:`_cpu`) and of the read's server
    (``server_cpu[name]()``, NaN for none) of each read, ``repeat`` rounds of every read once in
    turn."""
    times: dict[str, list[float]] = {name: [] for name in reads}
    cpu: dict[str, list[float]] = {name: [] for name in reads}
    srv_cpu: dict[str, list[float]] = {name: [] for name in reads}
    for _ in range(repeat):
        for name, fn in reads.items():
            if name in before:
                before[name]()
            server = server_cpu.get(name, lambda: math.nan)
            c, s, t = _cpu(), server(), time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
            cpu[name].append(_cpu() - c)
            srv_cpu[name].append(server() - s)
    return times, cpu, srv_cpu


def _toml(name: str, env: dict[str, str], dimse: bool) -> str:
    out = f"""[pacs.{name}]
url = "{env['RECIST_TEST_ORTHANC_URL']}/dicom-web"
credentials = "{env['RECIST_TEST_ORTHANC_CREDENTIALS']}"
"""
    if dimse:
        host, _, port = env["RECIST_TEST_ORTHANC_DICOM"].rpartition(":")
        out += f"""[pacs.dimse]
dicom = "{host}:{port}"
aet = "{env['RECIST_TEST_ORTHANC_AET']}"
calling_aet = "{env['RECIST_TEST_ORTHANC_CALLING_AET']}"
"""
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "bench-pacs")
    ap.add_argument("--cache", type=Path, default=None,
                    help="the series cache folder (default: OUT/cache)")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--slices", type=int, default=300)
    ap.add_argument("--no-dimse", action="store_true", help="leave out the C-GET reads")
    ap.add_argument("--empty-by", choices=("move", "delete"), default="move",
                    help="how the cache is emptied before a read: its files emptied and moved "
                         "aside until the end (default), or deleted")
    ap.add_argument("--before", type=Path, default=None,
                    help="an earlier dicomweb.py whose retrieve to alternate with the current one")
    ap.add_argument("--storage-cache-mb", type=int, default=None,
                    help="also read from a second Orthanc with this storage cache (MB)")
    args = ap.parse_args()

    from recist_tool.io import load_volume, pacs
    from recist_tool.io.pacs import dicomweb
    from recist_tool.sample_data import write_benchmark_series
    from recist_tool.volume import Volume

    series_dir = args.out / f"series-{args.slices}"
    if not (series_dir / "done").exists():
        shutil.rmtree(series_dir, ignore_errors=True)
        write_benchmark_series(series_dir, shape=(args.slices, 512, 512))
        (series_dir / "done").touch()
    files = sorted(p for p in series_dir.rglob("*.dcm"))
    servers: list[dict[str, str]] = []
    try:
        env, started = _server()
        if started:
            servers.append(env)
        env2: dict[str, str] | None = None
        if args.storage_cache_mb is not None:
            env2, _ = _server(args.storage_cache_mb)
            servers.append(env2)
        toml = args.out / "trial.toml"
        toml.write_text(_toml("web", env, dimse=True)
                        + (_toml("web2", env2, dimse=False) if env2 is not None else ""))
        cache = args.cache if args.cache is not None else args.out / "cache"
        os.environ.update({"RECIST_PACS_CONFIG": str(toml), "RECIST_PACS_CACHE": str(cache)})
        t = time.perf_counter()
        for i in range(0, len(files), 50):
            pacs.send("web", files[i:i + 50])
        upload = time.perf_counter() - t
        if env2 is not None:
            for i in range(0, len(files), 50):
                pacs.send("web2", files[i:i + 50])
        disk_vol = load_volume(series_dir)
        ref = f"pacs://web/{disk_vol.meta.study_uid}/{disk_vol.meta.series_uid}"
        ref_dimse = ref.replace("//web/", "//dimse/")
        ref2 = ref.replace("//web/", "//web2/")

        aside = cache.parent / f"{cache.name}.aside"

        def empty_cache() -> None:
            if args.empty_by == "delete" or not cache.exists():
                shutil.rmtree(cache, ignore_errors=True)
                return
            # files emptied (their pages dropped, nothing written back) and moved aside, deleted
            # at the end: no inode of this run's reads is freed before the last round
            for f in cache.rglob("*"):
                if f.is_file():
                    os.truncate(f, 0)
            aside.mkdir(parents=True, exist_ok=True)
            cache.rename(aside / str(len(list(aside.iterdir()))))

        def one_after_the_other(reference: str, load: bool = True) -> None:
            r = pacs.parse_ref(reference)
            srv = pacs.server(r.server)
            n = pacs.find_series(srv, r.study_uid, r.series_uid)[0]["n"]
            with pacs.fetch_series(srv, r.study_uid, r.series_uid, n) as entry:
                folder = entry.instances  # the whole series retrieved here
                if load:
                    load_volume(folder)

        def from_files(reference: str) -> Volume:
            pacs.HEADERS_FROM_BYTES = False
            try:
                return load_volume(reference)
            finally:
                pacs.HEADERS_FROM_BYTES = True

        def create_files() -> None:
            folder = cache / "create-test"
            folder.mkdir(parents=True)
            for i in range(len(files)):
                (folder / f"{i:06d}.dcm").touch()

        current = dicomweb.retrieve_series

        def with_retrieve(fn: Callable[[], object], retrieve: Callable[..., int]
                          ) -> Callable[[], None]:
            def read() -> None:
                dicomweb.retrieve_series = retrieve  # type: ignore[assignment]
                try:
                    fn()
                finally:
                    dicomweb.retrieve_series = current  # type: ignore[assignment]
            return read

        load0 = os.getloadavg()
        reads: dict[str, Callable[[], object]] = {
            "disk (page cache)": lambda: load_volume(series_dir),
            "WADO-RS, empty cache": lambda: load_volume(ref),
            "WADO-RS, empty cache, headers from the files": lambda: from_files(ref),
            "disk, workers=1": lambda: load_volume(series_dir, workers=1),
            "WADO-RS, empty cache, workers=1": lambda: load_volume(ref, workers=1),
            "WADO-RS, empty cache, retrieve then load": lambda: one_after_the_other(ref),
            "WADO-RS, retrieve only": lambda: one_after_the_other(ref, load=False),
        }
        if args.before is not None:
            old = _retrieve_from(args.before)
            reads["WADO-RS, empty cache (--before)"] = with_retrieve(lambda: from_files(ref), old)
            reads["WADO-RS, retrieve only (--before)"] = with_retrieve(
                lambda: one_after_the_other(ref, load=False), old)
        if env2 is not None:
            reads[f"WADO-RS, empty cache, storage cache {args.storage_cache_mb} MB"] = (
                lambda: load_volume(ref2))
            reads[f"WADO-RS, retrieve only, storage cache {args.storage_cache_mb} MB"] = (
                lambda: one_after_the_other(ref2, load=False))
        if not args.no_dimse:
            reads["C-GET, empty cache"] = lambda: load_volume(ref_dimse)
            reads["C-GET, empty cache, retrieve then load"] = lambda: one_after_the_other(ref_dimse)
        reads["WADO-RS reference, cached"] = lambda: load_volume(ref)
        reads[f"creating {len(files)} empty files in the cache folder"] = create_files
        def cached() -> None:
            empty_cache()
            load_volume(ref)

        before = {name: empty_cache for name in reads if not name.startswith("disk")}
        before["WADO-RS reference, cached"] = cached
        cpu1, cpu2 = _server_cpu(env), _server_cpu(env2 or {})
        server_cpu = {name: (cpu2 if "storage cache" in name else cpu1)
                      for name in reads if "WADO-RS" in name or "C-GET" in name}
        times, cpu, srv_cpu = _rounds(reads, args.repeat, before, server_cpu)
        load1 = os.getloadavg()
        import numpy as np

        empty_cache()
        assert np.array_equal(load_volume(ref).array, disk_vol.array)
        empty_cache()
        assert np.array_equal(from_files(ref).array, disk_vol.array)
        empty_cache()
        assert np.array_equal(load_volume(ref, workers=1).array, disk_vol.array)
        assert np.array_equal(load_volume(ref).array, disk_vol.array)  # cached
        if not args.no_dimse:
            assert np.array_equal(load_volume(ref_dimse).array, disk_vol.array)
        if env2 is not None:
            assert np.array_equal(load_volume(ref2).array, disk_vol.array)
        empty_cache()
    finally:
        if args.empty_by == "move":
            shutil.rmtree(aside, ignore_errors=True)
        for e in servers:
            subprocess.run(["bash", str(REPO / ".ci" / "orthanc.sh"), "--stop",
                            e["RECIST_TEST_ORTHANC_DIR"]], check=False)
    mib = sum(f.stat().st_size for f in files) / 2**20
    print(f"{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}; "
          f"load average (1, 5, 15 min) before {load0[0]:.1f} {load0[1]:.1f} {load0[2]:.1f}, "
          f"after {load1[0]:.1f} {load1[1]:.1f} {load1[2]:.1f}")
    print(f"series: {len(files)} files, {mib:.0f} MiB; upload by STOW-RS (50 a request) "
          f"{upload:.2f} s; cache {cache}, emptied by {args.empty_by}; {args.repeat} rounds")
    disk = statistics.median(times["disk (page cache)"])
    disk_cpu = statistics.median(cpu["disk (page cache)"])
    print("| read | median s | range s | median / disk median | CPU s (median) | CPU / disk CPU "
          "| Orthanc CPU s (median) |\n| --- | --- | --- | --- | --- | --- | --- |")
    for name, ts in times.items():
        med, med_cpu = statistics.median(ts), statistics.median(cpu[name])
        med_srv = statistics.median(srv_cpu[name])
        print(f"| {name} | {med:.2f} | {min(ts):.2f}–{max(ts):.2f} | {med / disk:.2f} "
              f"| {med_cpu:.2f} | {med_cpu / disk_cpu:.2f} "
              f"| {'' if math.isnan(med_srv) else f'{med_srv:.2f}'} |")
    wado = statistics.median(times["WADO-RS, empty cache"])
    print(f"goal WADO-RS <= 1.5 x disk: {'met' if wado <= 1.5 * disk else 'NOT met'} "
          f"({wado / disk:.2f} x, medians)")


if __name__ == "__main__":
    main()
