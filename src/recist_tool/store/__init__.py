"""Trial database: SQLAlchemy models, Alembic migrations, audit trail, reader sign-off.

``TrialStore(url)`` is the entry point; see :mod:`recist_tool.store.service`. What it returns and
raises is in :mod:`recist_tool.store.records`, a logged-in reader's view in
:mod:`recist_tool.store.session`, the read snapshot exports and reports share in
:mod:`recist_tool.store.snapshot`, a measurement's stored values in :mod:`recist_tool.store.values`.
"""

from recist_tool.store.audit import AuditCheck, AuditEntry
from recist_tool.store.db import head_revision
from recist_tool.store.service import (
    CRITERIA,
    MEANINGS,
    AuthenticationError,
    Discrepancy,
    LockedRecordError,
    MeasurementInfo,
    ReaderInfo,
    ReaderSession,
    ReadInfo,
    ResponseInfo,
    SubjectInfo,
    TimepointInfo,
    TrialStore,
)

__all__ = [
    "AuditCheck", "AuditEntry", "AuthenticationError", "CRITERIA", "Discrepancy",
    "LockedRecordError", "MEANINGS", "MeasurementInfo", "ReadInfo", "ReaderInfo", "ReaderSession",
    "ResponseInfo", "SubjectInfo", "TimepointInfo",
    "TrialStore", "head_revision",
]
