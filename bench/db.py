"""A throwaway benchmark database on the server named by DATABASE_URL, migrated to head."""

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from portal.core.settings import DEFAULT_DATABASE_URL, to_libpq_url
from portal.migrations import runner

DATABASE_PREFIX = "portal_bench_"


def server_url() -> str:
    """Return the libpq URL of the server to benchmark on (DATABASE_URL or the default)."""
    return to_libpq_url(os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL))


def with_database(url: str, name: str) -> str:
    """Return `url` pointing at database `name` instead of its own."""
    return urlsplit(url)._replace(path="/" + name).geturl()


def keyword_conninfo(url: str) -> str:
    """Return `url` as a key=value connection string (what GDAL's `PG:` prefix expects)."""
    return make_conninfo("", **{k: v for k, v in conninfo_to_dict(url).items() if v is not None})


@contextmanager
def bench_database(base_url: str | None = None) -> Iterator[str]:
    """Create `portal_bench_<hex>`, migrate it to head, yield its URL, and drop it afterwards."""
    url = base_url or server_url()
    name = DATABASE_PREFIX + secrets.token_hex(4)
    maintenance = with_database(url, "postgres")
    with psycopg.connect(maintenance, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    database_url = with_database(url, name)
    try:
        runner.upgrade(database_url)
        yield database_url
    finally:
        with psycopg.connect(maintenance, autocommit=True) as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
