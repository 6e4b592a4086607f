"""PACS servers named in the trial settings, series references, credentials.

A server is a ``[pacs.NAME]`` table of the trial settings TOML (``trial.toml``)::

    [pacs.orthanc]                       # DICOMweb (QIDO-RS, WADO-RS, STOW-RS)
    url = "http://127.0.0.1:8042/dicom-web"
    credentials = "~/.config/recist/orthanc.toml"   # optional; or the environment, see below

    [pacs.archive]                       # DIMSE (C-ECHO, C-FIND, C-GET, C-STORE)
    dicom = "pacs.example.org:104"
    aet = "ARCHIVE"                      # the server's AE title
    calling_aet = "RECIST"               # ours (default RECIST)

    [pacs_cache]                         # optional: the local cache of retrieved series
    folder = "~/.cache/recist/pacs"
    max_mb = 4096

A series on a server is written ``pacs://NAME/STUDY_UID/SERIES_UID`` (or
``pacs://NAME/STUDY_UID`` with the series chosen by ``--series`` / the manifest's
``series_uid``, or the study's only CT series).

Credentials (HTTP basic) never come from the command line or the settings: from
``RECIST_PACS_<NAME>_USERNAME`` / ``RECIST_PACS_<NAME>_PASSWORD`` (NAME upper case, other
characters than letters and digits as ``_``), else from the server's ``credentials`` file, a TOML
file with ``username`` and ``password`` that only its owner may read (mode 600 or 400).

The settings file is the one given with ``--settings`` (:func:`use_settings`, which also exports
it to worker processes as ``$RECIST_PACS_CONFIG``), else ``$RECIST_PACS_CONFIG``.
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

from recist_tool.errors import InputError

__all__ = ["CONFIG_ENV", "PacsError", "RetrievalCancelled", "Server", "SeriesRef", "is_pacs_ref", "parse_ref",
           "read_servers", "server", "use_settings"]

#: Environment variable naming the settings file that holds the ``[pacs.NAME]`` tables.
CONFIG_ENV = "RECIST_PACS_CONFIG"
#: Scheme of a series reference.
SCHEME = "pacs"
_UID = r"[0-9]+(?:\.[0-9]+)*"
_NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]*"
# ``pacs:/`` too: a CLI argument typed as a path has its double slash folded to one.
_REF = re.compile(rf"^{SCHEME}:/{{1,2}}(?P<name>{_NAME})/(?P<study>{_UID})(?:/(?P<series>{_UID}))?/?$")
_KNOWN_KEYS = {"url", "dicom", "aet", "calling_aet", "credentials", "timeout_s"}


class PacsError(InputError):
    """A PACS that cannot be used: unknown server, refused login, server down, missing series."""


class RetrievalCancelled(PacsError):
    """A search or retrieve stopped because the user cancelled it (nothing half-fetched is kept)."""


@dataclass(frozen=True)
class SeriesRef:
    """A study or series on a named server.

    Attributes
    ----------
    server : str
        Name of a ``[pacs.NAME]`` table.
    study_uid : str
        StudyInstanceUID.
    series_uid : str or None
        SeriesInstanceUID; None: the study's CT series (its only one, or chosen by the caller).
    """

    server: str
    study_uid: str
    series_uid: str | None = None

    def __str__(self) -> str:
        tail = f"/{self.series_uid}" if self.series_uid else ""
        return f"{SCHEME}://{self.server}/{self.study_uid}{tail}"


def is_pacs_ref(value: Any) -> bool:
    """True when ``value`` (text or path) is written as a PACS reference (``pacs:/...``)."""
    return str(value).startswith(f"{SCHEME}:/")


def parse_ref(value: Any) -> SeriesRef:
    """``pacs://NAME/STUDY_UID[/SERIES_UID]`` → :class:`SeriesRef`.

    Raises
    ------
    PacsError
        When the text is not such a reference (the message shows the syntax).
    """
    text = str(value).strip()
    m = _REF.match(text)
    if m is None:
        raise PacsError(f"{text}: not a PACS series reference (write "
                        f"{SCHEME}://SERVER/STUDY_UID/SERIES_UID, UIDs of digits and dots)")
    return SeriesRef(m["name"], m["study"], m["series"])


@dataclass(frozen=True)
class Server:
    """One PACS of the settings.

    Attributes
    ----------
    name : str
    protocol : {"dicomweb", "dimse"}
    url : str or None
        DICOMweb base URL (QIDO/WADO/STOW under it), without credentials.
    host, port : str or None, int or None
        DIMSE address.
    aet, calling_aet : str
        The server's AE title and ours.
    credentials_file : Path or None
    timeout_s : float
    """

    name: str
    protocol: str
    url: str | None = None
    host: str | None = None
    port: int | None = None
    aet: str = "ANY-SCP"
    calling_aet: str = "RECIST"
    credentials_file: Path | None = None
    timeout_s: float = 60.0

    @property
    def address(self) -> str:
        """Where the server is, for messages (never with credentials)."""
        return (cast(str, self.url) if self.protocol == "dicomweb"
                else f"{self.aet}@{self.host}:{self.port}")

    def env_prefix(self) -> str:
        """``RECIST_PACS_<NAME>_``: the prefix of this server's credential variables."""
        return "RECIST_PACS_" + re.sub(r"[^A-Za-z0-9]", "_", self.name).upper() + "_"

    def login(self) -> tuple[str, str] | None:
        """``(username, password)`` from the environment or the credentials file; None if neither.

        Raises
        ------
        PacsError
            A credentials file that others may read, that cannot be read or lacks a field; only
            one of the two environment variables set.
        """
        pre = self.env_prefix()
        user, password = os.environ.get(pre + "USERNAME"), os.environ.get(pre + "PASSWORD")
        if user is not None or password is not None:
            if not user or password is None:
                raise PacsError(f"PACS {self.name}: set both {pre}USERNAME and {pre}PASSWORD")
            return user, password
        if self.credentials_file is None:
            return None
        return read_credentials(self.credentials_file, self.name)


def read_credentials(path: Path, server_name: str) -> tuple[str, str]:
    """``(username, password)`` of a TOML credentials file that only its owner may read.

    Raises
    ------
    PacsError
        When group or others have any permission on it, it cannot be read, is not TOML or lacks
        ``username`` / ``password`` (the message never shows the password).
    """
    where = f"PACS {server_name}: credentials file {path}"
    try:
        st = path.stat()
    except OSError as exc:
        raise PacsError(f"{where}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise PacsError(f"{where}: not a file")
    if st.st_mode & 0o077:
        raise PacsError(f"{where}: readable by others (mode {stat.S_IMODE(st.st_mode):04o}); "
                        "make it owner-only: chmod 600")
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise PacsError(f"{where}: cannot read it ({type(exc).__name__})") from None
    except tomllib.TOMLDecodeError:
        raise PacsError(f"{where}: not TOML with username = \"...\" and password = \"...\"") from None
    user, password = doc.get("username"), doc.get("password")
    if not isinstance(user, str) or not user or not isinstance(password, str):
        raise PacsError(f"{where}: needs username = \"...\" and password = \"...\"")
    return user, password


def use_settings(path: str | os.PathLike[str] | None) -> None:
    """Take the PACS servers from this settings file from now on (None: leave as is).

    The absolute path goes to ``$RECIST_PACS_CONFIG`` so that worker processes started later
    (the batch's local pool) read the same servers.
    """
    if path is not None:
        os.environ[CONFIG_ENV] = str(Path(path).expanduser().resolve())


def _config_path() -> Path | None:
    value = os.environ.get(CONFIG_ENV)
    return Path(value).expanduser() if value else None


def _server(name: str, table: Any, where: str, base: Path) -> Server:
    if not isinstance(table, dict):
        raise PacsError(f"{where}: [pacs.{name}] is not a table")
    unknown = sorted(set(table) - _KNOWN_KEYS)
    if any(k in ("password", "username", "user") for k in unknown):
        raise PacsError(f"{where}: [pacs.{name}]: no credentials in the settings; put them in "
                        "the environment or a credentials file with owner-only permissions")
    if unknown:
        raise PacsError(f"{where}: [pacs.{name}]: unknown key(s) {', '.join(unknown)} "
                        f"(known: {', '.join(sorted(_KNOWN_KEYS))})")
    cred = table.get("credentials")
    cred_path = None
    if cred is not None:
        cred_path = Path(str(cred)).expanduser()
        cred_path = cred_path if cred_path.is_absolute() else base / cred_path
    try:
        timeout = float(table.get("timeout_s", 60.0))
    except (TypeError, ValueError):
        raise PacsError(f"{where}: [pacs.{name}] timeout_s must be a number") from None
    common: dict[str, Any] = {"name": name, "credentials_file": cred_path, "timeout_s": timeout}
    url, dicom = table.get("url"), table.get("dicom")
    if (url is None) == (dicom is None):
        raise PacsError(f"{where}: [pacs.{name}] needs url = \"http(s)://...\" (DICOMweb) or "
                        "dicom = \"HOST:PORT\" (DIMSE), one of the two")
    if url is not None:
        parts = urlsplit(str(url))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PacsError(f"{where}: [pacs.{name}] url must be http(s)://HOST[:PORT]/PATH")
        if parts.username is not None or parts.password is not None:
            raise PacsError(f"{where}: [pacs.{name}] url holds credentials; put them in the "
                            "environment or a credentials file with owner-only permissions")
        return Server(protocol="dicomweb", url=str(url).rstrip("/"), **common)
    host, _, port = str(dicom).rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise PacsError(f"{where}: [pacs.{name}] dicom must be \"HOST:PORT\", got {dicom!r}")
    aet = str(table.get("aet", "ANY-SCP"))
    calling = str(table.get("calling_aet", "RECIST"))
    for what, title in (("aet", aet), ("calling_aet", calling)):
        if not 0 < len(title) <= 16 or not title.isascii() or "\\" in title:
            raise PacsError(f"{where}: [pacs.{name}] {what} must be 1-16 ASCII characters")
    return Server(protocol="dimse", host=host, port=int(port), aet=aet, calling_aet=calling,
                  **common)


def read_servers(path: str | os.PathLike[str] | None = None) -> dict[str, Server]:
    """The ``[pacs.NAME]`` servers of a settings file (default: :data:`CONFIG_ENV`'s).

    Raises
    ------
    PacsError
        A settings file that cannot be read or holds a malformed server table.
    """
    p = Path(path) if path is not None else _config_path()
    if p is None:
        return {}
    doc = _load(p)
    tables = doc.get("pacs", {})
    if not isinstance(tables, dict):
        raise PacsError(f"{p}: [pacs] must hold one [pacs.NAME] table per server")
    base = p.resolve().parent
    return {name: _server(name, t, str(p), base) for name, t in tables.items()}


def _load(p: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise PacsError(f"{p}: cannot read the PACS settings: {getattr(exc, 'strerror', None) or exc}"
                        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise PacsError(f"{p}: not valid TOML: {exc}") from None


def cache_settings() -> tuple[Path, int]:
    """``(folder, max_bytes)`` of the series cache.

    ``$RECIST_PACS_CACHE`` / ``$RECIST_PACS_CACHE_MB`` first, then ``[pacs_cache] folder`` /
    ``max_mb`` of the settings, then ``$XDG_CACHE_HOME/recist/pacs`` (``~/.cache``) and 4096 MB.
    """
    table: dict[str, Any] = {}
    p = _config_path()
    if p is not None and p.is_file():
        t = _load(p).get("pacs_cache", {})
        table = t if isinstance(t, dict) else {}
    folder = os.environ.get("RECIST_PACS_CACHE") or table.get("folder")
    if folder is None:
        xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        folder = str(Path(xdg) / "recist" / "pacs")
    mb = os.environ.get("RECIST_PACS_CACHE_MB") or table.get("max_mb", 4096)
    try:
        max_bytes = int(float(mb) * 1024**2)
    except (TypeError, ValueError):
        raise PacsError(f"PACS cache size must be a number of MB, got {mb!r}") from None
    return Path(str(folder)).expanduser(), max_bytes


def server(name: str) -> Server:
    """The server called ``name`` in the current settings.

    Raises
    ------
    PacsError
        No settings named, or no such server in them (the message lists those there are).
    """
    p = _config_path()
    servers = read_servers(p)
    if name in servers:
        return servers[name]
    if p is None:
        raise PacsError(f"PACS server {name!r}: no servers configured; name them in [pacs.NAME] "
                        f"tables of the trial settings (--settings trial.toml or ${CONFIG_ENV})")
    known = ", ".join(sorted(servers)) or "none"
    raise PacsError(f"PACS server {name!r} is not in {p} (servers there: {known})")
