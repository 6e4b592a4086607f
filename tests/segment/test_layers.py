"""A necrotic lesion's rim (``segment.layers``): clicked in its hypodense core, ``classic`` and
``contour`` measure the lesion to the rim's outer edge, as readers do; a lesion without a rim,
a node, and a reader's line are left as they were."""

from __future__ import annotations

import numpy as np
import pytest

from recist_tool.measure import measure_mask
from recist_tool.segment import Prompt, get_segmenter
from recist_tool.segment.base import dice
from recist_tool.segment.layers import outer_layer
from recist_tool.volume import Volume

RADIUS_MM = 24.0  # the lesion's outer radius
CORE_SHARE = 0.72  # the core's radius, a share of the lesion's (sample trial SYN-003 T04)


def _liver(core_hu: float | None, rim_hu: float = 75.0, seed: int = 0
           ) -> tuple[Volume, np.ndarray]:
    """A 48 mm liver metastasis (a core of ``core_hu`` inside a rim, or one density when None)
    in enhancing liver (105 HU) on 2.5 mm slices, with 12 HU noise, and its mask."""
    rng = np.random.default_rng(seed)
    shape, sp = (40, 160, 160), (2.5, 0.75, 0.75)
    zz, yy, xx = np.indices(shape)
    r = np.sqrt(((zz - 20) * sp[0] / 0.9) ** 2 + ((yy - 80) * sp[1]) ** 2
                + ((xx - 80) * sp[2] / 1.05) ** 2)
    img = np.full(shape, 105.0)
    img[r < RADIUS_MM] = rim_hu
    if core_hu is not None:
        img[r < CORE_SHARE * RADIUS_MM] = core_hu
    img += rng.normal(0.0, 12.0, shape)
    vol = Volume.from_grid(np.rint(img).astype(np.int16), spacing=sp)
    return vol, r < RADIUS_MM


def _long_axis(vol: Volume, lesion) -> float:
    return float(measure_mask(vol, lesion.mask, offset=lesion.offset).long_axis_mm)


@pytest.mark.parametrize("name", ["classic", "contour"])
def test_a_necrotic_metastasis_clicked_in_its_core_is_measured_to_its_rim(name: str) -> None:
    vol, truth = _liver(core_hu=30.0)
    true_la = _long_axis(vol, type("M", (), {"mask": truth, "offset": (0, 0, 0)})())
    lesion = get_segmenter(name).segment(vol, Prompt.at(20, 80, 80))
    rim = lesion.info["outer_layer"]
    assert rim["rim_hu"] == pytest.approx(75.0, abs=8.0) and rim["core_hu"] < 45.0
    assert _long_axis(vol, lesion) == pytest.approx(true_la, abs=2.5)  # core alone: 14 mm short
    assert dice(lesion.full(), truth) > 0.85


def test_no_rim_no_change() -> None:
    """A solid metastasis, a node and a reader's line keep their outline."""
    vol, truth = _liver(core_hu=None)
    solid = get_segmenter("classic").segment(vol, Prompt.at(20, 80, 80))
    assert "outer_layer" not in solid.info and dice(solid.full(), truth) > 0.85
    assert outer_layer(vol, truth, (0, 0, 0)) is None
    necrotic, _ = _liver(core_hu=30.0)
    node = get_segmenter("classic").segment(necrotic, Prompt.at(20, 80, 80), node=True)
    assert "outer_layer" not in node.info
    core_line = Prompt(line_zyx=((20, 80, 80 - 16 / 0.75), (20, 80, 80 + 16 / 0.75)))
    lined = get_segmenter("contour").segment(necrotic, core_line)
    assert "outer_layer" not in lined.info


@pytest.mark.parametrize("name", ["classic", "contour"])
def test_a_line_across_the_whole_necrotic_metastasis_measures_it_to_its_rim(name: str) -> None:
    """A caliper line from rim edge to rim edge (as a reader draws it, or as the baseline's
    line is carried to a follow-up) measures the lesion as the line does, not its core."""
    vol, truth = _liver(core_hu=30.0)
    true_la = _long_axis(vol, type("M", (), {"mask": truth, "offset": (0, 0, 0)})())
    half = RADIUS_MM * 1.05 / 0.75  # the phantom's half-width along x, in pixels
    whole_line = Prompt(line_zyx=((20, 83, 80 - half), (20, 77, 80 + half)))
    lesion = get_segmenter(name).segment(vol, whole_line)
    rim = lesion.info["outer_layer"]
    assert abs(rim["reach_with_rim_mm"] - rim["line_mm"]) < abs(rim["reach_mm"] - rim["line_mm"])
    assert _long_axis(vol, lesion) == pytest.approx(true_la, abs=2.5)  # the core: 14 mm short
    assert dice(lesion.full(), truth) > 0.85
