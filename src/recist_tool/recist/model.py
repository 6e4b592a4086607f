"""Plain, immutable data types of the RECIST 1.1 / iRECIST engine.

Diameters are :class:`decimal.Decimal` millimetres so that every threshold (−30 %, +20 %, +5 mm)
is compared exactly; dates are :class:`datetime.date`.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from typing import Protocol

__all__ = [
    "Criteria",
    "Category",
    "LesionState",
    "Response",
    "NewLesionStatus",
    "Lesion",
    "LesionAssessment",
    "Timepoint",
    "TimepointResponse",
    "BestResponse",
    "OVERALL_RESPONSES",
    "overall_responses",
    "to_mm",
]


class Criteria(StrEnum):
    """The response criteria a trial is read under (the value is what is stored and written)."""

    RECIST_1_1 = "RECIST 1.1"
    IRECIST = "iRECIST"

    @property
    def key(self) -> str:
        """The command-line spelling (``recist1.1``, ``irecist``).

        Examples
        --------
        >>> [c.key for c in Criteria]
        ['recist1.1', 'irecist']
        """
        return self.value.lower().replace(" ", "")


class Category(StrEnum):
    """Lesion category fixed when the lesion is first recorded."""

    TARGET = "TARGET"
    NON_TARGET = "NON-TARGET"
    NEW = "NEW"
    #: iRECIST new lesion measurable and selected as new-lesion target (NLT).
    NEW_TARGET = "NEW TARGET"
    #: iRECIST new lesion not selected as target (NLNT).
    NEW_NON_TARGET = "NEW NON-TARGET"

    @property
    def is_new(self) -> bool:
        """True for the three new-lesion categories."""
        return self in (Category.NEW, Category.NEW_TARGET, Category.NEW_NON_TARGET)


class LesionState(StrEnum):
    """What was seen of one lesion at one timepoint."""

    MEASURED = "MEASURED"  #: a diameter is given (0 allowed)
    TOO_SMALL = "TOO SMALL TO MEASURE"  #: faintly seen; counts 5 mm unless a smaller value is given
    ABSENT = "ABSENT"  #: disappeared (0 mm for a target)
    PRESENT = "PRESENT"  #: non-target / new lesion present, not measured
    UNEQUIVOCAL_PROGRESSION = "UNEQUIVOCAL PROGRESSION"  #: non-target unequivocal progression
    INCREASED = "INCREASED"  #: iRECIST: grown since the previous assessment (NT / NLNT)
    EQUIVOCAL = "EQUIVOCAL"  #: new lesion, equivocal
    NOT_EVALUATED = "NOT EVALUATED"  #: not done / not evaluable
    SPLIT = "SPLIT"  #: target split into fragments; their diameters add up
    MERGED = "MERGED"  #: coalesced into another target which carries the merged diameter (0 here)


class Response(StrEnum):
    """RECIST 1.1 and iRECIST response values (SDTM controlled terms)."""

    CR = "CR"
    PR = "PR"
    SD = "SD"
    NON_CR_NON_PD = "NON-CR/NON-PD"
    PD = "PD"
    NE = "NE"
    ND = "ND"
    MISSING = "MISSING"
    # iRECIST
    ICR = "iCR"
    IPR = "iPR"
    ISD = "iSD"
    INN = "NON-iCR/NON-iUPD"
    IUPD = "iUPD"
    ICPD = "iCPD"


#: The overall responses of a follow-up timepoint under each criteria (what the engine gives, and
#: what a reader may confirm instead of the computed one), keyed by the criteria's name.
OVERALL_RESPONSES: dict[str, tuple[Response, ...]] = {
    Criteria.RECIST_1_1: (Response.CR, Response.PR, Response.SD, Response.NON_CR_NON_PD, Response.PD,
                   Response.NE),
    Criteria.IRECIST: (Response.ICR, Response.IPR, Response.ISD, Response.INN, Response.IUPD,
                Response.ICPD, Response.NE),
}


def overall_responses(criteria: Criteria | str) -> tuple[Response, ...]:
    """The overall responses of a timepoint under ``criteria`` (``RECIST 1.1`` or ``iRECIST``).

    Raises
    ------
    KeyError
        For other criteria.
    """
    return OVERALL_RESPONSES[criteria]


class NewLesionStatus(StrEnum):
    """New-lesion finding at a timepoint."""

    NONE = "NONE"
    EQUIVOCAL = "EQUIVOCAL"
    UNEQUIVOCAL = "UNEQUIVOCAL"


def to_mm(value: Decimal | int | str | float | None) -> Decimal | None:
    """Convert a diameter to an exact :class:`~decimal.Decimal` (floats via their ``repr``)."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(value)


#: RECIST 1.1 (Eisenhauer 2009, section 3.1.1): a lymph node whose short axis is below this (mm)
#: is normal — not a pathological node at baseline, and a target node "normal" again at follow-up.
NODE_NORMAL_MM = Decimal(10)
#: The precision (mm) of a stored diameter.
STORED_MM = Decimal("0.1")


def to_stored_mm(value: Decimal | int | str | float | None) -> Decimal | None:
    """A diameter as it is stored and reported: :func:`to_mm`, rounded to :data:`STORED_MM`
    half to even (a measurement of 10.25 mm is stored 10.2, one of 10.35 mm 10.4).

    Examples
    --------
    >>> to_stored_mm(10.25), to_stored_mm(10.35), to_stored_mm(None)
    (Decimal('10.2'), Decimal('10.4'), None)
    """
    mm = to_mm(value if value is None or isinstance(value, (Decimal, int, str))
               else float(value))  # numpy floats through float
    return None if mm is None else mm.quantize(STORED_MM, ROUND_HALF_EVEN)


class HasAxes(Protocol):
    """What :meth:`LesionAssessment.from_measurement` reads of a measurement: its two axes (mm).

    :class:`recist_tool.measure.AxisMeasurement` is one; the engine does not import it (it knows
    no image code).
    """

    @property
    def long_axis_mm(self) -> float | None: ...

    @property
    def short_axis_mm(self) -> float | None: ...


@dataclass(frozen=True)
class Lesion:
    """A lesion as identified (baseline for targets/non-targets, later for new lesions).

    Parameters
    ----------
    lesion_id : str
        Identifier, e.g. ``T01``, ``NT01``, ``NL01``.
    category : Category
        Target, non-target or new (iRECIST: new target / new non-target).
    organ : str
        Anatomical site (free text, e.g. ``LUNG``, ``LYMPH NODE``).
    nodal : bool
        Lymph node: measured by its short axis.
    """

    lesion_id: str
    category: Category
    organ: str = ""
    nodal: bool = False


@dataclass(frozen=True)
class LesionAssessment:
    """One lesion at one timepoint.

    Parameters
    ----------
    lesion_id : str
        The lesion's identifier.
    state : LesionState
        What was seen.
    diameter_mm : Decimal, optional
        Long axis (non-nodal) or short axis (nodal) in mm, when measured.
    fragments_mm : tuple of Decimal
        Diameters of the fragments of a split lesion.
    """

    lesion_id: str
    state: LesionState = LesionState.MEASURED
    diameter_mm: Decimal | None = None
    fragments_mm: tuple[Decimal, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "diameter_mm", to_mm(self.diameter_mm))
        object.__setattr__(self, "fragments_mm", tuple(to_mm(f) for f in self.fragments_mm))

    @classmethod
    def from_measurement(cls, lesion_id: str, measurement: HasAxes, *,
                         nodal: bool = False) -> LesionAssessment:
        """A measured lesion from an axis measurement, its diameter rounded as it is stored
        (:func:`to_stored_mm`): the short axis of a lymph node, the long axis of anything else.

        Parameters
        ----------
        lesion_id : str
            The lesion's identifier.
        measurement : AxisMeasurement
            Anything with ``long_axis_mm`` and ``short_axis_mm``.
        nodal : bool
            A lymph node (measured by its short axis).

        Examples
        --------
        >>> from types import SimpleNamespace
        >>> m = SimpleNamespace(long_axis_mm=14.25, short_axis_mm=10.35)
        >>> LesionAssessment.from_measurement("T01", m).diameter_mm
        Decimal('14.2')
        >>> LesionAssessment.from_measurement("T02", m, nodal=True).diameter_mm
        Decimal('10.4')
        """
        return cls(lesion_id, LesionState.MEASURED,
                   to_stored_mm(measurement.short_axis_mm if nodal else measurement.long_axis_mm))


@dataclass(frozen=True)
class Timepoint:
    """All lesion assessments of one subject at one visit (one evaluator)."""

    visit: str
    date: _dt.date
    assessments: tuple[LesionAssessment, ...]
    visit_num: Decimal | None = None
    date_text: str = ""  #: the date as given (may be partial, e.g. ``2014-02``)

    def get(self, lesion_id: str) -> LesionAssessment | None:
        """The assessment of ``lesion_id`` at this visit, or None."""
        for a in self.assessments:
            if a.lesion_id == lesion_id:
                return a
        return None


@dataclass(frozen=True)
class TimepointResponse:
    """Response at one follow-up timepoint, with the numbers and the rules that decided it.

    ``target`` / ``non_target`` are None where the subject has no such disease at baseline.
    """

    visit: str
    date: _dt.date
    target: Response | None
    non_target: Response | None
    new_lesions: NewLesionStatus
    overall: Response
    sod_mm: Decimal | None = None
    sod_complete: bool = True
    baseline_mm: Decimal | None = None
    nadir_mm: Decimal | None = None
    pct_from_baseline: Decimal | None = None
    pct_from_nadir: Decimal | None = None
    new_target_sum_mm: Decimal | None = None
    pd_backdated_to: _dt.date | None = None
    reasons: tuple[str, ...] = ()
    visit_num: Decimal | None = None
    date_text: str = ""


@dataclass(frozen=True)
class BestResponse:
    """Best overall response and the derived endpoints for one subject (one evaluator).

    Dates are those of the first assessment giving the value; flags are ``True``/``False``.
    """

    bor: Response
    bor_date: _dt.date | None
    confirmed_bor: Response
    confirmed_bor_date: _dt.date | None
    response: bool = False  #: BOR is CR or PR (RSP)
    response_date: _dt.date | None = None  #: first CR/PR
    confirmed_response: bool = False  #: CRSP
    confirmed_response_date: _dt.date | None = None
    clinical_benefit: bool = False  #: CB
    clinical_benefit_date: _dt.date | None = None
    confirmed_clinical_benefit: bool = False  #: CCB
    confirmed_clinical_benefit_date: _dt.date | None = None
    progression: bool = False
    pd_date: _dt.date | None = None
    duration_of_response_days: int | None = None
    last_response: Response | None = None
    last_assessment_date: _dt.date | None = None
    reference_date: _dt.date | None = None
    reasons: tuple[str, ...] = field(default_factory=tuple)

    @property
    def bor_cr_pr(self) -> bool:
        """BCP: BOR is CR or PR."""
        return self.bor in (Response.CR, Response.PR, Response.ICR, Response.IPR)

    @property
    def confirmed_bor_cr_pr(self) -> bool:
        """CBCP: confirmed BOR is CR or PR."""
        return self.confirmed_bor in (Response.CR, Response.PR, Response.ICR, Response.IPR)
