"""``recist segment``: one click → lesion mask, RECIST axes and volume."""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import numpy as np
import typer

from recist_tool.cli._app import NODE_ALIAS_OPTION, app, console, warning
from recist_tool.errors import UsageError


def _triplet(text: str, option: str) -> tuple[float, float, float]:
    parts = [p for p in text.replace(";", ",").split(",") if p.strip()]
    try:
        vals = tuple(float(p) for p in parts)
    except ValueError:
        vals = ()
    if len(vals) != 3:
        raise UsageError(f"{option} needs three comma-separated numbers, got {text!r}")
    return vals  # type: ignore[return-value]


def _pair(text: str, option: str) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """Two points ``A:B``, each three comma-separated numbers."""
    parts = text.split(":")
    if len(parts) != 2:
        raise UsageError(f"{option} needs two points 'a,b,c:d,e,f', got {text!r}")
    return _triplet(parts[0], option), _triplet(parts[1], option)


@app.command("segment")
def segment_cmd(
    image: Path = typer.Argument(..., help="CT series: DICOM folder/zip/file, NIfTI, NRRD or MHA; or "
                                           "a PACS series pacs://SERVER/STUDY_UID/SERIES_UID."),
    seed: str | None = typer.Option(None, "--seed", help="Click in voxel indices 'z,y,x'."),
    seed_lps: str | None = typer.Option(None, "--seed-lps",
                                        help="Click in patient coordinates LPS 'x,y,z' (mm)."),
    line: str | None = typer.Option(None, "--line",
                                    help="A reader's caliper line (long axis) in LPS mm "
                                         "'x1,y1,z1:x2,y2,z2'."),
    line_index: str | None = typer.Option(None, "--line-index",
                                          help="The caliper line in voxel indices "
                                               "'z1,y1,x1:z2,y2,x2'."),
    box: str | None = typer.Option(None, "--box",
                                   help="Box the lesion lies in, voxel indices (inclusive) "
                                        "'z1,y1,x1:z2,y2,x2'."),
    segmenter: str | None = typer.Option(None, "--segmenter",
                                         help="Segmenter name, optionally with options "
                                              "'name:key=value,...' (default: unet if its "
                                              "weights are installed, else classic)."),
    nodal: bool = typer.Option(False, "--nodal", help="Lymph node: report the short-axis slice."),
    node_alias: bool = NODE_ALIAS_OPTION,
    output: Path | None = typer.Option(None, "-o", "--out", help="Write the mask (NIfTI/NRRD/MHA)."),
    reference: Path | None = typer.Option(None, "--reference",
                                          help="Reference mask on the same grid: report dice_vs."),
    series: str | None = typer.Option(None, "--series", help="SeriesInstanceUID in a multi-series "
                                                             "folder."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    settings: Path | None = typer.Option(None, "--settings",
                                         help="Trial settings TOML naming the PACS servers "
                                              "([pacs.NAME]); default $RECIST_PACS_CONFIG."),
) -> None:
    """Segment the lesion under one click, a caliper line or a box; measure it (long/short axis,
    volume).

    A click on air, fat, bone or outside the volume, a zero-length line, a line or box outside
    the volume, or a seed outside its box end with one line and exit code 3.
    """
    from recist_tool.io import load_volume
    from recist_tool.io.pacs.config import use_settings
    from recist_tool.segment import (
        Prompt,
        default_segmenter_name,
        dice,
        get_segmenter,
        parse_segmenter_spec,
    )
    from recist_tool.segment.edge import describe_outline
    from recist_tool.segment.workflow import segment_and_measure

    if seed is not None and seed_lps is not None:
        raise UsageError("give --seed z,y,x or --seed-lps x,y,z, not both")
    if line is not None and line_index is not None:
        raise UsageError("give --line (LPS mm) or --line-index (voxels), not both")
    if seed is None and seed_lps is None and line is None and line_index is None and box is None:
        raise UsageError("give a prompt: --seed, --seed-lps, --line, --line-index or --box")
    point_zyx = _triplet(seed, "--seed") if seed is not None else None
    point_lps = _triplet(seed_lps, "--seed-lps") if seed_lps is not None else None
    line_ends = _pair(line_index, "--line-index") if line_index is not None else None
    box_zyx = _pair(box, "--box") if box is not None else None
    use_settings(settings)
    volume = load_volume(image, series) if series else load_volume(image)
    if line is not None:
        line_ends = tuple(tuple(float(v) for v in volume.lps_to_index(np.asarray(p)))
                          for p in _pair(line, "--line"))  # type: ignore[assignment]
    prompt = Prompt(point_zyx=point_zyx, point_lps=point_lps, line_zyx=line_ends,
                    box_zyx=box_zyx)
    with warnings.catch_warnings():  # the fall-back warning is reported with the mask below
        warnings.simplefilter("ignore", RuntimeWarning)
        name, options = parse_segmenter_spec(segmenter or default_segmenter_name())
        seg = get_segmenter(name, **options)
    t0 = time.perf_counter()
    lesion, measurement = segment_and_measure(volume, prompt, seg, node=nodal or node_alias)
    seconds = time.perf_counter() - t0
    out = measurement.to_dict() if measurement is not None else {}
    out.update({"segmenter": lesion.segmenter, "segmenter_version": lesion.version,
                "prompt": lesion.prompt.to_dict(), "seed_zyx": list(prompt.seed_voxel(volume)),
                "n_voxels": lesion.n_voxels, "leak_bounded": lesion.leak_bounded,
                "warnings": list(lesion.warnings), "seconds": round(seconds, 3)})
    if "routed_by" in lesion.info:  # unet handed a lesion outside the lung to classic
        out["routed_by"] = str(lesion.info["routed_by"])
    if "edge" in lesion.info:  # unet: which outline (and the half-contrast levels), and why
        out["edge"] = lesion.info["edge"]
    if reference is not None:
        from recist_tool.io.masks import load_mask

        ref = load_mask(reference, image=volume)
        out["dice_vs"] = dice(lesion.full(), np.asarray(ref.array, bool))
    if output is not None:
        from recist_tool.io import save_volume

        save_volume(volume.with_array(lesion.full().astype(np.uint8)), output)
        out["mask_path"] = str(output)
    for w in lesion.warnings:
        warning(w)
    if as_json:
        typer.echo(json.dumps(out, indent=2))
        return
    console.print(f"segmenter {lesion.segmenter} {lesion.version}: {lesion.n_voxels} voxels"
                  f"{' (leak bounded)' if lesion.leak_bounded else ''} in {seconds:.2f} s",
                  highlight=False)
    if "routed_by" in out:
        console.print(f"  ({out['routed_by']})", highlight=False)
    if "edge" in out:
        console.print(f"  outline: {describe_outline(out['edge'])}", highlight=False)
    if measurement is not None:
        console.print(f"long axis {measurement.long_axis_mm:.1f} mm, short axis "
                      f"{(measurement.short_axis_mm or 0):.1f} mm, volume "
                      f"{(measurement.volume_ml or 0):.2f} mL, slice z={measurement.slice_index}",
                      highlight=False)
    if "dice_vs" in out:
        console.print(f"Dice vs reference: {out['dice_vs']:.3f}", highlight=False)
    if output is not None:
        console.print(f"mask written to {output}", highlight=False)
