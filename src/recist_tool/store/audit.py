"""Append-only, hash-chained audit trail.

Every flush of a session that inserts, updates or deletes a row of an audited table (a model with
``__audited__ = True``) appends one :class:`~recist_tool.store.models.AuditEvent` per row change in
the same transaction: who (``session.info["actor"]``), when (UTC), what (table, id, old → new values)
and why (``session.info["reason"]``). Writers are serialised (SQLite ``BEGIN IMMEDIATE``, PostgreSQL
advisory lock), so the chain has one order.

Chain: ``hash_n = sha256(hash_{n-1} + "\\n" + canonical_json(event_n))`` with ``hash_0 = 64 × "0"``.
Canonical JSON: sorted keys, no spaces, UTF-8. Changing, removing or inserting an event breaks the
chain at that event; :func:`verify_chain` names the first broken one.

The trail also covers the data: replaying its INSERT / UPDATE / DELETE events gives the state every
row of every audited table must have, and :func:`check_rows` compares the tables with it, so a row
changed, inserted or removed outside the application (or an event removed from the end of the
chain) is found. Redacted columns are compared through their sha256 digest.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Connection, String, Table, event, inspect, select, type_coerce
from sqlalchemy.orm import Session

from recist_tool.errors import StoreError
from recist_tool.store.models import AuditEvent, Base, DecimalText, Subject, UtcTimestamp, utcnow

__all__ = ["GENESIS", "AuditEntry", "AuditCheck", "canonical_json", "event_hash", "append_event",
           "verify_chain", "install_listeners", "audited_tables", "check_rows", "is_chain_hash"]

GENESIS = "0" * 64
_TABLE = cast(Table, AuditEvent.__table__)
#: Columns never written in clear into the audit trail.
_REDACT = {("reader", "password_hash"), ("subject_identity", "patient_id")}
#: How a redacted value was written before its digest was kept: nothing to compare it with.
_LEGACY_REDACTED = "<redacted>"
_ROW_ACTIONS = ("INSERT", "UPDATE", "DELETE")


def is_chain_hash(value: str) -> bool:
    """Whether ``value`` has the form of a chain hash: 64 hex digits."""
    return re.fullmatch(r"[0-9a-fA-F]{64}", value) is not None


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
    #: Rows that differ from the state the trail gives them, one line each (empty when none).
    problems: tuple[str, ...] = ()


def append_event(conn: Connection, *, actor: str, action: str, entity: str, entity_id: int | None,
                 subject: str | None, old: dict[str, Any] | None, new: dict[str, Any] | None,
                 reason: str | None) -> int:
    """Append one event to the chain on ``conn`` (inside the caller's write transaction)."""
    last = conn.execute(select(_TABLE.c.id, _TABLE.c.hash).order_by(_TABLE.c.id.desc())
                        .limit(1)).first()
    prev_id, prev_hash = (last[0], last[1]) if last else (0, GENESIS)
    row: dict[str, Any] = {
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
            digest = hashlib.sha256(str(out[col]).encode()).hexdigest()
            # a PatientID keeps a short, recognisable prefix; a password hash its whole digest,
            # so that a hash swapped in outside the application cannot be made to match by trying
            out[col] = f"<redacted sha256:{digest[:12] if col == 'patient_id' else digest}>"
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


def _subject_code(conn: Connection, obj: Any, cache: dict[int, str | None]) -> str | None:
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
    cache: dict[int, str | None] = {}
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


# --- the data against the trail -------------------------------------------------------------------

def audited_tables() -> dict[str, Table]:
    """Name → table of every model with ``__audited__ = True``."""
    return {cast(Table, m.local_table).name: cast(Table, m.local_table) for m in Base.registry.mappers
            if getattr(m.class_, "__audited__", False)}


def _replay(events: Iterable[Any]) -> tuple[dict[str, dict[int, dict[str, Any]]],
                                             dict[tuple[str, int], str], list[str]]:
    """Rows per table as the events leave them, the subject of each row, and impossible events."""
    state: dict[str, dict[int, dict[str, Any]]] = {}
    subjects: dict[tuple[str, int], str] = {}
    problems: list[str] = []
    for ev in events:
        if ev.action not in _ROW_ACTIONS or ev.entity_id is None:
            continue  # AUTH_FAIL and other events about no row
        rows = state.setdefault(ev.entity, {})
        if ev.subject:
            subjects[(ev.entity, ev.entity_id)] = ev.subject
        if ev.action == "INSERT":
            rows[ev.entity_id] = json.loads(ev.new_values or "{}")
        elif ev.action == "DELETE":
            rows.pop(ev.entity_id, None)
        elif ev.entity_id in rows:
            rows[ev.entity_id].update(json.loads(ev.new_values or "{}"))
        else:
            problems.append(f"event {ev.id}: updates {ev.entity} #{ev.entity_id}, which no event "
                            "inserted")
    return state, subjects, problems


def _current(table: Table) -> Any:
    """SELECT of a table's rows; decimals and timestamps as the text stored (as hashed)."""
    cols = [type_coerce(c, String()).label(c.name) if isinstance(c.type, DecimalText | UtcTimestamp)
            else c for c in table.columns]
    return select(*cols).order_by(table.c.id)


def _cell(column: Any, value: Any) -> Any:
    """A value in comparable form: a decimal as the text it is stored as, the rest as JSON has it."""
    if value is not None and isinstance(column.type, DecimalText):
        try:
            return column.type.process_bind_param(Decimal(value) if isinstance(value, str)
                                                  else value, None)
        except (ArithmeticError, TypeError, ValueError):
            return str(value)
    return json.loads(canonical_json(value))


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_rows(conn: Connection, events: Iterable[Any]) -> tuple[int, list[str]]:
    """Compare every row of every audited table with the state the audit trail gives it.

    Parameters
    ----------
    conn : Connection
        Inside a transaction that also read ``events`` (one snapshot of the database).
    events : iterable
        The audit events, oldest first (rows of ``audit_event``; the chain verified already).

    Returns
    -------
    tuple of (int, list of str)
        How many rows were compared, and one line per row that differs: changed, inserted or
        removed outside the application (or whose event was removed). Redacted columns are
        compared through their digests (events written before digests were kept: not compared).
    """
    state, subjects, problems = _replay(events)

    def label(name: str, rid: int) -> str:
        return f"{name} #{rid}" + (f" [{subjects[(name, rid)]}]" if (name, rid) in subjects else "")

    n = 0
    for name, table in sorted(audited_tables().items()):
        expected = state.get(name, {})
        try:
            rows = conn.execute(_current(table)).mappings().all()
        except (ValueError, TypeError) as exc:  # e.g. a date or JSON text that does not parse
            problems.append(f"{name}: a row cannot be read ({exc}): changed outside the application")
            continue
        seen = set()
        for row in rows:
            n += 1
            rid = row["id"]
            seen.add(rid)
            want = expected.get(rid)
            if want is None:
                problems.append(f"{label(name, rid)}: in the table but in no audit event (written outside "
                                "the application)")
                continue
            have = _redact(name, {k: _plain(v) for k, v in row.items()})
            diffs = []
            for col in table.columns:
                if (name, col.name) in _REDACT and want.get(col.name) == _LEGACY_REDACTED:
                    continue
                a, b = _cell(col, have.get(col.name)), _cell(col, want.get(col.name))
                if canonical_json(a) != canonical_json(b):
                    diffs.append(f"{col.name} is {_show(a)} in the table, the audit trail says "
                                 f"{_show(b)}")
            if diffs:
                problems.append(f"{label(name, rid)}: {'; '.join(diffs)} (changed outside the "
                                "application)")
        for rid in sorted(set(expected) - seen):
            problems.append(f"{label(name, rid)}: in the audit trail but not in the table (removed outside "
                            "the application)")
    return n, problems


def install_listeners(factory: Any) -> None:
    """Register the audit capture on a :class:`~sqlalchemy.orm.sessionmaker` (its sessions only)."""
    event.listen(factory, "before_flush", _before_flush)
    event.listen(factory, "after_flush", _after_flush)
