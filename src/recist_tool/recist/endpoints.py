"""Trial endpoints from per-subject results: response rates, duration of response and imaging PFS.

Pure functions over plain dataclasses, like the rest of the engine (no files, no database):

* :func:`subject_outcome` turns one subject's follow-up overall responses (and an optional death
  or new-therapy date) into a :class:`SubjectOutcome`, calling the engine's own best response
  (:func:`~recist_tool.recist.best.best_response`, iRECIST :func:`~recist_tool.recist.irecist.best_irecist`).
* :func:`trial_endpoints` turns the outcomes of a trial into :class:`TrialEndpoints`: ORR and DCR
  (unconfirmed and confirmed) with Clopper–Pearson intervals over the response-evaluable subjects,
  the non-evaluable ones with their reason, and duration of response and progression-free survival
  as ADaM-style time-to-event records with their Kaplan–Meier estimates.
* :func:`adtte_rows` and :func:`adrs_rows` give the rows of ``adtte.csv`` and ``adrs.csv``.

The censoring rules are named policies (:class:`EndpointPolicies`, the ``[endpoints]`` table of the
trial settings) with the defaults of the FDA guidance *Clinical Trial Endpoints for the Approval of
Cancer Drugs and Biologics* (2018), table of PFS event and censoring dates. The statistics come from
SciPy: :func:`scipy.stats.binomtest` (``proportion_ci(method="exact")``) and :func:`scipy.stats.ecdf`
on :class:`scipy.stats.CensoredData`; ``docs/endpoints.md`` says what every number is.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from recist_tool.errors import InputError
from recist_tool.recist.best import Assessment, merge_same_day
from recist_tool.recist.criteria import best
from recist_tool.recist.model import BestResponse, Criteria, Response
from recist_tool.recist.policies import Policies

__all__ = [
    "ADEQUATE", "ADRS_AVAL", "ADRS_COLUMNS", "ADTTE_COLUMNS", "CONFIDENCE_LEVEL", "DAYS_PER_MONTH",
    "EVENT_KINDS", "EndpointPolicies", "KaplanMeier", "Proportion", "SubjectOutcome", "TimeToEvent",
    "TrialEndpoints", "adrs_rows", "adtte_rows", "aval_days", "dor_record", "kaplan_meier",
    "not_evaluable_reason", "pfs_record", "proportion", "subject_outcome", "trial_endpoints",
]

#: Two-sided confidence level of every interval.
CONFIDENCE_LEVEL = 0.95
#: Days in a month for the months shown beside days (365.25 / 12).
DAYS_PER_MONTH = 30.4375
#: Overall responses that make an assessment *adequate* (everything but NE, ND and MISSING).
ADEQUATE = frozenset({
    Response.CR, Response.PR, Response.SD, Response.NON_CR_NON_PD, Response.PD,
    Response.ICR, Response.IPR, Response.ISD, Response.INN, Response.IUPD, Response.ICPD,
})
#: ADRS ``AVAL`` of each RECIST 1.1 response (the pharmaverse ADRS coding); iRECIST values have none.
ADRS_AVAL = {Response.CR: 1, Response.PR: 2, Response.SD: 3, Response.NON_CR_NON_PD: 4,
             Response.PD: 5, Response.NE: 6, Response.MISSING: 7}
#: Clinical events an events file may give (``EVENTS.csv``: subject, date, event).
EVENT_KINDS = ("DEATH", "NEW THERAPY")

_PARAMS = {"PFS": "Progression-Free Survival (days)", "DOR": "Duration of Response (days)"}
_ADRS_PARAMS = {"BOR": "Best Overall Response", "CBOR": "Confirmed Best Overall Response"}


def aval_days(start: _dt.date, end: _dt.date) -> int:
    """ADaM analysis value in days: ``end − start + 1`` (the start day is day 1).

    The engine's ``BestResponse.duration_of_response_days`` counts the same way.
    """
    return (end - start).days + 1


@dataclass(frozen=True)
class EndpointPolicies:
    """Censoring rules of the time-to-event endpoints (``[endpoints]`` in the trial settings).

    Defaults follow the FDA 2018 guidance table of PFS dates: no event → censored at the last
    adequate assessment; new anticancer therapy → censored at the last adequate assessment before
    it; PD or death after more than one missed assessment → censored at the last adequate
    assessment before them; death → an event.

    Attributes
    ----------
    assessment_interval_days : int
        Days between scheduled tumour assessments (default 42, every 6 weeks).
    assessment_window_days : int
        Visit window added to the missed-assessment limit (default 7).
    max_missed_assessments : int
        How many scheduled assessments may be missed before an event (default 1). An event later
        than ``(max_missed_assessments + 1) × interval + window`` days after the last adequate
        assessment (or the start) is "after missed assessments".
    missed_assessments : {"censor", "event"}
        ``censor`` (default): such an event is censored at the last adequate assessment before it;
        ``event``: it counts as it is.
    new_therapy : {"censor", "ignore"}
        ``censor`` (default): follow-up ends at the start of new anticancer therapy (censored at
        the last adequate assessment before it; PD or death on or after it are not events);
        ``ignore``: new therapy changes nothing (a sensitivity analysis). Best response always
        ignores assessments on or after new therapy.
    death : {"event", "censor"}
        ``event`` (default): death without documented PD is a PFS (and DoR) event; ``censor``:
        follow-up is censored at the last adequate assessment.
    km_interval : {"log-log", "linear"}
        Transformation of the pointwise Greenwood interval of the Kaplan–Meier curve (default
        ``log-log``), from which the median's interval is read (Brookmeyer–Crowley).
    """

    assessment_interval_days: int = 42
    assessment_window_days: int = 7
    max_missed_assessments: int = 1
    missed_assessments: Literal["censor", "event"] = "censor"
    new_therapy: Literal["censor", "ignore"] = "censor"
    death: Literal["event", "censor"] = "event"
    km_interval: Literal["log-log", "linear"] = "log-log"

    def __post_init__(self) -> None:
        choices = {"missed_assessments": ("censor", "event"), "new_therapy": ("censor", "ignore"),
                   "death": ("event", "censor"), "km_interval": ("log-log", "linear")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise InputError(f"endpoint policy {name}={getattr(self, name)!r} is not one of "
                                 f"{', '.join(allowed)}")
        for name in ("assessment_interval_days", "assessment_window_days", "max_missed_assessments"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise InputError(f"endpoint policy {name} must be a non-negative integer, got {value!r}")
        if self.assessment_interval_days == 0:
            raise InputError("endpoint policy assessment_interval_days must be at least 1")

    @property
    def missed_limit_days(self) -> int:
        """Longest gap (days) from the last adequate assessment to an event that still counts."""
        return ((self.max_missed_assessments + 1) * self.assessment_interval_days
                + self.assessment_window_days)


@dataclass(frozen=True)
class SubjectOutcome:
    """One subject's per-subject results: the input of :func:`trial_endpoints`.

    Attributes
    ----------
    subject : str
        Subject code.
    reference_date : date or None
        Start of PFS (the reference start: randomisation or first treatment).
    best : BestResponse
        The engine's best response over the assessments before any new therapy.
    assessments : tuple of Assessment
        Follow-up overall responses, one per date (date order), all of them.
    pd_date : date or None
        The engine's date of first PD over all assessments (new therapy not applied).
    visits : tuple of (date, str)
        Visit name of each assessment date (for ``AVISIT``).
    measurable : bool
        The subject has measurable disease (a target lesion) at baseline.
    death_date, new_therapy_date : date or None
        From the events file.
    """

    subject: str
    reference_date: _dt.date | None
    best: BestResponse
    assessments: tuple[Assessment, ...] = ()
    pd_date: _dt.date | None = None
    visits: tuple[tuple[_dt.date, str], ...] = ()
    measurable: bool = True
    death_date: _dt.date | None = None
    new_therapy_date: _dt.date | None = None

    def visit_of(self, date: _dt.date | None) -> str:
        """Visit name of an assessment date ('' when unknown)."""
        return next((v for d, v in self.visits if d == date), "")


def subject_outcome(subject: str, assessments: Iterable[Assessment], reference_date: _dt.date | None,
                    policies: Policies | None = None, *,
                    criteria: Criteria | str = Criteria.RECIST_1_1,
                    visits: Iterable[tuple[_dt.date, str]] = (), measurable: bool = True,
                    death_date: _dt.date | None = None,
                    new_therapy_date: _dt.date | None = None) -> SubjectOutcome:
    """One subject's outcome, with best response and PD date from the engine.

    Parameters
    ----------
    subject : str
        Subject code.
    assessments : iterable of Assessment
        The follow-up overall responses (baseline excluded), any order.
    reference_date : date or None
        The subject's reference start date.
    policies : Policies, optional
        The trial's RECIST policies.
    criteria : {"RECIST 1.1", "iRECIST"}
    visits : iterable of (date, visit)
        Visit names for ``AVISIT``.
    measurable : bool
        Measurable disease at baseline.
    death_date, new_therapy_date : date, optional
        Clinical events; best response ignores assessments on or after new therapy.

    Returns
    -------
    SubjectOutcome

    Raises
    ------
    InputError
        A follow-up assessment or an event dated before the reference start, or an assessment
        after the death date.
    """
    policies = policies or Policies()
    seq = merge_same_day(list(assessments), policies)
    if reference_date is not None:
        for what, when in ([(f"assessment of {a.date.isoformat()}", a.date) for a in seq]
                           + [("death", death_date), ("new therapy", new_therapy_date)]):
            if when is not None and when < reference_date:
                raise InputError(f"{subject}: {what} ({when.isoformat()}) is before the reference "
                                 f"start {reference_date.isoformat()}")
    if death_date is not None and seq and seq[-1].date > death_date:
        raise InputError(f"{subject}: assessment of {seq[-1].date.isoformat()} is after the death "
                         f"on {death_date.isoformat()}")
    outcome = best(criteria, seq, reference_date, policies, new_therapy_date=new_therapy_date)
    pd_date = (outcome.pd_date if new_therapy_date is None
               else best(criteria, seq, reference_date, policies).pd_date)
    return SubjectOutcome(subject, reference_date, outcome, tuple(seq), pd_date, tuple(visits),
                          measurable, death_date, new_therapy_date)


# --- response rates ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Proportion:
    """A response rate with its exact (Clopper–Pearson) interval.

    ``rate``, ``ci_low`` and ``ci_high`` are fractions (None when ``n`` is 0); ``subjects`` are the
    subjects counted in ``count``.
    """

    name: str
    confirmed: bool
    count: int
    n: int
    rate: float | None
    ci_low: float | None
    ci_high: float | None
    subjects: tuple[str, ...]


def proportion(name: str, subjects: Sequence[str], n: int, *, confirmed: bool) -> Proportion:
    """``len(subjects)`` of ``n`` with the Clopper–Pearson interval of :data:`CONFIDENCE_LEVEL`.

    The interval is SciPy's ``binomtest(k, n).proportion_ci(method="exact")``.
    """
    from scipy.stats import binomtest

    k = len(subjects)
    if n == 0:
        return Proportion(name, confirmed, 0, 0, None, None, None, ())
    ci = binomtest(k, n).proportion_ci(confidence_level=CONFIDENCE_LEVEL, method="exact")
    return Proportion(name, confirmed, k, n, k / n, float(ci.low), float(ci.high),
                      tuple(sorted(subjects)))


def _usable(o: SubjectOutcome, pol: EndpointPolicies) -> list[Assessment]:
    """The assessments follow-up may use (before new therapy under the ``censor`` policy)."""
    cut = o.new_therapy_date if pol.new_therapy == "censor" else None
    return [a for a in o.assessments if cut is None or a.date < cut]


def not_evaluable_reason(o: SubjectOutcome) -> str | None:
    """Why a subject is not evaluable for response (None when it is).

    Response-evaluable: measurable disease at baseline and at least one adequate follow-up
    assessment (:data:`ADEQUATE`) before any new anticancer therapy.
    """
    if not o.measurable:
        return "no measurable disease at baseline (no target lesion)"
    if not o.assessments:
        return "no follow-up assessment" + (f" (died {o.death_date.isoformat()})"
                                            if o.death_date else "")
    before = [a for a in o.assessments
              if o.new_therapy_date is None or a.date < o.new_therapy_date]
    if any(a.response in ADEQUATE for a in before):
        return None
    if len(before) < len(o.assessments) and not before:
        return ("no follow-up assessment before new therapy "
                f"({cast(_dt.date, o.new_therapy_date).isoformat()})")
    values = ", ".join(sorted({a.response.value for a in before}))
    return f"no adequate follow-up assessment ({values})"


# --- time to event -------------------------------------------------------------------------------

@dataclass(frozen=True)
class TimeToEvent:
    """One ADTTE record: a subject's time from ``start`` to ``end`` (event or censoring).

    ``days`` is ``AVAL`` (:func:`aval_days`); ``event_desc`` is ``EVNTDESC`` and
    ``censor_date_desc`` ``CNSDTDSC`` (empty for an event).
    """

    subject: str
    paramcd: str
    start: _dt.date
    end: _dt.date
    days: int
    censored: bool
    event_desc: str
    censor_date_desc: str = ""


def _time_to_event(o: SubjectOutcome, paramcd: str, start: _dt.date, start_desc: str,
                   pol: EndpointPolicies) -> TimeToEvent:
    usable = _usable(o, pol)
    adequate = [a.date for a in usable if a.response in ADEQUATE and a.date >= start]
    cut = o.new_therapy_date if pol.new_therapy == "censor" else None
    events = []
    if o.pd_date is not None and o.pd_date >= start:
        events.append((o.pd_date, "PROGRESSIVE DISEASE"))
    if o.death_date is not None and pol.death == "event":
        events.append((o.death_date, "DEATH"))
    counted = [e for e in events if cut is None or e[0] < cut]

    def censor(at: _dt.date | None, why: str) -> TimeToEvent:
        end = at or start
        return TimeToEvent(o.subject, paramcd, start, end, aval_days(start, end), True, why,
                           "LAST ADEQUATE ASSESSMENT" if at else start_desc)

    if counted:
        when, what = min(counted)
        prior = [d for d in adequate if d < when]
        anchor = max(prior) if prior else None
        gap = (when - (anchor or start)).days
        if pol.missed_assessments == "censor" and gap > pol.missed_limit_days:
            return censor(anchor, f"{what} AFTER MISSED ASSESSMENTS")
        return TimeToEvent(o.subject, paramcd, start, when, aval_days(start, when), False, what)
    last = max(adequate) if adequate else None
    if cut is not None:
        return censor(last, "NEW ANTICANCER THERAPY")
    if last is None:
        return censor(None, "NO ADEQUATE POST-BASELINE ASSESSMENT")
    return censor(last, "NO PROGRESSION OR DEATH" if paramcd == "PFS" else "NO PROGRESSION")


def pfs_record(o: SubjectOutcome, pol: EndpointPolicies) -> TimeToEvent | None:
    """Imaging PFS of one subject: reference start to PD or death (None without a reference date)."""
    if o.reference_date is None:
        return None
    return _time_to_event(o, "PFS", o.reference_date, "REFERENCE START", pol)


def dor_record(o: SubjectOutcome, policies: Policies, pol: EndpointPolicies) -> TimeToEvent | None:
    """Duration of response of a responder: first CR/PR (confirmed one when ``policies.confirmation``,
    as the engine's ``duration_of_response_days``) to PD or death; None for a non-responder."""
    b = o.best
    start = b.confirmed_response_date if policies.confirmation else (
        b.response_date if b.response else None)
    if start is None:
        return None
    return _time_to_event(o, "DOR", start, "FIRST RESPONSE", pol)


# --- Kaplan–Meier --------------------------------------------------------------------------------

@dataclass(frozen=True)
class KaplanMeier:
    """A Kaplan–Meier estimate (SciPy ``ecdf`` on censored data) of one time-to-event parameter.

    Attributes
    ----------
    paramcd : str
        ``PFS`` or ``DOR``.
    n, events, censored : int
        Subjects, events, censored subjects.
    times : tuple of int
        Distinct times (days, ``AVAL``) of the step function: events and censorings.
    survival, ci_low, ci_high : tuple of float or None
        S(t) at each time and its pointwise interval (None where SciPy leaves it undefined,
        e.g. S = 0 under ``log-log``).
    median_days : int or None
        Smallest time with S(t) ≤ 0.5; None when the curve never reaches 0.5 (not reached).
    median_ci : (int or None, int or None)
        Brookmeyer–Crowley: the smallest times at which the lower and the upper pointwise limit
        of S(t) reach 0.5 (lower and upper limit of the median); None: not reached.
    at_risk : tuple of (int, int)
        (day, subjects still at risk: ``AVAL`` ≥ day) every ``step_days`` from 0.
    censor_times : tuple of int
        ``AVAL`` of each censored record (marks on a plot), sorted.
    ci_method : str
        The pointwise interval's transformation.
    """

    paramcd: str
    n: int
    events: int
    censored: int
    times: tuple[int, ...]
    survival: tuple[float, ...]
    ci_low: tuple[float | None, ...]
    ci_high: tuple[float | None, ...]
    median_days: int | None
    median_ci: tuple[int | None, int | None]
    at_risk: tuple[tuple[int, int], ...]
    ci_method: str
    censor_times: tuple[int, ...] = ()


def _first_at_or_below(times: Sequence[int], values: Sequence[float | None], level: float
                       ) -> int | None:
    return next((t for t, v in zip(times, values, strict=True) if v is not None and v <= level),
                None)


def kaplan_meier(records: Sequence[TimeToEvent], *, paramcd: str | None = None,
                 ci_method: str = "log-log", step_days: int = 42) -> KaplanMeier:
    """Kaplan–Meier estimate of ``records`` (one parameter) by :func:`scipy.stats.ecdf`.

    Parameters
    ----------
    records : sequence of TimeToEvent
        One record per subject; ``days`` is the time, ``censored`` right-censoring.
    paramcd : str, optional
        The parameter's name (default: that of the records).
    ci_method : {"log-log", "linear"}
        Pointwise interval of S(t) (SciPy's Greenwood-based ``confidence_interval``).
    step_days : int
        Spacing of the numbers-at-risk table.

    Returns
    -------
    KaplanMeier
    """
    from scipy.stats import CensoredData, ecdf

    paramcd = paramcd or (records[0].paramcd if records else "")
    events = [r.days for r in records if not r.censored]
    cens = [r.days for r in records if r.censored]
    last = max((r.days for r in records), default=0)
    at_risk = tuple((d, sum(r.days >= d for r in records)) for d in range(0, last + 1, step_days))
    if not records:
        return KaplanMeier(paramcd, 0, 0, 0, (), (), (), (), None, (None, None), at_risk, ci_method)
    censor_times = tuple(sorted(cens))
    sf = ecdf(CensoredData(uncensored=events, right=cens)).sf
    times = tuple(int(t) for t in sf.quantiles)
    surv = tuple(float(p) for p in sf.probabilities)
    if events:
        import warnings

        with warnings.catch_warnings():  # S = 0 or 1 makes log-log undefined: SciPy warns, gives nan
            warnings.simplefilter("ignore", RuntimeWarning)
            band = sf.confidence_interval(CONFIDENCE_LEVEL, method=ci_method)

        def clean(values: Iterable[float]) -> tuple[float | None, ...]:
            return tuple(None if math.isnan(v) else float(v) for v in values)

        low, high = clean(band.low.probabilities), clean(band.high.probabilities)
    else:
        low = high = tuple(None for _ in times)
    return KaplanMeier(
        paramcd, len(records), len(events), len(cens), times, surv, low, high,
        _first_at_or_below(times, surv, 0.5),
        (_first_at_or_below(times, low, 0.5), _first_at_or_below(times, high, 0.5)),
        at_risk, ci_method, censor_times)


# --- the trial -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class TrialEndpoints:
    """The trial's endpoints (:func:`trial_endpoints`).

    Attributes
    ----------
    n_subjects : int
        Subjects given.
    confirmation : bool
        The trial's headline response needs confirmation (``Policies.confirmation``); both are
        always computed.
    orr, orr_confirmed, dcr, dcr_confirmed : Proportion
        Over the response-evaluable subjects.
    evaluable : tuple of str
        Response-evaluable subjects.
    not_evaluable : tuple of (str, str)
        The others, each with its reason.
    pfs, dor : tuple of TimeToEvent
        Time-to-event records (DoR: responders only).
    pfs_excluded : tuple of (str, str)
        Subjects without a PFS record, with the reason (no reference start date).
    pfs_km, dor_km : KaplanMeier
    policies : EndpointPolicies
    """

    n_subjects: int
    confirmation: bool
    orr: Proportion
    orr_confirmed: Proportion
    dcr: Proportion
    dcr_confirmed: Proportion
    evaluable: tuple[str, ...]
    not_evaluable: tuple[tuple[str, str], ...]
    pfs: tuple[TimeToEvent, ...]
    dor: tuple[TimeToEvent, ...]
    pfs_excluded: tuple[tuple[str, str], ...]
    pfs_km: KaplanMeier
    dor_km: KaplanMeier
    policies: EndpointPolicies

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready dictionary (dates as ISO text); the content of ``endpoints.json``."""
        def conv(x: Any) -> Any:
            if isinstance(x, _dt.date):
                return x.isoformat()
            if dataclasses.is_dataclass(x) and not isinstance(x, type):
                return {f.name: conv(getattr(x, f.name)) for f in dataclasses.fields(x)}
            if isinstance(x, tuple | list):
                return [conv(v) for v in x]
            return x

        out = conv(self)
        for name in ("pfs_km", "dor_km"):
            med = getattr(self, name).median_days
            out[name]["median_months"] = None if med is None else med / DAYS_PER_MONTH
        out["not_evaluable"] = [{"subject": s, "reason": r} for s, r in self.not_evaluable]
        out["pfs_excluded"] = [{"subject": s, "reason": r} for s, r in self.pfs_excluded]
        return out


def trial_endpoints(outcomes: Sequence[SubjectOutcome], policies: Policies | None = None,
                    endpoint_policies: EndpointPolicies | None = None) -> TrialEndpoints:
    """ORR, DCR, DoR and PFS of a trial from its subjects' outcomes.

    Parameters
    ----------
    outcomes : sequence of SubjectOutcome
        One per subject (:func:`subject_outcome`).
    policies : Policies, optional
        The trial's RECIST policies (``confirmation`` picks the headline rates and DoR's start).
    endpoint_policies : EndpointPolicies, optional
        Censoring rules.

    Returns
    -------
    TrialEndpoints

    Raises
    ------
    InputError
        The same subject given twice.
    """
    policies = policies or Policies()
    pol = endpoint_policies or EndpointPolicies()
    twice = sorted(c for c, k in Counter(o.subject for o in outcomes).items() if k > 1)
    if twice:
        raise InputError(f"subject(s) given twice: {', '.join(twice)}")
    reasons = {o.subject: not_evaluable_reason(o) for o in outcomes}
    ev = [o for o in outcomes if reasons[o.subject] is None]
    n = len(ev)

    def rate(name: str, confirmed: bool, hit: Any) -> Proportion:
        return proportion(name, [o.subject for o in ev if hit(o.best)], n, confirmed=confirmed)

    pfs, excluded = [], []
    for o in outcomes:
        rec = pfs_record(o, pol)
        if rec is None:
            excluded.append((o.subject, "no reference start date"))
        else:
            pfs.append(rec)
    dor = [r for o in outcomes if (r := dor_record(o, policies, pol)) is not None]
    km: dict[str, Any] = dict(ci_method=pol.km_interval, step_days=pol.assessment_interval_days)
    return TrialEndpoints(
        n_subjects=len(outcomes), confirmation=policies.confirmation,
        orr=rate("ORR", False, lambda b: b.bor_cr_pr),
        orr_confirmed=rate("ORR", True, lambda b: b.confirmed_bor_cr_pr),
        dcr=rate("DCR", False, lambda b: b.clinical_benefit),
        dcr_confirmed=rate("DCR", True, lambda b: b.confirmed_clinical_benefit),
        evaluable=tuple(o.subject for o in ev),
        not_evaluable=tuple((s, r) for s, r in reasons.items() if r is not None),
        pfs=tuple(pfs), dor=tuple(dor), pfs_excluded=tuple(excluded),
        pfs_km=kaplan_meier(pfs, paramcd="PFS", **km), dor_km=kaplan_meier(dor, paramcd="DOR", **km),
        policies=pol)


# --- ADaM-style rows -----------------------------------------------------------------------------

#: Columns of ``adtte.csv``.
ADTTE_COLUMNS = ("STUDYID", "USUBJID", "PARAMCD", "PARAM", "STARTDT", "ADT", "AVAL", "CNSR",
                 "EVNTDESC", "CNSDTDSC")
#: Columns of ``adrs.csv``.
ADRS_COLUMNS = ("STUDYID", "USUBJID", "PARAMCD", "PARAM", "AVALC", "AVAL", "ADT", "AVISIT",
                "STARTDT")


def adtte_rows(endpoints: TrialEndpoints, studyid: str) -> list[dict[str, Any]]:
    """ADTTE-style rows: PFS then DOR, by subject. ``CNSR`` 0 = event, 1 = censored."""
    rows = []
    for rec in sorted(endpoints.pfs + endpoints.dor, key=lambda r: (r.paramcd != "PFS", r.subject)):
        rows.append({"STUDYID": studyid, "USUBJID": rec.subject, "PARAMCD": rec.paramcd,
                     "PARAM": _PARAMS[rec.paramcd], "STARTDT": rec.start.isoformat(),
                     "ADT": rec.end.isoformat(), "AVAL": rec.days, "CNSR": int(rec.censored),
                     "EVNTDESC": rec.event_desc, "CNSDTDSC": rec.censor_date_desc})
    return rows


def adrs_rows(outcomes: Sequence[SubjectOutcome], studyid: str) -> list[dict[str, Any]]:
    """ADRS-style rows: ``BOR`` and ``CBOR`` of each subject (``AVAL`` as :data:`ADRS_AVAL`)."""
    rows = []
    for o in sorted(outcomes, key=lambda x: x.subject):
        for code, value, date in (("BOR", o.best.bor, o.best.bor_date),
                                  ("CBOR", o.best.confirmed_bor, o.best.confirmed_bor_date)):
            rows.append({"STUDYID": studyid, "USUBJID": o.subject, "PARAMCD": code,
                         "PARAM": _ADRS_PARAMS[code], "AVALC": value.value,
                         "AVAL": ADRS_AVAL.get(value), "ADT": date.isoformat() if date else None,
                         "AVISIT": o.visit_of(date) or None,
                         "STARTDT": o.reference_date.isoformat() if o.reference_date else None})
    return rows
