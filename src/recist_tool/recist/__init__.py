"""RECIST 1.1 and iRECIST response engine: pure functions over plain frozen dataclasses.

No files, no database, no GUI: :mod:`recist_tool.io.sdtm_csv` and the CLI do the file side.
:func:`evaluate` and :func:`best` take the :class:`Criteria` and run its engine (the name ``best``
here is that function; the module of the RECIST 1.1 best response is imported by its full name,
``from recist_tool.recist.best import best_response``).
"""

from recist_tool.recist.best import Assessment, best_response, confirmed_indices
from recist_tool.recist.criteria import Evaluation, best, evaluate
from recist_tool.recist.model import (
    OVERALL_RESPONSES,
    BestResponse,
    Category,
    Criteria,
    Lesion,
    LesionAssessment,
    LesionState,
    NewLesionStatus,
    Response,
    Timepoint,
    TimepointResponse,
    overall_responses,
)
from recist_tool.recist.policies import Policies, policies_from_mapping, policies_from_toml
from recist_tool.recist.sdtm import (
    SubjectRecord,
    best_response_row,
    parse_tu_tr,
    reference_dates,
    rs_rows,
)
from recist_tool.recist.timepoint import (
    evaluate_timepoints,
    non_target_response,
    overall_response,
    sum_of_diameters,
    target_response,
)

__all__ = [
    "OVERALL_RESPONSES", "overall_responses",
    "Assessment", "BestResponse", "Category", "Criteria", "Evaluation", "Lesion",
    "LesionAssessment", "LesionState", "NewLesionStatus", "Policies", "Response", "SubjectRecord",
    "Timepoint", "TimepointResponse",
    "best", "best_response", "best_response_row", "confirmed_indices", "evaluate",
    "evaluate_timepoints", "non_target_response", "overall_response", "parse_tu_tr",
    "policies_from_mapping", "policies_from_toml", "reference_dates", "rs_rows",
    "sum_of_diameters", "target_response",
]
