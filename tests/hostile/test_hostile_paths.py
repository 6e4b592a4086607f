"""Output files stay in the folder the user chose (issue #37 item 1).

A subject code ``../../../outside/ESCAPE`` wrote ``ESCAPE_BL_SR.dcm``, ``.html`` and ``.pdf`` three
folders above ``-o``. Codes are now refused where they enter (``test_hostile_codes.py``); here a
database changed behind the application's back still holds one, and every writer places its files
through :func:`recist_tool.io.outputs.safe_output_path`: one-line error, exit 3, nothing written.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from recist_tool.cli import main
from recist_tool.errors import InputError
from recist_tool.io.outputs import NAME_MAX_BYTES, atomic_file, atomic_outputs, safe_output_path
from tests.hostile.hostile_inputs import ESCAPE, escaped_trial

READER, PASSWORD = "rad1", "rad1-password"


@pytest.fixture(autouse=True)
def _fast_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECIST_SCRYPT_N", "1024")


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


# --- the helper ----------------------------------------------------------------------------------

@pytest.mark.parametrize("parts", [
    (ESCAPE,), ("..",), (".",), ("",), ("a", "..", "..", "x"), ("a/../../x",), ("/etc/passwd",),
    ("sub", "/etc/passwd"), ("a\\..\\x",), ("a\x00b",), ("a\nb",), ("x" * (NAME_MAX_BYTES + 1),),
    ("\u00e9" * 128,),  # 256 bytes of UTF-8
    ("CON",), ("sub", "nul.html"), ("lpt1", "x.csv"),  # Windows devices
])
def test_safe_output_path_refuses(tmp_path: Path, parts: tuple[str, ...]) -> None:
    with pytest.raises(InputError, match=r"^refusing to write .* in ") as info:
        safe_output_path(tmp_path / "out", *parts)
    assert "\n" not in str(info.value) and len(str(info.value)) < 300
    assert not (tmp_path / "out").exists()


def test_safe_output_path_refuses_a_link_leading_out(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(tmp_path, out / "up")
    with pytest.raises(InputError, match="it leaves the folder"):
        safe_output_path(out, "up", "x.csv")


def test_safe_output_path_places_inside(tmp_path: Path) -> None:
    assert safe_output_path(tmp_path, "a.csv") == tmp_path / "a.csv"
    assert safe_output_path(tmp_path, "S1", "S1_BL_SR.dcm") == tmp_path / "S1" / "S1_BL_SR.dcm"
    assert safe_output_path(tmp_path, Path("sub") / "tr.csv") == tmp_path / "sub" / "tr.csv"
    assert safe_output_path(tmp_path, "x" * NAME_MAX_BYTES).name == "x" * NAME_MAX_BYTES


def test_atomic_writers_refuse_and_write_nothing(tmp_path: Path) -> None:
    out = tmp_path / "d1" / "d2" / "d3" / "out"
    with pytest.raises(InputError), atomic_outputs(out) as o:
        o.path("ok.csv").write_text("x")
        o.path(ESCAPE, "x.dcm").write_text("x")
    with pytest.raises(InputError), atomic_file(out / ".."):
        pass
    assert _files(tmp_path) == set() and not out.exists()


# --- exporters and reports on a tampered database ------------------------------------------------

@pytest.fixture(scope="module")
def tampered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The SQLite file of :func:`escaped_trial` (subject code ``../../../outside/ESCAPE``)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("RECIST_SCRYPT_N", "1024")
    try:
        db, _ = escaped_trial(tmp_path_factory.mktemp("tampered"))
    finally:
        mp.undo()
    return db


@pytest.mark.parametrize("command", [
    ["export", "--format", "dicom-sr", "--include-unsigned"],
    ["export", "--format", "dicom-seg", "--include-unsigned"],
    ["report", "--include-unsigned", "--subjects-only"],
])
def test_a_tampered_code_cannot_leave_the_output_folder(tampered: Path, tmp_path: Path,
                                                        command: list[str],
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "d1" / "d2" / "d3" / "out"  # ESCAPE would land in tmp_path/d1 or tmp_path
    rc = main([*command, "--db", str(tampered), "-o", str(out)])
    err = capsys.readouterr().err.strip()
    assert rc == 3, err
    assert "Traceback" not in err and len(err.splitlines()) == 1
    assert "refusing to write '../../../outside/ESCAPE" in err
    assert not any("ESCAPE" in str(p) for p in _files(tmp_path)), _files(tmp_path)
    assert not (tmp_path / "outside").exists() and not (tmp_path / "d1" / "outside").exists()


def test_the_same_trial_under_a_valid_code_exports(tmp_path: Path) -> None:
    """The fixture is sound: only the code makes the exports fail."""
    from sqlalchemy import text

    from recist_tool.store import TrialStore

    db, _ = escaped_trial(tmp_path / "t")
    with TrialStore(db) as s, s.engine.begin() as conn:
        conn.execute(text("UPDATE subject SET code = 'S1'"))
    out = tmp_path / "out"
    for fmt in ("dicom-sr", "dicom-seg"):
        assert main(["export", "--format", fmt, "--include-unsigned", "--db", str(db),
                     "-o", str(out / fmt)]) == 0
    assert main(["report", "--include-unsigned", "--subjects-only", "--db", str(db),
                 "-o", str(out / "rep")]) == 0
    assert {p.relative_to(out).as_posix() for p in _files(out)} == {
        "dicom-sr/S1/S1_BL_SR.dcm", "dicom-seg/S1/S1_BL_SEG.dcm", "rep/S1.html", "rep/S1.pdf"}


def test_mask_folders_stay_under_the_mask_root(tmp_path: Path) -> None:
    from recist_tool.io.masks import mask_folder

    assert mask_folder(tmp_path, "rad 1", "S1", "WEEK 6") == tmp_path / "rad_1" / "S1" / "WEEK_6"
    with pytest.raises(InputError, match="not a file name"):
        mask_folder(tmp_path, "rad1", "..", "BL")
