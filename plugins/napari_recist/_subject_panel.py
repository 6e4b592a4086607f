"""The Subject tab of the RECIST reading panel: database and reader, trial and subject, and another
series for the visit under review (a folder, or a PACS through the series browser).

A thin Qt view over :class:`recist_tool.reading.ReadingSession`: it offers what the session lists
(trials, subjects) and what :func:`recist_tool.io.scan` finds in a folder, and asks the session to
log the reader in, open the subject and read a series, in the panel's worker threads
(:class:`napari_recist._tasks.Tasks`). Each visit read becomes napari layers through the panel's
:class:`napari_recist._visit_layers.VisitLayers`, added and shown one step per event-loop turn
(docs/reading.md, "The window answering while the panel works").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from napari_recist._layers import summary_text
from napari_recist._napari_warm_up import rendering_glyphs
from napari_recist._pacs_browser import PacsBrowser
from napari_recist._visit_layers import make_layers
from recist_tool.reading import ReadingSession


class SubjectPanel(QWidget):
    """Login, trial and subject; another series for the visit under review.

    Parameters
    ----------
    panel : ReadingWidget
        What logging in and opening use and fill: ``session`` (set here), ``tasks``,
        ``busy``, ``say``, ``guard``, ``try_call``, ``alive``, ``visit_layers``, ``layers``,
        ``review``, ``lesion``, ``sign_export``, ``compare_view``, ``visit_combo``,
        ``series_label``, ``viewer``, ``camera``, and its steps (``arrange_layers``,
        ``align_on``, ``refresh_table``, ``on_visit_changed``, ``show_tab`` …).

    Attributes
    ----------
    db_edit, reader_edit, password_edit : QLineEdit
        The database (SQLite file or URL), the reader and the password (never shown).
    login_btn : QPushButton
        Log in (the panel checks the password in a worker thread).
    trial_combo, subject_combo : QComboBox
        The trials of the database and the subjects of the trial chosen.
    open_btn : QPushButton
        Open the subject chosen (every visit side by side).
    series_btn : QPushButton
        Choose a folder and list its CT series in :attr:`series_combo`.
    series_load_btn : QPushButton
        Read the series chosen as the visit under review.
    pacs_btn : QPushButton
        Show the PACS series browser.
    pacs_browser : PacsBrowser or None
        The series browser, made when first shown.
    """

    def __init__(self, panel: Any) -> None:
        super().__init__()
        self.panel = panel
        self.pacs_browser: PacsBrowser | None = None  # made when first shown
        lay = QVBoxLayout(self)  # a tab's page: the tab's margins
        g = QGroupBox("Database and reader")
        f = QFormLayout(g)
        self.db_edit = QLineEdit()
        self.reader_edit = QLineEdit()
        self.password_edit = QLineEdit()
        self.password_edit.setEchoMode(QLineEdit.Password)
        self.login_btn = QPushButton("Log in")
        f.addRow("Database", self.db_edit)
        f.addRow("Reader", self.reader_edit)
        f.addRow("Password", self.password_edit)
        f.addRow(self.login_btn)
        self.trial_combo = QComboBox()
        self.trial_combo.currentTextChanged.connect(self.fill_subjects)
        self.subject_combo = QComboBox()
        self.open_btn = QPushButton("Open subject (all visits side by side)")
        self.login_btn.clicked.connect(self.log_in_in_background)
        self.open_btn.clicked.connect(lambda: self.open_subject(self.subject_combo.currentText()))
        f.addRow("Trial", self.trial_combo)
        f.addRow("Subject", self.subject_combo)
        f.addRow(self.open_btn)
        lay.addWidget(g)
        # another series for a visit: rarely needed, so on the subject's tab
        series = QGroupBox("Another series for the visit under review")
        sf = QFormLayout(series)
        self.series_btn = QPushButton("Open another series for this visit…")
        self.series_combo = QComboBox()
        self.series_load_btn = QPushButton("Use this series")
        self.series_btn.clicked.connect(self._choose_series_dialog)
        self.series_load_btn.clicked.connect(self._use_chosen_series)
        sf.addRow(self.series_btn)
        sf.addRow("Series", self.series_combo)
        sf.addRow(self.series_load_btn)
        self.pacs_btn = QPushButton("Open a series from PACS…")
        self.pacs_btn.setToolTip("Search a PACS of the trial settings and open a series as a "
                                 "visit (docs/export_pacs.md)")
        self.pacs_btn.clicked.connect(self.show_pacs_browser)
        sf.addRow(self.pacs_btn)
        lay.addWidget(series)
        lay.addStretch(1)
        self.fill_default_db()

    def fill_default_db(self) -> None:
        """The sample trial's database and reader, where it has been generated."""
        try:
            from napari_recist._sample_data import SAMPLE_READER, sample_dir

            db = sample_dir() / "recist.db"
            if db.is_file():
                self.db_edit.setText(str(db))
                self.reader_edit.setText(SAMPLE_READER)
        except Exception:  # noqa: BLE001 - a default is a convenience only
            pass

    def session_maker(self) -> Callable[[], ReadingSession] | None:
        """What opens the database and authenticates the reader typed in (a call returning the
        :class:`ReadingSession`, to be run in a worker thread), or None (and why) when no
        database is chosen."""
        from recist_tool.store import TrialStore

        db = self.db_edit.text().strip()
        if not db:
            self.panel.say("choose a database (SQLite file or URL)", error=True)
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

    def show_trials(self, session: ReadingSession) -> None:
        """Offer the session's trials, and the first trial's subjects."""
        self.trial_combo.blockSignals(True)
        self.trial_combo.clear()
        self.trial_combo.addItems(list(session.trials()))
        self.trial_combo.blockSignals(False)
        self.fill_subjects(self.trial_combo.currentText())

    def fill_subjects(self, trial: str) -> None:
        """Offer the subjects of ``trial`` (every trial's when empty)."""
        self.subject_combo.clear()
        if self.panel.session is not None:
            self.subject_combo.addItems(self.panel.session.subjects(trial or None))

    def show_series(self, path: str, stacks: Any) -> list[dict[str, Any]]:
        """Offer the CT series ``stacks`` found under ``path`` (:func:`recist_tool.io.scan`);
        returns their summaries (what ``recist info`` shows, warnings included)."""
        self.series_combo.clear()
        summaries = [s.summary() for s in stacks]
        for s in summaries:
            self.series_combo.addItem(summary_text(s), (path, s["series_uid"]))
        return summaries

    def chosen_series(self) -> tuple[str, str] | None:
        """(folder, series UID) of the series chosen, or None."""
        return self.series_combo.currentData()

    # --- logging in, opening the subject and its series -------------------------------------------

    def login(self) -> bool:
        """Open the database and authenticate the reader, here (the panel's Log in button does
        it in a worker thread: :meth:`log_in_in_background`)."""
        p = self.panel
        go = self.session_maker()
        s = None if go is None else p.guard(go)
        if s is None:
            return False
        self._logged_in(s)
        return True

    def log_in_in_background(self) -> bool:
        """Log in as :meth:`login` does, the password check (scrypt, 0.1-0.2 s) in a worker
        thread so that the window answers meanwhile; the panel is busy until it ends. Returns
        whether it started."""
        p = self.panel
        if p.busy:
            p.say(f"busy ({p.tasks.task}): log in when it is done", error=True)
            return False
        go = self.session_maker()
        if go is None:
            return False

        def returned(s: ReadingSession) -> None:
            p.tasks.done()
            if p.alive():
                self._logged_in(s)
            else:
                s.store.close()

        def errored(exc: BaseException) -> None:
            p.tasks.done()
            p.tasks.report_error(exc)

        p.tasks.run(go, "Logging in", "logging in…", returned, errored, finished=lambda: None)
        return True

    def _logged_in(self, s: ReadingSession) -> None:
        """The reader is logged in: the trials and subjects offered, the model warmed."""
        p = self.panel
        if p.session is not None:
            p.session.store.close()
        p.session = s
        p.lesion.use_outline(s)
        self.show_trials(s)
        p.say(f"logged in as {s.reader}")
        p.sign_export.fill_exports()
        p.warm_up(s)
        p.tasks.when_warm(rendering_glyphs(p.viewer))

    def open_subject(self, subject: str) -> bool:
        """Open a subject: every visit with a known series is loaded, and its napari layers made
        (:func:`make_layers`), in a worker thread (napari's progress, one step a visit); here
        its layers are added hidden as each visit arrives, one napari step per event-loop turn
        (:meth:`Tasks.queue`), and once all are in, shown side by side
        (:meth:`VisitLayers.showing`: every CT at once, then a layer a turn, so that each first
        draw is a turn of its own). The panel is busy until the last one is shown; its message
        then starts with the subject (``"SYN-001: 3 of 3 visits shown"``). Returns whether the
        opening started."""
        from recist_tool.errors import RecistToolError

        p = self.panel
        if p.session is None:
            p.say("log in first", error=True)
            return False
        if p.busy:
            p.say(f"busy ({p.tasks.task}): open the subject when it is done", error=True)
            return False
        visits = p.guard(p.session.open_subject, subject)
        if visits is None:
            return False
        # the last subject's layers removed, the slider made and napari's grid turned on (no
        # tile until a layer is shown), a step each, while the first series loads
        p.tasks.queue(p.visit_layers.hold_scene, p.visit_layers.clearing(), self._three_d_slider,
                      lambda: p.visit_layers.show_side_by_side(len(visits)))
        p.review.label_of.clear()
        p.discard()
        p.show_proposals([], None)
        p.compare_view.aligned_on = None
        p.visit_combo.blockSignals(True)
        p.visit_combo.clear()
        p.visit_combo.addItems([v for v, _ in visits])
        p.visit_combo.blockSignals(False)
        p.compare_view.show_choices([])
        session, dates, problems = p.session, dict(visits), []
        review = p.review

        def load() -> Any:  # in the worker: each visit's series and napari layers, as read
            for v, _ in visits:
                try:
                    vol = session.open_visit(v)
                except RecistToolError as exc:
                    yield v, exc, None
                    continue
                yield v, vol, make_layers(v, vol, dates.get(v))

        def added(v: str) -> None:  # a visit's last layer is in (hidden)
            p.arrange_layers()
            p.say(f"opening {subject}: {v} read ({len(p.layers)} of {len(visits)})")

        def arrived(item: tuple[str, Any, Any]) -> None:  # here: its layers, one a turn
            v, vol, made = item
            if isinstance(vol, BaseException):
                problems.append(f"{v}: {vol}")
                return
            p.tasks.queue(p.visit_layers.adding(v, vol, review.on_paint,
                                                review.on_review_edit, dates.get(v), made),
                          lambda: added(v))

        def opened(_result: Any = None) -> None:  # after the last visit's layers
            # every visit shown (VisitLayers.showing: the CTs together, then a layer a turn);
            # stored measurements drawn now that the slider's step is known, a visit a turn
            p.tasks.queue(p.visit_layers.release_scene,
                          p.visit_layers.showing([v for v, _ in visits], reset_view=True),
                          *[lambda v=v: review.draw_stored(v) for v, _ in visits],
                          lambda: (self._opened(subject, visits, problems), p.tasks.done()))

        def failed(exc: BaseException) -> None:
            p.tasks.report_error(exc)
            p.tasks.queue(p.visit_layers.release_scene, p.tasks.done)

        def start() -> None:
            p.tasks.run(load, f"Opening {subject}", f"opening {subject}: loading "
                        f"{len(visits)} visits…", opened, failed, yielded=arrived,
                        total=len(visits), finished=lambda: None)  # busy until the steps end

        p.tasks.after_warm_up(start, f"opening {subject}")
        return True

    def _three_d_slider(self) -> None:
        """Give napari's dims a third axis now, in a step of its own, when no layer has: napari
        makes the slider of the first 3D layer added (and the canvas shrinks to show it), which
        would otherwise join the first CT layer's step."""
        p = self.panel
        if p.viewer.dims.ndim < 3:
            p.viewer.dims.ndim = 3

    def _opened(self, subject: str, visits: list[Any], problems: list[str]) -> None:
        """Every visit of the subject is in and its stored measurements drawn: the whole view,
        choices and table."""
        p = self.panel
        assert p.session is not None
        p.visit_layers.show_side_by_side()  # once, for every visit
        p.viewer.reset_view()
        if p.layers:
            vol = p.session.volume(next(iter(p.layers)))
            extent = max(vol.shape[1] * vol.spacing[1], vol.shape[2] * vol.spacing[2])
            p.base_view = (float(p.camera.zoom), float(extent))
        p.sign_export.show_overall_choices(p.session.overall_choices())
        p.compare_view.show_choices([v for v, _ in visits if v in p.layers])
        p.align_on(None)
        p.enable_controls()
        p.refresh_table()
        p.on_visit_changed(p.visit_combo.currentText())
        p.show_tab("Read")
        p.say(f"{subject}: {len(p.layers)} of {len(visits)} visits shown"
              + ("; not shown: " + "; ".join(problems) if problems else ""),
              error=bool(problems))

    def show_visit(self, visit: str) -> None:
        """Load a visit's series and add its layers (:class:`VisitLayers`)."""
        p = self.panel
        assert p.session is not None
        vol = p.session.open_visit(visit)
        date = dict(p.session.visits()).get(visit)
        p.visit_layers.add(visit, vol, p.review.on_paint, p.review.on_review_edit, date)
        p.review.draw_stored(visit)

    def _choose_series_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Series folder")
        if path:
            self.choose_series(path)

    def choose_series(self, path: str) -> list[dict[str, Any]]:
        """List the CT series under ``path`` (what ``recist info`` shows, warnings included)."""
        from recist_tool.io import scan

        p = self.panel
        res = p.guard(scan, path)
        if res is None:
            self.series_combo.clear()
            return []
        summaries = self.show_series(path, res.stacks)
        if res.skipped:
            p.series_label.setText(f"{len(res.skipped)} objects skipped: " + ", ".join(
                sorted({k.reason for k in res.skipped})))
        return summaries

    def _use_chosen_series(self) -> None:
        p = self.panel
        data = self.chosen_series()
        if data is None or p.session is None:
            return
        self.open_series(p.visit, data[0], data[1])

    def open_series(self, visit: str, path: str, series_uid: str | None = None,
                    subject: str | None = None) -> bool:
        """Read ``visit`` of the open subject from another series: a folder (and the series
        chosen in it) or a PACS reference ``pacs://SERVER/STUDY_UID/SERIES_UID`` (which the
        series browser has retrieved into the cache). The loader reads it in a worker thread
        (napari's progress); only once it is read does the session take it for the visit and do
        its layers replace the visit's, so a failure leaves the visit as it was. ``subject``,
        when given, must still be the one open. Returns whether the reading started."""
        from recist_tool.io import load_volume

        p = self.panel
        s = p.session
        if s is None or s.subject is None:
            p.say("open a subject first", error=True)
            return False
        if subject is not None and subject != s.subject:
            p.say(f"not opened: the series was chosen for {subject} {visit}, and {s.subject} "
                  "is open now", error=True)
            return False
        if visit not in p.visit_list():
            p.say(f"{s.subject} has no visit {visit!r}", error=True)
            return False
        if p.busy:
            p.say(f"busy ({p.tasks.task}): open the series when it is done", error=True)
            return False
        subject = s.subject

        def loaded(vol: Any) -> None:
            if p.session is not s or s.subject != subject:
                p.say(f"not opened: {subject} is no longer open", error=True)
                return
            if p.review.finding is not None and p.review.finding.visit == visit:
                p.discard()
            new = visit not in p.layers
            s.set_series(visit, path, series_uid)
            s.open_visit(visit, vol)
            if not p.try_call(self.show_visit, visit):
                return
            if new:
                p.visit_layers.show_side_by_side()
                p.compare_view.show_choices([v for v in p.visit_list() if v in p.layers])
            p.arrange_layers()
            p.align_on(p.aligned_on)
            p.visit_combo.setCurrentText(visit)
            p.on_visit_changed(visit)
            p.say(f"{subject} {visit}: read from {path}")

        def start() -> None:
            p.tasks.run(lambda: load_volume(path, series_uid), f"Opening a series for {visit}",
                        f"{subject} {visit}: reading {path}…", loaded)

        p.tasks.after_warm_up(start, f"{subject} {visit}")
        return True

    def show_pacs_browser(self) -> PacsBrowser:
        """Show the PACS series browser (:mod:`napari_recist._pacs_browser`), a window of its
        own (a child of the panel, outside its tabs), made the first time and kept while the
        panel lives."""
        if self.pacs_browser is None:
            self.pacs_browser = PacsBrowser(self.open_series, self._reading_state, self.panel)
            self.pacs_browser.setWindowFlags(Qt.Window)
        b = self.pacs_browser
        b.refresh()
        b.show()
        b.raise_()
        b.activateWindow()
        return b

    def _reading_state(self) -> tuple[str | None, list[str], str]:
        """(subject open or None, its visits, the visit under review), for the series browser."""
        p = self.panel
        subject = p.session.subject if p.session is not None else None
        return subject, p.visit_list() if subject else [], p.visit
