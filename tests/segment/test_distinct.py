"""A click on an organ's parenchyma is refused by the default segmenter (``segment.distinct``):
the outline found there closes a piece of tissue that runs on beyond it at its density. A click
on a lesion, and a reader's line anywhere, are not refused this way."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from recist_tool.io import load_volume
from recist_tool.segment import Prompt, get_segmenter
from recist_tool.segment.base import NoLesionError
from recist_tool.segment.distinct import tissue_beyond
from recist_tool.segment.evaluate import discover_dataset, make_prompt
from recist_tool.volume import Volume
from tests.conftest import require

pytest.importorskip("torch")


def deepest_points(volume: Volume, organ: np.ndarray, away_from: np.ndarray, away_mm: float,
                   n: int, apart_mm: float = 15.0) -> list[tuple[int, int, int]]:
    """The ``n`` points of ``organ`` deepest inside it, at least ``away_mm`` from every voxel of
    ``away_from`` and ``apart_mm`` from each other, off the scan's first and last two slices:
    clicks a reader could make on normal parenchyma."""
    sp = volume.spacing
    depth = ndimage.distance_transform_edt(organ, sampling=sp)
    far = ndimage.distance_transform_edt(~away_from, sampling=sp) >= away_mm
    depth[~far] = 0
    depth[:2] = depth[-2:] = 0
    picked: list[tuple[int, int, int]] = []
    for i in np.argsort(depth.ravel())[::-1]:
        p = np.unravel_index(i, depth.shape)
        if depth[p] == 0:
            break
        if all(np.linalg.norm(np.subtract(p, q) * np.asarray(sp)) >= apart_mm for q in picked):
            picked.append(tuple(int(v) for v in p))
            if len(picked) == n:
                break
    return picked


def phantom_liver(volume: Volume, liver_hu: float = 105.0) -> np.ndarray:
    """The sample trial's liver: the largest region of its density (smoothed in-plane)."""
    smooth = ndimage.uniform_filter(np.asarray(volume.array, np.float32), (1, 7, 7))
    lab, n = ndimage.label(np.abs(smooth - liver_hu) < 10)
    return lab == 1 + int(np.argmax(ndimage.sum(lab > 0, lab, range(1, n + 1))))


def lesion_centres(volume: Volume, lesions: dict) -> np.ndarray:
    """A mask holding the voxel at each lesion's true centre."""
    at = np.zeros(volume.shape, bool)
    for lesion in lesions.values():
        at[tuple(np.rint(volume.lps_to_index(np.asarray(lesion["center_lps"])[None])[0])
                 .astype(int))] = True
    return at


def test_clicks_deep_in_the_sample_liver_are_refused_and_a_line_there_is_outlined(
        reading_trial) -> None:
    """The six deepest points of SYN-001's baseline liver at least 45 mm from its lesions.
    Measured 2026-12-05: five of the six clicks refused, three of them by ``segment.distinct``
    (naming the tissue that runs on); one, (5, 173, 83), still comes back as a 'lesion'. Before
    ``segment.distinct``, two of the six were refused. A line drawn where a click is refused is
    outlined from the line (a reader's line asserts a lesion), and a click on the liver target
    T02 is measured."""
    root, gt = reading_trial
    vol = load_volume(root / "SYN-001" / "BL")
    lesions = gt["subjects"]["SYN-001"]["timepoints"]["BL"]["lesions"]
    clicks = deepest_points(vol, phantom_liver(vol), lesion_centres(vol, lesions), 45.0, 6)
    assert len(clicks) == 6
    seg = get_segmenter("unet")
    said = []
    for c in clicks:
        try:
            seg.segment(vol, Prompt.at(*c))
        except NoLesionError as exc:
            said.append(str(exc))
    assert len(said) >= 5, said
    beyond = [s for s in said if "runs on beyond the outline found" in s]
    assert len(beyond) >= 3, said
    assert all(s.startswith("no lesion distinct from the tissue around it here")
               and s.endswith("draw the lesion's caliper line to outline it") for s in beyond)

    # a 30 mm line across the third point, where classic finds no boundary (its click is
    # refused): outlined from the line's ends (before, refused like the click)
    z, y, x = clicks[2]
    half = 15.0 / vol.spacing[2]
    line = seg.segment(vol, Prompt(line_zyx=((z, y, x - half), (z, y, x + half))))
    assert line.segmenter == "contour" and "a reader's line asserts one" in line.info["routed_by"]
    from recist_tool.measure import measure_mask

    la = measure_mask(vol, line.mask, offset=line.offset).long_axis_mm
    assert 27.0 <= la <= 33.0  # 29.9 mm

    # a 30 mm line across the second point, where classic's mask runs on for 122 mm: outlined
    # from the reader's line (before, swapped for classic's long axis: 116.2 mm)
    z, y, x = clicks[1]
    line = seg.segment(vol, Prompt(line_zyx=((z, y, x - half), (z, y, x + half))))
    assert "outlined_from" not in line.info
    assert 27.0 <= measure_mask(vol, line.mask, offset=line.offset).long_axis_mm <= 34.0  # 30.5

    t02 = lesions["T02"]
    seed = np.rint(vol.lps_to_index(np.asarray(t02["center_lps"])[None])[0]).astype(int)
    m = seg.segment(vol, Prompt.at(*seed))
    la = measure_mask(vol, m.mask, offset=m.offset).long_axis_mm
    assert abs(la - t02["long_axis_mm"]) <= 2.0


def test_tissue_beyond_an_outline_at_its_own_density() -> None:
    """Pure figures: a piece of one tissue is 'same tissue'; a region of another density beyond
    the outline, or too little of it, is not."""
    from recist_tool.segment.base import LesionMask

    img = np.full((12, 64, 64), 100, np.int16)
    img[:, 32:, :] = 150  # a neighbour 50 HU denser
    v = Volume.from_grid(img, spacing=(1.0, 1.0, 1.0))
    p = Prompt.at(6, 16, 32)
    piece = np.zeros(img.shape, bool)
    piece[:, 4:28, 20:44] = True

    def beyond(grown: np.ndarray) -> dict:
        return tissue_beyond(v, LesionMask(grown, (0, 0, 0), v.shape, "classic", "1", p),
                             LesionMask(piece, (0, 0, 0), v.shape, "contour", "1", p))

    same = np.zeros(img.shape, bool)
    same[:, :30, :] = True  # runs on at 100 HU on either side of the piece
    f = beyond(same)
    assert f["same_tissue"] and f["inside_hu"] == f["beyond_hu"] == 100.0
    other = piece.copy()
    other[:, 36:, :] = True  # the grown region runs into the denser neighbour only
    f = beyond(other)
    assert not f["same_tissue"] and f["beyond_hu"] == 150.0
    assert not beyond(piece)["same_tissue"]  # nothing beyond


def test_real_liver_parenchyma_clicks_are_refused(shared_data: Path) -> None:
    """3D-IRCADb 1.17 (evaluation only: this checks, it tunes nothing): the five deepest points
    of its liver at least 25 mm from both tumours. Measured 2026-12-05: four of the five clicks
    refused, three by ``segment.distinct``; the fifth, (87, 108, 245), comes back as a 77 mm
    'lesion' (the tissue beyond its outline reads 97 HU against 104 inside). Before it, one of
    the five was refused, and the others came back as 77-117 mm 'lesions'."""
    case = require(shared_data / "lesions" / "ircadb_liver" / "3Dircadb1.17")
    vol = load_volume(case / "image.nii.gz")
    liver = np.asarray(load_volume(case / "liver.nii.gz").array) > 0
    tumours = np.asarray(load_volume(case / "tumours.nii.gz").array) > 0
    seg = get_segmenter("unet")
    refused = []
    for c in deepest_points(vol, liver, tumours, 25.0, 5):
        try:
            seg.segment(vol, Prompt.at(*c))
        except NoLesionError as exc:
            refused.append(str(exc))
    assert len(refused) >= 4, refused


@pytest.mark.parametrize("name", ["STS_012", "STS_015", "STS_008"])
def test_sarcomas_in_muscle_are_not_refused(shared_data: Path, name: str) -> None:
    """The sarcomas whose outlines from a click at their centre come closest to the rule (the
    grown region 30-56 % beyond the outline, or 3 HU from it) are outlined, with the figures in
    the mask's provenance."""
    ds = discover_dataset(require(shared_data / "lesions" / "sts_extremity"), split="all")
    case = next(c for c in ds.cases if c.name == name)
    vol, ref = case.load()
    m = get_segmenter("unet").segment(vol, make_prompt("click", vol, ref, None))
    beyond = m.info["tissue_beyond"]
    assert not beyond["same_tissue"] and beyond["share_beyond"] > 0.25
