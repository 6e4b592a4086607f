"""DICOMweb: QIDO-RS search and STOW-RS store with ``dicomweb-client``; WADO-RS retrieve streamed
to files.

The retrieve asks for the instances as stored (``transfer-syntax=*``) and writes each part of the
multipart answer as it arrives, without decoding it (the loader reads the files afterwards), in a
thread of its own (:class:`_FileWriter`) while the next parts are received; it uses the client's
HTTP session, so the same login and timeouts apply.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, cast

from recist_tool.io.pacs.config import PacsError, Server

__all__ = ["client", "find_instances", "find_series", "find_studies", "retrieve_series", "session", "store"]

#: Bytes read from the socket at a time while streaming a retrieve.
CHUNK_BYTES = 4 << 20
#: Instances received but not written yet at most (the receiving waits beyond: bounds memory).
WRITE_QUEUE = 32


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
    c = DICOMwebClient(url=cast(str, srv.url), session=session(srv), timeout=srv.timeout_s)  # dicomweb: set
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
    """QIDO-RS: the series of a study (or the one named), as ``{series_uid, modality,
    description, n, number, date, slice_thickness}`` (the last three as the server gives them,
    None where it does not)."""
    filters = {"SeriesInstanceUID": series_uid} if series_uid else {}
    try:
        found = client(srv).search_for_series(
            study_instance_uid=study_uid, search_filters=filters,
            fields=["NumberOfSeriesRelatedInstances", "Modality", "SeriesDescription",
                    "SeriesNumber", "SeriesDate", "SliceThickness"])
    except PacsError:
        raise
    except Exception as exc:
        raise _error(srv, exc, f"search of study {study_uid}") from None
    return [{"series_uid": _value(d, "0020000E"), "modality": _value(d, "00080060"),
             "description": _value(d, "0008103E"),
             "n": int(_value(d, "00201209") or 0),
             "number": _value(d, "00200011"), "date": _value(d, "00080021"),
             "slice_thickness": _value(d, "00180050")} for d in found]


#: Study attributes a study search asks for (QIDO-RS ``includefield``).
_STUDY_FIELDS = ("PatientID", "StudyDate", "StudyTime", "AccessionNumber", "StudyDescription",
                 "ModalitiesInStudy", "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances")


def find_studies(srv: Server, filters: dict[str, str], limit: int) -> list[dict[str, Any]]:
    """QIDO-RS: studies matching ``filters`` (DICOM keywords → DICOM match values), at most
    ``limit``, as ``{study_uid, patient_id, date, time, accession, description, modalities,
    n_series, n_instances}``.

    The query string keeps the wildcards ``*`` and ``?`` as they are (RFC 3986 allows them in
    a query): Orthanc 1.10's DICOMweb plugin matches ``%2A`` literally, so a percent-encoded
    wildcard (as ``dicomweb-client`` sends it) finds nothing.
    """
    from urllib.parse import quote

    params = [*filters.items(), *(("includefield", f) for f in _STUDY_FIELDS),
              ("limit", str(int(limit)))]
    query = "&".join(f"{quote(k, safe='')}={quote(v, safe='*?')}" for k, v in params)
    try:
        with session(srv) as http:
            resp = http.get(f"{srv.url}/studies?{query}",
                            headers={"Accept": "application/dicom+json"})
            resp.raise_for_status()
            found = resp.json() if resp.content.strip() else []
    except PacsError:
        raise
    except Exception as exc:
        raise _error(srv, exc, "search of studies") from None
    return [{"study_uid": _value(d, "0020000D"), "patient_id": _value(d, "00100020"),
             "date": _value(d, "00080020"), "time": _value(d, "00080030"),
             "accession": _value(d, "00080050"), "description": _value(d, "00081030"),
             "modalities": tuple(str(m) for m in d.get("00080061", {}).get("Value") or ()),
             "n_series": int(_value(d, "00201206") or 0),
             "n_instances": int(_value(d, "00201208") or 0)} for d in found]


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


class _FileWriter:
    """Writes the instance files of a retrieve in a thread of its own, in order.

    Creating a file costs 0.2 to 3 ms on the development box's ext4 (300 a series), time the
    receiving thread spent waiting before; now it receives the next parts meanwhile (both wait
    in system calls, without Python's lock). :attr:`written` is how many of the first instances
    are complete on disk; a write that fails stops the writing, and :meth:`put` or
    :meth:`finish` raise its error.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.written = 0
        self.error: BaseException | None = None
        self._queue: queue.Queue[tuple[int, bytes] | None] = queue.Queue(maxsize=WRITE_QUEUE)
        self._thread = threading.Thread(target=self._run, name="recist-pacs-write", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self.error is not None:
                continue  # drain what is queued; the receiving stops at its next put
            n, data = item
            try:
                with open(self.folder / f"{n:06d}.dcm", "wb") as fh:
                    fh.write(data)
            except BaseException as exc:  # noqa: BLE001 - raised in the receiving thread
                self.error = exc
            else:
                self.written = n

    def put(self, n: int, data: bytes) -> None:
        """Queue instance ``n`` (waits while :data:`WRITE_QUEUE` are queued)."""
        if self.error is not None:
            raise self.error
        self._queue.put((n, data))

    def close(self) -> None:
        """Write what is queued, end the thread; raise a write's error."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        if self.error is not None:
            raise self.error


def retrieve_series(srv: Server, study_uid: str, series_uid: str, folder: Path,
                    progress: Callable[[int], None] | None = None) -> int:
    """WADO-RS: write every instance of a series into ``folder``; returns how many.

    ``progress(n)`` is called in this thread once the first n instances are written (while the
    answer is received, and at the end); an exception it raises (a
    :class:`~recist_tool.io.pacs.config.RetrievalCancelled`) ends the retrieve at its next part.
    """
    http = session(srv)
    url = f"{srv.url}/studies/{study_uid}/series/{series_uid}"
    accept = 'multipart/related; type="application/dicom"; transfer-syntax=*'
    n = reported = 0
    writer = _FileWriter(folder)

    def report() -> None:
        nonlocal reported
        while reported < writer.written:
            reported += 1
            if progress is not None:
                progress(reported)

    try:
        try:
            with http.get(url, headers={"Accept": accept}, stream=True) as resp:
                resp.raise_for_status()
                for n, body in enumerate(_parts(resp), 1):
                    writer.put(n, bytes(body))
                    report()
        finally:
            writer.close()
        report()
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
