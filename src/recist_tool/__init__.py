"""recist-tool: RECIST 1.1 and iRECIST tumour measurement on CT for clinical trials.

The names a user needs from one click to a best response are importable from here; each lives in
its layer's subpackage, which is imported on first use (``import recist_tool`` alone loads numpy
and the core types, not scipy, pydicom, SQLAlchemy or torch). ``docs/api.md`` runs them end to
end. (``recist_tool.segment`` is the subpackage; its one-call ``segment()`` function is imported
from there.)

==============================  ===========================================================
load a series                   :func:`load_volume`, :func:`save_volume`, :func:`scan`
                                (:mod:`recist_tool.io`)
click, segment, measure         :class:`Prompt`, :func:`get_segmenter`,
                                :func:`segment_and_measure`, :class:`NoLesionError`
                                (:mod:`recist_tool.segment`); :func:`measure_mask`,
                                :func:`measure_line`, :class:`AxisMeasurement`
                                (:mod:`recist_tool.measure`)
respond (pure RECIST engine)    :class:`Lesion`, :class:`Category`, :class:`LesionAssessment`,
                                :class:`LesionState`, :class:`Timepoint`,
                                :func:`evaluate_timepoints`, :func:`best_response`
                                (:mod:`recist_tool.recist`, which also holds the response
                                values, criteria, policies and iRECIST)
store                           :class:`TrialStore` (:mod:`recist_tool.store`)
==============================  ===========================================================
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from recist_tool.errors import RecistToolError
from recist_tool.volume import GeometryWarning, Volume, VolumeMeta

__version__ = "0.1.0"

#: Public name -> the subpackage that defines it (imported on first access, PEP 562).
_LAZY: dict[str, str] = {
    **dict.fromkeys(("load_volume", "save_volume", "scan"), "recist_tool.io"),
    **dict.fromkeys(("NoLesionError", "Prompt", "get_segmenter", "segment_and_measure"),
                    "recist_tool.segment"),
    **dict.fromkeys(("AxisMeasurement", "measure_line", "measure_mask"), "recist_tool.measure"),
    **dict.fromkeys(("Category", "Lesion", "LesionAssessment", "LesionState", "Timepoint",
                     "best_response", "evaluate_timepoints"), "recist_tool.recist"),
    "TrialStore": "recist_tool.store",
}

if TYPE_CHECKING:  # what the lazy names are, for type checkers and IDEs
    from recist_tool.io import load_volume, save_volume, scan
    from recist_tool.measure import AxisMeasurement, measure_line, measure_mask
    from recist_tool.recist import Category, Lesion, LesionAssessment, LesionState, Timepoint
    from recist_tool.recist.best import best_response
    from recist_tool.recist.timepoint import evaluate_timepoints
    from recist_tool.segment import NoLesionError, Prompt, get_segmenter, segment_and_measure
    from recist_tool.store import TrialStore


def __getattr__(name: str) -> Any:
    """Import a public name's subpackage on first access (module ``__getattr__``, PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'recist_tool' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later accesses skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


# Written out for linters and `from recist_tool import *`; tests/test_public_api.py checks it is
# the eager names above plus every key of _LAZY.
__all__ = [
    "AxisMeasurement", "Category", "GeometryWarning", "Lesion", "LesionAssessment", "LesionState",
    "NoLesionError", "Prompt", "RecistToolError", "Timepoint", "TrialStore", "Volume", "VolumeMeta",
    "__version__", "best_response", "evaluate_timepoints", "get_segmenter", "load_volume",
    "measure_line", "measure_mask", "save_volume", "scan", "segment_and_measure",
]
