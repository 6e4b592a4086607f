"""``recist export``: the trial database to EDC (ODM, SDTM, Dataset-JSON, REDCap) or PACS (SR, SEG).

Thin shell over :func:`recist_tool.export.run_export`.
"""

from __future__ import annotations

from pathlib import Path

import typer

from recist_tool.cli._app import DB_OPTION, READER_OPTION, SUBJECTS_OPTION, TRIAL_OPTION, app, console
from recist_tool.cli._send import send_and_report

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
        "--EVALID (sdtm, dataset-json); default RADIOLOGIST n / ALGORITHM n by first read; "
        "[pacs.NAME] the servers --send names (default $RECIST_PACS_CONFIG)."),
    send: str | None = typer.Option(
        None, "--send", help="dicom-sr, dicom-seg: store the objects on this PACS server of the "
        "settings (STOW-RS or C-STORE), then search for them and say what it holds."),
    deidentify: bool = typer.Option(
        False, "--deidentify", help="dicom-sr, dicom-seg: de-identify by DICOM PS3.15 Annex E "
        "(Basic Profile): subject code as patient, Clinical Trial modules and the UID secret from "
        "the settings' [deidentify] (or $RECIST_DEID_SECRET)."),
    retain_dates: bool = typer.Option(
        False, "--retain-dates", help="With --deidentify: keep dates and times (Retain "
        "Longitudinal Temporal Information with Full Dates Option)."),
) -> None:
    """Export responses and measurements; files appear only when all were written."""
    from recist_tool.export import run_export
    from recist_tool.store import TrialStore
    from recist_tool.store.settings import read_evaluator_ids

    fmt = fmt.strip().lower()
    if send is not None:
        from recist_tool.errors import UsageError
        from recist_tool.io import pacs

        if fmt not in ("dicom-sr", "dicom-seg"):
            raise UsageError(f"--send needs --format dicom-sr or dicom-seg, not {fmt}")
        pacs.use_settings(settings)
        pacs.server(send)  # an unknown server fails before anything is written
    options: dict[str, object] = {"mapping": mapping} if mapping is not None else {}
    if deidentify or retain_dates:
        from recist_tool.errors import UsageError
        from recist_tool.export.deidentify import read_deid_settings

        if fmt not in ("dicom-sr", "dicom-seg"):
            raise UsageError(f"--deidentify needs --format dicom-sr or dicom-seg, not {fmt}")
        if not deidentify:
            raise UsageError("--retain-dates is an option of --deidentify")
        options["deidentify"] = read_deid_settings(settings, retain_dates=retain_dates)
    if settings is not None:
        options["evaluator_ids"] = read_evaluator_ids(settings)
    with TrialStore(db, read_only=True) as store:
        paths = run_export(store, fmt, out, subjects=subject or None, reader=reader,
                           include_unsigned=include_unsigned, trial=trial, options=options)
    for p in paths:
        console.print(f"wrote {p}", highlight=False, soft_wrap=True)
    console.print(f"{fmt}: {len(paths)} file(s) in {out}", highlight=False)
    if send is not None:
        send_and_report(send, [p for p in paths if p.suffix.lower() == ".dcm"])
