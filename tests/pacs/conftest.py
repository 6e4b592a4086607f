"""A real PACS for the PACS tests: Orthanc (DICOMweb + DIMSE) on 127.0.0.1.

``orthanc`` uses the server ``.ci/run`` started (``$RECIST_TEST_ORTHANC_URL`` and its companions,
see ``.ci/orthanc.sh``); without it, it starts one itself with ``.ci/orthanc.sh --no-install``
where the Debian ``Orthanc`` binary is installed, and stops it at the end of the session. Tests
that need it skip with the reason when neither works.

``pacs_settings`` writes a trial settings file naming the server by DICOMweb (``web``) and DIMSE
(``dimse``), and servers that must fail (down, wrong login, a credentials file others may read, an
AE title the server does not know); it points ``$RECIST_PACS_CONFIG`` and the series cache
(``$RECIST_PACS_CACHE``) at the test's folders for the session. ``on_server`` uploads the scored
sample trial's CT (STOW-RS) once.
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, ScoredTrial

URL_ENV = "RECIST_TEST_ORTHANC_URL"


@dataclass(frozen=True)
class Orthanc:
    """Where the test server is and how to log in (the password only in its owner-only file)."""

    url: str
    dicom_host: str
    dicom_port: int
    aet: str
    calling_aet: str
    credentials: Path

    @property
    def dicomweb(self) -> str:
        return self.url.rstrip("/") + "/dicom-web"


def _from_env(env: dict[str, str]) -> Orthanc:
    host, _, port = env["RECIST_TEST_ORTHANC_DICOM"].rpartition(":")
    return Orthanc(env[URL_ENV], host, int(port), env.get("RECIST_TEST_ORTHANC_AET", "ORTHANC"),
                   env.get("RECIST_TEST_ORTHANC_CALLING_AET", "RECIST"),
                   Path(env["RECIST_TEST_ORTHANC_CREDENTIALS"]))


def _answers(server: Orthanc) -> str | None:
    """None when ``/system`` answers 200 with the login; else why not."""
    import tomllib

    cred = tomllib.loads(server.credentials.read_text())
    req = urllib.request.Request(server.url.rstrip("/") + "/system")
    token = base64.b64encode(f"{cred['username']}:{cred['password']}".encode()).decode()
    req.add_header("Authorization", "Basic " + token)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return None if resp.status == 200 else f"HTTP {resp.status}"
    except Exception as exc:  # noqa: BLE001 - any failure is a reason to skip
        return f"{type(exc).__name__}: {exc}"


@pytest.fixture(scope="session")
def orthanc() -> Orthanc:
    """The running test Orthanc (skips with the reason when there is none and none can start)."""
    if os.environ.get(URL_ENV):
        try:
            server = _from_env(dict(os.environ))
        except (KeyError, ValueError) as exc:
            pytest.skip(f"{URL_ENV} is set but its companion variables are not ({exc})")
        why = _answers(server)
        if why is not None:
            pytest.skip(f"Orthanc at {server.url} does not answer: {why}")
        yield server
        return
    if shutil.which("Orthanc") is None:
        pytest.skip(f"no Orthanc: {URL_ENV} is not set and the Orthanc binary is not installed "
                    "(Debian packages orthanc, orthanc-dicomweb)")
    run = subprocess.run(["bash", str(REPO_ROOT / ".ci" / "orthanc.sh"), "--no-install"],
                         capture_output=True, text=True, timeout=120)
    if run.returncode != 0:
        pytest.skip(f"Orthanc could not be started: {run.stderr.strip().splitlines()[-1:]}")
    env = dict(line.split("=", 1) for line in run.stdout.splitlines() if "=" in line)
    try:
        yield _from_env(env)
    finally:
        subprocess.run(["bash", str(REPO_ROOT / ".ci" / "orthanc.sh"), "--stop",
                        env["RECIST_TEST_ORTHANC_DIR"]], capture_output=True, timeout=60)


def free_port() -> int:
    """A loopback port nothing listens on (for the server-down cases)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: A password that must never appear in any output.
WRONG_PASSWORD = "not-the-password-7f3a"


@dataclass(frozen=True)
class PacsSettings:
    """The settings file the PACS tests name, and the cache folder."""

    toml: Path
    cache: Path
    server: Orthanc


def write_settings(folder: Path, server: Orthanc) -> Path:
    """``trial.toml`` with the good, the down and the refused servers (see module docstring)."""
    folder.mkdir(parents=True, exist_ok=True)
    wrong = folder / "wrong-login.toml"
    wrong.write_text(f'username = "recist"\npassword = "{WRONG_PASSWORD}"\n')
    wrong.chmod(0o600)
    shared = folder / "shared-login.toml"
    shared.write_bytes(server.credentials.read_bytes())
    shared.chmod(0o644)
    dead = free_port()
    toml = folder / "trial.toml"
    toml.write_text(f"""[trial]
criteria = "RECIST 1.1"

[pacs.web]
url = "{server.dicomweb}"
credentials = "{server.credentials}"
timeout_s = 30

[pacs.dimse]
dicom = "{server.dicom_host}:{server.dicom_port}"
aet = "{server.aet}"
calling_aet = "{server.calling_aet}"
timeout_s = 30

[pacs.down-web]
url = "http://127.0.0.1:{dead}/dicom-web"
timeout_s = 5

[pacs.down-dimse]
dicom = "127.0.0.1:{dead}"
timeout_s = 5

[pacs.wrong-login]
url = "{server.dicomweb}"
credentials = "wrong-login.toml"

[pacs.shared-login]
url = "{server.dicomweb}"
credentials = "shared-login.toml"

[pacs.no-login]
url = "{server.dicomweb}"

[pacs.intruder]
dicom = "{server.dicom_host}:{server.dicom_port}"
aet = "{server.aet}"
calling_aet = "INTRUDER"
timeout_s = 10
""")
    return toml


@pytest.fixture(scope="session")
def pacs_files(orthanc: Orthanc, tmp_path_factory: pytest.TempPathFactory) -> PacsSettings:
    """The settings file and cache folder of this session."""
    folder = tmp_path_factory.mktemp("pacs-settings")
    return PacsSettings(write_settings(folder, orthanc), folder / "cache", orthanc)


def _environ(files: PacsSettings, setenv) -> None:
    setenv("RECIST_PACS_CONFIG", str(files.toml))
    setenv("RECIST_PACS_CACHE", str(files.cache))
    setenv("RECIST_PACS_CACHE_MB", "4096")


@pytest.fixture
def pacs_settings(pacs_files: PacsSettings, monkeypatch: pytest.MonkeyPatch) -> PacsSettings:
    """The session's settings and cache in ``$RECIST_PACS_CONFIG`` / ``$RECIST_PACS_CACHE`` for
    one test (set again for each: another test's ``--settings`` may have replaced them)."""
    _environ(pacs_files, monkeypatch.setenv)
    return pacs_files


@pytest.fixture(scope="session")
def on_server(pacs_files: PacsSettings, scored_trial: ScoredTrial) -> ScoredTrial:
    """The scored sample trial, its CT uploaded to the test Orthanc by STOW-RS (once)."""
    from recist_tool.io import pacs

    with pytest.MonkeyPatch.context() as mp:
        _environ(pacs_files, mp.setenv)
        for folder in sorted({p.parent for p in scored_trial.sample_dir.rglob("*.dcm")}):
            _, held = pacs.send("web", sorted(folder.glob("*.dcm")))
            assert all(s.ok for s in held)
    return scored_trial
