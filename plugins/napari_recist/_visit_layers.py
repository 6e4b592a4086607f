"""The visit layers of the RECIST reading panel: each visit's five napari layers, kept in one grid
tile, and which visit is under the mouse.

Per visit (shown side by side in napari's grid, :data:`STRIDE` layers per tile):
``<visit> CT <date>`` (image in patient mm; its name is the tile's label, drawn at the tile's
upper-left corner by napari's layer name overlay), ``<visit> masks`` (labels: one label per lesion),
``<visit> nearby`` (the stored axes faded on the slices within :data:`NEARBY_MM` of their own, read
only), ``<visit> measurements`` (stored axes, read only) and ``<visit> review`` (the axes of the lesion
under review, then the anchors of their labels, off the lesion; or a line prompt being drawn).
A thin view: it draws what it is given and answers where things are; the panel
(:mod:`napari_recist._widget`) decides what to show. Where the axes, their labels and their faded
copies go is pure geometry, in :mod:`napari_recist._axis_geometry`.

A visit may be shifted in world space (:meth:`VisitLayers.set_offsets`: the comparison view lines
each follow-up's lesion up on the baseline's, :mod:`recist_tool.align`): the shift is composed into
each of its layers' affine, so napari draws, slices and picks it shifted, and every conversion here
between world and patient coordinates (:meth:`VisitLayers.to_world`, :meth:`VisitLayers.to_lps`,
:meth:`VisitLayers.world_to_index`) takes the shift back out.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from napari_recist._axis_geometry import (
    finer_in_z,
    label_anchor,
    on_its_image_slice,
    on_neighbouring_slices,
    review_label_anchors,
)
from napari_recist._layers import display_affine, image_layer, lps_to_world, world_to_lps
from napari_recist._napari_warm_up import keep_mesh_colour_functions
from recist_tool.volume import Volume

#: Layers per visit, in the order they are stacked in a tile.
KINDS = ("image", "labels", "nearby", "stored", "review")
#: Layers per grid tile: one visit each.
STRIDE = len(KINDS)
#: Stored axes are also shown, faded, on the slices this close to their own (mm between planes).
NEARBY_MM = 10.0
#: The opacity of a stored axis on the slice next to its own, fading linearly further away.
NEARBY_OPACITY = 0.6
#: Stored axes' colour (RGBA).
AXIS_COLOUR = (0.0, 1.0, 1.0, 1.0)
#: A stored lesion's label stands this far above its axes' top (mm), off the lesion.
LABEL_GAP_MM = 3.0
#: Point size of a stored lesion's label.
LABEL_SIZE = 13
#: A label's shadow (drawn in black under it) lies this far down and right (voxels).
LABEL_SHADOW_VOX = 0.3
#: Point size of the labels of the lesion under review's axes (review layer).
REVIEW_LABEL_SIZE = 11
#: The review layer's line colour (RGBA, yellow).
REVIEW_INK = (1.0, 1.0, 0.0, 1.0)
#: Text colours of the measurements layer: a label, its shadow.
LABEL_INK, SHADOW_INK = "cyan", "black"


def make_layers(visit: str, volume: Volume, date: _dt.date | None = None) -> dict[str, Any]:
    """A visit's five napari layers (:data:`KINDS` → layer), made but not added to a viewer and
    hidden (:meth:`VisitLayers.adding` adds them, :meth:`VisitLayers.showing` shows them).
    napari's layer objects hold no Qt objects, so this may run in a worker thread, where the
    panel makes them while the series of the next visit loads: the layers' own set-up
    (transforms, the labels' colours, the shapes' text) is then not done in the GUI thread."""
    from napari.layers import Image, Labels, Shapes

    data, kw, _ = image_layer(volume, tile_label(visit, date), recist_visit=visit)
    img = Image(data, visible=False, **kw)
    label = img.name_overlay
    label.font_size, label.color = 14, "white"
    label.box, label.box_color = True, (0.0, 0.0, 0.0, 0.6)
    aff, _ = display_affine(volume)
    labels = Labels(np.zeros(volume.shape, np.uint8), name=f"{visit} masks", affine=aff,
                    opacity=0.45, visible=False)
    nearby = Shapes(ndim=3, name=f"{visit} nearby", affine=aff, edge_color="cyan",
                    edge_width=1.0, visible=False)
    stored = Shapes(ndim=3, name=f"{visit} measurements", affine=aff, edge_color="cyan",
                    edge_width=1.0, visible=False,
                    features={"label": np.array([], dtype=object),
                              "ink": np.array([], dtype=object)},
                    text={"string": "{label}", "size": LABEL_SIZE, "anchor": "upper_left",
                          "color": {"feature": "ink"}})
    review = Shapes(ndim=3, name=f"{visit} review", affine=aff, edge_color="yellow",
                    edge_width=1.5, visible=False, features={"label": np.array([], dtype=object)},
                    text={"string": "{label}", "color": "yellow", "size": REVIEW_LABEL_SIZE,
                          "anchor": "upper_left"})
    return {"image": img, "labels": labels, "nearby": nearby, "stored": stored, "review": review}


def tile_label(visit: str, date: _dt.date | None) -> str:
    """A visit's CT layer name, shown as its tile's label: ``"W06 CT 2024-02-26"``."""
    return f"{visit} CT" + (f" {date.isoformat()}" if date else "")


class VisitLayers:
    """Each visit's layers in a napari viewer.

    Parameters
    ----------
    viewer : napari.Viewer

    Attributes
    ----------
    layers : dict
        visit → {``image``, ``labels``, ``stored``, ``review``} → layer.
    updating_review : bool
        True while a review layer is being redrawn here (its data events are not the reader's).
    offsets : dict
        visit → its shift in world ``(z, y, x)`` mm (absent: none).
    """

    def __init__(self, viewer: Any) -> None:
        keep_mesh_colour_functions()
        self.viewer = viewer
        self.layers: dict[str, dict[str, Any]] = {}
        self.updating_review = False
        self.offsets: dict[str, np.ndarray] = {}
        self._base: dict[str, dict[str, np.ndarray]] = {}  # visit → kind → unshifted affine
        self._arranging = False
        self._held = False  # napari's canvas held (hold_scene)
        self._activated: bool | None = None  # napari's select-on-insert before hold_scene
        self._review_lines: dict[str, int] = {}  # visit → lines in its review layer (set_review)
        self._review_sub: dict[str, int] = {}  # visit → slider stops per slice of its review layer
        # visit → the review layer's lines and anchors as placed, and the line each copies
        self._review_placed: dict[str, tuple[list[np.ndarray], np.ndarray]] = {}
        # visit → label → a box holding all its voxels in the masks layer (None: not known, after
        # the reader's brush; found again when next needed), so that :meth:`paint` need not
        # scan the whole series for a label's old voxels in the GUI thread
        self._boxes: dict[str, dict[int, tuple[slice, ...]] | None] = {}

    # --- adding, removing, arranging ---------------------------------------------------------

    def add(self, visit: str, volume: Volume, on_paint: Callable[[str], None],
            on_review_edit: Callable[[str, Any], None], date: _dt.date | None = None) -> None:
        """Add (or replace) a visit's five layers; ``on_paint(visit)`` is called when its mask is
        painted, ``on_review_edit(visit, event)`` when its review layer's data change. The CT
        layer is named :func:`tile_label` and that name is shown in the visit's tile."""
        for _ in self.adding(visit, volume, on_paint, on_review_edit, date):
            pass
        for _ in self.showing([visit]):
            pass

    def adding(self, visit: str, volume: Volume, on_paint: Callable[[str], None],
               on_review_edit: Callable[[str, Any], None], date: _dt.date | None = None,
               made: Mapping[str, Any] | None = None) -> Iterator[None]:
        """Add (or replace) a visit's five layers hidden, one napari step at a time: it yields
        after each, so that a caller in the GUI thread can let the event loop run between them
        (napari makes each layer's visuals, list entry and controls); the visit is in
        :attr:`layers` after the last step, and :meth:`showing` shows it. ``made``: the visit's
        layers from :func:`make_layers` (made in a worker thread), else they are made here."""
        self.remove(visit)
        layers = dict(made) if made is not None else make_layers(visit, volume, date)
        for kind in KINDS:
            self.viewer.add_layer(layers[kind])
            yield
        layers["nearby"].editable = layers["stored"].editable = False  # read only
        layers["labels"].events.paint.connect(lambda _e: self._painted_by_hand(visit, on_paint))
        layers["review"].events.data.connect(lambda e: on_review_edit(visit, e))
        self._boxes[visit] = {}
        self.layers[visit] = layers
        aff, _ = display_affine(volume)
        self._base[visit] = {k: aff for k in KINDS}
        self._place(visit)

    def showing(self, visits: Sequence[str], reset_view: bool = False) -> Iterator[None]:
        """Show these visits' layers (added by :meth:`adding`), one napari step at a time: every
        CT at once first (and the whole view, ``reset_view``), then each other layer, then each
        tile label, so that napari's first draw of a layer (vispy builds its shader programs;
        for a label, vispy renders its glyphs: 450 ms for three labels in one turn, 2026-12-05)
        is a turn of its own. The CTs come together because napari's grid gives tiles to shown
        layers only and makes all its tiles anew (every shown layer's programs built again)
        whenever their number changes."""
        visits = [v for v in visits if v in self.layers]
        for v in visits:
            self.layers[v]["image"].visible = True
        if reset_view:
            self.viewer.reset_view()
        yield
        for kind in KINDS[1:]:
            for v in visits:
                if v in self.layers:  # not removed meanwhile
                    self.layers[v][kind].visible = True
                    yield
        for i, v in enumerate(visits):  # a label a turn: its first draw renders its glyphs
            if v in self.layers:
                if i:
                    yield
                self.layers[v]["image"].name_overlay.visible = True

    def remove(self, visit: str) -> None:
        """Remove a visit's layers (if shown)."""
        for layer in self._forget(visit):
            if layer in self.viewer.layers:
                self.viewer.layers.remove(layer)

    def _forget(self, visit: str) -> list[Any]:
        """Forget a visit; its layers (still in the viewer)."""
        self._base.pop(visit, None)
        self._boxes.pop(visit, None)
        self._review_sub.pop(visit, None)
        self._review_placed.pop(visit, None)
        self.offsets.pop(visit, None)
        return list(self.layers.pop(visit, {}).values())

    def clear(self) -> None:
        """Remove every visit's layers."""
        for visit in list(self.layers):
            self.remove(visit)

    def clearing(self) -> Iterator[None]:
        """:meth:`clear`, one layer a step (napari tears down each layer's visuals and
        controls): every visit is forgotten now, and the returned iterator removes its layers
        from the viewer, one per ``next``."""
        gone = [layer for visit in list(self.layers) for layer in self._forget(visit)]

        def removing() -> Iterator[None]:
            for layer in gone:
                if layer in self.viewer.layers:
                    self.viewer.layers.remove(layer)
                    yield

        return removing()

    def arrange(self, visits: Sequence[str]) -> None:
        """Keep each visit's layers together in one grid tile: napari fills a tile with
        ``stride`` consecutive layers, so the visits' layers go first, in ``visits`` order, and
        any other layer (one the reader opened before or after the panel) after them, in tiles
        of its own."""
        if self._arranging or not self.layers:
            return
        ours = [self.layers[v][k] for v in visits if v in self.layers for k in KINDS]
        ll = self.viewer.layers
        if list(ll)[:len(ours)] == ours or any(layer not in ll for layer in ours):
            return
        self._arranging = True
        try:
            # one layer at a time: napari 0.9's move_multiple fails (IndexError) when the layers
            # it moves are every layer of the viewer, as when a visit's layers were replaced
            for i, layer in enumerate(ours):
                j = ll.index(layer)
                if j != i:
                    ll.move(j, i)
        finally:
            self._arranging = False

    def hold_scene(self) -> None:
        """While a subject's layers are removed and added hidden, one a turn: stop napari's
        canvas placing layers in its scene and tiles (napari's layer-list batch,
        ``begin_batch``), and napari selecting each layer added. Each insertion and removal had
        the canvas place every layer and its overlays in napari's grid again (its look-ups grow
        with the square of the layers: 40-140 ms a layer for three visits' fifteen, and a full
        garbage collection a removal), and each selection swapped the layer controls shown.
        :meth:`release_scene` places them all once."""
        if not self._held:
            self._held = True
            ll = self.viewer.layers
            self._activated = getattr(ll, "_activate_on_insert", None)
            if self._activated is not None:
                ll._activate_on_insert = False
            ll.events.begin_batch()

    def release_scene(self) -> None:
        """Undo :meth:`hold_scene`: napari's canvas places every layer, once."""
        if self._held:
            self._held = False
            ll = self.viewer.layers
            if self._activated is not None:
                ll._activate_on_insert = self._activated
            ll.events.end_batch()

    def show_side_by_side(self, n: int | None = None) -> None:
        """Turn napari's grid on (one tile per visit) when there is more than one visit (``n``
        visits, before they are added; default: the visits here)."""
        self.viewer.canvas.grid.stride = STRIDE
        self.viewer.canvas.grid.enabled = (len(self.layers) if n is None else n) > 1

    def show_only(self, visits: Sequence[str] | None = None) -> None:
        """Show these visits' layers (their tiles; napari's grid leaves hidden ones out, so the
        shown tiles grow) and hide the others; None: every visit."""
        for v, d in self.layers.items():
            on = visits is None or v in visits
            for layer in d.values():
                layer.visible = on

    # --- shifts --------------------------------------------------------------------------------

    def set_offsets(self, offsets_lps: Mapping[str, Sequence[float]]) -> None:
        """Shift each visit's layers by its offset (LPS ``(x, y, z)`` mm; a visit not named is
        not shifted): a point of the visit at LPS ``p`` is drawn at world ``p + offset``."""
        for v in self.layers:
            off = lps_to_world(offsets_lps.get(v, (0.0, 0.0, 0.0)))
            if not np.allclose(off, self.offsets.get(v, np.zeros(3))):
                self.offsets[v] = off
                self._place(v)

    def _place(self, visit: str, kinds: Sequence[str] = KINDS) -> None:
        """Set these layers' affines: their unshifted affine after the visit's shift."""
        shift = np.eye(4)
        shift[:3, 3] = self.offsets.get(visit, np.zeros(3))
        for k in kinds:
            layer, new = self.layers[visit][k], shift @ self._base[visit][k]
            if not np.array_equal(layer.affine.affine_matrix, new):  # napari re-slices on a set
                layer.affine = new

    def to_world(self, visit: str, lps: Any) -> np.ndarray:
        """A visit's LPS ``(x, y, z)`` point → where it is drawn (world ``(z, y, x)``, shift
        included)."""
        return lps_to_world(lps) + self.offsets.get(visit, np.zeros(3))

    def to_lps(self, visit: str, world: Any) -> np.ndarray:
        """A world ``(z, y, x)`` point on a visit's tile → that visit's LPS ``(x, y, z)`` (its
        shift taken out)."""
        return world_to_lps(np.asarray(world, float)[-3:] - self.offsets.get(visit, np.zeros(3)))

    # --- where things are ---------------------------------------------------------------------

    def visit_of(self, layer: Any) -> str | None:
        """The visit a layer belongs to (None for another layer)."""
        return next((v for v, d in self.layers.items() if layer in d.values()), None)

    def ct_visit(self, layers: Any) -> str | None:
        """The visit whose CT layer is the top visible one of ``layers`` (what the reader sees
        there); None when none of them is a visit's CT."""
        ct = {id(d["image"]): v for v, d in self.layers.items()}
        for layer in reversed(list(layers)):
            if layer.visible and id(layer) in ct:
                return ct[id(layer)]
        return None

    def grid_translate(self, visit: str) -> np.ndarray:
        """A visit's tile offset in world mm (napari < 0.6 grids translate the layers)."""
        img = self.layers[visit]["image"]
        tr = np.asarray(getattr(img, "_translate_grid", np.zeros(3)), float)[-3:]
        return tr if self.viewer.canvas.grid.enabled else np.zeros(3)

    def visit_at(self, world: Any, viewbox: tuple[int, int] | None = None) -> str | None:
        """The visit shown where the reader clicked: always that of the CT layer under the mouse,
        never found from layer positions.

        In grid mode (visits side by side) it is the visit whose CT layer is on top in the tile
        under the mouse (napari's grid viewbox of the event, ``event.viewbox``, napari ≥ 0.6),
        else the visit whose CT layer's world extent (grid translate included) contains the
        point. Outside grid mode it is the visit whose CT is the top visible layer. None when
        no visit's CT is there (e.g. a tile of layers the reader opened besides the subject).
        """
        grid = self.viewer.canvas.grid
        layers = list(self.viewer.layers)
        if not grid.enabled:
            return self.ct_visit(layers)
        if viewbox is not None and hasattr(grid, "contents_at"):
            return self.ct_visit([layers[i] for i in grid.contents_at(tuple(viewbox), layers)])
        w = np.asarray(world, float)[-3:]
        for v, d in self.layers.items():
            tr = self.grid_translate(v)
            lo, hi = np.asarray(d["image"].extent.world, float)[:, -3:]
            if np.all(w[1:] >= lo[1:] + tr[1:]) and np.all(w[1:] <= hi[1:] + tr[1:]):
                return v
        return None

    def world_to_index(self, visit: str, world: Any, volume: Volume) -> np.ndarray:
        """World position (napari, ``(z, y, x)`` mm, the visit's shift included) → voxel index
        ``(z, y, x)``.

        Exact stacks use :meth:`Volume.lps_to_index` of :meth:`to_lps`; unevenly spaced ones the
        CT layer's whole transform (display affine and shift: the voxel the reader sees).
        """
        img = self.layers[visit]["image"]
        w = np.asarray(world, float)[-3:]
        if img.metadata.get("recist_exact_affine"):
            return volume.lps_to_index(self.to_lps(visit, w))
        return np.asarray(img.world_to_data(w), float)

    def slice_world_z(self, visit: str, k: int) -> float:
        """The world z (mm) of a visit's slice ``k``."""
        return float(self.layers[visit]["image"].data_to_world((float(k), 0.0, 0.0))[0])

    # --- drawing ------------------------------------------------------------------------------

    def set_window(self, limits: tuple[float, float]) -> None:
        """The same contrast limits (HU) on every visit's CT."""
        for d in self.layers.values():
            d["image"].contrast_limits = limits

    def set_review(self, visit: str, lines: Sequence[np.ndarray] = (),
                   labels: Sequence[str] = (), mask: np.ndarray | None = None) -> None:
        """Show these lines (voxel ``(z, y, x)`` end points: the long axis, then the short axis)
        in a visit's review layer, and nothing else; each line's label (``"LA 28.7 mm"``) off
        the lesion at the end of its line (:func:`review_label_anchors`: the long axis's above
        the lesion, the short axis's right of it), ``mask`` (the lesion's voxels on the lines'
        slice, ``(y, x)``) or else the lines themselves telling where the lesion is.

        The labels are drawn by anchors after the lines (lines too short to see, transparent).
        Like the stored axes (:meth:`show_axes`), the layer is sliced as finely as the viewer's
        slider and each line and anchor placed at every stop where the visit's CT shows its
        slice (:func:`on_its_image_slice`), so that they do not vanish at every other stop
        beside a finer visit. :meth:`review_lines` gives the lines alone, in the visit's voxels;
        :meth:`in_visit_voxels` takes a line drawn in the layer there."""
        layer = self.layers[visit]["review"]
        if not lines and len(layer.data) == 0:
            # empty already: napari's data set again made the layer's dims, slice and the
            # viewer's extent anew, for every visit but one at each click
            self._review_placed[visit] = ([], np.zeros(0, int))
            self._review_lines[visit] = 0
            return
        self.updating_review = True
        try:
            layer.data = []
            self._review_placed[visit] = ([], np.zeros(0, int))
            self._review_lines[visit] = len(lines)
            sub = self._sub_slices_of(visit)
            if sub != self._review_sub.get(visit, 1):  # the layer sliced as finely as the slider
                self._review_sub[visit] = sub
                self._base[visit]["review"] = finer_in_z(self._base[visit]["image"], sub)
                self._place(visit, ("review",))
            if lines:
                gap = LABEL_GAP_MM / float(self._spacing(visit))
                anchors = review_label_anchors(lines, gap, mask)[:len(labels)]
                edge = np.asarray([REVIEW_INK] * len(lines)
                                  + [(0.0, 0.0, 0.0, 0.0)] * len(anchors), float)
                text = np.array([""] * len(lines) + list(labels)[:len(anchors)], dtype=object)
                shown, keep = on_its_image_slice([*lines, *anchors], sub)
                self._review_placed[visit] = ([np.array(x) for x in shown], keep)
                layer.add_lines(shown, edge_color=edge[keep])
                layer.features = {"label": text[keep]}
                layer.refresh_text()
        finally:
            self.updating_review = False

    def review_lines(self, visit: str) -> list[np.ndarray]:
        """The lines of a visit's review layer in the visit's voxels (its axes, or a line prompt
        being drawn), without the anchors of their labels (:meth:`set_review`); of the copies
        of an axis placed at several slider stops, the one the reader moved (else the first)."""
        data = [np.asarray(x, float) for x in self.layers[visit]["review"].data]
        placed, keep = self._review_placed.get(visit, ([], np.zeros(0, int)))
        n = self._review_lines.get(visit)
        if n is None or len(data) != len(placed) or not placed:
            return [self.in_visit_voxels(visit, x) for x in data]
        out = []
        for i in range(n):
            copies = [j for j in np.nonzero(keep == i)[0]]
            moved = [j for j in copies if not np.allclose(data[j], placed[j])]
            line = self.in_visit_voxels(visit, data[(moved or copies)[0]])
            line[:, 0] = np.round(line[:, 0])  # the slice its stop shows (on_its_image_slice)
            out.append(line)
        return out

    def in_visit_voxels(self, visit: str, line: Any) -> np.ndarray:
        """A line of a visit's review layer (its data, sliced as finely as the slider) → the
        visit's voxel ``(z, y, x)`` end points (z half-way between two slices at a half-way
        stop: the CT shows ``np.round`` of it there)."""
        out = np.array(np.asarray(line, float)[:, -3:])
        out[:, 0] /= self._review_sub.get(visit, 1)
        return out

    def _sub_slices_of(self, visit: str) -> int:
        """:meth:`_sub_slices` of a visit's CT (1 when unknown)."""
        vol = self.layers[visit]["image"].metadata.get("recist_volume")
        return self._sub_slices(vol) if vol is not None else 1

    def _spacing(self, visit: str) -> float:
        """A visit's in-plane pixel spacing (mm; its CT's, 1 when unknown)."""
        vol = self.layers[visit]["image"].metadata.get("recist_volume")
        return float(vol.spacing[1]) if vol is not None else 1.0

    def clear_reviews(self, but: str | None = None) -> None:
        """Empty every visit's review layer (but ``but``'s)."""
        for v in self.layers:
            if v != but:
                self.set_review(v)

    def show_axes(self, visit: str, stored: Mapping[str, Any], volume: Volume) -> None:
        """Show stored measurements' long and short axes in a visit's measurements layer, each
        lesion labelled once (``"T02 LA 40.5 mm"``; a node ``"T03 LA 17.0 / SA 12.0 mm"``) just
        above its axes' top-left corner, off the lesion (:func:`label_anchor`); and the same lines
        faded on the slices within :data:`NEARBY_MM` of their own in its nearby layer (opacity
        :data:`NEARBY_OPACITY` on the next slice, less further away)."""
        lines: list[np.ndarray] = []
        anchors: list[np.ndarray] = []
        labels: list[str] = []
        for lid, m in stored.items():
            ends = m.endpoints_lps or {}
            own = [volume.lps_to_index(np.asarray(ends[key], float))
                   for key in ("long", "short") if ends.get(key)]
            if not own:
                continue
            for idx in own:
                idx[:, 0] = np.round(own[0][0, 0])
            lines += own
            anchors.append(label_anchor(own, LABEL_GAP_MM / float(volume.spacing[1])))
            labels.append(f"{lid} LA {m.long_axis_mm}"
                          + (f" / SA {m.short_axis_mm}" if m.nodal else "") + " mm")
        sub = self._sub_slices(volume)
        finer = finer_in_z(display_affine(volume)[0], sub)
        if not np.allclose(finer, self._base[visit]["stored"]):  # napari redraws on a new affine
            self._base[visit].update(stored=finer, nearby=finer)
            self._place(visit, ("stored", "nearby"))
        layer = self.layers[visit]["stored"]
        if len(layer.data) or lines:
            layer.data = []
        if lines:
            # each label twice: black, a little down and right, under the cyan one (a shadow
            # that keeps it readable on light tissue)
            shadows = [a + np.array([0.0, LABEL_SHADOW_VOX, LABEL_SHADOW_VOX]) for a in anchors]
            shown, keep = on_its_image_slice(lines + shadows + anchors, sub)
            n = len(lines)
            edge = np.array([AXIS_COLOUR] * n + [(0.0, 0.0, 0.0, 0.0)] * 2 * len(anchors))
            text = np.array([""] * n + labels + labels, dtype=object)
            ink = np.array([LABEL_INK] * n + [SHADOW_INK] * len(anchors)
                           + [LABEL_INK] * len(anchors), dtype=object)
            layer.add_lines(shown, edge_color=edge[keep])
            layer.features = {"label": text[keep], "ink": ink[keep]}
            layer.refresh_text()
        near, fades = on_neighbouring_slices(lines, float(volume.spacing[0]), volume.shape[0],
                                             NEARBY_MM)
        colours = [(*AXIS_COLOUR[:3], NEARBY_OPACITY * f) for f in fades]
        layer = self.layers[visit]["nearby"]
        if len(layer.data) or near:
            layer.data = []
        if near:
            shown, keep = on_its_image_slice(near, sub)
            layer.add_lines(shown, edge_color=np.asarray(colours)[keep])

    def _sub_slices(self, volume: Volume) -> int:
        """How many steps of the viewer's slider one slice of ``volume`` spans (2 for a 2.5 mm
        visit beside a 1.25 mm one; at least 1)."""
        step = float(self.viewer.dims.range[0].step)
        return max(1, int(round(float(volume.spacing[0]) / step))) if step > 0 else 1

    def paint(self, visit: str, label: int, crop: np.ndarray | None = None,
              offset: Sequence[int] = (0, 0, 0)) -> None:
        """Give ``label`` to the voxels of a mask crop (at ``offset``) in a visit's masks layer,
        and to no others (no crop: the label is erased). The label's old voxels are looked for
        in the box that holds them (:meth:`label_box`), not in the whole series. napari redraws
        the slice shown; the layer's extent (unchanged) and its thumbnail in the layer list
        are left as they are (each made the viewer recompute every layer's extent, and the
        layer list repaint, in the GUI thread)."""
        lab = self.layers[visit]["labels"]
        box = self.label_box(visit, label)
        if box is not None:
            old = lab.data[box]
            old[old == label] = 0
        boxes = self._boxes.get(visit)
        if boxes is not None:
            boxes.pop(label, None)
        if crop is not None:
            sl = tuple(slice(o, o + k) for o, k in zip(offset, crop.shape, strict=True))
            lab.data[sl][np.asarray(crop, bool)] = label
            if boxes is not None:
                boxes[label] = sl
        lab.refresh(thumbnail=False, extent=False, highlight=False)

    def label_box(self, visit: str, label: int) -> tuple[slice, ...] | None:
        """Slices of a visit's masks layer that hold every voxel of ``label`` (None: it has
        none). Kept as masks are painted here; after the reader's brush, found again from the
        whole layer once (:func:`scipy.ndimage.find_objects`)."""
        if self._boxes.get(visit) is None:
            from scipy import ndimage

            found = ndimage.find_objects(self.layers[visit]["labels"].data)
            self._boxes[visit] = {i + 1: b for i, b in enumerate(found) if b is not None}
        boxes = self._boxes[visit]
        assert boxes is not None
        return boxes.get(label)

    def _painted_by_hand(self, visit: str, on_paint: Callable[[str], None]) -> None:
        """The reader painted or erased in a visit's masks layer: its labels' boxes are no longer
        known (:meth:`label_box`)."""
        self._boxes[visit] = None
        on_paint(visit)

