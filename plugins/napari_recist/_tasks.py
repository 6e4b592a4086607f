"""The background work of the RECIST reading panel: worker threads with napari's progress, the
segmentation model's warm-up, and GUI steps queued one per event-loop turn.

Everything slow the panel asks of :class:`recist_tool.reading.ReadingSession` (logging in,
opening a subject, segmenting, tracking, registering, signing, exporting) runs here in a worker
thread, the panel busy meanwhile; what napari must do in the GUI thread (adding a layer, its
first draw) is split into steps run one per event-loop turn (:meth:`Tasks.queue`), so that the
window repaints and answers between them (docs/reading.md, "The window answering while the panel
works"). The panel (:mod:`napari_recist._widget`) is told when it becomes busy or idle
(``on_busy``) and what to say (``say``); this module knows no widget.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from qtpy.QtCore import QObject, QTimer

#: Milliseconds between two queued GUI steps (:meth:`Tasks.pump`): time for napari to draw the
#: layer just added (its first draw builds its shaders) before the next one comes.
PUMP_MS = 20
#: Threads of Qt's global pool kept beyond the panel's workers (see :func:`spare_pool_threads`).
POOL_THREADS = 8


def spare_pool_threads() -> None:
    """Let Qt's global thread pool run :data:`POOL_THREADS` tasks at once (at least).

    napari's workers (the panel's warm-up, opening, segmentation, tracking, registration) run in
    that pool, and so does Qt's own work that the GUI thread waits for: QImage converts a
    painted window's image in pool tasks while the GUI thread, holding Python's lock, blocks
    until they end. With the pool's default of one thread per core, two workers on a 2-core
    machine left those tasks no thread, and the workers could not go on without Python's lock:
    the window hung (a registration and a tracking at once, 2026-12-04)."""
    from qtpy.QtCore import QThreadPool

    pool = QThreadPool.globalInstance()
    if pool.maxThreadCount() < POOL_THREADS:
        pool.setMaxThreadCount(POOL_THREADS)


def freeze_long_lived() -> None:
    """Move every object Python's cycle collector tracks now into its permanent generation
    (:func:`gc.freeze`), so that its full collections stop scanning them.

    With napari, the segmentation model's libraries and their modules loaded, the process holds
    about half a million tracked objects (511,000 once the model had warmed), and a full
    collection, which Python starts by itself as objects are made, took 200-550 ms (measured
    with ``gc.callbacks`` on two shared cores, 2026-12-04): in the GUI thread, or in a worker
    holding Python's lock, an interface that did not answer, whatever it was doing. The panel
    freezes when it is made and once its model has warmed, before any subject's series or
    layers exist; :func:`thaw` gives them back to the collector when the panel is destroyed
    (with its viewer), so that a closed viewer is freed."""
    import gc

    gc.freeze()


def thaw(*_args: Any) -> None:
    """Undo :func:`freeze_long_lived` (:func:`gc.unfreeze`)."""
    import gc

    gc.unfreeze()


class Tasks(QObject):
    """One panel's worker threads and queued GUI steps.

    Parameters
    ----------
    parent : QObject
        The panel (the step timer's parent).
    on_busy : callable
        ``on_busy(busy)``: the panel became busy (True) or idle (False); it enables its buttons.
    say : callable
        ``say(text, error=False)``: a message on the panel's status line.
    alive : callable
        Whether the panel is still shown (a worker may end after its viewer closed).

    Attributes
    ----------
    busy : bool
        A task the panel waits for runs.
    task : str
        What it is (``"opening syn-001"``).
    warming : worker or None
        The model's warm-up worker while it runs.
    warm_seconds : float or None
        How long warming the model took (once done).
    """

    def __init__(self, parent: QObject, on_busy: Callable[[bool], None],
                 say: Callable[..., None], alive: Callable[[], bool]) -> None:
        super().__init__(parent)
        self._on_busy, self._say, self._alive = on_busy, say, alive
        self.busy = False
        self.task = ""
        self.warming: Any = None
        self.warm_seconds: float | None = None
        self.worker: Any = None  # the last worker started by :meth:`run`
        self._after_warm_up: list[Callable[[], None]] = []  # what starts once it has ended
        self._steps: deque[Any] = deque()  # GUI steps run one per event-loop turn (pump)
        self._pump_pending = False

    def run(self, fn: Callable[[], Any], desc: str, message: str, returned: Callable[[Any], None],
            errored: Callable[[BaseException], None] | None = None, *,
            yielded: Callable[[Any], None] | None = None, total: int = 0,
            finished: Callable[[], None] | None = None) -> None:
        """Run ``fn()`` in a worker thread with napari's progress indicator: the panel is busy
        until it ends (or until ``finished`` says so, calling :meth:`done`); ``returned`` gets
        the result, ``errored`` (default: :meth:`report_error`) the error. A generator ``fn``
        hands each value it yields to ``yielded`` here, in the GUI thread, one progress step
        each out of ``total``."""
        from napari.qt.threading import thread_worker

        self.busy = True
        self.task = desc.lower()
        self._on_busy(True)
        self._say(message)
        # the errored handler is given up front, so napari does not re-raise the error
        connect = {"returned": returned, "errored": errored or self.report_error,
                   "finished": finished or self.done}
        if yielded is not None:
            connect["yielded"] = yielded
        worker = thread_worker(fn, progress={"total": total, "desc": desc})(
            _connect=connect, _start_thread=False)
        self.worker = worker
        worker.start()

    def done(self) -> None:
        """The task the panel waited for has ended: it is idle."""
        self.busy = False
        self._on_busy(False)

    def report_error(self, exc: BaseException) -> None:
        """Say what went wrong: a :class:`recist_tool.errors.RecistToolError` as itself (no
        lesion at a click as "no lesion here (…)"), anything else with the task's name."""
        from recist_tool.errors import RecistToolError
        from recist_tool.segment import NoLesionError

        if isinstance(exc, NoLesionError):
            self._say(f"no lesion here ({exc})", error=True)
        elif isinstance(exc, RecistToolError):
            self._say(str(exc), error=True)
        else:
            self._say(f"{self.task or 'the task'} failed: {type(exc).__name__}: {exc}",
                      error=True)

    def queue(self, *steps: Any) -> None:
        """Queue GUI steps (a callable, or a generator such as
        :meth:`napari_recist._visit_layers.VisitLayers.adding`, one step per ``next``) to run
        one per event-loop turn, :data:`PUMP_MS` apart (:meth:`pump`), so that the interface
        answers in between."""
        self._steps.extend(steps)
        if not self._pump_pending:
            self._pump_pending = True
            QTimer.singleShot(0, self.pump)

    def pump(self) -> None:
        """Run the next queued GUI step and schedule the one after it."""
        self._pump_pending = False
        if not self._steps:
            return
        step = self._steps.popleft()
        try:
            if callable(step):
                step()
            else:  # a generator: one step now, the rest on the next turns
                try:
                    next(step)
                    self._steps.appendleft(step)
                except StopIteration:
                    pass
        finally:
            if self._steps and not self._pump_pending:
                self._pump_pending = True
                QTimer.singleShot(PUMP_MS, self.pump)

    def warm_up(self, warm: Callable[[], float]) -> None:
        """Run ``warm()`` (load the segmentation model and run it once; it returns its seconds)
        in a worker thread (napari's progress), so that the reader's first click does not wait
        for it. The panel is not busy meanwhile, but what is started through
        :meth:`after_warm_up` before it ends waits for it (:attr:`warming`): reading series
        forks processes, which must not happen while the model's libraries load."""
        from napari.qt.threading import thread_worker

        if self.warming is not None or self.busy:  # warming already, or reading series
            return

        def warmed(seconds: float) -> None:
            self.warm_seconds = seconds

        def failed(exc: BaseException) -> None:  # the first click will say it
            self.warm_seconds = None

        def ended() -> None:  # here, in the GUI thread: what waited for it starts
            self.warming = None
            if self._alive():
                freeze_long_lived()  # the model's libraries
            while self._after_warm_up:
                self._after_warm_up.pop(0)()

        worker = thread_worker(warm,
                               progress={"total": 0, "desc": "Loading the segmentation model"})(
            _connect={"returned": warmed, "errored": failed, "finished": ended},
            _start_thread=False)
        self.warming = worker
        worker.start()

    def when_warm(self, *steps: Any) -> None:
        """:meth:`queue` these GUI steps now, or once the model's warm-up has ended (its
        libraries' imports hold Python's lock in the worker, and a step in the GUI thread then
        waits for it too); the panel is not busy meanwhile."""
        if self.warming is not None:
            self._after_warm_up.append(lambda: self.queue(*steps))
        else:
            self.queue(*steps)

    def after_warm_up(self, start: Callable[[], None], what: str) -> None:
        """Run ``start()`` now, or once the model's warm-up has ended: one background task at a
        time; the panel is busy meanwhile and says that ``what`` waits for it."""
        if self.warming is not None:
            self.busy, self.task = True, "loading the segmentation model"
            self._on_busy(True)
            self._say(f"{what}: the segmentation model is loading first…")
            self._after_warm_up.append(start)
        else:
            start()
