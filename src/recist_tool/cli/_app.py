"""The typer application object and state shared by the sub-command modules."""

from __future__ import annotations

from dataclasses import dataclass

import typer
from rich.console import Console

from recist_tool import __version__


@dataclass
class _State:
    debug: bool = False


state = _State()
console = Console()
console_err = Console(stderr=True)

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
