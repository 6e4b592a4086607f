"""DIMSE with ``pynetdicom``: C-FIND (study root) to search, C-GET to retrieve, C-STORE to store.

C-GET brings the instances back over the same association (no port of ours needs to be open); each
arrives as a C-STORE sub-operation and is written as received, with its file meta header, without
decoding.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from recist_tool.io.pacs.config import PacsError, Server

__all__ = ["echo", "find_instances", "find_series", "find_studies", "retrieve_series", "store"]

#: Storage classes a retrieved CT series may hold (the SCP role is offered for each).
_RETRIEVE_CLASSES = (
    "1.2.840.10008.5.1.4.1.1.2",      # CT Image Storage
    "1.2.840.10008.5.1.4.1.1.2.1",    # Enhanced CT Image Storage
    "1.2.840.10008.5.1.4.1.1.2.2",    # Legacy Converted Enhanced CT Image Storage
    "1.2.840.10008.5.1.4.1.1.7",      # Secondary Capture Image Storage
    "1.2.840.10008.5.1.4.1.1.88.33",  # Comprehensive SR
    "1.2.840.10008.5.1.4.1.1.88.34",  # Comprehensive 3D SR
    "1.2.840.10008.5.1.4.1.1.66.4",   # Segmentation Storage
)
#: Transfer syntaxes accepted for retrieved instances: uncompressed and the usual compressions.
_TRANSFER_SYNTAXES = (
    "1.2.840.10008.1.2.1", "1.2.840.10008.1.2", "1.2.840.10008.1.2.2",
    "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70",
    "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81", "1.2.840.10008.1.2.4.90",
    "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.5",
)


def _pynetdicom() -> Any:
    try:
        import pynetdicom
    except ImportError:
        raise PacsError("DIMSE needs pynetdicom: pip install 'recist-tool[pacs]'") from None
    return pynetdicom


def _ae(srv: Server) -> Any:
    ae = _pynetdicom().AE(ae_title=srv.calling_aet)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = srv.timeout_s
    ae.connection_timeout = min(srv.timeout_s, 10.0)
    ae.maximum_pdu_size = 0  # no limit on what we receive: 16 KB PDUs make C-GET several times slower
    return ae


def _reachable(srv: Server) -> bool:
    """Whether a TCP connection to the server's DICOM port opens (pynetdicom reports a refused
    connection as an aborted association)."""
    import socket

    try:
        with socket.create_connection((srv.host, srv.port), timeout=min(srv.timeout_s, 5.0)):
            return True
    except OSError:
        return False


class _Association:
    """An association with ``srv``, released on exit; refusal and connection failures as one line."""

    def __init__(self, srv: Server, ae: Any, **kwargs: Any) -> None:
        self.srv, self.ae, self.kwargs = srv, ae, kwargs

    def __enter__(self) -> Any:
        srv = self.srv
        assoc = self.ae.associate(srv.host, srv.port, ae_title=srv.aet, **self.kwargs)
        if assoc.is_established:
            self.assoc = assoc
            return assoc
        if assoc.is_rejected:
            raise PacsError(f"PACS {srv.name} ({srv.address}) rejected the association: the "
                            f"server does not accept calling AE title {srv.calling_aet!r} from "
                            "this host, or its AE title is not "
                            f"{srv.aet!r}")
        if assoc.is_aborted and _reachable(srv):
            raise PacsError(f"PACS {srv.name} ({srv.address}) aborted the association")
        raise PacsError(f"PACS {srv.name} ({srv.address}) cannot be reached (connection refused "
                        "or no answer); is the server running?")

    def __exit__(self, *exc: Any) -> None:
        if self.assoc.is_established:
            self.assoc.release()


def _status(srv: Server, status: Any, what: str) -> int:
    if status is None or "Status" not in status:
        raise PacsError(f"PACS {srv.name}: {what}: no answer (connection lost or timed out)")
    return int(status.Status)


def echo(srv: Server) -> None:
    """C-ECHO: the server answers and accepts us."""
    ae = _ae(srv)
    ae.add_requested_context("1.2.840.10008.1.1")
    with _Association(srv, ae) as assoc:
        code = _status(srv, assoc.send_c_echo(), "C-ECHO")
    if code != 0:
        raise PacsError(f"PACS {srv.name}: C-ECHO status 0x{code:04X}")


def _find(srv: Server, query: Any, what: str) -> list[Any]:
    from pynetdicom.sop_class import (  # type: ignore[attr-defined]  # made at import time
        StudyRootQueryRetrieveInformationModelFind as FIND,
    )

    ae = _ae(srv)
    ae.add_requested_context(FIND)
    out = []
    with _Association(srv, ae) as assoc:
        if not assoc.accepted_contexts:
            raise PacsError(f"PACS {srv.name} does not offer C-FIND (study root)")
        for status, identifier in assoc.send_c_find(query, FIND):
            code = _status(srv, status, what)
            if code in (0xFF00, 0xFF01):
                if identifier is not None:
                    out.append(identifier)
            elif code != 0:
                raise PacsError(f"PACS {srv.name}: {what}: C-FIND status 0x{code:04X}")
    return out


def find_series(srv: Server, study_uid: str, series_uid: str | None = None) -> list[dict[str, Any]]:
    """C-FIND at SERIES level: the series of a study (or the one named), as ``{series_uid,
    modality, description, n, number, date, slice_thickness}`` (the last three as the server
    gives them, None where it does not)."""
    from pydicom.dataset import Dataset

    q = Dataset()
    q.QueryRetrieveLevel = "SERIES"
    q.StudyInstanceUID = study_uid
    q.SeriesInstanceUID = series_uid or ""
    q.Modality = ""
    q.SeriesDescription = ""
    q.NumberOfSeriesRelatedInstances = ""
    q.SeriesNumber = ""
    q.SeriesDate = ""
    q.SliceThickness = ""
    found = _find(srv, q, f"search of study {study_uid}")
    return [{"series_uid": str(d.get("SeriesInstanceUID", "")) or None,
             "modality": str(d.get("Modality", "")) or None,
             "description": str(d.get("SeriesDescription", "")) or None,
             "n": int(d.get("NumberOfSeriesRelatedInstances", 0) or 0),
             "number": d.get("SeriesNumber"),
             "date": str(d.get("SeriesDate", "")) or None,
             "slice_thickness": d.get("SliceThickness")} for d in found]


def _values(value: Any) -> tuple[str, ...]:
    """A multi-valued attribute's values (pydicom gives one value as itself, several as a list)."""
    if value in (None, ""):
        return ()
    if isinstance(value, str | bytes) or not hasattr(value, "__iter__"):
        return (str(value),)
    return tuple(str(v) for v in value if str(v))


#: Study attributes a study search asks for (C-FIND return keys).
_STUDY_KEYS = ("StudyInstanceUID", "PatientID", "StudyDate", "StudyTime", "AccessionNumber",
               "StudyDescription", "ModalitiesInStudy", "NumberOfStudyRelatedSeries",
               "NumberOfStudyRelatedInstances")


def find_studies(srv: Server, filters: dict[str, str], limit: int) -> list[dict[str, Any]]:
    """C-FIND at STUDY level: studies matching ``filters`` (DICOM keywords → DICOM match
    values), at most ``limit`` (the rest of the server's answers are read and dropped), as
    ``{study_uid, patient_id, date, time, accession, description, modalities, n_series,
    n_instances}``."""
    from pydicom.dataset import Dataset

    q = Dataset()
    q.QueryRetrieveLevel = "STUDY"
    for key in _STUDY_KEYS:
        setattr(q, key, filters.get(key, ""))
    found = _find(srv, q, "search of studies")[:limit]

    def text(d: Any, key: str) -> str | None:
        return str(d.get(key, "")) or None

    return [{"study_uid": text(d, "StudyInstanceUID"), "patient_id": text(d, "PatientID"),
             "date": text(d, "StudyDate"), "time": text(d, "StudyTime"),
             "accession": text(d, "AccessionNumber"), "description": text(d, "StudyDescription"),
             "modalities": _values(d.get("ModalitiesInStudy")),
             "n_series": int(d.get("NumberOfStudyRelatedSeries", 0) or 0),
             "n_instances": int(d.get("NumberOfStudyRelatedInstances", 0) or 0)} for d in found]


def find_instances(srv: Server, study_uid: str, series_uid: str) -> list[str]:
    """C-FIND at IMAGE level: the SOPInstanceUIDs of a series."""
    from pydicom.dataset import Dataset

    q = Dataset()
    q.QueryRetrieveLevel = "IMAGE"
    q.StudyInstanceUID = study_uid
    q.SeriesInstanceUID = series_uid
    q.SOPInstanceUID = ""
    return [str(d.SOPInstanceUID) for d in _find(srv, q, f"search of series {series_uid}")
            if "SOPInstanceUID" in d]


def retrieve_series(srv: Server, study_uid: str, series_uid: str, folder: Path,
                    progress: Callable[[int], None] | None = None,
                    received: Callable[[int, memoryview], None] | None = None) -> int:
    """C-GET a series into ``folder``; returns how many instances were written.

    ``progress(n)`` is called with the instances written so far at each of the server's pending
    answers; an exception it raises (a :class:`~recist_tool.io.pacs.config.RetrievalCancelled`)
    aborts the association and ends the retrieve. ``received(n, data)`` is called with the
    bytes of instance n (as written to its file) before they are written, in the association's
    thread.
    """
    pynetdicom = _pynetdicom()
    from pydicom.dataset import Dataset
    from pynetdicom.sop_class import (  # type: ignore[attr-defined]  # made at import time
        StudyRootQueryRetrieveInformationModelGet as GET,
    )

    ae = _ae(srv)
    ae.add_requested_context(GET)
    roles = []
    for uid in _RETRIEVE_CLASSES:
        ae.add_requested_context(uid, list(_TRANSFER_SYNTAXES))
        roles.append(pynetdicom.build_role(uid, scp_role=True))
    written: list[Path] = []

    def on_store(event: Any) -> int:
        n = len(written) + 1
        path = folder / f"{n:06d}.dcm"
        data = event.encoded_dataset(include_meta=True)
        if received is not None:
            received(n, memoryview(data))
        path.write_bytes(data)
        written.append(path)
        return 0x0000

    q = Dataset()
    q.QueryRetrieveLevel = "SERIES"
    q.StudyInstanceUID = study_uid
    q.SeriesInstanceUID = series_uid
    handlers = [(pynetdicom.evt.EVT_C_STORE, on_store)]
    failed = 0
    with _Association(srv, ae, ext_neg=roles, evt_handlers=handlers) as assoc:
        for status, _identifier in assoc.send_c_get(q, GET):
            code = _status(srv, status, f"retrieve of series {series_uid}")
            if code in (0xFF00,):  # pending: sub-operations under way
                if progress is not None:
                    try:
                        progress(len(written))
                    except BaseException:
                        assoc.abort()
                        raise
                continue
            failed = int(status.get("NumberOfFailedSuboperations", 0) or 0)
            if code not in (0x0000, 0xB000):
                raise PacsError(f"PACS {srv.name}: retrieve of series {series_uid}: C-GET status "
                                f"0x{code:04X} ({failed} failed)")
    if failed:
        raise PacsError(f"PACS {srv.name}: retrieve of series {series_uid}: {failed} instance(s) "
                        "not sent (a storage class or transfer syntax we did not offer?)")
    return len(written)


def store(srv: Server, files: Iterable[Path]) -> list[str]:
    """C-STORE DICOM files; returns the SOPInstanceUIDs stored.

    Raises
    ------
    PacsError
        When the server refuses any of them (the message says which status).
    """
    import pydicom

    datasets = [pydicom.dcmread(str(p)) for p in files]
    ae = _ae(srv)
    for cls in sorted({str(ds.SOPClassUID) for ds in datasets}):
        ae.add_requested_context(cls, list(_TRANSFER_SYNTAXES[:2]))
    done: list[str] = []
    with _Association(srv, ae) as assoc:
        for ds in datasets:
            code = _status(srv, assoc.send_c_store(ds), f"C-STORE of {ds.SOPInstanceUID}")
            if code not in (0x0000, 0xB000, 0xB007, 0xB006):
                raise PacsError(f"PACS {srv.name}: C-STORE of {ds.SOPInstanceUID} refused "
                                f"(status 0x{code:04X}); {len(done)} of {len(datasets)} stored")
            done.append(str(ds.SOPInstanceUID))
    return done
