"""The napari plugin on the synthetic trial: reader, sample data, and the RECIST reading widget.

Runs under Xvfb (pytest-xvfb) with napari's ``make_napari_viewer`` and pytest-qt's ``qtbot``.
Screenshots of the widget go to ``$RECIST_SCREENSHOTS`` when set (for looking at them).
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from napari_recist._layers import lps_to_world  # noqa: E402
from recist_tool.reading import enrol_manifest  # noqa: E402
from recist_tool.store import TrialStore  # noqa: E402

pytestmark = pytest.mark.gui

from tests.plugins.conftest import PASSWORD, READER  # noqa: E402


def _shot(widget, viewer, name: str) -> None:
    """Viewer canvas and the whole widget panel side by side, saved when $RECIST_SCREENSHOTS is set."""
    out = os.environ.get("RECIST_SCREENSHOTS")
    if not out:
        return
    from qtpy.QtCore import QBuffer
    from qtpy.QtGui import QImage

    Path(out).mkdir(parents=True, exist_ok=True)
    qv = viewer.window._qt_viewer
    for dock in (qv.dockLayerList, qv.dockLayerControls):
        dock.setVisible(False)
    viewer.window._qt_window.resize(1900, 1250)
    canvas = viewer.screenshot(canvas_only=True, flash=False)[..., :3]
    widget.panel.resize(widget.panel.width(), widget.panel.sizeHint().height())
    img = widget.panel.grab().toImage().convertToFormat(QImage.Format_RGB888)
    buf = QBuffer()
    buf.open(QBuffer.ReadWrite)
    img.save(buf, "PNG")
    import imageio.v3 as iio

    panel = iio.imread(bytes(buf.data()))[..., :3]
    h = max(canvas.shape[0], panel.shape[0])
    pad = lambda a: np.pad(a, ((0, h - a.shape[0]), (0, 0), (0, 0)))  # noqa: E731
    iio.imwrite(str(Path(out) / f"{name}.png"), np.concatenate([pad(canvas), pad(panel)], axis=1))


def test_reader_opens_series_in_patient_mm(reading_trial, make_napari_viewer):
    from napari_recist._reader import get_reader

    root, gt = reading_trial
    folder = root / "SYN-001" / "BL"  # also holds a localizer: skipped, one CT layer
    assert get_reader(str(folder)) is not None
    assert get_reader(str(root / "manifest.csv")) is None
    viewer = make_napari_viewer()
    layers = viewer.open(str(folder), plugin="recist-tool")
    assert len(layers) == 1
    layer = layers[0]
    vol = layer.metadata["recist_volume"]
    info = layer.metadata["recist_info"]
    assert info["n_slices"] == vol.shape[0] and "warnings" in info
    # world coordinates are patient mm: a voxel lands where the volume's geometry puts it
    for idx in [(0, 0, 0), (10, 200, 37), (vol.shape[0] - 1, 383, 383)]:
        world = layer.data_to_world(idx)
        np.testing.assert_allclose(world, lps_to_world(vol.index_to_lps(idx)), atol=1e-6)
    # the true lesion centre is inside the lesion in the displayed image
    c = gt["subjects"]["SYN-001"]["timepoints"]["BL"]["lesions"]["T01"]["center_lps"]
    k, y, x = np.rint(layer.world_to_data(lps_to_world(c))).astype(int)
    assert layer.data[k, y, x] > -100


def test_one_plugin_name_and_a_dropped_dicom_folder_opens_without_a_dialog(
        reading_trial, make_napari_viewer, qtbot, monkeypatch):
    """The manifest, the entry point, the distribution and README name the plugin alike; that
    name opens a DICOM folder with ``viewer.open(..., plugin=)``, and with README's reader
    preference a folder dropped on the canvas (a real drop event) opens without the
    reader-choice dialog."""
    import importlib.metadata
    import re
    import tomllib

    from napari.settings import get_settings
    from npe2 import PluginManifest
    from qtpy.QtCore import QMimeData, QPoint, Qt, QUrl
    from qtpy.QtGui import QDragEnterEvent, QDropEvent
    from qtpy.QtWidgets import QApplication

    import napari_recist

    repo = Path(__file__).resolve().parents[2]
    name = PluginManifest.from_file(Path(napari_recist.__file__).with_name("napari.yaml")).name
    project = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
    assert project["name"] == name
    assert project["entry-points"]["napari.manifest"] == {name: "napari_recist:napari.yaml"}
    installed = importlib.metadata.entry_points(group="napari.manifest")
    assert [e.name for e in installed if e.value == "napari_recist:napari.yaml"] == [name]
    readme = (repo / "README.md").read_text()
    assert set(re.findall(r'plugin="([^"]+)"', readme)) == {name}
    assert re.search(rf'extension2reader\[[^]]+\] = "{re.escape(name)}"', readme)

    root, _ = reading_trial
    viewer = make_napari_viewer(show=True)
    layers = viewer.open(str(root / "SYN-001" / "BL"), plugin=name)
    assert [x.metadata["recist_volume"].shape[0] > 0 for x in layers] == [True]

    def no_dialog(*_a, **k):
        raise AssertionError(f"the reader-choice dialog was shown ({k!r})")

    monkeypatch.setattr("napari._qt.dialogs.qt_reader_dialog.handle_gui_reading", no_dialog)
    monkeypatch.setattr("napari._qt.qt_viewer.handle_gui_reading", no_dialog, raising=False)
    prefs = get_settings().plugins.extension2reader
    monkeypatch.setattr(get_settings().plugins, "extension2reader",
                        {**prefs, f"{os.path.realpath(root)}{os.sep}*": name})
    qv = viewer.window._qt_viewer
    # the folder is dropped with no key held: napari reads Alt (choose a reader) and Shift (stack)
    # from Qt's last key event, and a test that ended on QTest's Alt+key leaves Alt recorded
    qtbot.keyRelease(qv, Qt.Key_Alt)
    assert QApplication.keyboardModifiers() == Qt.NoModifier
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(root / "SYN-001" / "W06"))])
    enter = QDragEnterEvent(QPoint(10, 10), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    QApplication.sendEvent(qv, enter)
    assert enter.isAccepted()
    drop = QDropEvent(QPoint(10, 10), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    QApplication.sendEvent(qv, drop)
    qtbot.waitUntil(lambda: len(viewer.layers) == 2, timeout=30000)
    assert viewer.layers[-1].metadata["recist_source"] == str(root / "SYN-001" / "W06")


#: The longest event-loop stall allowed while File › Open Sample generates the trial (s): a guard,
#: not the issue's 100 ms goal. The generation took about 13 s in the GUI thread before it moved
#: to a worker; what is left (0.7-1.1 s here, 2026-12-04) is napari adding and first drawing the
#: two image layers.
SAMPLE_STALL_S = 3.0


def test_sample_data_contribution(tmp_path, monkeypatch, make_napari_viewer):
    """The sample command (napari's own open_sample, as the menu calls it) generates the trial
    the first time in a worker thread while the GUI thread keeps ticking (bench_gui's 10 ms
    heartbeat: no stall reaches SAMPLE_STALL_S), then gives napari the two visits' layers; the
    second open reads them from the cache."""
    import time

    from qtpy.QtWidgets import QApplication

    from napari_recist import _sample_data

    monkeypatch.setenv("RECIST_SAMPLE_DIR", str(tmp_path / "sample"))
    viewer = make_napari_viewer()
    beat = _bench_gui().Heartbeat(QApplication.instance(), interval_ms=10)
    stalls: list[float] = []
    t = time.perf_counter()
    with beat.measure(stalls):
        viewer.open_sample("recist-tool", "synthetic-trial")
    first = time.perf_counter() - t
    assert [layer.name for layer in viewer.layers] == ["SYN-001 BL", "SYN-001 W06"]
    assert stalls[0] < SAMPLE_STALL_S < first, (stalls, first)
    assert not _sample_data._waiting
    viewer.layers.clear()
    viewer.open_sample("recist-tool", "synthetic-trial")  # from the cache
    assert [layer.name for layer in viewer.layers] == ["SYN-001 BL", "SYN-001 W06"]
    with TrialStore(tmp_path / "sample" / "recist.db") as store:
        assert store.subjects() == ["SYN-001"]
        assert _sample_data.SAMPLE_READER in {r.name for r in store.readers()}


def _widget(viewer, db):
    w, _ = _docked(viewer)
    _log_in_and_open(w, db)
    return w


def _docked(viewer):
    """The reading panel docked in the viewer as napari docks it: ``(panel, dock)``."""
    from napari_recist._widget import ReadingWidget

    w = ReadingWidget(viewer)
    return w, viewer.window.add_dock_widget(w, name="RECIST reading")


def _log_in_and_open(w, db, subject: str = "SYN-001") -> None:
    """Log in as :data:`READER` and open ``subject`` (the panel's own calls); wait for it."""
    w.db_edit.setText(str(db))
    w.reader_edit.setText(READER)
    w.password_edit.setText(PASSWORD)
    assert w.login()
    assert w.open_subject(subject)
    _wait_idle(w)
    assert w.last_message.startswith(f"{subject}: "), w.last_message


def _wait_idle(w, timeout_s: float = 120.0) -> None:
    """Process Qt events until the panel's worker (opening a subject, a click …) is done."""
    import time

    from qtpy.QtWidgets import QApplication

    end = time.monotonic() + timeout_s
    while w.busy:
        assert time.monotonic() < end, f"still busy: {w.last_message}"
        QApplication.processEvents()
        time.sleep(0.005)


def _click(qtbot, w, visit: str, lps) -> None:
    w.visit_combo.setCurrentText(visit)
    w.click_at_world(lps_to_world(lps))
    qtbot.waitUntil(lambda: not w.busy, timeout=30000)


def _baseline_read(qtbot, w, tps, lesions=("T01", "T02")) -> None:
    """Store baseline lesions from clicks at their true centres (the session's own calls)."""
    for lid in lesions:
        les = tps["BL"]["lesions"][lid]
        w.nodal_box.setChecked(les["nodal"])
        _click(qtbot, w, "BL", les["center_lps"])
        w.category_combo.setCurrentText(les["category"])
        w.organ_combo.setCurrentText(les["organ"])
        w.lesion_edit.setText(lid)
        assert w.classify() == lid, w.last_message
    w.nodal_box.setChecked(False)


def test_reading_a_subject(gui_db, make_napari_viewer, qtbot, monkeypatch, tmp_path):
    from qtpy.QtWidgets import QInputDialog

    db, tps = gui_db
    viewer = make_napari_viewer()
    viewer.window._qt_window.resize(1400, 900)
    w = _widget(viewer, db)
    assert set(w.layers) == {"BL", "W06", "W12"} and viewer.canvas.grid.enabled
    assert "slices" in w.series_label.text()

    # click at the lung target's true centre: mask and lines, long axis within 1 mm of the truth
    t01 = tps["BL"]["lesions"]["T01"]
    _click(qtbot, w, "BL", t01["center_lps"])
    f = w.finding
    assert f is not None, w.last_message
    assert abs(f.measurement.long_axis_mm - t01["long_axis_mm"]) <= 1.0
    assert np.count_nonzero(w.layers["BL"]["labels"].data) == f.mask.n_voxels
    review = w.layers["BL"]["review"]
    assert len(w.visit_layers.review_lines("BL")) == 2
    assert [t.split()[0] for t, on in zip(review.features["label"], review._data_view._displayed,
                                          strict=True) if t and on] == ["LA", "SA"]
    assert f"{f.measurement.long_axis_mm:.1f} mm" in w.finding_label.text()
    w.apply_window("lung")
    _shot(w, viewer, "1-click")

    # classify it as a lung target: the row is in the database with an audit event
    w.category_combo.setCurrentText("target")
    w.organ_combo.setCurrentText("lung")
    w.lesion_edit.setText("T01")
    assert w.rules_label.text() == ""
    assert w.classify() == "T01"
    with TrialStore(db, read_only=True) as store:
        m = {x.lesion_id: x for x in store.get_read("SYN-001", "BL", reader=READER).measurements}
        assert m["T01"].state == "MEASURED" and m["T01"].category == "TARGET"
        assert any(e.entity == "measurement" and e.action == "INSERT" and e.actor == READER
                   for e in store.audit_log("SYN-001"))
    assert len(_distinct_lines(w.layers["BL"]["stored"])) == 2

    # a click in air: "no lesion here", nothing added
    vol = w.session.volume("BL")
    n_before = len(w.session.stored("BL"))
    air = vol.index_to_lps((vol.shape[0] // 2, 4, 4))
    _click(qtbot, w, "BL", air)
    assert "no lesion here" in w.last_message and w.finding is None
    assert len(w.session.stored("BL")) == n_before

    # the other baseline lesions; a third liver target is refused with the rule's message
    _baseline_read(qtbot, w, tps, [lid for lid in tps["BL"]["lesions"] if lid != "T01"])
    t02 = tps["BL"]["lesions"]["T02"]
    _click(qtbot, w, "BL", t02["center_lps"])
    w.category_combo.setCurrentText("target")
    w.organ_combo.setCurrentText("liver")
    # (T02 again: it overlaps the stored T02 as well, which is named)
    assert "more than 2 targets in LIVER" in w.rules_label.text()
    assert "overlaps T02 stored on BL" in w.rules_label.text()
    n_lesions = len(w.session.stored("BL"))
    assert w.classify() is None
    assert "more than 2 targets" in w.rules_label.text() and "overlaps T02" in w.rules_label.text()
    assert len(w.session.stored("BL")) == n_lesions
    w.discard()

    # follow-up: lesions proposed from baseline at the right place; accept them; response
    w.visit_combo.setCurrentText("W06")
    w.propose()
    qtbot.waitUntil(lambda: not w.busy, timeout=60000)
    assert {p.lesion_id for p in w.proposals} == set(tps["BL"]["lesions"])
    for p in w.proposals:
        truth = tps["W06"]["lesions"][p.lesion_id]["center_lps"]
        assert np.linalg.norm(np.subtract(p.center_lps, truth)) < 3.0, p.lesion_id
    for p in w.proposals:
        w.select_proposal(p.lesion_id)
        assert w.accept_selected(), w.last_message
    assert w.response_of("W06") == tps["W06"]["overall_response"]
    assert f"W06: overall {tps['W06']['overall_response']}" in w.response_label.text()
    w.apply_window("soft tissue")
    w.select_proposal("T02")
    _shot(w, viewer, "2-followup")

    # sign-off asks for the password (dialog patched), then the read is locked
    monkeypatch.setattr(QInputDialog, "getText", staticmethod(lambda *a, **k: (PASSWORD, True)))
    assert w.sign()
    _wait_idle(w)  # signed in a worker thread
    assert "signed" in w.last_message
    with TrialStore(db, read_only=True) as store:
        assert store.get_read("SYN-001", "W06", reader=READER).status == "signed"

    # export: BL is not signed, so without the tick the exporter's one-line message, no file
    from qtpy.QtWidgets import QFileDialog

    out = tmp_path / "export"
    out.mkdir()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory",
                        staticmethod(lambda *a, **k: str(out)))
    assert w.export_btn.isEnabled()
    w.export_combo.setCurrentText("sdtm")
    assert not w.export_unsigned.isChecked()
    w.export_btn.click()
    _wait_idle(w)  # exported in a worker thread
    assert "not signed" in w.last_message and "\n" not in w.last_message
    assert "Traceback" not in w.status.text() and not list(out.iterdir())
    w.export_unsigned.setChecked(True)
    seen: set = set()
    for fmt in ("sdtm", "dicom-sr"):
        w.export_combo.setCurrentText(fmt)
        assert w.export_combo.currentText() == fmt
        w.export_btn.click()
        _wait_idle(w)
        new = {p for p in out.rglob("*") if p.is_file()} - seen
        seen |= new
        assert new and all(p.stat().st_size > 0 for p in new), w.last_message
        assert w.last_message == f"exported {len(new)} file(s) to {out}"
    import pydicom

    sr = [pydicom.dcmread(p) for p in seen if p.suffix == ".dcm"]
    assert sr and all(ds.Modality == "SR" for ds in sr)


def _clicked_on_t02(gui_db, make_napari_viewer, qtbot):
    """Viewer, widget and the finding of a click on the baseline liver target T02."""
    db, tps = gui_db
    viewer = make_napari_viewer()
    w = _widget(viewer, db)
    _click(qtbot, w, "BL", tps["BL"]["lesions"]["T02"]["center_lps"])
    assert w.finding is not None
    return viewer, w, w.finding


def test_edits_are_remeasured_and_survive_closing(gui_db, make_napari_viewer, qtbot):
    db, _ = gui_db
    viewer, w, auto = _clicked_on_t02(gui_db, make_napari_viewer, qtbot)
    # erase half of the mask in the labels layer: re-measured, manual
    lab = w.layers["BL"]["labels"]
    sl = auto.mask.slices
    region = lab.data[sl]
    half = region.shape[2] // 2
    region[:, :, half:] = 0
    lab.events.paint(value=None)
    qtbot.waitUntil(lambda: w.finding is not auto and w.finding.edited, timeout=5000)
    assert w.finding.measurement.volume_ml < 0.7 * auto.measurement.volume_ml
    # drag the long-axis end point: a manual line measurement
    la = np.asarray(w.visit_layers.review_lines("BL")[0], float)
    _move_review_end(w, "BL", 0, 1, -0.5 * (la[1, 1:] - la[0, 1:]))
    assert w.finding.measurement.method == "line"
    np.testing.assert_allclose(w.finding.measurement.long_axis_endpoints_voxel[1][1:],
                               la[0, 1:] + 0.5 * (la[1, 1:] - la[0, 1:]), atol=1e-6)
    manual_la = w.finding.measurement.long_axis_mm
    w.category_combo.setCurrentText("target")
    w.organ_combo.setCurrentText("liver")
    assert w.classify() == "T01"
    shown = w.layers["BL"]["labels"].data > 0  # the confirmed (edited) mask
    assert 0 < np.count_nonzero(shown) < auto.mask.n_voxels
    viewer.close()  # closing mid-read: what was confirmed is in the database
    with TrialStore(db, read_only=True) as store:
        m = store.get_read("SYN-001", "BL", reader=READER).measurements[0]
        assert m.method == "manual" and float(m.long_axis_mm) == pytest.approx(manual_la, abs=0.05)
        upd = [e for e in store.audit_log("SYN-001") if e.entity == "measurement"
               and e.action == "UPDATE"]
        assert upd and upd[-1].old["method"] == "automatic"
        assert float(upd[-1].old["long_axis_mm"]) == pytest.approx(auto.measurement.long_axis_mm,
                                                                   abs=0.05)
    # reopening the subject shows what was confirmed: the stored mask (read from its file, the
    # same voxels) and the stored axes, on the baseline tile only
    viewer2 = make_napari_viewer()
    w2 = _widget(viewer2, db)
    lab2 = w2.layers["BL"]["labels"].data
    np.testing.assert_array_equal(lab2 > 0, shown)
    assert len(np.unique(lab2[lab2 > 0])) == 1
    assert len(_distinct_lines(w2.layers["BL"]["stored"])) == 2
    assert not np.any(w2.layers["W06"]["labels"].data)


def test_nodal_flag_measures_the_lesion_again_in_a_worker(gui_db, make_napari_viewer, qtbot):
    _, w, auto = _clicked_on_t02(gui_db, make_napari_viewer, qtbot)
    assert not auto.nodal and not auto.measurement.node
    w.nodal_box.setChecked(True)
    # segmented again off the GUI thread; the flag cannot change meanwhile
    assert w.busy and not w.nodal_box.isEnabled() and not w.add_btn.isEnabled()
    qtbot.waitUntil(lambda: not w.busy, timeout=30000)
    node = w.finding
    assert node is not auto and node.nodal and node.measurement.node
    assert node.mask.prompt == auto.mask.prompt and not node.edited
    assert w.nodal_box.isEnabled() and w.add_btn.isEnabled()
    assert "lymph node" in w.last_message
    w.nodal_box.setChecked(False)
    qtbot.waitUntil(lambda: not w.busy, timeout=30000)
    back = w.finding
    assert not back.nodal and not back.measurement.node
    assert back.measurement.long_axis_mm == pytest.approx(auto.measurement.long_axis_mm, abs=0.05)
    # the panel names the segmenter and shows what it says of its own mask
    assert f"automatic, {back.mask.segmenter}" in w.finding_label.text()
    note = "the lesion reaches the first slice of the scanned volume"
    w.set_finding(replace(back, mask=replace(back.mask, warnings=(note,))))
    assert f"⚠ {note}" in w.finding_label.text()


def test_outline_choice_segments_the_lesion_again_at_its_half_contrast_edge(
        gui_db, make_napari_viewer, qtbot):
    """The lung target T01 segmented by unet; the reader switches the outline to the
    half-contrast edge: the lesion is segmented again off the GUI thread, with a tighter mask
    (the phantom's truth is its analytic outline), and the next clicks use it too."""
    db, tps = gui_db
    viewer = make_napari_viewer()
    w = _widget(viewer, db)
    t01 = tps["BL"]["lesions"]["T01"]
    _click(qtbot, w, "BL", t01["center_lps"])
    learnt = w.finding
    assert learnt is not None and learnt.mask.segmenter == "unet", w.last_message
    assert not learnt.mask.version.endswith("/half-contrast")
    # the default outline is chosen by slice thickness: the learnt one on these 2.5 mm slices
    assert w.outline_combo.currentText() == "by slice thickness (auto)"
    assert ("outline: learnt (LIDC consensus) (auto: slices 2.5 mm thick"
            in w.finding_label.text())
    w.outline_combo.setCurrentText("half-contrast edge")
    assert w.busy and not w.outline_combo.isEnabled()
    qtbot.waitUntil(lambda: not w.busy, timeout=30000)
    cut = w.finding
    assert cut is not learnt and cut.mask.version.endswith("/half-contrast")
    assert cut.mask.prompt == learnt.mask.prompt and not cut.edited
    assert cut.mask.n_voxels < learnt.mask.n_voxels
    assert np.count_nonzero(w.layers["BL"]["labels"].data) == cut.mask.n_voxels
    err = abs(cut.measurement.long_axis_mm - t01["long_axis_mm"])
    assert err <= 0.5 and err <= abs(learnt.measurement.long_axis_mm - t01["long_axis_mm"])
    assert "segmented again" in w.last_message
    assert "outline: half-contrast edge at " in w.finding_label.text()
    _shot(w, viewer, "outline_half_contrast")
    _click(qtbot, w, "W06", tps["W06"]["lesions"]["T01"]["center_lps"])
    assert w.finding.mask.version.endswith("/half-contrast")


def test_click_in_grid_goes_to_the_visit_of_that_tile(gui_db, make_napari_viewer, qtbot):
    db, tps = gui_db
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1400, 900)
    w = _widget(viewer, db)
    assert viewer.canvas.grid.enabled and w.visit == "BL"
    t02 = tps["W06"]["lesions"]["T02"]  # liver, solid (W06 T01 cavitates: air at its centre)
    w.focus(lps_to_world(t02["center_lps"]), field_mm=120.0)  # every tile centred there
    qtbot.wait(200)  # let the linked grid cameras follow
    vcanvas = viewer.window._qt_viewer.canvas
    tiles = {}
    for (_pos, idx), vb in zip(viewer.canvas.grid.iter_viewboxes(viewer.layers),
                              vcanvas.grid_views, strict=False):
        for v, d in w.layers.items():
            if d["image"] in [viewer.layers[i] for i in idx]:
                tiles[v] = vb
    assert set(tiles) == {"BL", "W06", "W12"}
    vb = tiles["W06"]
    centre = np.asarray(vb.transform.translate[:2]) + np.asarray(vb.inner_rect.size) / 2
    sc = vcanvas._scene_canvas
    qtbot.wait(300)
    sc.events.mouse_press(pos=tuple(centre), button=1, modifiers=())
    sc.events.mouse_release(pos=tuple(centre), button=1, modifiers=())
    qtbot.waitUntil(lambda: w.finding is not None or "no lesion" in w.last_message,
                    timeout=30000)
    qtbot.waitUntil(lambda: not w.busy, timeout=30000)
    # the follow-up tile was clicked: the lesion is segmented on W06 (not the combo's BL)
    assert w.finding is not None, w.last_message
    assert w.finding.visit == "W06" and w.visit == "W06"
    assert abs(w.finding.measurement.long_axis_mm - t02["long_axis_mm"]) <= 1.5
    assert np.any(w.layers["W06"]["labels"].data) and not np.any(w.layers["BL"]["labels"].data)


# --- real mouse and key events: the hazards of issue #30 ----------------------------------------

def _tile_of(viewer, layer):
    """The vispy viewbox of the grid tile showing ``layer`` and the names of the layers in it."""
    vcanvas = viewer.window._qt_viewer.canvas
    for (_pos, idx), vb in zip(viewer.canvas.grid.iter_viewboxes(viewer.layers),
                               vcanvas.grid_views, strict=False):
        layers = [viewer.layers[i] for i in idx]
        if layer in layers:
            return vb, [x.name for x in layers]
    raise AssertionError(f"{layer.name} is in no tile")


def _mouse_click_tile(qtbot, viewer, layer) -> None:
    """A real left click (Qt press and release on the canvas) at the middle of ``layer``'s
    tile."""
    from qtpy.QtCore import QPoint, Qt

    vb, _ = _tile_of(viewer, layer)
    centre = np.asarray(vb.transform.translate[:2]) + np.asarray(vb.inner_rect.size) / 2
    native = viewer.window._qt_viewer.canvas._scene_canvas.native
    qtbot.mouseClick(native, Qt.LeftButton, pos=QPoint(int(centre[0]), int(centre[1])))


def _click_lesion(qtbot, viewer, w, visit: str, lps) -> None:
    """Centre every tile on ``lps`` and click the middle of ``visit``'s CT tile; wait for the
    segmentation."""
    w.focus(lps_to_world(lps), field_mm=120.0)
    qtbot.wait(300)  # the linked grid cameras follow
    _mouse_click_tile(qtbot, viewer, w.layers[visit]["image"])
    qtbot.waitUntil(lambda: not w.busy, timeout=30000)


def _drag_line(qtbot, viewer, w, visit: str, length_mm: float):
    """A real press, drag and release, ``length_mm`` long across the middle of ``visit``'s tile
    (left to right); waits for the segmentation from it. Returns the press point."""
    from qtpy.QtCore import QPoint, Qt

    vb, _ = _tile_of(viewer, w.layers[visit]["image"])
    centre = np.asarray(vb.transform.translate[:2]) + np.asarray(vb.inner_rect.size) / 2
    half = 0.5 * length_mm * w._camera.zoom  # pixels
    native = viewer.window._qt_viewer.canvas._scene_canvas.native
    a = QPoint(int(centre[0] - half), int(centre[1]))
    b = QPoint(int(centre[0] + half), int(centre[1]))
    qtbot.mousePress(native, Qt.LeftButton, pos=a)
    for t in np.linspace(0.0, 1.0, 6)[1:]:
        qtbot.mouseMove(native, QPoint(int(a.x() + t * (b.x() - a.x())), a.y()))
    qtbot.mouseRelease(native, Qt.LeftButton, pos=b)
    qtbot.waitUntil(lambda: w.busy, timeout=5000)
    qtbot.waitUntil(lambda: not w.busy, timeout=30000)
    return a


def _show_tab_of(qtbot, widget) -> None:
    """A real click on the panel's tab that holds ``widget``, when another tab is shown."""
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QTabWidget

    tabs = widget.parentWidget()
    while tabs is not None and not isinstance(tabs, QTabWidget):
        tabs = tabs.parentWidget()
    if tabs is None:
        return
    i = next(k for k in range(tabs.count()) if tabs.widget(k).isAncestorOf(widget))
    if tabs.currentIndex() != i:
        bar = tabs.tabBar()
        qtbot.mouseClick(bar, Qt.LeftButton, pos=bar.tabRect(i).center())
        assert tabs.currentIndex() == i and widget.isVisible()


def _click_row(qtbot, table, lesion_id: str) -> None:
    """A real click on the row of ``table`` whose first cell starts with ``lesion_id``."""
    from qtpy.QtCore import Qt

    _show_tab_of(qtbot, table)
    row = next(i for i in range(table.rowCount())
               if table.item(i, 0) is not None and table.item(i, 0).text().split()[0] == lesion_id)
    table.scrollToItem(table.item(row, 0))
    qtbot.mouseClick(table.viewport(), Qt.LeftButton,
                     pos=table.visualItemRect(table.item(row, 0)).center())
    assert {i.row() for i in table.selectedItems()} == {row}


def _press(qtbot, button) -> None:
    from qtpy.QtCore import Qt

    _show_tab_of(qtbot, button)
    assert button.isEnabled()
    qtbot.mouseClick(button, Qt.LeftButton)


def _type(qtbot, edit, text: str) -> None:
    _show_tab_of(qtbot, edit)
    edit.clear()
    qtbot.keyClicks(edit, text)


def _stored(db, visit: str) -> dict:
    with TrialStore(db, read_only=True) as store:
        return {m.lesion_id: m for m in store.get_read("SYN-001", visit,
                                                       reader=READER).measurements}


def _centre(m) -> np.ndarray:
    return np.mean(np.asarray(m.endpoints_lps["long"], float), axis=0)


def test_click_goes_to_the_visit_of_the_ct_under_it_with_other_layers_open(
        gui_db, reading_trial, make_napari_viewer, qtbot):
    """Layers opened before the panel (a series by File > Open, a points layer) used to shift the
    visits' tiles: the baseline axes were drawn over W06 and a click on W06 was segmented on
    BL. Each tile now holds one visit's layers, and a click goes to the visit of the CT under
    it: stored at that visit, where the truth is."""
    db, tps = gui_db
    root, _ = reading_trial
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1400, 900)
    viewer.open(str(root / "SYN-001" / "BL"), plugin="recist-tool")
    viewer.add_points(np.zeros((1, 3)), name="my notes")
    w = _widget(viewer, db)
    qtbot.wait(50)
    for v, d in w.layers.items():  # every tile of a visit shows that visit's layers only
        _, names = _tile_of(viewer, d["image"])
        assert sorted(names) == sorted([d["image"].name, *(f"{v} {k}" for k in
                                       ("masks", "nearby", "measurements", "review"))]), names
        assert d["image"].name.startswith(f"{v} CT ")
    # a click on the baseline tile: segmented and stored at BL
    bl, w06 = tps["BL"]["lesions"]["T02"], tps["W06"]["lesions"]["T02"]
    _click_lesion(qtbot, viewer, w, "BL", bl["center_lps"])
    assert w.finding is not None and w.finding.visit == "BL", w.last_message
    w.category_combo.setCurrentText("target")
    w.organ_combo.setCurrentText("liver")
    _type(qtbot, w.lesion_edit, "T02")
    _press(qtbot, w.add_btn)
    assert "T02 stored as target on BL" in w.last_message
    # a click on the W06 tile (the combo still says BL): segmented on W06 and confirmed as
    # T02's measurement there (its row selected in the table)
    assert w.visit == "BL"
    _click_lesion(qtbot, viewer, w, "W06", w06["center_lps"])
    assert w.finding is not None and w.finding.visit == "W06" and w.visit == "W06"
    assert np.any(w.layers["W06"]["labels"].data)
    _click_row(qtbot, w.table, "T02")
    _press(qtbot, w.confirm_btn)
    assert "T02 stored on W06" in w.last_message, w.last_message
    # the database: each visit's T02 where that visit's truth is
    for visit, truth in (("BL", bl), ("W06", w06)):
        m = _stored(db, visit)["T02"]
        assert np.linalg.norm(_centre(m) - np.asarray(truth["center_lps"])) < 4.0, visit
        assert abs(float(m.long_axis_mm) - truth["long_axis_mm"]) <= 1.5, visit
    # a click on the tile of the other layers: nothing segmented, the reader is told why
    n = len(_stored(db, "W06"))
    other = next(x for x in viewer.layers if x.name == "my notes")
    viewer.layers.selection.active = w.layers["W06"]["image"]
    _mouse_click_tile(qtbot, viewer, other)
    assert "no visit's CT under the click" in w.last_message and w.finding is None
    assert len(_stored(db, "W06")) == n


def test_the_readers_last_action_is_what_is_stored(gui_db, make_napari_viewer, qtbot):
    """A tracked proposal selected, the lesion clicked again, Accept: the reader's new mask is
    stored (not the tracker's) and the message says so; Confirm with a proposal selected stores
    that proposal. The panel's % change is the engine's."""
    from recist_tool.io.masks import load_mask_crop
    from recist_tool.report.view import fmt_pct

    db, tps = gui_db
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1400, 900)
    w = _widget(viewer, db)
    _baseline_read(qtbot, w, tps)
    w.visit_combo.setCurrentText("W06")
    _press(qtbot, w.propose_btn)
    qtbot.waitUntil(lambda: not w.busy, timeout=60000)
    assert {p.lesion_id for p in w.proposals} == {"T01", "T02"}
    # T02: the proposal selected, then the reader clicks the lesion (off its centre)
    _click_row(qtbot, w.proposal_table, "T02")
    tracked = w.finding
    assert tracked is not None and tracked.tracking and w.finding_lesion == "T02"
    c = np.asarray(tps["W06"]["lesions"]["T02"]["center_lps"]) + np.array([2.0, 2.0, 0.0])
    _click_lesion(qtbot, viewer, w, "W06", c)
    mine = w.finding
    assert mine is not tracked and mine.source == "click" and w.finding_lesion == "T02"
    assert w.finding_label.text().startswith("T02 on W06")
    _press(qtbot, w.accept_btn)
    assert "T02 stored on W06" in w.last_message and "from your click" in w.last_message
    assert "the tracked proposal" in w.last_message and "was not used" in w.last_message
    _shot(w, viewer, "reader_correction_stored")
    m = _stored(db, "W06")["T02"]
    assert "tracking" not in m.endpoints_lps and m.method == "automatic"
    assert float(m.long_axis_mm) == pytest.approx(mine.measurement.long_axis_mm, abs=0.05)
    crop, off = load_mask_crop(m.mask_path, w.session.volume("W06"))
    assert off == mine.mask.offset and np.array_equal(crop, mine.mask.mask)
    # T01: the proposal selected, "Confirm measurement": the tracked proposal is stored
    _click_row(qtbot, w.proposal_table, "T01")
    _press(qtbot, w.confirm_btn)
    assert "T01 stored on W06" in w.last_message
    assert "from the tracked proposal" in w.last_message, w.last_message
    assert _stored(db, "W06")["T01"].endpoints_lps["tracking"]["status"] == "found"
    # the % change shown is the engine's, as the reports show it
    with TrialStore(db) as store:
        res = {r.visit: r for r in store.compute_responses("SYN-001", reader=READER)}["W06"]
    col = 1 + [v for v, _ in w.reading_table.visits].index("W06")
    row = next(i for i in range(w.table.rowCount()) if w.table.item(i, 0).text() == "% from baseline")
    assert w.table.item(row, col).text() == fmt_pct(res.pct_from_baseline)
    assert w.reading_table.responses["W06"].pct_from_baseline == res.pct_from_baseline


def test_a_lesion_is_not_counted_twice_and_can_be_corrected_before_signing(
        gui_db, make_napari_viewer, qtbot, monkeypatch):
    """The same lesion classified twice is refused, naming the stored one; a lesion is renamed,
    reclassified and deleted from the panel before signing, each audited with its reason; after
    signing, refused."""
    from qtpy.QtWidgets import QInputDialog

    db, tps = gui_db
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1400, 900)
    w = _widget(viewer, db)
    _baseline_read(qtbot, w, tps, ("T01", "T02", "T03"))
    # T02 clicked again, off its centre, as a new non-target: warned, then refused
    c = np.asarray(tps["BL"]["lesions"]["T02"]["center_lps"]) + np.array([4.0, 0.0, 0.0])
    _click_lesion(qtbot, viewer, w, "BL", c)
    assert w.finding is not None and w.finding_lesion is None
    w.category_combo.setCurrentText("non-target")
    assert "overlaps T02 stored on BL" in w.rules_label.text()
    _press(qtbot, w.add_btn)
    assert "overlaps T02" in w.last_message and "counted twice" in w.last_message
    _shot(w, viewer, "overlap_refused")
    assert sorted(_stored(db, "BL")) == ["T01", "T02", "T03"]
    _press(qtbot, w.discard_btn)
    # rename T03 and make it a non-target: a reason is needed
    _click_row(qtbot, w.table, "T03")
    w.change_category_combo.setCurrentText("non-target")
    _type(qtbot, w.change_id_edit, "NT01")
    _press(qtbot, w.change_btn)
    assert "give a reason" in w.last_message
    assert _stored(db, "BL")["T03"].category == "TARGET"
    _type(qtbot, w.change_reason_edit, "node below 15 mm short axis")
    _press(qtbot, w.change_btn)
    assert "T03: renamed NT01, now non-target" in w.last_message, w.last_message
    stored = _stored(db, "BL")
    assert "T03" not in stored and stored["NT01"].category == "NON-TARGET"
    # delete T01 (recorded by mistake)
    _click_row(qtbot, w.table, "T01")
    _type(qtbot, w.change_reason_edit, "recorded by mistake")
    _press(qtbot, w.delete_btn)
    assert "T01 deleted" in w.last_message
    assert sorted(_stored(db, "BL")) == ["NT01", "T02"]
    assert not any(r.lesion_id == "T01" for r in w.reading_table.rows)
    with TrialStore(db, read_only=True) as store:
        log = store.audit_log("SYN-001")
        assert store.verify_audit().ok
    upd = [e for e in log if e.entity == "lesion" and e.action == "UPDATE"]
    assert upd[-1].old["code"] == "T03" and upd[-1].new["code"] == "NT01"
    assert upd[-1].old["category"] == "TARGET" and upd[-1].new["category"] == "NON-TARGET"
    assert upd[-1].reason == "node below 15 mm short axis" and upd[-1].actor == READER
    gone = [e for e in log if e.action == "DELETE" and e.reason == "recorded by mistake"]
    assert {e.entity for e in gone} == {"lesion", "measurement"}
    assert any(e.old.get("code") == "T01" for e in gone if e.entity == "lesion")
    # signed: the lesions are locked
    monkeypatch.setattr(QInputDialog, "getText", staticmethod(lambda *a, **k: (PASSWORD, True)))
    w.visit_combo.setCurrentText("BL")
    _press(qtbot, w.sign_btn)
    _wait_idle(w)
    assert "signed" in w.last_message
    _click_row(qtbot, w.table, "T02")
    _type(qtbot, w.change_reason_edit, "too late")
    _press(qtbot, w.delete_btn)
    assert "signed read of BL" in w.last_message and "\n" not in w.last_message
    assert sorted(_stored(db, "BL")) == ["NT01", "T02"]


def test_window_keys_and_irecist_override(reading_trial, tmp_path, make_napari_viewer, qtbot,
                                          monkeypatch):
    """Alt-4 gives the liver window the reports' key images use (one table of windows); Alt-C
    confirms a follow-up's measurement; an iRECIST trial's read is overridden with iRECIST's own
    values, stored as signed."""
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QInputDialog

    from recist_tool.report.key_images import window_for

    root, gt = reading_trial
    tps = gt["subjects"]["SYN-001"]["timepoints"]
    db = tmp_path / "irecist.db"
    with TrialStore(db) as store:
        store.add_reader(READER, PASSWORD, full_name="Dr GUI")
        enrol_manifest(store, root / "manifest.csv", trial="SYN-i", criteria="iRECIST",
                       reader=READER)
    viewer = make_napari_viewer(show=True)
    w = _widget(viewer, db)
    canvas = viewer.window._qt_viewer.canvas._scene_canvas.native
    canvas.setFocus()
    qtbot.keyClick(canvas, Qt.Key_4, Qt.AltModifier)
    name, level, width = window_for("liver")
    assert name == "liver" and w.last_message == f"window: liver (level {level:g}, width {width:g} HU)"
    for d in w.layers.values():
        assert tuple(d["image"].contrast_limits) == (level - width / 2, level + width / 2)
    # iRECIST's own values are offered
    choices = [w.override_combo.itemText(i) for i in range(w.override_combo.count())]
    assert choices == ["(computed)", "iCR", "iPR", "iSD", "NON-iCR/NON-iUPD", "iUPD", "iCPD", "NE"]
    _baseline_read(qtbot, w, tps, ("T02",))
    _click(qtbot, w, "W06", tps["W06"]["lesions"]["T02"]["center_lps"])
    _click_row(qtbot, w.table, "T02")
    canvas.setFocus()
    qtbot.keyClick(canvas, Qt.Key_C, Qt.AltModifier)  # confirm measurement
    assert w.last_message.startswith("T02 stored on W06"), w.last_message
    assert w.response_of("W06") == "iPR", w.response_label.text()  # 40 → 26 mm
    w.override_combo.setCurrentText("iSD")
    _type(qtbot, w.reason_edit, "second reader's measurement")
    monkeypatch.setattr(QInputDialog, "getText", staticmethod(lambda *a, **k: (PASSWORD, True)))
    _press(qtbot, w.sign_btn)
    _wait_idle(w)
    assert "signed" in w.last_message, w.last_message
    with TrialStore(db, read_only=True) as store:
        r = store.get_read("SYN-001", "W06", reader=READER)
    assert r.status == "signed" and r.response.overall == "iPR"
    assert r.response.confirmed_overall == "iSD"
    assert r.response.confirm_reason == "second reader's measurement"


def test_a_line_drawn_across_a_lesion_segments_it(gui_db, make_napari_viewer, qtbot):
    """Line mode: a real press, drag and release across the liver target T02 on the baseline
    tile draws a line in that visit's shapes layer; the lesion is segmented from the line prompt
    and stored where the truth is. A click in line mode (no drag) is refused with a message."""
    from qtpy.QtCore import Qt

    db, tps = gui_db
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1400, 900)
    w = _widget(viewer, db)
    t02 = tps["BL"]["lesions"]["T02"]
    w.focus(lps_to_world(t02["center_lps"]), field_mm=120.0)
    qtbot.wait(300)
    w.line_box.setChecked(True)
    assert not w.click_box.isChecked()
    native = viewer.window._qt_viewer.canvas._scene_canvas.native
    a = _drag_line(qtbot, viewer, w, "BL", 1.1 * t02["long_axis_mm"])  # a line edge to edge
    f = w.finding
    assert f is not None and f.visit == "BL" and f.source == "line prompt", w.last_message
    vol = w.session.volume("BL")
    ends = [vol.index_to_lps(p) for p in f.mask.prompt.line_zyx]
    assert np.linalg.norm(ends[1] - ends[0]) == pytest.approx(1.1 * t02["long_axis_mm"], rel=0.1)
    assert abs(f.measurement.long_axis_mm - t02["long_axis_mm"]) <= 2.0
    assert len(w.visit_layers.review_lines("BL")) == 2  # the lesion's axes, the line gone
    _shot(w, viewer, "line_prompt")
    w.category_combo.setCurrentText("target")
    w.organ_combo.setCurrentText("liver")
    _press(qtbot, w.add_btn)
    assert "T01 stored as target on BL" in w.last_message, w.last_message
    m = _stored(db, "BL")["T01"]
    assert np.linalg.norm(_centre(m) - np.asarray(t02["center_lps"])) < 4.0
    assert abs(float(m.long_axis_mm) - t02["long_axis_mm"]) <= 2.0
    # a click in line mode is a line too short to use: said, nothing segmented (napari gives a
    # clicked line the size of its vertex handle, a few screen pixels: under 3 mm at reading
    # zoom)
    from napari_recist._compare_view import READ_ZOOM

    w._camera.zoom = READ_ZOOM
    qtbot.wait(100)
    qtbot.mouseClick(native, Qt.LeftButton, pos=a)
    qtbot.waitUntil(lambda: not w.busy and "the line is" in w.last_message, timeout=10000)
    assert w.finding is None and len(_stored(db, "BL")) == 1


def test_reading_keys(gui_db, make_napari_viewer, qtbot):
    """Alt-S stores the lesion under review, Alt-D discards one, Alt-Right / Alt-Left change the
    visit, Alt-Down selects the next lesion; a key while nothing is open says why; the keys are
    listed in the panel; a click while a layer paints says why nothing was segmented; a
    right-button drag sets window and level."""
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QLabel

    from napari_recist._canvas_input import READING_KEYS
    from napari_recist._widget import ReadingWidget

    db, tps = gui_db
    viewer = make_napari_viewer(show=True)

    idle = ReadingWidget(viewer)  # no subject open yet
    canvas = viewer.window._qt_viewer.canvas._scene_canvas.native
    canvas.setFocus()
    qtbot.keyClick(canvas, Qt.Key_S, Qt.AltModifier)
    assert idle.last_message == "Alt-S (classify and store): not now (open a subject first)"
    idle.close()
    w = _widget(viewer, db)
    # every key named in the panel's keys line, with its whole description in its tooltip
    listed = " ".join(lab.text() for lab in w.panel.findChildren(QLabel))
    tips = " ".join(lab.toolTip() for lab in w.panel.findChildren(QLabel))
    assert all(k in listed and f"{k} {what}" in tips for k, what in READING_KEYS.items())

    def key(k, what=Qt.AltModifier):
        canvas.setFocus()
        qtbot.keyClick(canvas, k, what)

    for lid in ("T01", "T02"):
        les = tps["BL"]["lesions"][lid]
        _click(qtbot, w, "BL", les["center_lps"])
        w.organ_combo.setCurrentText(les["organ"])
        key(Qt.Key_S)
        assert w.last_message == f"{lid} stored as target on BL", w.last_message
    _click(qtbot, w, "BL", tps["BL"]["lesions"]["T02"]["center_lps"])
    assert w.finding is not None
    key(Qt.Key_D)
    assert w.finding is None and sorted(_stored(db, "BL")) == ["T01", "T02"]
    key(Qt.Key_Right)
    assert w.visit == "W06"
    key(Qt.Key_Left)
    assert w.visit == "BL"
    key(Qt.Key_Down)
    assert w._selected_table_lesion() == "T01"
    key(Qt.Key_Down)
    assert w._selected_table_lesion() == "T02"
    key(Qt.Key_Up)
    assert w._selected_table_lesion() == "T01"
    # a click while the masks layer paints: nothing segmented, and the panel says why
    lab = w.layers["BL"]["labels"]
    viewer.layers.selection.active = lab
    lab.mode = "paint"
    lab.selected_label = 99
    _mouse_click_tile(qtbot, viewer, w.layers["BL"]["image"])
    assert "'BL masks' is in paint mode" in w.last_message and not w.busy
    assert w.finding is None and sorted(_stored(db, "BL")) == ["T01", "T02"]
    # window and level by a right-button drag on a tile: every visit's CT, napari's zoom by that
    # drag off meanwhile, nothing segmented
    from qtpy.QtCore import QPoint

    from napari_recist._canvas_input import WL_HU_PER_PX

    lab.mode = "pan_zoom"
    viewer.layers.selection.active = w.layers["BL"]["image"]
    key(Qt.Key_2)  # soft tissue
    lo, hi = w.layers["BL"]["image"].contrast_limits
    zoom = w._camera.zoom
    vb, _ = _tile_of(viewer, w.layers["BL"]["image"])
    x, y = (np.asarray(vb.transform.translate[:2]) + np.asarray(vb.inner_rect.size) / 2).astype(int)
    native = viewer.window._qt_viewer.canvas._scene_canvas.native
    qtbot.mousePress(native, Qt.RightButton, pos=QPoint(int(x), int(y)))
    for t in np.linspace(0.0, 1.0, 6)[1:]:
        qtbot.mouseMove(native, QPoint(int(x + 50 * t), int(y + 20 * t)))
    qtbot.mouseRelease(native, Qt.RightButton, pos=QPoint(int(x + 50), int(y + 20)))
    width, level = hi - lo + 50 * WL_HU_PER_PX, (lo + hi) / 2 + 20 * WL_HU_PER_PX
    for d in w.layers.values():
        assert np.allclose(d["image"].contrast_limits, (level - width / 2, level + width / 2),
                           atol=2 * WL_HU_PER_PX)
    assert w.last_message == f"window: level {level:.0f}, width {width:.0f} HU (right-button drag)"
    assert w._camera.zoom == zoom and w._camera.mouse_zoom
    assert w.finding is None and not w.busy


def test_every_control_is_reachable_at_1920x1080_without_scrolling(gui_db, make_napari_viewer,
                                                                    qtbot):
    """napari at 1920 × 1080 with the panel docked: each tab of the panel (reading; timepoint
    table, sign-off and export) fits without scrolling, a subject with three visits open."""
    from qtpy.QtCore import Qt

    from napari_recist._widget import TABS

    db, _ = gui_db
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1920, 1080)
    w = _widget(viewer, db)
    scroll = w.panel.parentWidget().parentWidget()  # the panel's scroll area (viewport → area)
    for i, name in enumerate(TABS):
        bar = w.tabs.tabBar()
        qtbot.mouseClick(bar, Qt.LeftButton, pos=bar.tabRect(i).center())
        qtbot.wait(100)
        assert w.tabs.currentIndex() == i
        assert scroll.verticalScrollBar().maximum() == 0, (
            name, w.panel.sizeHint().height(), scroll.viewport().height(),
            [w.tabs.widget(k).sizeHint().height() for k in range(w.tabs.count())])


def test_baseline_and_one_follow_up_compared_in_bigger_tiles(gui_db, make_napari_viewer, qtbot):
    """'Show: BL and W12' hides W06: two tiles, each bigger than in the three-visit grid; a real
    click on the W12 tile is segmented and stored at W12; choosing W06 as the visit under
    review shows it again (compared with the baseline)."""
    db, tps = gui_db
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1400, 900)
    w = _widget(viewer, db)
    vb, _ = _tile_of(viewer, w.layers["BL"]["image"])
    size_all = np.asarray(vb.inner_rect.size, float)
    assert size_all.min() > 100  # laid out (a tile made but not yet drawn measures 10 x 10)
    choices = [w.compare_combo.itemText(i) for i in range(w.compare_combo.count())]
    assert choices == ["all visits", "BL and W06", "BL and W12"]
    w.compare_combo.setCurrentText("BL and W12")
    qtbot.wait(200)
    assert not any(x.visible for x in w.layers["W06"].values())
    tiles = list(viewer.canvas.grid.iter_viewboxes(viewer.layers))
    assert len(tiles) == 2
    vb, _ = _tile_of(viewer, w.layers["W12"]["image"])
    size = np.asarray(vb.inner_rect.size, float)  # one row instead of two: as wide, twice as tall
    assert size[0] >= size_all[0] - 1 and size[1] > 1.8 * size_all[1], (size, size_all)
    t02 = tps["W12"]["lesions"]["T02"]
    _click_lesion(qtbot, viewer, w, "W12", t02["center_lps"])
    assert w.finding is not None and w.finding.visit == "W12", w.last_message
    _shot(w, viewer, "compare_bl_w12")
    w.organ_combo.setCurrentText("liver")
    w.category_combo.setCurrentText("new")  # no baseline read here: stored as a new lesion
    _press(qtbot, w.add_btn)
    assert "NL01 stored as new on W12" in w.last_message, w.last_message
    assert abs(float(_stored(db, "W12")["NL01"].long_axis_mm) - t02["long_axis_mm"]) <= 1.5
    w.visit_combo.setCurrentText("W06")
    assert w.compare_combo.currentText() == "BL and W06"
    assert all(x.visible for x in w.layers["W06"].values())
    assert not any(x.visible for x in w.layers["W12"].values())


def test_comparison_tiles_are_labelled_with_visit_and_date(gui_db, make_napari_viewer, qtbot):
    """Each shown tile carries its visit and date (the store's) at its upper-left corner, drawn
    by napari in that tile, white on a dark box: the label's pixels are there in a screenshot
    and gone when it is hidden."""
    db, tps = gui_db
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1400, 900)
    w = _widget(viewer, db)
    with TrialStore(db) as store:
        dates = dict(store.timepoints("SYN-001"))
    assert set(dates) == {"BL", "W06", "W12"}
    w.compare_combo.setCurrentText("BL and W12")
    qtbot.wait(300)
    vcanvas = viewer.window._qt_viewer.canvas
    shown = {}
    for v in ("BL", "W12"):
        ct = w.layers[v]["image"]
        label = f"{v} CT {dates[v].isoformat()}"
        _, names = _tile_of(viewer, ct)
        assert label in names and not any(n.startswith("W06") for n in names)
        visual = vcanvas._layer_overlay_to_visual[ct][ct.name_overlay]
        nodes = visual if isinstance(visual, list) else [visual]
        assert [n.node.text for n in nodes] == [label] and all(n.node.visible for n in nodes)
        assert ct.name_overlay.font_size >= 12
        shown[v] = _tile_of(viewer, ct)[0]

    def white_pixels_at_label(vb) -> int:
        img = viewer.screenshot(canvas_only=True, flash=False)[..., :3]
        x0, y0 = (int(c) for c in vb.transform.translate[:2])
        corner = img[y0:y0 + 40, x0:x0 + 260]
        return int(np.all(corner > 220, axis=-1).sum())

    with_labels = {v: white_pixels_at_label(vb) for v, vb in shown.items()}
    w.focus(lps_to_world(tps["BL"]["lesions"]["T02"]["center_lps"]), field_mm=160.0)
    qtbot.wait(300)
    _shot(w, viewer, "compare_labelled")
    w.viewer.reset_view()
    qtbot.wait(300)
    for v in shown:
        w.layers[v]["image"].name_overlay.visible = False
    qtbot.wait(100)
    for v, vb in shown.items():
        assert with_labels[v] > 100 + 10 * white_pixels_at_label(vb), (v, with_labels)


def _screen_px_per_mm(viewer, layer) -> float:
    """Screen pixels per mm in the tile showing ``layer``, measured through vispy's own
    transform of that tile (scene mm → canvas pixels)."""
    vb, _ = _tile_of(viewer, layer)
    y, x = (float(v) for v in viewer.scene.camera.center[-2:])
    a, b = vb.scene.transform.map([[x, y], [x + 8.0, y]])[:, :2]
    return float(np.linalg.norm(b - a)) / 8.0


def _shown_lps(w, visit: str) -> np.ndarray:
    """The LPS point of ``visit`` drawn at the centre of its tile (the camera's centre, the
    slider's point), through its CT layer's own transform (its shift included)."""
    ct = w.layers[visit]["image"]
    world = np.array([w.viewer.dims.point[0], *w._camera.center[-2:]], float)
    return w.session.volume(visit).index_to_lps(ct.world_to_data(world))


def test_comparison_view_centres_each_visit_on_its_own_lesion(gui_db, make_napari_viewer, qtbot):
    """Choosing a lesion (a real click on its table row, Alt-Down / Alt-Up) lines each
    follow-up up on the baseline by that visit's own position of the lesion and centres every
    tile on it, zoomed so an 8 mm node spans at least NODE_MIN_PX screen pixels; an arrow key
    moves every tile by the same distance from its lesion. A real click, and a line, on the
    shifted W06 tile are segmented at W06's lesion (not 6 mm off where BL's coordinates point)
    and stored there."""
    from qtpy.QtCore import Qt

    from napari_recist._compare_view import NODE_MIN_PX, NODE_MM

    db, tps = gui_db
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1400, 900)
    w = _widget(viewer, db)
    canvas = viewer.window._qt_viewer.canvas._scene_canvas.native

    def key(k, what=Qt.AltModifier):
        canvas.setFocus()
        qtbot.keyClick(canvas, k, what)
        qtbot.wait(100)

    _baseline_read(qtbot, w, tps, lesions=("T01", "T02"))
    w06_truth = np.asarray(tps["W06"]["lesions"]["T02"]["center_lps"])
    _click(qtbot, w, "W06", w06_truth)  # T02 measured at W06 (the session's own call) …
    _click_row(qtbot, w.table, "T02")
    _press(qtbot, w.confirm_btn)  # … and stored: its W06 position is known
    assert "T02 stored on W06" in w.last_message, w.last_message
    w.compare_combo.setCurrentText("BL and W06")
    key(Qt.Key_Up)  # T01, then back to T02: each time every tile is centred on it
    assert w._selected_table_lesion() == "T01" and w.aligned_on == "T01"
    key(Qt.Key_Down)
    assert w._selected_table_lesion() == "T02" and w.aligned_on == "T02"
    qtbot.wait(300)  # the linked grid cameras follow
    bl_c, w06_c = _centre(_stored(db, "BL")["T02"]), _centre(_stored(db, "W06")["T02"])
    assert np.linalg.norm(w06_c - bl_c) > 5.0  # the patient lies elsewhere at W06
    assert w.last_message.startswith("lined up on T02: W06 by its stored measurement (")
    assert w.last_message == w.compare_view.alignment_text
    np.testing.assert_allclose(w.visit_layers.offsets["W06"], lps_to_world(bl_c - w06_c),
                               atol=1e-6)
    assert np.allclose(_shown_lps(w, "BL"), bl_c, atol=0.01)
    assert np.allclose(_shown_lps(w, "W06"), w06_c, atol=0.01)
    for v in ("BL", "W06"):  # an 8 mm node is readable in each tile
        assert NODE_MM * _screen_px_per_mm(viewer, w.layers[v]["image"]) >= NODE_MIN_PX
    # the slider steps every tile alike from its own lesion (through the alignment)
    for _ in range(2):
        key(Qt.Key_Right, Qt.NoModifier)
    moved = {v: _shown_lps(w, v) - c for v, c in (("BL", bl_c), ("W06", w06_c))}
    assert moved["BL"][2] > 1.0 and np.allclose(moved["BL"], moved["W06"], atol=0.01)
    for _ in range(2):
        key(Qt.Key_Left, Qt.NoModifier)

    # a real click at the middle of the shifted W06 tile: W06's lesion, at W06's coordinates
    _mouse_click_tile(qtbot, viewer, w.layers["W06"]["image"])
    qtbot.waitUntil(lambda: not w.busy, timeout=30000)
    f = w.finding
    assert f is not None and f.visit == "W06", w.last_message
    vol = w.session.volume("W06")
    seed = vol.index_to_lps(f.mask.prompt.point_zyx)
    assert np.linalg.norm(seed - w06_c) < 1.5 and np.linalg.norm(seed - bl_c) > 4.0
    _press(qtbot, w.confirm_btn)
    assert "T02 stored on W06" in w.last_message, w.last_message
    m = _stored(db, "W06")["T02"]
    assert np.linalg.norm(_centre(m) - w06_truth) < 4.0
    # a line drawn across the lesion in the shifted W06 tile: segmented there from it
    w.line_box.setChecked(True)
    _drag_line(qtbot, viewer, w, "W06", 1.1 * float(m.long_axis_mm))
    f = w.finding
    assert f is not None and f.visit == "W06" and f.source == "line prompt", w.last_message
    mid = np.mean([vol.index_to_lps(p) for p in f.mask.prompt.line_zyx], axis=0)
    assert np.linalg.norm(mid - w06_c) < 2.0
    assert np.linalg.norm(np.mean(f.measurement.long_axis_endpoints_lps, axis=0) - w06_truth) < 4.0
    key(Qt.Key_D)  # discarded: W06's stored T02 drawn again; Alt-Up, Alt-Down: centred on it
    w.click_box.setChecked(True)
    assert np.any(w.layers["W06"]["labels"].data == w._label_of[("W06", "T02")])
    key(Qt.Key_Up)
    key(Qt.Key_Down)
    qtbot.wait(300)
    assert np.allclose(_shown_lps(w, "W06"), _centre(_stored(db, "W06")["T02"]), atol=0.01)
    _shot(w, viewer, "compare_aligned")


def test_comparison_view_registers_a_follow_up_it_has_no_position_for(gui_db, make_napari_viewer,
                                                                     qtbot):
    """T02 stored at baseline only, nothing proposed at W06: choosing "BL and W06" registers W06
    to the baseline in a worker thread (the panel stays usable), and a real click on T02's
    row then lines W06 up by that registration: each tile shows the point its visit has where
    the registration carries T02's baseline position (not the same patient millimetres, 5 mm
    off), T02 at W06 in the middle of its tile, and real arrow-key presses keep the two tiles
    on points the registration maps onto each other."""
    from qtpy.QtCore import Qt

    from napari_recist._compare_view import NODE_MIN_PX, NODE_MM

    db, tps = gui_db
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1400, 900)
    w = _widget(viewer, db)
    canvas = viewer.window._qt_viewer.canvas._scene_canvas.native
    _baseline_read(qtbot, w, tps, lesions=("T02",))
    assert not w.session.has_registration("W06")
    w.compare_combo.setCurrentText("BL and W06")
    assert "W06" in w.registering and not w.busy  # in a worker; the panel answers meanwhile
    qtbot.waitUntil(lambda: not w.registering, timeout=120000)
    assert w.session.has_registration("W06"), w.last_message
    _click_row(qtbot, w.table, "T02")
    qtbot.wait(300)  # the linked grid cameras follow
    assert w.aligned_on == "T02"
    assert w.compare_view.alignment_text.startswith("lined up on T02: W06 by the registration (")
    reg = w.session._registrations["W06"]
    bl_c = _centre(_stored(db, "BL")["T02"])
    w06_truth = np.asarray(tps["W06"]["lesions"]["T02"]["center_lps"], float)
    projected = np.asarray(reg.map_point(bl_c), float)
    assert np.allclose(_shown_lps(w, "BL"), bl_c, atol=0.01)
    assert np.allclose(_shown_lps(w, "W06"), projected, atol=0.01)
    assert np.linalg.norm(projected - bl_c) > 3.0  # raw millimetres would be elsewhere
    assert np.linalg.norm(projected - w06_truth) < 0.5 * np.linalg.norm(bl_c - w06_truth)
    for v in ("BL", "W06"):  # an 8 mm node is readable in each tile
        assert NODE_MM * _screen_px_per_mm(viewer, w.layers[v]["image"]) >= NODE_MIN_PX
    _shot(w, viewer, "compare_registered")
    for _ in range(3):  # the slider: both tiles stay on points the registration pairs
        canvas.setFocus()
        qtbot.keyClick(canvas, Qt.Key_Right)
        qtbot.wait(50)
        here = _shown_lps(w, "BL")
        assert abs(here[2] - bl_c[2]) > 1.0 or _ == 0
        np.testing.assert_allclose(_shown_lps(w, "W06"), reg.map_point(here), atol=0.05)


def _t02_stored_at_baseline(gui_db, make_napari_viewer, qtbot):
    """A shown viewer whose panel has stored T02 at baseline: (viewer, panel, BL volume, T02's
    stored measurement)."""
    db, tps = gui_db
    viewer = make_napari_viewer(show=True)
    w = _widget(viewer, db)
    _baseline_read(qtbot, w, tps, lesions=("T02",))
    return viewer, w, w.session.volume("BL"), _stored(db, "BL")["T02"]


def test_stored_axes_are_shown_faded_on_neighbouring_slices(gui_db, make_napari_viewer, qtbot):
    """A stored lesion's long and short axes are drawn on their own slice; stepping through the
    slices with the arrow keys (real key presses on the canvas) shows them faded on the slices
    within NEARBY_MM of it, fainter further away, and not beyond."""
    from qtpy.QtCore import Qt

    from napari_recist._visit_layers import NEARBY_MM, NEARBY_OPACITY

    viewer, w, vol, m = _t02_stored_at_baseline(gui_db, make_napari_viewer, qtbot)
    ends = {key: vol.lps_to_index(np.asarray(m.endpoints_lps[key], float)) for key in ("long", "short")}
    k = int(round(ends["long"][0, 0]))
    ct, stored, nearby = (w.layers["BL"][x] for x in ("image", "stored", "nearby"))
    canvas = viewer.window._qt_viewer.canvas._scene_canvas.native

    shown = _drawn

    def step_to(target: int) -> None:
        """Arrow-key presses until the baseline CT is at slice ``target`` (a key steps by
        napari's dims step, which may be less than one baseline slice)."""
        for _ in range(40):
            now = float(ct.world_to_data(viewer.dims.point)[0])
            if abs(now - target) < 0.25:
                return
            canvas.setFocus()
            qtbot.keyClick(canvas, Qt.Key_Right if target > now else Qt.Key_Left)
            qtbot.wait(20)
        raise AssertionError(f"slice {target} not reached")

    w.focus(lps_to_world(_centre(m)), field_mm=120.0)
    step_to(k)
    assert len(shown(stored)) == 2 and shown(nearby) == []
    # one label (cyan over its black shadow), above the lesion's axes (off the lesion)
    on = np.flatnonzero(stored._data_view._displayed)
    labels = [(stored.features["label"][i], stored.features["ink"][i], stored.data[i])
              for i in on if stored.features["label"][i]]
    assert sorted((text, ink) for text, ink, _ in labels) == [
        (f"T02 LA {m.long_axis_mm} mm", "black"), (f"T02 LA {m.long_axis_mm} mm", "cyan")]
    top = min(ends["long"][:, 1].min(), ends["short"][:, 1].min())
    assert all(np.all(at[:, 1] < top - 1.0) for *_, at in labels)
    for d in (1, -1):
        step_to(k + d)
        assert shown(stored) == []
        lines = [nearby.data[i] for i in shown(nearby)]
        assert len(lines) == 2  # the long and the short axis, where they are on their slice
        for key in ("long", "short"):
            assert any(np.allclose(x[:, 1:], ends[key][:, 1:], atol=1e-6) for x in lines)
        assert np.allclose(nearby.edge_color[shown(nearby), 3], NEARBY_OPACITY)
        _shot(w, viewer, f"faded_axes_{d:+d}")
    far = int(NEARBY_MM // vol.spacing[0])
    step_to(k + far)
    alpha = nearby.edge_color[shown(nearby), 3]
    assert len(alpha) == 2 and np.all((alpha > 0) & (alpha < NEARBY_OPACITY))
    step_to(k + far + 1)
    assert shown(nearby) == [] and shown(stored) == []


def _distinct_lines(layer) -> set[tuple[float, ...]]:
    """A shapes layer's drawn lines told apart in the slice plane (the copies that
    _axis_geometry.on_its_image_slice places at the slider's finer stops count once; a label's
    unseen anchor is no line)."""
    return {tuple(np.round(layer.data[i][:, 1:], 6).ravel())
            for i in np.flatnonzero(np.asarray(layer.edge_color)[:, 3] > 0)}


def _drawn(layer) -> list[int]:
    """The shapes of a layer drawn on the slice shown (a label's unseen anchor left out)."""
    seen = np.asarray(layer.edge_color)[:, 3] > 0 if len(layer.data) else np.zeros(0, bool)
    return [int(i) for i in np.flatnonzero(layer._data_view._displayed & seen)]


def _move_review_end(w, visit: str, line: int, end: int, dyx) -> None:
    """Move one end of a line of a visit's review layer (0 the long axis, 1 the short) by
    ``dyx`` voxels in the slice plane, as a drag of its vertex does: only the copy drawn on the
    slice shown changes (_visit_layers places a copy at each slider stop that shows its
    slice; the first copy when the slice shown is another)."""
    review = w.layers[visit]["review"]
    data = [np.array(x, float) for x in review.data]
    copies = np.flatnonzero(w.visit_layers._review_placed[visit][1] == line)
    shown = [i for i in copies if review._data_view._displayed[i]]
    i = (shown or list(copies))[0]
    data[i][end, -2:] += np.asarray(dyx, float)
    review.data = data


def test_review_axes_follow_the_ct_slice_at_half_steps(gui_db, make_napari_viewer, qtbot):
    """The lesion under review's axes and their labels (the review layer, as a tracked
    proposal's are shown) are drawn at every slider stop where its visit's CT shows their
    slice and at no other, half-way stops beside the finer W12 included (real arrow-key
    presses from two BL slices below to two above; before, they vanished at every other
    stop). A drag of an axis end at a half-way stop re-measures the lesion from the moved end,
    on its own slice."""
    from qtpy.QtCore import Qt

    db, tps = gui_db
    viewer = make_napari_viewer(show=True)
    w = _widget(viewer, db)
    _click(qtbot, w, "BL", tps["BL"]["lesions"]["T02"]["center_lps"])
    f = w.finding
    assert f is not None and f.visit == "BL", w.last_message
    k = int(f.measurement.slice_index)
    assert w.session.volume("BL").spacing[0] >= 2 * w.session.volume("W12").spacing[0]
    ct, review = w.layers["BL"]["image"], w.layers["BL"]["review"]
    canvas = viewer.window._qt_viewer.canvas._scene_canvas.native

    def at() -> float:
        return float(ct.world_to_data(viewer.dims.point)[0])

    def key(k_) -> None:
        canvas.setFocus()
        qtbot.keyClick(canvas, k_)
        qtbot.wait(20)

    for _ in range(40):  # down to two slices below
        if at() <= k - 2 + 0.1:
            break
        key(Qt.Key_Left)
    halves = 0
    while at() <= k + 2 + 0.1:
        point = at()
        halves += not float(point).is_integer()
        on = int(np.round(point)) == k
        labels = [t for t, d in zip(review.features["label"], review._data_view._displayed,
                                    strict=True) if d and t]
        assert len(_drawn(review)) == (2 if on else 0), (point, len(_drawn(review)))
        assert sorted(t.split()[0] for t in labels) == (["LA", "SA"] if on else []), point
        key(Qt.Key_Right)
    assert halves >= 4  # the keys did stop half-way
    while not (int(np.round(at())) == k and not float(at()).is_integer()):
        key(Qt.Key_Left)  # back to a half-way stop that shows the axes' slice
    la = np.asarray(w.visit_layers.review_lines("BL")[0], float)
    assert la[0, 0] == pytest.approx(k)
    _move_review_end(w, "BL", 0, 0, (-2.0, 3.0))
    m = w.finding.measurement
    assert m.method == "line" and m.slice_index == k, w.last_message
    np.testing.assert_allclose(np.asarray(m.long_axis_endpoints_voxel, float)[0],
                               la[0] + (0.0, -2.0, 3.0), atol=1e-6)
    assert len(_drawn(review)) == 2  # drawn again, still on this stop


def test_stored_axes_follow_the_ct_slice_at_half_steps(gui_db, make_napari_viewer, qtbot):
    """W12 has 1.25 mm slices and BL 2.5 mm, so the arrow keys stop half-way between BL's
    slices, where napari shows BL's even slice. At every stop from two slices below the stored
    T02 to two above (real key presses), its axes are drawn exactly when the BL CT shown is
    their slice, and the faded ones exactly when it is a neighbour (before, both vanished at
    the half-way stops)."""
    from qtpy.QtCore import Qt

    viewer, w, vol, m = _t02_stored_at_baseline(gui_db, make_napari_viewer, qtbot)
    k = int(round(vol.lps_to_index(np.asarray(m.endpoints_lps["long"], float))[0, 0]))
    ct, stored, nearby = (w.layers["BL"][x] for x in ("image", "stored", "nearby"))
    canvas = viewer.window._qt_viewer.canvas._scene_canvas.native
    w.focus(lps_to_world(_centre(m)), field_mm=120.0)

    def at() -> float:
        return float(ct.world_to_data(viewer.dims.point)[0])

    for _ in range(40):  # down to two slices below
        if at() <= k - 2 + 0.1:
            break
        canvas.setFocus()
        qtbot.keyClick(canvas, Qt.Key_Left)
        qtbot.wait(20)
    halves = 0
    while at() <= k + 2 + 0.1:
        point = at()
        image_slice = int(np.round(point))
        halves += not float(point).is_integer()
        n_stored, n_near = len(_drawn(stored)), len(_drawn(nearby))
        assert n_stored == (2 if image_slice == k else 0), (point, n_stored)
        assert n_near == (0 if image_slice == k else 2), (point, n_near)
        canvas.setFocus()
        qtbot.keyClick(canvas, Qt.Key_Right)
        qtbot.wait(20)
    assert halves >= 4  # the keys did stop half-way


def _bench_gui():
    """benchmarks/bench_gui.py as a module (its heartbeat stall meter)."""
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_gui.py"
    spec = importlib.util.spec_from_file_location("bench_gui", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


#: The longest event-loop stall allowed while the panel logs in and opens a subject (s): a guard,
#: not the issue's 100 ms goal (benchmarks/bench_gui.py measures that). The series loaded in the
#: GUI thread stalled it over 3 s; on the shared 2-core box under other jobs' load, napari adding
#: one layer or drawing it the first time still takes 0.1-0.6 s (2026-12-04).
OPEN_STALL_S = 3.0


def test_opening_a_subject_leaves_the_interface_responsive(gui_db, make_napari_viewer, qtbot,
                                                           monkeypatch):
    """Real clicks on "Log in" and "Open subject" while bench_gui's 10 ms heartbeat ticks in the
    GUI thread: the series load and their napari layers are made in a worker thread (the model
    warms in another), so no stall reaches OPEN_STALL_S; each layer is added hidden and shown
    afterwards (its first draw a turn of its own); the first visit's layers are in before the
    last series is loaded; once open, a real click on a lesion is segmented by the model the
    panel warmed, and stored."""
    import threading

    from qtpy.QtWidgets import QApplication

    from napari_recist import _subject_panel
    from napari_recist._widget import ReadingWidget

    made_in: list[str] = []  # the thread each visit's layers were made in
    make = _subject_panel.make_layers

    def spy(*args, **kwargs):
        made_in.append(threading.current_thread().name)
        return make(*args, **kwargs)

    monkeypatch.setattr(_subject_panel, "make_layers", spy)

    db, tps = gui_db
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1400, 900)
    w = ReadingWidget(viewer)
    viewer.window.add_dock_widget(w, name="RECIST reading")
    _type(qtbot, w.db_edit, str(db))
    _type(qtbot, w.reader_edit, READER)
    _type(qtbot, w.password_edit, "not the password")
    _press(qtbot, w.login_btn)  # refused, after the worker's check
    qtbot.waitUntil(lambda: not w.busy, timeout=30000)
    assert w.session is None and "wrong password" in w.last_message, w.last_message
    _type(qtbot, w.password_edit, PASSWORD)
    # (panel busy, series loaded, the layer shown) as each layer comes in
    arrived: list[tuple[bool, int, bool]] = []
    viewer.layers.events.inserted.connect(
        lambda e: arrived.append((w.busy, len(w.session._volumes), e.value.visible)))
    beat = _bench_gui().Heartbeat(QApplication.instance(), interval_ms=10)
    stalls: list[float] = []
    with beat.measure(stalls):
        _press(qtbot, w.login_btn)
        assert w.busy and w.session is None  # the password is checked in a worker thread
        qtbot.waitUntil(lambda: not w.busy, timeout=30000)
    assert w.last_message == f"logged in as {READER}", w.last_message
    with beat.measure(stalls):
        _press(qtbot, w.open_btn)
        assert w.busy and not w.layers  # the click returned at once, nothing loaded yet
        qtbot.waitUntil(lambda: not w.busy, timeout=120000)
    assert w.last_message == "SYN-001: 3 of 3 visits shown", w.last_message
    assert max(stalls) < OPEN_STALL_S, stalls
    assert len(arrived) == 3 * 5 and all(busy for busy, _, _ in arrived)
    assert arrived[0][1] < 3  # BL's layers were shown before W12's series was read
    assert not any(shown for _, _, shown in arrived)  # added hidden,
    assert all(layer.visible for d in w.layers.values() for layer in d.values())  # then shown
    assert all(d["image"].name_overlay.visible for d in w.layers.values())  # the tile labels
    assert len(made_in) == 3 and threading.main_thread().name not in made_in, made_in
    qtbot.waitUntil(lambda: w.warm_seconds is not None, timeout=60000)
    assert w.session._segmenter is not None  # the first click finds the model loaded
    t02 = tps["BL"]["lesions"]["T02"]
    _click_lesion(qtbot, viewer, w, "BL", t02["center_lps"])
    assert w.finding is not None and w.finding.visit == "BL", w.last_message
    w.organ_combo.setCurrentText("liver")
    _press(qtbot, w.add_btn)
    assert "T01 stored as target on BL" in w.last_message, w.last_message
    m = _stored(db, "BL")["T01"]
    assert np.linalg.norm(_centre(m) - np.asarray(t02["center_lps"])) < 4.0


def _answer_password_dialog(qtbot, text: str) -> list[str]:
    """Answer the next modal dialog as a reader does: ``text`` typed into its line edit, Enter.
    Returns a list that gets the dialog's class name once answered."""
    from qtpy.QtCore import Qt, QTimer
    from qtpy.QtWidgets import QApplication, QLineEdit

    seen: list[str] = []

    def answer() -> None:
        dlg = QApplication.activeModalWidget()
        if dlg is None:
            QTimer.singleShot(50, answer)
            return
        seen.append(type(dlg).__name__)
        edit = next(e for e in dlg.findChildren(QLineEdit) if e.isVisible())
        edit.setFocus()
        qtbot.keyClicks(edit, text)
        qtbot.keyClick(edit, Qt.Key_Return)

    QTimer.singleShot(100, answer)
    return seen


def test_signing_checks_the_password_in_a_worker(gui_db, make_napari_viewer, qtbot,
                                                 monkeypatch):
    """"Sign this visit…" pressed and the password typed into its dialog: the password is
    checked (scrypt) and the read signed in a worker thread, the panel busy meanwhile, so the
    window answers; a wrong password is refused in one line and nothing is signed (the read
    stays open), the right one signs it once."""
    import threading

    from recist_tool.store import TrialStore as Store

    db, tps = gui_db
    viewer = make_napari_viewer(show=True)
    w = _widget(viewer, db)
    _baseline_read(qtbot, w, tps, ("T02",))
    w.visit_combo.setCurrentText("BL")
    checked_in: list[str] = []  # the thread each password check ran in
    check = Store.authenticate

    def spy(self, *args, **kwargs):
        checked_in.append(threading.current_thread().name)
        return check(self, *args, **kwargs)

    monkeypatch.setattr(Store, "authenticate", spy)
    for password, signs in (("not the password", False), (PASSWORD, True)):
        seen = _answer_password_dialog(qtbot, password)
        _press(qtbot, w.sign_btn)
        assert seen == ["QInputDialog"]
        assert w.busy and w.last_message == "signing SYN-001 BL…", w.last_message
        assert not w.sign_btn.isEnabled()
        qtbot.waitUntil(lambda: not w.busy, timeout=30000)
        with TrialStore(db, read_only=True) as store:
            read = store.get_read("SYN-001", "BL", reader=READER)
        if signs:
            assert w.last_message.startswith("SYN-001 BL signed (sha256 "), w.last_message
            assert read.status == "signed" and len(read.signatures) == 1
        else:
            assert "wrong password" in w.last_message and "\n" not in w.last_message
            assert read.status != "signed" and not read.signatures
        assert w.sign_btn.isEnabled()
    assert len(checked_in) == 2
    assert threading.main_thread().name not in checked_in, checked_in


def test_gui_benchmark_heartbeat_measures_a_stall(qapp):
    """benchmarks/bench_gui.py's heartbeat: 0.3 s of work in the GUI thread is a 0.3 s stall;
    0.3 s of processing events is none."""
    import time

    beat = _bench_gui().Heartbeat(qapp, interval_ms=10)
    stalls: list[float] = []
    with beat.measure(stalls):
        time.sleep(0.3)
    with beat.measure(stalls):
        end = time.perf_counter() + 0.3
        while time.perf_counter() < end:
            qapp.processEvents()
            time.sleep(0.002)
    assert 0.25 <= stalls[0] <= 0.6 and stalls[1] < 0.1, stalls


def test_gui_benchmark_sampler_tells_what_ran_in_a_stall(qapp):
    """benchmarks/bench_gui.py --sample-stalls: a stall of 0.3 s of Python work in the GUI
    thread is kept with what was measured, and the stack samples taken in it name the function
    that ran."""
    import time

    bench = _bench_gui()
    beat = bench.Heartbeat(qapp, interval_ms=10)
    sampler = bench.StackSampler()

    def spin_in_the_gui_thread() -> None:
        end = time.perf_counter() + 0.3
        while time.perf_counter() < end:
            pass

    sampler.start()
    try:
        with beat.measure([], "spinning"):
            spin_in_the_gui_thread()
    finally:
        sampler.stop()
    assert [what for what, _, _ in beat.gaps] == ["spinning"], beat.gaps
    _, start, end = beat.gaps[0]
    assert 0.25 <= end - start <= 0.7
    said = sampler.during(start, end)
    assert any("spin_in_the_gui_thread" in line for line in said), said


def test_the_panels_glyphs_are_rendered_ahead_a_few_a_step(make_napari_viewer):
    """_napari_warm_up.rendering_glyphs puts each character's glyph into the canvas's font atlas,
    GLYPHS_A_STEP a step, and renders none twice."""
    from napari_recist._napari_warm_up import GLYPHS_A_STEP, rendering_glyphs

    viewer = make_napari_viewer()
    info = viewer.window._qt_viewer.canvas.font_info()
    font = info.font_manager.get_font(info.face)
    chars = "".join(c for c in "0123456789LASTm" if c not in font._glyphs)
    assert len(chars) > GLYPHS_A_STEP
    steps = 0
    for _ in rendering_glyphs(viewer, chars):
        steps += 1
        assert set(chars[:steps * GLYPHS_A_STEP]) <= set(font._glyphs)
    assert steps == -(-len(chars) // GLYPHS_A_STEP)
    assert set(chars) <= set(font._glyphs)
    assert list(rendering_glyphs(viewer, chars)) == []  # all rendered already


def test_a_vispy_mesh_keeps_its_colour_function_from_one_data_update_to_the_next():
    """_napari_warm_up.keep_mesh_colour_functions: a mesh coloured per face given new data keeps
    its program's code (vispy made its colour function anew, and so rebuilt its program, at
    each update: vispy issue 2568); one coloured through a colormap still gets its own."""
    from vispy.visuals.mesh import MeshVisual

    from napari_recist._napari_warm_up import keep_mesh_colour_functions

    keep_mesh_colour_functions()
    mesh = MeshVisual()
    vertices = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    faces = np.array([[0, 1, 2]])

    def colour_function(**colours):
        mesh.set_data(vertices=vertices, faces=faces, **colours)
        mesh._update_data()
        return mesh.shared_program.vert["color_transform"]

    first = colour_function(face_colors=np.array([[1.0, 0.0, 0.0, 1.0]]))
    assert colour_function(face_colors=np.array([[0.0, 1.0, 0.0, 1.0]])) is first
    assert colour_function(vertex_values=np.array([0.0, 0.5, 1.0])) is not first
