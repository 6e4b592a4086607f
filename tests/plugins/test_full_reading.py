"""A radiologist's whole reading of the sample trial through real viewer events (issue #30, "Done
when").

Every subject and every visit of the generator's smallest trial that has every kind of event
(:data:`N_SUBJECTS`: SYN-001 with targets, a nodal target, a non-target node and a metastasis that
disappears; SYN-002 with a new liver lesion at W12) is read in the RECIST panel docked in a real
napari viewer at 1920 × 1080, only through Qt events: typing into the panel's fields, real clicks
on its tabs, buttons, check boxes and table rows, key presses on the canvas (Ctrl+R, Alt-S, Alt-A,
Alt-Right), the mouse wheel to zoom on a lesion, the slice typed into napari's slider, mouse
clicks and drags on the canvas at the lesion's screen position (computed from the generator's
analytic centre through the CT layer's and the grid tile's own transforms), the password typed
into the signing dialog. Nothing acts through
:class:`recist_tool.reading.ReadingSession`; the trial database is only read (store API) to check
what each step stored: lesion ids and categories, axes within :data:`AXIS_TOL_MM` of the analytic
truth, the corrected proposal's new value, the deleted lesion gone with its audit rows, every
visit's response (against the RECIST engine run on the truth and the generator's own), the
signatures, and the export files (written to a folder the patched folder dialog names) opened with
their readers (odmlib, pyreadstat, json, csv,
highdicom).

With ``RECIST_READING_SHOTS=docs/reading`` the test writes a screenshot of the whole napari window
after each step (``NN_step.png``; ``docs/reading.md`` walks through them); ``make test`` leaves
``docs/`` alone.
"""

from __future__ import annotations

import csv
import json
import os
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from recist_tool.reading import CATEGORIES, enrol_manifest  # noqa: E402
from recist_tool.store import TrialStore  # noqa: E402
from tests.export.test_dicom_sr import _groups as _sr_groups  # noqa: E402
from tests.export.test_dicom_sr import _item as _sr_item  # noqa: E402
from tests.plugins.test_napari_widget import (  # noqa: E402
    PASSWORD,
    READER,
    _click_row,
    _press,
    _show_tab_of,
    _tile_of,
    _type,
)

pytestmark = pytest.mark.gui

#: Subjects of the sample trial read: the fewest with every kind of event (SYN-002 has the new
#: lesion). ``RECIST_READING_SUBJECTS=3`` reads the whole default trial (``make demo``'s).
N_SUBJECTS = int(os.environ.get("RECIST_READING_SUBJECTS", "2"))
#: A stored RECIST diameter (long axis, a node's short axis) may lie this far from the analytic
#: truth (mm); a tracked proposal further off is corrected by the reader.
AXIS_TOL_MM = 2.0
#: Mouse-wheel notches the reader zooms in by on a lesion before pointing at it.
ZOOM_NOTCHES = 6
#: The reader's line prompt: this much longer than the lesion's true long axis, through its centre.
LINE_MARGIN = 1.1
#: Where the screenshots go (unset: none are written).
SHOTS = os.environ.get("RECIST_READING_SHOTS")
#: The steps screenshot, in the order of the reading: ``NN_<step>.png``, the first time each
#: happens.
STEPS = ("open", "click", "line", "classified", "deleted", "corrected", "compare", "signed",
         "new_lesion", "exported")
_shot_taken: set[str] = set()


# --- the trial ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trial(tmp_path_factory):
    """``(root, ground truth, database)``: the sample trial of :data:`N_SUBJECTS` subjects (seed 0)
    enrolled in a fresh database with the reader's account."""
    from recist_tool.sample_data import generate_trial

    root = tmp_path_factory.mktemp("full-reading")
    gt = generate_trial(root / "sample", seed=0, n_subjects=N_SUBJECTS)
    db = root / "reading.db"
    with TrialStore(db) as store:
        store.add_reader(READER, PASSWORD, full_name="Dr Full Reading")
        enrol_manifest(store, root / "sample" / "manifest.csv", trial="SYN", reader=READER)
    return root, gt, db


def _visits(tps: dict) -> list[str]:
    """The subject's visits by date (the first is the baseline)."""
    return sorted(tps, key=lambda v: tps[v]["date"])


def _diameter(les: dict) -> float:
    """The RECIST diameter of a truth lesion: a node's short axis, else its long axis."""
    return les["short_axis_mm"] if les["nodal"] else les["long_axis_mm"]


def _engine_on_truth(tps: dict) -> dict:
    """visit → the RECIST engine's response computed from the generator's truth (each lesion's
    analytic diameter rounded to 0.1 mm as the store keeps it; a lesion gone is ABSENT)."""
    import datetime as dt

    from recist_tool.recist import (
        Category,
        Lesion,
        LesionAssessment,
        LesionState,
        Timepoint,
        evaluate_timepoints,
    )
    from recist_tool.sample_data.expected import tenths

    visits = _visits(tps)
    lesions: dict[str, Lesion] = {}
    timepoints = []
    for v in visits:
        out = []
        for lid, les in tps[v]["lesions"].items():
            lesions.setdefault(lid, Lesion(lid, Category(CATEGORIES[les["category"]]),
                                           organ=les["organ"], nodal=les["nodal"]))
            if les["present"]:
                out.append(LesionAssessment(lid, LesionState.MEASURED,
                                            Decimal(tenths(_diameter(les))) / 10))
            else:
                out.append(LesionAssessment(lid, LesionState.ABSENT))
        timepoints.append(Timepoint(v, dt.date.fromisoformat(tps[v]["date"]), tuple(out)))
    return {r.visit: r for r in evaluate_timepoints(list(lesions.values()), timepoints)}


def _read(db: Path, subject: str, visit: str):
    with TrialStore(db, read_only=True) as store:
        return store.get_read(subject, visit, reader=READER)


def _stored(db: Path, subject: str, visit: str) -> dict:
    return {m.lesion_id: m for m in _read(db, subject, visit).measurements}


def _axis_error(m, les: dict) -> float:
    """|stored RECIST diameter − analytic truth| (mm)."""
    return abs(float(m.diameter_mm) - _diameter(les))


# --- real events ----------------------------------------------------------------------------------

def _native(viewer):
    return viewer.window._qt_viewer.canvas._scene_canvas.native


def _key(qtbot, viewer, key, modifier=None) -> None:
    """A real key press on the canvas."""
    from qtpy.QtCore import Qt

    canvas = _native(viewer)
    canvas.setFocus()
    qtbot.keyClick(canvas, key, Qt.NoModifier if modifier is None else modifier)
    qtbot.wait(50)


def _choose(qtbot, combo, text: str) -> None:
    """Choose ``text`` in a combo box with the arrow keys (real key presses)."""
    from qtpy.QtCore import Qt

    _show_tab_of(qtbot, combo)
    items = [combo.itemText(i) for i in range(combo.count())]
    assert text in items, (text, items)
    combo.setFocus()
    for _ in range(len(items)):
        if combo.currentText() == text:
            return
        down = items.index(text) > combo.currentIndex()
        qtbot.keyClick(combo, Qt.Key_Down if down else Qt.Key_Up)
    assert combo.currentText() == text


def _tick(qtbot, box, on: bool) -> None:
    """A real click on a check box's indicator (its left end) when it is not as wanted."""
    from qtpy.QtCore import QPoint, Qt

    _show_tab_of(qtbot, box)
    if box.isChecked() != on:
        qtbot.mouseClick(box, Qt.LeftButton, pos=QPoint(8, box.height() // 2))
    assert box.isChecked() == on


def _ct_world(w, visit: str, lps) -> np.ndarray:
    """Where a visit's LPS point is drawn: world ``(z, y, x)`` through its CT layer's own
    transform (the comparison's shift included)."""
    ct = w.layers[visit]["image"]
    vol = ct.metadata["recist_volume"]
    return np.asarray(ct.data_to_world(vol.lps_to_index(np.asarray(lps, float))), float)


def _screen(viewer, w, visit: str, lps):
    """The canvas pixel showing a visit's LPS point (in that visit's grid tile)."""
    from qtpy.QtCore import QPointF

    world = _ct_world(w, visit, lps)
    vb, _ = _tile_of(viewer, w.layers[visit]["image"])
    scene = viewer.window._qt_viewer.canvas._scene_canvas.scene
    x, y = vb.scene.node_transform(scene).map([[world[2], world[1]]])[0, :2]
    return QPointF(float(x), float(y))


def _go_to_slice(qtbot, viewer, w, visit: str, lps) -> None:
    """Type the slider stop of the visit's slice through ``lps`` into napari's slice field."""
    from qtpy.QtCore import Qt

    ct = w.layers[visit]["image"]
    vol = ct.metadata["recist_volume"]
    k = int(round(float(vol.lps_to_index(np.asarray(lps, float))[0])))
    z = float(ct.data_to_world((k, 0.0, 0.0))[0])
    rng = viewer.dims.range[0]
    field = viewer.window._qt_viewer.dims.slider_widgets[0].curslice_label
    field.setFocus()
    field.selectAll()
    qtbot.keyClicks(field, str(int(round((z - rng.start) / rng.step))))
    qtbot.keyClick(field, Qt.Key_Return)
    qtbot.wait(50)
    assert int(np.round(ct.world_to_data(viewer.dims.point)[0])) == k


def _wheel(qtbot, viewer, pos, notches: int) -> None:
    """Mouse-wheel notches on the canvas at ``pos`` (napari zooms about the mouse)."""
    from qtpy.QtCore import QPoint, Qt
    from qtpy.QtGui import QWheelEvent
    from qtpy.QtWidgets import QApplication

    canvas = _native(viewer)
    for _ in range(notches):
        ev = QWheelEvent(pos, canvas.mapToGlobal(pos.toPoint()), QPoint(0, 0), QPoint(0, 120),
                         Qt.NoButton, Qt.NoModifier, Qt.NoScrollPhase, False)
        QApplication.sendEvent(canvas, ev)
        qtbot.wait(20)


def _drag_to(canvas, pos) -> None:
    """A mouse move with the left button held, sent to the canvas. (``qtbot.mouseMove`` moves
    the X pointer instead, which the X server keeps on its screen: beyond pytest-xvfb's
    800 × 600 the drag would end at the screen's edge.)"""
    from qtpy.QtCore import QEvent, QPoint, Qt
    from qtpy.QtGui import QMouseEvent
    from qtpy.QtWidgets import QApplication

    p = QPoint(round(pos.x()), round(pos.y()))
    QApplication.sendEvent(canvas, QMouseEvent(QEvent.MouseMove, p, Qt.NoButton, Qt.LeftButton,
                                               Qt.NoModifier))


def _wait_segmented(qtbot, w, before) -> None:
    """Wait for the segmentation a prompt started (in the panel's worker) to show its lesion, or
    the panel to say why there is none."""
    said = w.last_message

    def done() -> bool:
        if w.busy:
            return False
        new = w.finding is not None and w.finding is not before
        return new or (w.last_message != said and "#d04040" in w.status.styleSheet())

    qtbot.waitUntil(done, timeout=60000)


def _point_at(qtbot, viewer, w, visit: str, les: dict, line: bool) -> None:
    """Point at a truth lesion on ``visit``'s tile: a click at its centre, or (``line``) a press,
    drag and release across it along the screen's x axis, :data:`LINE_MARGIN` × its long axis
    long; the segmentation it starts is waited for."""
    from qtpy.QtCore import Qt

    _tick(qtbot, w.line_box, line)
    if not line:
        _tick(qtbot, w.click_box, True)
    canvas = _native(viewer)
    c = _screen(viewer, w, visit, les["center_lps"])
    before = w.finding
    if not line:
        qtbot.mouseClick(canvas, Qt.LeftButton, pos=c.toPoint())
    else:
        half = 0.5 * LINE_MARGIN * les["long_axis_mm"]
        a = _screen(viewer, w, visit, np.add(les["center_lps"], (-half, 0.0, 0.0)))
        b = _screen(viewer, w, visit, np.add(les["center_lps"], (half, 0.0, 0.0)))
        qtbot.mousePress(canvas, Qt.LeftButton, pos=a.toPoint())
        for t in np.linspace(0.0, 1.0, 6)[1:]:
            _drag_to(canvas, a + (b - a) * float(t))
            qtbot.wait(50)  # a hand's pace: napari throttles the moves of a drag
        qtbot.mouseRelease(canvas, Qt.LeftButton, pos=b.toPoint())
    _wait_segmented(qtbot, w, before)
    if line:
        _tick(qtbot, w.click_box, True)  # back to clicking
    assert w.finding is not None and w.finding is not before, w.last_message
    assert w.finding.visit == visit and w.finding.source == ("line prompt" if line else "click")


def _find_and_point(qtbot, viewer, w, visit: str, les: dict, line: bool = False) -> None:
    """What the reader does to measure a lesion not yet in the table: the whole view (Ctrl+R),
    the lesion's slice, the wheel to zoom in on it, then a click or a line."""
    from qtpy.QtCore import Qt

    _key(qtbot, viewer, Qt.Key_R, Qt.ControlModifier)
    _go_to_slice(qtbot, viewer, w, visit, les["center_lps"])
    _wheel(qtbot, viewer, _screen(viewer, w, visit, les["center_lps"]), ZOOM_NOTCHES)
    _point_at(qtbot, viewer, w, visit, les, line)


class _Dialog:
    """Answers the next modal dialog like a reader: types ``text`` into its line edit and presses
    Enter (the password of the signing dialog)."""

    def __init__(self, qtbot, text: str) -> None:
        from qtpy.QtCore import QTimer

        self.qtbot, self.text, self.seen = qtbot, text, None
        QTimer.singleShot(200, self._answer)

    def _answer(self) -> None:
        from qtpy.QtCore import Qt, QTimer
        from qtpy.QtWidgets import QApplication, QLineEdit

        dlg = QApplication.activeModalWidget()
        if dlg is None:
            QTimer.singleShot(100, self._answer)
            return
        self.seen = type(dlg).__name__
        edit = next(e for e in dlg.findChildren(QLineEdit) if e.isVisible())
        edit.setFocus()
        edit.selectAll()
        self.qtbot.keyClicks(edit, self.text)
        self.qtbot.keyClick(edit, Qt.Key_Return)


def _shot(viewer, step: str) -> None:
    """The whole napari window (canvas and panel) as the reader sees it after a step (one of
    :data:`STEPS`, the first time it happens), into :data:`SHOTS`."""
    if not SHOTS or step in _shot_taken:
        return
    import imageio.v3 as iio

    _shot_taken.add(step)
    out = Path(SHOTS)
    out.mkdir(parents=True, exist_ok=True)
    img = viewer.screenshot(canvas_only=False, flash=False)
    iio.imwrite(str(out / f"{STEPS.index(step) + 1:02d}_{step}.png"), np.asarray(img)[..., :3])


# --- the reading ----------------------------------------------------------------------------------

def _open(qtbot, viewer, w, db: Path, subject: str, first: bool) -> None:
    """Log in (the first time) and open a subject from the panel's Subject tab."""
    if first:
        _type(qtbot, w.db_edit, str(db))
        _type(qtbot, w.reader_edit, READER)
        _type(qtbot, w.password_edit, PASSWORD)
        _press(qtbot, w.login_btn)  # the password checked in a worker thread
        qtbot.waitUntil(lambda: not w.busy, timeout=30000)
        assert w.last_message == f"logged in as {READER}", w.last_message
        # the reader waits for the model to load: opening the subject while it loads (in the
        # panel's warm-up worker) hangs the viewer, in a deadlock of the two workers' threads
        # and the GUI thread (the report of this test's commit)
        if hasattr(w, "warm_seconds"):
            qtbot.waitUntil(lambda: w.warm_seconds is not None, timeout=120000)
    _choose(qtbot, w.subject_combo, subject)
    _press(qtbot, w.open_btn)
    qtbot.waitUntil(lambda: not w.busy and w.layers and w.last_message.startswith(subject),
                    timeout=120000)


def _baseline(qtbot, viewer, w, db: Path, subject: str, tps: dict) -> None:
    """Measure and classify every baseline lesion; a lesion stored by mistake is deleted."""
    from qtpy.QtCore import Qt

    bl = _visits(tps)[0]
    truth = tps[bl]["lesions"]
    biggest = max(truth, key=lambda lid: truth[lid]["long_axis_mm"])
    for n, (lid, les) in enumerate(truth.items()):
        _tick(qtbot, w.nodal_box, les["nodal"])
        line = lid == biggest  # the caliper on the largest lesion
        _find_and_point(qtbot, viewer, w, bl, les, line=line)
        f = w.finding
        assert abs(f.diameter_mm - _diameter(les)) <= AXIS_TOL_MM, (subject, lid, f.diameter_mm)
        _shot(viewer, "line" if line else "click")
        _choose(qtbot, w.category_combo, les["category"])
        _choose(qtbot, w.organ_combo, les["organ"])
        assert w.lesion_edit.text() == ""  # the id is the panel's (T01, NT01 …)
        if n % 2:
            _key(qtbot, viewer, Qt.Key_S, Qt.AltModifier)
        else:
            _press(qtbot, w.add_btn)
        assert w.last_message == f"{lid} stored as {les['category']} on {bl}", w.last_message
        m = _stored(db, subject, bl)[lid]
        assert m.category == CATEGORIES[les["category"]] and m.nodal == les["nodal"]
        assert m.state == "MEASURED" and m.organ == les["organ"]
        assert _axis_error(m, les) <= AXIS_TOL_MM, (subject, lid, m.diameter_mm)
        assert float(m.diameter_mm) == pytest.approx(f.diameter_mm, abs=0.051)
        if n:
            _shot(viewer, "classified")
    _tick(qtbot, w.nodal_box, False)

    # Alt-S pressed once more by mistake: a non-target 'present' with no measurement is stored …
    _key(qtbot, viewer, Qt.Key_S, Qt.AltModifier)
    mistake = w.last_message.split()[0]
    assert w.last_message == f"{mistake} stored as {w.category_combo.currentText()} on {bl}"
    assert mistake not in truth and _stored(db, subject, bl)[mistake].state == "PRESENT"
    # … and deleted from the table, with a reason
    _click_row(qtbot, w.table, mistake)
    _type(qtbot, w.change_reason_edit, "Alt-S pressed twice")
    _press(qtbot, w.delete_btn)
    assert w.last_message.startswith(f"{mistake} deleted"), w.last_message
    assert sorted(_stored(db, subject, bl)) == sorted(truth)
    with TrialStore(db, read_only=True) as store:
        gone = [e for e in store.audit_log(subject)
                if e.action == "DELETE" and e.reason == "Alt-S pressed twice"]
        assert {e.entity for e in gone} == {"lesion", "measurement"}
        assert all(e.actor == READER for e in gone)
        assert any(e.old.get("code") == mistake for e in gone if e.entity == "lesion")
        assert mistake not in {les.lesion_id for les in store.lesions(subject, reader=READER)}
    _shot(viewer, "deleted")


def _sign(qtbot, viewer, w, db: Path, subject: str, visit: str) -> None:
    """Sign the visit under review: the password typed into the dialog."""
    assert w.visit == visit
    dialog = _Dialog(qtbot, PASSWORD)
    _press(qtbot, w.sign_btn)
    assert dialog.seen == "QInputDialog"
    qtbot.waitUntil(lambda: not w.busy, timeout=30000)  # checked and signed in a worker thread
    assert w.last_message.startswith(f"{subject} {visit} signed (sha256 "), w.last_message
    read = _read(db, subject, visit)
    assert read.status == "signed" and len(read.signatures) == 1
    if visit != w.visit_combo.itemText(0):
        _shot(viewer, "signed")


def _follow_up(qtbot, viewer, w, db: Path, subject: str, visit: str, tps: dict,
               correct: bool) -> list[str]:
    """Propose the baseline lesions at a follow-up and review each proposal: accept it, correct
    it with a line across the lesion (``correct``: the one furthest from the truth, and any
    beyond :data:`AXIS_TOL_MM`), or mark it absent; then measure the visit's new lesions. Returns
    the lesions corrected."""
    from qtpy.QtCore import Qt

    truth = tps[visit]["lesions"]
    _key(qtbot, viewer, Qt.Key_Right, Qt.AltModifier)  # the next visit
    assert w.visit == visit
    _press(qtbot, w.propose_btn)
    qtbot.waitUntil(lambda: w.proposal_visit == visit and not w.busy, timeout=120000)
    bl_ids = set(tps[_visits(tps)[0]]["lesions"])
    assert {p.lesion_id for p in w.proposals} == bl_ids, w.last_message

    def off(p) -> float:
        les = truth[p.lesion_id]
        if p.finding is None or not les["present"]:
            return 0.0 if p.finding is None and not les["present"] else np.inf
        return abs(p.finding.diameter_mm - _diameter(les))

    worst = max(w.proposals, key=off).lesion_id
    corrected = []
    for p in list(w.proposals):
        les = truth[p.lesion_id]
        _click_row(qtbot, w.proposal_table, p.lesion_id)
        assert w.aligned_on == p.lesion_id
        if not les["present"]:
            _press(qtbot, w.state_btns["absent"])
            assert w.last_message == f"{p.lesion_id} on {visit}: absent", w.last_message
            assert _stored(db, subject, visit)[p.lesion_id].state == "ABSENT"
            continue
        if off(p) > AXIS_TOL_MM or (correct and p.lesion_id == worst):
            _go_to_slice(qtbot, viewer, w, visit, les["center_lps"])
            _point_at(qtbot, viewer, w, visit, les, line=True)
            mine = w.finding
            assert w.finding_lesion == p.lesion_id
            _key(qtbot, viewer, Qt.Key_A, Qt.AltModifier)
            assert f"{p.lesion_id} stored on {visit}" in w.last_message, w.last_message
            assert "from the line you drew" in w.last_message
            if p.finding is not None:
                assert "the tracked proposal" in w.last_message and "was not used" in w.last_message
            m = _stored(db, subject, visit)[p.lesion_id]
            assert float(m.diameter_mm) == pytest.approx(mine.diameter_mm, abs=0.051)
            assert "tracking" not in m.endpoints_lps  # the reader's, not the tracker's
            corrected.append(p.lesion_id)
            _shot(viewer, "corrected")
        else:
            _press(qtbot, w.accept_btn)
            assert w.last_message.startswith(f"{p.lesion_id} stored on {visit}"), w.last_message
            m = _stored(db, subject, visit)[p.lesion_id]
            assert float(m.diameter_mm) == pytest.approx(p.finding.diameter_mm, abs=0.051)
            assert m.endpoints_lps["tracking"]["status"] == p.status
        assert _axis_error(m, les) <= AXIS_TOL_MM, (subject, visit, p.lesion_id, m.diameter_mm)

    for lid, les in truth.items():  # the visit's new lesions
        if les["category"] != "new":
            continue
        # (the box was cleared when the last proposal was stored: the reader ticks it for a node)
        assert not w.nodal_box.isChecked()
        _tick(qtbot, w.nodal_box, les["nodal"])
        _find_and_point(qtbot, viewer, w, visit, les)
        new_click_message = w.last_message
        _choose(qtbot, w.category_combo, "new")
        _choose(qtbot, w.organ_combo, les["organ"])
        _key(qtbot, viewer, Qt.Key_S, Qt.AltModifier)
        assert w.last_message == f"{lid} stored as new on {visit}", (w.last_message,
                                                                      new_click_message)
        m = _stored(db, subject, visit)[lid]
        assert m.category == "NEW" and m.state == "MEASURED"
        assert _axis_error(m, les) <= AXIS_TOL_MM, (subject, visit, lid, m.diameter_mm)
        _shot(viewer, "new_lesion")
    assert sorted(_stored(db, subject, visit)) == sorted(truth)
    return corrected


def _compare(qtbot, viewer, w, visit: str, lesion_id: str) -> None:
    """The baseline and this follow-up side by side, lined up on a lesion (its table row)."""
    bl = w.visit_combo.itemText(0)
    _choose(qtbot, w.compare_combo, f"{bl} and {visit}")
    _click_row(qtbot, w.table, lesion_id)
    qtbot.wait(300)  # the linked grid cameras follow
    assert w.aligned_on == lesion_id
    shown = [v for v, d in w.layers.items() if d["image"].visible]
    assert shown == [bl, visit]
    assert len(list(viewer.canvas.grid.iter_viewboxes(viewer.layers))) == 2
    _shot(viewer, "compare")


def _check_responses(db: Path, subject: str, tps: dict) -> None:
    """Each follow-up's stored response is the RECIST engine's on the truth and the
    generator's own."""
    engine = _engine_on_truth(tps)
    for v in _visits(tps)[1:]:
        r = _read(db, subject, v).response
        want = engine[v]
        assert want.overall.value == tps[v]["overall_response"], (subject, v)
        got = (r.overall, r.target, r.non_target)
        assert got == (want.overall.value, want.target.value, want.non_target.value), (
            subject, v, got, r.reasons, want.reasons)
        assert r.confirmed_overall == r.overall  # signed as computed


def _export(qtbot, monkeypatch, w, db: Path, out: Path, subject: str, tps: dict
            ) -> dict[str, list[Path]]:
    """Every export format from the panel; each file opened with its reader and checked against
    the store. The folder is chosen for the reader (Qt's own folder dialog, patched: a path
    typed into it came back as ``/``, and the panel wrote there)."""
    from qtpy.QtWidgets import QFileDialog

    written: dict[str, list[Path]] = {}
    formats = [w.export_combo.itemText(i) for i in range(w.export_combo.count())]
    assert not w.export_unsigned.isChecked()  # every read is signed
    for fmt in formats:
        folder = out / subject / fmt
        folder.mkdir(parents=True)
        _choose(qtbot, w.export_combo, fmt)
        monkeypatch.setattr(QFileDialog, "getExistingDirectory",
                            staticmethod(lambda *_a, _f=str(folder), **_k: _f))
        _press(qtbot, w.export_btn)
        qtbot.waitUntil(lambda: not w.busy, timeout=120000)  # (written in a worker)
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        assert files and w.last_message == f"exported {len(files)} file(s) to {folder}", (
            fmt, w.last_message)
        written[fmt] = files
    _check_exports(db, subject, tps, written)
    return written


def _check_exports(db: Path, subject: str, tps: dict, written: dict[str, list[Path]]) -> None:
    import highdicom as hd
    import odmlib.loader as LD
    import odmlib.odm_loader as OL
    import pyreadstat

    visits = _visits(tps)
    reads = {v: _read(db, subject, v) for v in visits}
    measured = {v: {m.lesion_id: m for m in r.measurements if m.state == "MEASURED"}
                for v, r in reads.items()}
    targets = {v: {m.lesion_id: m for m in r.measurements if m.category == "TARGET"}
               for v, r in reads.items()}
    # ODM (odmlib): one subject, a study event per visit holding each target's diameter
    (odm_file,) = written["odm"]
    loader = LD.ODMLoader(OL.XMLODMLoader(model_package="odm_1_3_2"))
    loader.open_odm_document(str(odm_file))
    (sd,) = loader.root().ClinicalData[0].SubjectData
    assert sd.SubjectKey == subject
    events = {se.StudyEventOID: se for se in sd.StudyEventData}
    for v in visits:
        values = {i.Value for fd in events[f"SE.{v}"].FormData for ig in fd.ItemGroupData
                  for i in ig.ItemData}
        assert {str(m.diameter_mm) for m in targets[v].values() if m.diameter_mm} <= values, v
    # SDTM (XPT read with pyreadstat) and Dataset-JSON: the same TR records, every lesion there
    tr, _ = pyreadstat.read_xport(str(next(p for p in written["sdtm"] if p.name == "tr.xpt")))
    assert set(tr["USUBJID"].str.endswith(subject)) == {True}
    lesions = set(tr["TRLNKID"]) - {""}  # (the sum of diameters has no lesion)
    assert lesions == {m.lesion_id for r in reads.values() for m in r.measurements}
    tr_json = json.loads(next(p for p in written["dataset-json"] if p.name == "tr.json").read_text())
    assert tr_json["records"] == len(tr_json["rows"]) == len(tr)
    # REDCap: the import file holds each target's diameter at its visit's event
    rows = list(csv.DictReader(next(p for p in written["redcap"]
                                    if p.name == "redcap_import.csv").open(encoding="utf-8")))
    assert {r["record_id"] for r in rows} == {subject}
    for v in visits:
        got = {r["tl_id"]: r["tl_diam"] for r in rows
               if r["redcap_event_name"].startswith(f"{v.lower()}_") and r["tl_id"]}
        assert got == {lid: str(m.diameter_mm or "") for lid, m in targets[v].items()}, v
    # DICOM SR (highdicom): a measurement group per measured lesion of each visit, its long axis
    # as stored
    srs = {p.stem.split("_")[1]: hd.sr.srread(p) for p in written["dicom-sr"]}
    assert set(srs) == set(visits)
    for v, sr in srs.items():
        groups = {_sr_item(g, "Tracking Identifier").TextValue.rsplit(":", 1)[1]: g
                  for g in _sr_groups(sr)  # TID 1501; the TID 1411 ones reference the SEG
                  if g.ContentTemplateSequence[0].TemplateIdentifier == "1501"}
        assert set(groups) == set(measured[v]), v
        for lid, g in groups.items():
            num = _sr_item(g, "Long Axis").MeasuredValueSequence[0].NumericValue
            assert abs(Decimal(str(num)) - measured[v][lid].long_axis_mm) <= Decimal("0.1")
    # DICOM SEG (highdicom): a segment per lesion with a mask
    segs = [hd.seg.segread(p) for p in written["dicom-seg"]]
    labels = sorted(d.SegmentLabel for s in segs for d in s.SegmentSequence)
    want = sorted(m.lesion_id for v in visits for m in measured[v].values() if m.mask_path)
    assert labels == want


def test_a_radiologist_reads_the_whole_sample_trial(trial, make_napari_viewer, qtbot,
                                                    monkeypatch):
    """Every subject and visit read through real events; what each step stored is checked."""
    from napari_recist._widget import ReadingWidget

    root, gt, db = trial
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1920, 1080)
    w = ReadingWidget(viewer)
    viewer.window.add_dock_widget(w, name="RECIST reading")
    qtbot.wait(100)
    subjects = list(gt["subjects"])
    assert len(subjects) == N_SUBJECTS
    corrected_all = []
    for i, subject in enumerate(subjects):
        tps = gt["subjects"][subject]["timepoints"]
        visits = _visits(tps)
        first = i == 0
        _open(qtbot, viewer, w, db, subject, first)
        assert list(w.layers) == visits
        _shot(viewer, "open")
        _baseline(qtbot, viewer, w, db, subject, tps)
        _sign(qtbot, viewer, w, db, subject, visits[0])
        for k, visit in enumerate(visits[1:]):
            corrected_all += _follow_up(qtbot, viewer, w, db, subject, visit, tps,
                                        correct=first and k == 0)
            if first and k == 0:
                _compare(qtbot, viewer, w, visit, next(iter(tps[visit]["lesions"])))
            _sign(qtbot, viewer, w, db, subject, visit)
        _check_responses(db, subject, tps)
        _export(qtbot, monkeypatch, w, db, root / "export", subject, tps)
        _shot(viewer, "exported")
    assert corrected_all  # at least one tracked proposal was corrected
    with TrialStore(db, read_only=True) as store:
        assert store.verify_audit().ok
        for subject in subjects:  # every change was the reader's
            assert {e.actor for e in store.audit_log(subject)
                    if e.entity in ("lesion", "measurement")} == {READER}


def _syn002_at_w12(trial, tmp_path, make_napari_viewer, qtbot):
    """SYN-002 in a fresh database: its baseline node T03 clicked (the box ticked first) and
    stored as a target, then W12 shown and the baseline proposed there. Returns
    ``(viewer, panel, truth timepoints)``."""
    from qtpy.QtCore import Qt

    from napari_recist._widget import ReadingWidget

    root, gt, _ = trial
    db = tmp_path / "read.db"
    with TrialStore(db) as store:
        store.add_reader(READER, PASSWORD, full_name="Dr Full Reading")
        enrol_manifest(store, root / "sample" / "manifest.csv", trial="SYN", reader=READER)
    subject = "SYN-002"
    tps = gt["subjects"][subject]["timepoints"]
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1920, 1080)
    w = ReadingWidget(viewer)
    viewer.window.add_dock_widget(w, name="RECIST reading")
    _open(qtbot, viewer, w, db, subject, first=True)
    t03 = tps["BL"]["lesions"]["T03"]
    assert t03["nodal"]
    _tick(qtbot, w.nodal_box, True)
    _find_and_point(qtbot, viewer, w, "BL", t03)
    assert w.finding.nodal
    _choose(qtbot, w.organ_combo, t03["organ"])
    _type(qtbot, w.lesion_edit, "T03")
    _key(qtbot, viewer, Qt.Key_S, Qt.AltModifier)
    assert w.last_message == "T03 stored as target on BL", w.last_message
    for _ in range(2):
        _key(qtbot, viewer, Qt.Key_Right, Qt.AltModifier)
    assert w.visit == "W12"
    _press(qtbot, w.propose_btn)
    qtbot.waitUntil(lambda: w.proposal_visit == "W12" and not w.busy, timeout=120000)
    return viewer, w, tps


def test_a_new_lesion_clicked_with_a_proposal_selected_keeps_its_own_mask(
        trial, tmp_path, make_napari_viewer, qtbot):
    """SYN-002 W12: T03's proposal accepted (its row still selected), then the new liver lesion
    NL01 clicked and stored as new. NL01's click is not on T03's lesion (farther than
    :data:`recist_tool.reading.PROPOSAL_REACH_MM` from its tracked mask): a lesion of its own.
    Both stored masks are drawn in W12's tile, each with a label of its own."""
    from qtpy.QtCore import Qt

    viewer, w, tps = _syn002_at_w12(trial, tmp_path, make_napari_viewer, qtbot)
    _click_row(qtbot, w.proposal_table, "T03")
    _press(qtbot, w.accept_btn)
    assert w.last_message.startswith("T03 stored on W12"), w.last_message
    nl01 = tps["W12"]["lesions"]["NL01"]
    _tick(qtbot, w.nodal_box, False)
    _find_and_point(qtbot, viewer, w, "W12", nl01)
    assert w.finding_lesion is None and "not on the selected proposal T03" in w.last_message
    _choose(qtbot, w.category_combo, "new")
    _choose(qtbot, w.organ_combo, nl01["organ"])
    _key(qtbot, viewer, Qt.Key_S, Qt.AltModifier)
    assert w.last_message == "NL01 stored as new on W12", w.last_message
    vol = w.session.volume("W12")
    masks = w.layers["W12"]["labels"].data
    shown = {lid: int(masks[tuple(np.rint(vol.lps_to_index(
        np.asarray(tps["W12"]["lesions"][lid]["center_lps"], float))).astype(int))])
        for lid in ("T03", "NL01")}
    assert shown["T03"] and shown["NL01"] and shown["T03"] != shown["NL01"], (shown, w._label_of)
    assert w._label_of[("W12", "T03")] == shown["T03"]
    assert w._label_of[("W12", "NL01")] == shown["NL01"]


def test_the_nodal_box_shows_the_flag_of_the_lesion_under_review(
        trial, tmp_path, make_napari_viewer, qtbot):
    """The nodal box shows the flag of the lesion under review: a selected proposal's, a
    clicked lesion's. Once a lesion is stored or discarded it is cleared, and a click on no
    known lesion is segmented un-ticked unless the reader ticks the box for it, even with a
    node's proposal row still selected; a click on the selected proposal's lesion takes that
    lesion's flag."""
    viewer, w, tps = _syn002_at_w12(trial, tmp_path, make_napari_viewer, qtbot)
    assert not w.nodal_box.isChecked()  # cleared once BL's T03 was stored
    t03, nl01 = (tps["W12"]["lesions"][lid] for lid in ("T03", "NL01"))
    assert not nl01["nodal"]
    _click_row(qtbot, w.proposal_table, "T03")
    assert w.nodal_box.isChecked()  # the node's proposal under review
    _press(qtbot, w.accept_btn)
    assert w.last_message.startswith("T03 stored on W12"), w.last_message
    assert not w.nodal_box.isChecked()  # nothing under review (T03's row still selected)
    # the liver lesion clicked, the box untouched: not a node
    _find_and_point(qtbot, viewer, w, "W12", nl01)
    assert w.finding_lesion is None and not w.finding.nodal and not w.nodal_box.isChecked()
    _press(qtbot, w.discard_btn)
    # T03's row clicked again: its flag; then the liver lesion clicked without touching the box
    _click_row(qtbot, w.proposal_table, "T03")
    assert w.nodal_box.isChecked() and w.finding_lesion == "T03"
    _find_and_point(qtbot, viewer, w, "W12", nl01)
    assert w.finding_lesion is None and not w.finding.nodal, w.last_message
    assert not w.nodal_box.isChecked()
    _press(qtbot, w.discard_btn)
    assert not w.nodal_box.isChecked()
    # the reader ticks the box for the next click: kept, though T03's row is still selected
    _tick(qtbot, w.nodal_box, True)
    _find_and_point(qtbot, viewer, w, "W12", nl01)
    assert w.finding_lesion is None and w.finding.nodal and w.nodal_box.isChecked()
    _press(qtbot, w.discard_btn)
    # a click on the selected proposal's lesion, the box cleared: T03 measured again, a node
    assert not w.nodal_box.isChecked()
    _find_and_point(qtbot, viewer, w, "W12", t03)
    assert w.finding_lesion == "T03" and w.finding.nodal and w.nodal_box.isChecked()
    assert w.last_message.startswith("T03 segmented again on W12"), w.last_message
