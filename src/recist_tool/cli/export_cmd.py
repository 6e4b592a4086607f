"""``recist export``: the trial database to EDC (ODM, SDTM, Dataset-JSON, REDCap) or PACS (SR, SEG).

Thin shell over :func:`recist_tool.export.run_export`.
"""

from __future__ import annotations

from pathlib import Path

import typer

from recist_tool.cli._app import app, console

_FORMAT_HELP = ("odm | sdtm | dataset-json | redcap (EDC), dicom-sr | dicom-seg (PACS).")


@app.command("export")
def export_cmd(
    fmt: str = typer.Option(..., "--format", "-f", help=_FORMAT_HELP),
    out: Path = typer.Option(..., "-o", "--out", help="Output folder (created)."),
    db: str = typer.Option("recist.db", "--db", envvar="RECIST_DB",
                           help="SQLite file (default recist.db here) or postgresql:// URL."),
    subject: list[str] = typer.Option(None, "--subject", "-s",
                                      help="Subject code (repeat for several; default: all)."),
    reader: str | None = typer.Option(None, "--reader", "-r",
                                      help="Whose reads (needed when a subject has several readers)."),
    trial: str | None = typer.Option(None, "--trial", help="Trial (when the database holds several)."),
    include_unsigned: bool = typer.Option(False, "--include-unsigned",
                                          help="Also export unsigned reads (marked as such)."),
    mapping: Path | None = typer.Option(None, "--mapping",
                                        help="TOML mapping of item / visit OIDs (odm, redcap)."),
) -> None:
    """Export responses and measurements; files appear only when all were written."""
    from recist_tool.export import run_export
    from recist_tool.store import TrialStore

    options = {"mapping": mapping} if mapping is not None else {}
    with TrialStore(db, read_only=True) as store:
        paths = run_export(store, fmt.strip().lower(), out, subjects=subject or None, reader=reader,
                           include_unsigned=include_unsigned, trial=trial, options=options)
    for p in paths:
        console.print(f"wrote {p}", highlight=False, soft_wrap=True)
    console.print(f"{fmt}: {len(paths)} file(s) in {out}", highlight=False)
