"""What the reader sees of the reading panel at 1920 × 1080 (issue #30, "what a radiologist finds
hard to read"): the axis labels of the lesion under review off the lesion and off each other, as
drawn on the canvas; the panel within its dock after a subject is opened; every column of the
tables readable at the dock's default width.

The canvas is read back from napari's own screenshots: a label's pixels are those that change
when only that label is drawn, the lesion's those that change when its mask is shown.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from tests.plugins.test_napari_widget import (  # noqa: E402
    _baseline_read,
    _click_lesion,
    _docked,
    _log_in_and_open,
    _move_review_end,
    _show_tab_of,
    _widget,
)

pytestmark = pytest.mark.gui

#: The smallest height a label's text may have on screen to be read (pixels).
READABLE_PX = 8
#: A label keeps this many pixels from the lesion's drawn mask.
CLEAR_PX = 2


def _canvas(viewer) -> np.ndarray:
    """The canvas as drawn (RGB, int)."""
    return np.asarray(viewer.screenshot(canvas_only=True, flash=False))[..., :3].astype(int)


def _changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pixels that differ between two screenshots."""
    return np.abs(a - b).sum(axis=-1) > 40


def _box(px: np.ndarray) -> tuple[int, int, int, int]:
    """``(y0, x0, y1, x1)`` of a pixel mask."""
    ys, xs = np.nonzero(px)
    return int(ys.min()), int(xs.min()), int(ys.max()), int(xs.max())


def _review_on_screen(qtbot, viewer, w, visit: str) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Each label of the lesion under review (its text → its pixels on the canvas) and the
    lesion's mask pixels."""
    review, labels = w.layers[visit]["review"], w.layers[visit]["labels"]
    texts = list(review.features["label"])
    shown = [t for t in texts if t]

    def only(keep: str | None) -> np.ndarray:
        review.features = {"label": np.array([t if t == keep else "" for t in texts], object)}
        review.refresh_text()
        qtbot.wait(100)
        return _canvas(viewer)

    none = only(None)
    out = {t: _changed(only(t), none) for t in shown}
    review.features = {"label": np.array(texts, object)}
    review.refresh_text()
    review.visible = False
    labels.visible = False
    qtbot.wait(100)
    bare = _canvas(viewer)
    review.visible = labels.visible = True
    qtbot.wait(100)
    review.visible = False
    qtbot.wait(100)
    mask = _changed(_canvas(viewer), bare)
    review.visible = True
    qtbot.wait(100)
    return out, mask


def _assert_readable_and_clear(texts: dict[str, np.ndarray], mask: np.ndarray) -> None:
    from scipy.ndimage import binary_dilation

    assert sorted(t.split()[0] for t in texts) == ["LA", "SA"], list(texts)
    assert mask.sum() > 50, "the lesion's mask is not drawn"
    near = binary_dilation(mask, iterations=CLEAR_PX)
    boxes = {}
    for t, px in texts.items():
        assert px.sum() > 20, f"{t!r} is not drawn"
        assert not np.any(px & near), f"{t!r} is drawn on the lesion"
        boxes[t] = _box(px)
        assert boxes[t][2] - boxes[t][0] + 1 >= READABLE_PX, (t, boxes[t])
    (a, b) = boxes.values()
    apart = a[2] < b[0] or b[2] < a[0] or a[3] < b[1] or b[3] < a[1]
    assert apart, f"the labels overlap: {boxes}"


def test_axis_labels_stand_off_the_lesion_and_each_other(gui_db, make_napari_viewer, qtbot):
    """A lesion clicked (the lung target T01, the liver target T02): its "LA … mm" and
    "SA … mm" labels are drawn outside its mask and apart from each other, zoomed on the
    lesion and in the whole view, at 1920 × 1080; moved axis ends take their labels along."""
    db, tps = gui_db
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1920, 1080)
    w = _widget(viewer, db)
    for lid in ("T01", "T02"):
        les = tps["BL"]["lesions"][lid]
        _click_lesion(qtbot, viewer, w, "BL", les["center_lps"])
        assert w.finding is not None and w.finding.visit == "BL", w.last_message
        assert len(w.visit_layers.review_lines("BL")) == 2
        texts, mask = _review_on_screen(qtbot, viewer, w, "BL")
        _assert_readable_and_clear(texts, mask)
        viewer.reset_view()  # the whole view: the lesion a few tens of pixels across
        qtbot.wait(200)
        texts, mask = _review_on_screen(qtbot, viewer, w, "BL")
        _assert_readable_and_clear(texts, mask)
    # the reader moves the long axis's upper end up and right: its label follows, still off
    # the lesion (shown on the long axis's own slice, which need not be the lesion centre's)
    la_mid = np.mean(np.asarray(w.finding.measurement.long_axis_endpoints_lps, float), axis=0)
    w.focus(w.visit_layers.to_world("BL", la_mid), field_mm=120.0)
    qtbot.wait(300)
    review = w.layers["BL"]["review"]
    la, sa = (np.asarray(x, float) for x in w.visit_layers.review_lines("BL"))

    def la_anchor() -> np.ndarray:  # where the long axis's label is drawn on the slice shown
        i = next(i for i in np.flatnonzero(review._data_view._displayed)
                 if str(review.features["label"][i]).startswith("LA"))
        return np.asarray(review.data[i], float)[0]

    before = la_anchor()
    top = int(np.argmin(la[:, 1]))
    _move_review_end(w, "BL", 0, top, (-6.0, 4.0))
    assert w.finding.measurement.method == "line", w.last_message
    assert len(w.visit_layers.review_lines("BL")) == 2
    after = la_anchor()
    assert after[2] == pytest.approx(before[2] + 4.0, abs=0.5)  # the label went along with it
    assert after[1] <= before[1]
    texts, mask = _review_on_screen(qtbot, viewer, w, "BL")
    assert sorted(t.split()[0] for t in texts) == ["LA", "SA"]
    for t, px in texts.items():
        assert not np.any(px & mask), f"{t!r} is drawn on the lesion"


def _header_fits(table, i: int) -> bool:
    """Whether column ``i``'s header text, each of its lines, fits the column."""
    from qtpy.QtWidgets import QStyle

    head = table.horizontalHeader()
    fm = head.fontMetrics()
    margin = 2 * head.style().pixelMetric(QStyle.PM_HeaderMargin, None, head)
    text = table.horizontalHeaderItem(i).text()
    return max(fm.horizontalAdvance(line) for line in text.split("\n")) + margin \
        <= head.sectionSize(i)


def _assert_columns_readable(table) -> None:
    """Every header whole and every column in sight without scrolling; a cell too narrow
    for its text has that text whole in its tooltip."""
    head = table.horizontalHeader()
    fm = table.fontMetrics()
    assert table.horizontalScrollBar().maximum() == 0, "the table scrolls sideways"
    for i in range(table.columnCount()):
        name = table.horizontalHeaderItem(i).text()
        assert _header_fits(table, i), (name, head.sectionSize(i))
        assert head.sectionViewportPosition(i) + head.sectionSize(i) \
            <= table.viewport().width(), (name, "cut at the right")
        for r in range(table.rowCount()):
            item = table.item(r, i)
            if item is None or not item.text():
                continue
            if fm.horizontalAdvance(item.text()) + 8 > head.sectionSize(i):
                assert item.toolTip() == item.text(), (name, item.text())


def test_the_panel_stays_in_its_dock_and_its_tables_read_whole(gui_db, make_napari_viewer,
                                                                 qtbot):
    """napari at 1920 × 1080 with the panel docked at its default width: opening a subject
    leaves the dock as wide as it was and the panel within it (no sideways scrolling, the
    canvas keeping the rest of the window); the timepoint table (lesions × three visits) and
    the proposals table (tracked at W06) show every column with its header whole."""
    db, tps = gui_db
    viewer = make_napari_viewer(show=True)
    win = viewer.window._qt_window
    win.resize(1920, 1080)
    w, dock = _docked(viewer)
    qtbot.wait(300)
    default = dock.width()
    _log_in_and_open(w, db)
    qtbot.wait(300)
    scroll = w.panel.parentWidget().parentWidget()
    canvas = viewer.window._qt_viewer.canvas.native
    assert dock.width() == default, (dock.width(), default)
    assert dock.geometry().left() >= canvas.mapTo(win, canvas.rect().topRight()).x()
    assert dock.geometry().right() <= win.width()
    for i in range(w.tabs.count()):
        w.tabs.setCurrentIndex(i)
        qtbot.wait(50)
        assert scroll.horizontalScrollBar().maximum() == 0, w.tabs.tabText(i)
        assert w.panel.width() <= scroll.viewport().width()
        assert w.panel.minimumSizeHint().width() <= scroll.viewport().width()

    _baseline_read(qtbot, w, tps, lesions=("T01", "T02", "T03", "NT01"))
    _show_tab_of(qtbot, w.table)
    qtbot.wait(100)
    assert w.table.columnCount() == 4
    _assert_columns_readable(w.table)

    w.visit_combo.setCurrentText("W06")
    _show_tab_of(qtbot, w.propose_btn)
    w.propose()
    qtbot.waitUntil(lambda: not w.busy and w.proposal_table.rowCount() > 0, timeout=120000)
    w.proposal_list.select("T01")
    w.accept_selected()
    qtbot.waitUntil(lambda: not w.busy, timeout=60000)
    qtbot.wait(100)
    statuses = [w.proposal_table.item(r, 1).text() for r in range(w.proposal_table.rowCount())]
    assert any("stored" in s for s in statuses), statuses
    _assert_columns_readable(w.proposal_table)
    assert dock.width() == default
    assert scroll.horizontalScrollBar().maximum() == 0
