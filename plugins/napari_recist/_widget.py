"""Dock widget "RECIST reading": the reader's workstation over :class:`recist_tool.reading.ReadingSession`.

The widget only shows things and forwards the reader's actions; every decision (segmentation,
measurement, baseline rules, tracking, responses, signatures) is made by :mod:`recist_tool.reading`
and the store, and every confirmation is written to the database at once.

The panel is made of thin views, one per file, as napari-animation splits its widget:

- :mod:`napari_recist._subject_panel`: the Subject tab (database, reader, trial, subject,
  another series for a visit);
- :mod:`napari_recist._compare_view`: which visits are shown side by side and what they are
  lined up by;
- :mod:`napari_recist._lesion_panel`: the lesion under review's panel (click or line, category,
  organ, flags) and what is stored from it (classify, confirm, accept, mark, discard; a stored
  lesion renamed, reclassified or deleted);
- :mod:`napari_recist._proposals`: the follow-up proposals;
- :mod:`napari_recist._timepoint_table`: lesions × visits, responses, stored-lesion corrections;
- :mod:`napari_recist._sign_export`: the overall response signed, the reads exported;
- :mod:`napari_recist._pacs_browser`: a series searched on a PACS and opened as a visit.

Beside them, without widgets of their own: :mod:`napari_recist._visit_layers` (each visit's
napari layers: CT, masks, stored measurements, review; one grid tile per visit, shifted for the
comparison, and which visit is under the mouse), :mod:`napari_recist._review` (the lesion under
review: its mask, axes and edits, each lesion's mask label), :mod:`napari_recist._canvas_input`
(clicks, lines, window/level drag and keys on the canvas), :mod:`napari_recist._tasks` (the
worker threads and the GUI steps queued one per event-loop turn),
:mod:`napari_recist._axis_geometry` (where axes, their labels and their faded copies go) and
:mod:`napari_recist._napari_warm_up` (what napari and vispy make the first time, made ahead).

This file composes them: the tabs, the visit under review, opening a subject and its series,
the comparison's alignment and registration, the proposals' tracking, and the wiring of the
views to the session. Each of those files imports only what lies below it (never this one):
they reach the panel through the ``panel`` they are given.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from napari_recist._canvas_input import PRESET_KEYS, CanvasInput
from napari_recist._compare_view import ALL_VISITS, CompareView, pair
from napari_recist._layers import summary_text, volume_summary
from napari_recist._lesion_panel import LesionPanel
from napari_recist._napari_warm_up import preload_layer_modules
from napari_recist._pacs_browser import PacsBrowser
from napari_recist._proposals import ProposalList
from napari_recist._review import LesionReview
from napari_recist._sign_export import SignExportPanel
from napari_recist._subject_panel import SubjectPanel
from napari_recist._tasks import Tasks, freeze_long_lived, spare_pool_threads, thaw
from napari_recist._timepoint_table import TimepointTable
from napari_recist._visit_layers import VisitLayers
from recist_tool.reading import Finding, Proposal, ReadingSession
from recist_tool.windows import WINDOWS, window_limits

#: The panel's tabs.
TABS = ("Subject", "Read", "Timepoints, sign-off, export")


class ReadingWidget(QWidget):
    """The RECIST reading dock widget.

    Parameters
    ----------
    napari_viewer : napari.Viewer

    Attributes
    ----------
    session : ReadingSession or None
        The reader's session, once logged in.
    visit_layers : VisitLayers
        The open subject's napari layers (:attr:`layers`: visit → its layers).
    tasks : Tasks
        Worker threads and queued GUI steps.
    canvas : CanvasInput
        Mouse and keys on the canvas.
    review : LesionReview
        The lesion under review.
    subject_panel, lesion, proposal_list, timepoints, sign_export, compare_view : QWidget
        The sub-widgets. Their controls are also reachable as the panel's attributes
        (``db_edit``, ``add_btn``, ``sign_btn`` …).
    """

    def __init__(self, napari_viewer: Any) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.session: ReadingSession | None = None
        self.visit_layers = VisitLayers(napari_viewer)
        self.layers = self.visit_layers.layers  # visit → its layers (image, labels, ...)
        self.last_message = ""
        self.base_view: tuple[float, float] | None = None  # zoom and extent of the whole view
        self._closed = False
        self.tasks = Tasks(self, self._on_busy, self.say, self.alive)
        self.canvas = CanvasInput(self)
        self.review = LesionReview(self)
        spare_pool_threads()
        freeze_long_lived()
        self.destroyed.connect(thaw)
        self._build()
        self.canvas.connect(self.viewer)
        self.viewer.layers.selection.events.active.connect(self._on_active_layer)
        for ev in (self.viewer.layers.events.inserted, self.viewer.layers.events.moved):
            ev.connect(self._layers_changed)

    # --- UI ------------------------------------------------------------------------------------

    def _build(self) -> None:
        # tabs, so that every control is reachable without scrolling at 1920 x 1080: the
        # subject (login, trial, subject), reading (visit, lesion under review, proposals) and
        # the timepoint table with sign-off and export
        sp = self.subject_panel = SubjectPanel(self)
        (self.db_edit, self.reader_edit, self.password_edit, self.login_btn, self.trial_combo,
         self.subject_combo, self.open_btn, self.series_btn, self.series_combo,
         self.series_load_btn, self.pacs_btn) = (
            sp.db_edit, sp.reader_edit, sp.password_edit, sp.login_btn, sp.trial_combo,
            sp.subject_combo, sp.open_btn, sp.series_btn, sp.series_combo, sp.series_load_btn,
            sp.pacs_btn)

        read_page, table_page = QWidget(), QWidget()
        lay = QVBoxLayout(read_page)
        table_lay = QVBoxLayout(table_page)
        g = QGroupBox("Timepoint and series")
        f = QFormLayout(g)
        self.visit_combo = QComboBox()
        self.visit_combo.currentTextChanged.connect(self.on_visit_changed)
        f.addRow("Visit under review", self.visit_combo)
        self.compare_view = CompareView(self)
        self.compare_combo = self.compare_view.combo
        f.addRow(self.compare_view)
        self.series_label = QLabel("")
        self.series_label.setWordWrap(True)
        f.addRow(self.series_label)
        # the presets' names only, their keys in tooltips (and the keys' list below): four
        # "lung (Alt-1)" buttons in a row made the panel wider than its dock
        row = QHBoxLayout()
        for name, key in PRESET_KEYS.items():
            b = QPushButton(name)
            b.setToolTip(f"{name} window ({key})")
            b.clicked.connect(lambda _c=False, n=name: self.apply_window(n))
            row.addWidget(b)
        f.addRow("Window", row)
        lay.addWidget(g)

        le = self.lesion = LesionPanel(self)
        (self.click_box, self.line_box, self.finding_label, self.category_combo,
         self.organ_combo, self.nodal_box, self.equivocal_box, self.lesion_edit,
         self.outline_combo, self.rules_label, self.add_btn, self.confirm_btn,
         self.discard_btn) = (
            le.click_box, le.line_box, le.finding_label, le.category_combo, le.organ_combo,
            le.nodal_box, le.equivocal_box, le.lesion_edit, le.outline_combo, le.rules_label,
            le.add_btn, le.confirm_btn, le.discard_btn)
        lay.addWidget(le)

        g = QGroupBox("Follow-up: lesions proposed from baseline")
        v = QVBoxLayout(g)
        self.proposal_list = pl = ProposalList(self)
        self.propose_btn, self.proposal_table = pl.propose_btn, pl.table
        self.accept_btn, self.state_btns = pl.accept_btn, pl.state_btns
        self.accept_btn.clicked.connect(le.accept_selected)
        for st, b in self.state_btns.items():
            b.clicked.connect(lambda _c=False, s=st: le.mark_selected(s))
        v.addWidget(pl)
        lay.addWidget(g)

        g = QGroupBox("Timepoints and response")
        v = QVBoxLayout(g)
        self.timepoints = tp = TimepointTable()
        self.table, self.response_label = tp.table, tp.response_label
        self.change_id_edit, self.change_category_combo = tp.change_id_edit, tp.change_category_combo
        self.change_reason_edit, self.change_btn, self.delete_btn = (
            tp.change_reason_edit, tp.change_btn, tp.delete_btn)
        self.table.itemSelectionChanged.connect(self._on_table_selected)
        self.change_btn.clicked.connect(le.change_lesion)
        self.delete_btn.clicked.connect(le.delete_lesion)
        v.addWidget(tp)
        se = self.sign_export = SignExportPanel(self)
        (self.override_combo, self.reason_edit, self.sign_btn, self.export_combo,
         self.export_btn, self.export_unsigned, self.export_label) = (
            se.override_combo, se.reason_edit, se.sign_btn, se.export_combo, se.export_btn,
            se.export_unsigned, se.export_label)
        v.addWidget(se)
        table_lay.addWidget(g)
        for page_lay in (lay, table_lay):
            page_lay.addStretch(1)

        inner = QWidget()
        lay = QVBoxLayout(inner)
        self.tabs = QTabWidget()
        for page, name in zip((sp, read_page, table_page), TABS, strict=True):
            self.tabs.addTab(page, name)
        lay.addWidget(self.tabs)
        self.status = QLabel("")  # under the tabs: always in sight
        self.status.setWordWrap(True)
        self.status.setMinimumHeight(2 * self.status.fontMetrics().lineSpacing() + 4)
        self.status.setStyleSheet("font-weight: bold")
        lay.addWidget(self.status)
        lay.addStretch(1)

        self.panel = inner
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(inner)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)
        self.setMinimumWidth(460)
        self.enable_controls()

    def show_tab(self, name: str) -> None:
        """Bring one of the :data:`TABS` to the front."""
        self.tabs.setCurrentIndex(TABS.index(name))

    def enable_controls(self) -> None:
        """The controls usable with a subject open and nothing running."""
        on = self.session is not None and self.session.subject is not None
        busy = self.busy
        for w in (self.propose_btn, self.accept_btn, self.series_btn, self.series_load_btn,
                  self.change_btn, self.delete_btn, *self.state_btns.values()):
            w.setEnabled(on and not busy)
        self.lesion.enable(on, busy)
        self.sign_export.enable(on, busy)

    def _on_busy(self, busy: bool) -> None:
        """The panel became busy or idle (:class:`Tasks`): its buttons follow."""
        self.enable_controls()
        if not busy and self.visit and self.session is not None:
            self.propose_btn.setEnabled(not self.session.is_baseline(self.visit))

    @property
    def busy(self) -> bool:
        """A task the panel waits for runs (:attr:`Tasks.busy`)."""
        return self.tasks.busy

    @property
    def warm_seconds(self) -> float | None:
        """How long warming the model took (once done)."""
        return self.tasks.warm_seconds

    @property
    def _warming(self) -> Any:
        """The model's warm-up worker while it runs."""
        return self.tasks.warming

    @property
    def finding(self) -> Finding | None:
        """The lesion under review (:attr:`LesionReview.finding`)."""
        return self.review.finding

    @property
    def finding_lesion(self) -> str | None:
        """The stored or proposed lesion it measures, if any."""
        return self.review.lesion_id

    @property
    def _label_of(self) -> dict[tuple[str, str], int]:
        return self.review.label_of

    @property
    def camera(self) -> Any:
        """The viewer's camera: ``viewer.scene.camera`` (napari ≥ 0.9), else ``viewer.camera``."""
        scene = getattr(self.viewer, "scene", None)
        return scene.camera if scene is not None else self.viewer.camera

    _camera = camera

    def say(self, text: str, error: bool = False) -> None:
        """Show a message in the widget (and napari's status bar)."""
        self.last_message = text
        self.status.setText(text)
        self.status.setStyleSheet("font-weight: bold; color: %s" % ("#d04040" if error else "#40a040"))
        try:
            self.viewer.status = text
        except Exception:  # noqa: BLE001
            pass

    def guard(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a session call; show a RecistToolError as a message instead of raising."""
        from recist_tool.errors import RecistToolError

        try:
            return fn(*args, **kwargs)
        except RecistToolError as exc:
            self.say(str(exc), error=True)
            return None

    def try_call(self, fn: Any, *args: Any, **kwargs: Any) -> bool:
        """Like :meth:`guard` for calls that return nothing: True when no error was raised."""
        from recist_tool.errors import RecistToolError

        try:
            fn(*args, **kwargs)
        except RecistToolError as exc:
            self.say(str(exc), error=True)
            return False
        return True

    def alive(self) -> bool:
        """Whether the panel is still shown: not closed, its Qt object not deleted with its
        viewer (a worker may end after that)."""
        if self._closed:
            return False
        try:
            self.objectName()
        except RuntimeError:
            return False
        return True

    # --- the sub-widgets' actions, as the panel's ------------------------------------------------

    @property
    def aligned_on(self) -> str | None:
        """The lesion the visits are lined up on (:attr:`CompareView.aligned_on`)."""
        return self.compare_view.aligned_on

    @property
    def registering(self) -> dict[str, Any]:
        """Follow-up → the worker registering it to the baseline (:class:`CompareView`)."""
        return self.compare_view.registering

    @property
    def pacs_browser(self) -> PacsBrowser | None:
        """The PACS series browser, once shown (:class:`SubjectPanel`)."""
        return self.subject_panel.pacs_browser

    def login(self) -> bool:
        """Log in here, in the GUI thread (:meth:`SubjectPanel.login`)."""
        return self.subject_panel.login()

    def log_in_in_background(self) -> bool:
        """Log in in a worker thread (:meth:`SubjectPanel.log_in_in_background`)."""
        return self.subject_panel.log_in_in_background()

    def open_subject(self, subject: str) -> bool:
        """Open a subject, every visit side by side (:meth:`SubjectPanel.open_subject`)."""
        return self.subject_panel.open_subject(subject)

    def choose_series(self, path: str) -> list[dict[str, Any]]:
        """List the CT series under ``path`` (:meth:`SubjectPanel.choose_series`)."""
        return self.subject_panel.choose_series(path)

    def open_series(self, visit: str, path: str, series_uid: str | None = None,
                    subject: str | None = None) -> bool:
        """Read a visit from another series (:meth:`SubjectPanel.open_series`)."""
        return self.subject_panel.open_series(visit, path, series_uid, subject)

    def show_pacs_browser(self) -> PacsBrowser:
        """Show the PACS series browser (:meth:`SubjectPanel.show_pacs_browser`)."""
        return self.subject_panel.show_pacs_browser()

    def align_on(self, lesion_id: str | None, move: bool = True) -> None:
        """Line the visits up on a lesion (:meth:`CompareView.align_on`)."""
        self.compare_view.align_on(lesion_id, move)

    def register_for_comparison(self, visit: str) -> None:
        """Register a follow-up to the baseline (:meth:`CompareView.register`)."""
        self.compare_view.register(visit)

    def propose(self) -> None:
        """Track the baseline lesions into the visit under review (:meth:`ProposalList.propose`)."""
        self.proposal_list.propose()

    def select_proposal(self, lesion_id: str) -> Proposal:
        """Select a proposal by lesion id (as a click in the list does)."""
        p = self.proposal_list.select(lesion_id)
        self.proposal_list.on_selected()
        return p

    def show_proposals(self, proposals: list[Proposal], visit: str | None) -> None:
        """Show ``visit``'s proposals (:meth:`ProposalList.show_for`)."""
        self.proposal_list.show_for(proposals, visit)

    def refresh_proposals(self) -> None:
        """Show the proposals again (:meth:`ProposalList.refresh`)."""
        self.proposal_list.refresh()

    # --- database, subject, visits -----------------------------------------------------------

    def warm_up(self, session: ReadingSession) -> None:
        """Load the segmentation model and run it once in a worker thread (:meth:`Tasks.warm_up`),
        with the modules napari imports for the first layers."""

        def warm() -> float:
            preload_layer_modules()
            return session.warm_up()

        self.tasks.warm_up(warm)

    def _layers_changed(self, _event: Any = None) -> None:
        """A layer was added or moved: arrange the tiles once napari has finished its change."""
        QTimer.singleShot(0, self.arrange_layers)

    def visit_list(self) -> list[str]:
        """The open subject's visits, in order."""
        return [self.visit_combo.itemText(i) for i in range(self.visit_combo.count())]

    def arrange_layers(self, _event: Any = None) -> None:
        """Keep each visit's layers in one grid tile, in visit order (:meth:`VisitLayers.arrange`)."""
        self.visit_layers.arrange(self.visit_list())

    @property
    def visit(self) -> str:
        """The visit under review."""
        return self.visit_combo.currentText()

    def on_visit_changed(self, visit: str) -> None:
        if self.session is None or not visit or visit not in self.layers:
            self.series_label.setText("")
            return
        vol = self.session.volume(visit)
        s = volume_summary(vol)
        text = summary_text(s)
        if s["warning_details"]:
            text += "\n" + "\n".join(f"⚠ {w}" for w in s["warning_details"])
        base = "baseline" if self.session.is_baseline(visit) else "follow-up"
        self.series_label.setText(f"{visit} ({base}): {text}")
        self.equivocal_box.setEnabled(not self.session.is_baseline(visit))
        self.propose_btn.setEnabled(not self.session.is_baseline(visit) and not self.busy)
        two = pair(self.compare_combo.currentText())
        if two is not None and visit not in two:
            # the visit under review is always shown: compared with the baseline
            self.compare_combo.setCurrentText(ALL_VISITS if visit == two[0]
                                              else f"{two[0]} and {visit}")
        if self.viewer.layers.selection.active is not self.layers[visit]["image"]:
            self.viewer.layers.selection.active = self.layers[visit]["image"]

    def _on_active_layer(self, event: Any) -> None:
        v = self.visit_layers.visit_of(event.value)
        if v is not None and self.visit != v:
            self.visit_combo.setCurrentText(v)

    # --- keys, view -------------------------------------------------------------------------------

    def press_key(self, key: str) -> None:
        """What a reading key (:data:`napari_recist._canvas_input.READING_KEYS`) does."""
        self.canvas.press_key(key)

    def step_lesion(self, step: int) -> str | None:
        """Select the next (``step`` 1) or previous (-1) lesion's row of the timepoint table
        (every visit goes to it); returns its id."""
        tab = self.reading_table
        if tab is None or not tab.rows:
            self.say("no lesion stored yet", error=True)
            return None
        rows = {i.row() for i in self.table.selectedItems()}
        cur = rows.pop() if len(rows) == 1 and next(iter(rows)) < len(tab.rows) else -step
        row = (cur + step) % len(tab.rows)
        self.table.selectRow(row)
        return tab.rows[row].lesion_id

    def apply_window(self, name: str) -> None:
        """Window preset (lung, soft tissue, bone, liver) on every CT layer of the subject."""
        level, width = WINDOWS[name]
        self.visit_layers.set_window(window_limits(level, width))
        self.say(f"window: {name} (level {level:g}, width {width:g} HU)")

    def focus(self, world: Any, field_mm: float = 200.0, min_zoom: float = 0.0) -> None:
        """Centre every visit's view on a world position, ``field_mm`` across, or closer where
        ``min_zoom`` (screen pixels per mm) asks for it."""
        w = np.asarray(world, float)
        self.viewer.dims.set_point(0, float(w[0]))
        self.camera.center = (float(w[1]), float(w[2]))
        base = self.base_view
        zoom = float(self.camera.zoom)
        if base is not None:  # zoom relative to the whole-volume view of reset_view()
            zoom0, extent_mm = base
            zoom = zoom0 * max(1.0, extent_mm / field_mm)
        self.camera.zoom = max(zoom, min_zoom)

    # --- clicks and the lesion under review (LesionReview, LesionPanel) --------------------------

    def visit_at(self, world: Any, viewbox: tuple[int, int] | None = None) -> str | None:
        """The visit of the CT layer under the mouse (:meth:`VisitLayers.visit_at`)."""
        return self.visit_layers.visit_at(world, viewbox)

    def world_to_index(self, visit: str, world: Any) -> np.ndarray:
        """World position (napari, ``(z, y, x)`` patient mm) → voxel index ``(z, y, x)`` of a
        visit's series (:meth:`VisitLayers.world_to_index`)."""
        assert self.session is not None
        return self.visit_layers.world_to_index(visit, world, self.session.volume(visit))

    def click_at_world(self, world: Any, visit: str | None = None) -> None:
        """Segment at a click (world position) on ``visit`` (default: the visit under review), in
        a worker thread with napari's progress indicator (:meth:`LesionReview.segment_at`)."""
        if self.session is None or self.session.subject is None:
            return
        visit = visit or self.visit
        if visit in self.layers:
            self.review.segment_at(visit, self.world_to_index(visit, world))

    def segment_line(self, visit: str, ends: Any) -> None:
        """Segment the lesion from a line prompt on ``visit`` (its two ends, voxel ``(z, y, x)``
        on one slice; :meth:`LesionReview.segment_line`)."""
        if self.session is not None:
            self.review.segment_line(visit, ends)

    def set_finding(self, finding: Finding | None, lesion_id: str | None = None) -> None:
        """Make ``finding`` the lesion under review (:meth:`LesionReview.set_finding`)."""
        self.review.set_finding(finding, lesion_id)

    def classify(self) -> str | None:
        """Store the lesion under review as a new lesion (:meth:`LesionPanel.classify`)."""
        return self.lesion.classify()

    def confirm(self) -> bool:
        """Store it for the selected lesion (:meth:`LesionPanel.confirm`)."""
        return self.lesion.confirm()

    def discard(self) -> None:
        """Drop the lesion under review (:meth:`LesionPanel.discard`)."""
        self.lesion.discard()

    def accept_selected(self) -> bool:
        """Store the selected proposal's lesion (:meth:`LesionPanel.accept_selected`)."""
        return self.lesion.accept_selected()

    def mark_selected(self, state: str) -> bool:
        """Record the selected lesion with a state (:meth:`LesionPanel.mark_selected`)."""
        return self.lesion.mark_selected(state)

    def change_lesion(self) -> bool:
        """Rename / reclassify the table's lesion (:meth:`LesionPanel.change_lesion`)."""
        return self.lesion.change_lesion()

    def delete_lesion(self) -> bool:
        """Delete the table's lesion (:meth:`LesionPanel.delete_lesion`)."""
        return self.lesion.delete_lesion()

    # --- follow-up --------------------------------------------------------------------------------

    @property
    def proposals(self) -> list[Proposal]:
        """The proposals shown (for :attr:`proposal_visit`)."""
        return self.proposal_list.proposals

    @property
    def proposal_visit(self) -> str | None:
        """The visit the proposals shown are for."""
        return self.proposal_list.visit

    # --- table, response, sign-off, export -----------------------------------------------------

    def refresh_table(self) -> None:
        """Recompute responses and fill the lesions × timepoints table."""
        s = self.session
        if s is None or s.subject is None:
            return
        tab = self.guard(s.timepoint_table)
        if tab is not None:
            self.timepoints.show_table(tab)

    @property
    def reading_table(self) -> Any:
        """The :class:`ReadingTable` shown (None before a subject is open)."""
        return self.timepoints.reading_table

    def response_of(self, visit: str) -> str | None:
        """The overall response shown for a visit (confirmed, else computed)."""
        return self.timepoints.response_of(visit)

    def _selected_table_lesion(self) -> str | None:
        return self.timepoints.selected_lesion()

    def _on_table_selected(self) -> None:
        """Line every visit up on the selected lesion and centre the tiles on it
        (:meth:`align_on`)."""
        lid = self._selected_table_lesion()
        if lid is not None and self.session is not None:
            self.align_on(lid)

    def sign(self) -> bool:
        """Sign the visit under review (:meth:`SignExportPanel.sign`)."""
        return self.sign_export.sign()

    def export(self) -> bool:
        """Export the subject's reads (:meth:`SignExportPanel.export`)."""
        return self.sign_export.export()

    def closeEvent(self, event: Any) -> None:  # noqa: N802 - Qt name
        """Release the database (everything confirmed is stored already); a registration still
        running is left to end unheard."""
        self._closed = True
        if self.session is not None:
            self.session.store.close()
        for ev in (self.viewer.layers.events.inserted, self.viewer.layers.events.moved):
            ev.disconnect(self._layers_changed)
        self.canvas.disconnect(self.viewer)
        super().closeEvent(event)
