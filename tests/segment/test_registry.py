"""Segmenter registry: built-ins, local registration and third-party entry points."""

from __future__ import annotations

from importlib import metadata

import numpy as np
import pytest

from recist_tool.errors import SegmentationError
from recist_tool.segment import (
    ENTRY_POINT_GROUP,
    LesionMask,
    Prompt,
    Segmenter,
    available_segmenters,
    get_segmenter,
    register_segmenter,
    segment,
    unregister_segmenter,
)
from recist_tool.segment import registry as reg
from recist_tool.volume import Volume


class BoxSegmenter:
    """A plug-in that returns a 3x3x3 cube around the click."""

    name = "box"
    version = "0.1"

    def segment(self, volume: Volume, prompt: Prompt, *, node: bool = False) -> LesionMask:
        z, y, x = prompt.seed_voxel(volume)
        return LesionMask(np.ones((3, 3, 3), bool), (z - 1, y - 1, x - 1), volume.shape,
                          self.name, self.version, prompt)


class NotASegmenter:
    name = "bad"


def _vol() -> Volume:
    return Volume.from_grid(np.zeros((8, 8, 8), np.int16), (1.0, 1.0, 1.0))


def test_builtins_listed_and_unknown_name() -> None:
    names = available_segmenters()
    assert {"classic", "unet"} <= set(names)
    assert isinstance(get_segmenter("classic"), Segmenter)
    with pytest.raises(SegmentationError, match="unknown segmenter 'nope'"):
        get_segmenter("nope")


def test_local_registration() -> None:
    register_segmenter("box-local", BoxSegmenter)
    try:
        assert "box-local" in available_segmenters()
        m = segment(_vol(), Prompt.at(4, 4, 4), "box-local")
        assert m.n_voxels == 27 and m.segmenter == "box" and m.offset == (3, 3, 3)
    finally:
        unregister_segmenter("box-local")
    assert "box-local" not in available_segmenters()


def _fake_entry_points(monkeypatch: pytest.MonkeyPatch, value: str, name: str = "box-plugin"):
    ep = metadata.EntryPoint(name=name, value=value, group=ENTRY_POINT_GROUP)
    real = metadata.entry_points

    def fake(**kw):
        if kw.get("group") == ENTRY_POINT_GROUP:
            return metadata.EntryPoints([ep])
        return real(**kw)

    monkeypatch.setattr(reg.metadata, "entry_points", fake)


def test_entry_point_plugin_without_code_change(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_entry_points(monkeypatch, f"{__name__}:BoxSegmenter")
    assert "box-plugin" in available_segmenters()
    seg = get_segmenter("box-plugin")
    assert isinstance(seg, BoxSegmenter)
    assert seg.segment(_vol(), Prompt.at(2, 2, 2)).n_voxels == 27


def test_broken_plugins_give_one_line_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_entry_points(monkeypatch, "no_such_module_xyz:Thing")
    with pytest.raises(SegmentationError, match="failed to load"):
        get_segmenter("box-plugin")
    _fake_entry_points(monkeypatch, f"{__name__}:NotASegmenter")
    with pytest.raises(SegmentationError, match="does not provide"):
        get_segmenter("box-plugin")
