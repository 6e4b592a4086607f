"""What napari 0.9.2 and vispy make the first time a layer is added or a text drawn, made ahead
by the RECIST reading panel so that it is not made in a turn of the GUI thread the reader waits
on: the modules they import (:func:`preload_layer_modules`, in the model's warm-up worker) and
the glyphs of the panel's text (:func:`rendering_glyphs`, a few a turn once the model has
warmed). And what vispy would make again at every slice shown: :func:`keep_mesh_colour_functions`.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from typing import Any

#: Modules napari 0.9.2 and vispy import the first time a labels or shapes layer is added or drawn
#: (a labels layer's random colours need skimage.color, which imports scipy.linalg; its
#: features table pandas; the first draw PyOpenGL): 0.4-0.7 s in the GUI thread on two shared
#: cores (2026-12-04), imported beforehand in a worker thread by :func:`preload_layer_modules`.
LAZY_MODULES = ("pandas", "skimage.color", "skimage.exposure", "scipy.linalg",
                "napari.components.histogram", "OpenGL.GL", "dateutil", "zoneinfo")


def preload_layer_modules() -> None:
    """Import :data:`LAZY_MODULES` (call it in a worker thread before the first visit's layers
    are added); one that is not installed is left to napari. And fill what napari and vispy
    compute once for a process: pint's unit registry (napari's layer transforms parse its
    definitions the first time a layer is made: 0.2-0.4 s) and vispy's dash patterns (every
    labels layer's polygon overlay makes three line visuals, each computing 13 patterns, 80-150
    ms, kept in an ``lru_cache`` once computed)."""
    import importlib

    for name in LAZY_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    try:
        import pint
        from vispy.visuals.line.dash_atlas import DashAtlas
    except ImportError:
        return
    pint.get_application_registry().pixel  # noqa: B018 - parses the definitions
    DashAtlas()


#: The characters the panel's text is made of: tile labels (``"W06 CT 2024-02-26"``), axis
#: labels (``"LA 28.7 mm"``, ``"T02 LA 40.5 mm / SA 12.0 mm"``).
GLYPHS = "0123456789 .-/mABCDEFGHIJKLMNOPQRSTUVWXYZ"
#: Glyphs rendered a step by :func:`rendering_glyphs`.
GLYPHS_A_STEP = 2


def rendering_glyphs(viewer: Any, chars: str = GLYPHS) -> Iterator[None]:
    """Render the glyphs of ``chars`` into the font atlas of napari's canvas, :data:`GLYPHS_A_STEP`
    a step (a generator for :meth:`napari_recist._tasks.Tasks.queue`). napari 0.9.2 renders a
    character's glyph (Qt paints it at 256 pt, vispy computes its distance field: 5-20 ms a
    character on two shared cores, 2026-12-05) the first time a text that holds it is drawn, in
    that draw: 40-110 ms of the stalls of the tile labels' first draw and of the first click's
    axis labels. Every text of the canvas (layer text, overlays) shares one atlas; glyphs
    it holds already are left out. Nothing is done where napari's canvas has no such font
    (another napari)."""
    try:
        info = viewer.window._qt_viewer.canvas.font_info()
        font = info.font_manager.get_font(info.face)
        done = font._glyphs
    except AttributeError:
        return
    todo = [ch for ch in chars if ch not in done]
    for i in range(0, len(todo), GLYPHS_A_STEP):
        for ch in todo[i:i + GLYPHS_A_STEP]:
            font[ch]
        yield


#: Each vispy mesh's pass-through colour function, kept by :func:`keep_mesh_colour_functions`.
_COLOUR_FUNCTIONS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def keep_mesh_colour_functions() -> None:
    """Have each vispy ``MeshVisual`` keep its pass-through colour function from one data update
    to the next (once a process; nothing where vispy has no such method).

    vispy 0.17 makes that function anew at every ``set_data`` of a mesh given colours per face
    or vertex (vispy issue 2568, open), which changes its program's code: the program is parsed,
    compiled and linked again at the next draw. napari sets every shapes layer's meshes (its
    shapes and their highlights) again whenever the slice shown changes, so that with three
    visits' nine shapes layers a click on a lesion of another slice rebuilt eighteen programs in
    one draw (the first click's longest stall, 2026-12-05). The function has no variables, so
    the one kept draws the same; a mesh coloured by a colormap is left to vispy."""
    try:
        from vispy.visuals.mesh import MeshVisual
    except ImportError:
        return
    build = getattr(MeshVisual, "_build_color_transform", None)
    if build is None or getattr(build, "recist_keeps", False):
        return

    def kept(self: Any, colors: Any) -> Any:
        if colors.ndim == 2 and colors.shape[1] == 1:  # values through a colormap
            return build(self, colors)
        fun = _COLOUR_FUNCTIONS.get(self)
        if fun is None:
            fun = _COLOUR_FUNCTIONS[self] = build(self, colors)
        return fun

    kept.recist_keeps = True  # type: ignore[attr-defined]
    MeshVisual._build_color_transform = kept
