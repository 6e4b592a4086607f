"""The comparison view of the RECIST reading panel: which visits are shown side by side, and what
each follow-up is lined up by (a thin Qt view over
:meth:`recist_tool.reading.ReadingSession.alignment`).

It applies the alignment (:meth:`CompareView.align_on`): each visit's layers shifted by its
offset (:meth:`napari_recist._visit_layers.VisitLayers.set_offsets`) and the one camera and
slider of napari's grid centred on the lesion's baseline position, zoomed so that a node of
:data:`NODE_MM` spans at least :data:`NODE_MIN_PX` screen pixels. A follow-up chosen here with
no whole-scan registration is registered to the baseline in a worker thread
(:meth:`CompareView.register`), so that it is lined up by the registration where it has no
stored or tracked position of the lesion.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from qtpy.QtWidgets import QComboBox, QFormLayout, QWidget

from napari_recist._layers import lps_to_world

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

    Parameters
    ----------
    panel : ReadingWidget
        What it shows and asks: ``session``, ``layers``, ``visit_layers``, ``visit`` and
        ``visit_combo``, ``guard``, ``say``, ``alive``, ``focus``.

    Attributes
    ----------
    combo : QComboBox
        :data:`ALL_VISITS`, then ``"<baseline> and <follow-up>"`` for each follow-up.
    alignment_text : str
        e.g. ``"lined up on T02: W06 by its stored measurement (6.3 mm)"``.
    aligned_on : str or None
        The lesion the visits are lined up on.
    registering : dict of str to worker
        Follow-up → the worker registering it to the baseline.
    """

    def __init__(self, panel: Any) -> None:
        super().__init__()
        self.panel = panel
        self.aligned_on: str | None = None
        self.registering: dict[str, Any] = {}
        f = QFormLayout(self)
        f.setContentsMargins(0, 0, 0, 0)
        self.combo = QComboBox()
        self.alignment_text = ""
        self.combo.setToolTip(HELP)
        self.combo.currentTextChanged.connect(self.on_choice)
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

    def on_choice(self, choice: str) -> None:
        """Show every visit, or the baseline and one follow-up (bigger tiles); the visit under
        review follows the follow-up chosen."""
        p = self.panel
        if not choice or not p.layers:
            return
        two = pair(choice)
        if two is None:
            p.visit_layers.show_only(None)
            p.say("every visit side by side")
            return
        base, follow = two
        p.visit_layers.show_only([base, follow])
        if p.visit not in (base, follow):
            p.visit_combo.setCurrentText(follow)
        p.say(f"{base} and {follow} side by side")
        self.register(follow)

    def register(self, visit: str) -> None:
        """Register a follow-up to the baseline in a worker thread (napari's progress; the panel
        stays usable) when nothing has (:meth:`ReadingSession.registration_job`), so that the
        comparison view lines it up by the registration where it has no stored or tracked
        position of the lesion (or no lesion is chosen), instead of by raw patient millimetres:
        once it ends the visits are lined up again (:meth:`align_on`, the view left where it
        is). :attr:`registering` holds the running workers."""
        from napari.qt.threading import thread_worker

        p = self.panel
        s = p.session
        if s is None or s.subject is None or visit in self.registering \
                or s.is_baseline(visit) or s.has_registration(visit):
            return
        job = p.guard(s.registration_job, visit)
        if job is None:
            return
        subject = s.subject

        def registered(_reg: Any) -> None:
            if not p.alive() or p.session is not s or s.subject != subject:
                return
            before = self.alignment_text
            self.align_on(self.aligned_on, move=False)
            if self.alignment_text != before:
                p.say(f"{visit} registered to the baseline: {self.alignment_text}")

        def failed(exc: BaseException) -> None:
            if p.alive():
                p.say(f"{visit} could not be registered to the baseline ({exc}): it is lined "
                      "up by stored or tracked positions only", error=True)

        def ended() -> None:
            self.registering.pop(visit, None)

        worker = thread_worker(job, progress={"total": 0,
                                              "desc": f"Registering {visit} to the baseline"})(
            _connect={"returned": registered, "errored": failed, "finished": ended},
            _start_thread=False)
        self.registering[visit] = worker
        worker.start()

    def align_on(self, lesion_id: str | None, move: bool = True) -> None:
        """Line the visits up on a lesion (:meth:`ReadingSession.alignment`): each visit's
        layers shifted so that its lesion lies where the baseline's does, and every tile
        centred there (one slider step then moves every tile by the same distance from its
        lesion), zoomed so that an 8 mm node spans at least 40 screen pixels
        (:data:`READ_ZOOM`); None: the whole scans lined up by
        their registration, if there is one, and the view left where it is. ``move`` False:
        the shifts only, the view left where it is."""
        p = self.panel
        s = p.session
        if s is None or s.subject is None or not p.layers:
            return
        alignment = p.guard(s.alignment, lesion_id)
        if alignment is None:
            return
        self.aligned_on = lesion_id if alignment.anchor_lps is not None else None
        p.visit_layers.set_offsets(alignment.offsets)
        self.show_alignment(alignment, self.aligned_on)
        if alignment.anchor_lps is not None and move:
            p.focus(lps_to_world(alignment.anchor_lps), field_mm=120.0, min_zoom=READ_ZOOM)
            p.say(self.alignment_text)
