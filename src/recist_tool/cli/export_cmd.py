"""``recist export``: the trial database to EDC (ODM, SDTM, Dataset-JSON, REDCap) or PACS (SR, SEG).

Thin shell over :func:`recist_tool.export.run_export`.
"""

from __future__ import annotations

from pathlib import Path

import typer

from recist_tool.cli._app import DB_OPTION, READER_OPTION, SUBJECTS_OPTION, TRIAL_OPTION, app, console

_FORMAT_HELP = ("odm | sdtm | dataset-json | redcap (EDC), dicom-sr | dicom-seg (PACS).")


@app.command("export")
def export_cmd(
    fmt: str = typer.Option(..., "--format", "-f", help=_FORMAT_HELP),
    out: Path = typer.Option(..., "-o", "--out", help="Output folder (created)."),
    db: str = DB_OPTION,
    subject: list[str] = SUBJECTS_OPTION,
    reader: str | None = READER_OPTION,
    trial: str | None = TRIAL_OPTION,
    include_unsigned: bool = typer.Option(False, "--include-unsigned",
                                          help="Also export unsigned reads (marked as such)."),
    mapping: Path | None = typer.Option(None, "--mapping",
                                        help="TOML mapping of item / visit OIDs (odm, redcap)."),
    settings: Path | None = typer.Option(
        None, "--settings", help="Trial settings TOML: [evaluators] maps reader accounts to "
        "--EVALID (sdtm, dataset-json); default RADIOLOGIST n / ALGORITHM n by first read."),
) -> None:
    """Export responses and measurements; files appear only when all were written."""
    from recist_tool.export import run_export
    from recist_tool.store import TrialStore
    from recist_tool.store.settings import read_evaluator_ids

    options: dict[str, object] = {"mapping": mapping} if mapping is not None else {}
    if settings is not None:
        options["evaluator_ids"] = read_evaluator_ids(settings)
    with TrialStore(db, read_only=True) as store:
        paths = run_export(store, fmt.strip().lower(), out, subjects=subject or None, reader=reader,
                           include_unsigned=include_unsigned, trial=trial, options=options)
    for p in paths:
        console.print(f"wrote {p}", highlight=False, soft_wrap=True)
    console.print(f"{fmt}: {len(paths)} file(s) in {out}", highlight=False)
