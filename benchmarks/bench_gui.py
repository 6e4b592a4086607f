"""napari plugin benchmark: click → mask + lines shown, opening a series into the viewer, and the
longest event-loop stall.

1. **Click to mask and lines shown** on a 512 × 512 × 200 series: the widget's whole path (world →
   voxel, segmentation in a worker thread, labels + shapes layers updated and the Qt event loop
   drained), the first click as soon as the subject is open (the panel warms the model in a
   worker thread from the login on; nothing is warmed by the benchmark, and the first click
   waits for whatever of the warm-up is left) and the later clicks, against the later clicks'
   parts: the segmentation alone (``ReadingSession.segment_at``, no GUI) and the napari layer
   update alone.
2. **Opening a 300-slice DICOM series** into the viewer with the plugin's reader (load + image
   layer added and drawn) against SimpleITK's ``ImageSeriesReader`` reading the same files.
3. **The longest event-loop stall** from the login until the model's warm-up (a worker thread)
   has ended, then from "open" until the panel has opened the subject (its series loaded and its
   layers made in a worker thread, added and first drawn one per event-loop turn), during the
   first click and during the later clicks: a ``QTimer`` heartbeat in the GUI thread
   (:class:`Heartbeat`); a stall is the time between two ticks beyond the timer's interval (the
   interface did not answer then).

Run under a virtual display with 2 CPU threads for the issue's goal::

    OMP_NUM_THREADS=2 xvfb-run -a python benchmarks/bench_gui.py [--out bench-out] [--repeat 3]
        [--visits 3] [--organ lung] [--sample-stalls]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np


def _series(out: Path, nz: int) -> Path:
    from recist_tool.sample_data import write_benchmark_series

    folder = out / f"bench-{nz}x512x512"
    if not (folder / ".done").is_file():
        write_benchmark_series(folder, shape=(nz, 512, 512), transfer_syntax="explicit")
        (folder / ".done").write_text("ok")
    return folder


class Heartbeat:
    """A ``QTimer`` ticking every ``interval_ms`` in the GUI thread; the longest gap between two
    ticks beyond the interval is the longest event-loop stall.

    Parameters
    ----------
    app : QApplication
        The running application (its events are processed to take the last tick).
    interval_ms : int
        The timer's interval.

    Attributes
    ----------
    gaps : list of (str, float, float)
        Every stall of :attr:`long_s` or more: what was measured, its start and end
        (``time.perf_counter``).
    """

    #: A stall at least this long (s) is kept in :attr:`gaps`.
    long_s = 0.1

    def __init__(self, app: Any, interval_ms: int = 10) -> None:
        from qtpy.QtCore import QTimer

        self.app = app
        self.interval_s = interval_ms / 1000.0
        self.ticks: list[float] = []
        self.gaps: list[tuple[str, float, float]] = []
        self.timer = QTimer()
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(lambda: self.ticks.append(time.perf_counter()))

    @contextmanager
    def measure(self, into: list[float], what: str = "") -> Iterator[None]:
        """Tick while the block runs; append its longest stall (s) to ``into``, and each stall
        of :attr:`long_s` or more to :attr:`gaps` as ``what``'s."""
        self.ticks = [time.perf_counter()]
        self.timer.start()
        try:
            yield
        finally:
            end = time.perf_counter() + 2 * self.interval_s
            while time.perf_counter() < end:  # the block's last stall ends at the next tick
                self.app.processEvents()
                time.sleep(0.001)
            self.timer.stop()
            gaps = np.diff(self.ticks) if len(self.ticks) > 1 else np.array([0.0])
            into.append(max(0.0, float(gaps.max()) - self.interval_s))
            self.gaps += [(what, self.ticks[i], self.ticks[i + 1])
                          for i in np.flatnonzero(gaps - self.interval_s >= self.long_s)]


class StackSampler:
    """The GUI thread's Python stack, sampled every ``interval_s`` from a thread of its own, to
    tell what runs in a stall (:meth:`during`). A sample is taken when the sampling thread gets
    Python's lock: while the GUI thread holds it in compiled code, the samples come late and
    show where that code was called from."""

    #: Frames of these packages name a sample's steps (outermost first).
    OURS = ("napari_recist", "napari", "vispy", "superqt", "qtpy", "magicgui", "app_model")

    def __init__(self, interval_s: float = 0.003) -> None:
        import threading

        self.interval_s = interval_s
        self.samples: list[tuple[float, tuple[str, ...]]] = []
        self._gui = threading.main_thread().ident
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="stack-sampler")
        self.collections: list[tuple[int, float, float, bool]] = []  # gen, start, end, in GUI
        self._gc_start = 0.0

    def _gc(self, phase: str, info: dict[str, int]) -> None:
        """``gc.callbacks``: each collection of Python's cycle collector, timed."""
        import threading

        if phase == "start":
            self._gc_start = time.perf_counter()
        else:
            self.collections.append((info["generation"], self._gc_start, time.perf_counter(),
                                     threading.get_ident() == self._gui))

    def start(self) -> None:
        import gc

        gc.callbacks.append(self._gc)
        self._thread.start()

    def stop(self) -> None:
        import gc

        self._stop.set()
        self._thread.join()
        gc.callbacks.remove(self._gc)

    def _run(self) -> None:
        import sys

        while not self._stop.is_set():
            frame = sys._current_frames().get(self._gui)
            steps: list[str] = []
            while frame is not None:
                code = frame.f_code
                parts = Path(code.co_filename).parts
                pkg = next((x for x in reversed(parts[:-1]) if x in self.OURS), None)
                if pkg is not None or not steps:
                    steps.append(f"{pkg or Path(code.co_filename).stem}."
                                 f"{Path(code.co_filename).stem}.{code.co_name}")
                frame = frame.f_back
            self.samples.append((time.perf_counter(), tuple(reversed(steps))))
            time.sleep(self.interval_s)

    def during(self, start: float, end: float, depth: int = 5, most: int = 3) -> list[str]:
        """What the GUI thread ran between ``start`` and ``end``: the ``most`` commonest steps
        of the plugin with the first napari or vispy step they called (``from``), and the
        ``most`` commonest innermost call paths (the innermost ``depth`` steps in :attr:`OURS`,
        then the innermost frame), each with its share of the samples; and each collection of
        Python's cycle collector of 10 ms or more that overlaps it."""
        from collections import Counter

        inside = [steps for t, steps in self.samples if start <= t <= end]
        if not inside:
            return ["no sample"]

        def outer(steps: tuple[str, ...]) -> str:
            ours = [i for i, x in enumerate(steps) if x.startswith("napari_recist.")]
            if not ours:
                return "(outside the plugin) " + " > ".join(steps[1:3])
            return " > ".join(steps[ours[-1]:ours[-1] + 2])

        out = [f"  gc generation {g} {(t1 - t0) * 1000:.0f} ms in the "
               + ("GUI thread" if gui else "worker")
               for g, t0, t1, gui in self.collections
               if t1 >= start and t0 <= end and t1 - t0 >= 0.01]
        for name, key in (("from", outer), ("in", lambda st: " > ".join(st[-depth - 1:]))):
            paths = Counter(key(st) for st in inside)
            out += [f"{name:>4} {c / len(inside):4.0%} {p}" for p, c in paths.most_common(most)]
        return out


def _lesion_centre(vol, organ: str | None = None) -> tuple[float, float, float]:
    """The largest lesion of SYN-001's baseline anatomy (the benchmark series' phantom) inside
    the volume, of ``organ`` when given."""
    from recist_tool.sample_data import trial_ground_truth

    gt = trial_ground_truth(0, 1)["subjects"]["SYN-001"]["timepoints"]["BL"]["lesions"]
    cands = [les for les in gt.values() if organ is None or les.get("organ") == organ]
    for les in sorted(cands, key=lambda x: -x["long_axis_mm"]):
        idx = np.rint(vol.lps_to_index(les["center_lps"])).astype(int)
        if np.all(idx >= 0) and np.all(idx < vol.shape) and vol.array[tuple(idx)] > -100:
            return tuple(les["center_lps"])
    raise SystemExit("no lesion of the phantom lies inside the benchmark series")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="bench-out")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--visits", type=int, default=1,
                    help="visits of the subject opened (each the same 200-slice series): with "
                         "more than one napari's grid shows them side by side")
    ap.add_argument("--organ", default=None,
                    help="click the largest phantom lesion of this organ (e.g. lung: the unet path)")
    ap.add_argument("--sample-stalls", action="store_true",
                    help="sample the GUI thread's stack and print what ran in each stall of "
                         "100 ms or more")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    import napari
    import SimpleITK as sitk
    from qtpy.QtWidgets import QApplication

    from napari_recist._layers import lps_to_world
    from napari_recist._reader import read_series
    from napari_recist._widget import ReadingWidget
    from recist_tool.io import load_volume
    from recist_tool.reading import ReadingSession
    from recist_tool.store import TrialStore

    s200 = _series(out, 200)
    s300 = _series(out, 300)
    viewer = napari.Viewer(show=True)
    app = QApplication.instance()

    def drain() -> None:
        for _ in range(3):
            app.processEvents()

    # --- 2. open a 300-slice series -------------------------------------------------------
    ours, peer = [], []
    for _ in range(args.repeat):
        t = time.perf_counter()
        layers = read_series(str(s300))
        data, kw, _ = layers[0]
        layer = viewer.add_image(data, **kw)
        drain()
        ours.append(time.perf_counter() - t)
        viewer.layers.remove(layer)
        t = time.perf_counter()
        r = sitk.ImageSeriesReader()
        r.SetFileNames(r.GetGDCMSeriesFileNames(str(s300)))
        arr = sitk.GetArrayFromImage(r.Execute())
        peer.append(time.perf_counter() - t)
        del arr
    open_ours, open_peer = statistics.median(ours), statistics.median(peer)

    # --- 1. click → mask + lines on 512 x 512 x 200 -----------------------------------------
    vol = load_volume(s200)
    centre = _lesion_centre(vol, args.organ)
    db = out / "bench-gui.db"
    for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
        p.unlink(missing_ok=True)
    import datetime as dt

    with TrialStore(db) as store:
        store.add_reader("bench", "bench password")
        store.add_trial("bench")
        store.add_subject("bench", "BENCH")
        for i in range(args.visits):
            store.add_timepoint("BENCH", "BL" if i == 0 else f"W{6 * i:02d}",
                                dt.date(2025, 1, 1) + dt.timedelta(weeks=6 * i),
                                series_path=str(s200))
    beat = Heartbeat(app)
    sampler = StackSampler() if args.sample_stalls else None
    if sampler is not None:
        sampler.start()
    stall_open: list[float] = []
    stall_first: list[float] = []
    stall_later: list[float] = []
    widget = ReadingWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.db_edit.setText(str(db))
    widget.reader_edit.setText("bench")
    widget.password_edit.setText("bench password")
    stall_login: list[float] = []
    with beat.measure(stall_login, "login"):
        t = time.perf_counter()
        widget.login_btn.click()  # the panel's button: the password checked in a worker
        while widget.busy:
            app.processEvents()
            time.sleep(0.001)
        assert widget.session is not None, widget.last_message
        while widget._warming is not None:  # the model's warm-up (a worker, from the login)
            app.processEvents()
            time.sleep(0.001)
        logged_in = time.perf_counter() - t
    with beat.measure(stall_open, "opening"):
        t = time.perf_counter()
        assert widget.open_subject("BENCH")
        while widget.busy:
            app.processEvents()
            time.sleep(0.001)
        opened = time.perf_counter() - t
    assert widget.last_message.startswith(f"BENCH: {args.visits} of {args.visits}"), \
        widget.last_message
    widget.session.open_visit("BL", vol)
    world = lps_to_world(centre)

    def click() -> float:
        """One click on the lesion: seconds until its mask and axes are shown."""
        widget.discard()
        drain()
        t = time.perf_counter()
        widget.click_at_world(world)
        while widget.busy or widget.finding is None:
            app.processEvents()
            time.sleep(0.001)
        drain()
        return time.perf_counter() - t

    with beat.measure(stall_first, "first click"):
        first = click()
    gui, seg, upd = [], [], []
    for _ in range(args.repeat):
        with beat.measure(stall_later, "later click"):
            gui.append(click())
    session = ReadingSession(TrialStore(db), "bench", "bench password")
    session.open_subject("BENCH")
    session.open_visit("BL", vol)
    session.segment_at("BL", lps=centre)  # warm-up (segmenter load)
    for _ in range(args.repeat):
        t = time.perf_counter()
        f = session.segment_at("BL", lps=centre)
        seg.append(time.perf_counter() - t)
        widget.discard()
        drain()
        t = time.perf_counter()
        widget.set_finding(f)
        drain()
        upd.append(time.perf_counter() - t)
    click_s, seg_s, upd_s = (statistics.median(x) for x in (gui, seg, upd))
    la = widget.finding.measurement.long_axis_mm
    segmenter = widget.finding.mask.segmenter if widget.finding.mask is not None else "-"
    viewer.close()
    if sampler is not None:
        sampler.stop()
        for what, t0, t1 in beat.gaps:
            print(f"stall {(t1 - t0 - beat.interval_s) * 1000:.0f} ms ({what}):")
            for line in sampler.during(t0, t1):
                print(f"    {line}")

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '-')}, napari {napari.__version__}")
    print(f"open 300x512x512 DICOM into the viewer (plugin reader + layer drawn): {open_ours:.2f} s "
          f"(goal <= 3 s)")
    print(f"  peer SimpleITK ImageSeriesReader (array only):                   {open_peer:.2f} s "
          f"-> ratio {open_ours / open_peer:.2f}")
    warm = widget.warm_seconds
    print(f"login and the model's warm-up (workers): {logged_in:.2f} s (warm-up "
          + (f"{warm:.2f} s" if warm is not None else "failed") + "); then opening the subject "
          f"({args.visits} x 200x512x512, loaded in a worker): {opened:.2f} s")
    print(f"first click -> mask + lines shown, 200x512x512: {first:.2f} s (goal <= 2 s; long "
          f"axis {la:.1f} mm; {args.organ or 'largest'} lesion, segmenter {segmenter})")
    print(f"later clicks -> mask + lines shown: median {click_s:.2f} s, longest {max(gui):.2f} s "
          f"(goal <= 1 s)")
    print(f"  segmentation alone (ReadingSession.segment_at): {seg_s:.2f} s "
          f"({seg_s / click_s:.0%} of the click)")
    print(f"  napari layer update alone (labels + shapes):    {upd_s:.2f} s "
          f"({upd_s / click_s:.0%} of the click)")
    print(f"longest event-loop stall (QTimer heartbeat, {beat.interval_s * 1000:.0f} ms): login "
          f"and warm-up {stall_login[0] * 1000:.0f} ms, opening the subject "
          f"{stall_open[0] * 1000:.0f} ms, first click "
          f"{stall_first[0] * 1000:.0f} ms, "
          f"later clicks {max(stall_later) * 1000:.0f} ms (goal <= 100 ms)")


if __name__ == "__main__":
    main()
