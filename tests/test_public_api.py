"""The public API: every name in an ``__all__`` imports, and ``import recist_tool`` stays light.

``recist_tool`` exports the names of ``docs/api.md`` lazily (PEP 562): the subpackage that defines
a name is imported on its first use, so importing the package alone loads neither torch nor the
database, DICOM or SciPy stacks.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest

import recist_tool

#: The package and its subpackages, each with an ``__all__`` a user may import from.
PACKAGES = [
    "recist_tool",
    "recist_tool.batch",
    "recist_tool.export",
    "recist_tool.io",
    "recist_tool.io.pacs",
    "recist_tool.measure",
    "recist_tool.reading",
    "recist_tool.recist",
    "recist_tool.report",
    "recist_tool.segment",
    "recist_tool.store",
]

#: What a user needs from one click to a best response (issue #32, docs/api.md).
WORKFLOW = ["load_volume", "Prompt", "get_segmenter", "segment_and_measure", "measure_mask",
            "Lesion", "LesionAssessment", "Timepoint", "evaluate_timepoints", "best_response",
            "TrialStore"]


@pytest.mark.parametrize("package", PACKAGES)
def test_every_name_in_all_imports(package: str) -> None:
    module = importlib.import_module(package)
    names = module.__all__
    assert names and len(names) == len(set(names)), f"{package}.__all__ empty or repeats a name"
    missing = [n for n in names if not hasattr(module, n)]
    assert not missing, f"{package}.__all__ names what it does not define: {missing}"
    namespace: dict[str, object] = {}
    exec(f"from {package} import *", namespace)  # noqa: S102 - the star import a user may write
    assert set(names) <= set(namespace)


def test_workflow_names_at_the_top() -> None:
    assert set(WORKFLOW) <= set(recist_tool.__all__)
    from recist_tool.measure import measure_mask
    from recist_tool.recist import LesionAssessment, best_response
    from recist_tool.segment import segment_and_measure

    assert recist_tool.measure_mask is measure_mask
    assert recist_tool.segment_and_measure is segment_and_measure
    assert recist_tool.best_response is best_response
    assert callable(recist_tool.LesionAssessment.from_measurement)
    assert recist_tool.LesionAssessment is LesionAssessment


def test_all_is_the_eager_names_and_the_lazy_ones() -> None:
    eager = {"GeometryWarning", "RecistToolError", "Volume", "VolumeMeta", "__version__"}
    assert set(recist_tool.__all__) == eager | set(recist_tool._LAZY)
    assert set(recist_tool.__all__) <= set(dir(recist_tool))


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        recist_tool.nothing_here  # noqa: B018


def test_import_is_light() -> None:
    """A fresh interpreter: ``import recist_tool`` loads none of the heavy stacks; using a lazy
    name loads its own subpackage only."""
    code = (
        "import json, sys\n"
        "import recist_tool\n"
        "heavy = ('torch', 'scipy', 'sqlalchemy', 'pydicom', 'SimpleITK', 'matplotlib')\n"
        "before = [m for m in heavy if m in sys.modules]\n"
        "recist_tool.Lesion\n"
        "engine = [m for m in heavy if m in sys.modules]\n"
        "print(json.dumps([before, engine, 'recist_tool.store' in sys.modules]))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    before, engine, store = json.loads(run.stdout)
    assert before == [], f"import recist_tool loads {before}"
    assert "torch" not in engine and "sqlalchemy" not in engine and not store
