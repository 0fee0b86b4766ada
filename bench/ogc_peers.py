"""The roads bench database and the OGC API servers (ours, pygeoapi, tipg) the OGC benchmarks use.

Each server runs as a subprocess on a free port of 127.0.0.1 in its own process group, and is
stopped with it. A server that cannot start does not stop the run: asking for its client raises
`ServerUnavailable` with the reason, so its contender is reported as FAILED and the others run.
"""

import importlib.util
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml
from psycopg.conninfo import conninfo_to_dict

from bench.bench_load import LAYER_ID, demo_roads, register_layer
from bench.db import bench_database
from bench.harness import ContenderResult
from portal.core.database import create_db_engine
from portal.core.settings import Settings
from portal.geo.loader import load_layer_from_file

OURS = "ours"
PYGEOAPI = "pygeoapi"
TIPG = "tipg"
HOST = "127.0.0.1"
START_SECONDS = 90.0
REQUEST_SECONDS = 120.0
TIPG_COLLECTION = f"layers.{LAYER_ID}"
# Every contender sends the same request headers and is read uncompressed, like the raw baseline.
HEADERS = {"Accept-Encoding": "identity"}
BIN = Path(sys.executable).parent


class ServerUnavailable(RuntimeError):
    """A server did not start or did not answer; its contenders fail with this message."""


@dataclass(frozen=True)
class RoadsDatabase:
    """A bench database with the demo road ledger loaded by our loader as the public `roads`."""

    url: str
    features: int


@contextmanager
def roads_database(scale: int, log: Callable[[str], None]) -> Iterator[RoadsDatabase]:
    """Create a bench database with the `--scale` road ledger in `layers.roads`; drop it after."""
    path = demo_roads(scale, log)
    with bench_database() as url:
        log(f"loading {path.name} (scale {scale}) into layers.{LAYER_ID} with our loader")
        engine = create_db_engine(Settings(database_url=url))
        try:
            register_layer(url, engine)
            loaded = load_layer_from_file(engine, layer_id=LAYER_ID, path=path)
        finally:
            engine.dispose()
        yield RoadsDatabase(url, loaded.feature_count)


def free_port() -> int:
    """Return a TCP port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


class Server:
    """A server subprocess on 127.0.0.1, ready once `ready_path` answers 200."""

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        *,
        port: int,
        env: Mapping[str, str],
        workdir: Path,
        ready_path: str,
    ) -> None:
        self.name = name
        self.command = list(command)
        self.port = port
        self.env = {**os.environ, **env}
        self.workdir = workdir
        self.ready_path = ready_path
        self.log_path = workdir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Return the server's base URL."""
        return f"http://{HOST}:{self.port}"

    def start(self) -> None:
        """Start the process without waiting for it to answer."""
        with self.log_path.open("wb") as log_file:
            self.process = subprocess.Popen(
                self.command,
                cwd=self.workdir,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float = START_SECONDS) -> None:
        """Wait until `ready_path` answers 200; raise ServerUnavailable with the log if not."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                raise ServerUnavailable(f"{self.name} exited with {code}: {self.log_tail()}")
            try:
                answer = httpx.get(self.url + self.ready_path, timeout=5)
                if answer.status_code == 200:
                    return
                last = f"{answer.status_code} {answer.text[:200]}"
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}"
            time.sleep(0.1)
        raise ServerUnavailable(
            f"{self.name} did not answer GET {self.ready_path} within {timeout:.0f} s "
            f"(last: {last}): {self.log_tail()}"
        )

    def log_tail(self, lines: int = 6) -> str:
        """Return the last lines of the server's output, for error messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no output)"
        return " | ".join(text.strip().splitlines()[-lines:]) or "(no output)"

    def stop(self) -> None:
        """Stop the server's process group: SIGTERM, then SIGKILL after 10 s."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def ours_server(roads: RoadsDatabase, workdir: Path) -> Server:
    """`portal serve` on the bench database, with its data dir (tile cache) in `workdir`."""
    port = free_port()
    command = [sys.executable, "-m", "portal.api.cli", "serve", "--host", HOST, "--port", str(port)]
    data_dir = workdir / "portal-data"
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {"DATABASE_URL": roads.url, "PORTAL_DATA_DIR": str(data_dir)}
    return Server(OURS, command, port=port, env=env, workdir=workdir, ready_path="/healthz")


def tipg_server(roads: RoadsDatabase, workdir: Path) -> Server:
    """tipg (uvicorn tipg.main:app) exposing the view layers.roads with `fid` as its id."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "tipg.main:app", "--host", HOST]
    command += ["--port", str(port), "--log-level", "warning"]
    env = {
        "DATABASE_URL": roads.url,
        "TIPG_DB_SCHEMAS": json.dumps(["layers"]),
        "TIPG_DB_TABLES": json.dumps([TIPG_COLLECTION]),
        f"TIPG_TABLE_CONFIG__layers_{LAYER_ID}__PK": "fid",
        "TIPG_MAX_FEATURES_PER_QUERY": "10000",
        # Like for like: every road in the tile, as ours and ST_AsMVT give (default cap 10,000).
        "TIPG_MAX_FEATURES_PER_TILE": "1000000",
        # The catalog is fixed during the run; no contender rescans the database between requests.
        "TIPG_CATALOG_TTL": "0",
    }
    ready = f"/collections/{TIPG_COLLECTION}"
    return Server(TIPG, command, port=port, env=env, workdir=workdir, ready_path=ready)


def pygeoapi_server(roads: RoadsDatabase, workdir: Path) -> Server:
    """pygeoapi's starlette app with its stock PostgreSQL provider on the view layers.roads."""
    if importlib.util.find_spec("psycopg2") is None:
        raise ServerUnavailable(
            "pygeoapi's stock PostgreSQL provider needs psycopg2 "
            "(install it with: .venv/bin/pip install psycopg2-binary)"
        )
    port = free_port()
    config = workdir / "pygeoapi-config.yml"
    openapi = workdir / "pygeoapi-openapi.yml"
    config.write_text(yaml.safe_dump(pygeoapi_config(roads.url, port), allow_unicode=True))
    env = {"PYGEOAPI_CONFIG": str(config), "PYGEOAPI_OPENAPI": str(openapi)}
    generated = subprocess.run(
        [str(BIN / "pygeoapi"), "openapi", "generate", str(config), "--output-file", str(openapi)],
        cwd=workdir,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    if generated.returncode != 0:
        tail = " | ".join(generated.stderr.strip().splitlines()[-6:])
        raise ServerUnavailable(f"pygeoapi openapi generate failed: {tail}")
    command = [sys.executable, "-m", "uvicorn", "pygeoapi.starlette_app:APP", "--host", HOST]
    command += ["--port", str(port), "--log-level", "warning"]
    ready = f"/collections/{LAYER_ID}?f=json"
    return Server(PYGEOAPI, command, port=port, env=env, workdir=workdir, ready_path=ready)


def pygeoapi_config(url: str, port: int) -> dict[str, Any]:
    """Return a minimal pygeoapi configuration publishing layers.roads (id fid, geometry geom)."""
    conninfo = conninfo_to_dict(url)
    data: dict[str, Any] = {
        "host": conninfo.get("host") or HOST,
        "port": int(conninfo.get("port") or 5432),
        "dbname": conninfo["dbname"],
        "user": conninfo.get("user") or "postgres",
        "search_path": ["layers"],
    }
    if conninfo.get("password"):
        data["password"] = conninfo["password"]
    site = f"http://{HOST}:{port}"
    return {
        "server": {
            "bind": {"host": HOST, "port": port},
            "url": site,
            "mimetype": "application/json; charset=UTF-8",
            "encoding": "utf-8",
            "language": "en-US",
            "pretty_print": False,
            "limits": {"default_items": 10, "max_items": 10000},
            "map": {"url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png", "attribution": "OSM"},
        },
        "logging": {"level": "ERROR"},
        "metadata": {
            "identification": {
                "title": "bench",
                "description": "road ledger benchmark",
                "keywords": ["roads"],
                "keywords_type": "theme",
                "terms_of_service": "https://creativecommons.org/licenses/by/4.0/",
                "url": site,
            },
            "license": {"name": "CC-BY 4.0", "url": "https://creativecommons.org/licenses/by/4.0/"},
            "provider": {"name": "bench", "url": site},
            "contact": {"name": "bench", "email": "bench@example.org", "url": site},
        },
        "resources": {
            LAYER_ID: {
                "type": "collection",
                "title": "道路台帳",
                "description": "road ledger",
                "keywords": ["roads"],
                "extents": {
                    "spatial": {
                        "bbox": [-180, -90, 180, 90],
                        "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
                    }
                },
                "providers": [
                    {
                        "type": "feature",
                        "name": "PostgreSQL",
                        "data": data,
                        "id_field": "fid",
                        "table": LAYER_ID,
                        "geom_field": "geom",
                    }
                ],
            }
        },
    }


SERVER_FACTORIES: dict[str, Callable[[RoadsDatabase, Path], Server]] = {
    OURS: ours_server,
    PYGEOAPI: pygeoapi_server,
    TIPG: tipg_server,
}


class OgcServers:
    """Ours and the chosen peers, started together; a failed start is kept as its reason."""

    def __init__(self, roads: RoadsDatabase, names: Sequence[str], log: Callable[[str], None]):
        self.roads = roads
        self.names = list(names)
        self.log = log
        self.servers: dict[str, Server] = {}
        self.failures: dict[str, str] = {}
        self.clients: dict[str, httpx.Client] = {}
        self.workdir = Path(tempfile.mkdtemp(prefix="portal-bench-ogc-"))
        self._stack = ExitStack()

    @property
    def data_dir(self) -> Path:
        """Return our server's PORTAL_DATA_DIR (the tile cache lives under it)."""
        return self.workdir / "portal-data"

    def __enter__(self) -> "OgcServers":
        self._stack.callback(shutil.rmtree, self.workdir, ignore_errors=True)
        for name in self.names:
            try:
                server = SERVER_FACTORIES[name](self.roads, self.workdir)
                server.start()
            except (ServerUnavailable, OSError) as exc:
                self.failures[name] = str(exc)
                continue
            self._stack.callback(server.stop)
            self.servers[name] = server
        for name, server in self.servers.items():
            try:
                server.wait_ready()
            except ServerUnavailable as exc:
                self.failures[name] = str(exc)
                server.stop()
                continue
            self.log(f"{name} answers at {server.url}")
        for name, reason in self.failures.items():
            self.log(f"{name} is not available: {reason}")
        return self

    def __exit__(self, *exc: object) -> None:
        for client in self.clients.values():
            client.close()
        self._stack.close()

    def client(self, name: str) -> httpx.Client:
        """Return a keep-alive client for server `name`, or raise why it is not running."""
        if name in self.failures:
            raise ServerUnavailable(f"{name} did not start: {self.failures[name]}")
        if name not in self.clients:
            self.clients[name] = httpx.Client(
                base_url=self.servers[name].url, timeout=REQUEST_SECONDS, headers=HEADERS
            )
        return self.clients[name]

    def get(self, name: str, path: str, params: Mapping[str, Any] | None = None) -> httpx.Response:
        """GET `path` from server `name`; raise with the status and body unless it answers 200."""
        answer = self.client(name).get(path, params=params)
        if answer.status_code != 200:
            hint = ""
            if name == OURS and answer.status_code == 404 and path.startswith("/ogc/"):
                hint = " (are the OGC API routes in portal/api/ogc/ served by `portal serve`?)"
            raise RuntimeError(
                f"{name}: GET {path} answered {answer.status_code}{hint}: {answer.text[:300]}"
            )
        return answer


def percentile(values: Sequence[float], percent: int) -> float:
    """Return the `percent`th percentile of `values` (inclusive method, as bench/search)."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=100, method="inclusive")[percent - 1]


def latency_notes(contenders: Iterable[ContenderResult]) -> list[str]:
    """Return one line per contender that ran: p50 and p95 per request in milliseconds."""
    notes = []
    for contender in contenders:
        if contender.failed or not contender.seconds:
            continue
        values = contender.seconds
        notes.append(
            f"{contender.name}: p50 {percentile(values, 50) * 1000:.1f} ms, "
            f"p95 {percentile(values, 95) * 1000:.1f} ms over {len(values)} requests"
        )
    return notes
