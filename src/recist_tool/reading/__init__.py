"""Reading a subject's timepoints: the workflow behind the napari reading workstation.

A :class:`ReadingSession` is one reader's read of one subject, over the same library functions the
command line uses: the loader (:func:`recist_tool.io.load_volume`), a segmenter
(:mod:`recist_tool.segment`), :mod:`recist_tool.measure`, the baseline rules of
:mod:`recist_tool.recist.baseline`, lesion tracking (:mod:`recist_tool.track`) and the trial database
(:class:`recist_tool.store.TrialStore`). It holds no GUI code; the napari widget only calls it.

Modules
-------
:mod:`~recist_tool.reading.findings`
    :class:`Finding` (a lesion found and not stored yet), :class:`AddedLesion`, the reader's
    vocabularies (:data:`CATEGORIES`, :data:`ORGANS`, :data:`STATES`) and the mask overlap tests.
:mod:`~recist_tool.reading.proposals`
    :class:`Proposal`: a baseline lesion proposed at a follow-up.
:mod:`~recist_tool.reading.tables`
    :class:`ReadingTable`: lesions × visits, sums, % change and responses.
:mod:`~recist_tool.reading.enrol`
    :func:`enrol_manifest`: a batch manifest's subjects and visits into the trial database.
:mod:`~recist_tool.reading.session`
    :class:`ReadingSession` and :func:`export_formats`.
"""

from recist_tool.reading.enrol import enrol_manifest
from recist_tool.reading.findings import (
    CATEGORIES,
    LESION_ID_PREFIX,
    MIN_LINE_MM,
    ORGANS,
    OVERLAP_FRACTION,
    STATES,
    AddedLesion,
    Finding,
)
from recist_tool.reading.proposals import PROPOSAL_REACH_MM, Proposal
from recist_tool.reading.session import MANIFEST_NAMES, ReadingSession, export_formats
from recist_tool.reading.tables import ReadingTable, TableRow, VisitResponse, reading_table

__all__ = [
    "CATEGORIES", "LESION_ID_PREFIX", "MANIFEST_NAMES", "MIN_LINE_MM", "ORGANS", "OVERLAP_FRACTION",
    "PROPOSAL_REACH_MM", "STATES", "AddedLesion", "Finding", "Proposal", "ReadingSession",
    "ReadingTable", "TableRow", "VisitResponse", "enrol_manifest", "export_formats",
    "reading_table",
]
