"""The trial read back through the project's loader (skips until ``recist_tool.io`` has it)."""

from __future__ import annotations

import numpy as np
import pytest

io = pytest.importorskip("recist_tool.io")
if not hasattr(io, "load_volume"):
    pytest.skip("recist_tool.io.load_volume is not available yet", allow_module_level=True)


def test_loader_reproduces_the_plain_reading(trial, dcm):
    out, gt = trial
    for subject in gt["subjects"].values():
        for tp in subject["timepoints"].values():
            vol = io.load_volume(out / tp["series_path"], tp["series_uid"], workers=1)
            hu, dss = dcm.read_series(out / tp["series_path"], tp["series_uid"])
            assert vol.array.shape == hu.shape
            assert np.array_equal(np.asarray(vol.array, float), hu)
            for lid, les in tp["lesions"].items():
                if not les["present"]:
                    continue
                idx = np.rint(vol.lps_to_index(les["center_lps"])).astype(int)
                assert tuple(idx) == dcm.lps_to_voxel(dss, les["center_lps"]), lid
