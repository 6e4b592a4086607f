"""``recist sign`` computes the responses of what it signs, so an amended read can be signed from the
command line; the signing sequence of ``docs/store.md`` runs as written."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from recist_tool.cli import main
from recist_tool.store import TrialStore
from tests.store.conftest import PASSWORDS, make_trial, read_subject

pytestmark = pytest.mark.db

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _fast_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheap scrypt cost (the parameters are stored with each hash)."""
    monkeypatch.setenv("RECIST_SCRYPT_N", "1024")


def _cli(monkeypatch: pytest.MonkeyPatch, password: str, *args: str) -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
    return main([*args, "--password-stdin"])


def test_amend_then_sign_computes_the_response_of_the_new_version(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """sign → amend → remeasure → sign: the second signature confirms the response of the amended
    measurements (PD), computed by ``recist sign`` and audited as the reader's; version 1 keeps its
    PR; a wrong password computes nothing."""
    db = str(tmp_path / "r.db")
    with TrialStore(db) as store:
        make_trial(store)
        read_subject(store, "alice", t01_w6="18", t02_w6="12")  # SOD 50 → 30: PR
    pw = PASSWORDS["alice"]
    for visit in ("BL", "W6"):  # no response computed beforehand: sign computes it
        assert _cli(monkeypatch, pw, "sign", "S001", visit, "--reader", "alice", "--db", db) == 0
    out = capsys.readouterr().out
    assert "signed S001 BL by alice (read complete), version 1: baseline, no response" in out
    assert "signed S001 W6 by alice (read complete), version 1: overall response PR" in out

    assert _cli(monkeypatch, pw, "amend", "S001", "W6", "--reader", "alice", "--reason",
                "T01 remeasured on thin slices", "--db", db) == 0
    assert "version 2 of alice's read opened" in capsys.readouterr().out
    with TrialStore(db) as store:
        assert store.get_read("S001", "W6", reader="alice").response is None  # not copied
        store.record_measurement("S001", "W6", "T01", reader="alice", long_axis_mm="60",
                                 reason="remeasured on thin slices")
        first_event = store.audit_head().id

    assert _cli(monkeypatch, "wrong-password", "sign", "S001", "W6", "--reader", "alice",
                "--db", db) == 3
    assert "wrong password" in capsys.readouterr().err
    with TrialStore(db) as store:
        assert store.get_read("S001", "W6", reader="alice").response is None  # nothing computed

    assert _cli(monkeypatch, pw, "sign", "S001", "W6", "--reader", "alice", "--db", db) == 0
    assert ("signed S001 W6 by alice (read complete), version 2: overall response PD"
            in capsys.readouterr().out)
    with TrialStore(db) as store:
        v2 = store.get_read("S001", "W6", reader="alice")
        assert (v2.version, v2.status) == (2, "signed")
        assert v2.response is not None
        assert (v2.response.overall, v2.response.confirmed_overall) == ("PD", "PD")
        v1 = store.get_read("S001", "W6", reader="alice", version=1)
        assert (v1.response.overall, v1.response.confirmed_overall) == ("PR", "PR")
        events = [e for e in store.audit_log("S001") if e.id > first_event]
        assert store.verify_audit().ok
    computed = [e for e in events if e.entity == "timepoint_response" and e.action == "INSERT"]
    assert len(computed) == 1 and computed[0].actor == "alice"
    assert computed[0].reason == "responses computed" and computed[0].new["overall"] == "PD"
    assert [e.action for e in events if e.entity == "signature"] == ["INSERT"]
    assert any(e.action == "AUTH_FAIL" for e in store.audit_log(None) if e.id > first_event)


def test_sign_confirming_another_response_says_so(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "r.db")
    with TrialStore(db) as store:
        make_trial(store)
        read_subject(store, "alice", t01_w6="18", t02_w6="12")
    pw = PASSWORDS["alice"]
    assert _cli(monkeypatch, pw, "sign", "S001", "W6", "--reader", "alice", "--confirm", "SD",
                "--db", db) == 3
    assert capsys.readouterr().err.strip().endswith("needs a reason")
    assert _cli(monkeypatch, pw, "sign", "S001", "W6", "--reader", "alice", "--confirm", "SD",
                "--reason", "T01 [lung] includes a vessel", "--db", db) == 0
    assert "overall response SD confirmed (computed PR)" in capsys.readouterr().out


def test_sign_refuses_in_one_line_and_computes_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A bad meaning, a follow-up without the reader's baseline, a signed read: one line, exit
    2 or 3, no response computed, no signature."""
    db = str(tmp_path / "r.db")
    with TrialStore(db) as store:
        make_trial(store)
        store.add_lesion("S001", "W6", "T01", "TARGET", reader="bob", organ="LUNG")
        store.record_measurement("S001", "W6", "T01", reader="bob", long_axis_mm="20")
        head = store.audit_head().id
    pw = PASSWORDS["bob"]
    assert _cli(monkeypatch, pw, "sign", "S001", "W6", "--reader", "bob", "--meaning", "done",
                "--db", db) == 2
    assert _cli(monkeypatch, pw, "sign", "S001", "W6", "--reader", "bob", "--db", db) == 3
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == ("error: S001 W6: no response can be computed for bob's read: "
                                    "it needs bob's read of the baseline BL")
    assert "--meaning 'done' is not one of" in err and "Traceback" not in err
    with TrialStore(db) as store:
        assert store.audit_head().id == head  # nothing written
        assert store.get_read("S001", "W6", reader="bob").status == "open"


def _docs_block(path: Path, marker: str) -> str:
    """The first ```sh block after the HTML comment naming ``marker`` in ``path``."""
    text = path.read_text(encoding="utf-8")
    m = re.search(r"<!--[^>]*" + re.escape(marker) + r"[^>]*-->\s*```sh\n(.*?)```", text, re.S)
    assert m, f"no sh block marked {marker} in {path}"
    return m.group(1)


@pytest.mark.slow
def test_docs_store_signing_sequence_runs_as_written(tmp_path: Path) -> None:
    """``reader add`` → ``batch --reader`` → ``sign --password-stdin`` (every visit) → ``amend`` →
    ``sign``, the block of docs/store.md, in bash in an empty folder with the venv's ``recist``."""
    script = _docs_block(REPO / "docs" / "store.md", "tests/cli/test_cli_sign.py")
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               RECIST_SCRYPT_N="1024")
    run = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    for visit in ("BL", "W06", "W12"):
        assert f"signed SYN-001 {visit} by alice (read complete), version 1:" in run.stdout
    assert "signed SYN-001 W12 by alice (read complete), version 2: overall response" in run.stdout
    assert "OK: " in run.stdout
    with TrialStore(tmp_path / "trial.db", read_only=True) as store:
        versions = store.read_versions("SYN-001", "W12", reader="alice")
        assert [(v.version, v.status) for v in versions] == [(1, "signed"), (2, "signed")]
        assert versions[1].response is not None
        assert versions[1].response.confirmed_overall == versions[1].response.overall
        assert versions[1].amend_reason == "T04 checked again"
