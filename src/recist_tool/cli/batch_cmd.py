"""``recist batch``: score a manifest of series (local pool or Dask), store, respond, export."""

from __future__ import annotations

from pathlib import Path

import typer

from recist_tool.cli._app import DB_OPTION, app, console, console_err

#: Exit codes of ``recist batch`` beyond the common ones (0 ok, 2 usage, 3 unusable input).
EXIT_CASES_FAILED = 1
EXIT_TRUTH_MISMATCH = 4


@app.command("batch")
def batch(
    manifest: Path = typer.Argument(..., help="Manifest (.csv or .toml): subject, visit, date, "
                                              "series_path, lesions with seeds (see README)."),
    db: str = DB_OPTION,
    outdir: Path = typer.Option(Path("."), "-o", "--outdir",
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
    n = len(summary.results)
    if n:
        console.print(f"{n} series scored in {summary.seconds:.1f} s "
                      f"({summary.series_per_minute:.1f} series/min, {summary.backend}); "
                      f"{len(summary.skipped)} skipped as stored", highlight=False)
    else:
        console.print(f"nothing to score: {len(summary.skipped)} series stored already",
                      highlight=False)
    others = summary.skipped_other_segmenter
    if others:  # --resume keeps them: say so, or a comparison mixes segmenters unseen
        names = ", ".join(sorted(set().union(*others.values())))
        console_err.print(f"warning: --resume kept {len(others)} stored series scored by "
                          f"another segmenter or version ({names}); they were not scored "
                          "again (drop --resume, or use a new database, to re-score them)",
                          highlight=False, soft_wrap=True)
    console.print(f"responses:     {summary.outputs['responses']}\n"
                  f"measurements:  {summary.outputs['measurements']}\n"
                  f"best response: {summary.outputs['best_response']}\ndatabase:      {db}",
                  highlight=False)
    code = 0
    for subject, err in summary.subject_errors.items():
        console_err.print(f"[red]responses of {subject} not computed:[/] {err}", highlight=False)
        code = EXIT_CASES_FAILED
    if summary.failed:
        console_err.print(f"[bold red]{len(summary.failed)} of {n} series failed:[/] "
                          + "; ".join(f"{r.subject} {r.visit}" for r in summary.failed),
                          highlight=False)
        code = EXIT_CASES_FAILED
    if gt is not None:
        subjects = sorted({r.subject for r in summary.responses})
        report = compare_with_truth(gt, summary.responses, summary.measurements,
                                    tolerance_mm=tolerance, subjects=subjects)
        console.print(truth_table(report))
        console.print(report.summary(), highlight=False)
        if not report.ok:
            for p in report.problems:
                console_err.print(f"[red]mismatch:[/] {p}", highlight=False)
            code = code or EXIT_TRUTH_MISMATCH
        else:
            console.print("[green]ground truth: all responses and long axes match[/]")
    if code:
        raise typer.Exit(code)
