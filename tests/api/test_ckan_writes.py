"""CKAN writes with staff tokens: package_create/patch and resource_create, validated like the web."""

import io
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from portal.core.principal import Role
from portal.core.settings import Settings
from tests.api.ckan_support import PREFIX, catalog, doboku_editor, error, result
from tests.conftest import LiveServer
from tests.staff import Staff, make_staff

__all__ = ["catalog", "doboku_editor"]


def test_package_create_patch_and_resource_create(http: httpx.Client, doboku_editor: Staff) -> None:
    name = PREFIX + "bridges"
    created = result(
        http,
        "package_create",
        {
            "name": name,
            "title": "橋梁一覧",
            "owner_org": "doboku",
            "notes": "市が管理する橋梁",
            "license_id": "CC-BY-4.0",
            "tags": [{"name": "橋梁"}, {"name": "道路"}],
            "groups": [{"name": "transport-tourism"}],
            "extras": [
                {"key": "source", "value": "台帳"},
                {"key": "update_frequency", "value": "annual"},
            ],
            "maintainer": "道路課",
            "resources": [{"url": "https://example.jp/bridges.csv", "format": "csv"}],
        },
        token=doboku_editor.token,
        post=True,
    )
    assert created["name"] == name and created["license_id"] == "cc-by-4.0"
    assert [t["name"] for t in created["tags"]] == ["橋梁", "道路"]
    assert created["groups"][0]["name"] == "transport-tourism"
    assert created["maintainer"] == "道路課"
    assert {"key": "source", "value": "台帳"} in created["extras"]
    assert created["resources"][0]["url"] == "https://example.jp/bridges.csv"
    assert result(http, "package_show", {"id": name})["title"] == "橋梁一覧"

    patched = result(
        http,
        "package_patch",
        {"id": created["id"], "title": "橋梁一覧（改訂）", "tags": [{"name": "橋"}]},
        token=doboku_editor.token,
        post=True,
    )
    assert patched["title"] == "橋梁一覧（改訂）" and [t["name"] for t in patched["tags"]] == ["橋"]
    assert patched["notes"] == "市が管理する橋梁"
    refused = error(
        http,
        "package_patch",
        {"id": name, "owner_org": "bosai"},
        409,
        token=doboku_editor.token,
        post=True,
    )
    assert "owner_org" in refused

    response = http.post(
        "/api/3/action/resource_create",
        data={"package_id": name, "name": "橋梁CSV", "url": ""},
        files={"upload": ("bridges.csv", io.BytesIO("名称,延長\n大橋,120\n".encode()), "text/csv")},
        headers={"Authorization": doboku_editor.token},
    )
    assert response.status_code == 200, response.text
    uploaded = response.json()["result"]
    assert uploaded["format"] == "CSV" and uploaded["size"] > 0 and uploaded["url_type"] == "upload"
    assert http.get(uploaded["url"]).status_code in (200, 404)
    linked = result(
        http,
        "resource_create",
        {"package_id": name, "url": "https://example.jp/bridges.geojson"},
        token=doboku_editor.token,
        post=True,
    )
    assert linked["name"] == "bridges.geojson"
    shown = result(http, "package_show", {"id": name})
    assert len(shown["resources"]) == 3


def test_writes_need_a_staff_token_and_the_right_department(
    http: httpx.Client, catalog: list[str], doboku_editor: Staff, sessions: sessionmaker[Session]
) -> None:
    body = {"name": PREFIX + "anonymous", "title": "匿名", "owner_org": "doboku"}
    anonymous = error(http, "package_create", body, 403, post=True)
    assert anonymous["__type"] == "Authorization Error"
    assert "staff API token" in anonymous["message"]
    elsewhere = error(
        http,
        "package_create",
        dict(body, owner_org="bosai"),
        403,
        token=doboku_editor.token,
        post=True,
    )
    assert "editor role" in elsewhere["message"]
    viewer = make_staff(sessions, department="doboku")
    error(http, "package_create", body, 403, token=viewer.token, post=True)
    error(http, "package_patch", {"id": "road-ledger", "title": "x"}, 403, post=True)
    shared = error(
        http,
        "package_patch",
        {"id": "water-mains", "title": "x"},
        403,
        token=viewer.token,
        post=True,
    )
    assert shared["__type"] == "Authorization Error"
    outsider = make_staff(sessions, department="fukushi", role=Role.admin)
    hidden = error(
        http,
        "package_patch",
        {"id": "water-mains", "title": "x"},
        404,
        token=outsider.token,
        post=True,
    )
    assert hidden["__type"] == "Not Found Error"
    error(http, "resource_create", {"package_id": "road-ledger", "url": "https://a.example"}, 403)
    assert body["name"] not in result(http, "package_list")


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"name": "避難所一覧"}, "name", "ASCII slug"),
        ({"name": "Upper-Case"}, "name", "lower-case"),
        (
            {"license_id": "all-rights-reserved"},
            "license_id",
            "unknown licence 'all-rights-reserved'",
        ),
        ({"owner_org": "no-such-department"}, "owner_org", "Organization does not exist"),
        ({"title": ""}, "title", "at least 1 character"),
        ({"tags": [{"name": "<script>"}]}, "tags", "without"),
        ({"groups": [{"name": "no-such-group"}]}, "message", "unknown group 'no-such-group'"),
        ({"update_frequency": "hourly"}, "update_frequency", "must be one of"),
        ({"extras": "nonsense"}, "extras", "must be a list"),
        ({"owner_org": None}, "owner_org", "Missing value"),
        ({"name": "road-ledger"}, "name", "already in use"),
    ],
)
def test_package_create_validates_like_the_web(
    http: httpx.Client, doboku_editor: Staff, body: dict[str, Any], field: str, message: str
) -> None:
    full = {"name": PREFIX + "valid", "title": "有効", "owner_org": "doboku"} | body
    full = {k: v for k, v in full.items() if v is not None}
    problem = error(http, "package_create", full, 409, token=doboku_editor.token, post=True)
    assert problem["__type"] == "Validation Error"
    assert message in " ".join(problem[field]) if field != "message" else message in problem[field]
    assert PREFIX + "valid" not in result(http, "package_list")


@pytest.fixture(scope="module")
def small_upload_server(settings: Settings, catalog: list[str]) -> Iterator[LiveServer]:
    with LiveServer(settings.model_copy(update={"max_upload_bytes": 2048})) as server:
        yield server


def test_an_upload_over_the_limit_is_refused_naming_the_limit(
    small_upload_server: LiveServer, doboku_editor: Staff
) -> None:
    with httpx.Client(base_url=small_upload_server.url, timeout=30) as client:
        created = client.post(
            "/api/3/action/package_create",
            json={"name": PREFIX + "big", "title": "大きい", "owner_org": "doboku"},
            headers={"Authorization": doboku_editor.token},
        )
        assert created.status_code == 200, created.text
        for size in (4096, 5 * 1024 * 1024):
            response = client.post(
                "/api/3/action/resource_create",
                data={"package_id": PREFIX + "big", "name": "big.csv"},
                files={"upload": ("big.csv", io.BytesIO(b"a,b\n" * (size // 4)), "text/csv")},
                headers={"Authorization": doboku_editor.token},
            )
            assert response.status_code == 413, response.text
            problem = response.json()["error"]
            assert problem["__type"] == "Validation Error"
            assert "2,048 bytes" in problem["message"]
        shown = client.get("/api/3/action/package_show", params={"id": PREFIX + "big"}).json()
        assert shown["result"]["resources"] == []


def test_a_round_trip_through_package_patch_keeps_who_can_see_the_dataset(
    http: httpx.Client, catalog: list[str], sessions: sessionmaker[Session]
) -> None:
    admin = make_staff(sessions, department="suido", role=Role.admin)
    name = PREFIX + "valves"
    created = result(
        http,
        "package_create",
        {"name": name, "title": "バルブ", "owner_org": "suido", "visibility": "department"},
        token=admin.token,
        post=True,
    )
    assert created["private"] and created["visibility"] == "department"
    error(http, "package_show", {"id": name}, 404)
    edited = dict(created, notes="更新")
    patched = result(http, "package_patch", edited, token=admin.token, post=True)
    assert patched["notes"] == "更新" and patched["visibility"] == "department"
    only_private = {"id": name, "private": True}
    kept = result(http, "package_patch", only_private, token=admin.token, post=True)
    assert kept["visibility"] == "department"
    opened = result(
        http, "package_patch", {"id": name, "private": False}, token=admin.token, post=True
    )
    assert opened["visibility"] == "public" and not opened["private"]
    assert result(http, "package_show", {"id": name})["name"] == name
