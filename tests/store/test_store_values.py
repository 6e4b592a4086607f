"""The stored record of a measurement, as reading, tracking and batch write it."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

import numpy as np

from recist_tool.recist import LesionAssessment, LesionState
from recist_tool.store.values import axis_endpoints, measurement_values

M = SimpleNamespace(long_axis_mm=np.float64(20.25), short_axis_mm=10.35, volume_ml=2.00049,
                    long_axis_endpoints_lps=np.array([[1.23456, 2.0, 3.0], [4.0, 5.0, 6.00049]]),
                    short_axis_endpoints_lps=None, slice_index=np.int64(12))


def test_axes_round_half_even_to_0_1_mm_volume_and_points_to_0_001() -> None:
    v = measurement_values(M.long_axis_mm, M.short_axis_mm, M.volume_ml, axis_endpoints(M),
                           segmenter="classic", segmenter_version="1.0")
    assert (v["long_axis_mm"], v["short_axis_mm"], v["volume_ml"]) == \
        (Decimal("20.2"), Decimal("10.4"), Decimal("2.0"))
    assert v["endpoints_lps"] == {"long": [[1.235, 2.0, 3.0], [4.0, 5.0, 6.0]], "short": None,
                                  "slice_index": 12}
    assert type(v["endpoints_lps"]["slice_index"]) is int  # JSON-safe
    assert (v["method"], v["mask_path"], v["mask_sha256"]) == ("automatic", None, None)
    # the engine's input rounds the same way
    assert LesionAssessment.from_measurement("T01", M) == \
        LesionAssessment("T01", LesionState.MEASURED, v["long_axis_mm"])
    assert LesionAssessment.from_measurement("T02", M, nodal=True).diameter_mm == \
        v["short_axis_mm"]


def test_end_points_record_keeps_what_tracking_needs_in_one_order() -> None:
    ends = axis_endpoints(M, centroid_lps=(1.00049, 2, 3), segmenter_spec="classic",
                          tracking={"status": "tracked", "confidence": 0.9})
    assert list(ends) == ["long", "short", "slice_index", "centroid_lps", "segmenter_spec",
                          "tracking"]
    assert ends["centroid_lps"] == [1.0, 2.0, 3.0]
    assert "tracking" not in axis_endpoints(M, tracking={})
