"""Engine, declarative Base, typed column helpers and the per-request session.

One transaction per request or job: services ``flush()``; the session
dependency commits when the endpoint returns and rolls back on any error.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Annotated, Any

import anyio
import anyio.to_thread
from sqlalchemy import BigInteger, DateTime, Enum, Integer, MetaData, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Session, mapped_column, sessionmaker
from sqlalchemy.types import TypeDecorator

from openvisit.errors import Busy, DomainError
from openvisit.private_files import private_file

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes in and out, on PostgreSQL and on SQLite alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dt.datetime: UTCDateTime()}


# BigInteger on PostgreSQL, INTEGER on SQLite (so it stays the rowid alias).
BigId = BigInteger().with_variant(Integer(), "sqlite")
intpk = Annotated[int, mapped_column(BigId, primary_key=True, autoincrement=True)]


def enum_column(enum_cls: type[enum.Enum], **kw: Any) -> Any:
    """A string column holding an enum's values, checked by the database."""

    return mapped_column(
        Enum(
            enum_cls,
            native_enum=False,
            length=32,
            values_callable=lambda e: [m.value for m in e],
            validate_strings=True,
            create_constraint=True,
            name=enum_cls.__name__.lower(),
        ),
        **kw,
    )


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL (None for an in-memory database)."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite"):
        return None
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return Path(database)


def make_engine(
    url: str,
    *,
    wait_seconds: float = 30.0,
    statement_seconds: float = 0.0,
    bounded_locks: bool = False,
    **kw: Any,
) -> Engine:
    """An engine. ``wait_seconds`` bounds SQLite's busy wait and, with ``bounded_locks``,
    PostgreSQL's row-lock wait (``lock_timeout``) and the wait for a pooled connection;
    ``statement_seconds`` (PostgreSQL, 0: none) cancels a statement running longer.
    The server bounds them all (app.create_app); the CLI and migrations don't."""
    if url.startswith("sqlite"):
        path = sqlite_file(url)
        if path is not None:
            # The database holds everyone's personal data: 0600 in a 0700 directory,
            # created so before SQLite makes it (its -wal and -shm files copy the mode).
            private_file(path)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": wait_seconds}, **kw
        )
        _sqlite_setup(engine, busy_ms=int(wait_seconds * 1000))
        return engine
    options = []
    if bounded_locks:
        options.append(f"-c lock_timeout={int(wait_seconds * 1000)}")
    if statement_seconds:
        options.append(f"-c statement_timeout={int(statement_seconds * 1000)}")
    connect_args = {"options": " ".join(options)} if options else {}
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args, **kw)


def _sqlite_setup(engine: Engine, busy_ms: int) -> None:
    """Foreign keys on, WAL, and every transaction a writer from its start.

    SQLite allows one writer; starting each transaction with BEGIN IMMEDIATE
    means a check made inside a transaction still holds when it writes (the
    SQLite half of "no double booking"), instead of failing at commit.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={busy_ms}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_sessionmaker(bind: Any, **kw: Any) -> sessionmaker[Session]:
    return sessionmaker(bind=bind, expire_on_commit=False, autoflush=True, **kw)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: a request, a worker job, a signaling event.

    Commits if the body returns; rolls back if it raises, except for a
    ``DomainError`` with ``keep_changes`` (a failed sign-in must be counted), whose
    changes are committed before the error goes on.
    """
    session = factory()
    try:
        yield session
        session.commit()
    except DomainError as exc:
        if exc.keep_changes:
            session.commit()
        else:
            session.rollback()
        raise
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


# SQLSTATEs of a bounded wait that ran out, or of a transaction the database gave up on
# to let another go on: lock_not_available (lock_timeout), query_canceled
# (statement_timeout), deadlock_detected, serialization_failure.
_BUSY_SQLSTATES = {"55P03", "57014", "40P01", "40001"}


def is_busy(exc: BaseException) -> bool:
    """Whether ``exc`` says "the database was busy" rather than "something is wrong":
    no pooled connection in time, a lock or statement timeout, a deadlock victim, or
    SQLite's "database is locked". Such a request may simply be tried again."""
    if isinstance(exc, sa_exc.TimeoutError):
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        sqlstate = getattr(exc.orig, "sqlstate", None)
        if sqlstate in _BUSY_SQLSTATES:
            return True
        text = str(exc.orig).lower()
        return isinstance(exc, sa_exc.OperationalError) and (
            "database is locked" in text or "database is busy" in text
        )
    return False


class RequestGate:
    """At most ``slots`` requests work in the database at once; the others wait their
    turn in the event loop, holding neither a thread nor a connection, for at most
    ``wait_seconds`` (then: ``Busy``, 503).

    Why: FastAPI runs each sync dependency and the endpoint as a separate hop onto
    AnyIO's thread pool. A request that has checked out a connection gives its thread
    back between hops ("idle in transaction"), and threads taken by newer requests then
    block on the empty pool, so above ~40 concurrent requests threads and connections
    waited on each other until the pool's 30 s timeout (issue 11). With the gate sized
    to the pool, every request that holds a turn gets a connection at once, and
    ``worker_threads >= db_pool_size`` means it always finds a thread to go on.

    One semaphore per event loop (a server has one; tests may run an app in two).
    """

    def __init__(self, slots: int, wait_seconds: float) -> None:
        self.slots = slots
        self.wait_seconds = wait_seconds
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )

    def _semaphore(self) -> anyio.Semaphore:
        loop = asyncio.get_running_loop()
        found = self._by_loop.get(loop)
        if found is None:
            found = self._by_loop[loop] = anyio.Semaphore(self.slots)
        return found

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        semaphore = self._semaphore()
        acquired = False
        with anyio.move_on_after(self.wait_seconds):
            await semaphore.acquire()
            acquired = True
        if not acquired:
            raise Busy()
        try:
            yield
        finally:
            semaphore.release()


def _finish(session: Session, commit: bool) -> None:
    try:
        if commit:
            session.commit()
        else:
            session.rollback()
    finally:
        session.close()


async def _in_thread(fn: Callable[..., None], *args: Any) -> None:
    # Shielded: a transaction is always ended, even by a request being cancelled.
    with anyio.CancelScope(shield=True):
        await anyio.to_thread.run_sync(fn, *args)


@asynccontextmanager
async def request_transaction(
    factory: sessionmaker[Session], gate: RequestGate
) -> AsyncIterator[Session]:
    """``transaction`` for a request, inside a turn of ``gate``: commits if the request
    returns, rolls back if it raises (committing a ``keep_changes`` DomainError's changes
    first), and answers ``Busy`` for a wait that ran out (``is_busy``), never a 500.
    The session connects lazily, in the thread of the first hop that uses it."""
    async with gate.turn():
        session = factory()
        try:
            yield session
        except BaseException as exc:
            keep = isinstance(exc, DomainError) and exc.keep_changes
            await _in_thread(_finish, session, keep)
            if is_busy(exc):
                raise Busy() from exc
            raise
        if not session.in_transaction():
            session.close()  # never touched the database: nothing to end
            return
        try:
            await _in_thread(_finish, session, True)
        except Exception as exc:
            if is_busy(exc):
                raise Busy() from exc
            raise
