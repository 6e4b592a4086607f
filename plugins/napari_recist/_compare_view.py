"""The comparison controls of the RECIST reading panel: which visits are shown side by side, and
what each follow-up is lined up by (a thin Qt view over
:meth:`recist_tool.reading.ReadingSession.alignment`).

The panel (:mod:`napari_recist._widget`) applies the alignment: it shifts each visit's layers by
its offset (:meth:`napari_recist._visit_layers.VisitLayers.set_offsets`) and centres the one
camera and slider of napari's grid on the lesion's baseline position, zoomed so that a node of
:data:`NODE_MM` spans at least :data:`NODE_MIN_PX` screen pixels. A follow-up chosen here with
no whole-scan registration is registered to the baseline in a worker thread
(:meth:`napari_recist._widget.ReadingWidget.register_for_comparison`), so that it is lined up by
the registration where it has no stored or tracked position of the lesion.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from qtpy.QtWidgets import QComboBox, QFormLayout, QWidget

#: The comparison choice that shows every visit.
ALL_VISITS = "all visits"
#: A small node the comparison view must show big enough to read (mm) …
NODE_MM = 8.0
#: … across at least this many screen pixels when it centres the tiles on a lesion.
NODE_MIN_PX = 40
#: The least zoom (screen pixels per mm) of a view centred on a lesion.
READ_ZOOM = NODE_MIN_PX / NODE_MM
#: The comparison choice's tooltip.
HELP = ("Show every visit side by side, or the baseline and one follow-up in bigger tiles; "
        "choosing a lesion (table, proposals, Alt-Down / Alt-Up) centres every tile on it where "
        "that visit has it")


def pair(choice: str) -> tuple[str, str] | None:
    """The two visits of a comparison choice (``"BL and W06"`` → ``("BL", "W06")``); None for
    :data:`ALL_VISITS` or nothing."""
    if not choice or choice == ALL_VISITS:
        return None
    base, follow = choice.split(" and ", 1)
    return base, follow


class CompareView(QWidget):
    """'Show': every visit, or the baseline and one follow-up in bigger tiles; its tooltip says
    what the tiles are lined up on (the panel also shows it on its status line).

    Attributes
    ----------
    combo : QComboBox
        :data:`ALL_VISITS`, then ``"<baseline> and <follow-up>"`` for each follow-up.
    alignment_text : str
        e.g. ``"lined up on T02: W06 by its stored measurement (6.3 mm)"``.
    """

    def __init__(self) -> None:
        super().__init__()
        f = QFormLayout(self)
        f.setContentsMargins(0, 0, 0, 0)
        self.combo = QComboBox()
        self.alignment_text = ""
        self.combo.setToolTip(HELP)
        f.addRow("Show", self.combo)

    def show_choices(self, visits: Sequence[str]) -> None:
        """Offer every visit, and the first (baseline) with each other one (no signal)."""
        self.combo.blockSignals(True)
        self.combo.clear()
        self.combo.addItems([ALL_VISITS] + [f"{visits[0]} and {v}" for v in visits[1:]])
        self.combo.blockSignals(False)

    def show_alignment(self, alignment: Any, lesion_id: str | None) -> None:
        """Keep what each follow-up is lined up by (:class:`recist_tool.align.Alignment`) in
        :attr:`alignment_text` and the tooltip."""
        self.alignment_text = "lined up on " + alignment.describe(lesion_id)
        self.combo.setToolTip(f"{HELP}\n\n{self.alignment_text}")
