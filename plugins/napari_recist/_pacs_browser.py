"""The PACS series browser of the RECIST reading panel: a thin Qt view over
:mod:`recist_tool.io.pacs.browse`.

The reader picks a server of the trial settings (``[pacs.NAME]`` tables of ``trial.toml``), searches
by patient / subject ID, study date range, modality and accession number, sees each study found
with its series (date, description, number of instances, slice thickness where the server gives
it), selects a series and opens it as a visit of the subject open in the panel. The search
(:func:`~recist_tool.io.pacs.search_studies`) and the retrieval into the local cache
(:func:`~recist_tool.io.pacs.prefetch`) run in worker threads with a progress bar and a Cancel
button; the panel (:meth:`napari_recist._widget.ReadingWidget.open_series`) then reads the series
by its reference ``pacs://SERVER/STUDY_UID/SERIES_UID`` through the same loader as a folder
(from the cache). Nothing here knows DICOMweb or DIMSE. Every error is one line in the browser;
logins come from the environment or a credentials file (docs/export_pacs.md) and are never shown.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

from qtpy.QtCore import QEvent, Qt, Signal
from qtpy.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from recist_tool.io import pacs
from recist_tool.io.pacs.browse import SeriesHit, StudyQuery, StudySearch, parse_date

#: The result tree's columns.
COLUMNS = ("Study / series", "Date", "Description", "Instances", "Slice (mm)")
#: What the reading panel says of itself: (subject open or None, its visits, the visit under
#: review).
ReadingState = Callable[[], tuple[str | None, list[str], str]]
#: Starts reading a series as a visit: ``open_series(visit, ref, series_uid, subject)`` → whether
#: the panel started loading it.
OpenSeries = Callable[[str, str, str, str], bool]


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def study_row(study: Any) -> list[str]:
    """A study's cells: patient and accession, date, description, instances and series."""
    who = " · ".join(v for v in (study.patient_id, study.accession) if v) or study.study_uid
    n = len(study.series)
    return [who, _text(study.date), _text(study.description),
            f"{study.n_instances} ({n} series)", ""]


def series_row(series: SeriesHit) -> list[str]:
    """A series' cells: number and modality, date, description, instances, slice thickness
    (``—`` where the server does not give it)."""
    head = " ".join(v for v in (f"#{series.number}" if series.number is not None else "",
                                series.modality or "") if v) or series.series_uid
    thick = "—" if series.slice_thickness_mm is None else f"{series.slice_thickness_mm:g}"
    return [head, _text(series.date), _text(series.description), str(series.n_instances), thick]


class PacsBrowser(QWidget):
    """Search a PACS of the trial settings and open a series as a visit.

    Parameters
    ----------
    open_series : callable
        ``open_series(visit, ref, series_uid, subject)``: the panel reads the series as that
        visit of that subject (returns whether it started).
    reading_state : callable
        ``() -> (subject or None, visits, visit under review)`` of the panel.
    parent : QWidget, optional

    Attributes
    ----------
    busy : str
        What runs in the worker (``"searching"``, ``"retrieving"``), or empty.
    last_message : str
        The line the browser shows last.
    result : StudySearch or None
        The last search's answer.
    """

    #: (instances retrieved, instances of the series), emitted from the worker thread.
    progressed = Signal(int, int)

    def __init__(self, open_series: OpenSeries, reading_state: ReadingState,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._open_series, self._reading_state = open_series, reading_state
        self.busy = ""
        self.last_message = ""
        self.result: StudySearch | None = None
        self._hits: list[SeriesHit] = []
        self._cancel = threading.Event()
        self._worker: Any = None
        self.setWindowTitle("PACS series")
        self._build()
        self.progressed.connect(self._on_progress)
        self.use_settings(os.environ.get(pacs.CONFIG_ENV, ""), quiet=True)
        self.refresh()

    # --- UI ------------------------------------------------------------------------------------

    def _build(self) -> None:
        lay = QVBoxLayout(self)
        f = QFormLayout()
        row = QHBoxLayout()
        self.settings_edit = QLineEdit()
        self.settings_edit.setPlaceholderText("trial.toml with [pacs.NAME] servers")
        self.settings_btn = QPushButton("Use")
        self.settings_btn.clicked.connect(lambda: self.use_settings(self.settings_edit.text()))
        self.settings_edit.returnPressed.connect(self.settings_btn.click)
        row.addWidget(self.settings_edit, 1)
        row.addWidget(self.settings_btn)
        f.addRow("Trial settings", row)
        self.server_combo = QComboBox()
        f.addRow("Server", self.server_combo)
        self.patient_edit = QLineEdit()
        self.patient_edit.setPlaceholderText("e.g. SYN-001, SYN-* (wildcards * ?)")
        f.addRow("Patient / subject ID", self.patient_edit)
        row = QHBoxLayout()
        self.date_from_edit, self.date_to_edit = QLineEdit(), QLineEdit()
        for e in (self.date_from_edit, self.date_to_edit):
            e.setPlaceholderText("YYYY-MM-DD")
        row.addWidget(self.date_from_edit)
        row.addWidget(QLabel("to"))
        row.addWidget(self.date_to_edit)
        f.addRow("Study date", row)
        row = QHBoxLayout()
        self.modality_edit = QLineEdit("CT")
        self.modality_edit.setMaximumWidth(80)
        self.accession_edit = QLineEdit()
        row.addWidget(self.modality_edit)
        row.addWidget(QLabel("Accession"))
        row.addWidget(self.accession_edit, 1)
        f.addRow("Modality", row)
        lay.addLayout(f)
        for e in (self.patient_edit, self.date_from_edit, self.date_to_edit, self.modality_edit,
                  self.accession_edit):
            e.returnPressed.connect(self.search)
        row = QHBoxLayout()
        self.search_btn = QPushButton("Search")
        self.search_btn.clicked.connect(self.search)
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.clicked.connect(self.cancel)
        row.addWidget(self.search_btn)
        row.addWidget(self.cancel_btn)
        row.addStretch(1)
        lay.addLayout(row)

        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(list(COLUMNS))
        self.tree.setSelectionMode(QAbstractItemView.SingleSelection)
        self.tree.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.tree.header().setStretchLastSection(False)
        self.tree.itemSelectionChanged.connect(self._enable)
        self.tree.itemDoubleClicked.connect(lambda item, _col: self._double_clicked(item))
        lay.addWidget(self.tree, 1)

        row = QHBoxLayout()
        self.visit_combo = QComboBox()
        self.visit_combo.setMinimumContentsLength(6)
        self.open_btn = QPushButton("Open series as this visit")
        self.open_btn.clicked.connect(self.open_selected)
        row.addWidget(QLabel("Visit"))
        row.addWidget(self.visit_combo)
        row.addWidget(self.open_btn)
        row.addStretch(1)
        lay.addLayout(row)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.hide()
        lay.addWidget(self.progress)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextSelectableByMouse)
        lay.addWidget(self.status)
        self.resize(820, 560)
        self._enable()

    def _enable(self) -> None:
        idle = not self.busy
        for w in (self.search_btn, self.settings_btn, self.server_combo):
            w.setEnabled(idle)
        self.cancel_btn.setEnabled(bool(self.busy))
        subject, visits, _ = self._reading_state()
        self.open_btn.setEnabled(idle and self.selected() is not None and subject is not None
                                 and bool(visits))

    def say(self, text: str, error: bool = False) -> None:
        """Show one line under the results (red for an error)."""
        self.last_message = text
        self.status.setText(text)
        self.status.setStyleSheet("font-weight: bold; color: %s" % ("#d04040" if error else "#40a040"))

    def changeEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        """Take the panel's subject and visits again whenever the browser comes to the front."""
        if event.type() == QEvent.ActivationChange and self.isActiveWindow():
            self.refresh()
        super().changeEvent(event)

    def refresh(self) -> None:
        """The visits of the subject open in the panel (the visit under review chosen), and the
        subject as the patient ID searched for when none is typed."""
        subject, visits, current = self._reading_state()
        old = self.visit_combo.currentText()
        self.visit_combo.blockSignals(True)
        self.visit_combo.clear()
        self.visit_combo.addItems(visits)
        self.visit_combo.setCurrentText(current if current in visits else old)
        self.visit_combo.blockSignals(False)
        if subject and not self.patient_edit.text().strip():
            self.patient_edit.setText(subject)
        self._enable()

    # --- servers -----------------------------------------------------------------------------

    def use_settings(self, path: str, quiet: bool = False) -> bool:
        """Take the servers from this trial settings file (its ``[pacs.NAME]`` tables)."""
        from recist_tool.errors import RecistToolError

        path = path.strip()
        self.settings_edit.setText(path)
        self.server_combo.clear()
        if not path:
            if not quiet:
                self.say("name the trial settings file (trial.toml) that lists the servers",
                         error=True)
            return False
        try:
            servers = pacs.read_servers(path)
        except RecistToolError as exc:
            self.say(str(exc), error=True)
            return False
        pacs.use_settings(path)
        for name, srv in sorted(servers.items()):
            self.server_combo.addItem(name)
            self.server_combo.setItemData(self.server_combo.count() - 1,
                                          f"{srv.protocol}: {srv.address}", Qt.ToolTipRole)
        if not servers:
            self.say(f"{path}: no [pacs.NAME] server in it", error=True)
        elif not quiet:
            self.say(f"{len(servers)} server(s): {', '.join(sorted(servers))}")
        return bool(servers)

    # --- search ------------------------------------------------------------------------------

    def query(self) -> StudyQuery:
        """The search typed (dates checked here: a bad one is a message, not a search).

        Raises
        ------
        PacsError
            A date that is not ``YYYY-MM-DD``, or a query :meth:`StudyQuery.filters` refuses.
        """
        q = StudyQuery(patient_id=self.patient_edit.text().strip(),
                       date_from=parse_date(self.date_from_edit.text(), "study date from"),
                       date_to=parse_date(self.date_to_edit.text(), "study date to"),
                       modality=self.modality_edit.text().strip(),
                       accession=self.accession_edit.text().strip())
        q.filters()
        return q

    def search(self) -> bool:
        """Search the chosen server in a worker thread; the tree shows what it finds."""
        from recist_tool.errors import RecistToolError

        if self.busy:
            self.say(f"busy ({self.busy}): wait, or Cancel", error=True)
            return False
        server = self.server_combo.currentText()
        if not server:
            self.say("no server: name the trial settings that list them, then Use", error=True)
            return False
        try:
            q = self.query()
        except RecistToolError as exc:
            self.say(str(exc), error=True)
            return False
        cancel = self._cancel = threading.Event()

        def work() -> StudySearch:
            return pacs.search_studies(server, q, cancelled=cancel.is_set)

        def found(result: StudySearch) -> None:
            if cancel.is_set():
                self.say("search cancelled")
                return
            self.show_result(result)
            self.say(result.message(), error=not result.studies)

        self._run(work, "searching", f"searching PACS {server} for {q.describe()}…", found)
        return True

    def show_result(self, result: StudySearch) -> None:
        """Fill the tree: one row per study, its series under it."""
        self.result = result
        self._hits = []
        self.tree.clear()
        for study in result.studies:
            top = QTreeWidgetItem(study_row(study))
            top.setToolTip(0, f"study {study.study_uid}")
            top.setFlags(top.flags() & ~Qt.ItemIsSelectable)
            for s in study.series:
                item = QTreeWidgetItem(series_row(s))
                item.setData(0, Qt.UserRole, len(self._hits))
                item.setToolTip(0, s.ref)
                self._hits.append(s)
                top.addChild(item)
            self.tree.addTopLevelItem(top)
        self.tree.expandAll()
        header = self.tree.header()
        for i in range(len(COLUMNS)):
            header.setSectionResizeMode(i, QHeaderView.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.Stretch)
        self._enable()

    def selected(self) -> SeriesHit | None:
        """The series of the selected row (None: none, or a study's row)."""
        items = self.tree.selectedItems()
        if not items:
            return None
        key = items[0].data(0, Qt.UserRole)
        return self._hits[int(key)] if key is not None and int(key) < len(self._hits) else None

    # --- open --------------------------------------------------------------------------------

    def _double_clicked(self, item: QTreeWidgetItem) -> None:
        if item.data(0, Qt.UserRole) is not None and self.open_btn.isEnabled():
            self.open_selected()

    def open_selected(self) -> bool:
        """Retrieve the selected series into the cache (worker thread, progress, Cancel), then
        have the panel read it as the chosen visit."""
        if self.busy:
            self.say(f"busy ({self.busy}): wait, or Cancel", error=True)
            return False
        hit = self.selected()
        subject, visits, _ = self._reading_state()
        visit = self.visit_combo.currentText()
        if hit is None:
            self.say("select a series (a row under a study)", error=True)
            return False
        if subject is None or visit not in visits:
            self.say("open the subject in the reading panel first (Subject tab), then choose "
                     "the visit", error=True)
            self.refresh()
            return False
        cancel = self._cancel = threading.Event()
        ref = hit.ref

        def work() -> int:
            return pacs.prefetch(ref, progress=self.progressed.emit, cancelled=cancel.is_set)

        def retrieved(n: int) -> None:
            if cancel.is_set():
                self.say("retrieval cancelled: nothing opened")
                return
            if self._open_series(visit, ref, hit.series_uid, subject):
                self.say(f"{n} instances retrieved; the reading panel opens them as {subject} "
                         f"{visit}")
            else:
                self.say(f"{n} instances retrieved (in the cache); the reading panel did not "
                         "open them: see its message", error=True)

        self.progress.setRange(0, max(hit.n_instances, 1))
        self.progress.setValue(0)
        self.progress.setFormat("%v of %m instances")
        self._run(work, "retrieving", f"retrieving {hit.n_instances} instances of series "
                  f"{hit.description or hit.series_uid} from PACS {hit.server}…", retrieved)
        return True

    def _on_progress(self, done: int, total: int) -> None:
        if total > 0:
            self.progress.setRange(0, total)
        self.progress.setValue(min(done, self.progress.maximum()))

    def cancel(self) -> None:
        """Stop the search or retrieval under way (at the next instance or query); nothing it
        fetched of a series is kept."""
        if self.busy:
            self._cancel.set()
            self.say(f"cancelling ({self.busy})…")

    # --- worker --------------------------------------------------------------------------------

    def _run(self, fn: Callable[[], Any], task: str, message: str,
             returned: Callable[[Any], None]) -> None:
        from napari.qt.threading import thread_worker

        self.busy = task
        if task == "searching":
            self.progress.setRange(0, 0)  # a busy bar: a search has no count
        self.progress.show()
        self._enable()
        self.say(message)

        def done() -> None:
            self.busy = ""
            self._worker = None
            self.progress.hide()
            self._enable()

        worker = thread_worker(fn)(_connect={"returned": returned, "errored": self._failed,
                                             "finished": done}, _start_thread=False)
        self._worker = worker
        worker.start()

    def _failed(self, exc: BaseException) -> None:
        """One line for what went wrong (a PACS error says which server and why)."""
        from recist_tool.errors import RecistToolError

        if isinstance(exc, pacs.RetrievalCancelled):
            self.say("retrieval cancelled: nothing opened" if self.busy == "retrieving"
                     else "search cancelled")
        elif isinstance(exc, RecistToolError):
            self.say(str(exc).splitlines()[0], error=True)
        else:
            self.say(f"{self.busy or 'the task'} failed: {type(exc).__name__}", error=True)
