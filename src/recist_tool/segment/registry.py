"""Registry of segmenters: built-ins plus plug-ins from the ``recist_tool.segmenters`` entry points.

A third-party package exposes a segmenter without any change here by declaring, in its own
``pyproject.toml``::

    [project.entry-points."recist_tool.segmenters"]
    mymodel = "my_package.module:MySegmenter"

The entry point may load a class (instantiated without arguments), a zero-argument factory, or a
ready instance; the result must satisfy :class:`~recist_tool.segment.base.Segmenter`. A network
saved as a file (torch.export or TorchScript) needs no package at all: the built-in
``model-file`` segmenter runs it (:mod:`recist_tool.segment.model_file`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib import metadata
from typing import Any

from recist_tool.errors import SegmentationError, UsageError
from recist_tool.segment.base import Segmenter

#: Entry-point group that plug-in segmenters register under.
ENTRY_POINT_GROUP = "recist_tool.segmenters"

_BUILTINS: dict[str, str] = {
    "classic": "recist_tool.segment.classic:ClassicSegmenter",
    "contour": "recist_tool.segment.contour:ContourSegmenter",
    "unet": "recist_tool.segment.unet:UNetSegmenter",
    "slicenet": "recist_tool.segment.slicenet:SliceNetSegmenter",
    "model-file": "recist_tool.segment.model_file:ModelFileSegmenter",
}
_LOCAL: dict[str, Callable[[], Any] | Any] = {}


def register_segmenter(name: str, factory: Callable[[], Any] | Any) -> None:
    """Register a segmenter in this process (a class, a zero-argument factory or an instance).

    Parameters
    ----------
    name : str
        Registry name; overrides a plug-in or built-in of the same name.
    factory : callable or Segmenter
    """
    if not name or not name.replace("-", "_").replace(".", "_").isidentifier():
        raise SegmentationError(f"invalid segmenter name {name!r}")
    _LOCAL[name] = factory


def unregister_segmenter(name: str) -> None:
    """Remove a segmenter registered with :func:`register_segmenter` (no error if absent)."""
    _LOCAL.pop(name, None)


def _entry_points() -> dict[str, metadata.EntryPoint]:
    return {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def available_segmenters() -> list[str]:
    """Names of all segmenters: built-in, plug-in (entry points) and locally registered."""
    return sorted(set(_BUILTINS) | set(_entry_points()) | set(_LOCAL))


def _instantiate(obj: Any, name: str) -> Segmenter:
    if isinstance(obj, type) or (callable(obj) and not hasattr(obj, "segment")):
        try:
            inst = obj()
        except Exception as exc:
            raise SegmentationError(f"segmenter {name!r} cannot be created: {exc}") from exc
    else:
        inst = obj
    if not isinstance(inst, Segmenter):
        raise SegmentationError(
            f"segmenter {name!r} does not provide name, version and segment(volume, prompt)")
    return inst


def _with_options(factory: Any, kwargs: dict[str, Any], name: str) -> Any:
    """``factory(**kwargs)``, or ``factory`` itself when there are no options; options it does
    not take, or values it refuses, are a :class:`UsageError`."""
    if not kwargs:
        return factory
    try:
        return factory(**kwargs)
    except TypeError as exc:
        raise UsageError(f"segmenter {name!r} does not take the options {kwargs}: {exc}"
                         ) from None
    except ValueError as exc:
        raise UsageError(f"segmenter {name!r}: bad option value in {kwargs}: {exc}") from None


def get_segmenter(name: str = "classic", **kwargs: Any) -> Segmenter:
    """Instantiate a segmenter by name.

    Lookup order: :func:`register_segmenter` entries, then the entry-point group
    :data:`ENTRY_POINT_GROUP`, then the built-ins (``classic``, ``unet``, ``model-file``).

    Parameters
    ----------
    name : str
        Registry name.
    **kwargs
        Passed to a built-in segmenter's constructor (e.g. ``weights=`` for ``unet``).

    Raises
    ------
    SegmentationError
        Unknown name, or a plug-in that fails to load.
    UsageError
        Options the segmenter does not take.
    """
    if name in _LOCAL:
        return _instantiate(_with_options(_LOCAL[name], kwargs, name), name)
    eps = _entry_points()
    if name in eps:
        try:
            obj = eps[name].load()
        except Exception as exc:  # a broken plug-in must not crash the CLI with a traceback
            raise SegmentationError(f"segmenter plug-in {name!r} failed to load: {exc}") from exc
        return _instantiate(_with_options(obj, kwargs, name), name)
    if name in _BUILTINS:
        module, _, attr = _BUILTINS[name].partition(":")
        cls = getattr(importlib.import_module(module), attr)
        return _instantiate(_with_options(cls, kwargs, name), name)
    raise SegmentationError(
        f"unknown segmenter {name!r}; available: {', '.join(available_segmenters())}")


def parse_segmenter_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``name`` or ``name:key=value,key=value`` → (name, constructor options).

    Values are read as TOML literals (``0.5``, ``true``, ``"text"``), otherwise kept as text, e.g.
    ``classic:band_fraction=0.5`` or ``unet:weights=/models/unet.pt``.

    Raises
    ------
    UsageError
        For an option without ``=``.
    """
    import tomllib

    name, _, rest = spec.partition(":")
    opts: dict[str, Any] = {}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise UsageError(f"segmenter option {item!r} of {spec!r} is not key=value")
        try:
            opts[key.strip()] = tomllib.loads(f"v = {value.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            opts[key.strip()] = value.strip()
    return name.strip(), opts
