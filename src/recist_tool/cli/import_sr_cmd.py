"""``recist import-sr``: a PACS read (DICOM SR, TID 1500) → baseline lesions with seeds.

Thin shell over :mod:`recist_tool.batch.sr_import`: always writes the lesions as ``recist batch``
manifest rows; with ``--db`` also records them as the reader's manual measurements.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

import typer
from rich.table import Table

from recist_tool.cli._app import app, console
from recist_tool.errors import UsageError


@app.command("import-sr")
def import_sr_cmd(
    sr: Path = typer.Argument(..., help="DICOM SR file (TID 1500 with Long Axis / Short Axis)."),
    ct: Path = typer.Option(..., "--ct", help="Folder / zip / file holding the CT the SR was read on."),
    series: str | None = typer.Option(None, "--series",
                                      help="SeriesInstanceUID of the CT (default: the series "
                                           "holding the images the SR references)."),
    subject: str | None = typer.Option(None, "--subject", "-s",
                                       help="Subject code (default: from the SR / the database)."),
    visit: str = typer.Option("BL", "--visit", help="Visit of the read."),
    date: str | None = typer.Option(None, "--date", help="Scan date YYYY-MM-DD (default: the SR's)."),
    out: Path = typer.Option(Path("manifest.csv"), "-o", "--out",
                             help="Manifest to write (CSV rows for recist batch)."),
    db: str | None = typer.Option(None, "--db", help="Also record the lesions in this database "
                                                     "(SQLite file or postgresql:// URL)."),
    reader: str | None = typer.Option(None, "--reader", "-r", help="Whose read (with --db)."),
    trial: str | None = typer.Option(None, "--trial",
                                     help="Enrol the subject in this trial when the database "
                                          "does not know it (with --db)."),
) -> None:
    """Turn the long / short axis measurements of a DICOM SR into baseline lesions with seeds."""
    from recist_tool.batch.sr_import import import_sr, record_import, write_manifest

    when = None
    if date is not None:
        try:
            when = _dt.date.fromisoformat(date)
        except ValueError as exc:
            raise UsageError(f"--date {date!r} is not YYYY-MM-DD") from exc
    if db is not None and not reader:
        raise UsageError("--db needs --reader (whose read the lesions become)")
    store = None
    if db is not None:
        from recist_tool.store import TrialStore

        store = TrialStore(db)
    try:
        imp = import_sr(sr, ct, series=series, subject=subject, visit=visit, date=when, store=store)
        path = write_manifest(imp, out)
        recorded = record_import(store, imp, reader=reader, trial=trial) if store else 0
    finally:
        if store is not None:
            store.close()
    t = Table(title=f"{imp.subject} {imp.visit} {imp.date.isoformat()} ({len(imp.lesions)} lesions)")
    for col in ("lesion", "category", "organ", "long mm", "short mm", "slice", "seed LPS (x, y, z) mm"):
        t.add_column(col)
    for les in imp.lesions:
        t.add_row(les.lesion_id, les.category.lower(), les.organ or "-",
                  "-" if les.long_axis_mm is None else f"{les.long_axis_mm:.1f}",
                  "-" if les.short_axis_mm is None else f"{les.short_axis_mm:.1f}",
                  str(les.slice_index), ", ".join(f"{c:.2f}" for c in les.seed_lps))
    console.print(t)
    for why in imp.report.skipped:
        console.print(f"skipped: {why}", highlight=False)
    console.print(f"manifest: {path}", highlight=False, soft_wrap=True)
    if store is not None:
        console.print(f"recorded {recorded} lesion(s) in {db} as {reader}'s read", highlight=False)
