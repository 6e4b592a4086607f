"""``recist respond``: score SDTM TU/TR files by RECIST 1.1 or iRECIST (thin shell)."""

from __future__ import annotations

from pathlib import Path

import typer

from recist_tool.cli._app import app, console, warning
from recist_tool.errors import InputError, UsageError
from recist_tool.io.outputs import atomic_outputs
from recist_tool.io.sdtm_csv import read_sdtm_csv, write_csv
from recist_tool.recist.policies import Policies, policies_from_toml
from recist_tool.recist.sdtm import BEST_COLUMNS, CRITERIA, RS_COLUMNS, respond


@app.command("respond")
def respond_cmd(
    tu: Path = typer.Option(..., "--tu", help="SDTM TU (tumour identification) CSV."),
    tr: Path = typer.Option(..., "--tr", help="SDTM TR (tumour results) CSV."),
    dm: Path | None = typer.Option(None, "--dm", help="SDTM DM CSV (reference start dates)."),
    criteria: str = typer.Option("recist1.1", "--criteria", help="recist1.1 or irecist."),
    settings: Path | None = typer.Option(None, "--settings",
                                         help="Trial settings TOML (recist table)."),
    out: Path = typer.Option(..., "-o", "--out", help="Output folder (rs.csv, best_response.csv)."),
) -> None:
    """Timepoint responses (rs.csv) and best overall response (best_response.csv) from SDTM."""
    criteria = criteria.strip().lower()
    if criteria not in CRITERIA:
        raise UsageError(f"--criteria must be one of {', '.join(CRITERIA)}, got {criteria!r}")
    policies = Policies()
    if settings is not None:
        try:
            text = settings.read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(f"cannot read settings {settings}: {exc.strerror or exc}") from exc
        policies = policies_from_toml(text, source=str(settings))
    result = respond(
        read_sdtm_csv(tu, required=("USUBJID", "TUTESTCD", "VISITNUM")),
        read_sdtm_csv(tr, required=("USUBJID", "TRTESTCD", "VISITNUM", "TRDTC")),
        read_sdtm_csv(dm, required=("USUBJID",)) if dm is not None else None,
        criteria, policies,
    )
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create output folder {out}: {exc.strerror or exc}") from exc
    for w in result.warnings:
        warning(w)
    with atomic_outputs(out) as files:  # both files, or neither
        n_rs = write_csv(files.path("rs.csv"), RS_COLUMNS, result.rs)
        write_csv(files.path("best_response.csv"), BEST_COLUMNS, result.best)
    console.print(f"{result.n_records} subject/evaluator record(s), {n_rs} RS rows "
                  f"({CRITERIA[criteria]}) → {out}", highlight=False)
