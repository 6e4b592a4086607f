"""The lesion panel of the RECIST reading panel (Read tab): how the reader points at a lesion (a
click or a line), the lesion under review's values, its category, organ and flags, and what is
stored from it: classify, confirm, accept or mark a proposal, discard; and, from the timepoint
table, a stored lesion renamed, reclassified or deleted before signing.

A thin Qt view over :class:`recist_tool.reading.ReadingSession`: the session checks the rules
(``overlapping``, ``check_baseline``) and stores (``add_lesion``, ``confirm``, ``mark``,
``change_lesion``, ``delete_lesion``, each audited); the lesion under review is the panel's
:class:`napari_recist._review.LesionReview`.
"""

from __future__ import annotations

from typing import Any

from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from napari_recist._canvas_input import KEYS_SHORT, KEYS_TIP
from napari_recist._proposals import fmt_mm as _fmt
from napari_recist._timepoint_table import UNCHANGED
from recist_tool.reading import CATEGORIES, ORGANS, STATES, Finding
from recist_tool.recist import Category
from recist_tool.segment.edge import describe_outline
from recist_tool.segment.unet import THIN_SLICE_MAX_MM

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


def unet_default() -> bool:
    """Whether clicks go to ``unet`` (its weights are installed): the outline is its option."""
    from recist_tool.segment import default_segmenter_name

    return default_segmenter_name() == "unet"


def finding_text(f: Finding, lesion_id: str | None) -> str:
    """The lesion under review as the panel describes it: values, how it was measured, the
    outline unet chose and the segmenter's warnings."""
    m = f.measurement
    who = lesion_id or "new lesion"
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
    return txt


class LesionPanel(QWidget):
    """'Lesion under review' and the reading keys' line.

    Parameters
    ----------
    panel : ReadingWidget
        What its actions use: ``session``, ``visit``, ``review`` (the lesion under review),
        ``proposal_list``, ``timepoints``, ``layers``, ``say``, ``guard``, ``try_call``,
        ``refresh_table``, ``refresh_proposals``, ``show_proposals``, ``align_on``,
        ``aligned_on``, ``tasks``, ``warm_up``.

    Attributes
    ----------
    click_box, line_box : QCheckBox
        A click, or a line drawn, on a CT segments the lesion there (one at a time).
    finding_label : QLabel
        The lesion under review (:func:`finding_text`).
    outline_combo, category_combo, organ_combo : QComboBox
    nodal_box, equivocal_box : QCheckBox
    lesion_edit : QLineEdit
        The id to store a new lesion under (empty: the next free one).
    rules_label : QLabel
        What storing it would break (an overlap, the baseline rules).
    add_btn, confirm_btn, discard_btn : QPushButton
        Classify and store, confirm measurement, discard.
    """

    def __init__(self, panel: Any) -> None:
        super().__init__()
        self.panel = panel
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
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
            w.currentTextChanged.connect(lambda _t: self.check_rules())
        self.nodal_box.toggled.connect(self.on_nodal)
        self.outline_combo = QComboBox()
        self.outline_combo.addItems(list(OUTLINES))
        self.outline_combo.setToolTip(
            "Where unet draws a lung lesion's outline: the LIDC consensus it learnt (hazy rims "
            "and ground glass kept), the half-contrast edge (half-way between the lesion and "
            f"the lung), or (auto) the first on slices up to {THIN_SLICE_MAX_MM:g} mm thick and "
            "the second on thicker ones; docs/segmentation.md. Lesions outside the lung are "
            "classic's either way.")
        self.outline_combo.currentTextChanged.connect(self.on_outline)
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

    # --- showing ---------------------------------------------------------------------------------

    def show_finding(self, finding: Finding, lesion_id: str | None) -> None:
        """Describe the lesion under review (:func:`finding_text`)."""
        self.finding_label.setText(finding_text(finding, lesion_id))

    def show_nodal(self, on: bool) -> None:
        """Tick or clear the nodal box without measuring anything again."""
        self.nodal_box.blockSignals(True)
        self.nodal_box.setChecked(on)
        self.nodal_box.blockSignals(False)

    def enable(self, on: bool, busy: bool) -> None:
        """The buttons usable with a subject open (``on``) and nothing running."""
        for b in (self.add_btn, self.confirm_btn, self.discard_btn):
            b.setEnabled(on and not busy)
        self.nodal_box.setEnabled(not busy)  # the flag a running segmentation was given
        self.outline_combo.setEnabled(not busy and unet_default())

    def use_outline(self, session: Any) -> None:
        """Give a new session the outline chosen (where clicks go to unet)."""
        if unet_default():
            session.use_segmenter(OUTLINES[self.outline_combo.currentText()])

    def on_outline(self, text: str) -> None:
        """The reader chose where unet draws the outline: the next clicks use it, and the lesion
        under review, if its mask is the segmenter's own, is segmented again."""
        session = self.panel.session
        if session is None:
            return
        session.use_segmenter(OUTLINES[text])
        self.panel.review.resegment(text)

    def on_nodal(self, on: bool) -> None:
        """The reader changed the nodal flag (:meth:`LesionReview.renode`)."""
        self.panel.review.renode(on)

    def check_rules(self) -> None:
        """Show what storing the lesion under review would break: an overlap with a lesion
        stored at its visit (it would be counted twice), and at baseline the baseline rules."""
        p = self.panel
        s = p.session
        if s is None or s.subject is None or not p.visit:
            return
        f = p.review.finding
        visit = f.visit if f is not None else p.visit
        lines = []
        if f is not None:
            other = p.guard(s.overlapping, f, exclude=p.review.lesion_id) or []
            if other:
                lines.append(f"⚠ overlaps {', '.join(other)} stored on {visit}: the same lesion "
                             "would be counted twice")
        cat = self.category_combo.currentText()
        if s.is_baseline(visit) and CATEGORIES.get(cat) is Category.NEW:
            lines.append("at baseline a lesion is a target or a non-target")
        elif s.is_baseline(visit):
            v = p.guard(s.check_baseline, f, cat, organ=self.organ_combo.currentText(),
                        nodal=self.nodal_box.isChecked(),
                        lesion_id=self.lesion_edit.text().strip() or None)
            lines += [x.message for x in v or ()]
        self.rules_label.setText("\n".join(lines))

    # --- storing ---------------------------------------------------------------------------------

    def _stored(self, visit: str, lesion_id: str) -> None:
        """The lesion under review was stored as ``lesion_id``: it keeps its mask label, nothing
        is under review any more and the next lesion is the reader's to flag."""
        review = self.panel.review
        review.store_label(visit, lesion_id)
        review.finding = None
        review.pending_label = 0
        review.set_finding(None)
        review.show_nodal(False, None)

    def classify(self) -> str | None:
        """Store the lesion under review as a new lesion with the chosen category (baseline rules
        checked), or a lesion without measurement (non-target present) when none is under review."""
        p = self.panel
        s, review = p.session, p.review
        if s is None:
            return None
        visit = review.finding.visit if review.finding is not None else p.visit
        res = p.guard(s.add_lesion, review.finding, self.category_combo.currentText(),
                      organ=self.organ_combo.currentText(), nodal=self.nodal_box.isChecked(),
                      lesion_id=self.lesion_edit.text().strip() or None, visit=visit,
                      equivocal=self.equivocal_box.isChecked())
        if res is None:
            self.rules_label.setText(p.last_message)
            return None
        review.lesion_id = res.lesion_id
        self._stored(visit, res.lesion_id)
        self.lesion_edit.clear()
        self.rules_label.setText("")
        review.draw_stored(visit)
        p.refresh_table()
        p.say(f"{res.lesion_id} stored as {res.category.lower()} on {visit}")
        return res.lesion_id

    def confirm(self) -> bool:
        """Store the lesion under review as the measurement of the selected (proposed or stored)
        lesion; a correction keeps the automatic value in the audit trail."""
        p = self.panel
        s, review = p.session, p.review
        f = review.finding
        if s is None or f is None:
            p.say("no lesion under review", error=True)
            return False
        prop = p.proposal_list.selected()
        lid = (review.lesion_id
               or (prop.lesion_id if prop is not None and f.visit == p.proposal_list.visit
                   else None)
               or p.timepoints.selected_lesion())
        if not lid:
            p.say("choose the lesion this measurement belongs to (table or proposals), or "
                  "classify it as a new lesion", error=True)
            return False
        if not p.try_call(s.confirm, lid, f):
            return False
        self._stored(f.visit, lid)
        review.draw_stored(f.visit)
        p.refresh_table()
        p.refresh_proposals()
        if lid == p.aligned_on:  # its position at this visit is known now
            p.align_on(lid)
        p.say(self.stored_message(lid, f))
        return True

    def stored_message(self, lesion_id: str, f: Finding) -> str:
        """What was stored, from what: the reader's own action, or the tracked proposal."""
        p = self.panel
        msg = (f"{lesion_id} stored on {f.visit}: {_fmt(f.diameter_mm, ' mm')} from "
               f"{SOURCES[f.source]} ({f.method})")
        prop = next((x for x in p.proposal_list.proposals if x.lesion_id == lesion_id), None)
        if (prop is not None and f.visit == p.proposal_list.visit and prop.finding is not None
                and not f.tracking):
            msg += (f"; the tracked proposal ({_fmt(prop.finding.diameter_mm, ' mm')}) was not "
                    "used")
        return msg

    def discard(self) -> None:
        """Drop the lesion under review (nothing is stored); its visit's stored masks are drawn
        again where its mask covered them."""
        p = self.panel
        review = p.review
        old = review.finding
        review.lesion_id = None
        review.set_finding(None)
        review.show_nodal(False, None)  # the next lesion is the reader's to flag
        self.rules_label.setText("")
        if old is not None:
            review.draw_stored(old.visit)
            p.say(f"the lesion under review on {old.visit} was discarded (nothing stored)")

    def accept_selected(self) -> bool:
        """Store the selected proposal's lesion: the lesion under review when there is one at the
        proposals' visit (the reader's last action: the proposal as selected, or the reader's
        click or correction after it), else the tracked proposal."""
        p = self.panel
        review = p.review
        prop = p.proposal_list.selected()
        if prop is None:
            p.say("select a proposed lesion", error=True)
            return False
        f = review.finding
        if f is not None and f.visit != p.proposal_list.visit:
            p.say(f"the lesion under review is on {f.visit}, the proposals are for "
                  f"{p.proposal_list.visit}: confirm, classify or discard it first", error=True)
            return False
        if f is not None:
            review.lesion_id = prop.lesion_id
            return self.confirm()
        if prop.finding is None:
            p.say(f"{prop.lesion_id}: nothing was found; click on it or mark it", error=True)
            return False
        review.finding, review.lesion_id = prop.finding, prop.lesion_id
        return self.confirm()

    def mark_selected(self, state: str) -> bool:
        """Record the selected proposal's lesion (or the selected table row) with a state."""
        p = self.panel
        s = p.session
        prop = p.proposal_list.selected()
        lid = prop.lesion_id if prop is not None else p.timepoints.selected_lesion()
        visit = p.proposal_list.visit if prop is not None else p.visit
        if s is None or not lid or not visit:
            p.say("select a lesion", error=True)
            return False
        if not p.try_call(s.mark, visit, lid, STATES[state]):
            return False
        self.discard()
        p.review.draw_stored(visit)
        p.refresh_table()
        p.refresh_proposals()
        p.say(f"{lid} on {visit}: {state}")
        return True

    # --- a stored lesion, from the timepoint table -------------------------------------------------

    def _lesion_edit_args(self) -> tuple[str, str] | None:
        """The lesion selected in the table and the reason given, or None (with a message)."""
        p = self.panel
        lid = p.timepoints.selected_lesion()
        reason = p.timepoints.change_reason_edit.text().strip()
        if p.session is None or lid is None:
            p.say("select the lesion's row in the table", error=True)
            return None
        if not reason:
            p.say(f"give a reason to change {lid} (kept in the audit trail)", error=True)
            return None
        return lid, reason

    def _after_lesion_edit(self, message: str) -> None:
        """Redraw every visit, the table and the (now outdated) proposals after a lesion was
        changed or deleted."""
        p = self.panel
        p.timepoints.clear_correction()
        p.show_proposals([], None)
        for v in p.layers:
            p.review.draw_stored(v)
        p.refresh_table()
        p.say(message)

    def change_lesion(self) -> bool:
        """Rename and / or reclassify the lesion selected in the table (before signing; the
        baseline rules are checked; audited with the reason)."""
        args = self._lesion_edit_args()
        if args is None:
            return False
        lid, reason = args
        p = self.panel
        tp = p.timepoints
        cat = tp.change_category_combo.currentText()
        new_id = tp.change_id_edit.text().strip() or None
        res = p.guard(p.session.change_lesion, lid, reason, new_id=new_id,
                      category=None if cat == UNCHANGED else cat)
        if res is None:
            return False
        p.review.rename(lid, res)
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
        p = self.panel
        if not p.try_call(p.session.delete_lesion, lid, reason):
            return False
        p.review.forget(lid)
        self._after_lesion_edit(f"{lid} deleted at every visit (audited: {reason})")
        return True
