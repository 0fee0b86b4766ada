"""The real `ckanapi` client (its CLI and its Python API) against the running portal."""

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import ckanapi
import pytest
from sqlalchemy.orm import Session, sessionmaker

from portal.catalog.datasets import list_dataset_names
from portal.core.database import session_scope
from portal.core.principal import ANONYMOUS, Role
from tests.api.ckan_support import PREFIX, catalog
from tests.conftest import LiveServer
from tests.staff import make_staff

__all__ = ["catalog"]
CKANAPI = str(Path(sys.executable).with_name("ckanapi"))


def ckanapi_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the ckanapi command line."""
    # `dump` starts its workers by running `ckanapi` from PATH.
    env = dict(os.environ, PATH=f"{Path(CKANAPI).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    completed = subprocess.run(
        [CKANAPI, *args], capture_output=True, text=True, timeout=120, check=False, env=env
    )
    if check:
        assert completed.returncode == 0, completed.stderr + completed.stdout
    return completed


def dump(server: LiveServer, tmp_path: Path, *extra: str) -> list[dict[str, Any]]:
    """Run `ckanapi dump datasets --all` to a file and read the JSON lines back."""
    out = tmp_path / f"dump-{len(extra)}.jsonl"
    ckanapi_cli("dump", "datasets", "--all", "-q", "-O", str(out), "-r", server.url, *extra)
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


def test_cli_package_search_finds_evacuation_sites_first(
    live_server: LiveServer, catalog: list[str]
) -> None:
    completed = ckanapi_cli("action", "package_search", "q=避難", "-r", live_server.url)
    found = json.loads(completed.stdout)
    assert found["count"] >= 1
    assert found["results"][0]["name"] == "evacuation-space"


def test_cli_dump_all_returns_exactly_what_the_caller_may_see(
    live_server: LiveServer,
    catalog: list[str],
    sessions: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    with session_scope(sessions) as session:
        public_now = list_dataset_names(session, ANONYMOUS)
    anonymous = dump(live_server, tmp_path)
    assert sorted(d["name"] for d in anonymous) == sorted(public_now)
    assert "water-mains" not in {d["name"] for d in anonymous}
    demo = {"road-ledger", "youto-chiiki", "barrier-free", "evacuation-space"}
    assert all(d["resources"] for d in anonymous if d["name"] in demo)

    suido = make_staff(sessions, department="suido")
    staff = dump(live_server, tmp_path, "-a", suido.token)
    assert sorted(d["name"] for d in staff) == sorted([*public_now, "water-mains"])


def test_cli_package_create_with_a_token(
    live_server: LiveServer, catalog: list[str], sessions: sessionmaker[Session]
) -> None:
    editor = make_staff(sessions, department="doboku", role=Role.editor)
    name = PREFIX + "guardrails"
    created = ckanapi_cli(
        "action",
        "package_create",
        "-a",
        editor.token,
        "-r",
        live_server.url,
        f"name={name}",
        "title=ガードレール一覧",
        "owner_org=doboku",
        "license_id=cc-by-4.0",
        'tags:[{"name": "道路"}, {"name": "安全"}]',
    )
    assert json.loads(created.stdout)["name"] == name
    shown = json.loads(
        ckanapi_cli("action", "package_show", f"id={name}", "-r", live_server.url).stdout
    )
    assert shown["title"] == "ガードレール一覧"
    assert shown["organization"]["name"] == "doboku"
    assert sorted(t["name"] for t in shown["tags"]) == ["安全", "道路"]

    refused = ckanapi_cli(
        "action",
        "package_create",
        "-r",
        live_server.url,
        f"name={PREFIX}anonymous",
        "title=匿名",
        "owner_org=doboku",
        check=False,
    )
    assert refused.returncode != 0
    assert "NotAuthorized" in refused.stderr + refused.stdout


def test_python_client_gets_ckan_exceptions(
    live_server: LiveServer, catalog: list[str], sessions: sessionmaker[Session]
) -> None:
    editor = make_staff(sessions, department="doboku", role=Role.editor)
    with ckanapi.RemoteCKAN(live_server.url) as anonymous:
        assert anonymous.action.status_show()["ckan_version"] == "2.10.4"
        with session_scope(sessions) as session:
            assert anonymous.action.package_list() == list_dataset_names(session, ANONYMOUS)
        with pytest.raises(ckanapi.NotFound):
            anonymous.action.package_show(id="water-mains")
        with pytest.raises(ckanapi.ValidationError) as bad_rows:
            anonymous.action.package_search(rows=1001)
        assert "1000" in str(bad_rows.value.error_dict["rows"])
        with pytest.raises(ckanapi.NotAuthorized):
            anonymous.action.package_create(name=PREFIX + "x", title="x", owner_org="doboku")
        with pytest.raises(ckanapi.CKANAPIError, match="Action name not known"):
            anonymous.call_action("no_such_action")
    with ckanapi.RemoteCKAN(live_server.url, apikey=editor.token) as staff:
        with pytest.raises(ckanapi.ValidationError) as bad_name:
            staff.action.package_create(name="橋梁", title="橋梁", owner_org="doboku")
        assert "name" in bad_name.value.error_dict
        with pytest.raises(ckanapi.ValidationError) as bad_licence:
            staff.action.package_create(
                name=PREFIX + "licence", title="x", owner_org="doboku", license_id="proprietary"
            )
        assert "unknown licence" in " ".join(bad_licence.value.error_dict["license_id"])
        created = staff.action.package_create(
            name=PREFIX + "python", title="Python", owner_org="doboku"
        )
        resource = staff.action.resource_create(
            package_id=created["id"],
            name="data.csv",
            upload=("data.csv", io.BytesIO(b"a,b\n1,2\n")),
        )
        assert resource["size"] == 8 and resource["format"] == "CSV"
