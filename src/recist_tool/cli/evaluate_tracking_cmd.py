"""``recist evaluate-tracking``: lesion tracking on follow-ups made from real CT with known motion."""

from __future__ import annotations

import json
import warnings

import typer
from rich.table import Table

from recist_tool.cli._app import app, console, console_err, warning


def _f(v: float | None, fmt: str = ".2f") -> str:
    return "-" if v is None else format(v, fmt)


@app.command("evaluate-tracking")
def evaluate_tracking(
    datasets: list[str] = typer.Argument(..., help="Dataset folders (image/ + mask/; image.* + "
                                                   "label.* or tumours.*, one lesion per label "
                                                   "value; folders of those)."),
    segmenter: str | None = typer.Option(None, "--segmenter",
                                         help="Segmenter that reads the baseline (from each "
                                              "lesion's long axis), 'name:key=value,...' "
                                              "(default: unet if its weights are installed, "
                                              "else classic); each lesion keeps its route."),
    followups: str = typer.Option("shrink,stable,growth", "--followups",
                                  help="Follow-ups to make per case: shrink (0.7x), stable, "
                                       "growth (1.25x), comma-separated."),
    limit: int | None = typer.Option(None, "--limit", min=1,
                                     help="Only the first N cases of each dataset."),
    seed: int = typer.Option(0, "--seed", help="Base of every random draw."),
    threads: int = typer.Option(1, "--threads", min=1,
                                help="Threads for SimpleITK and torch (1: one core)."),
    per_lesion: bool = typer.Option(False, "--per-lesion",
                                    help="Print a row per lesion and follow-up."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Track lesions into follow-ups made from real CT (known patient shift, breathing, growth):
    status, centroid, registration and long-axis-ratio errors, confidence calibration, time."""
    import SimpleITK as sitk

    from recist_tool.segment import default_segmenter_name, get_segmenter, parse_segmenter_spec
    from recist_tool.segment.evaluate import discover_dataset
    from recist_tool.track_eval import FOLLOWUPS, evaluate_tracking_case, summarise_tracking

    kinds = [k.strip() for k in followups.split(",") if k.strip()]
    bad = [k for k in kinds if k not in FOLLOWUPS]
    if bad or not kinds:
        from recist_tool.errors import UsageError

        raise UsageError(f"--followups takes {', '.join(FOLLOWUPS)}, got {followups!r}")
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    spec = segmenter or default_segmenter_name()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        name, options = parse_segmenter_spec(spec)
        get_segmenter(name, **options)  # a bad spec fails here, before any work
    for w in caught:
        warning(w.message)
    results = []
    per_set = {}
    for d in datasets:
        ds = discover_dataset(d, split="all")
        groups: dict[str, list] = {}
        for c in ds.cases:  # the lesions of one image are tracked together
            groups.setdefault(c.image_key, []).append(c)
        cases = list(groups.values())[:limit]
        console_err.print(f"{ds.name}: {len(cases)} images, {sum(map(len, cases))} lesions",
                          highlight=False)
        got = []
        for k, group in enumerate(cases, 1):
            vol, _ = group[0].load()
            masks = [c.load()[1] for c in group]
            name = group[0].name if len(group) == 1 else (group[0].group or group[0].name)
            rows = evaluate_tracking_case(vol, masks, [c.name for c in group], dataset=ds.name,
                                          case=name, segmenter=spec, seed=seed, followups=kinds)
            console_err.print(f"  {k}/{len(cases)} {name}: "
                              + ", ".join(f"{r.followup} {r.status}" for r in rows),
                              highlight=False)
            got += rows
        per_set[ds.name] = summarise_tracking(got)
        results += got
    overall = summarise_tracking(results)
    if as_json:
        typer.echo(json.dumps({"segmenter": spec, "seed": seed, "followups": kinds,
                               "overall": overall, "datasets": per_set,
                               "lesions": [r.to_dict() for r in results] if per_lesion else None},
                              indent=2))
        return
    if per_lesion:
        t = Table(title="per lesion", header_style="bold")
        for col in ("dataset", "lesion", "follow-up", "status", "conf", "segmenter",
                    "centroid mm", "reg mm", "ratio", "true", "checks failed"):
            t.add_column(col)
        for r in results:
            t.add_row(r.dataset, r.lesion, r.followup, r.status, f"{r.confidence:.2f}",
                      r.segmenter or "-", _f(r.centroid_error_mm), _f(r.registration_error_mm),
                      _f(r.ratio, ".3f"), _f(r.true_ratio, ".3f"), ", ".join(r.failed_checks))
        console.print(t)
    t = Table(title=f"tracking, baseline read by {spec} from a line (seed {seed})",
              header_style="bold")
    for col in ("set", "n", "found/uncertain/absent?", "found, wrong lesion", "right lesions found",
                "centroid mm med/max", "reg mm med/max", "ratio err med/max (all)",
                "ratio err med/max (found)", "shrink ratios", "s/follow-up med/max",
                "CPU s med/max"):
        t.add_column(col, justify="left" if col == "set" else "right")
    for label, s in [*per_set.items(), ("all", overall)]:
        st = s["status"]
        t.add_row(label, str(s["n"]),
                  f"{st.get('found', 0)}/{st.get('uncertain', 0)}/{st.get('absent?', 0)}",
                  str(s["found_wrong_lesion"]),
                  f"{s['right_lesion_found']} of {s['right_lesion']}",
                  f"{_f(s['centroid_error_mm']['median'])}/{_f(s['centroid_error_mm']['max'])}",
                  f"{_f(s['registration_error_mm']['median'])}/"
                  f"{_f(s['registration_error_mm']['max'])}",
                  f"{_f(s['ratio_error']['median'], '.3f')}/{_f(s['ratio_error']['max'], '.3f')}",
                  f"{_f(s['ratio_error_found']['median'], '.3f')}/"
                  f"{_f(s['ratio_error_found']['max'], '.3f')}",
                  " ".join(_f(v, ".2f") for v in s["shrink_ratios"][:8])
                  + (" ..." if len(s["shrink_ratios"]) > 8 else ""),
                  f"{_f(s['seconds_per_followup']['median'], '.1f')}/"
                  f"{_f(s['seconds_per_followup']['max'], '.1f')}",
                  f"{_f(s['cpu_seconds_per_followup']['median'], '.1f')}/"
                  f"{_f(s['cpu_seconds_per_followup']['max'], '.1f')}")
    console.print(t)
    cal = Table(title="confidence calibration (all sets)", header_style="bold")
    for col in ("confidence", "n", "right lesion (centroid <= 5 mm)", "ratio error <= 0.05"):
        cal.add_column(col, justify="right")
    for b in overall["calibration"]:
        cal.add_row(b["confidence"], str(b["n"]), _f(b["right_lesion"], ".3f"),
                  _f(b["ratio_within_0.05"], ".3f"))
    console.print(cal)
    a = Table(title="confidence at or above (all sets)", header_style="bold")
    for col in ("confidence", "n", "right lesion (centroid <= 5 mm)"):
        a.add_column(col, justify="right")
    for b in overall["calibration_at_or_above"]:
        a.add_row(f">= {b['confidence']:.1f}", str(b["n"]), _f(b["right_lesion"], ".3f"))
    console.print(a)
