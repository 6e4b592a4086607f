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


def sample_trial() -> list[tuple]:
    """Baseline and first follow-up of subject SYN-001 as image layers (patient mm)."""
    from napari_recist._layers import image_layer
    from recist_tool.io import load_volume

    root = ensure_sample_trial()
    out = []
    for visit in ("BL", "W06"):
        vol = load_volume(root / "SYN-001" / visit)
        out.append(image_layer(vol, f"SYN-001 {visit}", recist_source=str(root / "SYN-001" / visit)))
    return out
