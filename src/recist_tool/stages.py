"""Wall time per stage of one batch case (load, register, segment, measure), for benchmarks.

A batch worker opens :func:`collect` around a case; functions marked with :func:`timed` (or code in
``with stage(name):``) add their time to the open collection. Stages nest exclusively: a stage's
time excludes the stages opened inside it, so the totals add up to the time spent in stages (a
follow-up's segmentation does not also count the measurements made inside it). Outside
:func:`collect` the markers cost a context-variable lookup and nothing else.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

__all__ = ["collect", "stage", "timed"]

_F = TypeVar("_F", bound=Callable[..., Any])
#: ``(totals, stack)`` of the open collection; each stack entry is ``[name, start, inner]``.
_ACTIVE: ContextVar[tuple[dict[str, float], list[list[Any]]] | None] = ContextVar(
    "recist_stages", default=None)


@contextmanager
def collect() -> Iterator[dict[str, float]]:
    """Collect stage times (seconds by stage name) while the block runs.

    Yields
    ------
    dict
        Filled as stages close; complete when the block ends.
    """
    totals: dict[str, float] = {}
    token = _ACTIVE.set((totals, []))
    try:
        yield totals
    finally:
        _ACTIVE.reset(token)


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Count the block's wall time, less that of stages opened inside it, as ``name``.

    Parameters
    ----------
    name : str
        Stage name (``load``, ``register``, ``segment``, ``measure`` in a batch case).
    """
    active = _ACTIVE.get()
    if active is None:
        yield
        return
    totals, stack = active
    entry: list[Any] = [name, time.perf_counter(), 0.0]  # name, start, time of nested stages
    stack.append(entry)
    try:
        yield
    finally:
        stack.pop()
        elapsed = time.perf_counter() - entry[1]
        totals[name] = totals.get(name, 0.0) + elapsed - entry[2]
        if stack:
            stack[-1][2] += elapsed


def timed(name: str) -> Callable[[_F], _F]:
    """Decorator: each call of the function is a :func:`stage` called ``name``."""

    def deco(fn: _F) -> _F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with stage(name):
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return deco
