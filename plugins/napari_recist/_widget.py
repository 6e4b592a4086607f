"""Dock widget "RECIST reading": the reader's workstation over :class:`recist_tool.reading.ReadingSession`.

The widget only shows things and forwards the reader's actions; every decision (segmentation,
measurement, baseline rules, tracking, responses, signatures) is made by :mod:`recist_tool.reading`
and the store, and every confirmation is written to the database at once.

The panel is made of thin views, one per file: :mod:`napari_recist._visit_layers` (each visit's
napari layers: CT, masks, stored measurements, review; one grid tile per visit, shifted for the
comparison, and which visit is under the mouse), :mod:`napari_recist._compare_view` (which visits
are shown side by side and what they are lined up by), :mod:`napari_recist._proposals` (the
follow-up proposals), :mod:`napari_recist._timepoint_table` (lesions × visits, responses,
stored-lesion corrections) and :mod:`napari_recist._pacs_browser` (a series searched on a PACS
and opened as a visit); :mod:`napari_recist._canvas_input` turns the mouse and keys on the canvas
into the panel's actions and :mod:`napari_recist._tasks` runs its worker threads and its GUI
steps, one per event-loop turn.
This file holds the panel itself: login, subject, the lesion under review, sign-off and export,
and the wiring of the views to the session.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from napari_recist._canvas_input import KEYS_SHORT, KEYS_TIP, PRESET_KEYS, CanvasInput
from napari_recist._compare_view import ALL_VISITS, READ_ZOOM, CompareView, pair
from napari_recist._layers import (
    lps_to_world,
    summary_text,
    volume_summary,
)
from napari_recist._pacs_browser import PacsBrowser
from napari_recist._proposals import ProposalList
from napari_recist._proposals import fmt_mm as _fmt
from napari_recist._tasks import Tasks, freeze_long_lived, spare_pool_threads, thaw
from napari_recist._timepoint_table import UNCHANGED, TimepointTable
from napari_recist._visit_layers import VisitLayers, make_layers, preload_layer_modules
from recist_tool.reading import (
    CATEGORIES,
    ORGANS,
    STATES,
    Finding,
    Proposal,
    ReadingSession,
    export_formats,
)
from recist_tool.recist import Category, LesionState
from recist_tool.segment.edge import describe_outline
from recist_tool.segment.unet import THIN_SLICE_MAX_MM
from recist_tool.windows import WINDOWS, window_limits

#: Lines of the lesion under review's description always shown (the values, the outline).
FINDING_LINES = 3
#: Outline choices of the reading panel and the segmenter each one asks the session for
#: (None: the default segmenter, ``unet`` with its outline chosen by slice thickness).
OUTLINES: dict[str, str | None] = {"by slice thickness (auto)": None,
                                   "learnt (LIDC consensus)": "unet:edge=learnt",
                                   "half-contrast edge": "unet:edge=half-contrast"}
#: Where a stored measurement came from (:attr:`Finding.source`), in the reader's words.
SOURCES = {"tracking": "the tracked proposal",
           "tracking, corrected": "the tracked proposal as you corrected it",
           "click": "your click", "line prompt": "the line you drew",
           "edited": "your edited mask", "line": "your caliper line"}
#: The panel's tabs.
TABS = ("Subject", "Read", "Timepoints, sign-off, export")
#: The override choice that confirms the computed overall response.
COMPUTED = "(computed)"



class ReadingWidget(QWidget):
    """The RECIST reading dock widget.

    Parameters
    ----------
    napari_viewer : napari.Viewer
    """

    def __init__(self, napari_viewer: Any) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.session: ReadingSession | None = None
        self.visit_layers = VisitLayers(napari_viewer)
        self.layers = self.visit_layers.layers  # visit → its layers (image, labels, ...)
        self.finding: Finding | None = None
        self.finding_lesion: str | None = None  # lesion id when correcting a stored / proposed one
        self._nodal_of: str | None = None  # the lesion whose flag the nodal box shows (None: the
        # reader's own, for the next click)
        self.last_message = ""
        self._label_of: dict[tuple[str, str], int] = {}
        self._pending_label = 0
        self.aligned_on: str | None = None  # the lesion the visits are lined up on
        self.pacs_browser: PacsBrowser | None = None  # made when first shown
        # follow-up → the worker registering it to the baseline for the comparison view
        self.registering: dict[str, Any] = {}
        self._closed = False
        self.tasks = Tasks(self, self._on_busy, self.say, self._alive)
        self.canvas = CanvasInput(self)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(300)
        self._timer.timeout.connect(self._remeasure_now)
        spare_pool_threads()
        freeze_long_lived()
        self.destroyed.connect(thaw)
        self._build()
        self.canvas.connect(self.viewer)
        self.viewer.layers.selection.events.active.connect(self._on_active_layer)
        for ev in (self.viewer.layers.events.inserted, self.viewer.layers.events.moved):
            ev.connect(self._layers_changed)
        self._default_db()

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
    def camera(self) -> Any:
        """The viewer's camera: ``viewer.scene.camera`` (napari ≥ 0.9), else ``viewer.camera``."""
        scene = getattr(self.viewer, "scene", None)
        return scene.camera if scene is not None else self.viewer.camera

    _camera = camera

    def _on_busy(self, busy: bool) -> None:
        """The panel became busy or idle (:class:`Tasks`): its buttons follow."""
        self._enable()
        if not busy and self.visit and self.session is not None:
            self.propose_btn.setEnabled(not self.session.is_baseline(self.visit))

    def press_key(self, key: str) -> None:
        """What a reading key (:data:`napari_recist._canvas_input.READING_KEYS`) does."""
        self.canvas.press_key(key)

    def _warm_up(self, session: ReadingSession) -> None:
        """Load the segmentation model and run it once in a worker thread (:meth:`Tasks.warm_up`),
        with the modules napari imports for the first layers."""

        def warm() -> float:
            preload_layer_modules()
            return session.warm_up()

        self.tasks.warm_up(warm)

    # --- UI ------------------------------------------------------------------------------------

    def _build(self) -> None:
        # tabs, so that every control is reachable without scrolling at 1920 x 1080: the
        # subject (login, trial, subject), reading (visit, lesion under review, proposals) and
        # the timepoint table with sign-off and export
        subject_page, read_page, table_page = QWidget(), QWidget(), QWidget()
        subject_lay = QVBoxLayout(subject_page)
        lay = QVBoxLayout(read_page)
        table_lay = QVBoxLayout(table_page)

        g = QGroupBox("Database and reader")
        f = QFormLayout(g)
        self.db_edit = QLineEdit()
        self.reader_edit = QLineEdit()
        self.password_edit = QLineEdit()
        self.password_edit.setEchoMode(QLineEdit.Password)
        self.login_btn = QPushButton("Log in")
        self.login_btn.clicked.connect(self.log_in_in_background)
        f.addRow("Database", self.db_edit)
        f.addRow("Reader", self.reader_edit)
        f.addRow("Password", self.password_edit)
        f.addRow(self.login_btn)
        self.trial_combo = QComboBox()
        self.trial_combo.currentTextChanged.connect(self._fill_subjects)
        self.subject_combo = QComboBox()
        self.open_btn = QPushButton("Open subject (all visits side by side)")
        self.open_btn.clicked.connect(lambda: self.open_subject(self.subject_combo.currentText()))
        f.addRow("Trial", self.trial_combo)
        f.addRow("Subject", self.subject_combo)
        f.addRow(self.open_btn)
        subject_lay.addWidget(g)

        g = QGroupBox("Timepoint and series")
        f = QFormLayout(g)
        self.visit_combo = QComboBox()
        self.visit_combo.currentTextChanged.connect(self._on_visit_changed)
        f.addRow("Visit under review", self.visit_combo)
        self.compare_view = CompareView()
        self.compare_combo = self.compare_view.combo
        self.compare_combo.currentTextChanged.connect(self._on_compare)
        f.addRow(self.compare_view)
        # another series for a visit: rarely needed, so on the subject's tab
        series = QGroupBox("Another series for the visit under review")
        sf = QFormLayout(series)
        self.series_btn = QPushButton("Open another series for this visit…")
        self.series_btn.clicked.connect(self._choose_series_dialog)
        self.series_combo = QComboBox()
        self.series_load_btn = QPushButton("Use this series")
        self.series_load_btn.clicked.connect(self._use_chosen_series)
        sf.addRow(self.series_btn)
        sf.addRow("Series", self.series_combo)
        sf.addRow(self.series_load_btn)
        self.pacs_btn = QPushButton("Open a series from PACS…")
        self.pacs_btn.setToolTip("Search a PACS of the trial settings and open a series as a "
                                 "visit (docs/export_pacs.md)")
        self.pacs_btn.clicked.connect(self.show_pacs_browser)
        sf.addRow(self.pacs_btn)
        subject_lay.addWidget(series)
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

        g = QGroupBox("Lesion under review")
        f = QFormLayout(g)
        self.click_box = QCheckBox("Click on a lesion to segment it")
        self.click_box.setChecked(True)
        f.addRow(self.click_box)
        self.line_box = QCheckBox("Draw a line across a lesion to segment it (its long axis)")
        self.line_box.setToolTip("A line prompt: press at one edge of the lesion, drag to the "
                                 "other, release. The segmenter uses the line's place, size and "
                                 "direction.")
        # one way of pointing at a time
        self.line_box.toggled.connect(lambda on: on and self.click_box.setChecked(False))
        self.click_box.toggled.connect(lambda on: on and self.line_box.setChecked(False))
        f.addRow(self.line_box)
        self.finding_label = QLabel("no lesion under review")
        self.finding_label.setWordWrap(True)
        # its first lines (values, outline) always in sight, however tight the tab
        self.finding_label.setMinimumHeight(
            FINDING_LINES * self.finding_label.fontMetrics().lineSpacing() + 4)
        f.addRow(self.finding_label)
        self.category_combo = QComboBox()
        self.category_combo.addItems(list(CATEGORIES))
        self.organ_combo = QComboBox()
        self.organ_combo.setEditable(True)
        self.organ_combo.addItems(list(ORGANS))
        self.nodal_box = QCheckBox("lymph node (short axis)")
        self.nodal_box.setToolTip(
            "The nodal flag of the lesion under review (a selected proposal's, a clicked "
            "lesion's). Once it is stored or discarded the box is cleared: a click on no known "
            "lesion is segmented as a lymph node only when you tick it first.")
        self.equivocal_box = QCheckBox("equivocal (new lesion)")
        self.lesion_edit = QLineEdit()
        self.lesion_edit.setPlaceholderText("automatic (T01, NT01, NL01 …)")
        for w in (self.category_combo, self.organ_combo):
            w.currentTextChanged.connect(lambda _t: self._check_rules())
        self.nodal_box.toggled.connect(self._on_nodal)
        self.outline_combo = QComboBox()
        self.outline_combo.addItems(list(OUTLINES))
        self.outline_combo.setToolTip(
            "Where unet draws a lung lesion's outline: the LIDC consensus it learnt (hazy rims "
            "and ground glass kept), the half-contrast edge (half-way between the lesion and "
            f"the lung), or (auto) the first on slices up to {THIN_SLICE_MAX_MM:g} mm thick and "
            "the second on thicker ones; docs/segmentation.md. Lesions outside the lung are "
            "classic's either way.")
        self.outline_combo.currentTextChanged.connect(self._on_outline)
        f.addRow("Outline (unet)", self.outline_combo)
        f.addRow("Category", self.category_combo)
        f.addRow("Organ / site", self.organ_combo)
        flags = QHBoxLayout()  # one row: the Read tab fits 1920 x 1080
        flags.addWidget(self.nodal_box)
        flags.addWidget(self.equivocal_box)
        f.addRow(flags)
        f.addRow("Lesion id", self.lesion_edit)
        self.rules_label = QLabel("")
        self.rules_label.setWordWrap(True)
        self.rules_label.setStyleSheet("color: #e06c00")
        f.addRow(self.rules_label)
        row = QHBoxLayout()
        self.add_btn = QPushButton("Classify and store")
        self.add_btn.clicked.connect(self.classify)
        self.confirm_btn = QPushButton("Confirm measurement")
        self.confirm_btn.clicked.connect(self.confirm)
        self.discard_btn = QPushButton("Discard")
        self.discard_btn.clicked.connect(self.discard)
        for b in (self.add_btn, self.confirm_btn, self.discard_btn):
            row.addWidget(b)
        f.addRow(row)
        lay.addWidget(g)
        keys = QLabel(KEYS_SHORT)
        keys.setToolTip(KEYS_TIP)
        keys.setWordWrap(True)
        keys.setStyleSheet("color: #a0a0a0")
        lay.addWidget(keys)

        g = QGroupBox("Follow-up: lesions proposed from baseline")
        v = QVBoxLayout(g)
        self.proposal_list = ProposalList()
        pl = self.proposal_list
        self.propose_btn, self.proposal_table = pl.propose_btn, pl.table
        self.accept_btn, self.state_btns = pl.accept_btn, pl.state_btns
        self.propose_btn.clicked.connect(self.propose)
        self.proposal_table.itemSelectionChanged.connect(self._on_proposal_selected)
        self.proposal_table.cellClicked.connect(self._on_proposal_clicked)
        self.accept_btn.clicked.connect(self.accept_selected)
        for st, b in self.state_btns.items():
            b.clicked.connect(lambda _c=False, s=st: self.mark_selected(s))
        v.addWidget(pl)
        lay.addWidget(g)

        g = QGroupBox("Timepoints and response")
        v = QVBoxLayout(g)
        self.timepoints = TimepointTable()
        tp = self.timepoints
        self.table, self.response_label = tp.table, tp.response_label
        self.change_id_edit, self.change_category_combo = tp.change_id_edit, tp.change_category_combo
        self.change_reason_edit, self.change_btn, self.delete_btn = (
            tp.change_reason_edit, tp.change_btn, tp.delete_btn)
        self.table.itemSelectionChanged.connect(self._on_table_selected)
        self.change_btn.clicked.connect(self.change_lesion)
        self.delete_btn.clicked.connect(self.delete_lesion)
        v.addWidget(tp)
        f = QFormLayout()
        self.override_combo = QComboBox()
        self.override_combo.addItem(COMPUTED)  # the criteria's values come with the subject
        self.reason_edit = QLineEdit()
        self.reason_edit.setPlaceholderText("reason (needed to override)")
        self.sign_btn = QPushButton("Sign this visit…")
        self.sign_btn.clicked.connect(self.sign)
        f.addRow("Overall response", self.override_combo)
        f.addRow("Reason", self.reason_edit)
        f.addRow(self.sign_btn)
        v.addLayout(f)
        row = QHBoxLayout()
        self.export_combo = QComboBox()
        self.export_btn = QPushButton("Export…")
        self.export_btn.clicked.connect(self.export)
        self.export_unsigned = QCheckBox("include unsigned")
        row.addWidget(self.export_combo)
        row.addWidget(self.export_unsigned)
        row.addWidget(self.export_btn)
        v.addLayout(row)
        self.export_label = QLabel("")
        self.export_label.setWordWrap(True)
        v.addWidget(self.export_label)
        table_lay.addWidget(g)
        for page_lay in (subject_lay, lay, table_lay):
            page_lay.addStretch(1)

        inner = QWidget()
        lay = QVBoxLayout(inner)
        self.tabs = QTabWidget()
        for page, name in zip((subject_page, read_page, table_page), TABS, strict=True):
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
        self._fill_exports()
        self._enable()

    def _fill_exports(self) -> None:
        self.export_combo.clear()
        formats = export_formats()
        if formats:
            self.export_combo.addItems(sorted(formats))
            self.export_label.setText("")
        else:
            self.export_label.setText("export not available in this install")
        self.export_btn.setEnabled(bool(formats) and self.session is not None)

    def _enable(self) -> None:
        on = self.session is not None and self.session.subject is not None
        for w in (self.add_btn, self.confirm_btn, self.discard_btn, self.propose_btn,
                  self.accept_btn, self.sign_btn, self.series_btn, self.series_load_btn,
                  self.change_btn, self.delete_btn,
                  *self.state_btns.values()):
            w.setEnabled(on and not self.busy)
        self.nodal_box.setEnabled(not self.busy)  # the flag a running segmentation was given
        self.outline_combo.setEnabled(not self.busy and self._unet_default())
        self.export_btn.setEnabled(on and not self.busy and self.export_combo.count() > 0)

    def _default_db(self) -> None:
        try:
            from napari_recist._sample_data import SAMPLE_READER, sample_dir

            db = sample_dir() / "recist.db"
            if db.is_file():
                self.db_edit.setText(str(db))
                self.reader_edit.setText(SAMPLE_READER)
        except Exception:  # noqa: BLE001 - a default is a convenience only
            pass

    def say(self, text: str, error: bool = False) -> None:
        """Show a message in the widget (and napari's status bar)."""
        self.last_message = text
        self.status.setText(text)
        self.status.setStyleSheet("font-weight: bold; color: %s" % ("#d04040" if error else "#40a040"))
        try:
            self.viewer.status = text
        except Exception:  # noqa: BLE001
            pass

    def _guard(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a session call; show a RecistToolError as a message instead of raising."""
        from recist_tool.errors import RecistToolError

        try:
            return fn(*args, **kwargs)
        except RecistToolError as exc:
            self.say(str(exc), error=True)
            return None

    def _try(self, fn: Any, *args: Any, **kwargs: Any) -> bool:
        """Like :meth:`_guard` for calls that return nothing: True when no error was raised."""
        from recist_tool.errors import RecistToolError

        try:
            fn(*args, **kwargs)
        except RecistToolError as exc:
            self.say(str(exc), error=True)
            return False
        return True

    # --- database, subject, visits -----------------------------------------------------------

    def _session_maker(self) -> Any:
        """What opens the database and authenticates the reader typed in (a call returning the
        :class:`ReadingSession`), or None (and why) when no database is chosen."""
        from recist_tool.store import TrialStore

        db = self.db_edit.text().strip()
        if not db:
            self.say("choose a database (SQLite file or URL)", error=True)
            return None
        reader, password = self.reader_edit.text().strip(), self.password_edit.text()

        def go() -> ReadingSession:
            store = TrialStore(db)
            try:
                return ReadingSession(store, reader, password)
            except BaseException:
                store.close()
                raise

        return go

    def login(self) -> bool:
        """Open the database and authenticate the reader, here (the panel's Log in button does
        it in a worker thread: :meth:`log_in_in_background`)."""
        go = self._session_maker()
        s = None if go is None else self._guard(go)
        if s is None:
            return False
        self._logged_in(s)
        return True

    def log_in_in_background(self) -> bool:
        """Log in as :meth:`login` does, the password check (scrypt, 0.1-0.2 s) in a worker
        thread so that the window answers meanwhile; the panel is busy until it ends. Returns
        whether it started."""
        if self.busy:
            self.say(f"busy ({self.tasks.task}): log in when it is done", error=True)
            return False
        go = self._session_maker()
        if go is None:
            return False

        def returned(s: ReadingSession) -> None:
            self.tasks.done()
            if self._alive():
                self._logged_in(s)
            else:
                s.store.close()

        def errored(exc: BaseException) -> None:
            self.tasks.done()
            self.tasks.report_error(exc)

        self.tasks.run(go, "Logging in", "logging in…", returned, errored,
                       finished=lambda: None)
        return True

    def _logged_in(self, s: ReadingSession) -> None:
        """The reader is logged in: the trials and subjects offered, the model warmed."""
        if self.session is not None:
            self.session.store.close()
        self.session = s
        if self._unet_default():
            s.use_segmenter(OUTLINES[self.outline_combo.currentText()])
        self.trial_combo.blockSignals(True)
        self.trial_combo.clear()
        self.trial_combo.addItems(list(s.trials()))
        self.trial_combo.blockSignals(False)
        self._fill_subjects(self.trial_combo.currentText())
        self.say(f"logged in as {s.reader}")
        self._fill_exports()
        self._warm_up(s)

    def _fill_subjects(self, trial: str) -> None:
        self.subject_combo.clear()
        if self.session is not None:
            self.subject_combo.addItems(self.session.subjects(trial or None))

    def open_subject(self, subject: str) -> bool:
        """Open a subject: every visit with a known series is loaded, and its napari layers made
        (:func:`make_layers`), in a worker thread (napari's progress, one step a visit); here
        its layers are added hidden as each visit arrives, one napari step per event-loop turn
        (:meth:`_queue`), and once all are in, shown side by side (:meth:`VisitLayers.showing`:
        every CT at once, then a layer a turn, so that each first draw is a turn of its own).
        The panel is busy until the last one is shown; its message then starts with the subject
        (``"SYN-001: 3 of 3 visits shown"``). Returns whether the opening started."""
        from recist_tool.errors import RecistToolError

        if self.session is None:
            self.say("log in first", error=True)
            return False
        if self.busy:
            self.say(f"busy ({self.tasks.task}): open the subject when it is done", error=True)
            return False
        visits = self._guard(self.session.open_subject, subject)
        if visits is None:
            return False
        # the last subject's layers removed, the slider made and napari's grid turned on (no
        # tile until a layer is shown), a step each, while the first series loads
        self.tasks.queue(self.visit_layers.clearing(), self._three_d_slider,
                         lambda: self.visit_layers.show_side_by_side(len(visits)))
        self._label_of.clear()
        self.discard()
        self._show_proposals([], None)
        self.aligned_on = None
        self.visit_combo.blockSignals(True)
        self.visit_combo.clear()
        self.visit_combo.addItems([v for v, _ in visits])
        self.visit_combo.blockSignals(False)
        self.compare_view.show_choices([])
        session, dates, problems = self.session, dict(visits), []

        def load() -> Any:  # in the worker: each visit's series and napari layers, as read
            for v, _ in visits:
                try:
                    vol = session.open_visit(v)
                except RecistToolError as exc:
                    yield v, exc, None
                    continue
                yield v, vol, make_layers(v, vol, dates.get(v))

        def added(v: str) -> None:  # a visit's last layer is in (hidden)
            self._arrange_layers()
            self.say(f"opening {subject}: {v} read ({len(self.layers)} of {len(visits)})")

        def arrived(item: tuple[str, Any, Any]) -> None:  # here: its layers, one a turn
            v, vol, made = item
            if isinstance(vol, BaseException):
                problems.append(f"{v}: {vol}")
                return
            self.tasks.queue(self.visit_layers.adding(v, vol, self._on_paint, self._on_review_edit,
                                                      dates.get(v), made), lambda: added(v))

        def opened(_result: Any = None) -> None:  # after the last visit's layers
            # every visit shown (VisitLayers.showing: the CTs together, then a layer a turn);
            # stored measurements drawn now that the slider's step is known, a visit a turn
            self.tasks.queue(self.visit_layers.showing([v for v, _ in visits], reset_view=True),
                             *[lambda v=v: self._draw_stored(v) for v, _ in visits],
                             lambda: (self._opened(subject, visits, problems), self.tasks.done()))

        def failed(exc: BaseException) -> None:
            self.tasks.report_error(exc)
            self.tasks.queue(self.tasks.done)

        def start() -> None:
            self.tasks.run(load, f"Opening {subject}", f"opening {subject}: loading "
                           f"{len(visits)} visits…", opened, failed, yielded=arrived,
                           total=len(visits), finished=lambda: None)  # busy until the steps end

        self.tasks.after_warm_up(start, f"opening {subject}")
        return True

    def _three_d_slider(self) -> None:
        """Give napari's dims a third axis now, in a step of its own, when no layer has: napari
        makes the slider of the first 3D layer added (and the canvas shrinks to show it), which
        would otherwise join the first CT layer's step."""
        if self.viewer.dims.ndim < 3:
            self.viewer.dims.ndim = 3

    def _opened(self, subject: str, visits: list[Any], problems: list[str]) -> None:
        """Every visit of the subject is in and its stored measurements drawn: the whole view,
        choices and table."""
        assert self.session is not None
        self.visit_layers.show_side_by_side()  # once, for every visit
        self.viewer.reset_view()
        if self.layers:
            vol = self.session.volume(next(iter(self.layers)))
            extent = max(vol.shape[1] * vol.spacing[1], vol.shape[2] * vol.spacing[2])
            self._base_view = (float(self.camera.zoom), float(extent))
        self.override_combo.clear()
        self.override_combo.addItems([COMPUTED, *self.session.overall_choices()])
        self.compare_view.show_choices([v for v, _ in visits if v in self.layers])
        self.align_on(None)
        self._enable()
        self.refresh_table()
        self._on_visit_changed(self.visit_combo.currentText())
        self.tabs.setCurrentIndex(TABS.index("Read"))
        self.say(f"{subject}: {len(self.layers)} of {len(visits)} visits shown"
                 + ("; not shown: " + "; ".join(problems) if problems else ""),
                 error=bool(problems))

    def _on_compare(self, choice: str) -> None:
        """Show every visit, or the baseline and one follow-up (bigger tiles); the visit under
        review follows the follow-up chosen."""
        if not choice or not self.layers:
            return
        two = pair(choice)
        if two is None:
            self.visit_layers.show_only(None)
            self.say("every visit side by side")
            return
        base, follow = two
        self.visit_layers.show_only([base, follow])
        if self.visit not in (base, follow):
            self.visit_combo.setCurrentText(follow)
        self.say(f"{base} and {follow} side by side")
        self.register_for_comparison(follow)

    def register_for_comparison(self, visit: str) -> None:
        """Register a follow-up to the baseline in a worker thread (napari's progress; the panel
        stays usable) when nothing has (:meth:`ReadingSession.registration_job`), so that the
        comparison view lines it up by the registration where it has no stored or tracked
        position of the lesion (or no lesion is chosen), instead of by raw patient millimetres:
        once it ends the visits are lined up again (:meth:`align_on`, the view left where it
        is). :attr:`registering` holds the running workers."""
        from napari.qt.threading import thread_worker

        s = self.session
        if s is None or s.subject is None or visit in self.registering \
                or s.is_baseline(visit) or s.has_registration(visit):
            return
        job = self._guard(s.registration_job, visit)
        if job is None:
            return
        subject = s.subject

        def registered(_reg: Any) -> None:
            if not self._alive() or self.session is not s or s.subject != subject:
                return
            before = self.compare_view.alignment_text
            self.align_on(self.aligned_on, move=False)
            if self.compare_view.alignment_text != before:
                self.say(f"{visit} registered to the baseline: {self.compare_view.alignment_text}")

        def failed(exc: BaseException) -> None:
            if self._alive():
                self.say(f"{visit} could not be registered to the baseline ({exc}): it is lined "
                         "up by stored or tracked positions only", error=True)

        def ended() -> None:
            self.registering.pop(visit, None)

        worker = thread_worker(job, progress={"total": 0,
                                              "desc": f"Registering {visit} to the baseline"})(
            _connect={"returned": registered, "errored": failed, "finished": ended},
            _start_thread=False)
        self.registering[visit] = worker
        worker.start()

    def _layers_changed(self, _event: Any = None) -> None:
        """A layer was added or moved: arrange the tiles once napari has finished its change."""
        QTimer.singleShot(0, self._arrange_layers)

    def _arrange_layers(self, _event: Any = None) -> None:
        """Keep each visit's layers in one grid tile, in visit order (:meth:`VisitLayers.arrange`)."""
        self.visit_layers.arrange([self.visit_combo.itemText(i)
                                   for i in range(self.visit_combo.count())])

    @property
    def visit(self) -> str:
        """The visit under review."""
        return self.visit_combo.currentText()

    def show_visit(self, visit: str) -> None:
        """Load a visit's series and add its layers (:class:`VisitLayers`)."""
        assert self.session is not None
        vol = self.session.open_visit(visit)
        date = dict(self.session.visits()).get(visit)
        self.visit_layers.add(visit, vol, self._on_paint, self._on_review_edit, date)
        self._draw_stored(visit)

    def _on_visit_changed(self, visit: str) -> None:
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

    def _choose_series_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Series folder")
        if path:
            self.choose_series(path)

    def choose_series(self, path: str) -> list[dict[str, Any]]:
        """List the CT series under ``path`` (what ``recist info`` shows, warnings included)."""
        from recist_tool.io import scan

        res = self._guard(scan, path)
        self.series_combo.clear()
        if res is None:
            return []
        summaries = [s.summary() for s in res.stacks]
        for s in summaries:
            self.series_combo.addItem(summary_text(s), (path, s["series_uid"]))
        if res.skipped:
            self.series_label.setText(f"{len(res.skipped)} objects skipped: " + ", ".join(
                sorted({k.reason for k in res.skipped})))
        return summaries

    def _use_chosen_series(self) -> None:
        data = self.series_combo.currentData()
        if data is None or self.session is None:
            return
        self.open_series(self.visit, data[0], data[1])

    def open_series(self, visit: str, path: str, series_uid: str | None = None,
                    subject: str | None = None) -> bool:
        """Read ``visit`` of the open subject from another series: a folder (and the series
        chosen in it) or a PACS reference ``pacs://SERVER/STUDY_UID/SERIES_UID`` (which the
        series browser has retrieved into the cache). The loader reads it in a worker thread
        (napari's progress); only once it is read does the session take it for the visit and do
        its layers replace the visit's, so a failure leaves the visit as it was. ``subject``,
        when given, must still be the one open. Returns whether the reading started."""
        from recist_tool.io import load_volume

        s = self.session
        if s is None or s.subject is None:
            self.say("open a subject first", error=True)
            return False
        if subject is not None and subject != s.subject:
            self.say(f"not opened: the series was chosen for {subject} {visit}, and {s.subject} "
                     "is open now", error=True)
            return False
        if visit not in [self.visit_combo.itemText(i) for i in range(self.visit_combo.count())]:
            self.say(f"{s.subject} has no visit {visit!r}", error=True)
            return False
        if self.busy:
            self.say(f"busy ({self.tasks.task}): open the series when it is done", error=True)
            return False
        subject = s.subject

        def loaded(vol: Any) -> None:
            if self.session is not s or s.subject != subject:
                self.say(f"not opened: {subject} is no longer open", error=True)
                return
            if self.finding is not None and self.finding.visit == visit:
                self.discard()
            new = visit not in self.layers
            s.set_series(visit, path, series_uid)
            s.open_visit(visit, vol)
            if not self._try(self.show_visit, visit):
                return
            if new:
                self.visit_layers.show_side_by_side()
                self.compare_view.show_choices([self.visit_combo.itemText(i) for i in range(
                    self.visit_combo.count()) if self.visit_combo.itemText(i) in self.layers])
            self._arrange_layers()
            self.align_on(self.aligned_on)
            self.visit_combo.setCurrentText(visit)
            self._on_visit_changed(visit)
            self.say(f"{subject} {visit}: read from {path}")

        def start() -> None:
            self.tasks.run(lambda: load_volume(path, series_uid), f"Opening a series for {visit}",
                           f"{subject} {visit}: reading {path}…", loaded)

        self.tasks.after_warm_up(start, f"{subject} {visit}")
        return True

    def show_pacs_browser(self) -> PacsBrowser:
        """Show the PACS series browser (:mod:`napari_recist._pacs_browser`), a window of its
        own, made the first time and kept while the panel lives."""
        if self.pacs_browser is None:
            self.pacs_browser = PacsBrowser(self.open_series, self._reading_state, self)
            self.pacs_browser.setWindowFlags(Qt.Window)
        b = self.pacs_browser
        b.refresh()
        b.show()
        b.raise_()
        b.activateWindow()
        return b

    def _reading_state(self) -> tuple[str | None, list[str], str]:
        """(subject open or None, its visits, the visit under review), for the series browser."""
        subject = self.session.subject if self.session is not None else None
        visits = [self.visit_combo.itemText(i) for i in range(self.visit_combo.count())]
        return subject, visits if subject else [], self.visit

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

    # --- clicks and segmentation ----------------------------------------------------------------

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
        a worker thread with napari's progress indicator."""
        if self.session is None or self.session.subject is None:
            return
        visit = visit or self.visit
        if visit not in self.layers:
            return
        idx = self.world_to_index(visit, world)
        lesion_id, nodal = self._prompt_target(visit, idx)
        session = self.session

        def work() -> Finding:
            return session.segment_at(visit, index=tuple(float(v) for v in idx), nodal=nodal)

        self.tasks.run(work, "Segmenting lesion", "segmenting…",
                       lambda f: self._on_segmented(f, lesion_id))

    def segment_line(self, visit: str, ends: Any) -> None:
        """Segment the lesion from a line prompt on ``visit`` (its two ends, voxel ``(z, y, x)``
        on one slice), in a worker thread with napari's progress indicator."""
        if self.session is None:
            return
        session = self.session
        lesion_id, nodal = self._prompt_target(visit, np.asarray(ends, float).mean(axis=0))

        def work() -> Finding:
            return session.segment_line(visit, ends, nodal=nodal)

        self.tasks.run(work, "Segmenting lesion from a line", "segmenting from your line…",
                      lambda f: self._on_segmented(f, lesion_id))

    def _prompt_target(self, visit: str, index: Any) -> tuple[str | None, bool]:
        """The lesion a click (or a line's middle) at voxel ``index`` ``(z, y, x)`` of ``visit``
        measures, and the nodal flag it is segmented with; the box shows that flag.

        The selected proposal's lesion when the point lies on it
        (:meth:`recist_tool.reading.Proposal.reaches`): its flag, or the box's where the box
        shows that lesion already (the reader may have changed it). Otherwise a lesion of its
        own (None): un-ticked, unless the reader ticked the box for it (the box shows no
        other lesion's flag).

        Returns
        -------
        tuple of (str or None, bool)
        """
        assert self.session is not None
        p = self._selected_proposal()
        box = self.nodal_box.isChecked()
        if p is not None and visit == self.proposal_visit:
            vol = self.session.volume(visit)
            if p.reaches(vol.index_to_lps(np.asarray(index, float)), vol):
                nodal = box if self._nodal_of == p.lesion_id else p.nodal
                self._show_nodal(nodal, p.lesion_id)
                return p.lesion_id, nodal
        nodal = box and self._nodal_of is None
        self._show_nodal(nodal, None)
        return None, nodal

    def _show_nodal(self, on: bool, lesion_id: str | None) -> None:
        """Show a nodal flag in the box (nothing is measured again): ``lesion_id``'s, or None
        for the reader's own choice for the next click."""
        self.nodal_box.blockSignals(True)
        self.nodal_box.setChecked(on)
        self.nodal_box.blockSignals(False)
        self._nodal_of = lesion_id

    def _on_segmented(self, finding: Finding, lesion_id: str | None = None) -> None:
        """A click's (or line's) lesion is under review: ``lesion_id``, the selected proposal's
        lesion it lies on (:meth:`_prompt_target`; Accept and Confirm store it for that lesion),
        or None, a lesion of its own (its own mask label; classify it)."""
        self.finding_lesion = lesion_id
        self.set_finding(finding)
        p = self._selected_proposal()
        if lesion_id is not None:
            self.say(f"{lesion_id} segmented again on {finding.visit} from your click: Accept "
                     f"or Confirm stores this measurement for {lesion_id} (not the tracked "
                     "proposal)")
        elif p is not None and finding.visit == self.proposal_visit:
            self.say(f"lesion segmented on {finding.visit}, not on the selected proposal "
                     f"{p.lesion_id}'s lesion: classify it (a new lesion), or Accept to store it "
                     f"as {p.lesion_id}")
        else:
            self.say(f"lesion segmented on {finding.visit}: classify it, or confirm it as a "
                     "correction of the selected lesion")

    def set_finding(self, finding: Finding | None, lesion_id: str | None = None) -> None:
        """Make ``finding`` the lesion under review: mask in the labels layer, axes in the review
        layer, values in the panel."""
        old = self.finding
        if old is not None and old.visit in self.layers and self._pending_label \
                and self._pending_label not in self._label_of.values():
            self.visit_layers.paint(old.visit, self._pending_label)  # unconfirmed: it goes
        self.finding = finding
        if lesion_id is not None:
            self.finding_lesion = lesion_id
        if finding is None:
            self.finding_label.setText("no lesion under review")
            self.visit_layers.clear_reviews()
            self._pending_label = 0
            return
        key = (finding.visit, self.finding_lesion or "")
        label = self._label_of.get(key) or (max(self._label_of.values(), default=0) + 1)
        self._pending_label = label
        self._show_nodal(finding.nodal, self.finding_lesion)
        if finding.mask is not None:
            self.visit_layers.paint(finding.visit, label, finding.mask.mask, finding.mask.offset)
            self.layers[finding.visit]["labels"].selected_label = label
        self._draw_review(finding)
        self._show_finding()
        self._go_to_slice(finding.visit, finding.measurement.slice_index)
        a, b = (np.asarray(p, float) for p in finding.measurement.long_axis_endpoints_lps)
        self.focus(self.visit_layers.to_world(finding.visit, 0.5 * (a + b)))
        self._check_rules()

    def focus(self, world: Any, field_mm: float = 200.0, min_zoom: float = 0.0) -> None:
        """Centre every visit's view on a world position, ``field_mm`` across, or closer where
        ``min_zoom`` (screen pixels per mm) asks for it."""
        w = np.asarray(world, float)
        self.viewer.dims.set_point(0, float(w[0]))
        self.camera.center = (float(w[1]), float(w[2]))
        base = getattr(self, "_base_view", None)
        zoom = float(self.camera.zoom)
        if base is not None:  # zoom relative to the whole-volume view of reset_view()
            zoom0, extent_mm = base
            zoom = zoom0 * max(1.0, extent_mm / field_mm)
        self.camera.zoom = max(zoom, min_zoom)

    def _alive(self) -> bool:
        """Whether the panel is still shown: not closed, its Qt object not deleted with its
        viewer (a worker may end after that)."""
        if self._closed:
            return False
        try:
            self.objectName()
        except RuntimeError:
            return False
        return True

    def align_on(self, lesion_id: str | None, move: bool = True) -> None:
        """Line the visits up on a lesion (:meth:`ReadingSession.alignment`): each visit's
        layers shifted so that its lesion lies where the baseline's does, and every tile
        centred there (one slider step then moves every tile by the same distance from its
        lesion), zoomed so that an 8 mm node spans at least 40 screen pixels
        (:data:`napari_recist._compare_view.READ_ZOOM`); None: the whole scans lined up by
        their registration, if there is one, and the view left where it is. ``move`` False:
        the shifts only, the view left where it is."""
        s = self.session
        if s is None or s.subject is None or not self.layers:
            return
        alignment = self._guard(s.alignment, lesion_id)
        if alignment is None:
            return
        self.aligned_on = lesion_id if alignment.anchor_lps is not None else None
        self.visit_layers.set_offsets(alignment.offsets)
        self.compare_view.show_alignment(alignment, self.aligned_on)
        if alignment.anchor_lps is not None and move:
            self.focus(lps_to_world(alignment.anchor_lps), field_mm=120.0, min_zoom=READ_ZOOM)
            self.say(self.compare_view.alignment_text)

    def _go_to_slice(self, visit: str, k: int) -> None:
        self.viewer.dims.set_point(0, self.visit_layers.slice_world_z(visit, k))

    def _show_finding(self) -> None:
        f = self.finding
        if f is None:
            return
        m = f.measurement
        who = self.finding_lesion or "new lesion"
        how = "manual" if f.edited else (
            f"automatic, {f.mask.segmenter}" if f.mask is not None else "automatic")
        txt = (f"{who} on {f.visit}: long axis {_fmt(m.long_axis_mm, ' mm')}, short axis "
               f"{_fmt(m.short_axis_mm, ' mm')} (slice {m.slice_index}, {how}")
        if f.automatic is not None and f.edited:
            txt += f"; automatic long axis {_fmt(f.automatic.long_axis_mm, ' mm')}"
        txt += ")"
        if m.volume_ml is not None:
            txt += f", volume {m.volume_ml:.2f} mL"
        if f.tracking:
            txt += f"; tracking: {f.tracking.get('status')} ({f.tracking.get('confidence')})"
        if f.mask is not None and not f.edited:  # what the segmenter says of its own mask
            if "edge" in f.mask.info:  # where unet drew the outline, and why
                txt += f"\noutline: {describe_outline(f.mask.info['edge'])}"
            txt += "".join(f"\n⚠ {w}" for w in f.mask.warnings)
        self.finding_label.setText(txt)

    def _draw_review(self, finding: Finding) -> None:
        self.visit_layers.clear_reviews(but=finding.visit)
        m = finding.measurement
        lines = [np.asarray(m.long_axis_endpoints_voxel, float)]
        labels = [f"LA {_fmt(m.long_axis_mm)} mm"]
        if m.short_axis_endpoints_voxel is not None:
            lines.append(np.asarray(m.short_axis_endpoints_voxel, float))
            labels.append(f"SA {_fmt(m.short_axis_mm)} mm")
        # the lesion as drawn on the axes' slice, so that the labels stand off it
        k = int(round(float(lines[0][0, 0])))
        masks = self.layers[finding.visit]["labels"].data
        mask = (masks[k] == self._pending_label) if self._pending_label \
            and 0 <= k < masks.shape[0] else None
        self.visit_layers.set_review(finding.visit, lines, labels, mask)

    def _label_for(self, visit: str, lesion_id: str) -> int:
        """The label of a lesion in a visit's masks layer (the same lesion keeps its label, and so
        its colour, at every visit)."""
        n = self._label_of.get((visit, lesion_id))
        if n:
            return n
        taken = {k for (v, _), k in self._label_of.items() if v == visit} | {self._pending_label}
        same = [k for (_, lid), k in self._label_of.items() if lid == lesion_id and k]
        n = same[0] if same and same[0] not in taken else (
            max([*self._label_of.values(), self._pending_label], default=0) + 1)
        self._label_of[(visit, lesion_id)] = n
        return n

    def _draw_masks(self, visit: str, stored: dict[str, Any]) -> None:
        """Show the stored masks of a visit in its labels layer (read from their files); a lesion
        stored without a mask (absent, too small …) has none shown."""
        from recist_tool.errors import RecistToolError
        from recist_tool.io.masks import load_mask_crop

        assert self.session is not None
        vol = self.session.volume(visit)
        problems = []
        for lid, m in stored.items():
            n = self._label_for(visit, lid)
            if n == self._pending_label and self.finding is not None:
                continue  # the lesion under review keeps the reader's edits
            crop, off = None, (0, 0, 0)
            if m.mask_path and m.state == LesionState.MEASURED:
                try:
                    crop, off = load_mask_crop(m.mask_path, vol)
                except RecistToolError as exc:
                    problems.append(f"{lid}: {exc}")
            self.visit_layers.paint(visit, n, crop, off)
        if problems:
            self.say(f"{visit}: stored mask not shown: " + "; ".join(problems), error=True)

    def _draw_stored(self, visit: str) -> None:
        """Axes and masks of this reader's stored measurements of a visit."""
        if self.session is None or visit not in self.layers:
            return
        stored = self.session.stored(visit)
        self._draw_masks(visit, stored)
        self.visit_layers.show_axes(visit, stored, self.session.volume(visit))

    # --- edits ----------------------------------------------------------------------------------

    def _on_paint(self, visit: str) -> None:
        if self.finding is not None and self.finding.visit == visit:
            self._timer.start()

    def _remeasure_now(self) -> None:
        """Re-measure the lesion under review from its (painted / erased) label."""
        f = self.finding
        if f is None or self.session is None:
            return
        data = self.layers[f.visit]["labels"].data
        sel = data == self._pending_label
        nz = np.nonzero(sel.any(axis=(1, 2)))[0]
        if nz.size == 0:
            self.say("the mask is empty: paint the lesion or discard it", error=True)
            return
        ys = np.nonzero(sel.any(axis=(0, 2)))[0]
        xs = np.nonzero(sel.any(axis=(0, 1)))[0]
        lo = (int(nz[0]), int(ys[0]), int(xs[0]))
        crop = sel[lo[0]:nz[-1] + 1, lo[1]:ys[-1] + 1, lo[2]:xs[-1] + 1]
        new = self._guard(self.session.remeasure, f, crop, lo)
        if new is not None:
            self.finding = new
            self._draw_review(new)
            self._show_finding()
            self._check_rules()
            self.say("mask edited: re-measured (manual)")

    def _on_review_edit(self, visit: str, event: Any = None) -> None:
        if str(getattr(event, "action", "changed")) != "changed":
            return
        if self.visit_layers.updating_review or self.canvas.drawing_line or self.finding is None \
                or self.finding.visit != visit or self.session is None:
            return
        data = self.visit_layers.review_lines(visit)
        if not data:
            return
        long_ = [tuple(p) for p in np.asarray(data[0], float)]
        short = [tuple(p) for p in np.asarray(data[1], float)] if len(data) > 1 else None
        k = round(long_[0][0])
        long_ = [(k, p[1], p[2]) for p in long_]
        if short is not None:
            short = [(k, p[1], p[2]) for p in short]
        new = self._guard(self.session.measure_line, visit, long_, short, coords="voxel",
                          nodal=self.finding.nodal, finding=self.finding)
        if new is not None:
            self.finding = new
            self._show_finding()
            self._check_rules()
            self._draw_review(new)  # the labels follow the moved ends
            self.say("axis end points moved: manual measurement")

    @staticmethod
    def _unet_default() -> bool:
        """Whether clicks go to ``unet`` (its weights are installed): the outline is its
        option."""
        from recist_tool.segment import default_segmenter_name

        return default_segmenter_name() == "unet"

    def _on_outline(self, text: str) -> None:
        """The reader chose where unet draws the outline: the next clicks use it, and the
        lesion under review, if its mask is the segmenter's own, is segmented again."""
        session = self.session
        if session is None:
            return
        session.use_segmenter(OUTLINES[text])
        finding = self.finding
        if finding is None or finding.mask is None or finding.edited or finding.tracking:
            self.say(f"outline: {text}, from the next click")
            self._warm_up(session)
            return

        def work() -> Finding:
            return session.resegment(finding)

        def returned(new: Finding) -> None:
            if self.finding is finding:  # still the lesion under review
                self.set_finding(new)
                self.say(f"outline: {text}; the lesion was segmented again")

        self.tasks.run(work, "Segmenting the lesion again", "segmenting again…", returned)

    def _on_nodal(self, on: bool) -> None:
        """The reader changed the nodal flag: the lesion under review is segmented or measured
        again under it (:meth:`ReadingSession.renode`), in a worker thread like a click."""
        finding, session = self.finding, self.session
        if finding is None or session is None or finding.nodal == on:
            self._check_rules()
            return

        def work() -> Finding:
            return session.renode(finding, on)

        def returned(new: Finding) -> None:
            if self.finding is finding:  # still the lesion under review
                self.set_finding(new)
                self.say("lymph node: measured by its short axis" if on
                         else "not a lymph node: measured by its longest diameter")
            self._check_rules()

        def errored(exc: BaseException) -> None:
            self.tasks.report_error(exc)
            if self.finding is finding:  # the box goes back to what the finding is
                self.nodal_box.blockSignals(True)
                self.nodal_box.setChecked(finding.nodal)
                self.nodal_box.blockSignals(False)

        self.tasks.run(work, "Measuring the lesion again", "measuring again…", returned, errored)

    # --- classification and confirmation -------------------------------------------------------

    def _check_rules(self) -> None:
        """Show what storing the lesion under review would break: an overlap with a lesion
        stored at its visit (it would be counted twice), and at baseline the baseline rules."""
        s = self.session
        if s is None or s.subject is None or not self.visit:
            return
        f = self.finding
        visit = f.visit if f is not None else self.visit
        lines = []
        if f is not None:
            other = self._guard(s.overlapping, f, exclude=self.finding_lesion) or []
            if other:
                lines.append(f"⚠ overlaps {', '.join(other)} stored on {visit}: the same lesion "
                             "would be counted twice")
        cat = self.category_combo.currentText()
        if s.is_baseline(visit) and CATEGORIES.get(cat) is Category.NEW:
            lines.append("at baseline a lesion is a target or a non-target")
        elif s.is_baseline(visit):
            v = self._guard(s.check_baseline, f, cat, organ=self.organ_combo.currentText(),
                            nodal=self.nodal_box.isChecked(),
                            lesion_id=self.lesion_edit.text().strip() or None)
            lines += [x.message for x in v or ()]
        self.rules_label.setText("\n".join(lines))

    def classify(self) -> str | None:
        """Store the lesion under review as a new lesion with the chosen category (baseline rules
        checked), or a lesion without measurement (non-target present) when none is under review."""
        s = self.session
        if s is None:
            return None
        visit = self.finding.visit if self.finding is not None else self.visit
        res = self._guard(s.add_lesion, self.finding, self.category_combo.currentText(),
                          organ=self.organ_combo.currentText(), nodal=self.nodal_box.isChecked(),
                          lesion_id=self.lesion_edit.text().strip() or None, visit=visit,
                          equivocal=self.equivocal_box.isChecked())
        if res is None:
            self.rules_label.setText(self.last_message)
            return None
        self._store_label(visit, res.lesion_id)
        self.finding_lesion = res.lesion_id
        self.finding = None
        self._pending_label = 0
        self.set_finding(None)
        self._show_nodal(False, None)  # the next lesion is the reader's to flag
        self.lesion_edit.clear()
        self.rules_label.setText("")
        self._draw_stored(visit)
        self.refresh_table()
        self.say(f"{res.lesion_id} stored as {res.category.lower()} on {visit}")
        return res.lesion_id

    def confirm(self) -> bool:
        """Store the lesion under review as the measurement of the selected (proposed or stored)
        lesion; a correction keeps the automatic value in the audit trail."""
        s, f = self.session, self.finding
        if s is None or f is None:
            self.say("no lesion under review", error=True)
            return False
        p = self._selected_proposal()
        lid = (self.finding_lesion
               or (p.lesion_id if p is not None and f.visit == self.proposal_visit else None)
               or self._selected_table_lesion())
        if not lid:
            self.say("choose the lesion this measurement belongs to (table or proposals), or "
                     "classify it as a new lesion", error=True)
            return False
        if not self._try(s.confirm, lid, f):
            return False
        self._store_label(f.visit, lid)
        self.finding = None
        self._pending_label = 0
        self.set_finding(None)
        self._show_nodal(False, None)  # the next lesion is the reader's to flag
        self._draw_stored(f.visit)
        self.refresh_table()
        self._refresh_proposals()
        if lid == self.aligned_on:  # its position at this visit is known now
            self.align_on(lid)
        self.say(self._stored_message(lid, f))
        return True

    def _store_label(self, visit: str, lesion_id: str) -> None:
        """Give a lesion just stored from the lesion under review its label in ``visit``'s masks
        layer: its own label there if it has one, else the review's label unless another lesion
        owns it, else a new one; never another lesion's. Where the label differs from the
        review's, the review's mask is erased (:meth:`_draw_stored` draws the stored one), and a
        proposal it was painted over is drawn again."""
        pending = self._pending_label
        if not pending:  # nothing under review was painted (a lesion without measurement)
            return
        owners = [(v, lid) for (v, lid), n in self._label_of.items()
                  if n == pending and lid != lesion_id]
        n = self._label_of.get((visit, lesion_id)) or (
            max(self._label_of.values()) + 1 if owners else pending)
        if n != pending:
            self.visit_layers.paint(visit, pending)
            for v, lid in owners:  # an unstored proposal keeps its tracked mask shown
                p = next((p for p in self.proposals if p.lesion_id == lid), None)
                if v == visit == self.proposal_visit and p is not None and p.finding is not None \
                        and p.finding.mask is not None:
                    self.visit_layers.paint(visit, pending, p.finding.mask.mask,
                                            p.finding.mask.offset)
        self._label_of[(visit, lesion_id)] = n

    def _stored_message(self, lesion_id: str, f: Finding) -> str:
        """What was stored, from what: the reader's own action, or the tracked proposal."""
        msg = (f"{lesion_id} stored on {f.visit}: {_fmt(f.diameter_mm, ' mm')} from "
               f"{SOURCES[f.source]} ({f.method})")
        p = next((p for p in self.proposals if p.lesion_id == lesion_id), None)
        if (p is not None and f.visit == self.proposal_visit and p.finding is not None
                and not f.tracking):
            msg += f"; the tracked proposal ({_fmt(p.finding.diameter_mm, ' mm')}) was not used"
        return msg

    def discard(self) -> None:
        """Drop the lesion under review (nothing is stored); its visit's stored masks are drawn
        again where its mask covered them."""
        old = self.finding
        self.finding_lesion = None
        self.set_finding(None)
        self._show_nodal(False, None)  # the next lesion is the reader's to flag
        self.rules_label.setText("")
        if old is not None:
            self._draw_stored(old.visit)
            self.say(f"the lesion under review on {old.visit} was discarded (nothing stored)")

    # --- follow-up --------------------------------------------------------------------------------

    def propose(self) -> None:
        """Track the baseline lesions into the visit under review (worker thread)."""
        s = self.session
        if s is None or not self.visit:
            return
        visit = self.visit

        def work() -> list[Proposal]:
            return s.propose_followup(visit)

        self.tasks.run(work, "Tracking baseline lesions", f"tracking baseline lesions into "
                       f"{visit}…", lambda props: self._on_proposed(visit, props))

    def _on_proposed(self, visit: str, props: list[Proposal]) -> None:
        self._show_proposals(props, visit)
        self.align_on(self.aligned_on)  # tracked positions and the registration are known now
        for p in props:
            if p.finding is not None and p.finding.mask is not None:
                self.visit_layers.paint(visit, self._label_for(visit, p.lesion_id),
                                        p.finding.mask.mask, p.finding.mask.offset)
        self._refresh_proposals()
        n_found = sum(p.status == "found" for p in props)
        self.say(f"{visit}: {len(props)} baseline lesions proposed ({n_found} found); select one "
                 "to review, accept or mark it")

    @property
    def proposals(self) -> list[Proposal]:
        """The proposals shown (for :attr:`proposal_visit`)."""
        return self.proposal_list.proposals

    @property
    def proposal_visit(self) -> str | None:
        """The visit the proposals shown are for."""
        return self.proposal_list.visit

    def _show_proposals(self, proposals: list[Proposal], visit: str | None) -> None:
        stored = self.session.stored(visit) if self.session and visit and proposals else {}
        self.proposal_list.show_proposals(proposals, visit, stored)

    def _refresh_proposals(self) -> None:
        self._show_proposals(self.proposals, self.proposal_visit)

    def _selected_proposal(self) -> Proposal | None:
        return self.proposal_list.selected()

    def _on_proposal_selected(self) -> None:
        p = self._selected_proposal()
        if p is None:
            return
        self.align_on(p.lesion_id)
        self.finding_lesion = p.lesion_id
        self._show_nodal(p.nodal, p.lesion_id)
        if p.finding is not None:
            self.set_finding(p.finding, p.lesion_id)
        else:
            self.set_finding(None)
            self.finding_lesion = p.lesion_id
            self.finding_label.setText(f"{p.lesion_id}: {p.status} — click on the lesion to "
                                       "measure it, or mark it")

    def _on_proposal_clicked(self, _row: int, _column: int) -> None:
        """A click on the row already selected (no selection signal) brings its proposal under
        review again once nothing is (after a lesion was stored or discarded); a lesion under
        review is kept (the reader's click on it is not replaced by the tracked proposal)."""
        p = self._selected_proposal()
        if p is not None and self.finding is None and self._nodal_of != p.lesion_id:
            self._on_proposal_selected()

    def select_proposal(self, lesion_id: str) -> Proposal:
        """Select a proposal by lesion id (as a click in the list does)."""
        p = self.proposal_list.select(lesion_id)
        self._on_proposal_selected()
        return p

    def accept_selected(self) -> bool:
        """Store the selected proposal's lesion: the lesion under review when there is one at the
        proposals' visit (the reader's last action: the proposal as selected, or the reader's
        click or correction after it), else the tracked proposal."""
        p = self._selected_proposal()
        if p is None:
            self.say("select a proposed lesion", error=True)
            return False
        f = self.finding
        if f is not None and f.visit != self.proposal_visit:
            self.say(f"the lesion under review is on {f.visit}, the proposals are for "
                     f"{self.proposal_visit}: confirm, classify or discard it first", error=True)
            return False
        if f is not None:
            self.finding_lesion = p.lesion_id
            return self.confirm()
        if p.finding is None:
            self.say(f"{p.lesion_id}: nothing was found; click on it or mark it", error=True)
            return False
        self.finding, self.finding_lesion = p.finding, p.lesion_id
        return self.confirm()

    def mark_selected(self, state: str) -> bool:
        """Record the selected proposal's lesion (or the selected table row) with a state."""
        s = self.session
        p = self._selected_proposal()
        lid = p.lesion_id if p is not None else self._selected_table_lesion()
        visit = self.proposal_visit if p is not None else self.visit
        if s is None or not lid or not visit:
            self.say("select a lesion", error=True)
            return False
        if not self._try(s.mark, visit, lid, STATES[state]):
            return False
        self.discard()
        self._draw_stored(visit)
        self.refresh_table()
        self._refresh_proposals()
        self.say(f"{lid} on {visit}: {state}")
        return True

    # --- table, response, sign-off, export -----------------------------------------------------

    def refresh_table(self) -> None:
        """Recompute responses and fill the lesions × timepoints table."""
        s = self.session
        if s is None or s.subject is None:
            return
        tab = self._guard(s.timepoint_table)
        if tab is None:
            return
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
        if lid is None or self.session is None:
            return
        self.align_on(lid)

    def _lesion_edit_args(self) -> tuple[str, str] | None:
        """The lesion selected in the table and the reason given, or None (with a message)."""
        lid = self._selected_table_lesion()
        reason = self.change_reason_edit.text().strip()
        if self.session is None or lid is None:
            self.say("select the lesion's row in the table", error=True)
            return None
        if not reason:
            self.say(f"give a reason to change {lid} (kept in the audit trail)", error=True)
            return None
        return lid, reason

    def _after_lesion_edit(self, message: str) -> None:
        """Redraw every visit, the table and the (now outdated) proposals after a lesion was
        changed or deleted."""
        self.timepoints.clear_correction()
        self._show_proposals([], None)
        for v in self.layers:
            self._draw_stored(v)
        self.refresh_table()
        self.say(message)

    def change_lesion(self) -> bool:
        """Rename and / or reclassify the lesion selected in the table (before signing; the
        baseline rules are checked; audited with the reason)."""
        args = self._lesion_edit_args()
        if args is None:
            return False
        lid, reason = args
        assert self.session is not None
        cat = self.change_category_combo.currentText()
        new_id = self.change_id_edit.text().strip() or None
        res = self._guard(self.session.change_lesion, lid, reason, new_id=new_id,
                          category=None if cat == UNCHANGED else cat)
        if res is None:
            return False
        for v, old in list(self._label_of):
            if old == lid:  # the lesion keeps its label (and colour) under its new id
                self._label_of[(v, res)] = self._label_of.pop((v, old))
        what = [f"renamed {res}"] if res != lid else []
        what += [f"now {cat}"] if cat != UNCHANGED else []
        self._after_lesion_edit(f"{lid}: {', '.join(what)} (audited: {reason})")
        return True

    def delete_lesion(self) -> bool:
        """Delete the lesion selected in the table with its measurements at every visit (before
        signing; audited with the reason)."""
        args = self._lesion_edit_args()
        if args is None:
            return False
        lid, reason = args
        assert self.session is not None
        if not self._try(self.session.delete_lesion, lid, reason):
            return False
        for (v, old), n in list(self._label_of.items()):
            if old == lid and v in self.layers:
                self.visit_layers.paint(v, n)
                del self._label_of[(v, old)]
        self._after_lesion_edit(f"{lid} deleted at every visit (audited: {reason})")
        return True

    def sign(self) -> bool:
        """Sign the visit under review: the password is asked again, then checked (scrypt,
        0.1-0.2 s) and the read signed in a worker thread, the panel busy meanwhile, as the Log
        in button does; the message then says ``"<subject> <visit> signed (sha256 …)"``, or why
        not. Returns whether the signing started."""
        s = self.session
        if s is None or s.subject is None:
            return False
        if self.busy:
            self.say(f"busy ({self.tasks.task}): sign when it is done", error=True)
            return False
        subject, visit = s.subject, self.visit
        pw, ok = QInputDialog.getText(self, "Sign read", f"Password of {s.reader} to sign "
                                      f"{subject} {visit}:", QLineEdit.Password)
        if not ok:
            return False
        over = self.override_combo.currentText()
        override = None if over == COMPUTED else over
        reason = self.reason_edit.text().strip() or None

        def work() -> str:
            return s.sign(visit, pw, override=override, reason=reason)

        def signed(digest: str) -> None:
            if not self._alive() or self.session is not s:
                return
            self.refresh_table()
            self.say(f"{subject} {visit} signed (sha256 {digest[:12]}…)")

        def refused(exc: BaseException) -> None:
            if self._alive():
                self.tasks.report_error(exc)

        self.tasks.run(work, f"Signing {subject} {visit}", f"signing {subject} {visit}…",
                       signed, refused)
        return True

    def export(self) -> bool:
        """Export with the chosen format into a folder the reader picks, in a worker thread
        (napari's progress); once written, the message names how many files and where.
        Returns whether the export started."""
        s = self.session
        if s is None or self.export_combo.count() == 0:
            self.say("export not available in this install", error=True)
            return False
        out = QFileDialog.getExistingDirectory(self, "Export to folder")
        if not out:
            return False
        fmt, unsigned = self.export_combo.currentText(), self.export_unsigned.isChecked()

        def work() -> list[Path]:
            return list(s.export(fmt, out, include_unsigned=unsigned))

        def written(files: list[Path]) -> None:
            self.export_label.setText("written: " + ", ".join(Path(f).name for f in files))
            self.say(f"exported {len(files)} file(s) to {out}")

        self.tasks.run(work, "Exporting", f"exporting {fmt} to {out}…", written)
        return True

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
