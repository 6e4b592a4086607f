"""Every ```bash, ```sh, ```python and ```console block of README.md and docs/*.md runs as written.

Each block runs in a folder of its own that holds what a newcomer has after the two commands the
docs start from (made once per session, through the CLI)::

    recist sample-data trial --n-subjects 1           # trial/SYN-001/{BL,W06,W12}, manifest.csv
    recist batch trial/manifest.csv --db recist.db -o results --segmenter classic

(``results/`` is not kept; the classic segmenter because it is the quickest, the blocks' own
``recist batch`` lines use what they say). Shell blocks run in ``bash -euo pipefail`` with the
venv's ``recist`` first on ``PATH`` and ``RECIST_SCRYPT_N=1024`` (cheap password hashing); a
``console`` block runs its ``$ `` lines (a line ending in ``\\`` continues) and ignores the output
shown; a ``python`` block runs in the venv's Python. The test checks that each one exits 0.
Blocks fenced without a language (synopses such as ``recist batch MANIFEST [--db URL]``, output,
trees) and data blocks (csv, toml) are not run.

A block that cannot run here carries an HTML comment (invisible on GitHub) that ends on the line
right above its opening fence and says why — the one marker::

    <!-- not run: needs a PACS server; tests/pacs/test_orthanc.py runs the same against Orthanc -->

(a PACS server, a GUI, a password typed on a terminal, a job of many minutes, or a block another
test runs as written: then the comment names that test). A block that runs but takes long carries
``<!-- slow: WHY -->`` the same way and is marked ``pytest.mark.slow`` (``-m 'not slow'`` leaves
it out; ``make test`` runs it). A block with neither marker that fails fails this test.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
RUN_LANGS = ("bash", "sh", "python", "console")
FENCE = re.compile(r"^(\s*)```(\w*)\s*$")
MARKER = re.compile(r"<!--\s*(not run|slow):\s*(.*?)\s*-->\s*$", re.S)


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # of the opening fence, 1-based
    lang: str
    body: str
    marker: str | None  # "not run" / "slow"
    reason: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}"


def doc_blocks(path: Path) -> list[Block]:
    """The fenced blocks of ``path`` in a language of :data:`RUN_LANGS`, with their marker."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, lang, start = m.group(1), m.group(2), i
        i += 1
        body: list[str] = []
        while i < len(lines) and not re.match(r"^\s*```\s*$", lines[i]):
            body.append(lines[i][len(indent):] if lines[i].startswith(indent) else lines[i])
            i += 1
        i += 1
        if lang not in RUN_LANGS:
            continue
        marker, reason = None, ""
        if start and lines[start - 1].rstrip().endswith("-->"):
            j = start - 1
            while j > 0 and "<!--" not in lines[j]:
                j -= 1
            mm = MARKER.search("\n".join(lines[j:start]))
            if mm:
                marker, reason = mm.group(1), " ".join(mm.group(2).split())
        blocks.append(Block(path, start + 1, lang, "\n".join(body) + "\n", marker, reason))
    return blocks


ALL_BLOCKS = [b for p in DOCS for b in doc_blocks(p)]


def _param(b: Block) -> object:
    marks = [pytest.mark.slow] if b.marker == "slow" else []
    return pytest.param(b, id=b.where, marks=marks)


def _console_commands(body: str) -> str:
    cmds: list[str] = []
    cont = False
    for line in body.splitlines():
        if line.startswith("$ ") or cont:
            cmds.append(line[2:] if line.startswith("$ ") and not cont else line)
            cont = line.endswith("\\")
    return "\n".join(cmds) + "\n"


@pytest.fixture(scope="session")
def newcomer_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``trial/`` and ``recist.db`` made by the CLI as the module docstring says."""
    root = tmp_path_factory.mktemp("docs-fixture")
    for args in (["sample-data", "trial", "--n-subjects", "1"],
                 ["batch", "trial/manifest.csv", "--db", "recist.db", "-o", "results",
                  "--segmenter", "classic", "--workers", "2"]):
        run = subprocess.run([str(Path(sys.executable).parent / "recist"), *args], cwd=root,
                             env=_env(), capture_output=True, text=True, timeout=900)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    shutil.rmtree(root / "results")
    return root


def _env() -> dict[str, str]:
    bindir = str(Path(sys.executable).parent)
    return dict(os.environ, PATH=f"{bindir}{os.pathsep}{os.environ['PATH']}",
                RECIST_SCRYPT_N="1024", MPLBACKEND="Agg")


def _workspace(src: Path, dest: Path) -> Path:
    """A copy of the fixture folder (files hard-linked where the file system allows)."""
    try:
        shutil.copytree(src, dest, copy_function=os.link)
    except OSError:
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(src, dest)
    (dest / "recist.db").unlink()  # written to by blocks: a copy of its own
    shutil.copy2(src / "recist.db", dest / "recist.db")
    return dest


def test_blocks_are_found() -> None:
    """The collector sees the blocks (a fence syntax it missed would pass every file)."""
    assert len(ALL_BLOCKS) >= 15
    readme = [b for b in ALL_BLOCKS if b.path.name == "README.md"]
    assert any(b.lang == "python" for b in readme) and any(b.lang == "sh" for b in readme)


@pytest.mark.parametrize("block", [_param(b) for b in ALL_BLOCKS])
def test_doc_block_runs(block: Block, newcomer_folder: Path, tmp_path: Path) -> None:
    if block.marker == "not run":
        assert block.reason, f"{block.where}: a 'not run' marker says why"
        pytest.skip(f"not run: {block.reason}")
    work = _workspace(newcomer_folder, tmp_path / "work")
    if block.lang == "python":
        script = work / "_doc_block.py"
        script.write_text(block.body, encoding="utf-8")
        cmd = [sys.executable, script.name]
    else:
        body = _console_commands(block.body) if block.lang == "console" else block.body
        cmd = ["bash", "-euo", "pipefail", "-c", body]
    run = subprocess.run(cmd, cwd=work, env=_env(), capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, (
        f"{block.where} ({block.lang}) exits {run.returncode}; mark it "
        f"'<!-- not run: WHY -->' if it cannot run here\n{block.body}\n--- stdout\n"
        f"{run.stdout[-3000:]}\n--- stderr\n{run.stderr[-3000:]}")
