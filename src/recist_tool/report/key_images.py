"""Key images: the axial slice of a lesion in a lesion window, its mask outline and RECIST axes.

The CT of a visit is reopened from the timepoint's ``series_path`` / ``series_uid`` with
:func:`recist_tool.io.load_volume` (one volume cached at a time: render visit by visit), the mask
from the measurement's ``mask_path`` with :func:`recist_tool.io.masks.load_mask_crop`. The slice
shown is the one the long axis lies on; the field of view is centred on the long axis, square,
3 × the long axis wide (50 – 200 mm). The axes are drawn between their stored end points (LPS, mm)
projected on that slice and labelled with the stored values. Anything missing (series, mask,
location) gives a panel that says what is missing instead of an image.

Windows: :func:`recist_tool.windows.window_for` (the presets the reading workstation offers: lung,
bone and liver lesions in their own window, everything else in the soft-tissue one).
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from recist_tool.windows import window_for, window_limits

LONG_COLOUR = "#ffd600"
SHORT_COLOUR = "#00e5ff"
OUTLINE_COLOUR = "#ff1744"


@dataclass(frozen=True)
class KeyImage:
    """One rendered key image.

    Attributes
    ----------
    png : bytes
        The image (``width`` × ``height`` pixels).
    placeholder : bool
        ``True`` when no CT is shown (``message`` says why).
    message : str or None
        What is missing or worth knowing (e.g. ``mask file missing``).
    long_px, short_px : ((x0, y0), (x1, y1)) or None
        Where the axis end points fall in the PNG (pixel columns / rows from the top left).
    slice_index : int or None
        Index of the slice shown in the series ((z, y, x) order, sorted along the normal).
    """

    png: bytes
    width: int
    height: int
    placeholder: bool
    message: str | None = None
    long_px: tuple[tuple[float, float], tuple[float, float]] | None = None
    short_px: tuple[tuple[float, float], tuple[float, float]] | None = None
    slice_index: int | None = None


class VolumeCache:
    """Keeps the last loaded CT volume (one at a time) and the last load error.

    Parameters
    ----------
    loader : callable, optional
        ``loader(path, series_uid) -> Volume`` (default: :func:`recist_tool.io.load_volume` with one
        worker process, which is fastest for a single uncompressed series).
    """

    def __init__(self, loader: Callable[[str, str | None], Any] | None = None) -> None:
        self._loader = loader or _default_loader
        self._key: tuple[str, str | None] | None = None
        self._value: Any = None
        self._error: str | None = None
        self.loads = 0

    def get(self, path: str | None, series_uid: str | None) -> tuple[Any, str | None]:
        """``(volume, None)`` or ``(None, why not)``."""
        if not path:
            return None, "CT series location not recorded"
        key = (str(path), series_uid)
        if key != self._key:
            self._key, self._value, self._error = key, None, None
            if not Path(path).exists():
                self._error = f"CT series not found: {path}"
            else:
                try:
                    self.loads += 1
                    self._value = self._loader(str(path), series_uid)
                except Exception as exc:  # noqa: BLE001 - any unreadable series becomes a panel
                    self._error = f"CT series unreadable: {path}: {exc}"
        return self._value, self._error


def _default_loader(path: str, series_uid: str | None) -> Any:
    from recist_tool.io import load_volume

    return load_volume(path, series_uid, workers=1)


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi)
    return buf.getvalue()


def placeholder(text: str, *, title: str = "", size_px: int = 256) -> KeyImage:
    """A grey panel saying ``text`` (no CT shown)."""
    fig = Figure(figsize=(size_px / 100, size_px / 100), dpi=100)
    fig.patch.set_facecolor("#eceff1")
    if title:
        fig.text(0.04, 0.95, title, fontsize=8, va="top", color="#37474f", weight="bold")
    fig.text(0.5, 0.5, "\n".join(textwrap.wrap(text, 30)), ha="center", va="center", fontsize=9,
             color="#37474f", wrap=True)
    return KeyImage(_png(fig), size_px, size_px, True, text)


def _points(ends: dict[str, Any] | None, key: str) -> np.ndarray | None:
    pts = (ends or {}).get(key)
    if not pts or len(pts) != 2:
        return None
    arr = np.asarray(pts, float)
    return arr if arr.shape == (2, 3) and np.all(np.isfinite(arr)) else None


def render_key_image(volume: Any, m: Any, *, title: str = "", size_px: int = 256,
                     mask: tuple[np.ndarray, tuple[int, int, int]] | None = None,
                     note: str | None = None) -> KeyImage:
    """Render one lesion at one visit.

    Parameters
    ----------
    volume : Volume
        The visit's CT series.
    m : MeasurementInfo
        The stored measurement (end points in ``endpoints_lps["long"/"short"]`` as LPS mm,
        values in ``long_axis_mm`` / ``short_axis_mm``).
    title : str
        Top-right label (lesion and visit).
    mask : (array, offset), optional
        Boolean mask crop and the index of its first voxel in ``volume`` (outline drawn).
    note : str, optional
        Shown at the bottom (e.g. why there is no outline).

    Returns
    -------
    KeyImage
        A placeholder when the measurement has no location on the series.
    """
    ends = m.endpoints_lps or {}
    long_lps = _points(ends, "long")
    short_lps = _points(ends, "short")
    centre_idx: np.ndarray | None = None
    k: int | None = None
    if long_lps is not None:
        long_idx = volume.lps_to_index(long_lps)
        centre_idx = long_idx.mean(axis=0)
        k = int(np.rint(centre_idx[0]))
    elif mask is not None:
        arr, off = mask
        nz = np.argwhere(arr)
        if nz.size:
            centre_idx = nz.mean(axis=0) + np.asarray(off, float)
            areas = arr.reshape(arr.shape[0], -1).sum(axis=1)
            k = int(np.argmax(areas)) + off[0]
    elif ends.get("centroid_lps"):
        centre_idx = volume.lps_to_index(np.asarray(ends["centroid_lps"], float))
        k = int(np.rint(centre_idx[0]))
    if centre_idx is None or k is None or not (0 <= k < volume.shape[0]):
        return placeholder(_no_location(m), title=title, size_px=size_px)

    dz, dy, dx = (float(s) for s in volume.spacing)
    diam = float(m.long_axis_mm) if m.long_axis_mm is not None else 20.0
    fov = float(np.clip(3.0 * diam, 50.0, 200.0))
    half = fov / 2
    cy, cx = float(centre_idx[1]), float(centre_idx[2])
    ny, nx = volume.shape[1], volume.shape[2]
    r0, r1 = max(0, int(np.floor(cy - half / dy)) - 2), min(ny, int(np.ceil(cy + half / dy)) + 3)
    c0, c1 = max(0, int(np.floor(cx - half / dx)) - 2), min(nx, int(np.ceil(cx + half / dx)) + 3)
    sl = np.asarray(volume.array[k, r0:r1, c0:c1], np.float32)
    wname, level, width = window_for(m.organ)

    def mm(row: np.ndarray | float, col: np.ndarray | float) -> tuple[Any, Any]:
        return (np.asarray(col) - cx) * dx, (np.asarray(row) - cy) * dy

    fig = Figure(figsize=(size_px / 100, size_px / 100), dpi=100)
    fig.patch.set_facecolor("black")
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    ax.set_facecolor("black")
    (x0, y0), (x1, y1) = mm(r0 - 0.5, c0 - 0.5), mm(r1 - 0.5, c1 - 0.5)
    vmin, vmax = window_limits(level, width)
    ax.imshow(sl, cmap="gray", vmin=vmin, vmax=vmax,
              extent=(x0, x1, y1, y0), interpolation="bilinear", origin="upper")
    msg = note
    if mask is not None:
        arr, off = mask
        if off[0] <= k < off[0] + arr.shape[0] and arr[k - off[0]].any():
            m2 = arr[k - off[0]].astype(np.float32)
            rows = np.arange(arr.shape[1]) + off[1]
            cols = np.arange(arr.shape[2]) + off[2]
            gx, gy = mm(rows[:, None], cols[None, :])
            ax.contour(np.broadcast_to(gx, m2.shape), np.broadcast_to(gy, m2.shape), m2,
                       levels=[0.5], colors=[OUTLINE_COLOUR], linewidths=1.0)
        else:
            msg = msg or "mask not on this slice"

    scale = size_px / fov

    def to_px(idx: np.ndarray) -> tuple[tuple[float, float], tuple[float, float]]:
        xm, ym = mm(idx[:, 1], idx[:, 2])
        p = [((float(a) + half) * scale, (float(b) + half) * scale) for a, b in zip(xm, ym, strict=True)]
        return p[0], p[1]

    long_px = short_px = None
    labels = []
    if long_lps is not None:
        long_px = to_px(volume.lps_to_index(long_lps))
        ax.plot(*mm(volume.lps_to_index(long_lps)[:, 1], volume.lps_to_index(long_lps)[:, 2]),
                color=LONG_COLOUR, linewidth=1.4, marker="+", markersize=6)
        if m.long_axis_mm is not None:
            labels.append((f"long {m.long_axis_mm} mm", LONG_COLOUR))
    if short_lps is not None:
        sidx = volume.lps_to_index(short_lps)
        short_px = to_px(sidx)
        ax.plot(*mm(sidx[:, 1], sidx[:, 2]), color=SHORT_COLOUR, linewidth=1.4, marker="+",
                markersize=6)
        if m.short_axis_mm is not None:
            labels.append((f"short {m.short_axis_mm} mm", SHORT_COLOUR))
    ax.set_xlim(-half, half)
    ax.set_ylim(half, -half)
    box = dict(facecolor="black", alpha=0.6, edgecolor="none", pad=1.5)
    for i, (text, col) in enumerate(labels):
        ax.text(0.03, 0.97 - 0.075 * i, text, transform=ax.transAxes, color=col, fontsize=7.5,
                va="top", ha="left", bbox=box, weight="bold")
    if title:
        ax.text(0.97, 0.97, title, transform=ax.transAxes, color="white", fontsize=7.5, va="top",
                ha="right", bbox=box)
    ax.text(0.03, 0.03, f"slice {k} · {wname} W{width}/L{level}", transform=ax.transAxes,
            color="white", fontsize=6.5, va="bottom", ha="left", bbox=box)
    # 10 mm scale bar
    ax.plot([half - 4 - 10, half - 4], [half - 4, half - 4], color="white", linewidth=2)
    ax.text(half - 9, half - 6, "10 mm", color="white", fontsize=6, ha="center", va="bottom")
    if msg:
        ax.text(0.5, 0.12, msg, transform=ax.transAxes, color="#ffab91", fontsize=7, ha="center",
                va="bottom", bbox=box)
    return KeyImage(_png(fig), size_px, size_px, False, msg, long_px, short_px, k)


def _no_location(m: Any) -> str:
    state = (m.state or "").upper()
    if state == "ABSENT":
        return "absent: no lesion to show"
    if state == "NOT EVALUATED":
        return "not evaluable (NE): no image"
    return f"{state.lower()}: no location on the CT recorded"


def key_image_for(cache: VolumeCache, visit: Any, m: Any, *, lesion_id: str,
                  size_px: int = 256) -> KeyImage:
    """Key image of one lesion assessment ``m`` at ``visit`` (a ``VisitView``), or a placeholder.

    A missing or unreadable series, a measurement without location, or a missing / foreign mask
    each give a visible message; never an exception.
    """
    from recist_tool.io.masks import load_mask_crop

    title = f"{lesion_id} · {visit.visit}"
    if m is None:
        return placeholder("not assessed at this visit", title=title, size_px=size_px)
    ends = m.endpoints_lps or {}
    if not (ends.get("long") or ends.get("centroid_lps") or m.mask_path):
        return placeholder(_no_location(m), title=title, size_px=size_px)
    vol, err = cache.get(visit.series_path, visit.series_uid)
    if vol is None:
        return placeholder(err or "CT series not available", title=title, size_px=size_px)
    mask = None
    note = None
    if m.mask_path:
        try:
            mask = load_mask_crop(m.mask_path, vol)
        except Exception as exc:  # noqa: BLE001 - shown on the image instead
            note = ("mask file missing" if not Path(m.mask_path).exists()
                    else f"mask not usable: {type(exc).__name__}")
    else:
        note = "no mask recorded (caliper measurement)" if ends.get("long") else "no mask recorded"
    return render_key_image(vol, m, title=title, size_px=size_px, mask=mask, note=note)


def subject_key_images(view: Any, *, cache: VolumeCache | None = None, size_px: int = 256
                       ) -> dict[tuple[str, str], KeyImage]:
    """Key images of every lesion at every visit of a ``SubjectView``.

    Rendered visit by visit so that each series is loaded once.

    Returns
    -------
    dict
        ``(lesion_id, visit) -> KeyImage``; a lesion not yet identified at a visit (a new lesion
        before it appeared) has no entry.
    """
    cache = cache or VolumeCache()
    out: dict[tuple[str, str], KeyImage] = {}
    first_seen: dict[str, int] = {}
    for i, v in enumerate(view.visits):
        for les in view.lesions:
            if (les.lesion_id, v.visit) in view.cells:
                first_seen.setdefault(les.lesion_id, i)
    for i, v in enumerate(view.visits):
        for les in view.lesions:
            if first_seen.get(les.lesion_id, len(view.visits)) > i:
                continue
            m = view.cells.get((les.lesion_id, v.visit))
            if m is None and v.read is None:
                out[(les.lesion_id, v.visit)] = placeholder(
                    "visit not read", title=f"{les.lesion_id} · {v.visit}", size_px=size_px)
                continue
            out[(les.lesion_id, v.visit)] = key_image_for(cache, v, m, lesion_id=les.lesion_id,
                                                          size_px=size_px)
    return out
