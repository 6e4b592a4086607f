"""The typer application object, its consoles and the state shared by the sub-command modules.

Nothing the CLI prints is read as rich markup: both consoles are made with ``markup=False``, so
a message such as ``seed must be [x, y, z] (LPS mm)`` or a path with brackets prints as it is.
Colour goes through :func:`styled` (a :class:`rich.text.Text` with a styled label) and the
:func:`error`, :func:`warning` and :func:`note` helpers. Help texts are protected the same way
once all commands are registered (:func:`escape_help`).
"""

from __future__ import annotations

import inspect
import os
import sys
from dataclasses import dataclass
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.text import Text

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


console = Console(width=_width(), markup=False)
console_err = Console(stderr=True, width=_width(), markup=False)


def styled(label: str, style: str, message: object = "") -> Text:
    """``label`` in ``style``, then ``message`` as plain text (never read as markup).

    Parameters
    ----------
    label : str
        The coloured part, e.g. ``"error:"``.
    style : str
        A rich style, e.g. ``"bold red"``.
    message : object
        The rest of the line; ``str()`` of it is printed literally.

    Returns
    -------
    rich.text.Text
        The line, ready for ``console.print``.
    """
    text = str(message)
    return Text.assemble((label, style), " " if text else "", text)


def error(message: object, label: str = "error:") -> None:
    """One line on stderr: a red ``label`` and the message, printed literally."""
    console_err.print(styled(label, "bold red", message), soft_wrap=True)


def warning(message: object, label: str = "warning:") -> None:
    """One line on stderr: a yellow ``label`` and the message, printed literally."""
    console_err.print(styled(label, "yellow", message), soft_wrap=True)


def note(message: object, label: str, style: str = "yellow") -> None:
    """One line on stdout: a coloured ``label`` and the message, printed literally."""
    console.print(styled(label, style, message), soft_wrap=True)


def _escape_params(callback: Any, seen: set[int]) -> None:
    for param in inspect.signature(callback).parameters.values():
        info = param.default
        if isinstance(info, typer.models.ParameterInfo) and info.help and id(info) not in seen:
            seen.add(id(info))  # shared options (--db) are escaped once
            info.help = escape(info.help)


def escape_help(typer_app: typer.Typer, seen: set[int] | None = None) -> None:
    """Escape the help texts of every command, option and sub-group of ``typer_app`` in place,
    so that typer's rich help prints ``[evaluators]`` instead of reading it as a style tag.

    Called once, after all commands are registered (``recist_tool.cli``); each text is escaped
    once even where one option object serves several commands.

    Parameters
    ----------
    typer_app : typer.Typer
        The application (sub-groups are walked recursively).
    seen : set of int, optional
        ``id()`` of the objects escaped already (internal).
    """
    seen = set() if seen is None else seen
    info = typer_app.info
    if isinstance(info.help, str) and id(info) not in seen:
        seen.add(id(info))
        info.help = escape(info.help)
    if typer_app.registered_callback is not None and typer_app.registered_callback.callback:
        _escape_params(typer_app.registered_callback.callback, seen)
    for cmd in typer_app.registered_commands:
        if cmd.callback is None or id(cmd) in seen:
            continue
        seen.add(id(cmd))
        doc = cmd.help if cmd.help is not None else inspect.getdoc(cmd.callback)
        if doc:
            cmd.help = escape(doc)
        _escape_params(cmd.callback, seen)
    for group in typer_app.registered_groups:
        if isinstance(group.help, str) and id(group) not in seen:
            seen.add(id(group))
            group.help = escape(group.help)
        if group.typer_instance is not None:
            escape_help(group.typer_instance, seen)

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
#: ``--node``: the former name of ``--nodal`` (``recist measure``, ``recist segment``), hidden and
#: still accepted so that scripts written for it keep working.
NODE_ALIAS_OPTION = typer.Option(False, "--node", hidden=True, help="Former name of --nodal.")
