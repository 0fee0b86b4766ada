"""FastAPI dependencies: settings, database sessions, the caller's `Principal`, CSRF."""

import hmac
import re
import secrets
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Form, Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from portal.core.errors import Forbidden, Unauthorized
from portal.core.principal import ANONYMOUS, Principal
from portal.core.settings import Settings
from portal.core.storage import Storage
from portal.core.tokens import authenticate_token
from portal.core.web_sessions import anonymous_csrf_token, resolve_session
from portal.web.templating import NONCE_COOKIE

SESSION_COOKIE = "portal_session"
CSRF_FIELD = "csrf_token"

FORWARDED_HOST = re.compile(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")
FORWARDED_PREFIX = re.compile(r"(/[A-Za-z0-9._~-]+)+")


def get_app_settings(request: Request) -> Settings:
    """Return the settings the app was created with."""
    settings: Settings = request.app.state.settings
    return settings


def get_engine(request: Request) -> Engine:
    """Return the app's engine."""
    engine: Engine = request.app.state.engine
    return engine


def get_storage(request: Request) -> Storage:
    """Return the app's file storage."""
    storage: Storage = request.app.state.storage
    return storage


def get_session(request: Request) -> Iterator[Session]:
    """Yield a session for one request; routes commit what they change."""
    session: Session = request.app.state.session_factory()
    try:
        yield session
    finally:
        session.close()


def base_url(request: Request) -> str:
    """Return the portal's public base URL: PORTAL_PUBLIC_URL, else what the client asked for.

    Behind a reverse proxy the client's view comes from X-Forwarded-Proto, X-Forwarded-Host
    and X-Forwarded-Prefix (each optional); without them it is the request's own URL.
    """
    settings: Settings = request.app.state.settings
    if settings.public_url:
        return settings.public_url.rstrip("/")
    own = request.base_url
    scheme = _forwarded(request, "x-forwarded-proto") or own.scheme
    host = _forwarded(request, "x-forwarded-host") or own.netloc
    prefix = (_forwarded(request, "x-forwarded-prefix") or "").rstrip("/")
    if scheme not in ("http", "https") or not FORWARDED_HOST.fullmatch(host):
        scheme, host = own.scheme, own.netloc
    if prefix and not FORWARDED_PREFIX.fullmatch(prefix):
        prefix = ""
    return f"{scheme}://{host}{prefix}{own.path.rstrip('/')}"


def _forwarded(request: Request, header: str) -> str | None:
    """Return the first (client-side) value of a forwarding header."""
    value = request.headers.get(header)
    return value.split(",")[0].strip() if value else None


def client_ip(request: Request) -> str | None:
    """Return the client address (uvicorn applies trusted X-Forwarded-For)."""
    return request.client.host if request.client else None


def get_principal(request: Request, session: Annotated[Session, Depends(get_session)]) -> Principal:
    """Resolve the caller: an API token, a signed-in session, or anonymous."""
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    principal, csrf = _resolve(request, session)
    request.state.principal = principal
    request.state.csrf_token = csrf
    return principal


def _resolve(request: Request, session: Session) -> tuple[Principal, str | None]:
    raw_token = _token_from_headers(request)
    if raw_token is not None:
        if not raw_token:
            raise Unauthorized("the Authorization header is empty")
        return authenticate_token(session, raw_token, ip=client_ip(request)), None
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        resolved = resolve_session(session, cookie)
        if resolved is not None:
            return resolved
    return ANONYMOUS, None


def _token_from_headers(request: Request) -> str | None:
    """Read a token from `Authorization: Bearer …`, plain `Authorization`, or X-CKAN-API-Key."""
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, rest = header.strip().partition(" ")
        return rest.strip() if scheme.lower() == "bearer" else header.strip()
    ckan = request.headers.get("x-ckan-api-key")
    return ckan.strip() if ckan is not None else None


def csrf_token_for(request: Request) -> str:
    """Return the CSRF token to embed in forms for this caller."""
    token = getattr(request.state, "csrf_token", None)
    if token:
        return str(token)
    nonce = request.cookies.get(NONCE_COOKIE) or getattr(request.state, "new_nonce", None)
    if not nonce:
        nonce = secrets.token_urlsafe(24)
        request.state.new_nonce = nonce
    settings: Settings = request.app.state.settings
    return anonymous_csrf_token(settings.secret_key.get_secret_value(), nonce)


def require_csrf(
    request: Request,
    principal: Annotated[Principal, Depends(get_principal)],
    csrf_token: Annotated[str, Form()] = "",
) -> None:
    """Refuse a form post whose CSRF token is missing or forged."""
    expected = getattr(request.state, "csrf_token", None)
    if not expected:
        nonce = request.cookies.get(NONCE_COOKIE)
        if not nonce:
            raise Forbidden("the form has expired or cookies are blocked; reload the page (CSRF)")
        settings: Settings = request.app.state.settings
        expected = anonymous_csrf_token(settings.secret_key.get_secret_value(), nonce)
    if not csrf_token or not hmac.compare_digest(csrf_token, expected):
        raise Forbidden("the form's CSRF token is missing or invalid; reload the page and retry")


def require_staff(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    """Refuse anonymous callers."""
    if not principal.is_staff:
        raise Unauthorized("sign in as staff first / 職員としてサインインしてください")
    return principal


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]
SessionDep = Annotated[Session, Depends(get_session)]
StorageDep = Annotated[Storage, Depends(get_storage)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
StaffDep = Annotated[Principal, Depends(require_staff)]
CsrfDep = Annotated[None, Depends(require_csrf)]
