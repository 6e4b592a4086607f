"""``recist evaluate-model``: ULS23-style metrics of a segmenter on lesion datasets."""

from __future__ import annotations

import json
import warnings

import typer
from rich.table import Table

from recist_tool.cli._app import app, console, console_err, warning


def _f(v, fmt: str = ".3f") -> str:
    return "-" if v is None else format(v, fmt)


@app.command("evaluate-model")
def evaluate_model(
    datasets: list[str] = typer.Argument(..., help="Dataset folders (image/ + mask/; image.* + "
                                                   "label.* or tumours.*, one lesion per label "
                                                   "value; folders of those) or "
                                                   "'synthetic[:N]'."),
    segmenter: str | None = typer.Option(None, "--segmenter",
                                         help="Segmenter name, optionally with options "
                                              "'name:key=value,...' (default: unet if its "
                                              "weights are installed, else classic)."),
    min_diameter: float | None = typer.Option(None, "--min-diameter",
                                              help="Only lesions whose reference long axis is at "
                                                   "least this many mm."),
    split: str = typer.Option("validation", "--split",
                              help="Split of a split dataset to evaluate (LIDC-IDRI by "
                              "patient, the sarcomas by case): validation, train or all."),
    prompt: str = typer.Option("click", "--prompt",
                               help="What each lesion is segmented from: click (its centre), line "
                                    "(its long axis, each end moved up to 10 % of its length), "
                                    "box (its bounding box grown by 10 % a side)."),
    clicks: int = typer.Option(3, "--clicks", help="Further prompts per lesion for consistency."),
    slice_mm: float | None = typer.Option(None, "--slice-mm",
                                          help="Re-slice every lesion as thick-slice CT of about "
                                               "this slice thickness (mm) first, its reference "
                                               "as the voxels at least half lesion; lesions "
                                               "that cannot be are left out."),
    per_case: bool = typer.Option(False, "--per-case", help="Include per-lesion results (JSON)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Evaluate a segmenter: Dice, long/short-axis error, click consistency, seconds per click."""
    from recist_tool.errors import UsageError
    from recist_tool.segment import (
        default_segmenter_name,
        get_segmenter,
        parse_segmenter_spec,
    )
    from recist_tool.segment.evaluate import PROMPT_KINDS, discover_dataset, evaluate_dataset

    if prompt not in PROMPT_KINDS:
        raise UsageError(f"--prompt must be one of {', '.join(PROMPT_KINDS)}, got {prompt!r}")
    if split not in ("validation", "train", "all"):
        raise UsageError(f"--split must be validation, train or all, got {split!r}")
    if slice_mm is not None and not slice_mm > 0:
        raise UsageError(f"--slice-mm must be a positive thickness in mm, got {slice_mm}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        name, options = parse_segmenter_spec(segmenter or default_segmenter_name())
        seg = get_segmenter(name, **options)
    for w in caught:
        warning(w.message)
    results = []
    for d in datasets:
        ds = discover_dataset(d, split=split)
        console_err.print(f"{ds.name} ({ds.split}): {len(ds.cases)} cases", highlight=False)
        r = evaluate_dataset(ds, seg, min_diameter_mm=min_diameter, clicks=clicks,
                             per_case=per_case, slice_mm=slice_mm, prompt=prompt)
        if slice_mm is not None:
            console_err.print(f"{r['dataset']}: {len(ds.cases) - r['n_not_resliced']} of "
                              f"{len(ds.cases)} cases re-sliced; of the {r['n']} evaluated, "
                              f"{r['n_cut_by_stack']} have lesion in their first or last slice",
                              highlight=False)
        results.append(r)
    if as_json:
        typer.echo(json.dumps({"segmenter": seg.name, "segmenter_version": seg.version,
                               "datasets": results}, indent=2))
        return
    t = Table(title=f"segmenter {seg.name} {seg.version}, from a {prompt}", header_style="bold")
    for col in ("dataset", "n", "Dice", "LA err mm (med)", "LA err % (med)", "SA err mm (med)",
                "consistency", "s/prompt", "no lesion", "leak"):
        t.add_column(col, justify="right" if col != "dataset" else "left")
    for r in results:
        t.add_row(f"{r['dataset']} ({r['split']})", str(r["n"]), _f(r["dice_mean"]),
                  _f(r["long_axis_error_mm_median"], ".2f"),
                  _f(_pct(r["long_axis_rel_error_median"]), ".1f"),
                  _f(r["short_axis_error_mm_median"], ".2f"),
                  _f(r["consistency_dice_mean"]), _f(r["seconds_per_click"], ".3f"),
                  str(r["n_no_lesion"]), str(r["n_leak_bounded"]))
        for size, b in r["by_size"].items():
            t.add_row(f"  {size} mm", str(b["n"]), _f(b["dice_mean"]),
                      _f(b["long_axis_error_mm_median"], ".2f"),
                      _f(_pct(b["long_axis_rel_error_median"]), ".1f"), "",
                      _f(b["consistency_dice_mean"]), "", "", "")
    console.print(t)


def _pct(v: float | None) -> float | None:
    return None if v is None else 100.0 * v
