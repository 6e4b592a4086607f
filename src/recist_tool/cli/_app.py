"""The typer application object and state shared by the sub-command modules."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import typer
from rich.console import Console

from recist_tool import __version__


@dataclass
class _State:
    debug: bool = False


state = _State()


def _width() -> int | None:
    """Terminal width; 140 columns when output goes to a file or pipe (rich would use 80)."""
    if os.environ.get("COLUMNS") or sys.stdout.isatty():
        return None
    return 140


console = Console(width=_width())
console_err = Console(stderr=True, width=_width())

app = typer.Typer(
    name="recist",
    help="RECIST 1.1 / iRECIST tumour measurement on CT.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        console.print(f"recist-tool {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """RECIST 1.1 / iRECIST tumour measurement on CT."""
    state.debug = debug


# --- options shared by the commands that read the trial database ---------------------------------
#: ``--db``: SQLite file or PostgreSQL URL (``$RECIST_DB``).
DB_OPTION = typer.Option("recist.db", "--db", envvar="RECIST_DB",
                         help="SQLite file (default recist.db here) or postgresql:// URL.")
#: ``--subject`` (repeatable), ``--reader``, ``--trial``: which reads an export or report covers.
SUBJECTS_OPTION = typer.Option(None, "--subject", "-s",
                               help="Subject code (repeat for several; default: all).")
READER_OPTION = typer.Option(None, "--reader", "-r",
                             help="Whose reads (needed when a subject has several readers).")
TRIAL_OPTION = typer.Option(None, "--trial", help="Trial (when the database holds several).")
