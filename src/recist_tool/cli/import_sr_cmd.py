"""``recist import-sr``: a read from a PACS, OHIF/dcmjs, highdicom or dcmqi (DICOM SR, PS3.16
TID 1500 with TID 1501 / 1410 / 1411 groups) → baseline lesions with seeds and caliper lines.

Thin shell over :mod:`recist_tool.batch.sr_import`: always writes the lesions as ``recist batch``
manifest rows; with ``--db`` also records them as the reader's manual measurements. All or
nothing: the SR is read and placed on the CT, and the database checked, before anything is
written; the manifest appears only once the database rows are in.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any

import typer
from rich.table import Table
from rich.text import Text

from recist_tool.cli._app import app, console
from recist_tool.errors import InputError, UsageError


def _default_series(sr: Path) -> str | None:
    """The CT series a SEG-only SR (TID 1411 groups) names as *Source series for segmentation*,
    when no group references an image of it."""
    from recist_tool.io.sr import read_measurement_report

    rep = read_measurement_report(sr)
    if any(g.long.sop_instance_uid for g in rep.groups):
        return None
    return next((g.source_series_uid for g in rep.groups if g.source_series_uid), None)


def _check_store(store: Any, imp: Any, *, reader: str, trial: str | None) -> None:
    """What :func:`~recist_tool.batch.sr_import.record_import` would refuse, refused before it
    writes its first row (an unknown or inactive reader, an unknown subject without a known
    ``--trial``, lesion ids the reader already has for the subject)."""
    acct = next((r for r in store.readers() if r.name == reader), None)
    if acct is None:
        raise InputError(f"reader {reader!r} not found")
    if not acct.active:
        raise InputError(f"reader {reader!r} is deactivated")
    if acct.role not in ("reader", "admin"):
        raise InputError(f"reader {reader!r} has role {acct.role!r}; this needs reader or admin")
    if store.subject_info(imp.subject) is None:
        if not trial:
            raise InputError(f"{imp.subject} is not in the database; give --trial to enrol it")
        if trial not in store.trials():
            raise InputError(f"trial {trial!r} not found in the database; create it first: "
                             f"recist trial add {trial} [--settings trial.toml]")
        return
    held = {les.lesion_id for les in store.lesions(imp.subject, reader=reader)}
    clash = sorted(held & {les.lesion_id for les in imp.lesions})
    if clash:
        raise InputError(f"{reader} already has lesion(s) {', '.join(clash)} of {imp.subject}; "
                         "nothing imported")


@app.command("import-sr")
def import_sr_cmd(
    sr: Path = typer.Argument(..., help="DICOM SR file (TID 1500: Long/Short Axis, Length, "
                                        "Diameter, outlines, SEG segments)."),
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
    """Turn the lesion measurements of a DICOM SR into baseline lesions with seeds: bidirectional
    and single-line (Length) calipers, outlines and SEG segments; lengths in cm / µm are
    converted, other units refused. Nothing is written when it fails."""
    from recist_tool.batch.sr_import import import_sr, record_import, write_manifest
    from recist_tool.io.outputs import atomic_file

    when = None
    if date is not None:
        try:
            when = _dt.date.fromisoformat(date)
        except ValueError as exc:
            raise UsageError(f"--date {date!r} is not YYYY-MM-DD") from exc
    if db is not None and not reader:
        raise UsageError("--db needs --reader (whose read the lesions become)")
    if db is not None and "://" not in db and not Path(db).is_file():
        raise InputError(f"no database at {db}")
    if series is None and sr.is_file():
        series = _default_series(sr)
    store = None
    if db is not None:
        from recist_tool.store import TrialStore

        store = TrialStore(db)
    try:
        imp = import_sr(sr, ct, series=series, subject=subject, visit=visit, date=when, store=store)
        if store is not None:
            _check_store(store, imp, reader=reader or "", trial=trial)
        with atomic_file(out) as tmp:  # the manifest appears only when the rows are recorded
            write_manifest(imp, tmp)
            recorded = record_import(store, imp, reader=reader or "", trial=trial) if store else 0
    finally:
        if store is not None:
            store.close()
    t = Table(title=f"{imp.subject} {imp.visit} {imp.date.isoformat()} ({len(imp.lesions)} lesions)")
    for col in ("lesion", "category", "organ", "long mm", "short mm", "slice", "TID",
                "seed LPS (x, y, z) mm"):
        t.add_column(col)
    for les in imp.lesions:  # cells as plain text: an organ may be a foreign SR's code meaning
        t.add_row(*map(Text, (
            les.lesion_id, les.category.lower(), les.organ or "-",
            "-" if les.long_axis_mm is None else f"{les.long_axis_mm:.1f}",
            "-" if les.short_axis_mm is None else f"{les.short_axis_mm:.1f}",
            str(les.slice_index), les.template, ", ".join(f"{c:.2f}" for c in les.seed_lps))))
    console.print(t)
    for why in imp.report.skipped:
        console.print(f"skipped: {why}", highlight=False, markup=False, soft_wrap=True)
    console.print(f"manifest: {out}", highlight=False, markup=False, soft_wrap=True)
    if store is not None:
        console.print(f"recorded {recorded} lesion(s) in {db} as {reader}'s read",
                      highlight=False, markup=False)
