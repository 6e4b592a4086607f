"""Fixtures of the napari plugin's tests."""

from __future__ import annotations

import pytest

from recist_tool.reading import enrol_manifest
from recist_tool.store import TrialStore

#: The reader account of the GUI tests' databases.
READER, PASSWORD = "dr_gui", "gui password"


@pytest.fixture()
def gui_db(reading_trial, tmp_path):
    """``(database, SYN-001's truth by visit)``: the one-subject sample trial enrolled in a fresh
    database with the reader :data:`READER`."""
    root, gt = reading_trial
    db = tmp_path / "read.db"
    with TrialStore(db) as store:
        store.add_reader(READER, PASSWORD, full_name="Dr GUI")
        enrol_manifest(store, root / "manifest.csv", trial="SYN", reader=READER)
    return db, gt["subjects"]["SYN-001"]["timepoints"]
