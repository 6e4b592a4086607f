"""Reports (``recist report``): per-subject HTML / PDF and per-trial plots.

>>> from recist_tool.report import build_reports          # doctest: +SKIP
>>> summary = build_reports(store, "reports", include_unsigned=True)

Data come from :func:`recist_tool.store.snapshot.collect` (one reader's current reads, pseudonymous),
turned into :class:`~recist_tool.report.view.SubjectView` objects that the table, plots, key images
and ``plotted_values.csv`` all read. See ``docs/reports.md``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recist_tool.report.view import SubjectView, build_subject_view

if TYPE_CHECKING:
    from recist_tool.store import TrialStore
    from recist_tool.store.snapshot import SubjectExport

__all__ = ["ReportSummary", "SubjectView", "build_reports", "build_subject_view", "collect_views"]


@dataclass
class ReportSummary:
    """What :func:`build_reports` wrote."""

    trial: str
    criteria: str
    files: list[Path] = field(default_factory=list)
    subjects: list[str] = field(default_factory=list)
    notes: dict[str, list[str]] = field(default_factory=dict)
    seconds: float = 0.0


def _empty_export(store: TrialStore, code: str) -> SubjectExport:
    """A subject without any read: only its visits (the report says there is nothing to show)."""
    from recist_tool.errors import InputError
    from recist_tool.store.snapshot import SubjectExport

    info = store.subject_info(code)
    if info is None:
        raise InputError(f"no subject {code!r} in the database")
    return SubjectExport(code=code, trial=info.trial, criteria=info.criteria, reader="—",
                         reader_full_name="", policies=dict(info.policies or {}),
                         reference_date=info.reference_date, timepoints=store.timepoint_infos(code),
                         reads=[], lesions=[], best=None, audit=store.audit_log(code),
                         unsigned_visits=[])


def collect_views(store: TrialStore, *, subjects: Sequence[str] | None = None, reader: str | None = None,
                  include_unsigned: bool = False, trial: str | None = None
                  ) -> tuple[str, str, list[SubjectView]]:
    """Read the subjects to report and build their views.

    Subjects without any read (nothing measured yet) are reported with a note instead of failing;
    every other problem (unknown subject, unsigned reads without ``include_unsigned``, several
    readers without ``reader``) raises as :func:`recist_tool.store.snapshot.collect` does.

    Returns
    -------
    (trial, criteria, views)
    """
    from recist_tool.store.snapshot import collect

    trials = store.trials()
    codes: list[str]
    if subjects:
        codes = list(dict.fromkeys(subjects))
    elif trial in trials or (trial is None and len(trials) == 1):
        codes = store.subjects(trial or next(iter(trials)))
    else:
        codes = []  # let collect() explain (empty database, several trials, unknown trial)
    if not codes or any(store.subject_info(c) is None for c in codes):
        data = collect(store, subjects=codes or None, reader=reader,
                       include_unsigned=include_unsigned, trial=trial)
        return data.trial, data.criteria, [build_subject_view(s) for s in data.subjects]
    unread = [c for c in codes if store.subject_info(c) is not None and not store.readers_of(c)]
    read = [c for c in codes if c not in unread]
    exports: dict[str, Any] = {}
    trial = criteria = None
    if read:
        data = collect(store, subjects=read, reader=reader, include_unsigned=include_unsigned,
                       trial=trial)
        exports.update({s.code: s for s in data.subjects})
        trial, criteria = data.trial, data.criteria
    for c in unread:
        exports[c] = _empty_export(store, c)
        trial = trial or exports[c].trial
        criteria = criteria or exports[c].criteria
    return str(trial), str(criteria), [build_subject_view(exports[c]) for c in codes]


def build_reports(store: TrialStore, out_dir: str | Path, *, subjects: Sequence[str] | None = None,
                  reader: str | None = None, include_unsigned: bool = False,
                  trial: str | None = None, subject_reports: bool = True, trial_report: bool = True,
                  progress: Callable[[str], None] | None = None, events: str | Path | None = None,
                  endpoint_policies: Any = None) -> ReportSummary:
    """Write the subject reports (``<code>.html``, ``<code>.pdf``) and the trial report into ``out_dir``.

    Parameters
    ----------
    store : TrialStore
        The trial database (read-only is enough).
    out_dir : path
        Output folder (created).
    subjects : sequence of str, optional
        Subject codes (default: all subjects of the trial).
    reader : str, optional
        Whose reads (required when a subject has several readers).
    include_unsigned : bool
        Report unsigned reads (noted in the report); otherwise they are an error.
    trial : str, optional
        Trial name, when the database holds several and no subjects are given.
    subject_reports, trial_report : bool
        Which halves to write.
    progress : callable, optional
        Called with one line per file group written.
    events : path, optional
        Events file (death, new therapy) for the trial report's endpoints
        (:func:`recist_tool.export.endpoints.read_events`).
    endpoint_policies : EndpointPolicies, optional
        Censoring rules of the trial report's endpoints (default: the documented defaults).

    Returns
    -------
    ReportSummary
    """
    from recist_tool.report.key_images import VolumeCache
    from recist_tool.report.subject import write_subject_report
    from recist_tool.report.trial import write_trial_report

    t0 = time.perf_counter()
    trial_name, criteria, views = collect_views(store, subjects=subjects, reader=reader,
                                                include_unsigned=include_unsigned, trial=trial)
    out = Path(out_dir)
    summary = ReportSummary(trial_name, criteria, subjects=[v.code for v in views],
                            notes={v.code: list(v.notes) for v in views if v.notes})
    cache = VolumeCache()
    if subject_reports:
        for v in views:
            files = write_subject_report(v, out, cache=cache)
            summary.files += files
            if progress is not None:
                progress(f"{v.code}: {', '.join(f.name for f in files)}")
    if trial_report:
        from recist_tool.export.endpoints import endpoints_from_store

        read = [v.code for v in views if store.readers_of(v.code)]
        endpoints = endpoints_from_store(
            store, subjects=read, reader=reader, include_unsigned=include_unsigned, events=events,
            endpoint_policies=endpoint_policies).endpoints if read else None
        files = write_trial_report(views, out, trial=trial_name, criteria=criteria,
                                   endpoints=endpoints)
        summary.files += files
        if progress is not None:
            progress(f"trial {trial_name}: {', '.join(f.name for f in files)}")
    summary.seconds = time.perf_counter() - t0
    return summary
