"""DICOMweb: QIDO-RS search and STOW-RS store with ``dicomweb-client``; WADO-RS retrieve streamed
to files.

The retrieve asks for the instances as stored (``transfer-syntax=*``) and writes each part of the
multipart answer as it arrives, without decoding it (the loader reads the files afterwards); it
uses the client's HTTP session, so the same login and timeouts apply.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from recist_tool.io.pacs.config import PacsError, Server

__all__ = ["client", "find_instances", "find_series", "retrieve_series", "session", "store"]

#: Bytes read from the socket at a time while streaming a retrieve.
CHUNK_BYTES = 4 << 20


def _requests() -> Any:
    try:
        import requests
    except ImportError as exc:  # pragma: no cover - requests comes with dicomweb-client
        raise PacsError("DICOMweb needs the pacs extra: pip install 'recist-tool[pacs]'") from exc
    return requests


def client(srv: Server) -> Any:
    """A ``DICOMwebClient`` for ``srv`` with its login (HTTP basic) and timeout."""
    try:
        from dicomweb_client.api import DICOMwebClient
    except ImportError:
        raise PacsError("DICOMweb needs dicomweb-client: pip install 'recist-tool[pacs]'") from None
    c = DICOMwebClient(url=srv.url, session=session(srv), timeout=srv.timeout_s)
    # one attempt: the client's retries (exponential back-off, on any exception too) turn a
    # server that is down into half a minute of waiting before the same error
    c.set_http_retry_params(retry=False)
    return c


def session(srv: Server) -> Any:
    """A ``requests`` session with the server's login (HTTP basic) and timeout."""
    requests = _requests()
    http = requests.Session()
    login = srv.login()
    if login is not None:
        http.auth = requests.auth.HTTPBasicAuth(*login)
    http.headers["User-Agent"] = "recist-tool"
    http.request = _with_timeout(http.request, srv.timeout_s)  # type: ignore[method-assign]
    return http


def _with_timeout(request: Any, timeout: float) -> Any:
    def call(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", timeout)
        return request(*args, **kwargs)
    return call


def _error(srv: Server, exc: Exception, what: str) -> PacsError:
    """One line for a failed request (status and reason; never the login)."""
    requests = _requests()
    if isinstance(exc, requests.exceptions.HTTPError) and exc.response is not None:
        code = exc.response.status_code
        if code in (401, 403):
            return PacsError(f"PACS {srv.name} ({srv.url}) refused the login (HTTP {code}); check "
                             f"{srv.env_prefix()}USERNAME / PASSWORD or the credentials file")
        if code == 404:
            return PacsError(f"PACS {srv.name}: {what}: not found (HTTP 404)")
        return PacsError(f"PACS {srv.name}: {what}: HTTP {code} {exc.response.reason}")
    if isinstance(exc, requests.exceptions.Timeout):
        return PacsError(f"PACS {srv.name} ({srv.url}): no answer within {srv.timeout_s:g} s ({what})")
    if isinstance(exc, requests.exceptions.ConnectionError):
        return PacsError(f"PACS {srv.name} ({srv.url}) cannot be reached (connection refused or "
                         "no route); is the server running?")
    if isinstance(exc, requests.exceptions.RequestException):
        return PacsError(f"PACS {srv.name}: {what}: {type(exc).__name__}")
    return PacsError(f"PACS {srv.name}: {what}: unexpected answer ({type(exc).__name__}: {exc})")


def _value(item: dict, tag: str) -> Any:
    vals = item.get(tag, {}).get("Value") or [None]
    return vals[0]


def find_series(srv: Server, study_uid: str, series_uid: str | None = None) -> list[dict[str, Any]]:
    """QIDO-RS: the series of a study (or the one named), as ``{series_uid, modality, n}``."""
    filters = {"SeriesInstanceUID": series_uid} if series_uid else {}
    try:
        found = client(srv).search_for_series(
            study_instance_uid=study_uid, search_filters=filters,
            fields=["NumberOfSeriesRelatedInstances", "Modality", "SeriesDescription"])
    except PacsError:
        raise
    except Exception as exc:
        raise _error(srv, exc, f"search of study {study_uid}") from None
    return [{"series_uid": _value(d, "0020000E"), "modality": _value(d, "00080060"),
             "description": _value(d, "0008103E"),
             "n": int(_value(d, "00201209") or 0)} for d in found]


def find_instances(srv: Server, study_uid: str, series_uid: str) -> list[str]:
    """QIDO-RS: the SOPInstanceUIDs of a series."""
    try:
        found = client(srv).search_for_instances(
            study_instance_uid=study_uid, series_instance_uid=series_uid,
            fields=["SOPInstanceUID"])
    except Exception as exc:
        raise _error(srv, exc, f"search of series {series_uid}") from None
    return [_value(d, "00080018") for d in found]


def _parts(response: Any) -> Iterator[bytes | memoryview]:
    """The bodies of a ``multipart/related`` answer, as they arrive.

    Each body is a view into the receive buffer, valid until the next one is asked for (write it
    out or copy it first): the 150 MB of a CT series are not copied part by part.
    """
    ctype = response.headers.get("Content-Type", "")
    media, *params = [p.strip() for p in ctype.split(";")]
    if media.lower() != "multipart/related":
        if media.lower() == "application/dicom":
            yield response.content
            return
        raise ValueError(f"unexpected media type {media!r}")
    boundary = next((p.partition("=")[2].strip('"') for p in params
                     if p.partition("=")[0].strip().lower() == "boundary"), None)
    if not boundary:
        raise ValueError("multipart answer without a boundary")
    delim = b"\r\n--" + boundary.encode()
    buf = bytearray(b"\r\n")  # the first boundary line has no CRLF before it
    start = 0  # where the next delimiter search starts
    for chunk in response.iter_content(chunk_size=CHUNK_BYTES):
        buf += chunk
        pos = 0  # start of the current part
        with memoryview(buf) as view:
            while (i := buf.find(delim, max(pos, start))) >= 0:
                head_end = buf.find(b"\r\n\r\n", pos, i)
                if head_end >= 0:  # the preamble before the first boundary has no headers
                    with view[head_end + 4:i] as body:
                        yield body
                pos = i + len(delim)
        del buf[:pos]
        start = max(0, len(buf) - len(delim) + 1)


def retrieve_series(srv: Server, study_uid: str, series_uid: str, folder: Path) -> int:
    """WADO-RS: write every instance of a series into ``folder``; returns how many."""
    http = session(srv)
    url = f"{srv.url}/studies/{study_uid}/series/{series_uid}"
    accept = 'multipart/related; type="application/dicom"; transfer-syntax=*'
    n = 0
    try:
        with http.get(url, headers={"Accept": accept}, stream=True) as resp:
            resp.raise_for_status()
            for n, body in enumerate(_parts(resp), 1):
                with open(folder / f"{n:06d}.dcm", "wb") as fh:
                    fh.write(body)
    except PacsError:
        raise
    except Exception as exc:
        raise _error(srv, exc, f"retrieve of series {series_uid}") from None
    return n


def store(srv: Server, files: Iterable[Path]) -> list[str]:
    """STOW-RS: store DICOM files; returns the SOPInstanceUIDs the server accepted.

    Raises
    ------
    PacsError
        When the server refuses any of them (the message says how many and why).
    """
    import pydicom

    datasets = [pydicom.dcmread(str(p)) for p in files]
    try:
        answer = client(srv).store_instances(datasets=datasets)
    except Exception as exc:
        raise _error(srv, exc, "store (STOW-RS)") from None
    ok = [str(item.ReferencedSOPInstanceUID) for item in answer.get("ReferencedSOPSequence", [])]
    failed = answer.get("FailedSOPSequence", [])
    if failed:
        reasons = sorted({str(getattr(f, "FailureReason", "?")) for f in failed})
        raise PacsError(f"PACS {srv.name} refused {len(failed)} of {len(datasets)} object(s) "
                        f"(failure reason {', '.join(reasons)})")
    return ok
