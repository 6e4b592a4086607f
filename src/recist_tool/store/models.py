"""SQLAlchemy 2 models of the trial database.

Clinical tables carry ``__audited__ = True``: every insert, update and delete of their rows writes
an append-only :class:`AuditEvent` in the same transaction (see :mod:`recist_tool.store.audit`).

Conventions: diameters are exact decimals stored as text (``"12.3"``), volumes in mL, dates ISO,
timestamps UTC. ``subject_id`` is repeated on every per-subject table so that reads and the audit log
can be filtered per subject without joins. A reader's lesions, measurements and responses carry
their ``reader_id``: independent reads of one subject never share rows.
"""

from __future__ import annotations

import datetime as _dt
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

__all__ = [
    "Base", "Reader", "Trial", "Subject", "SubjectIdentity", "Timepoint", "TimepointRead", "Lesion",
    "Measurement", "TimepointResponseRow", "Signature", "Adjudication", "AuditEvent",
    "DecimalText", "UtcTimestamp", "utcnow",
]


def utcnow() -> _dt.datetime:
    """Current time, timezone-aware UTC."""
    return _dt.datetime.now(_dt.UTC)


class DecimalText(TypeDecorator):
    """Exact :class:`~decimal.Decimal` stored as its text (same on SQLite and PostgreSQL)."""

    impl = String(40)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, float):
            value = Decimal(repr(value))
        return str(Decimal(value))

    def process_result_value(self, value: Any, dialect: Any) -> Decimal | None:
        return None if value is None else Decimal(value)


class UtcTimestamp(TypeDecorator):
    """Timezone-aware UTC datetime stored as ISO 8601 text with microseconds and ``Z``."""

    impl = String(32)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("timestamps must be timezone-aware UTC")
        return value.astimezone(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def process_result_value(self, value: Any, dialect: Any) -> _dt.datetime | None:
        if value is None:
            return None
        return _dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=_dt.UTC)


class Base(DeclarativeBase):
    """Declarative base of all tables."""


class Reader(Base):
    """A named account: reader, adjudicator or administrator. Password: scrypt hash string."""

    __tablename__ = "reader"
    __audited__ = True
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    full_name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(20), default="reader")
    password_hash: Mapped[str] = mapped_column(String(300))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[_dt.datetime] = mapped_column(UtcTimestamp, default=utcnow)


class Trial(Base):
    """A trial: response criteria, RECIST policies (JSON) and visit schedule (JSON list)."""

    __tablename__ = "trial"
    __audited__ = True
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    criteria: Mapped[str] = mapped_column(String(20), default="RECIST 1.1")
    policies: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    visit_schedule: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[_dt.datetime] = mapped_column(UtcTimestamp, default=utcnow)


class Subject(Base):
    """A subject under its pseudonymous code (unique in the database)."""

    __tablename__ = "subject"
    __audited__ = True
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trial.id"))
    code: Mapped[str] = mapped_column(String(64), unique=True)
    reference_date: Mapped[_dt.date | None] = mapped_column(Date, nullable=True)
    created_at: Mapped[_dt.datetime] = mapped_column(UtcTimestamp, default=utcnow)


class SubjectIdentity(Base):
    """DICOM PatientID of a subject. Kept apart: exports and the audit log never show it."""

    __tablename__ = "subject_identity"
    __audited__ = True
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("subject.id"), unique=True)
    patient_id: Mapped[str] = mapped_column(String(128), unique=True)


class Timepoint(Base):
    """A visit of a subject: date and the imaging (study / series UIDs)."""

    __tablename__ = "timepoint"
    __audited__ = True
    __table_args__ = (UniqueConstraint("subject_id", "visit"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("subject.id"))
    visit: Mapped[str] = mapped_column(String(64))
    visit_num: Mapped[Decimal | None] = mapped_column(DecimalText, nullable=True)
    date: Mapped[_dt.date] = mapped_column(Date)
    study_uid: Mapped[str | None] = mapped_column(String(64), nullable=True)
    series_uid: Mapped[str | None] = mapped_column(String(64), nullable=True)
    series_path: Mapped[str | None] = mapped_column(Text, nullable=True)


class TimepointRead(Base):
    """One reader's assessment of one timepoint, in versions.

    ``status`` is ``open`` (editable) or ``signed`` (locked). An amendment adds version n+1
    (``supersedes_id`` → version n, ``amend_reason``); version n stays as signed.
    """

    __tablename__ = "timepoint_read"
    __audited__ = True
    __table_args__ = (UniqueConstraint("timepoint_id", "reader_id", "version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("subject.id"))
    timepoint_id: Mapped[int] = mapped_column(ForeignKey("timepoint.id"))
    reader_id: Mapped[int] = mapped_column(ForeignKey("reader.id"))
    version: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(12), default="open")
    supersedes_id: Mapped[int | None] = mapped_column(ForeignKey("timepoint_read.id"), nullable=True)
    amend_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[_dt.datetime] = mapped_column(UtcTimestamp, default=utcnow)


class Lesion(Base):
    """A lesion as identified by one reader (``T01``, ``NT01``, ``NL01``)."""

    __tablename__ = "lesion"
    __audited__ = True
    __table_args__ = (UniqueConstraint("subject_id", "reader_id", "code"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("subject.id"))
    reader_id: Mapped[int] = mapped_column(ForeignKey("reader.id"))
    code: Mapped[str] = mapped_column(String(16))
    category: Mapped[str] = mapped_column(String(20))
    organ: Mapped[str] = mapped_column(String(64), default="")
    nodal: Mapped[bool] = mapped_column(Boolean, default=False)
    created_timepoint_id: Mapped[int] = mapped_column(ForeignKey("timepoint.id"))


class Measurement(Base):
    """One lesion in one timepoint read: axes (mm), end points (LPS), volume, mask, provenance, state.

    Non-target and new-lesion assessments are rows of this table too (state ``PRESENT``,
    ``UNEQUIVOCAL PROGRESSION``, ``EQUIVOCAL``, ...), their lesion's category tells them apart.
    """

    __tablename__ = "measurement"
    __audited__ = True
    __table_args__ = (UniqueConstraint("read_id", "lesion_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("subject.id"))
    read_id: Mapped[int] = mapped_column(ForeignKey("timepoint_read.id"))
    lesion_id: Mapped[int] = mapped_column(ForeignKey("lesion.id"))
    state: Mapped[str] = mapped_column(String(32), default="MEASURED")
    long_axis_mm: Mapped[Decimal | None] = mapped_column(DecimalText, nullable=True)
    short_axis_mm: Mapped[Decimal | None] = mapped_column(DecimalText, nullable=True)
    fragments_mm: Mapped[list[str]] = mapped_column(JSON, default=list)
    endpoints_lps: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    volume_ml: Mapped[Decimal | None] = mapped_column(DecimalText, nullable=True)
    mask_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    mask_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    segmenter: Mapped[str | None] = mapped_column(String(64), nullable=True)
    segmenter_version: Mapped[str | None] = mapped_column(String(32), nullable=True)
    method: Mapped[str] = mapped_column(String(12), default="manual")


class TimepointResponseRow(Base):
    """Computed response of a timepoint read, and the reader's confirmed overall response."""

    __tablename__ = "timepoint_response"
    __audited__ = True
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("subject.id"))
    read_id: Mapped[int] = mapped_column(ForeignKey("timepoint_read.id"), unique=True)
    criteria: Mapped[str] = mapped_column(String(20))
    target: Mapped[str | None] = mapped_column(String(20), nullable=True)
    non_target: Mapped[str | None] = mapped_column(String(20), nullable=True)
    new_lesions: Mapped[str] = mapped_column(String(12))
    overall: Mapped[str] = mapped_column(String(20))
    sod_mm: Mapped[Decimal | None] = mapped_column(DecimalText, nullable=True)
    baseline_mm: Mapped[Decimal | None] = mapped_column(DecimalText, nullable=True)
    nadir_mm: Mapped[Decimal | None] = mapped_column(DecimalText, nullable=True)
    pct_from_baseline: Mapped[Decimal | None] = mapped_column(DecimalText, nullable=True)
    pct_from_nadir: Mapped[Decimal | None] = mapped_column(DecimalText, nullable=True)
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    computed_at: Mapped[_dt.datetime] = mapped_column(UtcTimestamp, default=utcnow)
    confirmed_overall: Mapped[str | None] = mapped_column(String(20), nullable=True)
    confirm_reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class Signature(Base):
    """An electronic signature: who (printed name), when, meaning, and the hash of what was signed."""

    __tablename__ = "signature"
    __audited__ = True
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("subject.id"))
    reader_id: Mapped[int] = mapped_column(ForeignKey("reader.id"))
    printed_name: Mapped[str] = mapped_column(String(200))
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[int] = mapped_column(Integer)
    meaning: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[_dt.datetime] = mapped_column(UtcTimestamp, default=utcnow)
    record_sha256: Mapped[str] = mapped_column(String(64))


class Adjudication(Base):
    """An adjudicator's choice between two readers' reads of one timepoint, with the reason."""

    __tablename__ = "adjudication"
    __audited__ = True
    __table_args__ = (UniqueConstraint("timepoint_id", "version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("subject.id"))
    timepoint_id: Mapped[int] = mapped_column(ForeignKey("timepoint.id"))
    version: Mapped[int] = mapped_column(Integer, default=1)
    adjudicator_id: Mapped[int] = mapped_column(ForeignKey("reader.id"))
    chosen_read_id: Mapped[int] = mapped_column(ForeignKey("timepoint_read.id"))
    other_read_id: Mapped[int] = mapped_column(ForeignKey("timepoint_read.id"))
    chosen_overall: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[_dt.datetime] = mapped_column(UtcTimestamp, default=utcnow)


class AuditEvent(Base):
    """Append-only audit event, hash-chained: ``hash = sha256(prev_hash + canonical JSON)``.

    All fields that enter the hash are stored as text exactly as hashed (``ts``, ``old_values``,
    ``new_values``), so verification never depends on how a backend round-trips JSON or time.
    """

    __tablename__ = "audit_event"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    ts: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16))
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    subject: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    old_values: Mapped[str | None] = mapped_column(Text, nullable=True)
    new_values: Mapped[str | None] = mapped_column(Text, nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
