"""Database locks for work that may run twice at once (cron overlap, two replicas, two people).

Two kinds, one fixed key per name (a stable 64-bit hash of the name and, on PostgreSQL, of the
schema the tables live in — the same in every process):

* :func:`job_lock` — held for a ``with`` block that spans many transactions (the daily job, a
  rollup, a notice run). PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``) on a
  connection of its own, so the job's own transactions never wait on it. SQLite: an exclusive
  ``flock`` on a lock file beside the database file (``<db>.<name>.lock``, removed by its holder
  when done); its write lock cannot be held across the job's own transactions. Either way the
  lock goes with its holder: a job killed with ``kill -9`` leaves nothing to clean up (the server
  drops the connection's locks, the kernel the file's, and the next holder removes the file). An
  in-memory SQLite database is only reachable from this process: a lock of
  the process stands in.
* :func:`xact_lock` — held until the current transaction ends (publishing a report, an
  auto-approval that counts earlier ones). PostgreSQL: ``pg_advisory_xact_lock``; SQLite: the
  database's write lock, taken at once with a write that changes nothing, so everything the
  transaction reads afterwards is what the previous holder committed.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

_POLL_S = 0.05
_LOCAL: dict[tuple[str, str], threading.Lock] = {}
_LOCAL_GUARD = threading.Lock()


def lock_key(name: str, schema: str = "") -> int:
    """The fixed advisory-lock key of ``name`` in ``schema`` (signed 64-bit, as PostgreSQL takes it).

    Advisory locks belong to the whole database, so the schema the portal's tables live in is part
    of the key: two deployments (or test sessions) in different schemas of one database never
    block each other."""
    text_ = f"{schema}:{name}".encode("utf-8")
    return int.from_bytes(hashlib.blake2b(text_, digest_size=8).digest(), "big", signed=True)


def _engine(target: Engine | sessionmaker[Session]) -> Engine:
    if isinstance(target, Engine):
        return target
    bind = target.kw.get("bind")
    if not isinstance(bind, Engine):
        raise TypeError("job_lock needs an engine or a session factory bound to one")
    return bind


def _deadline(wait: bool | float) -> float | None:
    """When to stop trying: now (False), never (True), or after ``wait`` seconds."""
    if wait is True:
        return None
    if wait is False:
        return time.monotonic()
    return time.monotonic() + float(wait)


def _retry(deadline: float | None) -> bool:
    if deadline is not None and time.monotonic() >= deadline:
        return False
    time.sleep(_POLL_S)
    return True


@contextmanager
def job_lock(target: Engine | sessionmaker[Session], name: str, *, wait: bool | float = False) -> Iterator[bool]:
    """Hold the lock ``name`` for the block; yields True when this run holds it, False when
    another run does (after waiting: not at all with ``wait=False``, until it is free with
    ``True``, or at most ``wait`` seconds)."""
    engine = _engine(target)
    backend = engine.url.get_backend_name()
    if backend == "postgresql":
        with _pg_lock(engine, name, wait) as held:
            yield held
    elif backend == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        with _file_lock(Path(engine.url.database), name, wait) as held:
            yield held
    else:
        with _local_lock(engine.url.render_as_string(hide_password=True), name, wait) as held:
            yield held


@contextmanager
def _pg_lock(engine: Engine, name: str, wait: bool | float) -> Iterator[bool]:
    conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    held = False
    try:
        key = lock_key(name, conn.execute(text("SELECT current_schema()")).scalar() or "")
        deadline = _deadline(wait)
        while True:
            held = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
            if held or not _retry(deadline):
                break
        yield held
    finally:
        if held:
            try:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            except Exception:  # noqa: BLE001 - a dead connection has dropped its locks already
                conn.invalidate()
        conn.close()


def lock_file(database: Path, name: str) -> Path:
    """The lock file of ``name`` beside a SQLite database file."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
    return database.with_name(f"{database.name}.{safe}.lock")


@contextmanager
def _file_lock(database: Path, name: str, wait: bool | float) -> Iterator[bool]:
    """An exclusive ``flock`` on the lock file of ``name``, which its holder removes on release (a
    rollup per day would otherwise leave a file per day). A waiter that then gets the lock holds the
    removed file: it sees that the path no longer names what it locked, and opens the path again."""
    import fcntl
    import os

    path = lock_file(database, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = _deadline(wait)
    while True:
        fh = path.open("a+b")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            if _retry(deadline):
                continue
            yield False
            return
        try:
            current = os.stat(path).st_ino == os.fstat(fh.fileno()).st_ino
        except FileNotFoundError:
            current = False
        if current:
            break
        fh.close()  # released and removed by the holder before us: lock the path's new file
    try:
        yield True
    finally:
        path.unlink(missing_ok=True)  # while still holding it, so nobody locks a file on its way out
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        fh.close()


@contextmanager
def _local_lock(url: str, name: str, wait: bool | float) -> Iterator[bool]:
    with _LOCAL_GUARD:
        lock = _LOCAL.setdefault((url, name), threading.Lock())
    if wait is True:
        held = lock.acquire()
    else:
        held = lock.acquire(timeout=float(wait)) if wait is not False and float(wait) > 0 else lock.acquire(False)
    try:
        yield held
    finally:
        if held:
            lock.release()


def xact_lock(session: Session, name: str) -> None:
    """Hold the lock ``name`` until ``session``'s transaction ends, waiting for a holder to finish
    (SQLite: the whole database's write lock, within its busy timeout)."""
    backend = session.get_bind().dialect.name
    if backend == "postgresql":
        schema = session.execute(text("SELECT current_schema()")).scalar() or ""
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_key(name, schema)})
    elif backend == "sqlite":
        # pysqlite opens the transaction before a write; a write takes the database's write lock
        # even when it changes no row
        session.execute(text("UPDATE alembic_version SET version_num = version_num WHERE 1 = 0"))
