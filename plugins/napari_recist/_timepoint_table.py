"""The timepoint table of the RECIST reading panel: a thin Qt view over a
:class:`recist_tool.reading.ReadingTable`.

Lesions × visits with the sum of diameters, the engine's % change (as the reports print it) and
the responses with their reasons, and the box where a stored lesion is renamed, reclassified or
deleted before signing. It decides nothing: the panel (:mod:`napari_recist._widget`) wires its
buttons to :class:`recist_tool.reading.ReadingSession`.
"""

from __future__ import annotations

from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTableWidget,
    QVBoxLayout,
    QWidget,
)

from napari_recist._tables import cell, fit_columns
from recist_tool.reading import CATEGORIES, ReadingTable
from recist_tool.report.view import fmt_pct

#: The category choice that keeps a stored lesion's category.
UNCHANGED = "(unchanged)"
#: The rows under the lesions' rows.
SUMMARY_ROWS = ("SOD mm", "% from baseline", "% from nadir", "target", "non-target",
                "new lesions", "overall")


class TimepointTable(QWidget):
    """Lesions × visits, SOD, % change, responses, and the stored-lesion corrections.

    Attributes
    ----------
    table : QTableWidget
        One row per lesion (its id, category, organ) and the :data:`SUMMARY_ROWS`; one column
        per visit.
    response_label : QLabel
        Each follow-up's overall response and the engine's reasons.
    change_id_edit, change_category_combo, change_reason_edit : QWidget
        The new id, the new category and the reason of a correction.
    change_btn, delete_btn : QPushButton
        Rename / reclassify and delete the lesion selected in the table.
    reading_table : ReadingTable or None
        What is shown.
    """

    def __init__(self) -> None:
        super().__init__()
        self.reading_table: ReadingTable | None = None
        v = QVBoxLayout(self)
        v.setContentsMargins(0, 0, 0, 0)
        self.table = QTableWidget(0, 0)
        self.table.setMinimumHeight(410)  # every row of a 5-lesion read without scrolling
        self.table.setEditTriggers(QTableWidget.NoEditTriggers)  # values change by measuring
        # the response text has its own scrolled space below the table (a splitter between them),
        # so a long list of reasons never runs over the table
        self.response_label = QLabel("")
        self.response_label.setWordWrap(True)
        self.response_label.setAlignment(Qt.AlignTop | Qt.AlignLeft)
        self.response_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.response_scroll = QScrollArea()
        self.response_scroll.setWidgetResizable(True)
        self.response_scroll.setWidget(self.response_label)
        self.response_scroll.setMinimumHeight(90)
        split = QSplitter(Qt.Vertical)
        split.addWidget(self.table)
        split.addWidget(self.response_scroll)
        split.setChildrenCollapsible(False)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        v.addWidget(split)
        box = QGroupBox("Correct a stored lesion before signing (select its row above)")
        f = QFormLayout(box)
        self.change_id_edit = QLineEdit()
        self.change_id_edit.setPlaceholderText("new id, to rename it (e.g. T03)")
        self.change_category_combo = QComboBox()
        self.change_category_combo.addItems([UNCHANGED, *CATEGORIES])
        self.change_reason_edit = QLineEdit()
        self.change_reason_edit.setPlaceholderText("reason (needed; kept in the audit trail)")
        row = QHBoxLayout()
        self.change_btn = QPushButton("Rename / reclassify")
        self.delete_btn = QPushButton("Delete lesion")
        row.addWidget(self.change_btn)
        row.addWidget(self.delete_btn)
        f.addRow("New id", self.change_id_edit)
        f.addRow("Category", self.change_category_combo)
        f.addRow("Reason", self.change_reason_edit)
        f.addRow(row)
        v.addWidget(box)

    def show_table(self, tab: ReadingTable) -> None:
        """Show a reading's table and its responses' reasons."""
        self.reading_table = tab
        visits = [v for v, _ in tab.visits]
        t = self.table
        t.clear()
        # lesion names in a first column (the vertical header clipped them), one column per visit
        t.setColumnCount(len(visits) + 1)
        t.setHorizontalHeaderLabels(["lesion"] + [f"{v}\n{d.isoformat()}" for v, d in tab.visits])
        fit_columns(t, stretch=0)  # the lesions' names take the width left
        t.verticalHeader().setVisible(False)
        t.setRowCount(len(tab.rows) + len(SUMMARY_ROWS))
        heads = [f"{r.lesion_id} {r.category.lower()} {r.organ}{' (node)' if r.nodal else ''}"
                 for r in tab.rows] + list(SUMMARY_ROWS)
        for i, h in enumerate(heads):
            t.setItem(i, 0, cell(h))
        for i, r in enumerate(tab.rows):
            for j, v in enumerate(visits, start=1):
                t.setItem(i, j, cell(r.cells.get(v, "")))
        n = len(tab.rows)
        for j, v in enumerate(visits, start=1):
            resp = tab.responses.get(v)
            if resp is None:
                continue
            # the engine's % change, shown as the reports show it
            pcts = (None if p is None else fmt_pct(p)
                    for p in (resp.pct_from_baseline, resp.pct_from_nadir))
            vals = [resp.sod_mm, *pcts, resp.target, resp.non_target, resp.new_lesions,
                    (resp.confirmed_overall or resp.overall or "")
                    + (" ✔ signed" if resp.status == "signed" else "")]
            for k, val in enumerate(vals):
                t.setItem(n + k, j, cell("" if val is None else str(val)))
        lines = []
        for v in visits[1:]:
            resp = tab.responses.get(v)
            if resp is None or resp.overall is None:
                continue
            lines.append(f"<b>{v}: overall {resp.confirmed_overall or resp.overall}</b> "
                         f"(target {resp.target}, non-target {resp.non_target}, new "
                         f"{resp.new_lesions})" + ("" if resp.confirmed_overall in (None, resp.overall)
                                                   else f" — computed {resp.overall}"))
            lines += [f"&nbsp;&nbsp;· {r}" for r in resp.reasons]
        self.response_label.setText("<br>".join(lines) or "no follow-up response yet")

    def response_of(self, visit: str) -> str | None:
        """The overall response shown for a visit (confirmed, else computed)."""
        tab = self.reading_table
        r = None if tab is None else tab.responses.get(visit)
        return None if r is None else (r.confirmed_overall or r.overall)

    def selected_lesion(self) -> str | None:
        """The lesion of the one selected row, None when no lesion row is selected."""
        rows = {i.row() for i in self.table.selectedItems()}
        tab = self.reading_table
        if len(rows) != 1 or tab is None:
            return None
        r = rows.pop()
        return tab.rows[r].lesion_id if r < len(tab.rows) else None

    def clear_correction(self) -> None:
        """Empty the correction box (after a correction was stored)."""
        self.change_id_edit.clear()
        self.change_category_combo.setCurrentText(UNCHANGED)
        self.change_reason_edit.clear()
