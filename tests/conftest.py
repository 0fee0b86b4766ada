"""Test fixtures: a throwaway PostGIS database per session and a live HTTP server."""

import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
import uvicorn
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from portal.api.app import create_app
from portal.core.database import create_db_engine, make_session_factory
from portal.core.settings import DEFAULT_DATABASE_URL, Settings, to_libpq_url
from portal.migrations import runner


def _server_url() -> str:
    return to_libpq_url(os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL))


def _with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """Create a throwaway database, migrate it to head, and drop it afterwards."""
    name = f"portal_test_{secrets.token_hex(4)}"
    maintenance = _with_database(_server_url(), "postgres")
    with psycopg.connect(maintenance, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    url = _with_database(_server_url(), name)
    try:
        runner.upgrade(url)
        yield url
    finally:
        with psycopg.connect(maintenance, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings pointing at the throwaway database."""
    return Settings(
        env="test",
        database_url=database_url,
        data_dir=tmp_path_factory.mktemp("data"),
    )


@pytest.fixture(scope="session")
def engine(settings: Settings) -> Iterator[Engine]:
    """The engine of the throwaway database."""
    engine = create_db_engine(settings)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def sessions(engine: Engine) -> sessionmaker[Session]:
    """A session factory for the throwaway database."""
    return make_session_factory(engine)


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory: pytest.TempPathFactory, settings: Settings) -> Path:
    """The demo city's file drop at scale 1, generated once per session."""
    from portal.demo.generator import generate_demo_city

    root = tmp_path_factory.mktemp("demo")
    generate_demo_city(root, scale=1, municipality_code=settings.municipality_code)
    return root


@pytest.fixture(scope="session")
def demo_city(engine: Engine, sessions: sessionmaker[Session], demo_root: Path, settings: Settings):  # type: ignore[no-untyped-def]
    """The demo city loaded into the throwaway database, with its catalog published."""
    from portal.core.database import session_scope
    from portal.core.storage import LocalStorage
    from portal.demo.catalog import publish_demo_catalog
    from portal.demo.load import load_demo_city

    loads = load_demo_city(
        engine, sessions, demo_root, municipality_code=settings.municipality_code
    )
    with session_scope(sessions) as session:
        publish_demo_catalog(
            session,
            LocalStorage(settings.data_dir),
            demo_root,
            municipality_code=settings.municipality_code,
            max_bytes=settings.max_upload_bytes,
        )
    return loads


def free_port() -> int:
    """Return a TCP port that is free on 127.0.0.1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LiveServer:
    """A real uvicorn server in a thread."""

    def __init__(self, settings: Settings) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_app(settings),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            ws="none",
            lifespan="on",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "LiveServer":
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="session")
def live_server(settings: Settings) -> Iterator[LiveServer]:
    """The portal served over real HTTP on a free port."""
    with LiveServer(settings) as server:
        yield server


@pytest.fixture
def http(live_server: LiveServer) -> Iterator[httpx.Client]:
    """An HTTP client for the live server."""
    with httpx.Client(base_url=live_server.url, timeout=30) as client:
        yield client
