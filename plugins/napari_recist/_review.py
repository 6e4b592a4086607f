"""The lesion under review in the RECIST reading panel: what a click or a line segmented, its mask
and axes drawn, the reader's edits of them, and the mask label each lesion keeps.

A thin layer over :class:`recist_tool.reading.ReadingSession`: the session segments
(``segment_at``, ``segment_line``, ``resegment``, ``renode``) and measures (``remeasure``,
``measure_line``), in worker threads; this module only keeps which :class:`Finding` is under
review and for which lesion, and shows it through the panel's
:class:`napari_recist._visit_layers.VisitLayers` and :class:`napari_recist._lesion_panel.LesionPanel`.
Storing it is the lesion panel's (classify, confirm, discard).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from qtpy.QtCore import QTimer

from napari_recist._proposals import fmt_mm as _fmt
from recist_tool.reading import Finding
from recist_tool.recist import LesionState

#: Milliseconds after the last paint stroke on the lesion under review's mask before it is
#: measured again (:meth:`LesionReview.remeasure_now`).
REMEASURE_MS = 300


class LesionReview:
    """The lesion under review and the mask labels of the open subject's lesions.

    Parameters
    ----------
    panel : ReadingWidget
        What it shows through and asks: ``session``, ``layers``, ``visit_layers``, ``viewer``,
        ``lesion`` (the lesion panel: the nodal box, the description, the rules),
        ``proposal_list``, ``tasks``, ``say``, ``guard``, ``focus``.

    Attributes
    ----------
    finding : Finding or None
        The lesion under review.
    lesion_id : str or None
        The lesion it measures when it corrects a stored or proposed one.
    nodal_of : str or None
        The lesion whose nodal flag the lesion panel's box shows (None: the reader's own, for
        the next click).
    label_of : dict of (visit, lesion id) to int
        Each stored or proposed lesion's label in its visit's masks layer.
    pending_label : int
        The lesion under review's label (0: none painted).
    """

    def __init__(self, panel: Any) -> None:
        self.panel = panel
        self.finding: Finding | None = None
        self.lesion_id: str | None = None
        self.nodal_of: str | None = None
        self.label_of: dict[tuple[str, str], int] = {}
        self.pending_label = 0
        self._timer = QTimer(panel)
        self._timer.setSingleShot(True)
        self._timer.setInterval(REMEASURE_MS)
        self._timer.timeout.connect(self.remeasure_now)

    # --- segmenting ------------------------------------------------------------------------------

    def segment_at(self, visit: str, index: Any) -> None:
        """Segment at voxel ``index`` ``(z, y, x)`` of ``visit``, in a worker thread with
        napari's progress indicator."""
        p = self.panel
        lesion_id, nodal = self.prompt_target(visit, index)
        session = p.session

        def work() -> Finding:
            return session.segment_at(visit, index=tuple(float(v) for v in index), nodal=nodal)

        p.tasks.run(work, "Segmenting lesion", "segmenting…",
                    lambda f: self.on_segmented(f, lesion_id))

    def segment_line(self, visit: str, ends: Any) -> None:
        """Segment the lesion from a line prompt on ``visit`` (its two ends, voxel ``(z, y, x)``
        on one slice), in a worker thread with napari's progress indicator."""
        p = self.panel
        session = p.session
        lesion_id, nodal = self.prompt_target(visit, np.asarray(ends, float).mean(axis=0))

        def work() -> Finding:
            return session.segment_line(visit, ends, nodal=nodal)

        p.tasks.run(work, "Segmenting lesion from a line", "segmenting from your line…",
                    lambda f: self.on_segmented(f, lesion_id))

    def prompt_target(self, visit: str, index: Any) -> tuple[str | None, bool]:
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
        p = self.panel
        prop = p.proposal_list.selected()
        box = p.lesion.nodal_box.isChecked()
        if prop is not None and visit == p.proposal_list.visit:
            vol = p.session.volume(visit)
            if prop.reaches(vol.index_to_lps(np.asarray(index, float)), vol):
                nodal = box if self.nodal_of == prop.lesion_id else prop.nodal
                self.show_nodal(nodal, prop.lesion_id)
                return prop.lesion_id, nodal
        nodal = box and self.nodal_of is None
        self.show_nodal(nodal, None)
        return None, nodal

    def show_nodal(self, on: bool, lesion_id: str | None) -> None:
        """Show a nodal flag in the box (nothing is measured again): ``lesion_id``'s, or None
        for the reader's own choice for the next click."""
        self.panel.lesion.show_nodal(on)
        self.nodal_of = lesion_id

    def on_segmented(self, finding: Finding, lesion_id: str | None = None) -> None:
        """A click's (or line's) lesion is under review: ``lesion_id``, the selected proposal's
        lesion it lies on (:meth:`prompt_target`; Accept and Confirm store it for that lesion),
        or None, a lesion of its own (its own mask label; classify it)."""
        p = self.panel
        self.lesion_id = lesion_id
        self.set_finding(finding)
        prop = p.proposal_list.selected()
        if lesion_id is not None:
            p.say(f"{lesion_id} segmented again on {finding.visit} from your click: Accept "
                  f"or Confirm stores this measurement for {lesion_id} (not the tracked "
                  "proposal)")
        elif prop is not None and finding.visit == p.proposal_list.visit:
            p.say(f"lesion segmented on {finding.visit}, not on the selected proposal "
                  f"{prop.lesion_id}'s lesion: classify it (a new lesion), or Accept to store it "
                  f"as {prop.lesion_id}")
        else:
            p.say(f"lesion segmented on {finding.visit}: classify it, or confirm it as a "
                  "correction of the selected lesion")

    # --- showing ---------------------------------------------------------------------------------

    def set_finding(self, finding: Finding | None, lesion_id: str | None = None) -> None:
        """Make ``finding`` the lesion under review: mask in the labels layer, axes in the review
        layer, values in the panel."""
        p = self.panel
        old = self.finding
        if old is not None and old.visit in p.layers and self.pending_label \
                and self.pending_label not in self.label_of.values():
            p.visit_layers.paint(old.visit, self.pending_label)  # unconfirmed: it goes
        self.finding = finding
        if lesion_id is not None:
            self.lesion_id = lesion_id
        if finding is None:
            p.lesion.finding_label.setText("no lesion under review")
            p.visit_layers.clear_reviews()
            self.pending_label = 0
            return
        key = (finding.visit, self.lesion_id or "")
        label = self.label_of.get(key) or (max(self.label_of.values(), default=0) + 1)
        self.pending_label = label
        self.show_nodal(finding.nodal, self.lesion_id)
        if finding.mask is not None:
            p.visit_layers.paint(finding.visit, label, finding.mask.mask, finding.mask.offset)
            p.layers[finding.visit]["labels"].selected_label = label
        self.draw_review(finding)
        self.show_finding()
        p.viewer.dims.set_point(0, p.visit_layers.slice_world_z(
            finding.visit, finding.measurement.slice_index))
        a, b = (np.asarray(x, float) for x in finding.measurement.long_axis_endpoints_lps)
        p.focus(p.visit_layers.to_world(finding.visit, 0.5 * (a + b)))
        p.lesion.check_rules()

    def show_finding(self) -> None:
        """The lesion under review's values in the lesion panel."""
        if self.finding is not None:
            self.panel.lesion.show_finding(self.finding, self.lesion_id)

    def draw_review(self, finding: Finding) -> None:
        """The lesion under review's axes and their labels in its visit's review layer, the
        labels off its mask as drawn on the axes' slice."""
        vl = self.panel.visit_layers
        vl.clear_reviews(but=finding.visit)
        m = finding.measurement
        lines = [np.asarray(m.long_axis_endpoints_voxel, float)]
        labels = [f"LA {_fmt(m.long_axis_mm)} mm"]
        if m.short_axis_endpoints_voxel is not None:
            lines.append(np.asarray(m.short_axis_endpoints_voxel, float))
            labels.append(f"SA {_fmt(m.short_axis_mm)} mm")
        k = int(round(float(lines[0][0, 0])))
        masks = self.panel.layers[finding.visit]["labels"].data
        mask = (masks[k] == self.pending_label) if self.pending_label \
            and 0 <= k < masks.shape[0] else None
        vl.set_review(finding.visit, lines, labels, mask)

    # --- labels of the lesions' masks ------------------------------------------------------------

    def label_for(self, visit: str, lesion_id: str) -> int:
        """The label of a lesion in a visit's masks layer (the same lesion keeps its label, and so
        its colour, at every visit)."""
        n = self.label_of.get((visit, lesion_id))
        if n:
            return n
        taken = {k for (v, _), k in self.label_of.items() if v == visit} | {self.pending_label}
        same = [k for (_, lid), k in self.label_of.items() if lid == lesion_id and k]
        n = same[0] if same and same[0] not in taken else (
            max([*self.label_of.values(), self.pending_label], default=0) + 1)
        self.label_of[(visit, lesion_id)] = n
        return n

    def store_label(self, visit: str, lesion_id: str) -> None:
        """Give a lesion just stored from the lesion under review its label in ``visit``'s masks
        layer: its own label there if it has one, else the review's label unless another lesion
        owns it, else a new one; never another lesion's. Where the label differs from the
        review's, the review's mask is erased (:meth:`draw_stored` draws the stored one), and a
        proposal it was painted over is drawn again."""
        p = self.panel
        pending = self.pending_label
        if not pending:  # nothing under review was painted (a lesion without measurement)
            return
        owners = [(v, lid) for (v, lid), n in self.label_of.items()
                  if n == pending and lid != lesion_id]
        n = self.label_of.get((visit, lesion_id)) or (
            max(self.label_of.values()) + 1 if owners else pending)
        if n != pending:
            p.visit_layers.paint(visit, pending)
            for v, lid in owners:  # an unstored proposal keeps its tracked mask shown
                prop = next((x for x in p.proposal_list.proposals if x.lesion_id == lid), None)
                if v == visit == p.proposal_list.visit and prop is not None \
                        and prop.finding is not None and prop.finding.mask is not None:
                    p.visit_layers.paint(visit, pending, prop.finding.mask.mask,
                                         prop.finding.mask.offset)
        self.label_of[(visit, lesion_id)] = n

    def rename(self, old: str, new: str) -> None:
        """A lesion renamed keeps its label (and colour) under its new id."""
        for v, lid in list(self.label_of):
            if lid == old:
                self.label_of[(v, new)] = self.label_of.pop((v, lid))

    def forget(self, lesion_id: str) -> None:
        """A lesion deleted: its masks erased at every visit, its labels free."""
        p = self.panel
        for (v, lid), n in list(self.label_of.items()):
            if lid == lesion_id and v in p.layers:
                p.visit_layers.paint(v, n)
                del self.label_of[(v, lid)]

    def draw_masks(self, visit: str, stored: dict[str, Any]) -> None:
        """Show the stored masks of a visit in its labels layer (read from their files); a lesion
        stored without a mask (absent, too small …) has none shown."""
        from recist_tool.errors import RecistToolError
        from recist_tool.io.masks import load_mask_crop

        p = self.panel
        vol = p.session.volume(visit)
        problems = []
        for lid, m in stored.items():
            n = self.label_for(visit, lid)
            if n == self.pending_label and self.finding is not None:
                continue  # the lesion under review keeps the reader's edits
            crop, off = None, (0, 0, 0)
            if m.mask_path and m.state == LesionState.MEASURED:
                try:
                    crop, off = load_mask_crop(m.mask_path, vol)
                except RecistToolError as exc:
                    problems.append(f"{lid}: {exc}")
            p.visit_layers.paint(visit, n, crop, off)
        if problems:
            p.say(f"{visit}: stored mask not shown: " + "; ".join(problems), error=True)

    def draw_stored(self, visit: str) -> None:
        """Axes and masks of this reader's stored measurements of a visit."""
        p = self.panel
        if p.session is None or visit not in p.layers:
            return
        stored = p.session.stored(visit)
        self.draw_masks(visit, stored)
        p.visit_layers.show_axes(visit, stored, p.session.volume(visit))

    # --- the reader's edits ----------------------------------------------------------------------

    def on_paint(self, visit: str) -> None:
        """The reader painted a visit's masks: the lesion under review is measured again once the
        strokes pause (:data:`REMEASURE_MS`)."""
        if self.finding is not None and self.finding.visit == visit:
            self._timer.start()

    def remeasure_now(self) -> None:
        """Re-measure the lesion under review from its (painted / erased) label."""
        p = self.panel
        f = self.finding
        if f is None or p.session is None:
            return
        data = p.layers[f.visit]["labels"].data
        sel = data == self.pending_label
        nz = np.nonzero(sel.any(axis=(1, 2)))[0]
        if nz.size == 0:
            p.say("the mask is empty: paint the lesion or discard it", error=True)
            return
        ys = np.nonzero(sel.any(axis=(0, 2)))[0]
        xs = np.nonzero(sel.any(axis=(0, 1)))[0]
        lo = (int(nz[0]), int(ys[0]), int(xs[0]))
        crop = sel[lo[0]:nz[-1] + 1, lo[1]:ys[-1] + 1, lo[2]:xs[-1] + 1]
        new = p.guard(p.session.remeasure, f, crop, lo)
        if new is not None:
            self.finding = new
            self.draw_review(new)
            self.show_finding()
            p.lesion.check_rules()
            p.say("mask edited: re-measured (manual)")

    def on_review_edit(self, visit: str, event: Any = None) -> None:
        """The reader moved an axis end of the lesion under review: measured from the lines."""
        p = self.panel
        if str(getattr(event, "action", "changed")) != "changed":
            return
        if p.visit_layers.updating_review or p.canvas.drawing_line or self.finding is None \
                or self.finding.visit != visit or p.session is None:
            return
        data = p.visit_layers.review_lines(visit)
        if not data:
            return
        long_ = [tuple(x) for x in np.asarray(data[0], float)]
        short = [tuple(x) for x in np.asarray(data[1], float)] if len(data) > 1 else None
        k = round(long_[0][0])
        long_ = [(k, x[1], x[2]) for x in long_]
        if short is not None:
            short = [(k, x[1], x[2]) for x in short]
        new = p.guard(p.session.measure_line, visit, long_, short, coords="voxel",
                      nodal=self.finding.nodal, finding=self.finding)
        if new is not None:
            self.finding = new
            self.show_finding()
            p.lesion.check_rules()
            self.draw_review(new)  # the labels follow the moved ends
            p.say("axis end points moved: manual measurement")

    def resegment(self, text: str) -> None:
        """The reader chose where unet draws the outline (``text``, already given to the
        session): the lesion under review, if its mask is the segmenter's own, is segmented
        again in a worker thread."""
        p = self.panel
        session, finding = p.session, self.finding
        if finding is None or finding.mask is None or finding.edited or finding.tracking:
            p.say(f"outline: {text}, from the next click")
            p.warm_up(session)
            return

        def work() -> Finding:
            return session.resegment(finding)

        def returned(new: Finding) -> None:
            if self.finding is finding:  # still the lesion under review
                self.set_finding(new)
                p.say(f"outline: {text}; the lesion was segmented again")

        p.tasks.run(work, "Segmenting the lesion again", "segmenting again…", returned)

    def renode(self, on: bool) -> None:
        """The reader changed the nodal flag: the lesion under review is segmented or measured
        again under it (:meth:`ReadingSession.renode`), in a worker thread like a click."""
        p = self.panel
        finding, session = self.finding, p.session
        if finding is None or session is None or finding.nodal == on:
            p.lesion.check_rules()
            return

        def work() -> Finding:
            return session.renode(finding, on)

        def returned(new: Finding) -> None:
            if self.finding is finding:  # still the lesion under review
                self.set_finding(new)
                p.say("lymph node: measured by its short axis" if on
                      else "not a lymph node: measured by its longest diameter")
            p.lesion.check_rules()

        def errored(exc: BaseException) -> None:
            p.tasks.report_error(exc)
            if self.finding is finding:  # the box goes back to what the finding is
                p.lesion.show_nodal(finding.nodal)

        p.tasks.run(work, "Measuring the lesion again", "measuring again…", returned, errored)
