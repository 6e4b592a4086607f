"""Option names agree across the commands of ``recist`` (issue #32, names that agree).

``-o`` is ``--out`` wherever a command takes it; the lymph-node flag is ``--nodal`` (the word the
store, manifests and the reading session use), with the former ``--node`` hidden but accepted;
``sample-data`` takes a count of subjects as ``--n-subjects`` (``--subject`` is a subject code
elsewhere), with the former ``--subjects`` hidden but accepted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import SimpleITK as sitk
import typer

from recist_tool.cli import app, main


def _commands() -> dict[str, Any]:
    """Every command of ``recist`` by its path (``"reader add"``), as typer's click commands."""
    out: dict[str, Any] = {}

    def walk(cmd: Any, path: str) -> None:
        subs = getattr(cmd, "commands", None)
        if subs is None:
            out[path] = cmd
            return
        for name, sub in subs.items():
            walk(sub, f"{path} {name}".strip())

    walk(typer.main.get_command(app), "")
    return out


COMMANDS = _commands()


def _options(cmd: Any) -> list[Any]:
    return [p for p in cmd.params if p.param_type_name == "option"]


def test_commands_are_found() -> None:
    assert {"batch", "convert", "segment", "export", "report", "sample-data"} <= set(COMMANDS)
    with_o = sorted(n for n, c in COMMANDS.items() if any("-o" in p.opts for p in _options(c)))
    assert {"batch", "convert", "segment", "export", "report"} <= set(with_o)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_short_o_is_out(name: str) -> None:
    for opt in _options(COMMANDS[name]):
        if "-o" in opt.opts:
            assert [o for o in opt.opts if o.startswith("--")] == ["--out"], (name, opt.opts)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_former_names_are_hidden(name: str) -> None:
    """``--node`` and ``--subjects`` survive only as hidden aliases; no visible option uses them."""
    for opt in _options(COMMANDS[name]):
        if {"--node", "--subjects"} & set(opt.opts):
            assert opt.hidden, (name, opt.opts)


def _mask(tmp: Path) -> Path:
    """A lesion whose longest long axis (slice 1) and largest short axis (slice 3) differ."""
    arr = np.zeros((5, 60, 60), np.uint8)
    arr[1, 20:24, 5:55] = 1  # 50 x 4 px: the longest long axis
    arr[3, 15:40, 15:45] = 1  # 30 x 25 px: the largest short axis
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((1.0, 1.0, 2.0))
    path = tmp / "mask.nii.gz"
    sitk.WriteImage(img, str(path))
    return path


@pytest.mark.parametrize("flag", ["--nodal", "--node"])
def test_measure_nodal_flag_and_its_former_name(flag: str, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    path = _mask(tmp_path)
    assert main(["measure", str(path), "--json"]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert main(["measure", str(path), flag, "--json"]) == 0
    nodal = json.loads(capsys.readouterr().out)
    assert (plain["node"], plain["slice_index"]) == (False, 1)
    assert (nodal["node"], nodal["slice_index"]) == (True, 3)


def test_segment_takes_nodal_and_its_former_name() -> None:
    names = {o for p in _options(COMMANDS["segment"]) for o in p.opts}
    assert {"--nodal", "--node", "-o", "--out"} <= names and "--output" not in names


@pytest.mark.parametrize("flag", ["--n-subjects", "--subjects"])
def test_sample_data_count_and_its_former_name(flag: str, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """Both names reach the same check (the generation itself is tested in tests/sample_data)."""
    assert main(["sample-data", str(tmp_path / "t"), flag, "0"]) == 2
    assert "--n-subjects must be between 1 and 99, got 0" in capsys.readouterr().err
    assert not (tmp_path / "t").exists()
