"""Staff pages for harvesting: sources, the new-source form, run now, job history and results."""

import json
import math
import re
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from portal.api.deps import CsrfDep, PrincipalDep, SessionDep, client_ip
from portal.api.routes.catalog_common import HtmlPageRoute, local_time
from portal.api.routes.staff import _sign_in_first
from portal.catalog.departments import DepartmentPublic, list_departments
from portal.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from portal.core.principal import Principal, Role, Visibility
from portal.harvesters.manage import (
    cancel_job,
    get_job,
    job_object_page,
    latest_jobs,
    run_now,
    set_source_enabled,
    source_problems,
)
from portal.harvesters.models import OBJECT_STATES
from portal.harvesters.registry import KINDS
from portal.harvesters.schedule import INTERVALS
from portal.harvesters.sources import (
    SourceCreate,
    create_source,
    get_source,
    list_jobs,
    list_sources,
)
from portal.web.i18n import translate
from portal.web.templating import language_of, render

router = APIRouter(prefix="/staff/harvest", include_in_schema=False, route_class=HtmlPageRoute)
OBJECTS_PER_PAGE = 50
RECENT_JOBS = 30
REFRESH_SECONDS = 5
SCHEDULES = ("manual", *INTERVALS, "cron")
MAX_CONFIG_CHARS = 100_000
FORM_FIELDS = (
    "name", "title", "kind", "url", "department", "default_visibility", "schedule", "cron",
    "config", "allow_private_network",
)  # fmt: skip
SECRET_KEY = re.compile(r"key|token|secret|password|passwd|credential", re.IGNORECASE)
Errors = dict[str, list[str]]
Text = Annotated[str, Form()]


@router.get("", response_class=HTMLResponse)
def overview(request: Request, session: SessionDep, principal: PrincipalDep) -> Response:
    """List the caller's sources with their last job, and the recent jobs."""
    if redirect := _sign_in_first(request, principal):
        return redirect
    departments = {d.slug: d for d in list_departments(session)}
    sources = list_sources(session, principal)
    return render(
        request,
        "staff/harvest/index.html",
        sources=sources,
        latest=latest_jobs(session, principal),
        jobs=list_jobs(session, principal, limit=RECENT_JOBS),
        departments=departments,
        can_run={
            s.name: _has_role(principal, departments[s.department], Role.editor) for s in sources
        },
        can_add=bool(_admin_departments(session, principal)),
        **_helpers(),
    )


@router.get("/new", response_class=HTMLResponse)
def new_page(request: Request, session: SessionDep, principal: PrincipalDep) -> Response:
    """Show the new-source form (department admins)."""
    if redirect := _sign_in_first(request, principal):
        return redirect
    departments = _require_admin_departments(session, principal)
    values = {
        "kind": next(iter(KINDS)),
        "department": departments[0].slug,
        "default_visibility": Visibility.public.value,
        "schedule": "manual",
        "config": "{}",
    }
    return _source_form(request, session, principal, values, {})


@router.post("/new", response_class=HTMLResponse)
def create_page(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    _csrf: CsrfDep,
    name: Text = "",
    title: Text = "",
    kind: Text = "",
    url: Text = "",
    department: Text = "",
    default_visibility: Text = "public",
    schedule: Text = "manual",
    cron: Text = "",
    config: Annotated[str, Form(max_length=MAX_CONFIG_CHARS)] = "{}",
    allow_private_network: Annotated[bool, Form()] = False,
) -> Response:
    """Register a source; show the form again with the problems if the entries are invalid."""
    if redirect := _sign_in_first(request, principal):
        return redirect
    _require_admin_departments(session, principal)
    values: dict[str, Any] = {
        "name": name, "title": title, "kind": kind, "url": url, "department": department,
        "default_visibility": default_visibility, "schedule": schedule, "cron": cron,
        "config": config.replace("\r\n", "\n"), "allow_private_network": allow_private_network,
    }  # fmt: skip
    data, errors = _entries(request, values)
    status = 400
    if data is not None:
        try:
            create_source(session, principal, data, ip=client_ip(request))
        except Forbidden as exc:
            field = "allow_private_network" if data.allow_private_network else "department"
            errors, status = {field: [exc.message]}, 403
        except Conflict as exc:
            errors, status = {"name": [exc.message]}, 409
        except NotFound as exc:
            errors = {"department": [exc.message]}
        except InvalidInput as exc:
            errors = {"form": [exc.message]}
        else:
            session.commit()
            return RedirectResponse(f"/staff/harvest/sources/{data.name}?created=1", 303)
    session.rollback()
    return _source_form(request, session, principal, values, errors, status)


@router.get("/sources/{name}", response_class=HTMLResponse)
def source_page(
    request: Request, name: str, session: SessionDep, principal: PrincipalDep
) -> Response:
    """Show one source: its settings and its job history."""
    if redirect := _sign_in_first(request, principal):
        return redirect
    source = get_source(session, principal, name)
    department = next(d for d in list_departments(session) if d.slug == source.department)
    return render(
        request,
        "staff/harvest/source.html",
        source=source,
        department=department,
        jobs=list_jobs(session, principal, source=source.name),
        config_json=json.dumps(_masked(source.config), ensure_ascii=False, indent=2),
        can_run=_has_role(principal, department, Role.editor),
        can_admin=_has_role(principal, department, Role.admin),
        notice=next(
            (k for k in ("created", "paused", "resumed") if request.query_params.get(k)), ""
        ),
        **_helpers(),
    )


@router.post("/sources/{name}/enabled")
def change_enabled(
    request: Request,
    name: str,
    session: SessionDep,
    principal: PrincipalDep,
    _csrf: CsrfDep,
    enabled: Annotated[bool, Form()],
) -> Response:
    """Pause or resume a source's schedule (department admins)."""
    if redirect := _sign_in_first(request, principal):
        return redirect
    source = set_source_enabled(session, principal, name, enabled, ip=client_ip(request))
    session.commit()
    notice = "resumed" if enabled else "paused"
    return RedirectResponse(f"/staff/harvest/sources/{source.name}?{notice}=1", 303)


@router.post("/{name}/run")
def run_page(
    request: Request, name: str, session: SessionDep, principal: PrincipalDep, _csrf: CsrfDep
) -> Response:
    """Queue a job for a source (editors); a worker (`portal worker`) runs it."""
    if redirect := _sign_in_first(request, principal):
        return redirect
    job_id = run_now(session, principal, name, ip=client_ip(request))
    session.commit()
    return RedirectResponse(f"/staff/harvest/jobs/{job_id}?queued=1", 303)


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(
    request: Request,
    job_id: int,
    session: SessionDep,
    principal: PrincipalDep,
    failed: Annotated[bool, Query()] = False,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> Response:
    """Show a job: status, timings, stats and its per-object results, 50 at a time."""
    if redirect := _sign_in_first(request, principal):
        return redirect
    job = get_job(session, principal, job_id)
    objects, total = job_object_page(
        session,
        principal,
        job_id,
        only_failed=failed,
        limit=OBJECTS_PER_PAGE,
        offset=(page - 1) * OBJECTS_PER_PAGE,
    )
    department = next(d for d in list_departments(session) if d.slug == job.source.department)
    return render(
        request,
        "staff/harvest/job.html",
        job=job,
        objects=objects,
        total=total,
        failed=failed,
        page=page,
        pages=max(math.ceil(total / OBJECTS_PER_PAGE), 1),
        per_page=OBJECTS_PER_PAGE,
        refresh=REFRESH_SECONDS if job.active else None,
        can_cancel=job.active and _has_role(principal, department, Role.editor),
        notice=next((k for k in ("queued", "cancelled") if request.query_params.get(k)), ""),
        **_helpers(),
    )


@router.post("/jobs/{job_id}/cancel")
def cancel_page(
    request: Request, job_id: int, session: SessionDep, principal: PrincipalDep, _csrf: CsrfDep
) -> Response:
    """Cancel a queued or running job (editors); a running job stops at its next heartbeat."""
    if redirect := _sign_in_first(request, principal):
        return redirect
    cancel_job(session, principal, job_id, ip=client_ip(request))
    session.commit()
    return RedirectResponse(f"/staff/harvest/jobs/{job_id}?cancelled=1", 303)


def _entries(request: Request, values: dict[str, Any]) -> tuple[SourceCreate | None, Errors]:
    """Validate the new-source form; return the source, or the problems by field."""
    language = language_of(request)
    errors: Errors = {}
    cron_chosen = values["schedule"] == "cron"
    schedule = values["cron"].strip() if cron_chosen else values["schedule"]
    schedule_field = "cron" if cron_chosen else "schedule"
    if cron_chosen and not schedule:
        errors["cron"] = [translate(language, "staff.harvest.errors.cron_missing")]
    config: dict[str, Any] | None = None
    try:
        parsed = json.loads(values["config"].strip() or "{}")
    except json.JSONDecodeError as exc:
        errors["config"] = [
            translate(
                language,
                "staff.harvest.errors.json",
                line=exc.lineno,
                column=exc.colno,
                reason=exc.msg,
            )
        ]
    else:
        if isinstance(parsed, dict):
            config = parsed
        else:
            errors["config"] = [translate(language, "staff.harvest.errors.json_object")]
    fields = {k: values[k] for k in ("name", "title", "kind", "url", "department")}
    try:
        data: SourceCreate | None = SourceCreate(
            **fields,
            default_visibility=values["default_visibility"],
            schedule=schedule or "manual",
            config=config or {},
            allow_private_network=values["allow_private_network"],
        )
    except ValidationError as exc:
        data = None
        for field, message in _validation_errors(exc, language):
            errors.setdefault(field, []).append(message)
    problems = source_problems(
        kind=values["kind"],
        url=values["url"].strip(),
        schedule=schedule,
        config=config if values["url"].strip() else None,
    )
    for field, message in problems.items():
        target = schedule_field if field == "schedule" else field
        if target not in errors:
            errors[target] = [message]
    ordered = {field: errors[field] for field in sorted(errors, key=_field_position)}
    return (None if errors else data), ordered


def _field_position(field: str) -> int:
    return FORM_FIELDS.index(field) if field in FORM_FIELDS else len(FORM_FIELDS)


def _validation_errors(exc: ValidationError, language: str) -> list[tuple[str, str]]:
    found = []
    for error in exc.errors():
        location = error.get("loc") or ()
        field = str(location[0]) if location else "form"
        if field == "config":
            continue  # checked as JSON above
        if error["type"] == "missing" or (
            error["type"] == "string_too_short" and not error["input"]
        ):
            message = translate(language, "staff.harvest.errors.required")
        else:
            message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        found.append((field, message))
    return found


def _source_form(
    request: Request,
    session: Session,
    principal: Principal,
    values: dict[str, Any],
    errors: Errors,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "staff/harvest/form.html",
        status_code=status_code,
        values=values,
        errors=errors,
        departments=_require_admin_departments(session, principal),
        kinds=list(KINDS),
        schedules=SCHEDULES,
        visibilities=list(Visibility),
        **_helpers(),
    )


def _admin_departments(session: Session, principal: Principal) -> list[DepartmentPublic]:
    """The departments where the caller may add sources (every one for site admins)."""
    return [d for d in list_departments(session) if principal.has_role(d.id, Role.admin)]


def _require_admin_departments(session: Session, principal: Principal) -> list[DepartmentPublic]:
    found = _admin_departments(session, principal)
    if not found:
        raise Forbidden("adding a harvest source needs the admin role in a department")
    return found


def _has_role(principal: Principal, department: DepartmentPublic, role: Role) -> bool:
    return principal.has_role(department.id, role)


def _masked(value: Any) -> Any:
    """A source's settings for display, with credentials hidden."""
    if isinstance(value, dict):
        return {
            k: "********" if SECRET_KEY.search(str(k)) and v else _masked(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return value


def _helpers() -> dict[str, Any]:
    return {"local_time": local_time, "object_states": OBJECT_STATES}
