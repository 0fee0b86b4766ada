"""Staff dataset pages over real HTTP, with a signed-in browser-like client."""

import re
import secrets
import shutil
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from portal.catalog.models import Dataset
from portal.core.database import session_scope
from portal.core.principal import Role
from portal.core.settings import Settings
from portal.demo.load import DemoLoad
from tests.conftest import LiveServer
from tests.staff import Staff, csrf_from, make_staff, sign_in

Browser = Callable[[Staff], httpx.Client]
PREFIX = "staff-ds-test-"
"""Datasets the tests create start with this and are removed afterwards."""


@pytest.fixture(autouse=True)
def loaded(demo_city: list[DemoLoad]) -> list[DemoLoad]:
    return demo_city


@pytest.fixture(scope="module", autouse=True)
def cleanup(sessions: sessionmaker[Session], settings: Settings) -> Iterator[None]:
    """Remove the test datasets and their stored files, so other tests see the demo catalog."""
    yield
    with session_scope(sessions) as session:
        created = Dataset.name.startswith(PREFIX)
        for dataset_id in session.execute(select(Dataset.id).where(created)).scalars():
            shutil.rmtree(Path(settings.data_dir) / "resources" / str(dataset_id), True)
        session.execute(delete(Dataset).where(created))


def _browsers(server: LiveServer) -> Iterator[Browser]:
    clients: list[httpx.Client] = []

    def open_as(staff: Staff) -> httpx.Client:
        client = httpx.Client(base_url=server.url, timeout=30, headers={"accept": "text/html"})
        clients.append(client)
        assert sign_in(client, staff.email).status_code == 303
        return client

    yield open_as
    for client in clients:
        client.close()


@pytest.fixture
def browser(live_server: LiveServer) -> Iterator[Browser]:
    """Open a client signed in as a staff member."""
    yield from _browsers(live_server)


def slug(prefix: str = "new") -> str:
    return f"{PREFIX}{prefix}-{secrets.token_hex(4)}"


def form_for(browser: httpx.Client, path: str) -> str:
    page = browser.get(path)
    assert page.status_code == 200, page.text[:500]
    return csrf_from(page.text)


def create(browser: httpx.Client, **fields: Any) -> httpx.Response:
    """Submit the new-dataset form with sensible defaults."""
    data: dict[str, Any] = {
        "csrf_token": form_for(browser, "/staff/datasets/new"),
        "name": slug(),
        "title": "試験データ",
        "department": "bosai",
        "license_id": "pdl-1.0",
        "groups_shown": "1",
    }
    data.update(fields)
    return browser.post("/staff/datasets/new", data=data)


def package_show(client: httpx.Client, name: str, token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.get("/api/3/action/package_show", params={"id": name}, headers=headers)


class FormReader(HTMLParser):
    """Collect what a browser would submit from the form posting to `action`."""

    def __init__(self, action: str) -> None:
        super().__init__(convert_charrefs=True)
        self.action, self.inside = action, False
        self.fields: list[tuple[str, str]] = []
        self.select: str | None = None
        self.textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.inside = a.get("action") == self.action
        elif not self.inside:
            return
        elif tag == "input" and a.get("type") not in ("checkbox", "radio", "file", "submit"):
            self.fields.append((a["name"], a.get("value", "")))
        elif tag == "input" and a.get("type") in ("checkbox", "radio") and "checked" in a:
            self.fields.append((a["name"], a.get("value", "")))
        elif tag == "select":
            self.select = a["name"]
        elif tag == "option" and self.select and "selected" in a:
            self.fields.append((self.select, a.get("value", "")))
        elif tag == "textarea":
            self.textarea = a["name"]
            self.fields.append((self.textarea, ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "select":
            self.select = None
        elif tag == "textarea":
            self.textarea = None

    def handle_data(self, data: str) -> None:
        if self.textarea and self.fields and self.fields[-1][0] == self.textarea:
            self.fields[-1] = (self.textarea, self.fields[-1][1] + data)


def submitted(html: str, action: str) -> dict[str, list[str]]:
    reader = FormReader(action)
    reader.feed(html)
    fields: dict[str, list[str]] = {}
    for key, value in reader.fields:
        fields.setdefault(key, []).append(value)
    return fields


def history_rows(html: str) -> list[tuple[str, str, set[str]]]:
    """Return (action, actor, changed fields) per row of the history table."""
    rows = []
    for action, body in re.findall(r'<tr data-action="(\w+)">(.*?)</tr>', html, re.S):
        actor = re.search(r'<td class="actor">(.*?)</td>', body, re.S)
        fields = set(re.findall(r'<li data-field="(\w+)">', body))
        rows.append((action, actor.group(1) if actor else "", fields))
    return rows


def test_an_editor_creates_a_dataset_that_search_and_the_api_find(
    browser: Browser, sessions: sessionmaker[Session], http: httpx.Client
) -> None:
    editor = make_staff(sessions, department="bosai", role=Role.editor)
    client = browser(editor)
    name, tag = slug("hinanjo"), f"試験タグ{secrets.token_hex(3)}"
    created = create(
        client,
        name=name,
        title="指定避難所一覧（試験）",
        title_en="Evacuation shelters (test)",
        notes="市が指定する避難所の一覧です。",
        license_id="cc-by-4.0",
        tags=f"避難所, 防災、{tag}",
        groups=["justice-safety-environment", "population-households"],
        update_frequency="annual",
        temporal_start="2024-04-01",
        temporal_end="2025-03-31",
        bbox="131.2,33.1,131.8,33.5",
        contact_name="防災危機管理課",
        contact_email="bosai@city.example.jp",
        standard_dataset="A-03",
    )
    assert created.status_code == 303, created.text[:2000]
    assert created.headers["location"] == f"/staff/datasets/{name}/edit?created=1"

    found = http.get("/dataset", params={"q": "避難所", "tags": tag})
    assert found.status_code == 200
    assert f'data-dataset="{name}"' in found.text or f"/dataset/{name}" in found.text

    shown = package_show(http, name).json()
    assert shown["success"] is True
    package = shown["result"]
    assert package["title"] == "指定避難所一覧（試験）"
    assert package["organization"]["name"] == "bosai"
    assert package["license_id"] == "cc-by-4.0"
    assert {t["name"] for t in package["tags"]} == {"避難所", "防災", tag}
    assert {g["name"] for g in package["groups"]} == {
        "justice-safety-environment",
        "population-households",
    }

    listed = client.get("/staff/datasets")
    assert listed.status_code == 200
    row = re.search(rf'<tr data-dataset="{name}">(.*?)</tr>', listed.text, re.S)
    assert row, "the new dataset is on the staff list"
    assert "指定避難所一覧（試験）" in row.group(1)
    assert f"/staff/datasets/{name}/edit" in row.group(1)
    assert 'href="/staff/datasets/new?department=bosai"' in listed.text

    # Saving the prefilled form unchanged records no change.
    action = f"/staff/datasets/{name}/edit"
    fields = submitted(client.get(action).text, action)
    assert fields["bbox"] == ["131.2,33.1,131.8,33.5"]
    assert fields["temporal_start"] == ["2024-04-01"] and fields["update_frequency"] == ["annual"]
    assert len(fields["groups"]) == 2
    assert client.post(action, data=fields).status_code == 303
    history = history_rows(client.get(f"/staff/datasets/{name}/history").text)
    assert [action for action, _, _ in history] == ["created"]


def test_edits_save_only_changed_fields_and_the_history_names_the_actor(
    browser: Browser, sessions: sessionmaker[Session], http: httpx.Client
) -> None:
    editor = make_staff(sessions, department="bosai", role=Role.editor)
    client = browser(editor)
    name = slug("edit")
    created = create(client, name=name, title="元のタイトル", tags="防災", groups=["other"])
    assert created.status_code == 303

    page = client.get(f"/staff/datasets/{name}/edit")
    assert page.status_code == 200
    assert 'value="元のタイトル"' in page.text
    form = {
        "csrf_token": csrf_from(page.text),
        "title": "新しいタイトル",
        "title_en": "",
        "notes": "",
        "license_id": "pdl-1.0",
        "tags": "防災, 避難",
        "update_frequency": "",
        "temporal_start": "",
        "temporal_end": "",
        "bbox": "",
        "contact_name": "",
        "contact_email": "",
        "standard_dataset": "",
        "groups_shown": "1",
    }
    first = client.post(f"/staff/datasets/{name}/edit", data=form)
    assert first.status_code == 303, first.text[:2000]
    assert first.headers["location"] == f"/staff/datasets/{name}/edit?saved=1"
    second = client.post(
        f"/staff/datasets/{name}/edit", data=form | {"notes": "説明を追加しました。\r\n二行目"}
    )
    assert second.status_code == 303

    package = package_show(http, name).json()["result"]
    assert package["title"] == "新しいタイトル"
    assert package["notes"] == "説明を追加しました。\n二行目"
    assert {t["name"] for t in package["tags"]} == {"防災", "避難"}
    assert package["groups"] == []

    history = client.get(f"/staff/datasets/{name}/history")
    assert history.status_code == 200
    rows = history_rows(history.text)
    assert [action for action, _, _ in rows] == ["updated", "updated", "created"]
    assert all(actor == "試験 bosai" for _, actor, _ in rows)
    assert rows[0][2] == {"notes"}
    assert rows[1][2] == {"title", "tags", "groups"}
    assert "元のタイトル → 新しいタイトル" in history.text


def test_an_uploaded_standard_dataset_csv_is_listed_with_a_quality_panel(
    browser: Browser,
    sessions: sessionmaker[Session],
    http: httpx.Client,
    demo_root: Path,
    settings: Settings,
) -> None:
    editor = make_staff(sessions, department="bosai", role=Role.editor)
    client = browser(editor)
    name = slug("upload")
    assert create(client, name=name, title="避難場所（アップロード試験）").status_code == 303
    source = demo_root / "bosai" / f"{settings.municipality_code}_evacuation_space.csv"
    page = client.get(f"/staff/datasets/{name}/edit")
    uploaded = client.post(
        f"/staff/datasets/{name}/resources",
        data={
            "csrf_token": csrf_from(page.text),
            "name": "",
            "description": "試験用",
            "format": "",
        },
        files={"upload": (source.name, source.read_bytes(), "text/csv")},
    )
    assert uploaded.status_code == 303, uploaded.text[:2000]
    assert uploaded.headers["location"].startswith(f"/staff/datasets/{name}/edit?added=1")

    shown = http.get(f"/dataset/{name}")
    assert shown.status_code == 200
    assert source.name in shown.text
    assert 'data-format="CSV"' in shown.text
    assert 'class="quality-panel"' in shown.text

    resources = package_show(http, name).json()["result"]["resources"]
    assert [(r["name"], r["format"]) for r in resources] == [(source.name, "CSV")]
    assert resources[0]["size"] == source.stat().st_size

    link = client.post(
        f"/staff/datasets/{name}/resources",
        data={
            "csrf_token": csrf_from(page.text),
            "url": "https://example.jp/hinan.pdf",
            "name": "案内（PDF）",
            "format": "pdf",
        },
    )
    assert link.status_code == 303
    edit = client.get(f"/staff/datasets/{name}/edit")
    assert "案内（PDF）" in edit.text and source.name in edit.text
    bad_link = client.post(
        f"/staff/datasets/{name}/resources",
        data={"csrf_token": csrf_from(page.text), "url": "ftp://example.jp/x.csv"},
    )
    assert bad_link.status_code == 400
    assert "url must start with http:// or https://" in bad_link.text


def test_a_viewer_is_refused_naming_the_editor_role(
    browser: Browser, sessions: sessionmaker[Session]
) -> None:
    viewer = make_staff(sessions, department="bosai", role=Role.viewer)
    client = browser(viewer)
    listed = client.get("/staff/datasets")
    assert listed.status_code == 200
    assert 'data-dataset="evacuation-space"' in listed.text
    assert "/staff/datasets/new" not in listed.text
    assert "/staff/datasets/evacuation-space/edit" not in listed.text

    new = client.get("/staff/datasets/new")
    assert new.status_code == 403
    assert "editor" in new.text
    token = csrf_from(listed.text)
    posted = client.post(
        "/staff/datasets/new",
        data={"csrf_token": token, "name": slug(), "title": "x", "department": "bosai"},
    )
    assert posted.status_code == 403
    assert "editor" in posted.text
    edit = client.get("/staff/datasets/evacuation-space/edit")
    assert edit.status_code == 403
    assert "editing a dataset needs the editor role" in edit.text
    saved = client.post(
        "/staff/datasets/evacuation-space/edit", data={"csrf_token": token, "title": "乗っ取り"}
    )
    assert saved.status_code == 403
    assert "editor" in saved.text
    upload = client.post(
        "/staff/datasets/evacuation-space/resources",
        data={"csrf_token": token},
        files={"upload": ("x.csv", b"a,b\n1,2\n", "text/csv")},
    )
    assert upload.status_code == 403
    assert "adding a resource needs the editor role" in upload.text
    assert client.get("/staff/datasets/evacuation-space/history").status_code == 200


def test_a_non_ascii_name_shows_the_slug_error_next_to_the_field(
    browser: Browser, sessions: sessionmaker[Session]
) -> None:
    client = browser(make_staff(sessions, department="bosai", role=Role.editor))
    response = create(client, name="ひなんじょ", title="避難所 <b>太字</b>", tags="防災")
    assert response.status_code == 400
    assert 'data-field="name"' in response.text
    assert "lower-case a-z" in response.text
    assert 'value="ひなんじょ"' in response.text
    assert 'value="避難所 &lt;b&gt;太字&lt;/b&gt;"' in response.text
    assert 'value="防災"' in response.text
    assert "<b>太字</b>" not in response.text


def test_an_unknown_licence_and_other_bad_entries_are_form_errors(
    browser: Browser, sessions: sessionmaker[Session]
) -> None:
    client = browser(make_staff(sessions, department="bosai", role=Role.editor))
    name = slug()
    response = create(
        client,
        name=name,
        license_id="made-up-licence",
        bbox="131,33",
        groups=["no-such-group"],
    )
    assert response.status_code == 400
    assert "unknown licence &#39;made-up-licence&#39;" in response.text
    assert 'data-field="license_id"' in response.text
    assert "bbox must be four numbers" in response.text
    assert "unknown group &#39;no-such-group&#39;" in response.text
    assert 'value="131,33"' in response.text
    period = create(client, name=name, temporal_start="2025-01-01", temporal_end="2024-01-01")
    assert period.status_code == 400
    assert "temporal_start must not be after temporal_end" in period.text
    assert 'value="2025-01-01"' in period.text
    assert create(client, name=name).status_code == 303
    taken = create(client, name=name)
    assert taken.status_code == 409
    assert "already exists" in taken.text


def test_an_upload_over_the_limit_is_refused_clearly_and_creates_nothing(
    settings: Settings, sessions: sessionmaker[Session]
) -> None:
    small = settings.model_copy(update={"max_upload_bytes": 2048})
    editor = make_staff(sessions, department="bosai", role=Role.editor)
    with LiveServer(small) as server:
        for client in _browsers(server):
            browse = client(editor)
            name = slug("big")
            assert create(browse, name=name).status_code == 303
            page = browse.get(f"/staff/datasets/{name}/edit")
            assert "2.0 KB" in page.text
            token = csrf_from(page.text)
            body = b"id,name\n" + b"1,abcdefghij\n" * 1000
            too_big = browse.post(
                f"/staff/datasets/{name}/resources",
                data={"csrf_token": token},
                files={"upload": ("big.csv", body, "text/csv")},
            )
            assert too_big.status_code == 413
            assert "larger than the limit of 2,048 bytes" in too_big.text
            assert 'data-field="upload"' in too_big.text
            huge = browse.post(
                f"/staff/datasets/{name}/resources",
                data={"csrf_token": token},
                files={"upload": ("huge.csv", body * 10, "text/csv")},
            )
            assert huge.status_code == 413
            assert "larger than the limit of 2,048 bytes" in huge.text
            shown = package_show(browse, name, editor.token).json()["result"]
            assert shown["resources"] == []
            dataset_dir = Path(settings.data_dir) / "resources" / shown["id"]
            left = (
                [p for p in dataset_dir.rglob("*") if p.is_file()] if dataset_dir.exists() else []
            )
            assert left == []


def test_html_in_titles_is_escaped_on_the_staff_list_and_edit_form(
    browser: Browser, sessions: sessionmaker[Session]
) -> None:
    client = browser(make_staff(sessions, department="bosai", role=Role.editor))
    name = slug("xss")
    title = "<script>alert(1)</script>"
    title_en = '"><img src=x onerror=alert(2)>'
    assert create(client, name=name, title=title, title_en=title_en).status_code == 303
    for path in (
        "/staff/datasets",
        f"/staff/datasets/{name}/edit",
        f"/staff/datasets/{name}/history",
    ):
        page = client.get(path)
        assert page.status_code == 200
        assert "<script>alert(1)</script>" not in page.text
        assert "<img src=x" not in page.text
    listed = client.get("/staff/datasets?department=bosai")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in listed.text
    edit = client.get(f"/staff/datasets/{name}/edit")
    assert 'value="&lt;script&gt;alert(1)&lt;/script&gt;"' in edit.text
    assert 'value="&#34;&gt;&lt;img src=x onerror=alert(2)&gt;"' in edit.text


def test_forms_without_a_csrf_token_are_refused(
    browser: Browser, sessions: sessionmaker[Session]
) -> None:
    admin = make_staff(sessions, department="bosai", role=Role.admin)
    client = browser(admin)
    name = slug("csrf")
    missing = client.post(
        "/staff/datasets/new", data={"name": name, "title": "x", "department": "bosai"}
    )
    assert missing.status_code == 403
    assert "CSRF" in missing.text
    forged = client.post(
        "/staff/datasets/new",
        data={"name": name, "title": "x", "department": "bosai", "csrf_token": "f" * 43},
    )
    assert forged.status_code == 403
    upload = client.post(
        "/staff/datasets/evacuation-space/resources",
        files={"upload": ("x.csv", b"a,b\n1,2\n", "text/csv")},
    )
    assert upload.status_code == 403
    assert "CSRF" in upload.text
    for path in ("edit", "access"):
        refused = client.post(
            f"/staff/datasets/evacuation-space/{path}", data={"visibility": "department"}
        )
        assert refused.status_code == 403
        assert "CSRF" in refused.text
    assert client.get("/staff/datasets/" + name + "/edit").status_code == 404


def test_the_access_page_restricts_and_shares_a_dataset(
    browser: Browser, sessions: sessionmaker[Session], http: httpx.Client
) -> None:
    admin = make_staff(sessions, department="bosai", role=Role.admin)
    client = browser(admin)
    name = slug("access")
    assert create(client, name=name, title="庁内限定の試験データ").status_code == 303
    page = client.get(f"/staff/datasets/{name}/access")
    assert page.status_code == 200
    assert 'name="shared_with" value="fukushi"' in page.text
    assert 'value="bosai"' not in page.text
    changed = client.post(
        f"/staff/datasets/{name}/access",
        data={
            "csrf_token": csrf_from(page.text),
            "visibility": "department",
            "shared_with": ["fukushi"],
        },
    )
    assert changed.status_code == 303, changed.text[:2000]
    again = client.get(f"/staff/datasets/{name}/access")
    assert re.search(r'value="department" checked', again.text)
    assert re.search(r'value="fukushi" checked', again.text)

    outsider = make_staff(sessions, department="shimin", role=Role.admin)
    shared = make_staff(sessions, department="fukushi")
    owner = make_staff(sessions, department="bosai")
    assert package_show(http, name).status_code == 404
    assert package_show(http, name, outsider.token).status_code == 404
    assert package_show(http, name, shared.token).status_code == 200
    assert package_show(http, name, owner.token).status_code == 200
    assert http.get(f"/dataset/{name}").status_code == 404

    rows = history_rows(client.get(f"/staff/datasets/{name}/history").text)
    assert [(action, fields) for action, _, fields in rows[:2]] == [
        ("shared", {"shared_with"}),
        ("updated", {"visibility"}),
    ]
    outsider_client = browser(outsider)
    assert name not in outsider_client.get("/staff/datasets").text
    for path in ("edit", "history", "access"):
        assert outsider_client.get(f"/staff/datasets/{name}/{path}").status_code == 404


def test_an_editor_cannot_open_or_submit_the_access_page(
    browser: Browser, sessions: sessionmaker[Session], http: httpx.Client
) -> None:
    editor = make_staff(sessions, department="bosai", role=Role.editor)
    client = browser(editor)
    name = slug("noadmin")
    new = client.get("/staff/datasets/new")
    assert 'name="visibility"' not in new.text
    restricted = create(client, name=name, visibility="department")
    assert restricted.status_code == 403
    assert "needs the admin role" in restricted.text
    assert create(client, name=name, groups=["other"]).status_code == 303

    page = client.get(f"/staff/datasets/{name}/access")
    assert page.status_code == 403
    assert "managing who can see a dataset needs the admin role" in page.text
    token = csrf_from(client.get(f"/staff/datasets/{name}/edit").text)
    posted = client.post(
        f"/staff/datasets/{name}/access",
        data={"csrf_token": token, "visibility": "department", "shared_with": ["fukushi"]},
    )
    assert posted.status_code == 403
    assert "admin" in posted.text
    sneaked = client.post(
        f"/staff/datasets/{name}/edit",
        data={"csrf_token": token, "title": "試験データ", "visibility": "department"},
    )
    assert sneaked.status_code == 303
    package = package_show(http, name).json()["result"]
    assert package["title"] == "試験データ"
    assert [g["name"] for g in package["groups"]] == ["other"]


def test_outsiders_do_not_see_department_datasets_on_the_staff_pages(
    browser: Browser, sessions: sessionmaker[Session]
) -> None:
    outsider = browser(make_staff(sessions, department="fukushi", role=Role.admin))
    listed = outsider.get("/staff/datasets")
    assert listed.status_code == 200
    assert "water-mains" not in listed.text and "上水道管路" not in listed.text
    for path in ("edit", "history", "access"):
        hidden = outsider.get(f"/staff/datasets/water-mains/{path}")
        missing = outsider.get(f"/staff/datasets/nosuch-mains/{path}")
        assert hidden.status_code == missing.status_code == 404
        assert hidden.text == missing.text.replace("nosuch-mains", "water-mains")
    shared = browser(make_staff(sessions, department="doboku", role=Role.admin))
    assert shared.get("/staff/datasets/water-mains/history").status_code == 200
    assert shared.get("/staff/datasets/water-mains/access").status_code == 403


def test_anonymous_callers_are_sent_to_sign_in(http: httpx.Client) -> None:
    for path in ("/staff/datasets", "/staff/datasets/new", "/staff/datasets/road-ledger/edit"):
        response = http.get(path)
        assert response.status_code == 303
        assert response.headers["location"] == f"/staff/login?next={path}"


def test_the_staff_dashboard_links_to_the_dataset_pages(
    browser: Browser, sessions: sessionmaker[Session]
) -> None:
    client = browser(make_staff(sessions, department="bosai"))
    assert 'href="/staff/datasets"' in client.get("/staff").text
