"""Test fixtures: a throwaway PostGIS database per session and a live HTTP server."""

import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

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

if TYPE_CHECKING:
    from portal.demo.harvest import DemoHarvest


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
    """The demo city's file drop at scale 1 with its sidecars, generated once per session."""
    from portal.demo.generator import generate_demo_city

    root = tmp_path_factory.mktemp("demo")
    generate_demo_city(root, scale=1, municipality_code=settings.municipality_code, sidecars=True)
    return root


@pytest.fixture(scope="session")
def demo_city(
    sessions: sessionmaker[Session], demo_root: Path, settings: Settings
) -> "list[DemoHarvest]":
    """The demo city harvested into the throwaway database, one folder source per department."""
    from portal.demo.harvest import harvest_demo_city

    harvests = harvest_demo_city(settings, sessions, demo_root)
    failed = [(h.source, h.error, [o.message for o in h.objects]) for h in harvests]
    assert all(h.succeeded for h in harvests), failed
    return harvests


def free_port() -> int:
    """Return a TCP port that is free on 127.0.0.1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RequestLog:
    """ASGI wrapper that remembers every request line the server received."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.lines: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            query = scope.get("query_string", b"").decode("latin-1")
            self.lines.append(f"{scope['method']} {scope['path']}" + (f"?{query}" if query else ""))
        await self.app(scope, receive, send)

    def since(self, mark: int) -> list[str]:
        """Return the request lines received after `mark` (a previous `len(lines)`)."""
        return [unquote_plus(line) for line in self.lines[mark:]]


class LiveServer:
    """A real uvicorn server in a thread; `requests` logs what it received."""

    def __init__(self, settings: Settings) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.requests = RequestLog(create_app(settings))
        config = uvicorn.Config(
            self.requests,
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
