"""`TrialStore`: the repository / service API over the trial database.

Every public write runs in one transaction that also appends its audit events (see
:mod:`recist_tool.store.audit`); a failure rolls back both. Reads are scoped to one reader: a reader's
lesions, measurements and responses are never returned to another reader. Signed reads are locked;
an amendment opens a new version and leaves the signed one as it was.

Identifiers in the API are the human ones: subject code, visit name, lesion code (``T01``), reader
name. Results are plain frozen dataclasses, never live ORM objects: they and the store's errors are
in :mod:`recist_tool.store.records`; :meth:`TrialStore.login` gives a
:class:`~recist_tool.store.session.ReaderSession` (both re-exported here).
"""

from __future__ import annotations

import datetime as _dt
import getpass
import hashlib
import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeGuard, TypeVar, cast

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from recist_tool.codes import validate_code
from recist_tool.errors import InputError, StoreError
from recist_tool.recist import (
    OVERALL_RESPONSES,
    Category,
    Criteria,
    LesionAssessment,
    LesionState,
    Policies,
    Response,
    TimepointResponse,
    evaluate,
    policies_from_mapping,
)
from recist_tool.recist import (
    Lesion as RLesion,
)
from recist_tool.recist import (
    Timepoint as RTimepoint,
)
from recist_tool.store import db
from recist_tool.store.audit import (
    GENESIS,
    AuditCheck,
    AuditEntry,
    append_event,
    canonical_json,
    check_rows,
    install_listeners,
    is_chain_hash,
    verify_chain,
)
from recist_tool.store.models import (
    Adjudication,
    AuditEvent,
    Lesion,
    Measurement,
    Reader,
    Signature,
    Subject,
    SubjectIdentity,
    Timepoint,
    TimepointRead,
    TimepointResponseRow,
    Trial,
)
from recist_tool.store.records import (
    AuthenticationError,
    Discrepancy,
    LockedRecordError,
    MeasurementInfo,
    ReaderInfo,
    ReadInfo,
    ResponseInfo,
    SubjectInfo,
    TimepointInfo,
)
from recist_tool.store.security import hash_password, verify_password
from recist_tool.store.session import ReaderSession

__all__ = [
    "CRITERIA", "MEANINGS", "MIN_PASSWORD", "ROLES", "TrialStore",
    # re-exported: the records and errors its methods return and raise, and the reader's session
    "AuthenticationError", "Discrepancy", "LockedRecordError", "MeasurementInfo", "ReadInfo",
    "ReaderInfo", "ReaderSession", "ResponseInfo", "SubjectInfo", "TimepointInfo",
]

#: Meanings a signature may carry.
MEANINGS = ("read complete", "adjudicated", "reviewed")
#: The criteria a trial may be read under (the values of :class:`~recist_tool.recist.Criteria`).
CRITERIA = tuple(c.value for c in Criteria)
ROLES = ("reader", "adjudicator", "admin")
MIN_PASSWORD = 8


def _os_user() -> str:
    try:
        return "os:" + getpass.getuser()
    except (OSError, KeyError):  # pragma: no cover - no passwd entry
        return "os:unknown"


def _dec(value: Decimal | int | float | str | None, name: str) -> Decimal | None:
    if value is None:
        return None
    try:
        d = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except ArithmeticError as exc:
        raise InputError(f"{name}: not a number: {value!r}") from exc
    if not d.is_finite() or d < 0:
        raise InputError(f"{name}: must be a finite number ≥ 0, got {value!r}")
    return d


def _state(value: LesionState | str) -> LesionState:
    try:
        return value if isinstance(value, LesionState) else LesionState(str(value).upper())
    except ValueError as exc:
        raise InputError(f"lesion state {value!r} is not one of "
                         f"{', '.join(s.value for s in LesionState)}") from exc


def _category(value: Category | str) -> Category:
    try:
        return value if isinstance(value, Category) else Category(str(value).upper())
    except ValueError as exc:
        raise InputError(f"lesion category {value!r} is not one of "
                         f"{', '.join(c.value for c in Category)}") from exc


_Row = TypeVar("_Row")


def _reuse(row: _Row | None, exist_ok: bool, what: str, **given: Any) -> TypeGuard[_Row]:
    """Whether an existing ``row`` stands for the one being created (get-or-create).

    Called inside the write transaction, which writers take one at a time (SQLite
    ``BEGIN IMMEDIATE``, the PostgreSQL advisory lock), so no other writer can create the row
    between this look-up and the insert; the table's unique constraint refuses a duplicate from a
    writer that bypasses the store.

    Parameters
    ----------
    row : object or None
        The stored row with the new row's key, if any.
    exist_ok : bool
        Whether an existing row is acceptable (idempotent creation).
    what : str
        The row in words, for messages (``"visit 'W6' of S001"``).
    **given : Any
        Attributes the caller asked for; those not None must equal the stored ones.

    Returns
    -------
    bool
        False when there is no such row (create it); True when ``row`` is to be used as it is.

    Raises
    ------
    InputError
        The row exists and ``exist_ok`` is off, or it exists with other attributes.
    """
    if row is None:
        return False
    if not exist_ok:
        raise InputError(f"{what} exists already")
    for key, want in given.items():
        have = getattr(row, key)
        if want is not None and have != want:
            raise InputError(f"{what} exists already with {key} {have!r}, not {want!r}")
    return True


class TrialStore:
    """The trial database: subjects, visits, reads, lesions, measurements, responses, audit trail.

    Parameters
    ----------
    url : str or Path
        A SQLite file path (default ``recist.db`` in the working folder; created if absent) or a
        SQLAlchemy URL (``sqlite:///...``, ``postgresql://user:pw@host:port/db``).
    timeout_s : float
        How long a write waits for another writer's lock before failing with a clear error.
    migrate : bool
        Upgrade an older schema on open (default). A newer schema is always refused.
    read_only : bool
        Open without write access (audits, exports); writes then fail with a clear error.
    sqlite_pragmas : dict, optional
        Extra integer ``PRAGMA`` settings for each SQLite connection (e.g. ``max_page_count``).

    Raises
    ------
    StoreError
        Database cannot be opened, is from a newer recist-tool, is locked, read-only, full, ...
    """

    def __init__(self, url: str | Path = "recist.db", *, timeout_s: float = 10.0, migrate: bool = True,
                 read_only: bool = False, sqlite_pragmas: dict[str, int] | None = None) -> None:
        self.url = db.normalise_url(url)
        self.where = db.describe(self.url)
        self.read_only = read_only
        self.engine: Engine = db.make_engine(self.url, timeout_s=timeout_s, read_only=read_only,
                                             sqlite_pragmas=sqlite_pragmas)
        try:
            db.ping(self.engine, self.where)
            if migrate:
                self.revision = db.migrate(self.engine, self.where)
            else:
                self.revision = db.schema_revision(self.engine) or ""
        except BaseException:
            self.engine.dispose()
            raise
        self._factory = sessionmaker(self.engine, expire_on_commit=False, autoflush=True)
        install_listeners(self._factory)
        self._units = threading.local()  # the session of this thread's open :meth:`atomic` block

    # --- plumbing ------------------------------------------------------------------------------

    def close(self) -> None:
        """Release all connections."""
        self.engine.dispose()

    def __enter__(self) -> TrialStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """Make every write of this thread inside the block one transaction: all are kept, or
        none.

        An exception leaving the block rolls back every write made in it; one raised by a single
        call and caught inside undoes that call's writes only (each call is a savepoint). The
        block holds the writer lock (SQLite ``BEGIN IMMEDIATE``, PostgreSQL's advisory lock)
        from its first statement to its end, and reads inside it see its writes. Blocks nest:
        an inner block is part of the outer one.

        Examples
        --------
        >>> store = TrialStore(":memory:")  # doctest: +SKIP
        >>> with store.atomic():  # doctest: +SKIP
        ...     store.add_subject("T1", "S001", by="alice")
        ...     store.add_timepoint("S001", "BL", date(2025, 1, 6), by="alice")
        """
        if getattr(self._units, "session", None) is not None:
            yield
            return
        with db.translate_errors(self.where), db.writing(), self._factory() as s, s.begin():
            self._units.session = s
            try:
                yield
            finally:
                self._units.session = None

    @contextmanager
    def _write(self, actor: str, reason: str | None = None) -> Iterator[Session]:
        """One write transaction (serialised with other writers) with its audit context; inside
        :meth:`atomic`, a savepoint of its transaction."""
        unit: Session | None = getattr(self._units, "session", None)
        if unit is not None:
            before = (unit.info.get("actor"), unit.info.get("reason"))
            with db.translate_errors(self.where):
                try:
                    unit.info["actor"], unit.info["reason"] = actor, reason
                    with unit.begin_nested():
                        yield unit
                        unit.flush()  # the audit events carry this call's actor and reason
                finally:
                    unit.info["actor"], unit.info["reason"] = before
            return
        with db.translate_errors(self.where), db.writing(), self._factory() as s:
            s.info["actor"] = actor
            s.info["reason"] = reason
            with s.begin():
                yield s

    @contextmanager
    def _read(self, snapshot: bool = False) -> Iterator[Session]:
        """A read transaction; ``snapshot``: all its queries see one state of the database
        (SQLite's read transactions always do; PostgreSQL then uses REPEATABLE READ). Inside
        :meth:`atomic`, its transaction (which sees its own writes)."""
        unit: Session | None = getattr(self._units, "session", None)
        if unit is not None:
            with db.translate_errors(self.where):
                yield unit
            return
        with db.translate_errors(self.where), self._factory() as s, s.begin():
            if snapshot and self.engine.dialect.name == "postgresql":
                s.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            yield s

    # --- lookups -------------------------------------------------------------------------------

    @staticmethod
    def _one(s: Session, stmt: Any, what: str) -> Any:
        obj = s.scalars(stmt).first()
        if obj is None:
            raise InputError(f"{what} not found")
        return obj

    def _reader(self, s: Session, name: str) -> Reader:
        return self._one(s, select(Reader).where(Reader.name == name), f"reader {name!r}")

    def _active_reader(self, s: Session, name: str, roles: Sequence[str] = ROLES) -> Reader:
        r = self._reader(s, name)
        if not r.active:
            raise AuthenticationError(f"reader {name!r} is deactivated")
        if r.role not in roles:
            raise AuthenticationError(f"reader {name!r} has role {r.role!r}; this needs "
                                      f"{' or '.join(roles)}")
        return r

    def _trial(self, s: Session, name: str) -> Trial:
        return self._one(s, select(Trial).where(Trial.name == name), f"trial {name!r}")

    def _subject(self, s: Session, code: str) -> Subject:
        return self._one(s, select(Subject).where(Subject.code == code), f"subject {code!r}")

    def _timepoint(self, s: Session, subject: Subject, visit: str) -> Timepoint:
        return self._one(s, select(Timepoint).where(Timepoint.subject_id == subject.id,
                                                    Timepoint.visit == visit),
                         f"visit {visit!r} of subject {subject.code}")

    def _lesion(self, s: Session, subject: Subject, reader: Reader, code: str) -> Lesion:
        return self._one(s, select(Lesion).where(Lesion.subject_id == subject.id,
                                                 Lesion.reader_id == reader.id, Lesion.code == code),
                         f"lesion {code} of subject {subject.code} read by {reader.name}")

    @staticmethod
    def _reused_lesion(s: Session, subject: Subject, reader: Reader, tp: Timepoint, code: str,
                       exist_ok: bool, *, category: str, organ: str, nodal: bool) -> Lesion | None:
        """The reader's lesion ``code`` when it exists and may stand for the one being added
        (``exist_ok``, same category, node flag, organ when given and first visit); None when it is
        to be created. Raises InputError otherwise (see :func:`_reuse`)."""
        old = s.scalars(select(Lesion).where(Lesion.subject_id == subject.id,
                                             Lesion.reader_id == reader.id, Lesion.code == code)
                        ).first()
        what = f"lesion {code} of {subject.code} in {reader.name}'s read"
        if not _reuse(old, exist_ok, what, category=category, nodal=nodal, organ=organ or None):
            return None
        if old.created_timepoint_id != tp.id:
            raise InputError(f"{what} exists already, first seen at another visit than {tp.visit}")
        return old

    @staticmethod
    def _put_measurement(s: Session, read: TimepointRead, les: Lesion, visit: str,
                         values: dict[str, Any], reason: str | None, exist_ok: bool = False) -> None:
        """Insert ``les``'s assessment in ``read``, or change the stored one, which needs a
        ``reason`` (with ``exist_ok``, storing the same values again needs none and writes
        nothing)."""
        m = s.scalars(select(Measurement).where(Measurement.read_id == read.id,
                                                Measurement.lesion_id == les.id)).first()
        if m is None:
            s.add(Measurement(subject_id=read.subject_id, read_id=read.id, lesion_id=les.id,
                              **values))
            return
        if not reason:
            if exist_ok and all(getattr(m, k) == v for k, v in values.items()):
                return
            raise InputError(f"{les.code} at {visit} is recorded already: give a reason "
                             "to change it")
        for k, v in values.items():
            setattr(m, k, v)

    @staticmethod
    def _current_read(s: Session, tp: Timepoint, reader: Reader) -> TimepointRead | None:
        return s.scalars(select(TimepointRead).where(
            TimepointRead.timepoint_id == tp.id, TimepointRead.reader_id == reader.id,
        ).order_by(TimepointRead.version.desc()).limit(1)).first()

    def _open_read(self, s: Session, subject: Subject, tp: Timepoint, reader: Reader) -> TimepointRead:
        """The reader's current read of ``tp``; created (version 1) if none; refused if signed."""
        read = self._current_read(s, tp, reader)
        if read is None:
            read = TimepointRead(subject_id=subject.id, timepoint_id=tp.id, reader_id=reader.id,
                                 version=1, status="open")
            s.add(read)
            s.flush()
        elif read.status != "open":
            raise LockedRecordError(
                f"{subject.code} {tp.visit} read by {reader.name} (version {read.version}) is signed "
                "and locked; amend it with a reason to change it")
        return read

    # --- accounts ------------------------------------------------------------------------------

    def add_reader(self, name: str, password: str, *, full_name: str = "", role: str = "reader",
                   by: str | None = None, exist_ok: bool = False) -> ReaderInfo:
        """Create a named reader account (password stored as a salted scrypt hash).

        With ``exist_ok`` an existing account of that name and role is returned as it is: its
        password is neither checked nor changed (a batch creates its account this way).
        """
        name = name.strip()
        if not name or len(name) > 64 or any(c.isspace() for c in name):
            raise InputError(f"reader name {name!r}: 1-64 characters without spaces")
        validate_code(name, "reader")
        if role not in ROLES:
            raise InputError(f"role {role!r} is not one of {', '.join(ROLES)}")
        if len(password) < MIN_PASSWORD:
            raise InputError(f"password of {name}: at least {MIN_PASSWORD} characters")
        digest = hash_password(password)  # scrypt before the write lock, not while holding it
        with self._write(by or _os_user(), "account created") as s:
            old = s.scalars(select(Reader).where(Reader.name == name)).first()
            if _reuse(old, exist_ok, f"reader {name!r}", role=role):
                return ReaderInfo(old.name, old.full_name, old.role, old.active)
            s.add(Reader(name=name, full_name=full_name or name, role=role,
                         password_hash=digest, active=True))
        return ReaderInfo(name, full_name or name, role, True)

    def set_reader_active(self, name: str, active: bool, *, by: str | None = None,
                          reason: str | None = None) -> None:
        """Deactivate (or reactivate) an account; accounts are never deleted (their names stay
        attached to signatures and audit events)."""
        with self._write(by or _os_user(), reason or ("reactivated" if active else "deactivated")
                         ) as s:
            self._reader(s, name).active = active

    def change_password(self, name: str, old_password: str, new_password: str) -> None:
        """Change a reader's password (the old one is checked; the change is audited, redacted)."""
        if len(new_password) < MIN_PASSWORD:
            raise InputError(f"password of {name}: at least {MIN_PASSWORD} characters")
        self.authenticate(name, old_password)
        with self._write(name, "password changed") as s:
            self._reader(s, name).password_hash = hash_password(new_password)

    def login(self, name: str, password: str) -> ReaderSession:
        """Check the password and return a :class:`ReaderSession` bound to this reader."""
        info = self.authenticate(name, password)
        return ReaderSession(self, info)

    def readers(self) -> list[ReaderInfo]:
        """All accounts."""
        with self._read() as s:
            return [ReaderInfo(r.name, r.full_name, r.role, r.active)
                    for r in s.scalars(select(Reader).order_by(Reader.name))]

    def authenticate(self, name: str, password: str) -> ReaderInfo:
        """Check a password; a failure is itself audited (``AUTH_FAIL``) and raises."""
        with self._read() as s:
            r = s.scalars(select(Reader).where(Reader.name == name)).first()
            ok = r is not None and r.active and verify_password(password, r.password_hash)
            info = ReaderInfo(r.name, r.full_name, r.role, r.active) if r else None
        if not ok:
            try:
                with self._write(name, "authentication failed") as s:
                    append_event(s.connection(), actor=name, action="AUTH_FAIL", entity="reader",
                                 entity_id=None, subject=None, old=None, new=None,
                                 reason="wrong password, unknown or inactive account")
            except StoreError:
                pass  # read-only or locked: the refusal itself matters more than its record
            raise AuthenticationError(f"reader {name!r}: wrong password or no such active account")
        assert info is not None
        return info

    # --- trial, subjects, visits ----------------------------------------------------------------

    def add_trial(self, name: str, *, criteria: Criteria | str = Criteria.RECIST_1_1,
                  policies: Policies | dict[str, Any] | None = None,
                  visit_schedule: Sequence[dict[str, Any]] = (), by: str | None = None,
                  exist_ok: bool = False) -> None:
        """Create a trial with its response criteria, RECIST policies and visit schedule.

        With ``exist_ok`` a trial of that name with the same criteria (and policies, when given)
        is kept as it is.
        """
        if criteria not in CRITERIA:
            raise InputError(f"criteria {criteria!r} is not one of {', '.join(CRITERIA)}")
        criteria = Criteria(criteria).value  # stored as its plain text
        if isinstance(policies, Policies):
            pol = {f: getattr(policies, f) for f in policies.__dataclass_fields__}
        else:
            pol = dict(policies or {})
            policies_from_mapping(pol)  # validate
        with self._write(by or _os_user()) as s:
            old = s.scalars(select(Trial).where(Trial.name == name)).first()
            if _reuse(old, exist_ok, f"trial {name!r}", criteria=criteria,
                      policies=None if policies is None else json.loads(canonical_json(pol))):
                return
            s.add(Trial(name=name, criteria=criteria, policies=pol,
                        visit_schedule=[dict(v) for v in visit_schedule]))

    def trials(self) -> dict[str, str]:
        """Trial name → criteria (``RECIST 1.1`` / ``iRECIST``)."""
        with self._read() as s:
            return {t.name: t.criteria for t in s.scalars(select(Trial))}

    def subject_info(self, code: str) -> SubjectInfo | None:
        """The subject's trial, criteria, policies and reference date; ``None`` if unknown."""
        with self._read() as s:
            row = s.execute(select(Subject.code, Trial.name, Trial.criteria, Trial.policies,
                                   Subject.reference_date)
                            .join(Trial, Trial.id == Subject.trial_id)
                            .where(Subject.code == code)).first()
        if row is None:
            return None
        return SubjectInfo(row[0], row[1], row[2], dict(row[3] or {}), row[4])

    def add_subject(self, trial: str, code: str, *, patient_id: str | None = None,
                    reference_date: _dt.date | None = None, by: str | None = None,
                    exist_ok: bool = False) -> None:
        """Enrol a subject under a pseudonymous code; ``patient_id`` goes to a separate table.

        With ``exist_ok`` a subject of that code in the same trial (with the same reference date
        and PatientID, when given) is kept as it is.
        """
        validate_code(code, "subject")
        with self._write(by or _os_user()) as s:
            t = self._trial(s, trial)
            old = s.scalars(select(Subject).where(Subject.code == code)).first()
            if _reuse(old, exist_ok, f"subject {code!r}", reference_date=reference_date):
                if old.trial_id != t.id:
                    raise InputError(f"subject {code!r} exists already in another trial")
                mapped = s.scalars(select(SubjectIdentity.patient_id).where(
                    SubjectIdentity.subject_id == old.id)).first()
                if patient_id is not None and mapped != patient_id:
                    raise InputError(f"subject {code!r} exists already with another DICOM PatientID")
                return
            subj = Subject(trial_id=t.id, code=code, reference_date=reference_date)
            s.add(subj)
            s.flush()
            if patient_id is not None:
                if s.scalars(select(SubjectIdentity).where(
                        SubjectIdentity.patient_id == patient_id)).first():
                    raise InputError("this DICOM PatientID is already mapped to another subject")
                s.add(SubjectIdentity(subject_id=subj.id, patient_id=patient_id))

    def subject_for_patient(self, patient_id: str) -> str | None:
        """The subject code mapped to a DICOM PatientID (None when unmapped)."""
        with self._read() as s:
            return s.scalars(select(Subject.code).join(
                SubjectIdentity, SubjectIdentity.subject_id == Subject.id).where(
                SubjectIdentity.patient_id == patient_id)).first()

    def subjects(self, trial: str | None = None) -> list[str]:
        """Subject codes (of one trial or all)."""
        with self._read() as s:
            stmt = select(Subject.code).order_by(Subject.code)
            if trial is not None:
                stmt = stmt.where(Subject.trial_id == self._trial(s, trial).id)
            return list(s.scalars(stmt))

    def add_timepoint(self, subject: str, visit: str, date: _dt.date, *, study_uid: str | None = None,
                      series_uid: str | None = None, visit_num: Decimal | int | None = None,
                      series_path: str | None = None, by: str | None = None,
                      exist_ok: bool = False) -> None:
        """Add a visit with its scan date, imaging UIDs and where its series lies.

        With ``exist_ok`` a visit of that name with the same date (and UIDs and visit number, when
        given) is kept as it is; :meth:`set_timepoint_images` changes where its series lies.
        """
        validate_code(visit, "visit")
        with self._write(by or _os_user()) as s:
            subj = self._subject(s, subject)
            old = s.scalars(select(Timepoint).where(Timepoint.subject_id == subj.id,
                                                    Timepoint.visit == visit)).first()
            if _reuse(old, exist_ok, f"visit {visit!r} of {subject}", date=date,
                      study_uid=study_uid, series_uid=series_uid,
                      visit_num=None if visit_num is None else Decimal(visit_num)):
                return
            s.add(Timepoint(subject_id=subj.id, visit=visit, date=date, study_uid=study_uid,
                            series_uid=series_uid, series_path=series_path,
                            visit_num=None if visit_num is None else Decimal(visit_num)))

    def set_timepoint_images(self, subject: str, visit: str, *, series_path: str,
                             series_uid: str | None = None, study_uid: str | None = None,
                             by: str | None = None, reason: str | None = None) -> None:
        """Record where a visit's series lies (and its UIDs when given); audited old → new.

        Changing a location that is already recorded needs a ``reason``.
        """
        with self._write(by or _os_user(), reason) as s:
            tp = self._timepoint(s, self._subject(s, subject), visit)
            if tp.series_path not in (None, series_path) and not reason:
                raise InputError(f"{subject} {visit}: the series location is recorded already "
                                 f"({tp.series_path}); give a reason to change it")
            tp.series_path = series_path
            if series_uid is not None:
                tp.series_uid = series_uid
            if study_uid is not None:
                tp.study_uid = study_uid

    def timepoints(self, subject: str) -> list[tuple[str, _dt.date]]:
        """(visit, date) of a subject, by date."""
        with self._read() as s:
            subj = self._subject(s, subject)
            return [(t.visit, t.date) for t in s.scalars(
                select(Timepoint).where(Timepoint.subject_id == subj.id)
                .order_by(Timepoint.date, Timepoint.id))]

    @staticmethod
    def _tp_info(t: Timepoint) -> TimepointInfo:
        return TimepointInfo(t.visit, t.date, t.visit_num, t.study_uid, t.series_uid, t.series_path)

    def timepoint_infos(self, subject: str) -> list[TimepointInfo]:
        """A subject's visits with their imaging details, by date."""
        with self._read() as s:
            subj = self._subject(s, subject)
            return [self._tp_info(t) for t in s.scalars(
                select(Timepoint).where(Timepoint.subject_id == subj.id)
                .order_by(Timepoint.date, Timepoint.id))]

    def timepoint_info(self, subject: str, visit: str) -> TimepointInfo:
        """One visit's imaging details (raises InputError when the visit is unknown)."""
        with self._read() as s:
            return self._tp_info(self._timepoint(s, self._subject(s, subject), visit))

    # --- a reader's read ------------------------------------------------------------------------

    def add_lesion(self, subject: str, visit: str, lesion_id: str, category: Category | str, *,
                   reader: str, organ: str = "", nodal: bool = False,
                   reason: str | None = None, exist_ok: bool = False) -> None:
        """Identify a lesion (first seen at ``visit``) in ``reader``'s read.

        With ``exist_ok`` the reader's lesion of that code, first seen at ``visit``, with the same
        category and node flag (and organ, when given) is kept as it is.
        """
        cat = _category(category)
        code = validate_code(lesion_id.strip().upper(), "lesion")
        with self._write(reader, reason) as s:
            r = self._active_reader(s, reader, ("reader", "admin"))
            subj = self._subject(s, subject)
            tp = self._timepoint(s, subj, visit)
            self._open_read(s, subj, tp, r)
            if self._reused_lesion(s, subj, r, tp, code, exist_ok, category=cat.value,
                                   organ=organ, nodal=nodal):
                return
            s.add(Lesion(subject_id=subj.id, reader_id=r.id, code=code, category=cat.value,
                         organ=organ, nodal=nodal, created_timepoint_id=tp.id))

    def record_measurement(
        self, subject: str, visit: str, lesion_id: str, *, reader: str,
        long_axis_mm: Decimal | float | str | None = None,
        short_axis_mm: Decimal | float | str | None = None,
        state: LesionState | str = LesionState.MEASURED,
        fragments_mm: Sequence[Decimal | float | str] = (),
        endpoints_lps: dict[str, Any] | None = None, volume_ml: Decimal | float | None = None,
        mask_path: str | None = None, mask_sha256: str | None = None,
        segmenter: str | None = None, segmenter_version: str | None = None,
        method: str = "manual", reason: str | None = None,
    ) -> None:
        """Record (or change, with a ``reason``) one lesion's measurement at one visit.

        A measured lesion needs the axis RECIST uses (short axis for a node, long axis otherwise);
        a state such as ``TOO SMALL TO MEASURE`` or ``ABSENT`` needs none. Changing an existing
        measurement requires ``reason`` and is audited old → new.
        """
        st = _state(state)
        la, sa = _dec(long_axis_mm, "long axis"), _dec(short_axis_mm, "short axis")
        frags = [str(_dec(f, "fragment")) for f in fragments_mm]
        if method not in ("manual", "automatic"):
            raise InputError(f"method {method!r} must be manual or automatic")
        if mask_sha256 is not None and (len(mask_sha256) != 64
                                        or any(c not in "0123456789abcdef" for c in mask_sha256)):
            raise InputError("mask_sha256 must be 64 lowercase hex digits")
        with self._write(reader, reason) as s:
            r = self._active_reader(s, reader, ("reader", "admin"))
            subj = self._subject(s, subject)
            tp = self._timepoint(s, subj, visit)
            les = self._lesion(s, subj, r, lesion_id.upper())
            if st is LesionState.MEASURED and (sa if les.nodal else la) is None:
                need = "node needs its short" if les.nodal else "lesion needs its long"
                raise InputError(f"{les.code}: a measured {need} axis")
            read = self._open_read(s, subj, tp, r)
            values = dict(state=st.value, long_axis_mm=la, short_axis_mm=sa, fragments_mm=frags,
                          endpoints_lps=endpoints_lps, volume_ml=_dec(volume_ml, "volume"),
                          mask_path=mask_path, mask_sha256=mask_sha256, segmenter=segmenter,
                          segmenter_version=segmenter_version, method=method)
            self._put_measurement(s, read, les, visit, values, reason)

    def assess_non_target(self, subject: str, visit: str, lesion_id: str, state: LesionState | str, *,
                          reader: str, reason: str | None = None) -> None:
        """Non-target assessment: ``PRESENT``, ``ABSENT``, ``UNEQUIVOCAL PROGRESSION``, ..."""
        st = _state(state)
        self.record_measurement(subject, visit, lesion_id, reader=reader, state=st, reason=reason)

    def record_new_lesion(self, subject: str, visit: str, lesion_id: str, *, reader: str,
                          organ: str = "", equivocal: bool = False, nodal: bool = False,
                          category: Category | str = Category.NEW,
                          long_axis_mm: Decimal | float | None = None,
                          short_axis_mm: Decimal | float | None = None,
                          reason: str | None = None, exist_ok: bool = False,
                          **measurement: Any) -> None:
        """A new lesion at ``visit`` (equivocal or unequivocal), optionally measured.

        Records the lesion (category ``NEW``, or iRECIST ``NEW TARGET`` / ``NEW NON-TARGET``) and
        its assessment in one transaction. With ``exist_ok`` the lesion may exist already (as with
        :meth:`add_lesion`); its assessment is then recorded as :meth:`record_measurement` would
        (the same values again write nothing; other values need a ``reason``).
        """
        cat = _category(category)
        if not cat.is_new:
            raise InputError(f"a new lesion cannot have category {cat.value}")
        if equivocal:
            state = LesionState.EQUIVOCAL
        elif (short_axis_mm if nodal else long_axis_mm) is not None:
            state = LesionState.MEASURED
        else:
            state = LesionState.PRESENT
        with self._write(reader, reason) as s:  # the lesion and its assessment: one transaction
            r = self._active_reader(s, reader, ("reader", "admin"))
            subj = self._subject(s, subject)
            tp = self._timepoint(s, subj, visit)
            read = self._open_read(s, subj, tp, r)
            code = validate_code(lesion_id.strip().upper(), "lesion")
            les = self._reused_lesion(s, subj, r, tp, code, exist_ok, category=cat.value,
                                      organ=organ, nodal=nodal)
            if les is None:
                les = Lesion(subject_id=subj.id, reader_id=r.id, code=code, category=cat.value,
                             organ=organ, nodal=nodal, created_timepoint_id=tp.id)
                s.add(les)
                s.flush()
            self._put_measurement(s, read, les, visit, dict(
                state=state.value, long_axis_mm=_dec(long_axis_mm, "long axis"),
                short_axis_mm=_dec(short_axis_mm, "short axis"), fragments_mm=[], **measurement),
                reason, exist_ok)

    def delete_measurement(self, subject: str, visit: str, lesion_id: str, *, reader: str,
                           reason: str) -> None:
        """Remove a lesion's assessment from an open read (audited with the reason)."""
        if not reason:
            raise InputError("deleting a measurement needs a reason")
        with self._write(reader, reason) as s:
            r = self._active_reader(s, reader, ("reader", "admin"))
            subj = self._subject(s, subject)
            tp = self._timepoint(s, subj, visit)
            les = self._lesion(s, subj, r, lesion_id.upper())
            read = self._open_read(s, subj, tp, r)
            m = self._one(s, select(Measurement).where(Measurement.read_id == read.id,
                                                       Measurement.lesion_id == les.id),
                          f"measurement of {les.code} at {visit}")
            s.delete(m)

    @staticmethod
    def _unsigned_measurements(s: Session, les: Lesion, doing: str) -> list[Measurement]:
        """Every assessment of ``les`` (all visits, all versions); refused when one is in a read
        that is signed (the signed record names the lesion as it was)."""
        ms = list(s.scalars(select(Measurement).where(Measurement.lesion_id == les.id)))
        for m in ms:
            read = s.get(TimepointRead, m.read_id)
            if read is not None and read.status != "open":
                tp = s.get(Timepoint, read.timepoint_id)
                raise LockedRecordError(
                    f"cannot {doing} {les.code}: it is in the signed read of "
                    f"{tp.visit if tp is not None else '?'} (version {read.version}); amend that "
                    "read first")
        return ms

    def delete_lesion(self, subject: str, lesion_id: str, *, reader: str, reason: str) -> None:
        """Remove one of ``reader``'s lesions and its assessments at every visit (a lesion recorded
        by mistake, or twice), before any read holding it is signed; audited with the reason.

        Raises
        ------
        InputError
            No reason, or no such lesion.
        LockedRecordError
            A signed read holds the lesion.
        """
        if not reason:
            raise InputError("deleting a lesion needs a reason")
        with self._write(reader, reason) as s:
            r = self._active_reader(s, reader, ("reader", "admin"))
            subj = self._subject(s, subject)
            les = self._lesion(s, subj, r, lesion_id.strip().upper())
            for m in self._unsigned_measurements(s, les, "delete"):
                s.delete(m)
            s.flush()
            s.delete(les)

    def update_lesion(self, subject: str, lesion_id: str, *, reader: str, reason: str,
                      code: str | None = None, category: Category | str | None = None,
                      organ: str | None = None) -> None:
        """Rename or reclassify one of ``reader``'s lesions before any read holding it is signed
        (audited old → new with the reason).

        Parameters
        ----------
        code : str, optional
            The new lesion code (``T03``); not one of the reader's other lesions.
        category : Category or str, optional
            The new category; a lesion first seen at baseline stays a baseline category (target,
            non-target) and a new lesion a new-lesion category.
        organ : str, optional
            The new organ / site.

        Raises
        ------
        InputError
            No reason, no change, a code taken, or a category of the other kind.
        LockedRecordError
            A signed read holds the lesion.
        """
        if not reason:
            raise InputError("changing a lesion needs a reason")
        new_code = None if code is None else validate_code(code.strip().upper(), "lesion")
        cat = None if category is None else _category(category)
        with self._write(reader, reason) as s:
            r = self._active_reader(s, reader, ("reader", "admin"))
            subj = self._subject(s, subject)
            les = self._lesion(s, subj, r, lesion_id.strip().upper())
            self._unsigned_measurements(s, les, "change")
            changes = {k: v for k, v in (("code", new_code), ("organ", organ),
                                         ("category", cat and cat.value))
                       if v is not None and v != getattr(les, k)}
            if not changes:
                raise InputError(f"{les.code}: nothing to change")
            if "code" in changes and s.scalars(select(Lesion).where(
                    Lesion.subject_id == subj.id, Lesion.reader_id == r.id,
                    Lesion.code == new_code)).first() is not None:
                raise InputError(f"{new_code} is one of {r.name}'s lesions of {subj.code} already")
            if cat is not None and cat.is_new != Category(les.category).is_new:
                kind = "a new lesion" if Category(les.category).is_new else "a baseline lesion"
                raise InputError(f"{les.code} is {kind}: it cannot become {cat.value}")
            for k, v in changes.items():
                setattr(les, k, v)

    # --- queries (one reader's view) ---------------------------------------------------------

    def _read_info(self, s: Session, read: TimepointRead, subj: Subject, tp: Timepoint,
                   reader: Reader) -> ReadInfo:
        rows = s.execute(select(Measurement, Lesion).join(Lesion, Measurement.lesion_id == Lesion.id)
                         .where(Measurement.read_id == read.id).order_by(Lesion.code)).all()
        ms = tuple(MeasurementInfo(
            les.code, les.category, les.organ, les.nodal, m.state, m.long_axis_mm, m.short_axis_mm,
            tuple(Decimal(f) for f in m.fragments_mm or ()), m.endpoints_lps, m.volume_ml,
            m.mask_path, m.mask_sha256, m.segmenter, m.segmenter_version, m.method)
            for m, les in rows)
        resp = s.scalars(select(TimepointResponseRow).where(
            TimepointResponseRow.read_id == read.id)).first()
        rinfo = None
        if resp is not None:
            rinfo = ResponseInfo(tp.visit, tp.date, read.version, resp.target, resp.non_target,
                                 resp.new_lesions, resp.overall, resp.sod_mm, resp.baseline_mm,
                                 resp.nadir_mm, tuple(resp.reasons or ()), resp.confirmed_overall,
                                 resp.confirm_reason)
        sigs = tuple({"printed_name": g.printed_name, "meaning": g.meaning,
                      "signed_at": g.signed_at.isoformat(), "record_sha256": g.record_sha256}
                     for g in s.scalars(select(Signature).where(
                         Signature.entity == "timepoint_read", Signature.entity_id == read.id)
                         .order_by(Signature.id)))
        return ReadInfo(subj.code, tp.visit, tp.date, reader.name, read.version, read.status,
                        read.amend_reason, ms, rinfo, sigs)

    def get_read(self, subject: str, visit: str, *, reader: str, version: int | None = None) -> ReadInfo:
        """``reader``'s read of a visit (current version, or an older one by number).

        Only the reader's own read is ever returned.
        """
        with self._read() as s:
            r = self._reader(s, reader)
            subj = self._subject(s, subject)
            tp = self._timepoint(s, subj, visit)
            stmt = select(TimepointRead).where(TimepointRead.timepoint_id == tp.id,
                                               TimepointRead.reader_id == r.id)
            if version is None:
                stmt = stmt.order_by(TimepointRead.version.desc()).limit(1)
            else:
                stmt = stmt.where(TimepointRead.version == version)
            read = self._one(s, stmt, f"{reader}'s read of {subject} {visit}"
                             + (f" version {version}" if version else ""))
            return self._read_info(s, read, subj, tp, r)

    def read_versions(self, subject: str, visit: str, *, reader: str) -> list[ReadInfo]:
        """All versions of ``reader``'s read of a visit, oldest first."""
        with self._read() as s:
            r = self._reader(s, reader)
            subj = self._subject(s, subject)
            tp = self._timepoint(s, subj, visit)
            reads = s.scalars(select(TimepointRead).where(
                TimepointRead.timepoint_id == tp.id, TimepointRead.reader_id == r.id)
                .order_by(TimepointRead.version))
            return [self._read_info(s, rd, subj, tp, r) for rd in reads]

    def readers_of(self, subject: str) -> list[str]:
        """Names of the readers who have a read of any visit of ``subject`` (sorted)."""
        with self._read() as s:
            subj = self._subject(s, subject)
            return sorted(set(s.scalars(select(Reader.name).join(
                TimepointRead, TimepointRead.reader_id == Reader.id)
                .where(TimepointRead.subject_id == subj.id))))

    def lesions(self, subject: str, *, reader: str) -> list[RLesion]:
        """``reader``'s lesions of a subject as engine :class:`~recist_tool.recist.Lesion`."""
        with self._read() as s:
            r = self._reader(s, reader)
            subj = self._subject(s, subject)
            return [RLesion(les.code, Category(les.category), les.organ, les.nodal)
                    for les in s.scalars(select(Lesion).where(
                        Lesion.subject_id == subj.id, Lesion.reader_id == r.id)
                        .order_by(Lesion.id))]

    # --- responses ------------------------------------------------------------------------------

    def _engine_input(self, s: Session, subj: Subject, r: Reader
                      ) -> tuple[list[RLesion], list[tuple[Timepoint, TimepointRead, RTimepoint]]]:
        lesions = list(s.scalars(select(Lesion).where(Lesion.subject_id == subj.id,
                                                      Lesion.reader_id == r.id).order_by(Lesion.id)))
        by_id = {les.id: les for les in lesions}
        out = []
        for tp in s.scalars(select(Timepoint).where(Timepoint.subject_id == subj.id)
                            .order_by(Timepoint.date, Timepoint.id)):
            read = self._current_read(s, tp, r)
            if read is None:
                continue
            assessments = []
            for m in s.scalars(select(Measurement).where(Measurement.read_id == read.id)):
                les = by_id[m.lesion_id]
                diameter = m.short_axis_mm if les.nodal else m.long_axis_mm
                assessments.append(LesionAssessment(les.code, LesionState(m.state), diameter,
                                                    tuple(Decimal(f) for f in m.fragments_mm or ())))
            out.append((tp, read, RTimepoint(tp.visit, tp.date, tuple(assessments), tp.visit_num)))
        rl = [RLesion(les.code, Category(les.category), les.organ, les.nodal) for les in lesions]
        return rl, out

    def compute_responses(self, subject: str, *, reader: str) -> list[TimepointResponse]:
        """Run the RECIST engine over ``reader``'s current reads and store the results.

        Results are stored on open reads (replacing an earlier computation, audited); a signed read
        keeps what was signed. Returns the engine's responses, one per follow-up visit.
        """
        with self._write(reader, "responses computed") as s:
            r = self._active_reader(s, reader, ("reader", "admin"))
            subj = self._subject(s, subject)
            trial = s.get(Trial, subj.trial_id)
            assert trial is not None
            policies = policies_from_mapping(dict(trial.policies or {}))
            lesions, seq = self._engine_input(s, subj, r)
            if len(seq) < 2:
                return []
            ev = evaluate(trial.criteria, lesions, [t for _, _, t in seq], policies)
            results = list(ev.recist)
            overall = [x.value for x in ev.overall]
            for (_tp, read, _), res, ov in zip(seq[1:], results, overall, strict=True):
                if read.status != "open":
                    continue
                row = s.scalars(select(TimepointResponseRow).where(
                    TimepointResponseRow.read_id == read.id)).first()
                values = dict(
                    criteria=trial.criteria, target=res.target and res.target.value,
                    non_target=res.non_target and res.non_target.value,
                    new_lesions=res.new_lesions.value, overall=ov, sod_mm=res.sod_mm,
                    baseline_mm=res.baseline_mm, nadir_mm=res.nadir_mm,
                    pct_from_baseline=res.pct_from_baseline, pct_from_nadir=res.pct_from_nadir,
                    reasons=list(res.reasons))
                if row is None:
                    s.add(TimepointResponseRow(subject_id=subj.id, read_id=read.id, **values))
                else:
                    for k, v in values.items():
                        setattr(row, k, v)
            return results

    # --- signatures, amendments ---------------------------------------------------------------

    def _content_hash(self, s: Session, read: TimepointRead, subj: Subject, tp: Timepoint,
                      r: Reader) -> str:
        info = self._read_info(s, read, subj, tp, r)
        body = {"subject": info.subject, "visit": info.visit, "date": info.date,
                "reader": info.reader, "version": info.version,
                "measurements": [m.__dict__ for m in info.measurements],
                "response": None if info.response is None else info.response.__dict__}
        return hashlib.sha256(canonical_json(body).encode()).hexdigest()

    def sign(self, subject: str, visit: str, *, reader: str, password: str,
             meaning: str = "read complete", confirmed_overall: str | None = None,
             reason: str | None = None) -> str:
        """Sign ``reader``'s current read of a visit; it is locked afterwards.

        The password is asked again (21 CFR 11.200). The computed overall response is confirmed
        unless ``confirmed_overall`` differs, which needs a ``reason``. A follow-up read must have
        a computed response (run :meth:`compute_responses` first). Returns the sha256 of the
        signed content (stored with the signature).
        """
        if meaning not in MEANINGS:
            raise InputError(f"signature meaning {meaning!r} is not one of {', '.join(MEANINGS)}")
        self.authenticate(reader, password)
        with self._write(reader, reason or f"signed: {meaning}") as s:
            r = self._active_reader(s, reader, ("reader", "admin"))
            subj = self._subject(s, subject)
            tp = self._timepoint(s, subj, visit)
            read = self._current_read(s, tp, r)
            if read is None:
                raise InputError(f"{reader} has no read of {subject} {visit} to sign")
            if read.status != "open":
                raise LockedRecordError(f"{subject} {visit} read by {reader} (version "
                                        f"{read.version}) is signed already")
            resp = s.scalars(select(TimepointResponseRow).where(
                TimepointResponseRow.read_id == read.id)).first()
            first_tp = s.scalars(select(Timepoint).where(Timepoint.subject_id == subj.id)
                                 .order_by(Timepoint.date, Timepoint.id).limit(1)).first()
            is_baseline = first_tp is not None and first_tp.id == tp.id
            if resp is None and not is_baseline:
                raise InputError(f"{subject} {visit}: no computed response; compute responses "
                                 "before signing")
            if resp is not None:
                final = confirmed_overall or resp.overall
                if final != resp.overall and not reason:
                    raise InputError(f"confirming {final} instead of the computed {resp.overall} "
                                     "needs a reason")
                trial = s.get(Trial, subj.trial_id)
                criteria = trial.criteria if trial is not None else ""
                valid = [x.value for x in OVERALL_RESPONSES.get(criteria, tuple(Response))]
                if final != resp.overall and final not in valid:
                    raise InputError(f"{final!r} is not a {criteria} response (one of "
                                     f"{', '.join(valid)})")
                resp.confirmed_overall = final
                resp.confirm_reason = reason
                s.flush()
            digest = self._content_hash(s, read, subj, tp, r)
            read.status = "signed"
            s.add(Signature(subject_id=subj.id, reader_id=r.id, printed_name=r.full_name,
                            entity="timepoint_read", entity_id=read.id, meaning=meaning,
                            record_sha256=digest))
            return digest

    def amend(self, subject: str, visit: str, *, reader: str, password: str, reason: str) -> int:
        """Open a new version of a signed read (copy of it) for changes; returns its number.

        Like signing, this needs the reader's password: the new version is recorded as the
        reader's, so nobody else may open it in the reader's name. A wrong password is audited
        (``AUTH_FAIL``) and raises :class:`AuthenticationError`.
        """
        if not reason or not reason.strip():
            raise InputError("an amendment needs a reason")
        self.authenticate(reader, password)
        with self._write(reader, reason) as s:
            r = self._active_reader(s, reader, ("reader", "admin"))
            subj = self._subject(s, subject)
            tp = self._timepoint(s, subj, visit)
            old = self._current_read(s, tp, r)
            if old is None:
                raise InputError(f"{reader} has no read of {subject} {visit}")
            if old.status == "open":
                raise InputError(f"{subject} {visit} read by {reader} is not signed: change it "
                                 "directly")
            new = TimepointRead(subject_id=subj.id, timepoint_id=tp.id, reader_id=r.id,
                                version=old.version + 1, status="open", supersedes_id=old.id,
                                amend_reason=reason)
            s.add(new)
            s.flush()
            cols = [c.key for c in Measurement.__table__.columns if c.key not in ("id", "read_id")]
            for m in s.scalars(select(Measurement).where(Measurement.read_id == old.id)).all():
                s.add(Measurement(read_id=new.id, **{k: getattr(m, k) for k in cols}))
            return new.version

    # --- independent review, adjudication -----------------------------------------------------

    def discrepancies(self, subject: str, *, adjudicator: str, password: str) -> list[Discrepancy]:
        """Per visit, the signed overall responses of every reader (adjudicators only).

        This shows one reader's results to another person, so it needs the adjudicator's
        password; a wrong one is audited (``AUTH_FAIL``) and raises :class:`AuthenticationError`.
        """
        self.authenticate(adjudicator, password)
        with self._read() as s:
            self._active_reader(s, adjudicator, ("adjudicator", "admin"))
            subj = self._subject(s, subject)
            out = []
            for tp in s.scalars(select(Timepoint).where(Timepoint.subject_id == subj.id)
                                .order_by(Timepoint.date, Timepoint.id)):
                answers: dict[str, str | None] = {}
                for r in s.scalars(select(Reader).join(TimepointRead, TimepointRead.reader_id
                                                       == Reader.id)
                                   .where(TimepointRead.timepoint_id == tp.id).distinct()):
                    read = self._current_read(s, tp, r)
                    resp = None if read is None or read.status != "signed" else s.scalars(
                        select(TimepointResponseRow).where(TimepointResponseRow.read_id == read.id)
                    ).first()
                    answers[r.name] = None if resp is None else (resp.confirmed_overall
                                                                 or resp.overall)
                adj = s.scalars(select(Adjudication).where(Adjudication.timepoint_id == tp.id)
                                .order_by(Adjudication.version.desc()).limit(1)).first()
                chosen = None
                if adj is not None:
                    rd = s.get(TimepointRead, adj.chosen_read_id)
                    chosen = cast(Reader, s.get(Reader, rd.reader_id)).name if rd else None
                given = {v for v in answers.values() if v is not None}
                out.append(Discrepancy(tp.visit, tp.date, answers, len(given) > 1, chosen,
                                       adj.reason if adj else None))
            return out

    def adjudicate(self, subject: str, visit: str, *, adjudicator: str, password: str,
                   chosen_reader: str, other_reader: str, reason: str) -> None:
        """Choose one of two readers' signed reads of a visit, with a reason, and sign it."""
        if not reason or not reason.strip():
            raise InputError("an adjudication needs a reason")
        self.authenticate(adjudicator, password)
        with self._write(adjudicator, reason) as s:
            a = self._active_reader(s, adjudicator, ("adjudicator", "admin"))
            if adjudicator in (chosen_reader, other_reader):
                raise InputError("the adjudicator must not be one of the two readers")
            subj = self._subject(s, subject)
            tp = self._timepoint(s, subj, visit)
            reads = {}
            for name in (chosen_reader, other_reader):
                rd = self._current_read(s, tp, self._reader(s, name))
                if rd is None or rd.status != "signed":
                    raise InputError(f"{name}'s read of {subject} {visit} is not signed")
                resp = s.scalars(select(TimepointResponseRow).where(
                    TimepointResponseRow.read_id == rd.id)).first()
                reads[name] = (rd, None if resp is None else (resp.confirmed_overall
                                                              or resp.overall))
            if reads[chosen_reader][1] == reads[other_reader][1]:
                raise InputError(f"{chosen_reader} and {other_reader} agree "
                                 f"({reads[chosen_reader][1]}): nothing to adjudicate")
            last = s.scalars(select(Adjudication).where(Adjudication.timepoint_id == tp.id)
                             .order_by(Adjudication.version.desc()).limit(1)).first()
            adj = Adjudication(subject_id=subj.id, timepoint_id=tp.id,
                               version=1 if last is None else last.version + 1,
                               adjudicator_id=a.id, chosen_read_id=reads[chosen_reader][0].id,
                               other_read_id=reads[other_reader][0].id,
                               chosen_overall=reads[chosen_reader][1] or "", reason=reason)
            s.add(adj)
            s.flush()
            digest = hashlib.sha256(canonical_json(
                {"subject": subj.code, "visit": tp.visit, "chosen": chosen_reader,
                 "other": other_reader, "overall": adj.chosen_overall, "reason": reason,
                 "version": adj.version}).encode()).hexdigest()
            s.add(Signature(subject_id=subj.id, reader_id=a.id, printed_name=a.full_name,
                            entity="adjudication", entity_id=adj.id, meaning="adjudicated",
                            record_sha256=digest))

    # --- audit ---------------------------------------------------------------------------------

    def audit_log(self, subject: str | None = None) -> list[AuditEntry]:
        """The audit trail, oldest first (of one subject, or all)."""
        with self._read() as s:
            stmt = select(AuditEvent).order_by(AuditEvent.id)
            if subject is not None:
                stmt = stmt.where(AuditEvent.subject == subject)
            return [AuditEntry.from_row(e) for e in s.scalars(stmt)]

    def audit_head(self) -> AuditEntry | None:
        """The newest audit event (None while the trail is empty). Its ``hash`` is the chain head
        to keep outside the database and give to :meth:`verify_audit` later; this does not
        verify the chain."""
        with self._read() as s:
            row = s.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1)).first()
            return None if row is None else AuditEntry.from_row(row)

    def verify_audit(self, expect_head: str | None = None) -> AuditCheck:
        """Verify the audit trail and that the data are what it says.

        Checks, on one snapshot of the database: the hash chain; that ``expect_head`` (a head
        printed earlier by ``recist audit head`` and kept outside the database) is an event of the
        chain, so that no events were cut from its end since; that every signed read still hashes
        as when it was signed; and that every row of every audited table is exactly what the
        trail's events make of it (nothing changed, inserted or removed without its event).

        Parameters
        ----------
        expect_head : str, optional
            A chain hash (64 hex digits) the chain must contain.

        Returns
        -------
        AuditCheck
            ``ok`` with ``message`` ``OK: n events, head <hash>; ...``, or the first problem
            (``problems`` lists every row that differs).
        """
        if expect_head is not None and not is_chain_hash(expect_head):
            raise InputError(f"expected head {expect_head!r}: a chain head is 64 hex digits")
        events = select(AuditEvent.__table__).order_by(AuditEvent.id)
        with self._read(snapshot=True) as s:
            check = verify_chain(s.execute(events))
            if not check.ok:
                return check
            found = None
            if expect_head is not None:
                want = expect_head.lower()
                found = 0 if want == GENESIS else s.scalars(
                    select(AuditEvent.id).where(AuditEvent.hash == want)).first()
                if found is None:
                    return AuditCheck(False, check.n_events, check.head_hash, None,
                                      f"expected head {want} is not in the chain: events were "
                                      "removed from its end, or the chain was rewritten")
            for g in s.scalars(select(Signature).where(Signature.entity == "timepoint_read")):
                read = s.get(TimepointRead, g.entity_id)
                if read is None:
                    return AuditCheck(False, check.n_events, check.head_hash, None,
                                      f"signature {g.id}: the signed read is missing")
                subj = s.get(Subject, read.subject_id)
                tp = s.get(Timepoint, read.timepoint_id)
                r = s.get(Reader, read.reader_id)
                assert subj is not None and tp is not None and r is not None
                if self._content_hash(s, read, subj, tp, r) != g.record_sha256:
                    return AuditCheck(False, check.n_events, check.head_hash, None,
                                      f"signature {g.id}: {subj.code} {tp.visit} read by {r.name} "
                                      f"version {read.version} was changed after signing")
            n_rows, problems = check_rows(s.connection(), s.execute(events))
            if problems:
                more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
                return AuditCheck(False, check.n_events, check.head_hash, None,
                                  f"the data differ from the audit trail: {problems[0]}{more}",
                                  tuple(problems))
            kept = "" if found is None else f"; expected head is event {found}"
            return AuditCheck(True, check.n_events, check.head_hash, None,
                              f"{check.message}; {n_rows} rows as the trail says{kept}")
