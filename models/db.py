"""Engine and sessions, shared by the web app, the jobs and the CLI.

Jobs are enqueued *after* the transaction that wrote their rows commits:
code calls ``defer_job(session, ...)`` and the session's ``after_commit``
hook hands them to the queue. A rollback drops them.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from .jobs import JobName

PENDING_JOBS = "buurtlijn.pending_jobs"

# (the job: a models.jobs.JobName or a registered job function, its arguments, the queue's options)
JobSpec = tuple[Any, tuple[Any, ...], dict[str, Any]]


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()


class Database:
    """One per app. Re-creates its engine after a fork (gunicorn, RQ work horses)."""

    def __init__(self, url: str, *, on_commit_jobs: Callable[[list[JobSpec]], None] | None = None,
                 pool_size: int = 16, max_overflow: int = 4,
                 session_hooks: Sequence[Callable[[sessionmaker[Session]], None]] = ()):
        self.url = url
        # The engine's pool on PostgreSQL: connections kept, and how many more a burst may open. Besides
        # these, each thread that takes the fast path holds its own autocommit connection(s).
        self.pool_size, self.max_overflow = pool_size, max_overflow
        self.on_commit_jobs = on_commit_jobs
        # Each is given the session factory when it is made (models.events.watch: events with every change).
        self.session_hooks = tuple(session_hooks)
        from .events import watch  # here, not at the top: models.events imports this module

        # Every change to a listing or match writes an event (read by the phone menu's steps: kept, not computed).
        self.records_events = watch in self.session_hooks
        self._engine: Engine | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()
        self._factory: sessionmaker[Session] | None = None
        self._hot = threading.local()
        self._hot_connections: list[Any] = []  # every thread's, so dispose() closes them all
        self.extensions: dict[str, Any] = {}  # per-process helpers of other modules (models.inbox)

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    @property
    def is_postgresql(self) -> bool:
        return self.url.startswith("postgresql")

    def libpq_url(self) -> str:
        """The URL as libpq (psycopg itself) takes it."""
        return self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)

    def autocommit_row(self, sql: str, params: Sequence[Any] | dict[str, Any], *,
                       durable: bool = True) -> tuple[Any, ...] | None:
        """Run one statement as its own transaction and return its first row (PostgreSQL).

        The webhooks' fast path: a per-thread psycopg connection in
        autocommit mode with a prepared statement is one round trip, where
        a pooled ORM session takes four (ping, BEGIN, statement, COMMIT).
        A connection found dropped (a PostgreSQL restart) is replaced once.

        ``durable=False`` commits without waiting for the disk
        (``synchronous_commit off``): only for writes whose loss in a server
        crash is repaired anyway, such as recording what Twilio already took.
        """
        import psycopg

        try:
            return self._hot_cursor(durable).execute(sql, params, prepare=True).fetchone()
        except psycopg.OperationalError:
            self._drop_hot_connection(durable)
            return self._hot_cursor(durable).execute(sql, params, prepare=True).fetchone()

    def _drop_hot_connection(self, durable: bool) -> None:
        broken = self._thread_connections().pop(durable, None)
        if broken is not None:
            broken[0].close()

    def _thread_connections(self) -> dict[bool, tuple[Any, Any]]:
        """This thread's autocommit connections (with a cursor each), durable and not; none inherited through a fork."""
        if getattr(self._hot, "pid", None) != os.getpid():
            self._hot.connections, self._hot.pid = {}, os.getpid()
        return self._hot.connections  # type: ignore[no-any-return]

    def _hot_cursor(self, durable: bool = True) -> Any:
        """This thread's cursor on its autocommit connection: kept, as a new one per statement is pure cost."""
        import psycopg

        connections = self._thread_connections()
        found = connections.get(durable)
        if found is None or found[0].closed:
            options = {} if durable else {"options": "-c synchronous_commit=off"}
            connection = psycopg.connect(self.libpq_url(), autocommit=True, **options)
            found = connections[durable] = (connection, connection.cursor())
            with self._lock:
                self._hot_connections = [c for c in self._hot_connections if not c.closed] + [connection]
        return found[1]

    @property
    def engine(self) -> Engine:
        if self._engine is None or self._pid != os.getpid():
            with self._lock:
                if self._engine is None or self._pid != os.getpid():
                    if self._engine is not None:
                        # Inherited from the parent: drop its pool without closing
                        # the parent's sockets.
                        self._engine.dispose(close=False)
                    self._engine = self._make_engine()
                    self._pid = os.getpid()
                    self._factory = sessionmaker(self._engine, expire_on_commit=False)
                    event.listen(self._factory, "after_commit", self._after_commit)
                    event.listen(self._factory, "after_soft_rollback", self._after_rollback)
                    for hook in self.session_hooks:
                        hook(self._factory)
        return self._engine

    def _make_engine(self) -> Engine:
        if self.is_sqlite:
            engine = create_engine(self.url, connect_args={"timeout": 10})
            _configure_sqlite(engine)
            return engine
        return create_engine(self.url, pool_pre_ping=True, pool_size=self.pool_size, max_overflow=self.max_overflow)

    def session(self) -> Session:
        self.engine  # noqa: B018 - makes sure the factory exists for this process
        assert self._factory is not None
        return self._factory()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session that commits at the end of the block, or rolls back."""
        session = self.session()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def _after_commit(self, session: Session) -> None:
        jobs = session.info.pop(PENDING_JOBS, None)
        if jobs and self.on_commit_jobs is not None:
            self.on_commit_jobs(jobs)

    @staticmethod
    def _after_rollback(session: Session, previous_transaction: Any) -> None:
        if previous_transaction.parent is None:
            session.info.pop(PENDING_JOBS, None)

    def dispose(self) -> None:
        with self._lock:
            hot, self._hot_connections = self._hot_connections, []
        for connection in hot:
            connection.close()
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


def defer_job(session: Session, job: JobName, *args: Any, job_id: str | None = None, **options: Any) -> None:
    """Enqueue ``job(*args)`` once this session's transaction commits.

    ``job`` is one of the names in models/jobs.py; arguments are ids and
    plain values (the queue serialises JSON, never pickle).
    """
    if job_id is not None:
        options["job_id"] = job_id
    session.info.setdefault(PENDING_JOBS, []).append((job, args, options))
