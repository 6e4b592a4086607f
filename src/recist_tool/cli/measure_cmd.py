"""``recist measure``: long axis, short axis, volume of a lesion mask file."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from recist_tool.cli._app import NODE_ALIAS_OPTION, app, console
from recist_tool.measure import AxisMeasurement, measure_mask


def _pt(p: tuple[float, float, float] | None) -> str:
    return "-" if p is None else "(" + ", ".join(f"{c:.1f}" for c in p) + ")"


def _table(r: AxisMeasurement, title: str) -> Table:
    t = Table(title=title, show_header=True, header_style="bold")
    t.add_column("quantity")
    t.add_column("value", justify="right")
    t.add_column("end points, LPS mm (x, y, z)")
    la = r.long_axis_endpoints_lps
    sa = r.short_axis_endpoints_lps
    t.add_row("long axis (mm)", f"{r.long_axis_mm:.1f}", f"{_pt(la[0])} -> {_pt(la[1])}")
    t.add_row("short axis (mm)", "-" if r.short_axis_mm is None else f"{r.short_axis_mm:.1f}",
              "-" if sa is None else f"{_pt(sa[0])} -> {_pt(sa[1])}")
    t.add_row("slice index (z)", str(r.slice_index), "chosen for the largest short axis"
              if r.node else "chosen for the longest long axis")
    t.add_row("volume (mL)", "-" if r.volume_ml is None else f"{r.volume_ml:.2f}", "")
    t.add_row("max 3D diameter (mm)",
              "-" if r.max_3d_diameter_mm is None else f"{r.max_3d_diameter_mm:.1f}", "")
    t.add_row("components on slice", str(r.n_components),
              "; ".join(f"{c.long_axis_mm:.1f} x {c.short_axis_mm:.1f} mm" for c in r.components)
              if r.n_components > 1 else "")
    return t


@app.command("measure")
def measure(
    mask: Path = typer.Argument(..., help="Lesion mask: NIfTI, NRRD, MHA label map or DICOM SEG."),
    image: Path | None = typer.Option(
        None, "--image", help="The image the mask was drawn on (its exact geometry is used)."
    ),
    label: int | None = typer.Option(
        None, "--label", help="Label value (label map) or segment number (SEG) to measure."
    ),
    nodal: bool = typer.Option(
        False, "--nodal", help="Lymph node: measure on the slice with the largest short axis."
    ),
    node_alias: bool = NODE_ALIAS_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Measure RECIST long axis, short axis, volume and maximal 3D diameter of a lesion mask."""
    from recist_tool.io.masks import load_image_volume, load_mask

    ref = None if image is None else load_image_volume(image)
    vol = load_mask(mask, image=ref, label=label)
    result = measure_mask(vol, node=nodal or node_alias)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
    else:
        console.print(_table(result, f"{mask.name}" + (f" (label {label})" if label else "")))
