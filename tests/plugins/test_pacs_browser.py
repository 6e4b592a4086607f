"""The reading panel's PACS series browser against a real Orthanc, through real Qt events.

SYN-001's CT (the one-subject sample trial) is uploaded to a throw-away Orthanc; the reading
panel is docked in a real napari viewer at 1920 × 1080 and the subject opened from its disk
series. The reader then opens the browser from the panel (a click on its button), types a
search, clicks the baseline's axial series in the results, presses Open (once cancelled, then
for real), waits for the workers, and clicks the lesion on the baseline tile now read from the
server: the CT layer holds the disk series' voxels at the disk layer's place, and the lesion is
stored under BL in the trial database. A server that is down, a wrong login, a bad date and a
search that finds nothing each show one line in the browser, never a traceback or the password.
A folder chosen for a visit ("Use this series") goes the same way, without a server.

Skips with the reason when Orthanc cannot start (``tests/pacs/conftest.py``). With
``RECIST_READING_SHOTS=docs/reading`` the browser is saved as ``pacs_browser.png`` after the
search, its baseline series selected.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import tomllib
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from recist_tool.errors import RecistToolError  # noqa: E402
from recist_tool.reading import CATEGORIES  # noqa: E402
from recist_tool.store import TrialStore  # noqa: E402
from tests.pacs.conftest import WRONG_PASSWORD, orthanc, write_settings  # noqa: E402, F401
from tests.plugins.conftest import READER  # noqa: E402
from tests.plugins.test_full_reading import (  # noqa: E402
    AXIS_TOL_MM,
    _choose,
    _diameter,
    _find_and_point,
    _open,
)
from tests.plugins.test_napari_widget import _press, _type  # noqa: E402

pytestmark = pytest.mark.gui

SUBJECT = "SYN-001"
#: Where the browser's screenshot goes (unset: none is written).
SHOTS = os.environ.get("RECIST_READING_SHOTS")


@pytest.fixture
def pacs_trial(orthanc, reading_trial, tmp_path: Path,  # noqa: F811 - the Orthanc fixture
               monkeypatch: pytest.MonkeyPatch) -> str:
    """SYN-001's CT on the test Orthanc (STOW-RS), the settings naming it in
    ``$RECIST_PACS_CONFIG`` and an empty series cache. Returns the password of its login (which
    must never show)."""
    from recist_tool.io import pacs

    toml = write_settings(tmp_path / "pacs", orthanc)
    monkeypatch.setenv("RECIST_PACS_CONFIG", str(toml))
    monkeypatch.setenv("RECIST_PACS_CACHE", str(tmp_path / "cache"))
    root, _ = reading_trial
    for folder in sorted({p.parent for p in (root / SUBJECT).rglob("*.dcm")}):
        _, held = pacs.send("web", sorted(folder.glob("*.dcm")))
        assert all(s.ok for s in held)
    return tomllib.loads(orthanc.credentials.read_text())["password"]


def _wait(qtbot, *panels, timeout: int = 120000) -> None:
    """Until neither the browser nor the reading panel has a worker running."""
    qtbot.waitUntil(lambda: not any(p.busy for p in panels), timeout=timeout)


def _search(qtbot, b, server: str, patient: str = "", date_from: str = "",
            date_to: str = "") -> str:
    """Type a search into the browser, press Search, wait; returns its one line."""
    _choose(qtbot, b.server_combo, server)
    for edit, text in ((b.patient_edit, patient), (b.date_from_edit, date_from),
                       (b.date_to_edit, date_to)):
        _type(qtbot, edit, text)
    _press(qtbot, b.search_btn)
    _wait(qtbot, b)
    assert "\n" not in b.last_message and "Traceback" not in b.last_message, b.last_message
    return b.last_message


def _click_series(qtbot, b, series_uid: str) -> None:
    """A real click on the result row of a series."""
    from qtpy.QtCore import Qt

    tree = b.tree
    items = [tree.topLevelItem(i).child(k) for i in range(tree.topLevelItemCount())
             for k in range(tree.topLevelItem(i).childCount())]
    item = next(it for it in items if it.toolTip(0).endswith("/" + series_uid))
    tree.scrollToItem(item)
    qtbot.mouseClick(tree.viewport(), Qt.LeftButton, pos=tree.visualItemRect(item).center())
    assert b.selected() is not None and b.selected().series_uid == series_uid


def _shot(b) -> None:
    if not SHOTS:
        return
    Path(SHOTS).mkdir(parents=True, exist_ok=True)
    assert b.grab().save(str(Path(SHOTS) / "pacs_browser.png"))


def test_a_series_searched_on_the_pacs_is_read_as_a_visit(pacs_trial, gui_db, make_napari_viewer,
                                                          qtbot, caplog) -> None:
    from napari_recist._widget import ReadingWidget

    password = pacs_trial
    caplog.set_level(logging.DEBUG)
    db, tps = gui_db
    bl = tps["BL"]
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1920, 1080)
    w = ReadingWidget(viewer)
    viewer.window.add_dock_widget(w, name="RECIST reading")
    _open(qtbot, viewer, w, db, SUBJECT, first=True)
    disk_ct = w.layers["BL"]["image"]
    disk_data, disk_affine = disk_ct.data, np.array(disk_ct.affine.affine_matrix)
    disk_path = w.session.series_location("BL")[0]

    # the browser, from the panel's Subject tab: the subject's visits, its code as patient ID
    _press(qtbot, w.pacs_btn)
    b = w.pacs_browser
    qtbot.waitUntil(b.isVisible, timeout=5000)
    assert b.settings_edit.text() == os.environ["RECIST_PACS_CONFIG"]
    assert [b.visit_combo.itemText(i) for i in range(b.visit_combo.count())] == ["BL", "W06", "W12"]
    assert b.patient_edit.text() == SUBJECT
    seen = []

    # what goes wrong says so in one line
    seen.append(_search(qtbot, b, "down-web", SUBJECT))
    assert "PACS down-web" in seen[-1] and "cannot be reached" in seen[-1]
    seen.append(_search(qtbot, b, "wrong-login", SUBJECT))
    assert "refused the login (HTTP 401)" in seen[-1]
    seen.append(_search(qtbot, b, "web", SUBJECT, "2025-03-32"))
    assert seen[-1] == "PACS search: study date from '2025-03-32' is not a date (write YYYY-MM-DD)"
    seen.append(_search(qtbot, b, "web", "NOBODY-9"))
    assert seen[-1] == "PACS web: no study matches patient NOBODY-9, CT"
    assert b.tree.topLevelItemCount() == 0 and not b.open_btn.isEnabled()

    # the baseline found by subject and date range, by the date typed and Search pressed
    day = dt.date.fromisoformat(bl["date"])
    seen.append(_search(qtbot, b, "web", SUBJECT, str(day - dt.timedelta(days=3)),
                        str(day + dt.timedelta(days=3))))
    assert seen[-1] == "PACS web: 1 study, 2 series", seen[-1]
    study = b.tree.topLevelItem(0)
    assert study.text(1) == bl["date"] and study.childCount() == 2  # the localizer and the CT
    rows = {study.child(k).text(2): [study.child(k).text(c) for c in range(5)]
            for k in range(2)}
    ct_row = next(r for r in rows.values() if r[3] == str(bl["acquisition"]["shape_zyx"][0]))
    assert ct_row[1] == bl["date"] and ct_row[4] == f"{bl['acquisition']['slice_thickness_mm']:g}"
    _click_series(qtbot, b, bl["series_uid"])
    _choose(qtbot, b.visit_combo, "BL")
    assert b.open_btn.isEnabled()
    _shot(b)

    # Open, then Cancel at once: nothing is opened, the visit is still read from disk
    _press(qtbot, b.open_btn)
    assert b.busy == "retrieving" and b.cancel_btn.isEnabled()
    _press(qtbot, b.cancel_btn)
    _wait(qtbot, b, w)
    seen.append(b.last_message)
    assert "cancelled: nothing opened" in seen[-1], seen[-1]
    assert w.layers["BL"]["image"] is disk_ct and w.session.series_location("BL")[0] == disk_path

    # Open: retrieved with progress, then read by the panel as BL
    _press(qtbot, b.open_btn)
    qtbot.waitUntil(lambda: not b.busy and w.layers["BL"]["image"] is not disk_ct, timeout=120000)
    _wait(qtbot, b, w)
    seen += [b.last_message, w.last_message]
    n = bl["acquisition"]["shape_zyx"][0]
    assert b.last_message == f"{n} instances retrieved; the reading panel opens them as {SUBJECT} BL"
    assert b.progress.maximum() == n and b.progress.value() == n
    ref = f"pacs://web/{bl['study_uid']}/{bl['series_uid']}"
    assert w.session.series_location("BL") == (ref, bl["series_uid"])
    assert w.last_message == f"{SUBJECT} BL: read from {ref}", w.last_message
    ct = w.layers["BL"]["image"]
    assert ct.metadata["recist_volume"].meta.series_uid == bl["series_uid"]
    np.testing.assert_array_equal(ct.data, disk_data)  # the disk layer's voxels …
    np.testing.assert_allclose(np.array(ct.affine.affine_matrix), disk_affine)  # … and place
    assert sorted(w.layers) == ["BL", "W06", "W12"]
    # the visits' tiles in visit order: BL's new layers moved back to the first tile
    assert [x.name for x in viewer.layers][:15:5] == [w.layers[v]["image"].name
                                                     for v in ("BL", "W06", "W12")]

    # a click on the lesion on the baseline tile read from the server: stored under BL
    les = bl["lesions"]["T01"]
    _find_and_point(qtbot, viewer, w, "BL", les)
    assert w.finding.visit == "BL"
    _choose(qtbot, w.category_combo, les["category"])
    _choose(qtbot, w.organ_combo, les["organ"])
    _press(qtbot, w.add_btn)
    assert w.last_message == f"T01 stored as {les['category']} on BL", w.last_message
    with TrialStore(db, read_only=True) as store:
        stored = {m.lesion_id: m for m in store.get_read(SUBJECT, "BL", reader=READER).measurements}
        for other in ("W06", "W12"):  # nothing stored at the other visits
            try:
                assert not store.get_read(SUBJECT, other, reader=READER).measurements
            except RecistToolError:
                pass  # no read at all
    m = stored["T01"]
    assert m.category == CATEGORIES[les["category"]] and m.state == "MEASURED"
    assert abs(float(m.diameter_mm) - _diameter(les)) <= AXIS_TOL_MM, m.diameter_mm

    # no password in anything shown or logged
    shown = seen + [w.last_message, b.last_message, b.status.text()]
    logged = [r.getMessage() for r in caplog.records]
    for text in shown + logged:
        assert password not in text and WRONG_PASSWORD not in text


def test_another_series_from_a_folder_is_read_the_same_way(gui_db, reading_trial,
                                                           make_napari_viewer, qtbot) -> None:
    """"Use this series" (a folder chosen for the visit under review) goes through the same
    :meth:`ReadingWidget.open_series` as the PACS browser: read in the panel's worker, then the
    visit's layers replaced, the session reading the visit from that folder."""
    from napari_recist._widget import ReadingWidget

    db, tps = gui_db
    root, _ = reading_trial
    viewer = make_napari_viewer(show=True)
    w = ReadingWidget(viewer)
    viewer.window.add_dock_widget(w, name="RECIST reading")
    _open(qtbot, viewer, w, db, SUBJECT, first=True)
    before = w.layers["W06"]["image"]
    _choose(qtbot, w.visit_combo, "W06")
    folder = str(root / tps["W06"]["series_path"])
    assert [s["series_uid"] for s in w.choose_series(folder)] == [tps["W06"]["series_uid"]]
    _press(qtbot, w.series_load_btn)
    assert w.busy  # read in the worker, not in the GUI thread
    _wait(qtbot, w)
    assert w.last_message == f"{SUBJECT} W06: read from {folder}", w.last_message
    assert w.session.series_location("W06") == (folder, tps["W06"]["series_uid"])
    ct = w.layers["W06"]["image"]
    assert ct is not before and np.array_equal(ct.data, before.data)
    np.testing.assert_allclose(np.array(ct.affine.affine_matrix),
                               np.array(before.affine.affine_matrix))
    # a series for a visit of another subject than the one open is refused
    assert not w.open_series("W06", folder, None, subject="SYN-999")
    assert w.last_message == ("not opened: the series was chosen for SYN-999 W06, and "
                              f"{SUBJECT} is open now")
