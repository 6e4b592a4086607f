"""``recist info`` and ``recist convert``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from recist_tool import io
from recist_tool.cli._app import app, console, styled


@app.command("info")
def info(
    path: Path = typer.Argument(..., help="DICOM folder, file, DICOMDIR or .zip; a volume file; "
                                          "or a PACS series pacs://SERVER/STUDY_UID[/SERIES_UID]."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    settings: Path | None = typer.Option(None, "--settings",
                                         help="Trial settings TOML naming the PACS servers "
                                              "([pacs.NAME]); default $RECIST_PACS_CONFIG."),
) -> None:
    """List the CT series found under PATH, their geometry warnings, and what was skipped."""
    from recist_tool.io.pacs.config import is_pacs_ref, parse_ref, use_settings

    use_settings(settings)
    shown = str(parse_ref(path)) if is_pacs_ref(path) else str(path)
    result: dict[str, Any]  # ScanResult.to_dict()'s shape: "series" and "skipped" lists of dicts
    if io.volume_format(path) is not None and path.is_file():
        vol = io.load_volume_file(path)
        result = {"series": [{
            "series_uid": None, "folder": ".", "modality": vol.meta.modality or None,
            "series_description": path.name, "study_date": None,
            "n_slices": vol.shape[0], "shape_zyx": list(vol.shape),
            "spacing_zyx_mm": [round(v, 4) for v in vol.spacing],
            "slice_thickness_mm": None,
            "warnings": (["GANTRY_TILT"] if vol.is_sheared else []), "warning_details": [],
        }], "skipped": []}
    else:
        result = io.scan(path).to_dict()
    if as_json:
        console.print_json(json.dumps(result))
        return
    table = Table(title=f"CT series under {shown}", show_lines=False, title_justify="left")
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("folder", overflow="fold")
    table.add_column("description", overflow="fold")
    table.add_column("date", no_wrap=True)
    table.add_column("z×y×x", no_wrap=True)
    table.add_column("spacing mm", no_wrap=True)
    table.add_column("warnings", overflow="fold")
    for i, s in enumerate(result["series"], 1):
        table.add_row(
            str(i), s.get("folder") or ".", s["series_description"] or "", s["study_date"] or "",
            "×".join(str(v) for v in s["shape_zyx"]),
            "×".join(f"{v:.3g}" for v in s["spacing_zyx_mm"]),
            ", ".join(s["warnings"]) or "-",
        )
    console.print(table)
    for i, s in enumerate(result["series"], 1):
        console.print(f"  #{i} series UID {s['series_uid']}", highlight=False, soft_wrap=True)
        for code, text in zip(s["warnings"], s["warning_details"], strict=False):
            console.print(styled(f"     {code}", "yellow", f": {text}"), soft_wrap=True)
    if result["skipped"]:
        skipped = Table(title="Skipped", show_lines=False)
        skipped.add_column("path", overflow="fold")
        skipped.add_column("reason")
        skipped.add_column("detail", overflow="fold")
        for k in result["skipped"]:
            skipped.add_row(k["path"], k["reason"], k["detail"])
        console.print(skipped)
    if not result["series"]:
        console.print("no CT volume found", style="red")
        raise typer.Exit(3)


@app.command("convert")
def convert(
    path: Path = typer.Argument(..., help="DICOM folder, file, DICOMDIR or .zip; a volume file; "
                                          "or a PACS series pacs://SERVER/STUDY_UID[/SERIES_UID]."),
    output: Path = typer.Option(..., "-o", "--out", help="OUT.nii.gz, OUT.nrrd or OUT.mha"),
    series: str = typer.Option(None, "--series", help="Series UID when PATH holds several."),
    resample: bool = typer.Option(False, "--resample",
                                  help="Resample tilted/unevenly spaced stacks to a regular grid."),
    settings: Path | None = typer.Option(None, "--settings",
                                         help="Trial settings TOML naming the PACS servers "
                                              "([pacs.NAME]); default $RECIST_PACS_CONFIG."),
) -> None:
    """Convert one CT series to NIfTI, NRRD or MHA with its exact geometry."""
    from recist_tool.io.pacs.config import use_settings

    use_settings(settings)
    vol = io.load_volume(path, series=series, resample=resample)
    io.save_volume(vol, output)
    codes = ", ".join(vol.meta.warning_codes) or "none"
    console.print(f"wrote {output} shape (z,y,x)={vol.shape} spacing (z,y,x)="
                  f"{tuple(round(s, 4) for s in vol.spacing)} mm warnings: {codes}",
                  highlight=False)
