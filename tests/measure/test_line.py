"""Manual caliper measurements: same structure as automatic ones."""

from __future__ import annotations

import numpy as np
import pytest

from recist_tool.errors import MeasurementError
from recist_tool.measure import AxisMeasurement, measure_line, measure_mask
from recist_tool.volume import Volume


@pytest.fixture
def vol() -> Volume:
    return Volume.from_slices(
        np.zeros((5, 40, 50), np.int16),
        positions=np.array([[0.0, 3.0 * k * 0.3, 3.0 * k] for k in range(5)]),  # tilted stack
        row_cosine=(1, 0, 0), column_cosine=(0, 1, 0), pixel_spacing=(0.6, 0.9),
    )


def test_line_lengths_use_row_and_column_spacing(vol: Volume) -> None:
    r = measure_line(vol, (2, 10, 10), (2, 14, 13), short_axis=((2, 13, 10), (2, 11, 13)))
    assert isinstance(r, AxisMeasurement)
    assert r.method == "line" and r.slice_index == 2
    assert r.long_axis_mm == pytest.approx(np.hypot(4 * 0.6, 3 * 0.9))
    assert r.short_axis_mm == pytest.approx(np.hypot(2 * 0.6, 3 * 0.9))
    lps = np.asarray(r.long_axis_endpoints_lps)
    assert np.linalg.norm(lps[1] - lps[0]) == pytest.approx(r.long_axis_mm)
    np.testing.assert_allclose(lps, vol.index_to_lps(np.asarray(r.long_axis_endpoints_voxel)))
    assert r.volume_ml is None and r.max_3d_diameter_mm is None
    d = r.to_dict()
    for key in ("long_axis_mm", "short_axis_mm", "slice_index", "long_axis_endpoints_lps",
                "short_axis_endpoints_lps", "volume_ml", "max_3d_diameter_mm", "n_components"):
        assert key in d


def test_line_in_lps_equals_line_in_voxels(vol: Volume) -> None:
    a = measure_line(vol, (3, 5.5, 7.25), (3, 30, 41))
    p0, p1 = vol.index_to_lps([[3, 5.5, 7.25], [3, 30, 41]])
    b = measure_line(vol, p0, p1, coords="lps", node=True)
    assert b.long_axis_mm == pytest.approx(a.long_axis_mm)
    np.testing.assert_allclose(b.long_axis_endpoints_voxel, a.long_axis_endpoints_voxel,
                               atol=1e-9)
    assert b.short_axis_mm is None and b.node and b.recist_diameter_mm is None


def test_caliper_on_a_drawn_disk_agrees_with_mask_measurement() -> None:
    yy, xx = np.mgrid[:60, :60]
    m = ((yy - 30.2) * 0.7) ** 2 + ((xx - 29.6) * 0.7) ** 2 <= 15.0**2
    vol = Volume.from_grid(m[None].astype(np.uint8), (2.0, 0.7, 0.7))
    auto = measure_mask(vol)
    manual = measure_line(vol, *auto.long_axis_endpoints_voxel,
                          short_axis=auto.short_axis_endpoints_voxel)
    assert manual.long_axis_mm == pytest.approx(auto.long_axis_mm, abs=1e-9)
    assert manual.short_axis_mm == pytest.approx(auto.short_axis_mm, abs=1e-9)
    assert auto.long_axis_mm == pytest.approx(30.0, abs=0.7)


@pytest.mark.parametrize(
    ("p0", "p1", "sa", "msg"),
    [
        ((1, 5, 5), (1, 5, 5), None, "zero length"),
        ((1, 5, 5), (2, 9, 9), None, "one acquired slice"),
        ((1.5, 5, 5), (1.5, 9, 9), None, "one acquired slice"),
        ((7, 5, 5), (7, 9, 9), None, "outside the volume"),
        ((1, 5, 5), (1, 9, 9), ((2, 5, 9), (2, 9, 5)), "not on the long-axis slice"),
        ((1, 5, 5), (1, 9), None, "3 finite numbers"),
    ],
)
def test_line_errors(vol: Volume, p0, p1, sa, msg) -> None:
    with pytest.raises(MeasurementError, match=msg):
        measure_line(vol, p0, p1, short_axis=sa)


def test_lps_points_given_as_voxels_say_so(vol: Volume) -> None:
    """LPS millimetres without ``coords='lps'`` fall off the voxel grid: the error says which
    point, the grid's index ranges and that points are (z, y, x) voxel indices unless
    coords='lps' (issue #35 item 6)."""
    p0, p1 = vol.index_to_lps([[3, 5.5, 7.25], [3, 30, 41]])
    with pytest.raises(MeasurementError) as err:
        measure_line(vol, p0, p1)
    msg = str(err.value)
    assert msg.startswith("long-axis line start (") and "outside the volume's voxel indices" in msg
    assert "(z 0-4, y 0-39, x 0-49)" in msg and "unless coords='lps'" in msg
    with pytest.raises(MeasurementError, match="short-axis line start .* unless coords='lps'"):
        measure_line(vol, (3, 5, 5), (3, 9, 9), short_axis=((3, 5, 60), (3, 9, 9)))
    # the same points with coords='lps' measure; half a voxel beyond the edge is still on it
    assert measure_line(vol, p0, p1, coords="lps").long_axis_mm > 0
    assert measure_line(vol, (3, -0.5, 0), (3, 39.5, 49.5)).long_axis_mm > 0
