"""Where the reading panel draws a lesion's axes and their labels: pure geometry in a visit's
voxels ``(z, y, x)``, no napari.

A label is drawn by napari's ``upper_left`` text of an anchor (a line too short to see) placed
off the lesion: :func:`label_anchor` for a stored lesion's one label, :func:`review_label_anchors`
for the two labels of the lesion under review. Beside a finer-sliced visit napari's slider stops
between this visit's slices: a shapes layer is then sliced as finely as the slider
(:func:`finer_in_z`) and each line placed at every stop where the visit's CT shows its slice
(:func:`on_its_image_slice`). :class:`napari_recist._visit_layers.VisitLayers` draws what these
return.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def label_anchor(lines: Sequence[np.ndarray], gap: float) -> np.ndarray:
    """Where a lesion's label goes: a line too short to see, ``gap`` voxels above the top-left
    corner of its axes (voxel ``(z, y, x)`` end points on one slice). napari draws an
    ``upper_left`` anchored text just above its shape's top-left corner, so the label stands
    above the lesion, not on it.

    Examples
    --------
    >>> label_anchor([np.array([[4.0, 10, 20], [4.0, 30, 50]])], gap=2.0).tolist()
    [[4.0, 8.0, 20.0], [4.0, 8.0, 20.001]]
    """
    pts = np.concatenate([np.asarray(x, float) for x in lines])
    corner = np.array([pts[0, 0], pts[:, 1].min() - gap, pts[:, 2].min()])
    return np.stack([corner, corner + np.array([0.0, 0.0, 1e-3])])


def review_label_anchors(lines: Sequence[np.ndarray], gap: float,
                         mask: np.ndarray | None = None) -> list[np.ndarray]:
    """Where the labels of a lesion's long and short axes go, off the lesion at the ends of
    their lines: anchors (lines too short to see, voxel ``(z, y, x)``) for napari's
    ``upper_left`` text, which it draws above and right of its anchor.

    The long axis's label stands ``gap`` voxels above the lesion's top, over the upper end of
    the long axis (its left end when level); the short axis's stands ``gap`` right of the
    lesion's right edge, level with the short axis's right end or the lesion's middle,
    whichever is lower. So the first text lies wholly above the lesion and the second wholly
    right of it at any zoom, and they meet only where the lesion is drawn smaller than half a
    line of text. The lesion is ``mask`` (``(y, x)`` booleans of the lines' slice) where it has
    voxels, else the lines' own extent.

    Parameters
    ----------
    lines : sequence of ndarray
        The long axis, then the short axis (if any): ``(2, 3)`` voxel end points on one slice.
    gap : float
        Voxels between the lesion and a label.
    mask : ndarray, optional
        The lesion on the lines' slice.

    Returns
    -------
    list of ndarray
        One ``(2, 3)`` anchor a line.

    Examples
    --------
    >>> la = np.array([[4.0, 10, 20], [4.0, 30, 50]])
    >>> sa = np.array([[4.0, 25, 28], [4.0, 15, 42]])
    >>> [a[0].tolist() for a in review_label_anchors([la, sa], gap=2.0)]
    [[4.0, 8.0, 20.0], [4.0, 20.0, 52.0]]
    """
    pts = np.concatenate([np.asarray(x, float)[:, -3:] for x in lines])
    y0, x0 = pts[:, 1].min(), pts[:, 2].min()
    y1, x1 = pts[:, 1].max(), pts[:, 2].max()
    if mask is not None and np.any(mask):
        ys, xs = np.nonzero(mask)
        y0, x0 = min(y0, ys.min() - 0.5), min(x0, xs.min() - 0.5)  # voxels' edges
        y1, x1 = max(y1, ys.max() + 0.5), max(x1, xs.max() + 0.5)
    z = pts[0, 0]
    out = []
    for i, line in enumerate(lines):
        a, b = np.asarray(line, float)[:2, -3:]
        if i == 0:  # the long axis: its upper end (left when level), lifted above the lesion
            end = min((a, b), key=lambda p: (p[1], p[2]))
            corner = np.array([z, y0 - gap, end[2]])
        else:  # the short axis: its right end, beyond the lesion's right edge
            end = max((a, b), key=lambda p: (p[2], p[1]))
            corner = np.array([z, max(end[1], 0.5 * (y0 + y1)), x1 + gap])
        out.append(np.stack([corner, corner + np.array([0.0, 0.0, 1e-3])]))
    return out


def on_neighbouring_slices(lines: Sequence[np.ndarray], spacing_z: float, depth: int,
                           within_mm: float) -> tuple[list[np.ndarray], list[float]]:
    """Copies of lines (voxel ``(z, y, x)`` end points on whole slices) on the other slices
    within ``within_mm`` of their own (``spacing_z`` mm apart; those of a series of ``depth``
    slices), and each copy's fade: 1 on the next slice, less by ``spacing_z / within_mm`` a
    slice further away.

    Examples
    --------
    >>> near, fades = on_neighbouring_slices([np.array([[1.0, 2, 2], [1.0, 8, 8]])],
    ...                                      spacing_z=2.5, depth=4, within_mm=5.0)
    >>> [float(x[0, 0]) for x in near], fades
    ([0.0, 2.0, 3.0], [1.0, 1.0, 0.5])
    """
    near: list[np.ndarray] = []
    fades: list[float] = []
    n = int(within_mm // spacing_z)
    for line in lines:
        for d in (*range(-n, 0), *range(1, n + 1)):
            if 0 <= line[0, 0] + d < depth:
                near.append(line + np.array([d, 0.0, 0.0]))
                fades.append(1.0 - (abs(d) - 1) * spacing_z / within_mm)
    return near, fades


def finer_in_z(affine: np.ndarray, sub: int) -> np.ndarray:
    """A layer affine whose data z runs ``sub`` times finer than ``affine``'s."""
    return affine @ np.diag([1.0 / sub, 1.0, 1.0, 1.0])


def on_its_image_slice(lines: Sequence[np.ndarray], sub: int = 1
                       ) -> tuple[list[np.ndarray], np.ndarray]:
    """Lines (voxel ``(z, y, x)`` end points on whole slices of a visit) for a shapes layer
    sliced ``sub`` times finer than the visit (:func:`finer_in_z`), so that each is drawn at
    every slider stop where the visit's image shows its slice; and, per returned line, the index
    of the line it copies.

    napari draws a line only at the stop its slice rounds to, but shows an image's slice
    ``int(np.round(point))`` at every stop, half-way ones included (taken to the even slice).
    When a finer-sliced visit puts the slider between this visit's slices, the lines of the
    slice shown were not drawn. Each line is therefore placed at every finer stop whose point
    shows its slice.

    Examples
    --------
    >>> shown, keep = on_its_image_slice([np.array([[4.0, 1, 1], [4.0, 9, 9]]),
    ...                                   np.array([[5.0, 1, 1], [5.0, 9, 9]])], sub=2)
    >>> [float(x[0, 0]) for x in shown], keep.tolist()
    ([7.0, 8.0, 9.0, 10.0], [0, 0, 0, 1])
    """
    shown: list[np.ndarray] = []
    keep: list[int] = []
    for i, line in enumerate(lines):
        k = int(round(float(line[0, 0])))
        for m in range(sub * k - sub, sub * k + sub + 1):
            if int(np.round(m / sub)) == k:
                z = np.full((len(line), 1), float(m))
                shown.append(np.hstack([z, np.asarray(line, float)[:, 1:]]))
                keep.append(i)
    return shown, np.asarray(keep, int)
