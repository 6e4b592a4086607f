"""The SR's observer context: a person for a reader, the device alone for ``recist batch``.

TID 1500 → TID 1001 → TID 1002 allows observer type Person (TID 1003: Person Observer Name, a PN)
or Device (TID 1004: Device Observer UID, name, manufacturer, model). Reads of a batch account
were made by no person; their SR names the device only (no Person Observer Name to fill with a
program's name). Checked with highdicom reading the file back and with ``dciodvfy``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from tests.export.pacs_fixtures import dciodvfy_errors, points_on_slice, tiny_series


def _observers(path: Path) -> tuple[list, list]:
    import highdicom as hd
    from pydicom.sr.codedict import codes

    report = hd.sr.srread(path).content
    return (report.get_observer_contexts(observer_type=codes.DCM.Person),
            report.get_observer_contexts(observer_type=codes.DCM.Device))


@pytest.fixture
def ct_trial(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Subject S1, one visit on a tiny CT, T01 measured with end points by ``batch`` and ``rad1``."""
    from recist_tool.batch.persist import TrialSetup, prepare_store
    from recist_tool.store import TrialStore

    monkeypatch.setenv("RECIST_SCRYPT_N", "1024")
    series = tiny_series(tmp_path / "ct")
    long = points_on_slice(series.volume, 3, [(10.2, 8.4), (25.7, 27.1)])
    db = tmp_path / "recist.db"
    with TrialStore(db) as store:
        prepare_store(store, [], reader="batch", trial=TrialSetup(name="TR"))
        store.add_reader("rad1", "rad1-password", full_name="Reader One")
        store.add_subject("TR", "S1", reference_date=dt.date(2026, 1, 1))
        store.add_timepoint("S1", "BL", dt.date(2026, 1, 2), series_path=str(tmp_path / "ct"))
        for reader in ("batch", "rad1"):
            store.add_lesion("S1", "BL", "T01", "TARGET", reader=reader, organ="LIVER")
            store.record_measurement(
                "S1", "BL", "T01", reader=reader,
                long_axis_mm=f"{float(np.linalg.norm(long[1] - long[0])):.2f}",
                endpoints_lps={"long": long.tolist(), "slice_index": 3})
    return db


@pytest.mark.parametrize("reader", ["batch", "rad1"])
def test_batch_reads_have_the_device_alone_as_observer(ct_trial: Path, tmp_path: Path,
                                                       reader: str) -> None:
    from recist_tool.export import run_export
    from recist_tool.store import TrialStore

    with TrialStore(ct_trial, read_only=True) as store:
        [path] = run_export(store, "dicom-sr", tmp_path / reader, reader=reader,
                            include_unsigned=True)
    people, devices = _observers(path)
    assert len(devices) == 1
    dev = devices[0].observer_identifying_attributes
    assert dev.name == "recist-tool" and dev.uid.startswith("2.25.")
    if reader == "batch":
        assert people == []  # no person, no program name posing as one
    else:
        assert [str(p.observer_identifying_attributes.name) for p in people] == ["Reader One^"]
        assert people[0].observer_identifying_attributes.login_name == "rad1"
    errors, _ = dciodvfy_errors(path)
    assert errors == []
