"""Browsing a PACS: studies and their series by patient, date, modality and accession, and a
series retrieved into the cache with progress and a way to cancel.

What a series browser (the napari reading's, :mod:`napari_recist._pacs_browser`) calls; no
user interface here. A search runs a study-level query (QIDO-RS ``studies?...`` or C-FIND at
STUDY level) and then a series-level one per study found; every value shown comes from the
server's answers (a value it does not give is None: DIMSE servers such as Orthanc give no
slice thickness at series level). :func:`prefetch` retrieves one series into the local cache
(:mod:`recist_tool.io.pacs.cache`) as :func:`recist_tool.io.load_volume` would, so that the
load that follows reads it from there.

Public API
----------
StudyQuery(patient_id, date_from, date_to, modality, accession)
search_studies(server_name, query, limit, cancelled) -> StudySearch
    The matching studies, each with its series (of the query's modality).
prefetch(ref, progress, cancelled) -> int
    The series in the cache; ``progress(done, total)`` per instance retrieved.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from recist_tool.io.pacs.config import PacsError, RetrievalCancelled, SeriesRef, parse_ref, server

__all__ = ["DEFAULT_LIMIT", "SeriesHit", "StudyHit", "StudyQuery", "StudySearch", "parse_date",
           "prefetch", "search_studies"]

#: Studies a search returns at most (the server is asked for one more, to say there are more).
DEFAULT_LIMIT = 50
#: Characters a patient ID or accession number may hold in a search: DICOM text without the
#: value separator ``\`` or control characters; ``*`` and ``?`` are DICOM wildcards.
_TEXT = re.compile(r"^[^\\\x00-\x1f\x7f]*$")
_MODALITY = re.compile(r"^[A-Z0-9_]{1,16}$")


def parse_date(text: str | _dt.date | None, what: str = "date") -> _dt.date | None:
    """``YYYY-MM-DD`` (or a date, or empty) → date or None.

    Raises
    ------
    PacsError
        Text that is not an ISO date (the message names ``what``).
    """
    if text is None or isinstance(text, _dt.date):
        return text
    value = str(text).strip()
    if not value:
        return None
    try:
        return _dt.date.fromisoformat(value)
    except ValueError:
        raise PacsError(f"PACS search: {what} {value!r} is not a date (write YYYY-MM-DD)") from None


def _number(value: Any) -> float | None:
    """A DS or IS value as the server gave it (text, number or None) → float or None."""
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _dicom_date(value: Any) -> _dt.date | None:
    """A DICOM DA value (``YYYYMMDD``) → date; None when absent or malformed."""
    text = str(value or "").strip()
    try:
        return _dt.datetime.strptime(text, "%Y%m%d").date() if text else None
    except ValueError:
        return None


@dataclass(frozen=True)
class StudyQuery:
    """What to search for; empty fields match anything.

    Attributes
    ----------
    patient_id : str
        PatientID (the trial's subject code where the site files scans under it); ``*`` and
        ``?`` are wildcards.
    date_from, date_to : date or None
        Study date range, both ends included; either may be open.
    modality : str
        A modality the study must hold (``CT``); its series of other modalities are not listed.
        Empty: any.
    accession : str
        AccessionNumber (wildcards as for the patient ID).
    """

    patient_id: str = ""
    date_from: _dt.date | None = None
    date_to: _dt.date | None = None
    modality: str = "CT"
    accession: str = ""

    def filters(self) -> dict[str, str]:
        """The DICOM match keys of the query (keyword → value), checked.

        Raises
        ------
        PacsError
            A patient ID over 64 or an accession number over 16 characters or holding ``\\`` or
            control characters, a modality that is not a DICOM code string, a date range that
            ends before it starts.
        """
        out: dict[str, str] = {}
        for name, key, value, most in (("patient ID", "PatientID", self.patient_id, 64),
                                       ("accession number", "AccessionNumber", self.accession, 16)):
            value = value.strip()
            if len(value) > most or not _TEXT.match(value):
                raise PacsError(f"PACS search: the {name} must be at most {most} characters, "
                                "without \\ or control characters")
            if value:
                out[key] = value
        modality = self.modality.strip().upper()
        if modality:
            if not _MODALITY.match(modality):
                raise PacsError(f"PACS search: modality {self.modality!r} is not a DICOM modality "
                                "(CT, MR, PT ...)")
            out["ModalitiesInStudy"] = modality
        a, b = self.date_from, self.date_to
        if a is not None and b is not None and b < a:
            raise PacsError(f"PACS search: the date range ends ({b}) before it starts ({a})")
        if a is not None or b is not None:
            out["StudyDate"] = (f"{a:%Y%m%d}" if a else "") + "-" + (f"{b:%Y%m%d}" if b else "")
            if a is not None and a == b:
                out["StudyDate"] = f"{a:%Y%m%d}"
        return out

    def describe(self) -> str:
        """The query in words, for messages (``"patient SYN-001, CT, 2025-03-01 to …"``)."""
        parts = []
        if self.patient_id.strip():
            parts.append(f"patient {self.patient_id.strip()}")
        if self.accession.strip():
            parts.append(f"accession {self.accession.strip()}")
        if self.modality.strip():
            parts.append(self.modality.strip().upper())
        if self.date_from or self.date_to:
            parts.append(f"{self.date_from or '…'} to {self.date_to or '…'}")
        return ", ".join(parts) or "any study"


@dataclass(frozen=True)
class SeriesHit:
    """One series of a study, as the server describes it.

    Attributes
    ----------
    server, study_uid, series_uid : str
    number : int or None
        SeriesNumber.
    modality, description : str or None
    date : date or None
        SeriesDate.
    n_instances : int
    slice_thickness_mm : float or None
        Where the server gives it at series level (DICOMweb servers usually do, C-FIND often not).
    """

    server: str
    study_uid: str
    series_uid: str
    number: int | None
    modality: str | None
    description: str | None
    date: _dt.date | None
    n_instances: int
    slice_thickness_mm: float | None

    @property
    def ref(self) -> str:
        """``pacs://SERVER/STUDY_UID/SERIES_UID``: what the loader and the reading take."""
        return str(SeriesRef(self.server, self.study_uid, self.series_uid))


@dataclass(frozen=True)
class StudyHit:
    """One study found, with its series (of the query's modality, by series number).

    Attributes
    ----------
    server, study_uid : str
    patient_id, accession, description : str or None
    date : date or None
        StudyDate.
    modalities : tuple of str
        ModalitiesInStudy.
    n_instances : int
        NumberOfStudyRelatedInstances (all modalities).
    series : tuple of SeriesHit
    """

    server: str
    study_uid: str
    patient_id: str | None
    date: _dt.date | None
    accession: str | None
    description: str | None
    modalities: tuple[str, ...]
    n_instances: int
    series: tuple[SeriesHit, ...] = field(default=())


@dataclass(frozen=True)
class StudySearch:
    """The answer to a search.

    Attributes
    ----------
    server : str
    query : StudyQuery
    studies : tuple of StudyHit
        By study date (and time), oldest first.
    truncated : bool
        The server holds more matching studies than the limit: narrow the search.
    """

    server: str
    query: StudyQuery
    studies: tuple[StudyHit, ...]
    truncated: bool

    def message(self) -> str:
        """One line saying what was found (or that nothing was)."""
        if not self.studies:
            return f"PACS {self.server}: no study matches {self.query.describe()}"
        n_series = sum(len(s.series) for s in self.studies)
        more = f" (the first {len(self.studies)}; narrow the search)" if self.truncated else ""
        return (f"PACS {self.server}: {len(self.studies)} stud{'y' if len(self.studies) == 1 else 'ies'}"
                f", {n_series} series{more}")


def _proto(srv: Any) -> Any:
    from recist_tool.io.pacs import _proto as proto

    return proto(srv)


def _check(cancelled: Callable[[], bool] | None, what: str) -> None:
    if cancelled is not None and cancelled():
        raise RetrievalCancelled(f"{what}: cancelled")


def search_studies(server_name: str, query: StudyQuery, *, limit: int = DEFAULT_LIMIT,
                   cancelled: Callable[[], bool] | None = None) -> StudySearch:
    """The studies on a server that match ``query``, each with its series.

    Parameters
    ----------
    server_name : str
        A ``[pacs.NAME]`` server of the trial settings.
    query : StudyQuery
    limit : int
        Studies returned at most (:attr:`StudySearch.truncated` says when there were more).
    cancelled : callable, optional
        Asked before each query; when it returns True the search stops with
        :class:`RetrievalCancelled`.

    Raises
    ------
    PacsError
        A bad query, an unknown server, one that cannot be reached or refuses the login: one
        line, never with the credentials.
    """
    filters = query.filters()
    srv = server(server_name)
    mod = _proto(srv)
    what = f"PACS {srv.name}: search"
    _check(cancelled, what)
    found = mod.find_studies(srv, filters, limit + 1)
    truncated = len(found) > limit
    modality = query.modality.strip().upper()
    studies = []
    for st in sorted(found[:limit], key=lambda d: (d["date"] or "", d["time"] or "",
                                                   d["study_uid"] or "")):
        if not st["study_uid"]:
            continue
        _check(cancelled, what)
        series = []
        for s in mod.find_series(srv, st["study_uid"]):
            if not s["series_uid"] or (modality and (s["modality"] or "").upper() != modality):
                continue
            number = _number(s.get("number"))
            series.append(SeriesHit(srv.name, st["study_uid"], s["series_uid"],
                                    None if number is None else int(number),
                                    s["modality"], s["description"], _dicom_date(s.get("date")),
                                    int(s["n"] or 0), _number(s.get("slice_thickness"))))
        series.sort(key=lambda s: (s.number is None, s.number or 0, s.series_uid))
        studies.append(StudyHit(srv.name, st["study_uid"], st["patient_id"],
                                _dicom_date(st["date"]), st["accession"], st["description"],
                                tuple(st["modalities"]), st["n_instances"], tuple(series)))
    return StudySearch(srv.name, query, tuple(studies), truncated)


def prefetch(value: str | os.PathLike[str],
             progress: Callable[[int, int], None] | None = None,
             cancelled: Callable[[], bool] | None = None) -> int:
    """Retrieve a series into the local cache (unless it holds it already); returns how many
    instances the cache holds.

    The same search and cache as :func:`recist_tool.io.pacs.open_pacs_source`, so a
    :func:`recist_tool.io.load_volume` of the same reference afterwards reads the cached files.

    Parameters
    ----------
    value : str or path-like
        ``pacs://SERVER/STUDY_UID/SERIES_UID``.
    progress : callable, optional
        ``progress(done, total)``: instances written so far and the number the server's search
        gave (0 when it gave none); called as they arrive and once at the end.
    cancelled : callable, optional
        Asked before the retrieve and as instances arrive; True stops it with
        :class:`RetrievalCancelled` and what was written of the series is removed.

    Raises
    ------
    PacsError
        A reference without a series, an unknown server, one that cannot be used, a series it
        does not hold.
    """
    from recist_tool.io.pacs import _wanted, fetch_series

    ref = parse_ref(value)
    if ref.series_uid is None:
        raise PacsError(f"{ref}: name the series: pacs://{ref.server}/{ref.study_uid}/SERIES_UID")
    srv = server(ref.server)
    found = _wanted(srv, ref)[0]
    total = int(found["n"] or 0)
    what = f"{ref}: retrieve"
    _check(cancelled, what)

    def step(done: int) -> None:
        _check(cancelled, what)
        if progress is not None:
            progress(done, total)

    with fetch_series(srv, ref.study_uid, ref.series_uid, total or None, progress=step) as entry:
        n = entry.n_instances
    if progress is not None:
        progress(n, total or n)
    return n
