"""README's command list (the block under "## Command line") agrees with the CLI itself.

Every command of ``recist`` (sub-commands such as ``reader add`` included) has an entry in the list,
and every option it takes (one of its names: ``-o`` or ``--out``) is in that entry; every command
and option the list names exists. An entry starts with a line ``recist COMMAND``; the lines after
it up to the next such line belong to it. Comments (from `` #`` on) are not read, so an option
named only in a comment does not count.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer

from recist_tool.cli import app

README = Path(__file__).resolve().parents[2] / "README.md"
OPTION = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")


def cli_commands() -> dict[tuple[str, ...], set[frozenset[str]]]:
    """``{("reader", "add"): {frozenset({"--db"}), frozenset({"-o", "--out"}), ...}, ...}``; the
    root ``()`` holds the global options."""
    out: dict[tuple[str, ...], set[frozenset[str]]] = {}

    def options(cmd: object) -> set[frozenset[str]]:
        return {frozenset(p.opts + p.secondary_opts) for p in cmd.params  # type: ignore[attr-defined]
                if p.param_type_name == "option" and not getattr(p, "hidden", False)}

    def walk(cmd: object, path: tuple[str, ...]) -> None:
        subs = getattr(cmd, "commands", None)
        if subs is None:
            out[path] = options(cmd)
            return
        if not path:
            out[()] = options(cmd)
        for name, sub in subs.items():
            if not getattr(sub, "hidden", False):
                walk(sub, (*path, name))

    walk(typer.main.get_command(app), ())
    return out


def readme_entries() -> dict[tuple[str, ...], set[str]]:
    """README's command list: command path → the options its entry names."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("\n## Command line\n"):]
    m = re.search(r"^```\w*\n(.*?)^```", section, re.S | re.M)
    assert m, "no code block under '## Command line' in README.md"
    known = cli_commands()
    entries: dict[tuple[str, ...], set[str]] = {}
    current: tuple[str, ...] | None = None
    for raw in m.group(1).splitlines():
        line = re.split(r"(?:^|\s)#", raw, maxsplit=1)[0]
        if line.startswith("recist "):
            words = line.split()[1:]
            path: tuple[str, ...] = ()
            for w in words:
                if (*path, w) in known or any(k[:len(path) + 1] == (*path, w) for k in known):
                    path = (*path, w)
                else:
                    break
            assert path not in entries or path == (), f"README lists recist {' '.join(path)} twice"
            current = path
            entries.setdefault(path, set())
        assert current is not None, f"README command list: {raw!r} before any 'recist' line"
        entries[current] |= set(OPTION.findall(line))
    return entries


CLI = cli_commands()
DOC = readme_entries()


def test_every_command_is_listed_and_exists() -> None:
    missing = sorted(" ".join(p) for p in CLI if p not in DOC)
    unknown = sorted(" ".join(p) for p in DOC if p not in CLI)
    assert not missing, f"commands missing from README's list: {missing}"
    assert not unknown, f"README lists commands the CLI does not have: {unknown}"


@pytest.mark.parametrize("path", sorted(CLI), ids=lambda p: " ".join(p) or "recist")
def test_options_agree(path: tuple[str, ...]) -> None:
    listed = DOC.get(path, set())
    names = set().union(*CLI[path]) if CLI[path] else set()
    missing = sorted(min(o, key=len) if len(o) == 1 else max(o, key=len)
                     for o in CLI[path] if not o & listed)
    unknown = sorted(listed - names)
    where = f"recist {' '.join(path)}".strip()
    assert not missing, f"{where}: options missing from README's list: {missing}"
    assert not unknown, f"{where}: README lists options the CLI does not take: {unknown}"
