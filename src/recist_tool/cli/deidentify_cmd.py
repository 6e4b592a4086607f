"""``recist deidentify``: CT series de-identified for a core lab (and sent to a PACS).

Thin shell over :func:`recist_tool.export.deidentify_ct.deidentify_ct`, with the same
``--settings`` ``[deidentify]`` table, secret and ``--retain-dates`` as ``recist export
--deidentify``, so the CT, SR and SEG keep referencing one another.
"""

from __future__ import annotations

from pathlib import Path

import typer

from recist_tool.cli._app import app, console
from recist_tool.cli._send import send_and_report


@app.command("deidentify")
def deidentify_cmd(
    series: list[str] = typer.Argument(
        ..., help="CT series: folder, zip, file or pacs://SERVER/STUDY_UID[/SERIES_UID] "
        "(several allowed; every CT series found is copied)."),
    out: Path = typer.Option(..., "-o", "--out", help="Output folder (created): "
                             "SUBJECT/SERIES_UID/SOP_UID.dcm, de-identified UIDs."),
    subject: str = typer.Option(..., "--subject", "-s", help="Trial subject code: the "
                                "de-identified Patient ID, Patient Name and Clinical Trial "
                                "Subject ID."),
    visit: str | None = typer.Option(None, "--visit", help="Visit code: Clinical Trial Time "
                                     "Point ID."),
    trial: str | None = typer.Option(
        None, "--trial", help="Trial name: Clinical Trial Protocol ID when [deidentify] names "
        "no protocol_id (the SR/SEG export uses the trial's name in the database)."),
    settings: Path | None = typer.Option(
        None, "--settings", help="Trial settings TOML (required): [deidentify] (sponsor, "
        "secret_file) as for export --deidentify; [pacs.NAME] the servers of --send and of "
        "pacs:// series."),
    retain_dates: bool = typer.Option(
        False, "--retain-dates", help="Keep dates and times (Retain Longitudinal Temporal "
        "Information with Full Dates Option)."),
    send: str | None = typer.Option(
        None, "--send", help="Store the de-identified CT on this PACS server of the settings "
        "(STOW-RS or C-STORE), then search for it and say what it holds."),
) -> None:
    """De-identify CT series (DICOM PS3.15 Basic Profile) with the trial's UID secret."""
    from recist_tool.export.deidentify import read_deid_settings
    from recist_tool.export.deidentify_ct import deidentify_ct
    from recist_tool.io import pacs

    if settings is None:
        from recist_tool.errors import UsageError

        raise UsageError("deidentify needs --settings (the trial settings with [deidentify])")
    cfg = read_deid_settings(settings, retain_dates=retain_dates)
    pacs.use_settings(settings)
    if send is not None:
        pacs.server(send)  # an unknown server fails before anything is read or written
    done = deidentify_ct(series, out, cfg, subject=subject, trial=trial or "", visit=visit or "")
    for uid, n in done.series.items():
        console.print(f"series {uid}: {n} file(s)", highlight=False, soft_wrap=True)
    left = f"; {done.skipped} object(s) not part of a CT series left out" if done.skipped else ""
    console.print(f"deidentify: {len(done.files)} file(s) in {out}{left}", highlight=False,
                  soft_wrap=True)
    if send is not None:
        send_and_report(send, done.files)
