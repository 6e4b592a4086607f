"""Prompt (voxel / LPS seeds) and LesionMask."""

from __future__ import annotations

import numpy as np
import pytest

from recist_tool.errors import SegmentationError
from recist_tool.segment import LesionMask, NoLesionError, Prompt

from .helpers_segment import sheared_volume


@pytest.mark.parametrize("uneven", [False, True])
def test_voxel_and_lps_seeds_agree_on_sheared_stack(uneven: bool) -> None:
    vol = sheared_volume(np.zeros((12, 40, 50), np.int16), tilt_deg=20.0, uneven=uneven)
    for zyx in [(0, 0, 0), (5.0, 17.0, 33.0), (11, 39, 49), (7.4, 3.2, 8.9)]:
        lps = vol.index_to_lps(zyx)
        a = Prompt.at(*zyx).seed_index(vol)
        b = Prompt.at_lps(*lps).seed_index(vol)
        np.testing.assert_allclose(a, b, atol=1e-6)
        assert Prompt.at(*zyx).seed_voxel(vol) == Prompt.at_lps(*lps).seed_voxel(vol)


def test_seed_outside_volume_is_no_lesion() -> None:
    vol = sheared_volume(np.zeros((5, 20, 20), np.int16))
    with pytest.raises(NoLesionError) as exc:
        Prompt.at(2, 25, 3).seed_index(vol)
    assert exc.value.reason == "outside_volume"
    far = vol.index_to_lps((-3.0, 5.0, 5.0))
    with pytest.raises(NoLesionError):
        Prompt.at_lps(*far).seed_index(vol)


def test_prompt_validation() -> None:
    with pytest.raises(SegmentationError):
        Prompt(point_zyx=(1, 2, 3), point_lps=(1, 2, 3))
    with pytest.raises(SegmentationError):
        Prompt()
    with pytest.raises(SegmentationError):
        Prompt(point_zyx=(1, 2))  # type: ignore[arg-type]
    with pytest.raises(SegmentationError):
        Prompt(point_zyx=(1, 2, 3), box_zyx=((5, 5, 5), (1, 1, 1)))
    p = Prompt(line_zyx=((2, 10, 10), (2, 10, 30)))
    vol = sheared_volume(np.zeros((5, 40, 40), np.int16), spacing=(2.0, 0.5, 0.5))
    np.testing.assert_allclose(p.seed_index(vol), (2, 10, 20))
    assert p.line_length_mm(vol) == pytest.approx(10.0)
    assert p.to_dict() == {"line_zyx": [[2.0, 10.0, 10.0], [2.0, 10.0, 30.0]]}


def test_lesion_mask_full_tight_volume() -> None:
    vol = sheared_volume(np.zeros((6, 30, 30), np.int16), spacing=(2.0, 0.5, 0.5))
    crop = np.zeros((4, 10, 10), bool)
    crop[1:3, 2:5, 3:7] = True
    m = LesionMask(crop, (1, 5, 6), vol.shape, "x", "1", Prompt.at(2, 8, 9))
    full = m.full()
    assert full.shape == vol.shape and full.sum() == 24
    assert full[2:4, 7:10, 9:13].all()
    t = m.tight()
    assert t.offset == (2, 7, 9) and t.mask.shape == (2, 3, 4)
    assert np.array_equal(t.full(), full)
    assert m.volume_ml(vol) == pytest.approx(24 * 2.0 * 0.25 / 1000)
    assert m.provenance()["segmenter"] == "x"
    with pytest.raises(SegmentationError):
        LesionMask(crop, (4, 0, 0), vol.shape, "x", "1", Prompt.at(0, 0, 0))
