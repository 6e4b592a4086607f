"""``slicenet``: the tile geometry it is trained and run on, and, with the shipped weights,
large lesions from a caliper line, a box and a click."""

from __future__ import annotations

import numpy as np
import pytest

from recist_tool.segment import Prompt, get_segmenter
from recist_tool.segment.base import NoLesionError, dice
from recist_tool.segment.evaluate import reference_box, reference_line
from recist_tool.segment.slicenet import (
    TILE,
    default_weights_path,
    from_tile,
    tile_coords,
    to_tile,
)
from recist_tool.segment.synthetic import make_case
from recist_tool.segment.workflow import segment_and_measure


def test_to_tile_inverts_tile_coords() -> None:
    centre = np.array([120.3, 87.9])
    coords = tile_coords(centre, 97.0, (0.7, 0.9), angle=0.4)
    pts = coords.reshape(2, -1).T
    back = to_tile(pts, centre, 97.0, (0.7, 0.9), angle=0.4)
    ii, jj = np.meshgrid(np.arange(TILE), np.arange(TILE), indexing="ij")
    assert np.allclose(back, np.stack([ii.ravel(), jj.ravel()], 1), atol=1e-9)


def test_from_tile_puts_a_tile_disc_back_at_its_size() -> None:
    """A disc filling half the tile's side comes back on the native pixels at the size in mm
    the tile was made for, whatever the pixel spacing."""
    yy, xx = np.mgrid[:TILE, :TILE] - (TILE - 1) / 2.0
    disc = (np.hypot(yy, xx) <= TILE / 4).astype(np.float32)
    for spacing in ((0.7, 0.7), (1.2, 0.8)):
        crop, _ = from_tile(disc, (400, 400), np.array([200.0, 200.0]), 120.0, spacing)
        area_mm2 = (crop > 0.5).sum() * spacing[0] * spacing[1]
        assert area_mm2 == pytest.approx(np.pi * 30.0 ** 2, rel=0.05)


weights = pytest.mark.skipif(not default_weights_path().is_file(),
                             reason="slicenet weights (models/slicenet.pt) are not installed")


@pytest.fixture(scope="module")
def big_liver():
    """A 90 mm hypodense liver metastasis (mean radius 45 mm) on 2.5 mm slices."""
    return make_case("liver_met", 45.0, seed=4, shape=(60, 320, 320))


@weights
def test_a_large_liver_metastasis_from_a_line(big_liver) -> None:
    case = big_liver
    line = reference_line(case.volume, case.mask, np.random.default_rng(5))
    lesion, m = segment_and_measure(case.volume, Prompt(line_zyx=line), get_segmenter("slicenet"))
    assert lesion.segmenter == "slicenet" and lesion.info["from"] == "line"
    assert dice(lesion.full(), case.mask) > 0.85
    ref = reference_line(case.volume, case.mask, None)
    ref_mm = float(np.hypot(*((np.subtract(*ref))[1:] * case.volume.spacing[1:])))
    assert m.long_axis_mm == pytest.approx(ref_mm, rel=0.08)


@weights
def test_a_large_liver_metastasis_from_a_box_and_from_a_click(big_liver) -> None:
    case = big_liver
    seg = get_segmenter("slicenet")
    boxed = seg.segment(case.volume, Prompt(box_zyx=reference_box(case.volume, case.mask)))
    assert boxed.info["from"] == "box" and dice(boxed.full(), case.mask) > 0.8
    clicked = seg.segment(case.volume, Prompt.at(*case.centre_zyx))
    assert clicked.info["from"] == "click" and dice(clicked.full(), case.mask) > 0.8


@weights
def test_a_click_on_air_finds_no_lesion(big_liver) -> None:
    with pytest.raises(NoLesionError):
        get_segmenter("slicenet").segment(big_liver.volume, Prompt.at(30, 3, 3))


@weights
def test_a_click_on_homogeneous_liver_is_no_lesion() -> None:
    """A click on normal liver parenchyma (the sample trial's anatomy, lesion-free, with and
    without contrast) is refused by the default segmenter: ``classic`` grows through the whole
    organ, and ``slicenet`` finds no lesion there. Before, it stored a 104-128 mm 'lesion'."""
    from scipy import ndimage

    from recist_tool.sample_data.generate import lesion_free_volume
    from recist_tool.segment.unet import default_weights_path as unet_weights

    if not unet_weights().is_file():
        pytest.skip("no unet weights shipped in models/")
    seg = get_segmenter("unet")
    for contrast, liver_hu in ((True, 105.0), (False, 60.0)):
        v = lesion_free_volume(0.82, 2.5 if contrast else 5.0, contrast)
        smooth = ndimage.uniform_filter(np.asarray(v.array, np.float32), (1, 5, 5))
        lab, n = ndimage.label(np.abs(smooth - liver_hu) < 15)
        liver = lab == 1 + int(np.argmax(ndimage.sum(lab > 0, lab, range(1, n + 1))))
        depth = ndimage.distance_transform_edt(liver, sampling=v.spacing)
        inner = np.argwhere(depth > 0.6 * depth.max())
        for p in inner[np.random.default_rng(0).choice(len(inner), 3, replace=False)]:
            with pytest.raises(NoLesionError, match="no lesion"):
                seg.segment(v, Prompt.at(*p))
