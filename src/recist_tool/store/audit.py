"""Append-only, hash-chained audit trail.

Every flush of a session that inserts, updates or deletes a row of an audited table (a model with
``__audited__ = True``) appends one :class:`~recist_tool.store.models.AuditEvent` per row change in
the same transaction: who (``session.info["actor"]``), when (UTC), what (table, id, old → new values)
and why (``session.info["reason"]``). Writers are serialised (SQLite ``BEGIN IMMEDIATE``, PostgreSQL
advisory lock), so the chain has one order.

Chain: ``hash_n = sha256(hash_{n-1} + "\\n" + canonical_json(event_n))`` with ``hash_0 = 64 × "0"``.
Canonical JSON: sorted keys, no spaces, UTF-8. Changing, removing or inserting an event breaks the
chain at that event; :func:`verify_chain` names the first broken one.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, event, inspect, select
from sqlalchemy.orm import Session

from recist_tool.errors import StoreError
from recist_tool.store.models import AuditEvent, Subject, utcnow

__all__ = ["GENESIS", "AuditEntry", "AuditCheck", "canonical_json", "event_hash", "append_event",
           "verify_chain", "install_listeners"]

GENESIS = "0" * 64
_TABLE = AuditEvent.__table__
#: Columns never written in clear into the audit trail.
_REDACT = {("reader", "password_hash"), ("subject_identity", "patient_id")}


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, _dt.datetime):
        return value.astimezone(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, _dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def canonical_json(value: Any) -> str:
    """Canonical JSON text: sorted keys, compact separators, UTF-8, decimals and dates as text."""
    return json.dumps(_plain(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def event_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    """sha256 (hex) of the previous hash, a newline and the canonical JSON of the event fields."""
    return hashlib.sha256((prev_hash + "\n" + canonical_json(fields)).encode("utf-8")).hexdigest()


def _fields(row: Any) -> dict[str, Any]:
    return {k: getattr(row, k) if not isinstance(row, dict) else row[k]
            for k in ("id", "ts", "actor", "action", "entity", "entity_id", "subject", "old_values",
                      "new_values", "reason")}


@dataclass(frozen=True)
class AuditEntry:
    """One audit event as read back (``old`` / ``new`` decoded from their JSON text)."""

    id: int
    ts: str
    actor: str
    action: str
    entity: str
    entity_id: int | None
    subject: str | None
    old: dict[str, Any] | None
    new: dict[str, Any] | None
    reason: str | None
    hash: str

    @classmethod
    def from_row(cls, row: Any) -> AuditEntry:
        """Build from an :class:`AuditEvent` row."""
        return cls(row.id, row.ts, row.actor, row.action, row.entity, row.entity_id, row.subject,
                   json.loads(row.old_values) if row.old_values else None,
                   json.loads(row.new_values) if row.new_values else None, row.reason, row.hash)


@dataclass(frozen=True)
class AuditCheck:
    """Result of :func:`verify_chain`."""

    ok: bool
    n_events: int
    head_hash: str
    first_broken_id: int | None = None
    message: str = ""


def append_event(conn: Connection, *, actor: str, action: str, entity: str, entity_id: int | None,
                 subject: str | None, old: dict[str, Any] | None, new: dict[str, Any] | None,
                 reason: str | None) -> int:
    """Append one event to the chain on ``conn`` (inside the caller's write transaction)."""
    last = conn.execute(select(_TABLE.c.id, _TABLE.c.hash).order_by(_TABLE.c.id.desc())
                        .limit(1)).first()
    prev_id, prev_hash = (last[0], last[1]) if last else (0, GENESIS)
    row = {
        "id": prev_id + 1,
        "ts": utcnow().strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "actor": actor,
        "action": action,
        "entity": entity,
        "entity_id": entity_id,
        "subject": subject,
        "old_values": None if old is None else canonical_json(old),
        "new_values": None if new is None else canonical_json(new),
        "reason": reason,
    }
    row["prev_hash"] = prev_hash
    row["hash"] = event_hash(prev_hash, _fields(row))
    conn.execute(_TABLE.insert().values(**row))
    return row["id"]


def verify_chain(rows: Iterable[Any]) -> AuditCheck:
    """Check ids are 1, 2, 3, ..., every ``prev_hash`` links and every hash recomputes."""
    prev_hash, expected, n = GENESIS, 1, 0
    for row in rows:
        n += 1
        if row.id != expected:
            return AuditCheck(False, n, prev_hash, row.id,
                              f"event {row.id}: expected event {expected} (events missing)")
        if row.prev_hash != prev_hash:
            return AuditCheck(False, n, prev_hash, row.id,
                              f"event {row.id}: does not link to the event before it "
                              "(an earlier event was changed or removed)")
        if event_hash(prev_hash, _fields(row)) != row.hash:
            return AuditCheck(False, n, prev_hash, row.id,
                              f"event {row.id}: content does not match its hash (changed)")
        prev_hash, expected = row.hash, expected + 1
    return AuditCheck(True, n, prev_hash, None, f"OK: {n} events, head {prev_hash}")


# --- automatic capture -----------------------------------------------------------------------------

def _audited(obj: Any) -> bool:
    return bool(getattr(type(obj), "__audited__", False))


def _redact(table: str, values: dict[str, Any]) -> dict[str, Any]:
    out = dict(values)
    for t, col in _REDACT:
        if t == table and out.get(col) is not None:
            if col == "patient_id":
                digest = hashlib.sha256(str(out[col]).encode()).hexdigest()[:12]
                out[col] = f"<redacted sha256:{digest}>"
            else:
                out[col] = "<redacted>"
    return out


def _snapshot(obj: Any, which: str = "current") -> dict[str, Any]:
    state = inspect(obj)
    out: dict[str, Any] = {}
    for attr in state.mapper.column_attrs:
        hist = state.attrs[attr.key].history
        if which == "old" and (hist.deleted or hist.added):
            value = hist.deleted[0] if hist.deleted else None
        else:
            value = getattr(obj, attr.key)
        out[attr.key] = _plain(value)
    return out


def _changes(obj: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    state = inspect(obj)
    old: dict[str, Any] = {}
    new: dict[str, Any] = {}
    for attr in state.mapper.column_attrs:
        hist = state.attrs[attr.key].history
        if hist.added or hist.deleted:
            before = hist.deleted[0] if hist.deleted else None
            after = hist.added[0] if hist.added else None
            if _plain(before) != _plain(after):
                old[attr.key] = _plain(before)
                new[attr.key] = _plain(after)
    return old, new


def _subject_code(conn: Connection, obj: Any, cache: dict[int, str]) -> str | None:
    if isinstance(obj, Subject):
        return obj.code
    sid = getattr(obj, "subject_id", None)
    if sid is None:
        return None
    if sid not in cache:
        code = conn.execute(select(Subject.__table__.c.code).where(Subject.__table__.c.id == sid)
                            ).scalar()
        cache[sid] = code
    return cache[sid]


def _sort_key(obj: Any) -> tuple[str, int]:
    return (type(obj).__tablename__, getattr(obj, "id", 0) or 0)


def _events(session: Session) -> Iterator[tuple[str, Any, dict | None, dict | None]]:
    for obj in sorted((o for o in session.new if _audited(o)), key=_sort_key):
        yield "INSERT", obj, None, _snapshot(obj)
    for obj in sorted((o for o in session.dirty if _audited(o)), key=_sort_key):
        old, new = _changes(obj)
        if new:
            yield "UPDATE", obj, old, new
    for obj in sorted((o for o in session.deleted if _audited(o)), key=_sort_key):
        yield "DELETE", obj, _snapshot(obj, "old"), None


def _after_flush(session: Session, flush_context: Any) -> None:
    events = list(_events(session))
    if not events:
        return
    actor = session.info.get("actor")
    if not actor:
        raise StoreError("internal: a clinical record was written without an acting user")
    conn = session.connection()
    cache: dict[int, str] = {}
    for action, obj, old, new in events:
        table = type(obj).__tablename__
        subject = _subject_code(conn, obj, cache)
        append_event(conn, actor=actor, action=action, entity=table, entity_id=obj.id,
                     subject=subject, old=None if old is None else _redact(table, old),
                     new=None if new is None else _redact(table, new),
                     reason=session.info.get("reason"))


def _before_flush(session: Session, flush_context: Any, instances: Any) -> None:
    for obj in list(session.dirty) + list(session.deleted):
        if isinstance(obj, AuditEvent):
            raise StoreError("audit events are append-only: they cannot be changed or removed")


def install_listeners(factory: Any) -> None:
    """Register the audit capture on a :class:`~sqlalchemy.orm.sessionmaker` (its sessions only)."""
    event.listen(factory, "before_flush", _before_flush)
    event.listen(factory, "after_flush", _after_flush)
