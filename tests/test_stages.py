"""recist_tool.stages: exclusive nesting, no cost outside a collection, a case's stages."""

from __future__ import annotations

import time

from recist_tool.stages import collect, stage, timed


@timed("inner")
def _inner() -> None:
    time.sleep(0.02)


def test_nested_stages_count_exclusively():
    with collect() as st:
        with stage("outer"):
            time.sleep(0.02)
            _inner()
        _inner()
    assert set(st) == {"outer", "inner"}
    assert 0.035 <= st["inner"] < 0.2
    assert 0.015 <= st["outer"] < 0.035  # the inner call is not counted twice


def test_markers_outside_a_collection_do_nothing():
    with stage("x"):
        _inner()
    with collect() as st:
        pass
    assert st == {}
    assert _inner.__name__ == "_inner"
