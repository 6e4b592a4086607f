"""What a batch baseline hands its follow-ups: each lesion's segmenter spec and long axis."""

from __future__ import annotations

import datetime as dt

from recist_tool.batch.job import BaselineRef, CaseResult, LesionResult, long_axis_line
from recist_tool.batch.manifest import Case


def test_baseline_ref_keeps_each_lesions_segmenter_and_line() -> None:
    ends = {"long": [[1.0, 2.0, 3.0], [11.0, 2.0, 3.0]], "centroid_lps": [6.0, 2.0, 3.0]}
    les = LesionResult("T01", "target", "LIVER", False, "MEASURED", long_axis_mm=10.04,
                       endpoints_lps=ends, segmenter="classic", segmenter_version="1",
                       segmenter_spec="classic")
    case = Case("S1", "BL", dt.date(2026, 1, 1), "/nowhere", None, ())
    ref = BaselineRef.from_result(case, CaseResult("S1", "BL", dt.date(2026, 1, 1), True, (les,)))
    (r,) = ref.lesions
    assert r.segmenter == "classic" and r.size_mm == 10.0
    assert r.line_lps == ((1.0, 2.0, 3.0), (11.0, 2.0, 3.0))
    assert long_axis_line({"long": [[0, 0, 0]]}) is None and long_axis_line(None) is None
