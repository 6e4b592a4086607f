"""Engine creation, SQLite settings, schema migrations on open, and error translation.

* ``recist.db`` / a path → SQLite file in WAL mode, ``synchronous=FULL``, foreign keys on, a bounded
  busy wait (``timeout_s``); write transactions start with ``BEGIN IMMEDIATE`` so two writers are
  serialised instead of failing half-way.
* ``postgresql://...`` → PostgreSQL through psycopg 3; writers take one transaction-scoped advisory
  lock.
* On open the schema is upgraded with Alembic (migrations ship in ``recist_tool/store/migrations``);
  a database stamped by a newer recist-tool is refused.
"""

from __future__ import annotations

import contextvars
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError

from recist_tool.errors import StoreError

__all__ = ["normalise_url", "make_engine", "migrate", "translate_errors", "writing", "WRITER_LOCK_KEY",
           "schema_revision", "head_revision"]

#: Key of the PostgreSQL advisory lock that serialises writers (and so the audit chain).
WRITER_LOCK_KEY = 7_263_551_001
_WRITING: contextvars.ContextVar[bool] = contextvars.ContextVar("recist_store_writing", default=False)


def normalise_url(url: str | Path) -> str:
    """A SQLAlchemy URL from a path (SQLite file) or a database URL.

    ``postgresql://`` and ``postgres://`` use psycopg 3; ``sqlite:///file`` is kept.
    """
    s = str(url)
    if "://" not in s:
        return "sqlite:///" + str(Path(s).expanduser().resolve())
    for prefix in ("postgres://", "postgresql://"):
        if s.startswith(prefix):
            return "postgresql+psycopg://" + s[len(prefix):]
    return s


def describe(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


@contextmanager
def writing() -> Iterator[None]:
    """Mark transactions begun inside as write transactions (SQLite ``BEGIN IMMEDIATE``)."""
    token = _WRITING.set(True)
    try:
        yield
    finally:
        _WRITING.reset(token)


def make_engine(url: str, *, timeout_s: float = 10.0, read_only: bool = False,
                sqlite_pragmas: dict[str, Any] | None = None) -> Engine:
    """Create the engine for ``url`` (normalised) with the settings described above.

    ``read_only`` opens SQLite with ``mode=ro`` and PostgreSQL with read-only transactions.
    """
    try:
        u = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"not a database URL or path: {url!r}") from exc
    try:
        if u.get_backend_name() == "sqlite":
            if u.database and u.database != ":memory:" and not u.database.startswith("file:"):
                path = Path(u.database)
                if not path.parent.is_dir():
                    raise StoreError(f"database folder {path.parent} does not exist")
                if read_only:
                    if not path.is_file():
                        raise StoreError(f"database {path} does not exist")
                    u = u.set(database=f"file:{path}?mode=ro", query={"uri": "true"})
            engine = create_engine(u, connect_args={"timeout": timeout_s})
            _sqlite_events(engine, timeout_s, sqlite_pragmas or {})
        elif u.get_backend_name() == "postgresql":
            args: dict[str, Any] = {"connect_timeout": max(1, int(timeout_s))}
            if read_only:
                args["options"] = "-c default_transaction_read_only=on"
            engine = create_engine(u, pool_pre_ping=True, connect_args=args)
            _postgres_events(engine, timeout_s)
        else:
            raise StoreError(f"unsupported database {u.get_backend_name()!r}: use a SQLite path "
                             "or a postgresql:// URL")
    except NoSuchModuleError as exc:
        raise StoreError(f"no driver for {describe(url)}: {exc}") from exc
    except ModuleNotFoundError as exc:
        raise StoreError(f"{describe(url)} needs {exc.name}: pip install 'recist-tool[postgres]'"
                         ) from exc
    return engine


def _sqlite_events(engine: Engine, timeout_s: float, pragmas: dict[str, Any]) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: sqlite3.Connection, record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (see _begin)
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {int(timeout_s * 1000)}")
        cur.execute("PRAGMA foreign_keys = ON")
        try:
            mode = cur.execute("PRAGMA journal_mode = WAL").fetchone()
        except sqlite3.OperationalError:
            mode = None  # read-only file or locked: keep its mode, reads still work
        del mode
        cur.execute("PRAGMA synchronous = FULL")
        for name, value in pragmas.items():
            cur.execute(f"PRAGMA {name} = {int(value)}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if _WRITING.get() else "BEGIN")


def _postgres_events(engine: Engine, timeout_s: float) -> None:
    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        if _WRITING.get():
            conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{int(timeout_s * 1000)}ms'")
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({WRITER_LOCK_KEY})")


def classify(exc: BaseException, where: str) -> StoreError:
    """A one-line :class:`StoreError` for a database error."""
    orig = getattr(exc, "orig", None) or exc
    msg = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    low = msg.lower()
    if "database is locked" in low or "lock timeout" in low or "could not obtain lock" in low:
        return StoreError(f"{where}: the database is locked by another process and stayed locked; "
                          "nothing was written, try again")
    if "readonly" in low or "read-only" in low or "read only" in low:
        return StoreError(f"{where}: the database is read-only (file or folder permissions); "
                          "nothing was written")
    if "disk is full" in low or "disk full" in low or "no space" in low:
        return StoreError(f"{where}: the disk is full; nothing of this change was written")
    if "unable to open database" in low:
        return StoreError(f"{where}: cannot open the database file (missing folder or permissions)")
    if "file is not a database" in low or "malformed" in low:
        return StoreError(f"{where}: not a recist database or damaged ({msg})")
    if "append-only" in low:
        return StoreError(f"{where}: audit events are append-only ({msg})")
    if "connection" in low and ("refused" in low or "failed" in low or "timeout" in low):
        return StoreError(f"{where}: cannot connect to the database server ({msg})")
    return StoreError(f"{where}: database error: {msg}")


@contextmanager
def translate_errors(where: str) -> Iterator[None]:
    """Turn SQLAlchemy / driver errors into one-line :class:`StoreError`."""
    try:
        yield
    except StoreError:
        raise
    except (DBAPIError, SQLAlchemyError, sqlite3.Error) as exc:
        raise classify(exc, where) from exc


# --- migrations --------------------------------------------------------------------------------

def _alembic_config() -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location",
                        str(resources.files("recist_tool.store").joinpath("migrations")))
    return cfg


def head_revision() -> str:
    """The newest schema revision this version of recist-tool knows."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config()).get_current_head() or ""


def schema_revision(engine: Engine) -> str | None:
    """The revision stamped in the database (None: empty database)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def migrate(engine: Engine, where: str, target: str = "head") -> str:
    """Bring the schema to ``target``; refuse a database from a newer recist-tool.

    Returns the revision the database is at afterwards.
    """
    from alembic import command
    from alembic.script import ScriptDirectory
    from alembic.util.exc import CommandError

    cfg = _alembic_config()
    script = ScriptDirectory.from_config(cfg)
    head = script.get_current_head()
    with translate_errors(where):
        current = schema_revision(engine)
        if current is not None:
            try:
                script.get_revision(current)
            except (CommandError, KeyError) as exc:
                raise StoreError(
                    f"{where}: the database schema (revision {current}) is newer than this "
                    f"recist-tool understands (newest known: {head}); open it with the newer "
                    "recist-tool that wrote it, or upgrade recist-tool") from exc
        wanted = head if target == "head" else target
        if current == wanted:
            return cast(str, current)  # the schema has a revision: the script's head
        with writing(), engine.begin() as conn:
            cfg.attributes["connection"] = conn
            try:
                command.upgrade(cfg, target)
            except CommandError as exc:
                raise StoreError(f"{where}: schema migration failed: {exc}") from exc
        return schema_revision(engine) or ""


def ping(engine: Engine, where: str) -> None:
    """Open a connection once (clear error for a wrong URL, a missing server, no permission)."""
    with translate_errors(where), engine.connect() as conn:
        conn.execute(text("SELECT 1"))
