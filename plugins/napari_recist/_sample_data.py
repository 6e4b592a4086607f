"""Sample-data contribution: the synthetic RECIST trial (generated once into a cache folder)."""

from __future__ import annotations

import os
from pathlib import Path

#: Demo account of the sample database only (synthetic data, documented in the README).
SAMPLE_READER = "demo"
SAMPLE_PASSWORD = "demo-reader"


def sample_dir() -> Path:
    """Cache folder of the sample trial (``$RECIST_SAMPLE_DIR`` or ``~/.cache/recist-tool``)."""
    base = os.environ.get("RECIST_SAMPLE_DIR")
    if base:
        return Path(base)
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "recist-tool" / "sample-trial-seed0"


def ensure_sample_trial(root: Path | None = None, n_subjects: int = 1) -> Path:
    """Generate the synthetic trial (seed 0) and its reading database ``recist.db`` if absent.

    The database holds the trial ``synthetic``, its subjects and visits (from ``manifest.csv``)
    and the demo reader account; it holds no reads.
    """
    from recist_tool.reading import enrol_manifest
    from recist_tool.sample_data import generate_trial
    from recist_tool.store import TrialStore

    root = Path(root) if root is not None else sample_dir()
    if not (root / "manifest.csv").is_file():
        root.mkdir(parents=True, exist_ok=True)
        generate_trial(root, seed=0, n_subjects=n_subjects)
    db = root / "recist.db"
    with TrialStore(db) as store:
        if SAMPLE_READER not in {r.name for r in store.readers()}:
            store.add_reader(SAMPLE_READER, SAMPLE_PASSWORD, full_name="Demo reader (sample data)")
        if not store.subjects():
            enrol_manifest(store, root / "manifest.csv", trial="synthetic", reader=SAMPLE_READER)
    return root


def sample_layers(root: Path | None = None) -> list[tuple]:
    """Baseline and first follow-up of subject SYN-001 as image layers (patient mm), the trial
    generated first if absent (:func:`ensure_sample_trial`)."""
    from napari_recist._layers import image_layer
    from recist_tool.io import load_volume

    root = ensure_sample_trial(root)
    out = []
    for visit in ("BL", "W06"):
        vol = load_volume(root / "SYN-001" / visit)
        out.append(image_layer(vol, f"SYN-001 {visit}", recist_source=str(root / "SYN-001" / visit)))
    return out


def sample_trial() -> list[tuple]:
    """The sample-data command (File › Open Sample › Synthetic RECIST trial):
    :func:`sample_layers`, made in a worker thread (napari's progress) while the window keeps
    answering.

    napari 0.9.2 calls a sample-data command in its GUI thread and needs its layers back from
    that call, so the command waits for the worker in a local event loop, as a modal dialog
    waits: the window repaints, moves and shows the progress meanwhile (the first open
    generates the trial, about 13 s on two shared cores; later ones read two series from the
    cache). Outside a Qt GUI thread it simply runs :func:`sample_layers`."""
    from qtpy.QtCore import QEventLoop, QThread
    from qtpy.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None or QThread.currentThread() is not app.thread():
        return sample_layers()
    if _waiting:
        raise RuntimeError("the synthetic RECIST trial is being prepared already")
    from napari.qt.threading import thread_worker

    got: dict[str, object] = {}
    loop = QEventLoop()
    worker = thread_worker(sample_layers,
                           progress={"total": 0, "desc": "Preparing the synthetic RECIST trial"})(
        _connect={"returned": lambda r: got.__setitem__("layers", r),
                  "errored": lambda e: got.__setitem__("error", e),
                  "finished": loop.quit},
        _start_thread=False)
    _waiting.append(worker)
    try:
        worker.start()
        if "layers" not in got and "error" not in got:
            loop.exec_()
    finally:
        _waiting.remove(worker)
    if "error" in got:
        raise got["error"]  # type: ignore[misc]
    return got["layers"]  # type: ignore[return-value]


#: The sample command's worker while the command waits for it (a second call is refused).
_waiting: list[object] = []
