"""``recist batch``: score a manifest of series (local pool or Dask), store, respond, export."""

from __future__ import annotations

from pathlib import Path

import typer

from recist_tool.cli._app import DB_OPTION, app, console, error, warning

#: Exit codes of ``recist batch`` beyond the common ones (0 ok, 2 usage, 3 unusable input).
EXIT_CASES_FAILED = 1
EXIT_TRUTH_MISMATCH = 4


@app.command("batch")
def batch(
    manifest: Path = typer.Argument(..., help="Manifest (.csv or .toml): subject, visit, date, "
                                              "series_path, lesions with seeds (see README)."),
    db: str = DB_OPTION,
    outdir: Path = typer.Option(Path("."), "-o", "--out",
                                help="Folder for responses.csv and measurements.csv."),
    workers: int | None = typer.Option(None, "--workers", "-j",
                                       help="Local worker processes (default: CPU count; "
                                            "0: in this process)."),
    scheduler: str | None = typer.Option(None, "--scheduler", envvar="DASK_SCHEDULER_ADDRESS",
                                         help="Dask scheduler tcp://host:port (runs the cases "
                                              "on that cluster)."),
    resume: bool = typer.Option(False, "--resume", help="Skip cases already stored."),
    segmenter: str | None = typer.Option(None, "--segmenter",
                                         help="Segmenter name (default unet if its weights "
                                              "exist, else classic), options after a colon: "
                                              "classic:band_fraction=0.5"),
    settings: Path | None = typer.Option(None, "--settings",
                                         help="Trial settings TOML (criteria, RECIST policies)."),
    reader: str = typer.Option("batch", "--reader", help="Reader account the reads are stored as."),
    truth: Path | None = typer.Option(None, "--truth",
                                      help="Compare with a ground truth JSON (exit 4 on "
                                           "mismatch)."),
    tolerance: float = typer.Option(1.5, "--tolerance",
                                    help="Long-axis tolerance (mm) for --truth."),
) -> None:
    """Score every series of a manifest: segment, track, measure, store, compute responses."""
    from recist_tool.batch import compare_with_truth, load_truth, run_batch
    from recist_tool.batch.report import RichProgress, subject_tables, truth_table

    gt = load_truth(truth) if truth is not None else None
    with RichProgress(console) as progress:
        summary = run_batch(manifest, db=db, outdir=outdir, workers=workers, scheduler=scheduler,
                            resume=resume, segmenter=segmenter, settings=settings, reader=reader,
                            progress=progress)
    for table in subject_tables(summary.responses, summary.measurements, gt, summary.best):
        console.print(table)
    n_failed = len(summary.failed)
    n_ok = len(summary.results) - n_failed
    if summary.results:  # what happened: scored, failed, skipped; a rate only of those scored
        skipped = f", {len(summary.skipped)} skipped as stored" if summary.skipped else ""
        rate = (f"{60.0 * n_ok / summary.seconds:.1f} series/min, "
                if n_ok and summary.seconds > 0 else "")
        console.print(f"{n_ok} series scored, {n_failed} failed{skipped} in "
                      f"{summary.seconds:.1f} s ({rate}{summary.backend})", highlight=False)
    else:
        console.print(f"nothing to score: {len(summary.skipped)} series stored already",
                      highlight=False)
    others = summary.skipped_other_segmenter
    if others:  # --resume keeps them: say so, or a comparison mixes segmenters unseen
        names = ", ".join(sorted(set().union(*others.values())))
        warning(f"--resume kept {len(others)} stored series scored by another segmenter or "
                f"version ({names}); they were not scored again (drop --resume, or use a new "
                "database, to re-score them)")
    console.print(f"responses:     {summary.outputs['responses']}\n"
                  f"measurements:  {summary.outputs['measurements']}\n"
                  f"best response: {summary.outputs['best_response']}\ndatabase:      {db}",
                  highlight=False)
    code = 0
    for subject, err in summary.subject_errors.items():
        error(err, label=f"responses of {subject} not computed:")
        code = EXIT_CASES_FAILED
    if summary.failed:
        error("; ".join(f"{r.subject} {r.visit}" for r in summary.failed),
              label=f"{n_failed} of {len(summary.results)} series failed:")
        code = EXIT_CASES_FAILED
    if gt is not None:
        subjects = sorted({r.subject for r in summary.responses})
        report = compare_with_truth(gt, summary.responses, summary.measurements,
                                    tolerance_mm=tolerance, subjects=subjects)
        console.print(truth_table(report))
        console.print(report.summary(), highlight=False)
        if not report.ok:
            for p in report.problems:
                error(p, label="mismatch:")
            code = code or EXIT_TRUTH_MISMATCH
        else:
            console.print("ground truth: all responses and long axes match", style="green")
    if code:
        raise typer.Exit(code)
