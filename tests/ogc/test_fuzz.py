"""A bounded schemathesis run over the OGC OpenAPI document finds no server errors."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from portal.core.principal import Role
from tests.conftest import LiveServer
from tests.ogc.support import load_points_layer
from tests.staff import make_staff

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


@pytest.mark.skipif(
    not SCHEMATHESIS.exists() and not shutil.which("schemathesis"),
    reason="schemathesis is not installed",
)
def test_schemathesis_finds_no_server_errors(
    demo_city: object,
    live_server: LiveServer,
    engine: Engine,
    sessions: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    # Edits are fuzzed too, by an editor whose department owns only a throwaway layer.
    load_points_layer(engine, sessions, tmp_path, layer_id="fuzz_points", department="fuzz")
    editor = make_staff(sessions, department="fuzz", role=Role.editor)
    command = [
        str(SCHEMATHESIS if SCHEMATHESIS.exists() else "schemathesis"),
        "run",
        f"{live_server.url}/ogc/api",
        "--checks",
        "not_a_server_error",
        "--max-examples",
        "25",
        "--seed",
        "20261123",
        "--generation-deterministic",
        "--request-timeout",
        "30",
        "--suppress-health-check",
        "all",
        "--header",
        f"Authorization: Bearer {editor.token}",
    ]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "", "HOME": str(tmp_path)}
    done = subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=900, cwd=tmp_path
    )
    report = done.stdout[-6000:] + done.stderr[-2000:]
    assert done.returncode == 0, report
    assert "Test cases:" in report and " passed" in report
