"""The panel's tables read whole at the dock's width: every header whole, long cells elided with
their whole text in a tooltip (the proposals and the timepoint table)."""

from __future__ import annotations

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QHeaderView, QTableWidget, QTableWidgetItem


def cell(text: str) -> QTableWidgetItem:
    """A read-only table cell whose tooltip is its whole text (a cell too narrow for its text
    shows it elided, "…" at the right).

    Parameters
    ----------
    text : str

    Returns
    -------
    QTableWidgetItem
    """
    item = QTableWidgetItem(text)
    if text:
        item.setToolTip(text)
    return item


def fit_columns(table: QTableWidget, stretch: int) -> None:
    """Size a table's columns so that every header reads whole: each column to its contents
    (header included) and column ``stretch`` to the room left (its long texts elided, whole in
    their tooltips, :func:`cell`); a horizontal scroll bar only when even that is too little.

    Parameters
    ----------
    table : QTableWidget
    stretch : int
        The column that takes the width left (notes, lesion names).
    """
    head = table.horizontalHeader()
    head.setSectionResizeMode(QHeaderView.ResizeToContents)
    head.setSectionResizeMode(stretch, QHeaderView.Stretch)
    head.setStretchLastSection(False)
    table.setTextElideMode(Qt.ElideRight)
    table.setWordWrap(False)
    table.setHorizontalScrollBarPolicy(Qt.ScrollBarAsNeeded)
