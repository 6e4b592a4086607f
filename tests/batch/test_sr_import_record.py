"""``record_import``: an SR's lesions are recorded in the trial database all together or not at
all (``recist import-sr --db``: "nothing is written when the command fails")."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from recist_tool.batch.sr_import import SrImport, record_import
from recist_tool.errors import RecistToolError
from recist_tool.io.sr import ImportedLesion, SrReport
from recist_tool.store import TrialStore


def _lesion(lesion_id: str, long_mm: float) -> ImportedLesion:
    a = np.array([[0.0, 0.0, 10.0], [long_mm, 0.0, 10.0]])
    return ImportedLesion(lesion_id, "TARGET", "LUNG", False, long_mm, 0.6 * abs(long_mm), a,
                          np.array([[long_mm / 2, -5.0, 10.0], [long_mm / 2, 5.0, 10.0]]), 4,
                          a.mean(axis=0))


def _import(lesions: list[ImportedLesion]) -> SrImport:
    report = SrReport("/data/sr/1.dcm", "1.2.3", "20260105", "PAT-9", None, None, (), ())
    return SrImport("S009", "BL", dt.date(2026, 1, 5), "/data/ct/S009/BL", "1.2.3.4", "1.2.3",
                    lesions, report)


@pytest.fixture
def store(tmp_path: Path):  # noqa: ANN201
    s = TrialStore(tmp_path / "recist.db")
    s.add_reader("pacs", "pacs-password-1", full_name="PACS Reader")
    s.add_trial("ES-SCLC")
    yield s
    s.close()


def test_a_lesion_the_store_refuses_leaves_nothing_recorded(store: TrialStore) -> None:
    events = len(store.audit_log())
    bad = _import([_lesion("T01", 31.0), _lesion("T02", -12.0), _lesion("T03", 18.0)])
    with pytest.raises(RecistToolError):
        record_import(store, bad, reader="pacs", trial="ES-SCLC")
    # the subject, its visit and T01 were written before T02 failed: all undone
    assert store.subject_info("S009") is None
    assert len(store.audit_log()) == events
    # so the corrected SR imports without a clash on T01
    good = dataclasses.replace(bad, lesions=[_lesion("T01", 31.0), _lesion("T02", 12.0),
                                             _lesion("T03", 18.0)])
    assert record_import(store, good, reader="pacs", trial="ES-SCLC") == 3
    read = store.get_read("S009", "BL", reader="pacs")
    assert sorted((m.lesion_id, str(m.long_axis_mm)) for m in read.measurements) == [
        ("T01", "31.0"), ("T02", "12.0"), ("T03", "18.0")]
    assert store.verify_audit().ok
