"""Read-only psycopg connection pools for the feature APIs, one per database URL.

Item pages run one statement each, so their connections are in autocommit mode, refuse writes,
stop a statement after `STATEMENT_TIMEOUT_MS`, and run without JIT or parallel workers.
"""

import atexit
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool
from sqlalchemy import Engine

STATEMENT_TIMEOUT_MS = 30_000
CONNECT_TIMEOUT_S = 10
_pools: dict[tuple[int, str], ConnectionPool[Any]] = {}
_lock = threading.Lock()


def read_pool(engine: Engine) -> ConnectionPool[Any]:
    """Return the read-only pool of the engine's database, creating it on first use."""
    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    key = (os.getpid(), url)
    pool = _pools.get(key)
    if pool is not None:
        return pool
    with _lock:
        if key not in _pools:
            size = getattr(engine.pool, "size", lambda: 5)()
            _pools[key] = ConnectionPool(
                url,
                min_size=1,
                max_size=max(2, size),
                kwargs={
                    "autocommit": True,
                    "connect_timeout": CONNECT_TIMEOUT_S,
                    "application_name": "portal-features",
                    "options": (
                        "-c default_transaction_read_only=on "
                        f"-c statement_timeout={STATEMENT_TIMEOUT_MS} -c TimeZone=UTC "
                        # JIT compiles for 100s of ms and Gather Merge of whole rows is
                        # slower than one process for a page; both hurt latency here.
                        "-c jit=off -c max_parallel_workers_per_gather=0"
                    ),
                },
                name="portal-features",
                open=True,
            )
        return _pools[key]


@contextmanager
def read_connection(engine: Engine) -> Iterator[psycopg.Connection[Any]]:
    """Lend a read-only autocommit connection from the engine's pool."""
    with read_pool(engine).connection() as connection:
        yield connection


def close_pools() -> None:
    """Close every pool of this process (at shutdown, or after a test database is dropped)."""
    with _lock:
        for key in [k for k in _pools if k[0] == os.getpid()]:
            _pools.pop(key).close()


atexit.register(close_pools)
