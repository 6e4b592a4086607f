"""The layers of ``recist_tool`` import downwards only (``docs/architecture.md``).

The import graph is read from the source with :mod:`ast`: every ``import`` and ``from ... import``
of a ``recist_tool`` module, at module level or inside a function (a deferred import runs too),
except those under ``if TYPE_CHECKING:`` (annotations only). Each module belongs to a *unit*: the
first name under ``recist_tool`` (``recist_tool.io.pacs.cache`` -> ``io``, ``recist_tool.track``
-> ``track``). :data:`LAYERS` ranks the units; a unit may import its own modules and those of a
lower layer, never one of its own layer or above, except the edges :data:`EXCEPTIONS` names with
the reason. The RECIST engine is held to more: the standard library, numpy, its own modules and
:mod:`recist_tool.errors`, nothing else.

Run as a script (``python -m tests.test_layers``) it prints the graph between units — what
``docs/architecture.md`` draws.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "recist_tool"

#: Units by layer, lowest first (docs/architecture.md draws the same).
LAYERS: list[tuple[str, ...]] = [
    ("(root)",),  # recist_tool itself, imported below only for __version__ (see test_root_import)
    ("errors",),  # the exception hierarchy
    ("codes", "stages", "windows"),  # code checks, stage timing, display windows
    ("volume",),  # the core image type
    ("io", "sample_data"),  # files -> Volume; the synthetic trial (writes DICOM itself)
    ("measure", "recist"),  # mask -> axes; the pure RECIST engine
    ("segment",),  # volume + prompt -> mask (and, in workflow, its measurement)
    ("store",),  # the trial database
    ("export",),  # EDC and PACS exports of the store
    ("report",),  # reports of the store
    ("align", "track"),  # registration of visits; lesion tracking into a follow-up
    ("batch", "track_eval"),  # batch scoring; tracking evaluation
    ("reading",),  # a reader's session (the napari widget's workflow)
    ("cli",),  # the command line
]

#: (importing module, imported module) pairs allowed against :data:`LAYERS`, with the reason.
EXCEPTIONS: dict[tuple[str, str], str] = {
    ("recist_tool.io.sr", "recist_tool.measure.diameters"):
        "locate_lesions places an SR's lesions on the CT and measures a polygon's longest chord",
    ("recist_tool.io.sr", "recist_tool.measure.mask"):
        "locate_lesions measures the SEG segment an SR references (measure_mask)",
}


@dataclass(frozen=True)
class Import:
    """One import of a ``recist_tool`` module by another."""

    source: str  # importing module, e.g. recist_tool.io.sr
    target: str  # imported module (or package), e.g. recist_tool.measure.mask
    line: int
    deferred: bool  # inside a function or class body: runs when that code runs
    names: tuple[str, ...] = ()  # what `from target import ...` takes

    @property
    def edge(self) -> tuple[str, str]:
        return unit(self.source), unit(self.target)


def unit(module: str) -> str:
    """``recist_tool.io.pacs.cache`` -> ``io``; the package itself -> ``(root)``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "(root)"


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    name = ".".join(rel.parts)
    return name.removesuffix(".__init__")


def _is_module(name: str) -> bool:
    path = SRC.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            inside.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return inside


def imports() -> list[Import]:
    """Every import of a ``recist_tool`` module under :data:`SRC` (TYPE_CHECKING ones excluded)."""
    out: list[Import] = []
    for path in sorted(SRC.rglob("*.py")):
        module = _module_name(path)
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        skip = _type_checking_nodes(tree)
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.ImportFrom):
                if node.level:  # relative: from . import x / from ..y import z
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    targets = [".".join([*base, *([node.module] if node.module else [])])]
                else:
                    targets = [node.module or ""]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            if isinstance(node, ast.ImportFrom) and targets[0].startswith("recist_tool"):
                # `from recist_tool import io`: the subpackage io, not the package's __init__
                subs = [f"{targets[0]}.{a.name}" for a in node.names if _is_module(f"{targets[0]}.{a.name}")]
                targets = subs if len(subs) == len(node.names) else targets
            for target in targets:
                if target == "recist_tool" or target.startswith("recist_tool."):
                    names = tuple(a.name for a in node.names) if isinstance(node, ast.ImportFrom) else ()
                    out.append(Import(module, target, node.lineno, node.col_offset > 0, names))
    return out


#: Imports of the RECIST engine beyond the standard library and numpy, with the reason.
ENGINE_THIRD_PARTY: dict[tuple[str, str], str] = {
    ("recist_tool.recist.endpoints", "scipy.stats"):
        "Clopper-Pearson intervals and Kaplan-Meier estimates from a kept library, not hand-written "
        "(DESIGN.md, Endpoints); imported inside the two functions that need it",
}


def stdlib_or_numpy_imports(package: str) -> list[tuple[str, int, str]]:
    """(module, line, imported top-level name) of every import under ``package`` that is neither
    the standard library, numpy, ``__future__`` nor ``recist_tool``."""
    found = []
    for path in sorted((SRC / package).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in ("numpy", "__future__",
                                                                      "recist_tool"):
                    found.append((_module_name(path), node.lineno, name))
    return found


RANK = {u: i for i, layer in enumerate(LAYERS) for u in layer}
IMPORTS = imports()


def test_graph_is_read() -> None:
    """The reader finds the imports (a parser that missed them would pass every rule)."""
    edges = {i.edge for i in IMPORTS}
    assert ("cli", "batch") in edges and ("store", "recist") in edges and ("io", "volume") in edges
    assert any(i.deferred for i in IMPORTS) and len(IMPORTS) > 200


def test_every_unit_has_a_layer() -> None:
    units = {unit(_module_name(p)) for p in SRC.rglob("*.py")}
    assert units <= set(RANK), f"units without a layer in LAYERS: {sorted(units - set(RANK))}"


def test_layers_import_downwards() -> None:
    """Every import reaches down, but the package's own ``__init__`` (the public API: it imports
    the core types and re-exports the layers' names on first use, docs/api.md)."""
    wrong = [f"{i.source}:{i.line} imports {i.target} ({i.edge[0]} -> {i.edge[1]})"
             for i in IMPORTS
             if i.source != "recist_tool" and i.edge[0] != i.edge[1]
             and RANK[i.edge[1]] >= RANK[i.edge[0]] and (i.source, i.target) not in EXCEPTIONS]
    assert not wrong, "imports of the same or a higher layer:\n" + "\n".join(wrong)


def test_root_import() -> None:
    """A module that imports ``recist_tool`` itself takes ``__version__`` only, never the lazily
    exported names (that would import an upper layer through the back door)."""
    wrong = [f"{i.source}:{i.line} takes {i.names}" for i in IMPORTS
             if i.target == "recist_tool" and i.source != "recist_tool" and i.names != ("__version__",)]
    assert not wrong, "\n".join(wrong)


def test_exceptions_are_still_needed() -> None:
    """An exception whose import went away is removed from the list (it would hide a new one)."""
    present = {(i.source, i.target) for i in IMPORTS}
    stale = sorted(set(EXCEPTIONS) - present)
    assert not stale, f"EXCEPTIONS no longer imported: {stale}"


def test_recist_engine_is_pure() -> None:
    """recist_tool.recist: the standard library, numpy, itself and recist_tool.errors only."""
    outside = [f"{i.source}:{i.line} imports {i.target}" for i in IMPORTS
               if i.edge[0] == "recist" and i.edge[1] not in ("recist", "errors")]
    third_party = [f"{m}:{line} imports {name}" for m, line, name in stdlib_or_numpy_imports("recist")
                   if (m, name) not in ENGINE_THIRD_PARTY]
    assert not outside and not third_party, "\n".join(outside + third_party)


@pytest.mark.parametrize("lower", ["io", "measure", "segment", "recist", "volume"])
def test_lower_layers_know_no_database_gui_or_workflow(lower: str) -> None:
    upper = {"store", "export", "report", "batch", "reading", "track", "cli"}
    wrong = [f"{i.source}:{i.line} imports {i.target}" for i in IMPORTS
             if i.edge[0] == lower and i.edge[1] in upper]
    assert not wrong, "\n".join(wrong)


def main() -> None:
    """Print the graph between units: ``A -> B  n imports (m deferred)``, by layer."""
    edges: dict[tuple[str, str], list[Import]] = defaultdict(list)
    for i in IMPORTS:
        if i.edge[0] != i.edge[1]:
            edges[i.edge].append(i)
    for (a, b), found in sorted(edges.items(), key=lambda kv: (RANK.get(kv[0][0], 99), kv[0])):
        deferred = sum(i.deferred for i in found)
        up = "  UP" if a != "(root)" and RANK.get(b, 99) >= RANK.get(a, 99) else ""
        print(f"{a:>12} -> {b:<12} {len(found):3d} imports ({deferred} deferred){up}")
        if up or "-v" in sys.argv:
            for i in found:
                print(f"{'':16}{i.source}:{i.line} -> {i.target}")


if __name__ == "__main__":
    main()
