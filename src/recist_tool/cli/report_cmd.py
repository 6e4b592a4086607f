"""``recist report``: per-subject HTML / PDF reports and the trial plots.

Thin shell over :func:`recist_tool.report.build_reports`.
"""

from __future__ import annotations

from pathlib import Path

import typer

from recist_tool.cli._app import DB_OPTION, READER_OPTION, SUBJECTS_OPTION, TRIAL_OPTION, app, console, note
from recist_tool.errors import UsageError


@app.command("report")
def report_cmd(
    out: Path = typer.Option(..., "-o", "--out", help="Output folder (created)."),
    db: str = DB_OPTION,
    subject: list[str] = SUBJECTS_OPTION,
    reader: str | None = READER_OPTION,
    trial: str | None = TRIAL_OPTION,
    include_unsigned: bool = typer.Option(False, "--include-unsigned",
                                          help="Also report unsigned reads (the report says so)."),
    trial_only: bool = typer.Option(False, "--trial-only", help="Only the trial plots and tables."),
    subjects_only: bool = typer.Option(False, "--subjects-only", help="Only the subject reports."),
    settings: Path | None = typer.Option(
        None, "--settings", help="Trial settings TOML: [endpoints] censoring rules (Kaplan–Meier)."),
    events: Path | None = typer.Option(
        None, "--events", help="CSV of subject,date,event (DEATH or NEW THERAPY) for the endpoints."),
) -> None:
    """Subject reports (<code>.html, <code>.pdf) and trial plots (waterfall, spider, swimmer,
    Kaplan–Meier)."""
    from recist_tool.report import build_reports
    from recist_tool.store import TrialStore
    from recist_tool.store.settings import read_endpoint_policies

    if trial_only and subjects_only:
        raise UsageError("--trial-only and --subjects-only exclude each other")
    with TrialStore(db, read_only=True) as store:
        summary = build_reports(store, out, subjects=subject or None, reader=reader, trial=trial,
                                include_unsigned=include_unsigned,
                                subject_reports=not trial_only, trial_report=not subjects_only,
                                events=events, endpoint_policies=read_endpoint_policies(settings),
                                progress=lambda line: console.print(line, highlight=False,
                                                                    soft_wrap=True))
    for code, notes in summary.notes.items():
        for n in notes:
            note(n, f"{code}:")
    console.print(f"{len(summary.files)} file(s) in {out} ({summary.seconds:.1f} s)", highlight=False)
