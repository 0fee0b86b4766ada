"""Staff harvest pages over real HTTP: sources, the form, run now, jobs and their objects."""

import html
import json
import re
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from portal.core.database import session_scope
from portal.core.errors import InvalidInput
from portal.core.principal import Role
from portal.core.settings import Settings
from portal.core.storage import LocalStorage
from portal.demo.load import DemoLoad
from portal.harvesters import registry
from portal.harvesters.jobs import run_job, start_job, worker_name
from portal.harvesters.models import HarvestJob, HarvestSource
from tests.conftest import LiveServer
from tests.harvest_support import add_source
from tests.harvesters.fake_kind import FakeHarvester
from tests.staff import Staff, csrf_from, make_staff, sign_in

Browser = Callable[[Staff], httpx.Client]
PREFIX = "web-"
SCRIPT = "<script>alert(1)</script>"


class StrictFakeHarvester(FakeHarvester):
    """The fake kind, but its config must list objects (to show a kind's config error)."""

    kind = "strictfake"

    def validate_config(self, url: str, config: dict[str, Any]) -> dict[str, Any]:
        """Refuse a config without an `objects` mapping, and URLs not of the fake scheme."""
        if not url.startswith("fake:"):
            raise InvalidInput(f"{url!r}: give a fake:// URL")
        if not isinstance(config.get("objects"), dict):
            raise InvalidInput('config.objects must map ids to objects, e.g. {"a": {...}}')
        return config


@pytest.fixture(autouse=True)
def fake_kinds(demo_city: list[DemoLoad], sessions: sessionmaker[Session]) -> Iterator[None]:
    registry.KINDS["fake"] = "tests.harvesters.fake_kind:FakeHarvester"
    registry.KINDS["strictfake"] = f"{__name__}:StrictFakeHarvester"
    registry.harvester_for.cache_clear()
    yield
    registry.KINDS.pop("fake")
    registry.KINDS.pop("strictfake")
    registry.harvester_for.cache_clear()
    with session_scope(sessions) as session:  # leave no queued job for other tests' workers
        mine = select(HarvestSource.id).where(HarvestSource.name.startswith(PREFIX))
        session.execute(
            update(HarvestJob)
            .where(HarvestJob.source_id.in_(mine), HarvestJob.status.in_(("queued", "running")))
            .values(status="cancelled")
        )


@pytest.fixture
def browser(live_server: LiveServer) -> Iterator[Browser]:
    """Open clients signed in as staff members."""
    clients: list[httpx.Client] = []

    def open_as(staff: Staff) -> httpx.Client:
        client = httpx.Client(base_url=live_server.url, timeout=30, headers={"accept": "text/html"})
        clients.append(client)
        assert sign_in(client, staff.email).status_code == 303
        return client

    yield open_as
    for client in clients:
        client.close()


def name() -> str:
    return f"{PREFIX}{secrets.token_hex(4)}"


def submit(client: httpx.Client, **fields: Any) -> httpx.Response:
    """Fill in the new-source form with sensible defaults and post it."""
    data: dict[str, Any] = {
        "csrf_token": csrf_from(client.get("/staff/harvest/new").text),
        "name": name(),
        "title": "試験の取り込み元",
        "kind": "fake",
        "url": "fake://objects",
        "department": "doboku",
        "default_visibility": "public",
        "schedule": "manual",
        "cron": "",
        "config": "{}",
    }
    data.update(fields)
    return client.post("/staff/harvest/new", data=data)


def field_errors(page: str) -> dict[str, str]:
    """The messages shown next to each field."""
    found = re.findall(
        r'<p class="error-message field-error" id="[\w-]+" data-field="(\w+)">(.*?)</p>', page
    )
    return dict(found)


def post_with_csrf(client: httpx.Client, page: str, action: str, **data: str) -> httpx.Response:
    return client.post(action, data={"csrf_token": csrf_from(client.get(page).text), **data})


def run_here(sessions: sessionmaker[Session], settings: Settings, job_id: int) -> str:
    """Run a queued job in the test, as the worker would."""
    start_job(sessions, job_id, worker_name())
    return run_job(
        job_id, settings=settings, sessions=sessions, storage=LocalStorage(settings.data_dir)
    )


def job_id_of(response: httpx.Response) -> int:
    assert response.status_code == 303, response.text[:500]
    match = re.fullmatch(r"/staff/harvest/jobs/(\d+)\?queued=1", response.headers["location"])
    assert match, response.headers["location"]
    return int(match.group(1))


def object_rows(page: str) -> list[tuple[str, str, str]]:
    """(remote id, status, message as HTML) per row of the object table."""
    rows = re.findall(
        r'<tr data-object="([^"]*)" data-status="(\w+)">.*?<td class="message">(.*?)</td>',
        page,
        re.S,
    )
    return [(html.unescape(r), s, m) for r, s, m in rows]


def test_an_admin_adds_a_source_with_its_config_and_sees_it_listed(
    browser: Browser, sessions: sessionmaker[Session]
) -> None:
    admin = browser(make_staff(sessions, department="doboku", role=Role.admin))
    form = admin.get("/staff/harvest/new")
    assert form.status_code == 200
    assert 'name="allow_private_network"' not in form.text  # only site admins see it
    assert '<option value="doboku"' in form.text and '<option value="fake"' in form.text
    source = name()
    config = {"objects": {"a": {"title": "地点一覧", "rows": 2}}}
    created = submit(
        admin,
        name=source,
        kind="strictfake",
        config=json.dumps(config, ensure_ascii=False),
        schedule="cron",
        cron="30 2 * * *",
    )
    assert created.status_code == 303, created.text[:1000]
    assert created.headers["location"] == f"/staff/harvest/sources/{source}?created=1"
    page = admin.get(created.headers["location"])
    assert page.status_code == 200
    assert "地点一覧" in page.text and "30 2 * * *" in page.text
    listing = admin.get("/staff/harvest")
    assert f'<tr data-source="{source}">' in listing.text
    assert 'href="/staff/harvest/new"' in listing.text
    assert "portal worker" in listing.text
    with session_scope(sessions) as session:
        stored = session.execute(select(HarvestSource).where(HarvestSource.name == source))
        row = stored.scalar_one()
        assert (row.schedule, row.config, row.allow_private_network) == (
            "30 2 * * *",
            config,
            False,
        )
        assert row.next_run_at is not None
    again = submit(admin, name=source)
    assert again.status_code == 409 and "already exists" in field_errors(again.text)["name"]


def test_bad_cron_bad_json_and_a_kind_config_error_show_next_to_their_fields(
    browser: Browser, sessions: sessionmaker[Session]
) -> None:
    admin = browser(make_staff(sessions, department="doboku", role=Role.admin))
    bad = submit(admin, title="<b>太字</b>", schedule="cron", cron="61 * * * *", config="{oops")
    assert bad.status_code == 400
    errors = field_errors(bad.text)
    assert "cron" in errors["cron"] and "61 * * * *" in errors["cron"]
    assert "JSON" in errors["config"]
    assert "&lt;b&gt;太字&lt;/b&gt;" in bad.text and "<b>太字</b>" not in bad.text
    assert "{oops</textarea>" in bad.text  # what was typed is kept
    not_object = submit(admin, config="[1, 2]")
    assert "JSON" in field_errors(not_object.text)["config"]
    kind_error = submit(admin, kind="strictfake", config="{}")
    assert kind_error.status_code == 400
    assert "config.objects must map" in html.unescape(field_errors(kind_error.text)["config"])
    bad_url = submit(admin, kind="strictfake", url="ftp://elsewhere", config='{"objects": {}}')
    assert "give a fake:// URL" in field_errors(bad_url.text)["url"]
    blank = submit(admin, name="", title="", url="", schedule="cron", cron="")
    assert {"name", "title", "url", "cron"} <= set(field_errors(blank.text))
    with session_scope(sessions) as session:
        assert (
            session.execute(
                select(HarvestSource).where(HarvestSource.title == "<b>太字</b>")
            ).first()
            is None
        )


def test_only_site_admins_may_allow_private_networks(
    browser: Browser, sessions: sessionmaker[Session]
) -> None:
    admin = browser(make_staff(sessions, department="doboku", role=Role.admin))
    refused = submit(admin, allow_private_network="1")
    assert refused.status_code == 403
    assert "site admin" in field_errors(refused.text)["allow_private_network"]
    site_admin = browser(make_staff(sessions, department=None, site_admin=True))
    assert 'name="allow_private_network"' in site_admin.get("/staff/harvest/new").text
    source = name()
    allowed = submit(site_admin, name=source, allow_private_network="1")
    assert allowed.status_code == 303, allowed.text[:1000]
    with session_scope(sessions) as session:
        stored = session.execute(select(HarvestSource).where(HarvestSource.name == source))
        assert stored.scalar_one().allow_private_network is True


def test_run_now_queues_a_job_whose_page_shows_each_objects_result(
    browser: Browser, sessions: sessionmaker[Session], settings: Settings
) -> None:
    source = name()
    failing = {
        f"f{i:02d}": {"title": "x", "rows": 1, "fail": f"列が足りません ({i})"} for i in range(51)
    }
    failing["evil"] = {"title": "x", "rows": 1, "fail": f"読めません {SCRIPT}"}
    ok = {f"{source}-ok": {"title": "試験の地点", "rows": 2}}
    add_source(sessions, name=source, kind="fake", url="fake://", config={"objects": ok | failing})
    editor = browser(make_staff(sessions, department="doboku", role=Role.editor))
    assert f'action="/staff/harvest/{source}/run"' in editor.get("/staff/harvest").text
    job_id = job_id_of(post_with_csrf(editor, "/staff/harvest", f"/staff/harvest/{source}/run"))
    queued = editor.get(f"/staff/harvest/jobs/{job_id}?queued=1")
    assert queued.status_code == 200
    assert '<meta http-equiv="refresh" content="5">' in queued.text
    assert "portal worker" in queued.text and 'data-status="queued"' in queued.text
    assert run_here(sessions, settings, job_id) == "partial"
    done = editor.get(f"/staff/harvest/jobs/{job_id}")
    assert 'http-equiv="refresh"' not in done.text
    assert 'data-status="partial"' in done.text and worker_name() in done.text
    rows = object_rows(done.text)
    assert len(rows) == 50 and 'rel="next"' in done.text
    rest = object_rows(editor.get(f"/staff/harvest/jobs/{job_id}?page=2").text)
    assert len(rest) == 3
    everything = {remote: (status, message) for remote, status, message in rows + rest}
    assert everything[f"{source}-ok"] == ("created", "")
    assert everything["f07"] == ("failed", "列が足りません (7)")
    failed = editor.get(f"/staff/harvest/jobs/{job_id}?failed=1")
    second = editor.get(f"/staff/harvest/jobs/{job_id}?failed=1&page=2")
    failed_rows = object_rows(failed.text) + object_rows(second.text)
    assert len(failed_rows) == 52 and {s for _, s, _ in failed_rows} == {"failed"}
    assert "failed=1" in re.search(r'<a rel="next" href="([^"]+)"', failed.text).group(1)  # type: ignore[union-attr]
    evil = next(m for r, _, m in failed_rows if r == "evil")
    assert evil == f"読めません {html.escape(SCRIPT)}"
    assert SCRIPT not in failed.text + second.text
    listing = editor.get("/staff/harvest").text
    assert f'<a href="/staff/harvest/jobs/{job_id}">#{job_id}</a>' in listing


def test_a_viewer_cannot_run_and_other_departments_see_nothing(
    browser: Browser, sessions: sessionmaker[Session]
) -> None:
    source = name()
    config = {"objects": {}, "api_key": "s3cret-value"}
    add_source(sessions, name=source, kind="fake", url="fake://", config=config)
    viewer = browser(make_staff(sessions, department="doboku", role=Role.viewer))
    settings_page = viewer.get(f"/staff/harvest/sources/{source}")
    assert settings_page.status_code == 200
    assert "api_key" in settings_page.text and "s3cret-value" not in settings_page.text
    assert 'href="/staff/harvest/new"' not in viewer.get("/staff/harvest").text
    assert viewer.get("/staff/harvest/new").status_code == 403
    refused = post_with_csrf(viewer, "/staff/harvest", f"/staff/harvest/{source}/run")
    assert refused.status_code == 403 and "editor role" in refused.text
    editor = browser(make_staff(sessions, department="doboku", role=Role.editor))
    job_id = job_id_of(post_with_csrf(editor, "/staff/harvest", f"/staff/harvest/{source}/run"))
    outsider = browser(make_staff(sessions, department="fukushi", role=Role.admin))
    assert f'data-source="{source}"' not in outsider.get("/staff/harvest").text
    assert outsider.get(f"/staff/harvest/sources/{source}").status_code == 404
    assert outsider.get(f"/staff/harvest/jobs/{job_id}").status_code == 404
    assert outsider.get(f"/staff/harvest/jobs/{job_id}?failed=1").status_code == 404
    ran = post_with_csrf(outsider, "/staff/harvest", f"/staff/harvest/{source}/run")
    assert ran.status_code == 404
    cancel = post_with_csrf(outsider, "/staff/harvest", f"/staff/harvest/jobs/{job_id}/cancel")
    assert cancel.status_code == 404
    foreign = submit(outsider, department="doboku")  # not among the outsider's choices
    assert foreign.status_code == 403
    assert "admin role" in field_errors(foreign.text)["department"]


def test_editors_cancel_queued_jobs_and_admins_pause_schedules(
    browser: Browser, sessions: sessionmaker[Session]
) -> None:
    source = name()
    add_source(sessions, name=source, kind="fake", url="fake://", config={"objects": {}})
    editor = browser(make_staff(sessions, department="doboku", role=Role.editor))
    job_id = job_id_of(post_with_csrf(editor, "/staff/harvest", f"/staff/harvest/{source}/run"))
    page = f"/staff/harvest/jobs/{job_id}"
    cancelled = post_with_csrf(editor, page, f"{page}/cancel")
    assert cancelled.status_code == 303
    shown = editor.get(cancelled.headers["location"]).text
    assert 'data-status="cancelled"' in shown and 'http-equiv="refresh"' not in shown
    assert f'action="{page}/cancel"' not in shown
    again = editor.post(f"{page}/cancel", data={"csrf_token": csrf_from(shown)})
    assert again.status_code == 409
    settings_page = f"/staff/harvest/sources/{source}"
    action = f"{settings_page}/enabled"
    assert f'action="{action}"' not in editor.get(settings_page).text
    assert post_with_csrf(editor, settings_page, action, enabled="false").status_code == 403
    admin = browser(make_staff(sessions, department="doboku", role=Role.admin))
    paused = post_with_csrf(admin, settings_page, action, enabled="false")
    assert paused.status_code == 303
    with session_scope(sessions) as session:
        row = session.execute(select(HarvestSource).where(HarvestSource.name == source))
        assert row.scalar_one().enabled is False


def test_forms_need_csrf_and_visitors_are_sent_to_sign_in(
    browser: Browser, sessions: sessionmaker[Session], http: httpx.Client
) -> None:
    source = name()
    add_source(sessions, name=source, kind="fake", url="fake://", config={"objects": {}})
    admin = browser(make_staff(sessions, department="doboku", role=Role.admin))
    admin.get("/staff/harvest")
    no_token = admin.post("/staff/harvest/new", data={"name": name(), "title": "x"})
    assert no_token.status_code == 403 and "CSRF" in no_token.text
    forged = admin.post(f"/staff/harvest/{source}/run", data={"csrf_token": "forged"})
    assert forged.status_code == 403
    with session_scope(sessions) as session:
        source_id = session.execute(
            select(HarvestSource.id).where(HarvestSource.name == source)
        ).scalar_one()
        queued = session.execute(select(HarvestJob).where(HarvestJob.source_id == source_id))
        assert queued.first() is None
    for path in (
        "/staff/harvest",
        "/staff/harvest/new",
        f"/staff/harvest/sources/{source}",
        "/staff/harvest/jobs/1",
    ):
        visitor = http.get(path)
        assert visitor.status_code == 303
        assert visitor.headers["location"] == f"/staff/login?next={path}"
