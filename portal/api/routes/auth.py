"""Staff sign-in and sign-out."""

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from portal.api.deps import SESSION_COOKIE, CsrfDep, PrincipalDep, SessionDep, client_ip
from portal.core import audit
from portal.core.accounts import authenticate
from portal.core.errors import Unauthorized
from portal.core.web_sessions import SESSION_LIFETIME, end_session, start_session
from portal.web.templating import render, set_cookie

router = APIRouter(prefix="/staff", include_in_schema=False)


def safe_next(target: str | None) -> str:
    """Only follow local redirects after sign-in."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/staff"


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, principal: PrincipalDep, next: str | None = None) -> Response:
    """Show the sign-in form."""
    if principal.is_staff:
        return RedirectResponse(safe_next(next), status_code=303)
    return render(request, "staff/login.html", next=safe_next(next), error=None)


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    session: SessionDep,
    _csrf: CsrfDep,
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    next: Annotated[str, Form()] = "/staff",
) -> Response:
    """Check the password, open a session and set its cookie."""
    ip = client_ip(request)
    try:
        principal = authenticate(session, email=email, password=password, ip=ip)
    except Unauthorized as exc:
        return render(
            request, "staff/login.html", status_code=401, next=safe_next(next), error=exc.message
        )
    assert principal.user_id is not None
    raw = start_session(session, user_id=principal.user_id, ip=ip)
    session.commit()
    response = RedirectResponse(safe_next(next), status_code=303)
    set_cookie(
        request, response, SESSION_COOKIE, raw, max_age=int(SESSION_LIFETIME.total_seconds())
    )
    return response


@router.post("/logout")
def logout(
    request: Request, session: SessionDep, principal: PrincipalDep, _csrf: CsrfDep
) -> Response:
    """End the session and clear its cookie."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        end_session(session, cookie)
        audit.record(session, action="logout", actor=principal, ip=client_ip(request))
        session.commit()
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
