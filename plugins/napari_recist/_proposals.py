"""The follow-up proposals of the RECIST reading panel: a thin Qt view over the
:class:`recist_tool.reading.Proposal` list of one visit.

Propose asks :meth:`recist_tool.reading.ReadingSession.propose_followup` to track the baseline
lesions into the visit under review (in a worker thread); a proposal's row selected brings its
tracked lesion under review (:class:`napari_recist._review.LesionReview`) with the visits lined
up on it. Accept and the marks store it: the lesion panel's
(:meth:`napari_recist._lesion_panel.LesionPanel.accept_selected`, ``mark_selected``), which the
panel (:mod:`napari_recist._widget`) wires to them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from qtpy.QtWidgets import (
    QGridLayout,
    QPushButton,
    QSizePolicy,
    QTableWidget,
    QVBoxLayout,
    QWidget,
)

from napari_recist._tables import cell, fit_columns
from recist_tool.reading import STATES, Proposal
from recist_tool.recist import LesionState

#: The states a proposed (followed) lesion can be marked with: the reader's words of
#: ``recist_tool.reading.STATES`` but "equivocal", which only a new lesion is.
MARKS = tuple(word for word, state in STATES.items() if state is not LesionState.EQUIVOCAL)
#: Accept and the mark buttons are laid out this many a row.
BUTTONS_PER_ROW = 3
#: The proposals table's height (pixels): its header and four rows (more scroll).
TABLE_HEIGHT = 150
#: The proposals table's columns.
COLUMNS = ("lesion", "status", "confidence", "diameter mm", "notes")


def fmt_mm(v: Any, unit: str = "") -> str:
    """A value in mm with one decimal (``-`` when there is none)."""
    return "-" if v is None else f"{float(v):.1f}{unit}"


class ProposalList(QWidget):
    """The baseline lesions proposed at one follow-up visit, and what to do with them.

    Parameters
    ----------
    panel : ReadingWidget
        What proposing and selecting use: ``session``, ``visit``, ``tasks``, ``review``,
        ``visit_layers``, ``align_on``, ``aligned_on``, ``finding_label``, ``say``.

    Attributes
    ----------
    propose_btn : QPushButton
        Track the baseline lesions into the visit under review.
    table : QTableWidget
        lesion, status (``✓ stored`` once stored), confidence, diameter, notes.
    accept_btn : QPushButton
        Store the selected proposal's lesion.
    state_btns : dict of str to QPushButton
        One button per :data:`MARKS` state.
    proposals : list of Proposal
        What is shown.
    visit : str or None
        The visit they are proposals for.
    """

    def __init__(self, panel: Any) -> None:
        super().__init__()
        self.panel = panel
        self.proposals: list[Proposal] = []
        self.visit: str | None = None
        v = QVBoxLayout(self)
        v.setContentsMargins(0, 0, 0, 0)
        self.propose_btn = QPushButton("Propose baseline lesions at this visit (tracking)")
        self.propose_btn.clicked.connect(self.propose)
        v.addWidget(self.propose_btn)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.setSelectionBehavior(QTableWidget.SelectRows)
        # four rows in sight, and no more asked of the layout (its own size hint is taller):
        # the Read tab fits 1920 x 1080 with the buttons' second row
        self.table.setMinimumHeight(TABLE_HEIGHT)
        self.table.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Ignored)
        fit_columns(self.table, stretch=COLUMNS.index("notes"))
        self.table.itemSelectionChanged.connect(self.on_selected)
        self.table.cellClicked.connect(self.on_clicked)
        v.addWidget(self.table)
        self.accept_btn = QPushButton("Accept")
        # Accept and the marks in rows of :data:`BUTTONS_PER_ROW`: six in one row made the panel
        # wider than its dock
        grid = QGridLayout()
        self.state_btns = {st: QPushButton(st) for st in MARKS}
        for i, b in enumerate([self.accept_btn, *self.state_btns.values()]):
            grid.addWidget(b, i // BUTTONS_PER_ROW, i % BUTTONS_PER_ROW)
        v.addLayout(grid)

    def show_proposals(self, proposals: Sequence[Proposal], visit: str | None,
                       stored: Mapping[str, Any]) -> None:
        """Show ``visit``'s proposals; ``stored``: that visit's stored lesions (marked ✓)."""
        self.proposals, self.visit = list(proposals), visit
        self.table.setRowCount(len(self.proposals))
        for i, p in enumerate(self.proposals):
            d = None if p.finding is None else p.finding.diameter_mm
            status = p.status + (" ✓ stored" if p.lesion_id in stored else "")
            for j, val in enumerate((p.lesion_id, status, f"{p.confidence:.2f}", fmt_mm(d),
                                     "; ".join(p.notes))):
                self.table.setItem(i, j, cell(val))

    def selected(self) -> Proposal | None:
        """The proposal of the one selected row."""
        rows = {i.row() for i in self.table.selectedItems()}
        if len(rows) != 1:
            return None
        r = rows.pop()
        return self.proposals[r] if r < len(self.proposals) else None

    def select(self, lesion_id: str) -> Proposal:
        """Select a proposal's row by lesion id (as a click in the list does)."""
        for i, p in enumerate(self.proposals):
            if p.lesion_id == lesion_id:
                self.table.selectRow(i)
                return p
        raise KeyError(lesion_id)

    # --- tracking and review ---------------------------------------------------------------------

    def propose(self) -> None:
        """Track the baseline lesions into the visit under review (worker thread)."""
        p = self.panel
        s = p.session
        if s is None or not p.visit:
            return
        visit = p.visit

        def work() -> list[Proposal]:
            return s.propose_followup(visit)

        p.tasks.run(work, "Tracking baseline lesions", f"tracking baseline lesions into "
                    f"{visit}…", lambda props: self._proposed(visit, props))

    def _proposed(self, visit: str, props: list[Proposal]) -> None:
        p = self.panel
        self.show_for(props, visit)
        p.align_on(p.aligned_on)  # tracked positions and the registration are known now
        for prop in props:
            if prop.finding is not None and prop.finding.mask is not None:
                p.visit_layers.paint(visit, p.review.label_for(visit, prop.lesion_id),
                                     prop.finding.mask.mask, prop.finding.mask.offset)
        self.refresh()
        n_found = sum(prop.status == "found" for prop in props)
        p.say(f"{visit}: {len(props)} baseline lesions proposed ({n_found} found); select one "
              "to review, accept or mark it")

    def show_for(self, proposals: Sequence[Proposal], visit: str | None) -> None:
        """Show ``visit``'s proposals, marked where the session has the lesion stored."""
        s = self.panel.session
        stored = s.stored(visit) if s is not None and visit and proposals else {}
        self.show_proposals(proposals, visit, stored)

    def refresh(self) -> None:
        """Show the proposals again (what is stored now)."""
        self.show_for(self.proposals, self.visit)

    def on_selected(self) -> None:
        """A proposal's row selected: its lesion under review, the visits lined up on it."""
        prop = self.selected()
        if prop is None:
            return
        p = self.panel
        review = p.review
        p.align_on(prop.lesion_id)
        review.lesion_id = prop.lesion_id
        review.show_nodal(prop.nodal, prop.lesion_id)
        if prop.finding is not None:
            review.set_finding(prop.finding, prop.lesion_id)
        else:
            review.set_finding(None)
            review.lesion_id = prop.lesion_id
            p.finding_label.setText(f"{prop.lesion_id}: {prop.status} — click on the lesion to "
                                    "measure it, or mark it")

    def on_clicked(self, _row: int, _column: int) -> None:
        """A click on the row already selected (no selection signal) brings its proposal under
        review again once nothing is (after a lesion was stored or discarded); a lesion under
        review is kept (the reader's click on it is not replaced by the tracked proposal)."""
        prop = self.selected()
        review = self.panel.review
        if prop is not None and review.finding is None and review.nodal_of != prop.lesion_id:
            self.on_selected()
