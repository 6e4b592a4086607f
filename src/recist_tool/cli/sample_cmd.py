"""``recist sample-data``: write the synthetic trial (DICOM CT, ground truth, batch manifest)."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.table import Table
from rich.text import Text

from recist_tool.cli._app import app, console
from recist_tool.errors import UsageError


@app.command("sample-data")
def sample_data(
    out: Path = typer.Argument(..., help="Output folder (created)."),
    seed: int = typer.Option(0, "--seed", help="Seed of UIDs, image noise and patient shifts."),
    n_subjects: int = typer.Option(3, "--n-subjects",
                                   help="Number of subjects (archetypes PR, SD→PD new, SD→PD "
                                        "growth repeat)."),
    subjects_alias: int | None = typer.Option(None, "--subjects", hidden=True,
                                              help="Former name of --n-subjects."),
    large_lesions: bool = typer.Option(
        False, "--large-lesions",
        help="The large-lesion trial: an ~80 mm lobulated central lung primary abutting the "
             "mediastinum, a nodal conglomerate and a ~50 mm necrotic liver metastasis join the "
             "archetypes (same responses)."),
    full_size: bool = typer.Option(
        False, "--full-size",
        help="Full-size series (512² at 0.70–0.78 mm, 301–376 slices of 1–1.25 mm over chest "
             "and abdomen, breathing between visits) with the large lesions; about 530 MB "
             "and 40 s a subject on 2 cores."),
) -> None:
    """Generate a small synthetic trial: CT series, ground_truth.json and manifest.csv."""
    from recist_tool.sample_data import generate_trial

    subjects = n_subjects if subjects_alias is None else subjects_alias
    if not 1 <= subjects <= 99:
        raise UsageError(f"--n-subjects must be between 1 and 99, got {subjects}")
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} exists and is not a folder")
    t0 = time.perf_counter()
    with console.status("writing synthetic trial…") as status:
        gt = generate_trial(out, seed=seed, n_subjects=subjects,
                            progress=lambda msg: status.update(Text(f"wrote {msg}")),
                            large_lesions=large_lesions, full_size=full_size)
    elapsed = time.perf_counter() - t0
    kind = ", full size" if full_size else ", large lesions" if large_lesions else ""
    table = Table(title=f"Synthetic trial in {out} (seed {seed}{kind})")
    for col in ("subject", "visit", "date", "slices", "mm", "lesions", "SOD mm", "expected"):
        table.add_column(col, no_wrap=True)
    for sid, subj in gt["subjects"].items():
        for visit, tp in subj["timepoints"].items():
            present = sum(1 for les in tp["lesions"].values() if les["present"])
            sod = tp.get("sod_mm")
            acq = tp["acquisition"]
            table.add_row(sid, visit, tp["date"], str(acq["shape_zyx"][0]),
                          f"{acq['slice_thickness_mm']:g}", str(present),
                          "" if sod is None else f"{sod:.1f}",
                          tp["overall_response"] or "baseline")
    console.print(table)
    console.print(f"series:       {out}/SUBJECT/VISIT/\nground truth: {out / 'ground_truth.json'}"
                  f"\nmanifest:     {out / 'manifest.csv'}\ntook {elapsed:.1f} s", highlight=False)
