"""Nothing the CLI prints is read as rich markup: error messages and help texts keep their
``[...]`` (issue #35 item 3), through the real command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from recist_tool.cli import app

RECIST = [sys.executable, "-m", "recist_tool.cli"]
ENV = dict(os.environ, COLUMNS="200", NO_COLOR="1")

BAD_SEED = '''[[case]]
subject = "P1"
visit = "BL"
date = "2025-01-02"
series_path = "p1"
lesions = [{ lesion_id = "T01", category = "target", organ = "lung", seed = [1, 2] }]
'''


def test_error_with_brackets_prints_as_written(tmp_path: Path) -> None:
    """``seed must be [x, y, z] (LPS mm)``: one line on stderr, exit 3, no traceback."""
    manifest = tmp_path / "m.toml"
    manifest.write_text(BAD_SEED)
    run = subprocess.run([*RECIST, "batch", str(manifest), "--db", str(tmp_path / "r.db"),
                          "-o", str(tmp_path / "out")], capture_output=True, text=True, env=ENV,
                         timeout=300)
    assert run.returncode == 3
    assert run.stderr == f"error: {manifest}:6: seed must be [x, y, z] (LPS mm)\n"
    assert "Traceback" not in run.stdout + run.stderr


def test_help_keeps_brackets() -> None:
    """``recist export --help`` shows ``[evaluators]`` (typer's rich help read it as a tag)."""
    res = CliRunner().invoke(app, ["export", "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0
    assert "[evaluators] maps reader accounts" in res.output
    run = subprocess.run([*RECIST, "export", "--help"], capture_output=True, text=True, env=ENV,
                         timeout=300)
    assert run.returncode == 0 and "[evaluators] maps reader accounts" in run.stdout


def test_every_help_text_survives() -> None:
    """Every option's help with a ``[``, as written, appears in its command's ``--help`` (words
    joined across line wraps), neither lost nor escaped twice (a backslash shown); no command's
    help shows an escaping backslash."""
    import typer

    def commands(t: typer.Typer, prefix: tuple[str, ...] = ()):  # noqa: ANN202
        for c in t.registered_commands:
            yield (*prefix, c.name or c.callback.__name__.replace("_", "-")), c.callback
        for g in t.registered_groups:
            yield from commands(g.typer_instance, (*prefix, g.name))

    import inspect
    import re

    from rich.markup import render

    runner = CliRunner()
    checked = 0
    for path, callback in commands(app):
        texts = [p.default.help for p in inspect.signature(callback).parameters.values()
                 if isinstance(p.default, typer.models.ParameterInfo) and p.default.help]
        texts = [render(t).plain for t in texts if "[" in t]  # the text a reader wrote
        res = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "250"})
        assert res.exit_code == 0, (path, res.output)
        shown = re.sub(r"[\s│]+", " ", res.output)
        assert "\\[" not in res.output, (path, "escaped twice")
        for text in texts:
            assert re.sub(r"\s+", " ", text) in shown, (path, text)
            checked += 1
    assert checked >= 1
