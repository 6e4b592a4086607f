"""The ``recist`` command line: a thin shell over the library.

Each sub-command lives in its own module and registers itself on :data:`app`. Errors derived from
:class:`~recist_tool.errors.RecistToolError` become one line on stderr and the error's exit code
(0 success, 2 usage error, 3 input that cannot be used); tracebacks only with ``--debug``.
Nothing printed is read as rich markup, and help texts are escaped once here, after all commands
are registered (see :mod:`recist_tool.cli._app`).
"""

from __future__ import annotations

import importlib
import sys

import typer

from recist_tool.cli._app import app, console_err, error, escape_help, state
from recist_tool.errors import RecistToolError

# Sub-command modules register themselves on `app` when imported; one per line.
_COMMAND_MODULES = (
    "batch_cmd",
    "deidentify_cmd",
    "endpoints_cmd",
    "evaluate_cmd",
    "evaluate_tracking_cmd",
    "export_cmd",
    "import_sr_cmd",
    "io_cmds",
    "measure_cmd",
    "report_cmd",
    "respond_cmd",
    "sample_cmd",
    "segment_cmd",
    "store_cmds",
)
for _name in _COMMAND_MODULES:
    importlib.import_module(f"recist_tool.cli.{_name}")
escape_help(app)

__all__ = ["app", "main"]


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``recist`` console script; returns the process exit code."""
    args = sys.argv[1:] if argv is None else argv
    state.debug = "--debug" in args
    try:
        rc = app(args=args, prog_name="recist", standalone_mode=False)
        if isinstance(rc, int) and rc:  # typer.Exit(n) inside a command returns n here
            return rc
    except RecistToolError as exc:
        if state.debug:
            raise
        error(exc)
        return exc.exit_code
    except typer.Exit as exc:
        return int(exc.exit_code or 0)
    except typer.Abort:
        console_err.print("aborted")
        return 1
    except Exception as exc:
        # Usage errors of the CLI parser (click, vendored by typer) carry exit_code and show().
        show, code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
        if callable(show) and isinstance(code, int):
            show()
            return code
        if state.debug:
            raise
        error(f"{type(exc).__name__}: {exc} (run with --debug for details)", label="internal error:")
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
