"""Report figures and key images: thresholds where the engine puts them, marks where the values are,
axis lines where their end points project, no pyplot state."""

from __future__ import annotations

import io
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from matplotlib.image import imread

from recist_tool.report.key_images import (
    LONG_COLOUR,
    OUTLINE_COLOUR,
    SHORT_COLOUR,
    VolumeCache,
    key_image_for,
    placeholder,
    render_key_image,
)
from recist_tool.report.plots import (
    SodPoint,
    TrialPoint,
    colour,
    pd_threshold_mm,
    pr_threshold_mm,
    sod_figure,
    spider_figure,
    swimmer_figure,
    waterfall_figure,
)
from recist_tool.volume import Volume

D = Decimal


def test_thresholds_are_exact_decimals() -> None:
    # the engine's boundary cases (docs/recist_engine.md): 14 → 9.8 is exactly −30 %,
    # 30 → 36 is +20 % and +6 mm, 21 → 25.2 is +20 % but only +4.2 mm: PD needs 26
    assert pr_threshold_mm(D("14")) == D("9.8")
    assert pd_threshold_mm(D("30")) == D("36")
    assert pd_threshold_mm(D("21")) == D("26")
    assert pd_threshold_mm(D("0")) == D("5")


def test_sod_figure_draws_the_pr_line_and_each_visits_pd_threshold() -> None:
    pts = [SodPoint("BL", 0, D("50.0"), None, None),
           SodPoint("W06", 42, D("20.0"), D("50.0"), "PR"),
           SodPoint("W12", 84, D("26.0"), D("20.0"), "PD")]
    fig = sod_figure(pts, D("50.0"))
    ax = fig.axes[0]
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    pr = next(ln for lab, ln in lines.items() if lab.startswith("PR threshold"))
    assert set(pr.get_ydata()) == {35.0}  # 50 × 0.7
    pd = next(ln for lab, ln in lines.items() if lab.startswith("PD threshold"))
    # the threshold on the interval ending at W06 is 60 (nadir 50 × 1.2), ending at W12 25
    # (nadir 20 + 5 mm > 20 × 1.2 = 24)
    xs, ys = list(pd.get_xdata()), list(pd.get_ydata())
    assert xs[:3] == [0, 42, 84] and ys[1:3] == [60.0, 25.0]
    assert "now 25.0 mm" in pd.get_label() and "−30 %" in pr.get_label()
    sod = next(ln for ln in ax.get_lines() if len(ln.get_xdata()) == 3 and ln.get_label()[0] == "_")
    assert list(sod.get_ydata()) == [50.0, 20.0, 26.0]
    texts = " ".join(t.get_text() for t in ax.texts)
    assert "W12\n26.0 mm\nPD" in texts


def test_sod_figure_without_any_sum_says_so() -> None:
    fig = sod_figure([SodPoint("BL", 0, None, None, None)], None)
    assert any("no sum of diameters" in t.get_text() for t in fig.axes[0].texts)


def test_waterfall_bars_sorted_with_response_colours() -> None:
    bars = [("S1", D("-55.64"), "PR"), ("S2", D("-2.30"), "PD"), ("S3", D("12.00"), "SD")]
    fig = waterfall_figure(bars, not_plotted=["S4"])
    ax = fig.axes[0]
    rects = list(ax.patches)
    assert [r.get_height() for r in rects] == [12.0, -2.3, -55.64]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["S3", "S2", "S1"]
    from matplotlib.colors import to_hex
    assert [to_hex(r.get_facecolor()) for r in rects] == [colour("SD"), colour("PD"), colour("PR")]
    ys = {round(float(ln.get_ydata()[0]), 6) for ln in ax.get_lines()}
    assert {-30.0, 20.0} <= ys
    assert any("S4" in t.get_text() for t in fig.texts)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["PR", "SD", "PD"]


def test_spider_and_swimmer_marks_at_the_values() -> None:
    series = {"S1": [TrialPoint("S1", "W06", 42, D("-33.27"), "PR"),
                     TrialPoint("S1", "W12", 85, D("-55.64"), "PR")],
              "S2": [TrialPoint("S2", "W06", 41, D("-2.30"), "SD"),
                     TrialPoint("S2", "W12", 86, None, "NE")]}
    fig = spider_figure(series, {"S1": "PR", "S2": "SD"})
    lines = fig.axes[0].get_lines()
    s1 = next(ln for ln in lines if list(ln.get_xdata()) == [0, 42, 85])
    assert list(s1.get_ydata()) == [0.0, -33.27, -55.64]
    assert any(list(ln.get_xdata()) == [0, 41] for ln in lines)  # NE (no %) left out of the line
    fig = swimmer_figure({"S1": (85, series["S1"]), "S2": (86, series["S2"])},
                         {"S1": "PR", "S2": "SD"})
    ax = fig.axes[0]
    assert sorted(r.get_width() for r in ax.patches) == [85, 86]
    marks = sorted((float(ln.get_xdata()[0]), ln.get_marker()) for ln in ax.get_lines())
    assert marks == [(41.0, "o"), (42.0, "v"), (85.0, "v"), (86.0, "o")]


def test_no_pyplot_state() -> None:
    code = ("import sys\nfrom decimal import Decimal as D\n"
            "from recist_tool.report import plots, subject, trial, key_images\n"
            "from recist_tool.report.plots import figure_png, waterfall_figure\n"
            "figure_png(waterfall_figure([('S1', D('-40'), 'PR')]))\n"
            "key_images.placeholder('x')\n"
            "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'\n"
            "import matplotlib; print(matplotlib.get_backend())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


# --- key images ----------------------------------------------------------------------------------

def _phantom() -> tuple[Volume, np.ndarray]:
    """A 40 × 128 × 128 soft-tissue volume (0.8 mm pixels, 2.5 mm slices) with an elliptic lesion
    of 70 HU in 0 HU, long axis 24 mm along an oblique direction, on slices 18–22."""
    z, y, x = np.mgrid[0:40, 0:128, 0:128].astype(float)
    c = np.array([20, 60, 70])
    ang = np.deg2rad(30)
    u = ((x - c[2]) * np.cos(ang) + (y - c[1]) * np.sin(ang)) * 0.8
    v = (-(x - c[2]) * np.sin(ang) + (y - c[1]) * np.cos(ang)) * 0.8
    mask = (u / 12) ** 2 + (v / 7) ** 2 + ((z - c[0]) * 2.5 / 6) ** 2 <= 1
    arr = np.where(mask, 70, 0).astype(np.int16)
    vol = Volume.from_grid(arr, (2.5, 0.8, 0.8), origin=(-50.0, -40.0, -100.0))
    return vol, mask


def _measurement(vol: Volume, mask: np.ndarray, mask_path: str | None) -> SimpleNamespace:
    from recist_tool.measure import measure_mask

    m = measure_mask(vol, mask)
    return SimpleNamespace(
        lesion_id="T01", category="TARGET", organ="liver", nodal=False, state="MEASURED",
        long_axis_mm=D(str(round(m.long_axis_mm, 1))), short_axis_mm=D(str(round(m.short_axis_mm, 1))),
        fragments_mm=(), volume_ml=None, mask_path=mask_path, mask_sha256=None,
        endpoints_lps={"long": [list(p) for p in m.long_axis_endpoints_lps],
                       "short": [list(p) for p in m.short_axis_endpoints_lps],
                       "slice_index": int(m.slice_index)},
        segmenter=None, segmenter_version=None, method="automatic",
        diameter_mm=D(str(round(m.long_axis_mm, 1))))


def _rgb(png: bytes) -> np.ndarray:
    return (imread(io.BytesIO(png), format="png")[..., :3] * 255).round().astype(int)


def _near(img: np.ndarray, xy: tuple[float, float], hexcol: str, r: int = 2) -> bool:
    want = np.array([int(hexcol[i:i + 2], 16) for i in (1, 3, 5)])
    x, y = int(round(xy[0])), int(round(xy[1]))
    patch = img[max(0, y - r):y + r + 1, max(0, x - r):x + r + 1].reshape(-1, 3)
    return bool(np.any(np.abs(patch - want).max(axis=1) < 40))


def test_key_image_axes_lie_where_their_end_points_project(tmp_path: Path) -> None:
    from recist_tool.io.masks import save_mask

    vol, mask = _phantom()
    zs, ys, xs = np.nonzero(mask)
    lo = np.array([zs.min(), ys.min(), xs.min()])
    hi = np.array([zs.max(), ys.max(), xs.max()]) + 1
    crop = mask[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
    path, _ = save_mask(crop, vol, tmp_path / "T01.nii.gz", offset=tuple(int(v) for v in lo))
    m = _measurement(vol, mask, str(path))
    visit = SimpleNamespace(visit="BL", series_path=None, series_uid=None)
    cache = VolumeCache(loader=lambda p, uid: vol)
    visit.series_path = str(tmp_path)  # exists; the loader returns the phantom
    ki = key_image_for(cache, visit, m, lesion_id="T01", size_px=256)
    assert not ki.placeholder and ki.message is None and ki.slice_index == 20
    img = _rgb(ki.png)
    assert img.shape == (256, 256, 3) and img.std() > 20  # a real picture, not a blank panel
    # the long axis: 24 mm in a field of view of 3 × 24 = 72 mm on 256 px → ~85 px long
    (x0, y0), (x1, y1) = ki.long_px
    assert np.hypot(x1 - x0, y1 - y0) == pytest.approx(float(m.long_axis_mm) * 256 / 72, rel=0.03)
    for t in (0.25, 0.5, 0.75):
        assert _near(img, (x0 + t * (x1 - x0), y0 + t * (y1 - y0)), LONG_COLOUR)
    (a0, b0), (a1, b1) = ki.short_px
    assert _near(img, (a0 + 0.3 * (a1 - a0), b0 + 0.3 * (b1 - b0)), SHORT_COLOUR)
    # the long axis runs at 30° (x right, y down): the projection keeps the angle
    assert np.degrees(np.arctan2(abs(y1 - y0), abs(x1 - x0))) == pytest.approx(30, abs=3)
    # the mask outline passes through the axis end points' neighbourhood (edge to edge)
    assert _near(img, (x0, y0), OUTLINE_COLOUR, r=4) and _near(img, (x1, y1), OUTLINE_COLOUR, r=4)
    assert cache.loads == 0 or cache.loads == 1


def test_key_image_placeholders_say_what_is_missing(tmp_path: Path) -> None:
    vol, mask = _phantom()
    m = _measurement(vol, mask, str(tmp_path / "gone.nii.gz"))
    visit = SimpleNamespace(visit="W06", series_path=str(tmp_path / "no-series"), series_uid=None)
    ki = key_image_for(VolumeCache(), visit, m, lesion_id="T01")
    assert ki.placeholder and "CT series not found" in ki.message
    # series present, mask file gone: the CT and the axes are shown with a note
    visit.series_path = str(tmp_path)
    ki = key_image_for(VolumeCache(loader=lambda p, uid: vol), visit, m, lesion_id="T01")
    assert not ki.placeholder and ki.message == "mask file missing" and ki.long_px is not None
    ki = key_image_for(VolumeCache(), visit, None, lesion_id="T01")
    assert ki.placeholder and ki.message == "not assessed at this visit"
    absent = SimpleNamespace(**{**m.__dict__, "state": "ABSENT", "endpoints_lps": None,
                                "mask_path": None, "long_axis_mm": None})
    assert key_image_for(VolumeCache(), visit, absent, lesion_id="T01").message == \
        "absent: no lesion to show"
    ph = placeholder("hello")
    assert _rgb(ph.png).shape == (256, 256, 3)


def test_render_key_image_uses_the_lung_window() -> None:
    vol, mask = _phantom()
    m = _measurement(vol, mask, None)
    soft = _rgb(render_key_image(vol, m).png)
    lung = _rgb(render_key_image(vol, SimpleNamespace(**{**m.__dict__, "organ": "lung"})).png)
    # 0 HU background: mid-grey in a soft-tissue window (L40 W400), bright in the lung window
    assert soft[128, 20].mean() < lung[128, 20].mean() - 40
