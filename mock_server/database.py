"""The gateway's storage seam: one small interface, two engines (docs/deployment.md).

* SQLite (a file path): embedded, the default of ``ecdi run`` and ``ecdi gateway``; one process.
* PostgreSQL (a ``postgresql://`` URL): several gateway processes, on one machine or several, share
  the submissions, histories, sessions and the evidence chain through it (psycopg 3).

Callers write plain SQL with ``?`` placeholders; ``Database.execute`` gives it to the engine in its own
parameter style. What differs between the engines besides that is named here (``for_update``), so the
SQL of the store and the evidence log stays one text. Schemas are versioned migrations: plain SQL files
``migrations/<component>/<NNN>_<name>.<engine>.sql``, applied in order and noted in ``schema_version``.

An engine that cannot be reached (a PostgreSQL restart) raises ``StorageUnavailable``; the gateway then
answers as an overloaded CGW (TRN-08). The next call reconnects.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from importlib import resources
from pathlib import Path
from typing import Any, Iterator

SQLITE, POSTGRESQL = "sqlite", "postgresql"
_MIGRATION = re.compile(r"(\d{3})_[a-z0-9_]+\.(sqlite|postgresql)\.sql")
_MIGRATION_LOCK = 0x45434449                  # "ECDI": one process migrates at a time


class StorageUnavailable(Exception):
    """The database could not be reached or failed (not a constraint of ours: those are errors)."""


class AlreadyRecorded(Exception):
    """A row another process (or thread) committed first under the same key (a messageId)."""


def is_url(target: Any) -> bool:
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


def describe(target: Any) -> str:
    """Where a database is, for messages: a URL without its password."""
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", str(target)) if is_url(target) else str(target)


def connect(target: str | Path, *, component: str, synchronous: str = "NORMAL") -> "Database":
    """A connection to ``target`` (a path: SQLite; a URL: PostgreSQL) with ``component``'s schema in place;
    ``synchronous`` NORMAL: a commit survives the process being killed, not the machine (FULL: both)."""
    db = PostgresDatabase(str(target), synchronous=synchronous == "FULL") if is_url(target) \
        else SqliteDatabase(Path(target), synchronous)
    db.migrate(component)
    return db


class Database:
    """What the store, the payments and the evidence log need of an engine."""

    engine: str
    for_update = ""                   # appended to a SELECT that must lock its rows until the transaction ends

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._depth = 0

    # -- to implement ---------------------------------------------------------------------------
    def _run(self, sql: str, args: tuple):
        raise NotImplementedError

    def _begin(self) -> None:
        raise NotImplementedError

    def _end(self, commit: bool) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    # -- common ---------------------------------------------------------------------------------
    def execute(self, sql: str, args: tuple | list = ()):
        """Run one statement; returns a cursor (``fetchone``, ``fetchall``, ``rowcount``, iteration)."""
        return self._run(sql, tuple(args))

    def transaction(self) -> "Transaction":
        """A re-entrant write transaction under this connection's lock: commits or rolls back as one."""
        return Transaction(self)

    def migrate(self, component: str) -> None:
        """Apply ``component``'s migrations this database has not seen, in order, each in a transaction."""
        with self.transaction():
            self._lock_migrations()
            self.execute("CREATE TABLE IF NOT EXISTS schema_version (component TEXT NOT NULL, version INTEGER NOT NULL,"
                         " name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (component, version))")
            done = {v for (v,) in self.execute("SELECT version FROM schema_version WHERE component = ?", (component,))}
            for version, name, sql in migrations(component, self.engine):
                if version in done:
                    continue
                self._script(sql)
                self.execute("INSERT INTO schema_version VALUES (?, ?, ?, ?)", (component, version, name, time.time()))

    def schema_version(self, component: str) -> int:
        row = self.execute("SELECT MAX(version) FROM schema_version WHERE component = ?", (component,)).fetchone()
        return row[0] or 0

    def _lock_migrations(self) -> None:
        pass

    def _script(self, sql: str) -> None:
        raise NotImplementedError


class Transaction:
    """BEGIN … COMMIT (ROLLBACK on error) under the database's lock; an inner one joins the outer."""

    def __init__(self, db: Database):
        self._db = db

    def __enter__(self) -> Database:
        self._db._lock.acquire()
        try:
            if self._db._depth == 0:
                self._db._begin()
        except BaseException:
            self._db._lock.release()
            raise
        self._db._depth += 1
        return self._db

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self._db._depth -= 1
            if self._db._depth == 0:
                self._db._end(commit=exc_type is None)
        finally:
            self._db._lock.release()


def migrations(component: str, engine: str) -> list[tuple[int, str, str]]:
    """``(version, file name, SQL)`` of ``component`` for ``engine``, by version."""
    folder = resources.files("mock_server") / "migrations" / component
    found = []
    for item in folder.iterdir():
        match = _MIGRATION.fullmatch(item.name)
        if match and match.group(2) == engine:
            found.append((int(match.group(1)), item.name, item.read_text(encoding="utf-8")))
    return sorted(found)


class SqliteDatabase(Database):
    engine = SQLITE

    def __init__(self, path: Path, synchronous: str = "NORMAL", *, timeout: float = 5.0, readonly: bool = False):
        super().__init__()
        self.path = Path(path)
        target = f"file:{self.path}?mode=ro" if readonly else str(self.path)
        self._db = sqlite3.connect(target, uri=readonly, check_same_thread=False, isolation_level=None, timeout=timeout)
        if not readonly:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={synchronous}")

    @property
    def connection(self) -> sqlite3.Connection:
        return self._db

    def _run(self, sql: str, args: tuple):
        try:
            return self._db.execute(sql, args)
        except sqlite3.IntegrityError as exc:
            if "UNIQUE" in str(exc) or "PRIMARY KEY" in str(exc):
                raise AlreadyRecorded(str(exc)) from exc
            raise

    def _begin(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def _end(self, commit: bool) -> None:
        if not self._db.in_transaction:
            return
        try:
            self._db.execute("COMMIT" if commit else "ROLLBACK")
        except sqlite3.Error:
            if self._db.in_transaction:        # a failed COMMIT (busy, disk) leaves nothing half-open
                self._db.execute("ROLLBACK")
            raise

    def _script(self, sql: str) -> None:
        # executescript would commit the migration's transaction: run its statements one by one
        for statement in _statements(sql):
            self._db.execute(statement)

    def close(self) -> None:
        self._db.close()


class PostgresDatabase(Database):
    """One psycopg connection (autocommit; transactions explicit), reopened after a failure."""

    engine = POSTGRESQL
    for_update = " FOR UPDATE"

    def __init__(self, url: str, *, connect_timeout: float = 3.0, statement_timeout: float | None = None,
                 application_name: str = "ecdi-gateway", synchronous: bool = True, lock_timeout: float | None = None):
        super().__init__()
        self.url = url
        self._connect_timeout = connect_timeout
        self._statement_timeout = statement_timeout
        # False: a commit returns before the server's WAL reaches the disk (it survives the gateway process being
        # killed, not the database server crashing): SQLite's "synchronous NORMAL" for the state, on the event loop
        self._synchronous = synchronous
        self._lock_timeout = lock_timeout
        self._application_name = application_name
        self._conn = None
        self._closed = False
        self._connection()

    def _connection(self):
        import psycopg

        if self._conn is None or self._conn.closed:
            if self._closed:
                raise StorageUnavailable("the database connection is closed")
            try:
                options = f"-c statement_timeout={int(self._statement_timeout * 1000)}" if self._statement_timeout else ""
                options += "" if self._synchronous else " -c synchronous_commit=off"
                options += f" -c lock_timeout={int(self._lock_timeout * 1000)}" if self._lock_timeout else ""
                self._conn = psycopg.connect(self.url, autocommit=True, connect_timeout=max(1, round(self._connect_timeout)),
                                             application_name=self._application_name, options=options)
            except psycopg.Error as exc:
                raise StorageUnavailable(f"cannot reach {describe(self.url)} ({_first_line(exc)})") from exc
        return self._conn

    def _run(self, sql: str, args: tuple):
        import psycopg

        conn = self._connection()
        try:
            return conn.execute(_pg_sql(sql), args or None)     # prepared once used often (psycopg's default)
        except psycopg.errors.UniqueViolation as exc:
            raise AlreadyRecorded(_first_line(exc)) from exc
        except (psycopg.OperationalError, psycopg.errors.QueryCanceled, psycopg.errors.LockNotAvailable) as exc:
            if conn.closed or conn.broken:
                self._conn = None
            raise StorageUnavailable(f"{describe(self.url)}: {_first_line(exc)}") from exc
        except psycopg.InterfaceError as exc:
            self._conn = None
            raise StorageUnavailable(f"{describe(self.url)}: {_first_line(exc)}") from exc

    def _begin(self) -> None:
        self._run("BEGIN", ())

    def _end(self, commit: bool) -> None:
        conn = self._conn
        if conn is None or conn.closed:
            if commit:
                raise StorageUnavailable(f"{describe(self.url)}: the connection was lost before the commit")
            return
        if conn.info.transaction_status == 0 and not commit:     # idle: nothing to roll back
            return
        try:
            self._run("COMMIT" if commit else "ROLLBACK", ())
        except StorageUnavailable:
            if commit:
                raise

    def _lock_migrations(self) -> None:
        self.execute("SELECT pg_advisory_xact_lock(?)", (_MIGRATION_LOCK,))

    def _script(self, sql: str) -> None:
        for statement in _statements(sql):
            self._connection().execute(statement.encode("utf-8"), prepare=False)   # bytes: no placeholders

    def close(self) -> None:
        self._closed = True
        if self._conn is not None:
            self._conn.close()


def _pg_sql(sql: str) -> str:
    """``?`` placeholders as psycopg's ``%s`` (our SQL has no ``%`` and no ``?`` in literals)."""
    return sql.replace("%", "%%").replace("?", "%s")


def _statements(script: str) -> Iterator[str]:
    """The statements of a migration file: split on ``;`` at a line end, except inside ``$$`` bodies."""
    current: list[str] = []
    in_body = False
    for line in script.splitlines():
        stripped = line.split("--", 1)[0].rstrip() if not in_body else line.rstrip()
        if line.count("$$") % 2:
            in_body = not in_body
        current.append(line)
        if not in_body and stripped.endswith(";"):
            statement = "\n".join(current).strip()
            if statement.rstrip(";").strip():
                yield statement
            current = []
    rest = "\n".join(current).strip()
    if rest and not all(part.strip().startswith("--") or not part.strip() for part in rest.splitlines()):
        yield rest


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
