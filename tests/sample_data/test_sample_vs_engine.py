"""The project's RECIST engine agrees with the responses the trial was designed to have."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from recist_tool.sample_data import trial_ground_truth

recist = pytest.importorskip("recist_tool.recist")
if not hasattr(recist, "evaluate_timepoints"):
    pytest.skip("the RECIST engine is not available yet", allow_module_level=True)

_CATEGORY = {"target": "TARGET", "non-target": "NON-TARGET", "new": "NEW"}
_NON_TARGET_CODE = {"NN": "NON-CR/NON-PD", "CR": "CR", "ND": None}


def _engine_inputs(subject: dict):
    lesions, timepoints = {}, []
    for visit, tp in subject["timepoints"].items():
        assessments = []
        for lid, les in tp["lesions"].items():
            if lid not in lesions:
                lesions[lid] = recist.Lesion(lid, recist.Category(_CATEGORY[les["category"]]),
                                             les["organ"].upper(), les["nodal"])
            if not les["present"]:
                assessments.append(recist.LesionAssessment(lid, recist.LesionState.ABSENT))
                continue
            mm = les["short_axis_mm"] if les["nodal"] else les["long_axis_mm"]
            value = Decimal(repr(mm)).quantize(Decimal("0.1"))
            assessments.append(recist.LesionAssessment(lid, recist.LesionState.MEASURED, value))
        timepoints.append(recist.Timepoint(visit, dt.date.fromisoformat(tp["date"]),
                                           tuple(assessments)))
    return list(lesions.values()), timepoints


@pytest.mark.parametrize("seed", [0, 5])
def test_engine_reproduces_expected_responses(seed):
    gt = trial_ground_truth(seed=seed, n_subjects=3)
    for sid, subject in gt["subjects"].items():
        lesions, timepoints = _engine_inputs(subject)
        responses = recist.evaluate_timepoints(lesions, timepoints)
        follow_ups = list(subject["timepoints"].values())[1:]
        assert len(responses) == len(follow_ups)
        for tp, r in zip(follow_ups, responses, strict=True):
            assert r.overall.value == tp["overall_response"], (sid, r.visit, r.reasons)
            assert r.target.value == tp["target_response"], (sid, r.visit, r.reasons)
            nt = _NON_TARGET_CODE[tp["non_target_response"]]
            assert (r.non_target.value if r.non_target else None) == nt, (sid, r.visit)
            assert r.sod_mm == Decimal(repr(tp["sod_mm"])).quantize(Decimal("0.1"))
