"""Staff pages: my tokens, department members, layer visibility and sharing, the audit log."""

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from portal.api.deps import CsrfDep, PrincipalDep, SessionDep, client_ip
from portal.catalog.departments import department_id_by_slug, list_departments
from portal.core import audit
from portal.core.accounts import change_membership, list_members
from portal.core.errors import InvalidInput
from portal.core.principal import Principal, Role, Visibility
from portal.core.tokens import create_token, list_tokens, revoke_token
from portal.geo.registry import list_manageable_layers, set_layer_access
from portal.web.templating import render

router = APIRouter(prefix="/staff", include_in_schema=False)
AUDIT_PAGE_SIZE = 50


def _sign_in_first(request: Request, principal: Principal) -> Response | None:
    if principal.is_staff:
        return None
    return RedirectResponse(f"/staff/login?next={request.url.path}", status_code=303)


@router.get("", response_class=HTMLResponse)
def dashboard(request: Request, session: SessionDep, principal: PrincipalDep) -> Response:
    """Show the signed-in staff member's departments and what they can manage."""
    if redirect := _sign_in_first(request, principal):
        return redirect
    departments = list_departments(session)
    mine = [(d, principal.memberships[d.id]) for d in departments if d.id in principal.memberships]
    return render(request, "staff/index.html", memberships=mine)


@router.get("/tokens", response_class=HTMLResponse)
def tokens_page(request: Request, session: SessionDep, principal: PrincipalDep) -> Response:
    """List the caller's API tokens."""
    if redirect := _sign_in_first(request, principal):
        return redirect
    return render(
        request, "staff/tokens.html", tokens=list_tokens(session, principal), created=None
    )


@router.post("/tokens", response_class=HTMLResponse)
def create_token_page(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    _csrf: CsrfDep,
    name: Annotated[str, Form(max_length=100)] = "",
    expires_days: Annotated[int, Form(ge=1, le=365)] = 30,
) -> Response:
    """Create a token and show its secret once."""
    if redirect := _sign_in_first(request, principal):
        return redirect
    assert principal.user_id is not None
    raw = create_token(
        session,
        user_id=principal.user_id,
        name=name,
        expires_in=timedelta(days=expires_days),
        actor=principal,
        ip=client_ip(request),
    )
    session.commit()
    return render(request, "staff/tokens.html", tokens=list_tokens(session, principal), created=raw)


@router.post("/tokens/{token_id}/revoke")
def revoke_token_page(
    request: Request, token_id: int, session: SessionDep, principal: PrincipalDep, _csrf: CsrfDep
) -> Response:
    """Revoke one of the caller's tokens."""
    if redirect := _sign_in_first(request, principal):
        return redirect
    revoke_token(session, principal, token_id, ip=client_ip(request))
    session.commit()
    return RedirectResponse("/staff/tokens", status_code=303)


@router.get("/departments/{slug}/members", response_class=HTMLResponse)
def members_page(
    request: Request, slug: str, session: SessionDep, principal: PrincipalDep
) -> Response:
    """List a department's members (department admins)."""
    if redirect := _sign_in_first(request, principal):
        return redirect
    department_id = department_id_by_slug(session, slug)
    members = list_members(session, principal, department_id)
    department = next(d for d in list_departments(session) if d.id == department_id)
    return render(
        request, "staff/members.html", department=department, members=members, roles=list(Role)
    )


@router.post("/departments/{slug}/members")
def change_member(
    request: Request,
    slug: str,
    session: SessionDep,
    principal: PrincipalDep,
    _csrf: CsrfDep,
    email: Annotated[str, Form(max_length=320)],
    role: Annotated[str, Form()],
) -> Response:
    """Add a member, change their role, or remove them."""
    if redirect := _sign_in_first(request, principal):
        return redirect
    if role not in {*Role, "remove"}:
        raise InvalidInput(f"unknown role {role!r}; use viewer, editor, admin or remove")
    change_membership(
        session,
        principal,
        department_id=department_id_by_slug(session, slug),
        email=email,
        role=None if role == "remove" else Role(role),
        ip=client_ip(request),
    )
    session.commit()
    return RedirectResponse(f"/staff/departments/{slug}/members", status_code=303)


@router.get("/layers", response_class=HTMLResponse)
def layers_page(request: Request, session: SessionDep, principal: PrincipalDep) -> Response:
    """List the layers whose visibility and sharing the caller manages."""
    if redirect := _sign_in_first(request, principal):
        return redirect
    return render(
        request,
        "staff/layers.html",
        layers=list_manageable_layers(session, principal),
        departments=list_departments(session),
        visibilities=list(Visibility),
    )


@router.post("/layers/{layer_id}")
def change_layer_access(
    request: Request,
    layer_id: str,
    session: SessionDep,
    principal: PrincipalDep,
    _csrf: CsrfDep,
    visibility: Annotated[Visibility, Form()],
    shared_with: Annotated[list[int] | None, Form()] = None,
) -> Response:
    """Change a layer's visibility and the departments it is shared with."""
    if redirect := _sign_in_first(request, principal):
        return redirect
    set_layer_access(
        session,
        principal,
        layer_id=layer_id,
        visibility=visibility,
        shared_with=shared_with or [],
        ip=client_ip(request),
    )
    session.commit()
    return RedirectResponse("/staff/layers", status_code=303)


@router.get("/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    action: Annotated[str | None, Query(max_length=64)] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    """Show the audit log, newest first (site admins)."""
    if redirect := _sign_in_first(request, principal):
        return redirect
    entries = audit.list_entries(
        session,
        principal,
        action=action or None,
        limit=AUDIT_PAGE_SIZE + 1,
        offset=(page - 1) * AUDIT_PAGE_SIZE,
    )
    return render(
        request,
        "staff/audit.html",
        entries=entries[:AUDIT_PAGE_SIZE],
        action=action or "",
        page=page,
        has_next=len(entries) > AUDIT_PAGE_SIZE,
    )
