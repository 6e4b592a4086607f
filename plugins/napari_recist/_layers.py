"""Volume ↔ napari layer helpers: patient-mm placement, series summaries, window presets."""

from __future__ import annotations

from typing import Any

import numpy as np

from recist_tool.volume import Volume
from recist_tool.windows import DEFAULT_WINDOW, WINDOWS, window_limits

#: LPS (x, y, z) → napari world order (z, y, x): world coordinates are patient mm, axial display.
_LPS_TO_WORLD = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]], float)


def display_affine(volume: Volume) -> tuple[np.ndarray, bool]:
    """The layer affine mapping data ``(z, y, x)`` to world ``(z, y, x)`` LPS millimetres.

    Returns ``(affine, exact)``: exact for uniform stacks (sheared ones included, the affine is the
    volume's own); for unevenly spaced slices the mean slice step is used for display only, and
    clicks are converted with the layer's own transform (the voxel the reader sees).
    """
    if volume.is_uniform:
        return _LPS_TO_WORLD @ volume.affine, True
    nz = volume.shape[0]
    a = np.eye(4)
    step = ((volume.slice_positions[-1] - volume.slice_positions[0]) / (nz - 1) if nz > 1
            else volume.normal * volume.spacing[0])
    a[:3, 0] = step
    a[:3, 1] = volume.direction[:, 1] * volume.spacing[1]
    a[:3, 2] = volume.direction[:, 2] * volume.spacing[2]
    a[:3, 3] = volume.origin
    return _LPS_TO_WORLD @ a, False


def lps_to_world(lps: Any) -> np.ndarray:
    """LPS ``(x, y, z)`` → napari world ``(z, y, x)``."""
    return np.asarray(lps, float)[..., ::-1].copy()


def world_to_lps(world: Any) -> np.ndarray:
    """napari world ``(z, y, x)`` → LPS ``(x, y, z)``."""
    return np.asarray(world, float)[..., ::-1].copy()


def volume_summary(volume: Volume) -> dict[str, Any]:
    """What ``recist info`` shows for a series, from a loaded volume."""
    m = volume.meta
    return {
        "series_uid": (m.extra or {}).get("stack_id") or m.series_uid,
        "modality": m.modality, "series_description": m.series_description,
        "study_date": m.study_date, "n_slices": volume.shape[0],
        "shape_zyx": list(volume.shape),
        "spacing_zyx_mm": [round(float(v), 4) for v in volume.spacing],
        "slice_thickness_mm": m.slice_thickness_mm,
        "warnings": list(m.warning_codes),
        "warning_details": [w.message for w in m.warnings],
    }


def summary_text(s: dict[str, Any]) -> str:
    """One line per series, as ``recist info`` prints it (warnings included)."""
    shape = "×".join(str(v) for v in s.get("shape_zyx", []))
    sp = "×".join(f"{v:g}" for v in s.get("spacing_zyx_mm", []))
    warn = ", ".join(s.get("warnings") or []) or "-"
    return (f"{s.get('series_description') or '(no description)'} | {s.get('modality')} | "
            f"{s.get('study_date') or ''} | {s.get('n_slices')} slices | {shape} (z,y,x) | "
            f"{sp} mm | thickness {s.get('slice_thickness_mm')} | warnings: {warn}")


def image_layer(volume: Volume, name: str, **extra: Any) -> tuple[np.ndarray, dict[str, Any], str]:
    """A napari image layer data tuple placed in patient mm, in the default (soft-tissue) window."""
    aff, exact = display_affine(volume)
    summ = volume_summary(volume)
    meta = {"recist_volume": volume, "recist_info": summ, "recist_exact_affine": exact, **extra}
    return (volume.array, {"name": name, "affine": aff, "colormap": "gray",
                           "contrast_limits": window_limits(*WINDOWS[DEFAULT_WINDOW]),
                           "metadata": meta}, "image")
