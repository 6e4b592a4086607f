"""``segment_and_measure``: a lesion cut by the edge of the scan is flagged, whatever the
segmenter (built-in or plug-in)."""

from __future__ import annotations

import numpy as np
import pytest

from recist_tool.segment import Prompt, get_segmenter
from recist_tool.segment.base import LesionMask
from recist_tool.segment.workflow import scan_edges, segment_and_measure
from recist_tool.volume import Volume


def _nodule_volume(centre_z: int, nz: int = 30, sp=(2.0, 0.7, 0.7), r_mm: float = 8.0):
    shape = (nz, 100, 100)
    zz, yy, xx = np.indices(shape)
    r2 = ((zz - centre_z) * sp[0]) ** 2 + ((yy - 50) * sp[1]) ** 2 + ((xx - 50) * sp[2]) ** 2
    rng = np.random.default_rng(1)
    arr = np.where(r2 <= r_mm**2, 30.0, -850.0) + rng.normal(0, 10, shape)
    return Volume.from_grid(arr.astype(np.int16), sp)


class _Threshold:
    """A plug-in-like segmenter: the voxels above -300 HU within 12 voxels of the click."""

    name, version = "threshold", "1"

    def segment(self, volume: Volume, prompt: Prompt, *, node: bool = False) -> LesionMask:
        z, y, x = (int(v) for v in prompt.point_zyx)
        lo = [max(0, c - 12) for c in (z, y, x)]
        hi = [min(n, c + 13) for n, c in zip(volume.shape, (z, y, x), strict=True)]
        crop = np.asarray(volume.array)[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] > -300
        return LesionMask(crop, tuple(lo), volume.shape, self.name, self.version, prompt)


@pytest.mark.parametrize("segmenter", ["classic", "plug-in"])
def test_lesion_cut_by_the_first_slice_is_flagged(segmenter: str) -> None:
    seg = get_segmenter(segmenter) if segmenter == "classic" else _Threshold()
    inside, _ = segment_and_measure(_nodule_volume(15), Prompt.at(15, 50, 50), seg)
    assert "scan_edge" not in inside.info and not inside.leak_bounded
    assert scan_edges(inside) == []
    cut, meas = segment_and_measure(_nodule_volume(1), Prompt.at(1, 50, 50), seg)
    assert cut.info["scan_edge"] == ["first slice"] and cut.leak_bounded
    assert any("first slice of the scanned volume" in w for w in cut.warnings)
    assert cut.provenance()["leak_bounded"] and meas.long_axis_mm > 10


def test_scan_edges_names_every_edge_reached() -> None:
    shape = (5, 6, 7)
    m = np.zeros((5, 2, 2), bool)
    m[:, 0, 0] = True
    assert scan_edges(LesionMask(m, (0, 0, 3), shape, "x", "1", Prompt.at(2, 0, 3))) == [
        "first slice", "last slice", "image edge"]
    m2 = np.ones((1, 1, 1), bool)
    assert scan_edges(LesionMask(m2, (2, 3, 3), shape, "x", "1", Prompt.at(2, 3, 3))) == []
    assert scan_edges(LesionMask(m2, (4, 3, 6), shape, "x", "1", Prompt.at(4, 3, 6))) == [
        "last slice", "image edge"]


def test_segment_and_a_tracked_follow_up_cut_by_the_scan_are_flagged_too() -> None:
    """The flag is not the workflow's alone: ``recist_tool.segment.segment`` (the library's
    one-call entry) and a follow-up lesion found by tracking carry it as well."""
    import SimpleITK as sitk

    from recist_tool.segment import segment
    from recist_tool.track import BaselineLesion, Registration, track_lesions

    cut = segment(_nodule_volume(1), Prompt.at(1, 50, 50), "classic")
    assert cut.info["scan_edge"] == ["first slice"] and cut.leak_bounded
    baseline, followup = _nodule_volume(2), _nodule_volume(1)  # both cut by the first slice
    centre = tuple(float(v) for v in baseline.index_to_lps((2, 50, 50)))
    res = track_lesions(baseline, followup, [BaselineLesion("T01", centre, size_mm=16.0)],
                        segmenter="classic", deformable="never",
                        # the phantom has nothing but the nodule to register on: no motion
                        registration=Registration(sitk.Euler3DTransform(), 0.0, 0.0, ()))
    t = res.get("T01")
    assert t.mask is not None and t.mask.info["scan_edge"] == ["first slice"]
    assert t.mask.leak_bounded and any("first slice" in w for w in t.mask.warnings)
