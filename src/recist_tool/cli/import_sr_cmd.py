"""``recist import-sr``: a read from a PACS, OHIF/dcmjs, highdicom or dcmqi (DICOM SR, PS3.16
TID 1500 with TID 1501 / 1410 / 1411 groups) → baseline lesions with seeds and caliper lines.

Thin shell over :mod:`recist_tool.batch.sr_import`: always writes the lesions as ``recist batch``
manifest rows; with ``--db`` also records them as the reader's manual measurements. All or
nothing: the SR is read and placed on the CT, and the database checked, before anything is
written; the manifest appears only once the database rows are in.

The SR, the CT and the SEG a TID 1411 group references may be on a PACS: the SR as its series
``pacs://SERVER/STUDY_UID/SERIES_UID``, the CT as ``--ct pacs://SERVER/STUDY_UID[/SERIES_UID]``
(default for an SR on a PACS: its study on the same server), the SEG found on the server by its
SOP Instance UID in the SR's (or the CT's) study. Each is retrieved into the PACS cache
(:mod:`recist_tool.io.pacs`) and read from there by the same code as files.
"""

from __future__ import annotations

import datetime as _dt
from contextlib import ExitStack
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


def _open_sr(stack: ExitStack, sr: str) -> tuple[Path, Any]:
    """The SR file to read and its PACS reference (None for a file).

    An SR series on a PACS is retrieved into the cache (held open by ``stack``); it must hold
    one SR object.
    """
    from recist_tool.io import pacs

    if not pacs.is_pacs_ref(sr):
        return Path(sr), None
    ref, files = stack.enter_context(pacs.open_pacs_series(sr, "SR"))
    if len(files) != 1:
        raise InputError(f"{ref}: the series holds {len(files)} SR objects; import-sr reads one "
                         "(a series per SR, as recist export writes)")
    return files[0], ref


def _ct_location(ct: str | None, sr_ref: Any) -> str:
    """``--ct`` as given (a PACS reference normalised), else the SR's study on its server."""
    from recist_tool.io import pacs

    if ct is not None:
        return str(pacs.parse_ref(ct)) if pacs.is_pacs_ref(ct) else ct
    if sr_ref is None:
        raise UsageError("--ct is needed: the folder / zip / file or pacs:// series of the CT the "
                         "SR was read on")
    return f"pacs://{sr_ref.server}/{sr_ref.study_uid}"


def _segs_from_pacs(stack: ExitStack, sr_path: Path, sr_ref: Any, ct: str) -> list[Path]:
    """Folders of the SEG series, retrieved from the PACS, that the SR's TID 1411 groups reference
    and need (a group whose lesion has axis lines, as recist-tool's own SRs, is placed by them).

    Looked for on the SR's server (else the CT's) in the SR's study (else the CT's), by SOP
    Instance UID; a SEG already next to a local SR is not looked for. None for an SR and CT on
    disk.
    """
    from recist_tool.io import pacs
    from recist_tool.io.sr import find_seg, read_measurement_report

    ct_ref = pacs.parse_ref(ct) if pacs.is_pacs_ref(ct) else None
    where = sr_ref or ct_ref
    if where is None:
        return []
    segmented = [(g, g.segment) for g in read_measurement_report(sr_path).groups
                 if g.segment is not None and not g.long.has_coords]  # lines need no SEG
    studies = list(dict.fromkeys(r.study_uid for r in (sr_ref, ct_ref) if r is not None))
    folders: dict[str, Path] = {}
    for g, segment in segmented:
        uid = segment.sop_instance_uid
        if sr_ref is None and find_seg(uid, [sr_path.parent]) is not None:
            continue
        hit = next(((study, series) for study in studies
                    if (series := pacs.find_object_series(where.server, study, uid, "SEG"))), None)
        if hit is None:
            raise InputError(f"{g.label or 'a measurement group'}: the SEG it references ({uid}) "
                             f"is not on PACS {where.server} (searched study "
                             f"{', '.join(studies)})")
        if hit[1] not in folders:
            _, files = stack.enter_context(
                pacs.open_pacs_series(f"pacs://{where.server}/{hit[0]}/{hit[1]}", "SEG"))
            folders[hit[1]] = files[0].parent
    return list(folders.values())


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
    sr: str = typer.Argument(..., help="DICOM SR file (TID 1500: Long/Short Axis, Length, "
                                       "Diameter, outlines, SEG segments), or its series on a "
                                       "PACS: pacs://SERVER/STUDY_UID/SERIES_UID."),
    ct: str | None = typer.Option(None, "--ct",
                                  help="Folder / zip / file holding the CT the SR was read on, "
                                       "or pacs://SERVER/STUDY_UID[/SERIES_UID] (default for an "
                                       "SR on a PACS: its study there)."),
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
    settings: Path | None = typer.Option(None, "--settings",
                                         help="Trial settings TOML naming the PACS servers "
                                              "([pacs.NAME]; default $RECIST_PACS_CONFIG)."),
) -> None:
    """Turn the lesion measurements of a DICOM SR into baseline lesions with seeds: bidirectional
    and single-line (Length) calipers, outlines and SEG segments; lengths in cm / µm are
    converted, other units refused. The SR, the CT and a referenced SEG may be on a PACS
    (pacs:// references). Nothing is written when it fails."""
    from recist_tool.io.pacs import use_settings

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
    use_settings(settings)
    with ExitStack() as stack:  # series retrieved from a PACS stay locked in the cache until done
        sr_path, sr_ref = _open_sr(stack, sr)
        ct_loc = _ct_location(ct, sr_ref)
        _import(sr_path, ct_loc, seg_places=_segs_from_pacs(stack, sr_path, sr_ref, ct_loc),
                sr_label=str(sr_ref or sr_path), series=series, subject=subject, visit=visit,
                when=when, out=out, db=db, reader=reader, trial=trial)


def _import(sr: Path, ct: str, *, seg_places: list[Path], sr_label: str, series: str | None,
            subject: str | None, visit: str, when: _dt.date | None, out: Path, db: str | None,
            reader: str | None, trial: str | None) -> None:
    """The import proper, on an SR file and a CT location (``import-sr``'s options, checked)."""
    from recist_tool.batch.sr_import import import_sr, record_import, write_manifest
    from recist_tool.io.outputs import atomic_file

    if series is None and sr.is_file():
        series = _default_series(sr)
    store = None
    if db is not None:
        from recist_tool.store import TrialStore

        store = TrialStore(db)
    try:
        imp = import_sr(sr, ct, series=series, subject=subject, visit=visit, date=when,
                        store=store, seg_places=seg_places, label=sr_label)
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
    if sr_label != str(sr):
        console.print(f"SR: {sr_label}; CT: {imp.series_path}", highlight=False, markup=False,
                      soft_wrap=True)
    console.print(f"manifest: {out}", highlight=False, markup=False, soft_wrap=True)
    if store is not None:
        console.print(f"recorded {recorded} lesion(s) in {db} as {reader}'s read",
                      highlight=False, markup=False)
