"""The reader's mouse and keys on napari's canvas, for the RECIST reading panel.

A click on a visit's CT segments the lesion under it, a press-drag-release in line mode draws a
line prompt, a right-button drag sets window and level, and the reading keys
(:data:`READING_KEYS`, :data:`PRESET_KEYS`) press the panel's buttons. Which visit a click or a
line is on is the CT layer under the mouse
(:meth:`napari_recist._visit_layers.VisitLayers.visit_at`), never a layer's position. What is
segmented, and how, is the panel's (:meth:`napari_recist._widget.ReadingWidget.click_at_world`,
:meth:`~napari_recist._widget.ReadingWidget.segment_line`): this module only turns events into
those calls.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from qtpy.QtCore import QTimer

from recist_tool.windows import WINDOWS

#: Keys of the window presets (napari key-binding syntax).
PRESET_KEYS = {name: f"Alt-{i}" for i, name in enumerate(WINDOWS, start=1)}
#: Reading keys (napari key-binding syntax): key → what it does. Buttons' keys press the button
#: (nothing happens, and the panel says so, while it is disabled).
READING_KEYS = {"Alt-S": "classify and store", "Alt-C": "confirm measurement",
                "Alt-D": "discard", "Alt-A": "accept the selected proposal",
                "Alt-Down": "next lesion", "Alt-Up": "previous lesion",
                "Alt-Right": "next visit", "Alt-Left": "previous visit"}
#: The reading keys as the Read tab lists them (in two lines at the dock's width; each key's
#: whole description in the list's tooltip, :data:`KEYS_TIP`).
KEYS_SHORT = ("Keys: Alt-S store, Alt-C confirm, Alt-D discard, Alt-A accept proposal, "
              "Alt-Down / Alt-Up next / previous lesion, Alt-Right / Alt-Left next / previous "
              "visit, Alt-1 … Alt-4 " + ", ".join(PRESET_KEYS) + " window")
#: The mouse button (napari's numbering) whose drag on the canvas sets window and level, and the
#: Hounsfield units a screen pixel of that drag moves them (:meth:`CanvasInput.drag_window`).
WL_BUTTON, WL_HU_PER_PX = 2, 2.0
#: Every key and mouse action, in full (the keys' line's tooltip).
KEYS_TIP = ("Keys: " + ", ".join(f"{k} {what}" for k, what in READING_KEYS.items())
            + "; " + ", ".join(f"{k} {n} window" for n, k in PRESET_KEYS.items())
            + "; a right-button drag on a CT: window (sideways) and level (up and down)")


class CanvasInput:
    """The panel's mouse callback and key bindings on a viewer.

    Parameters
    ----------
    panel : ReadingWidget
        What the events act on: its ``layers``, ``visit_layers``, ``visit`` and
        ``visit_combo``, ``busy`` and ``tasks``, the click and line boxes, the reading
        buttons, ``say``, ``click_at_world``, ``segment_line``, ``set_finding``,
        ``apply_window``, ``step_lesion``, ``camera``.

    Attributes
    ----------
    drawing_line : str or None
        The visit a line prompt is being drawn on (its review layer's edits are not the
        reader's moving an axis end).
    """

    def __init__(self, panel: Any) -> None:
        self.panel = panel
        self.drawing_line: str | None = None

    def connect(self, viewer: Any) -> None:
        """Take the viewer's mouse presses and bind the reading keys and window presets."""
        viewer.mouse_drag_callbacks.append(self.on_mouse)
        for name, key in PRESET_KEYS.items():
            viewer.bind_key(key, lambda _v, n=name: self.panel.apply_window(n), overwrite=True)
        for key in READING_KEYS:
            viewer.bind_key(key, lambda _v, k=key: self.press_key(k), overwrite=True)

    def disconnect(self, viewer: Any) -> None:
        """Give the viewer's mouse presses back (the panel closes)."""
        if self.on_mouse in viewer.mouse_drag_callbacks:
            viewer.mouse_drag_callbacks.remove(self.on_mouse)

    def press_key(self, key: str) -> None:
        """What a reading key (:data:`READING_KEYS`) does."""
        p = self.panel
        buttons = {"Alt-S": p.add_btn, "Alt-C": p.confirm_btn, "Alt-D": p.discard_btn,
                   "Alt-A": p.accept_btn}
        if key in buttons:
            if buttons[key].isEnabled():
                buttons[key].click()
            else:
                p.say(f"{key} ({READING_KEYS[key]}): not now ("
                      + ("busy" if p.busy else "open a subject first") + ")", error=True)
        elif key in ("Alt-Down", "Alt-Up"):
            p.step_lesion(1 if key == "Alt-Down" else -1)
        elif key in ("Alt-Right", "Alt-Left"):
            combo = p.visit_combo
            n = combo.count()
            if n:
                step = 1 if key == "Alt-Right" else -1
                combo.setCurrentIndex((combo.currentIndex() + step) % n)

    def on_mouse(self, viewer: Any, event: Any) -> Any:
        """A press on the canvas: a click segments, a drag in line mode draws a line prompt; a
        click that does neither says why (busy, or a layer in an edit mode takes it)."""
        p = self.panel
        if event.type != "mouse_press":
            return
        if getattr(event, "button", 1) == WL_BUTTON and p.layers:
            yield from self.drag_window(event)
            return
        click_box, line_box = p.click_box, p.line_box
        if p.busy:
            if click_box.isChecked() or line_box.isChecked():
                p.say(f"busy ({p.tasks.task}): click again when it is done", error=True)
            return
        if line_box.isChecked():
            yield from self.draw_line(viewer, event)
            return
        if not click_box.isChecked():
            return
        layer = viewer.layers.selection.active
        mode = str(getattr(layer, "mode", "pan_zoom"))
        if mode != "pan_zoom":
            yield
            if event.type != "mouse_move":  # a click, not a paint stroke or a drag
                p.say(f"nothing segmented: the layer {layer.name!r} is in {mode} mode and "
                      "takes the click (choose pan/zoom in its controls to click a lesion)",
                      error=True)
            return
        dragged = False
        visit = p.visit_at(event.position, getattr(event, "viewbox", None))
        yield
        while event.type == "mouse_move":
            dragged = True
            yield
        if not dragged and visit is None:
            p.say("no visit's CT under the click: click on a visit of the subject", error=True)
        elif not dragged:
            if visit != p.visit:
                p.visit_combo.setCurrentText(visit)
            world = np.asarray(event.position, float)
            if getattr(event, "viewbox", None) is None:  # napari < 0.6: tiles are translated
                world[-3:] -= p.visit_layers.grid_translate(visit)
            p.click_at_world(world, visit)

    def drag_window(self, event: Any) -> Any:
        """A right-button drag on the canvas sets the window of every visit's CT, as on a PACS
        workstation: rightwards widens it, downwards raises its level, :data:`WL_HU_PER_PX` a
        screen pixel from the window under the press (napari's zoom by that drag is off
        meanwhile). Busy or not, nothing is segmented."""
        p = self.panel
        d = p.layers.get(p.visit) or next(iter(p.layers.values()))
        lo, hi = (float(x) for x in d["image"].contrast_limits)
        level0, width0 = (lo + hi) / 2.0, hi - lo
        level, width = level0, width0
        start = np.asarray(event.pos, float)
        camera = p.camera
        zooms = bool(camera.mouse_zoom)
        camera.mouse_zoom = False
        try:
            yield
            while event.type == "mouse_move":
                dx, dy = (np.asarray(event.pos, float) - start) * WL_HU_PER_PX
                width, level = max(1.0, width0 + float(dx)), level0 + float(dy)
                p.visit_layers.set_window((level - width / 2.0, level + width / 2.0))
                yield
        finally:
            camera.mouse_zoom = zooms
        if (level, width) != (level0, width0):
            p.say(f"window: level {level:.0f}, width {width:.0f} HU (right-button drag)")

    def draw_line(self, viewer: Any, event: Any) -> Any:
        """Line mode: the press starts a line in the review layer of the visit whose CT is under
        the mouse (napari's shapes layer draws it while the mouse is dragged); after the
        release the lesion is segmented from it (:meth:`line_drawn`)."""
        p = self.panel
        visit = p.visit_at(event.position, getattr(event, "viewbox", None))
        if visit is None:
            p.say("no visit's CT under the line: draw it on a visit of the subject", error=True)
            return
        if visit != p.visit:
            p.visit_combo.setCurrentText(visit)
        p.set_finding(None)  # the line is the reader's new prompt
        review = p.layers[visit]["review"]
        self.drawing_line = visit
        viewer.layers.selection.active = review  # napari hands this press to its add_line mode
        review.mode = "add_line"
        yield
        while event.type == "mouse_move":
            yield
        QTimer.singleShot(0, lambda: self.line_drawn(visit))  # once napari has finished it

    def line_drawn(self, visit: str) -> None:
        """Segment the lesion from the line just drawn on ``visit`` (both ends on the slice it
        was drawn on)."""
        p = self.panel
        self.drawing_line = None
        review = p.layers[visit]["review"]
        review.mode = "pan_zoom"
        lines = p.visit_layers.review_lines(visit)  # in the visit's voxels
        p.visit_layers.set_review(visit)
        p.viewer.layers.selection.active = p.layers[visit]["image"]
        if not lines or p.session is None:
            return
        ends = np.asarray(lines[-1], float)[:2, -3:]
        ends[:, 0] = np.round(ends[0, 0])
        p.segment_line(visit, ends)
