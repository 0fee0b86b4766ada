"""docker-compose.yml and the Dockerfile describe a sound production stack."""

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


def _healthcheck_text(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    return " ".join(test) if isinstance(test, list) else str(test)


def test_services_are_exactly_db_migrate_app(services: dict[str, Any]) -> None:
    assert set(services) == {"db", "migrate", "app"}


def test_db_is_postgis_15_3_with_pg_isready_healthcheck(services: dict[str, Any]) -> None:
    db = services["db"]
    assert db["image"].startswith("postgis/postgis:15-3")
    assert "pg_isready" in _healthcheck_text(db)
    assert db["environment"]["POSTGRES_DB"] == "portal"


def test_migrate_runs_db_upgrade_once_the_db_is_healthy(services: dict[str, Any]) -> None:
    migrate = services["migrate"]
    assert migrate["command"] == ["portal", "db", "upgrade"]
    assert migrate["depends_on"]["db"]["condition"] == "service_healthy"
    assert migrate.get("restart", "no") == "no"


def test_app_waits_for_db_and_migration(services: dict[str, Any]) -> None:
    depends = services["app"]["depends_on"]
    assert depends["db"]["condition"] == "service_healthy"
    assert depends["migrate"]["condition"] == "service_completed_successfully"


def test_app_serves_on_8000_with_a_healthz_healthcheck(services: dict[str, Any]) -> None:
    app = services["app"]
    assert "serve" in app["command"] and "8000" in app["command"]
    assert any(str(port).endswith(":8000") for port in app["ports"])
    check = _healthcheck_text(app)
    assert "/healthz" in check and "urllib" in check


def test_named_volumes_are_declared_and_used(
    compose: dict[str, Any], services: dict[str, Any]
) -> None:
    declared = set(compose["volumes"])
    used = {
        str(volume).split(":", 1)[0]
        for service in services.values()
        for volume in service.get("volumes", [])
    }
    assert declared and declared <= used
    assert any(v.endswith(":/var/lib/postgresql/data") for v in services["db"]["volumes"])
    assert any(v.endswith(":/data") for v in services["app"]["volumes"])


@pytest.mark.parametrize("name", ["app", "migrate"])
def test_portal_runs_in_prod_with_a_required_secret(services: dict[str, Any], name: str) -> None:
    env = services[name]["environment"]
    assert env["PORTAL_ENV"] == "prod"
    assert re.fullmatch(r"\$\{PORTAL_SECRET_KEY:\?.+\}", env["PORTAL_SECRET_KEY"])
    assert (
        env["DATABASE_URL"].startswith("postgresql://") and "@db:5432/portal" in env["DATABASE_URL"]
    )
    assert env["PORTAL_DATA_DIR"] == "/data"


def test_no_worker_service_until_a_worker_exists(services: dict[str, Any]) -> None:
    assert "worker" not in services


def test_dockerfile_uses_python_311_and_drops_root() -> None:
    lines = [line.strip() for line in DOCKERFILE.read_text(encoding="utf-8").splitlines()]
    bases = [line.split()[1] for line in lines if line.upper().startswith("FROM ")]
    assert bases and all(base.startswith("python:3.11-") for base in bases)
    users = [line.split()[1] for line in lines if line.upper().startswith("USER ")]
    assert users and users[-1] not in {"root", "0"}
    assert "EXPOSE 8000" in lines


def test_dockerignore_keeps_local_state_out_of_the_image() -> None:
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    for entry in (".venv", ".data", ".git"):
        assert entry in ignored


def _compose_cli() -> list[str] | None:
    """Return the compose command line (plugin first, then standalone), or None."""
    candidates = []
    if docker := shutil.which("docker"):
        candidates.append([docker, "compose"])
    if standalone := shutil.which("docker-compose"):
        candidates.append([standalone])
    for cli in candidates:
        probe = subprocess.run(
            [*cli, "version"], capture_output=True, text=True, timeout=30, check=False
        )
        if probe.returncode == 0:
            return cli
    return None


def test_docker_compose_accepts_the_file() -> None:
    cli = _compose_cli()
    if cli is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    env = {**os.environ, "PORTAL_SECRET_KEY": "x" * 48}
    done = subprocess.run(
        [*cli, "-f", str(COMPOSE_FILE), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_docker_compose_refuses_a_missing_secret() -> None:
    cli = _compose_cli()
    if cli is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    env = {k: v for k, v in os.environ.items() if k != "PORTAL_SECRET_KEY"}
    done = subprocess.run(
        [*cli, "-f", str(COMPOSE_FILE), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert done.returncode != 0
    assert "PORTAL_SECRET_KEY" in done.stderr
