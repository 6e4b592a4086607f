"""Issue #30, hazard 4, in the real viewer: a click on normal liver is refused with a message
and stores nothing; the reader's line there is outlined; the liver target is still measured."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")
pytest.importorskip("torch")

from tests.plugins.test_napari_widget import (  # noqa: E402
    _click_lesion,
    _drag_line,
    _press,
    _shot,
    _stored,
    _widget,
)
from tests.segment.test_distinct import deepest_points, lesion_centres, phantom_liver  # noqa: E402

pytestmark = pytest.mark.gui


def test_a_click_on_liver_parenchyma_is_refused_and_stores_nothing(gui_db, make_napari_viewer,
                                                                    qtbot):
    """Real mouse events on SYN-001's baseline tile. A click on the liver 45 mm and more from
    every lesion (the second deepest such point, which ``segment.distinct`` refuses: before it
    the click came back as a 75 mm 'lesion') is refused with the segmenter's message, and no
    mask is shown; a 30 mm line dragged across the same place is outlined (a reader's line
    asserts a lesion) and discarded; the liver target T02 clicked after is measured and stored.
    """
    db, tps = gui_db
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1400, 900)
    w = _widget(viewer, db)
    vol = w.session.volume("BL")
    lesions = tps["BL"]["lesions"]
    click = deepest_points(vol, phantom_liver(vol), lesion_centres(vol, lesions), 45.0, 2)[1]
    at = vol.index_to_lps(np.asarray(click, float)[None])[0]

    _click_lesion(qtbot, viewer, w, "BL", at)
    assert w.finding is None
    assert w.last_message.startswith("no lesion here (no lesion distinct from the tissue around "
                                     "it here: the tissue at the click"), w.last_message
    assert "draw the lesion's caliper line" in w.last_message
    assert not np.any(w.layers["BL"]["labels"].data)
    _shot(w, viewer, "parenchyma_refused")
    assert len(w.session.stored("BL")) == 0

    w.line_box.setChecked(True)
    _drag_line(qtbot, viewer, w, "BL", 30.0)
    assert w.finding is not None and w.finding.source == "line prompt", w.last_message
    _press(qtbot, w.discard_btn)
    assert w.finding is None and len(w.session.stored("BL")) == 0
    w.click_box.setChecked(True)

    t02 = lesions["T02"]
    _click_lesion(qtbot, viewer, w, "BL", t02["center_lps"])
    assert w.finding is not None, w.last_message
    assert abs(w.finding.measurement.long_axis_mm - t02["long_axis_mm"]) <= 2.0
    w.category_combo.setCurrentText("target")
    w.organ_combo.setCurrentText("liver")
    _press(qtbot, w.add_btn)
    stored = _stored(db, "BL")
    assert len(stored) == 1
    (m,) = stored.values()
    assert np.linalg.norm(np.mean(np.asarray(m.endpoints_lps["long"], float), axis=0)
                          - np.asarray(t02["center_lps"])) < 4.0
