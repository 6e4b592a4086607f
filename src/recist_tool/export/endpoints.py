"""The trial's endpoints from its reads: ``endpoints.json``, ``adtte.csv`` and ``adrs.csv``.

The thin workflow around the engine's :mod:`recist_tool.recist.endpoints`:

* :func:`read_events` reads the optional events file (``subject,date,event`` with event ``DEATH``
  or ``NEW THERAPY``) and refuses unknown subjects, unknown events, bad dates and an event given
  twice, each in one line naming the file and line;
* :func:`subject_outcomes` turns the collected reads (:func:`recist_tool.store.snapshot.collect`:
  one reader, signed reads unless ``include_unsigned``) into the engine's per-subject outcomes;
* :func:`endpoints_from_store` does both and calls :func:`~recist_tool.recist.endpoints.trial_endpoints`;
* :func:`write_endpoints` writes the three files together (or none) inside the output folder.

The RECIST policies are the trial's, as stored in the database; the censoring rules come from the
``[endpoints]`` table of the trial settings (:func:`recist_tool.store.settings.read_endpoint_policies`).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from recist_tool.errors import InputError
from recist_tool.io.outputs import atomic_outputs, write_csv
from recist_tool.recist import Assessment, Category, Policies, Response, policies_from_mapping
from recist_tool.recist.endpoints import (
    ADRS_COLUMNS,
    ADTTE_COLUMNS,
    EVENT_KINDS,
    EndpointPolicies,
    SubjectOutcome,
    TrialEndpoints,
    adrs_rows,
    adtte_rows,
    subject_outcome,
    trial_endpoints,
)
from recist_tool.store.snapshot import TrialExport, collect, effective_overall

if TYPE_CHECKING:
    from recist_tool.store import TrialStore

__all__ = ["ENDPOINT_FILES", "EndpointsRun", "endpoints_from_store", "read_events",
           "subject_outcomes", "write_endpoints"]

#: Files :func:`write_endpoints` writes.
ENDPOINT_FILES = ("endpoints.json", "adtte.csv", "adrs.csv")

#: Events of one subject: event kind (:data:`~recist_tool.recist.endpoints.EVENT_KINDS`) → date.
SubjectEvents = Mapping[str, _dt.date]


def read_events(path: str | os.PathLike[str], subjects: Collection[str]) -> dict[str, dict[str, _dt.date]]:
    """Read an events file: subject → {event: date}.

    Columns ``subject``, ``date`` (ISO 8601, a full date) and ``event`` (``DEATH`` or
    ``NEW THERAPY``, case-insensitive); other columns are ignored.

    Parameters
    ----------
    path : path-like
        The CSV file.
    subjects : collection of str
        The trial's subject codes: any other subject is an error.

    Raises
    ------
    InputError
        Unreadable file, missing column, a subject not in the trial, an unknown event, a date
        that is not a full ISO date, or the same event twice for one subject (file:line).
    """
    from recist_tool.io.sdtm_csv import read_sdtm_csv
    from recist_tool.recist.sdtm import parse_date

    rows = read_sdtm_csv(path, required=("SUBJECT", "DATE", "EVENT"))
    out: dict[str, dict[str, _dt.date]] = {}
    full_dates = Policies(partial_date="error")
    for where, row in rows:
        code = row["SUBJECT"].strip()
        if code not in subjects:
            raise InputError(f"{where}: subject {code!r} is not in the trial's database "
                             f"({len(subjects)} subjects)")
        event = " ".join(row["EVENT"].split()).upper()
        if event not in EVENT_KINDS:
            raise InputError(f"{where}: event {row['EVENT']!r} is not one of {', '.join(EVENT_KINDS)}")
        date = parse_date(row["DATE"], full_dates, where)
        have = out.setdefault(code, {})
        if event in have:
            raise InputError(f"{where}: a second {event} for {code} (first on "
                             f"{have[event].isoformat()})")
        have[event] = date
    return out


def subject_outcomes(data: TrialExport, events: Mapping[str, SubjectEvents] | None = None
                     ) -> list[SubjectOutcome]:
    """The engine's per-subject outcomes of the collected reads (and events).

    Each follow-up read's overall response is the reader's confirmed one where given, else the
    computed one (:func:`~recist_tool.store.snapshot.effective_overall`); measurable disease means a
    target lesion at baseline.
    """
    events = events or {}
    out = []
    for s in data.subjects:
        ev = events.get(s.code, {})
        reads = [(r, ov) for r in s.followups if (ov := effective_overall(r))]
        out.append(subject_outcome(
            s.code, [Assessment(r.date, Response(ov)) for r, ov in reads], s.reference_date,
            policies_from_mapping(dict(s.policies or {})), criteria=s.criteria,
            visits=[(r.date, r.visit) for r, _ in reads],
            measurable=any(les.category is Category.TARGET for les in s.lesions),
            death_date=ev.get("DEATH"), new_therapy_date=ev.get("NEW THERAPY")))
    return out


@dataclass(frozen=True)
class EndpointsRun:
    """What :func:`endpoints_from_store` computed: the collected reads, outcomes and endpoints."""

    data: TrialExport
    outcomes: list[SubjectOutcome]
    endpoints: TrialEndpoints
    policies: Policies
    notes: list[str] = field(default_factory=list)


def endpoints_from_store(store: TrialStore, *, trial: str | None = None, reader: str | None = None,
                         include_unsigned: bool = False, subjects: Sequence[str] | None = None,
                         events: str | os.PathLike[str] | None = None,
                         endpoint_policies: EndpointPolicies | None = None) -> EndpointsRun:
    """Collect one reader's reads of a trial and compute its endpoints.

    Parameters
    ----------
    store : TrialStore
        The trial database (read-only is enough).
    trial, reader, include_unsigned, subjects
        Which reads: see :func:`recist_tool.store.snapshot.collect`.
    events : path-like, optional
        Events file (:func:`read_events`).
    endpoint_policies : EndpointPolicies, optional
        Censoring rules (default: the FDA 2018 defaults).

    Returns
    -------
    EndpointsRun

    Raises
    ------
    InputError, UsageError
        As :func:`collect` and :func:`read_events`; an event or follow-up before a subject's
        reference start.
    """
    data = collect(store, subjects=subjects, reader=reader, include_unsigned=include_unsigned,
                   trial=trial)
    ev = read_events(events, {s.code for s in data.subjects}) if events is not None else {}
    outcomes = subject_outcomes(data, ev)
    stored = {tuple(sorted((s.policies or {}).items())) for s in data.subjects}
    if len(stored) > 1:
        raise InputError(f"trial {data.trial!r}: subjects carry different RECIST policies")
    policies = policies_from_mapping(dict(data.subjects[0].policies or {}))
    result = trial_endpoints(outcomes, policies, endpoint_policies)
    notes = []
    if data.has_unsigned:
        notes.append("includes unsigned reads: "
                     + ", ".join(f"{s.code} {'/'.join(s.unsigned_visits)}"
                                 for s in data.subjects if s.unsigned_visits))
    return EndpointsRun(data, outcomes, result, policies, notes)


def write_endpoints(run: EndpointsRun, out_dir: str | os.PathLike[str]) -> list[Path]:
    """Write ``endpoints.json``, ``adtte.csv`` and ``adrs.csv`` into ``out_dir`` (all or none).

    Every file is placed by :func:`recist_tool.io.outputs.safe_output_path` (through
    :func:`~recist_tool.io.outputs.atomic_outputs`), so nothing is written outside ``out_dir``.

    Returns
    -------
    list of Path
        The files written (:data:`ENDPOINT_FILES`).
    """
    data = run.data
    doc = {"trial": data.trial, "criteria": data.criteria,
           "evaluators": sorted({data.evaluator_ids.get(s.reader, "") for s in data.subjects} - {""}),
           "created": data.created.isoformat(timespec="seconds"),
           "recist_policies": dataclasses.asdict(run.policies),
           "notes": run.notes, **run.endpoints.as_json()}
    with atomic_outputs(out_dir) as out:
        out.path("endpoints.json").write_text(json.dumps(doc, indent=2, default=str) + "\n",
                                              encoding="utf-8")
        write_csv(out.path("adtte.csv"), ADTTE_COLUMNS, adtte_rows(run.endpoints, data.trial))
        write_csv(out.path("adrs.csv"), ADRS_COLUMNS, adrs_rows(run.outcomes, data.trial))
        return out.finals
