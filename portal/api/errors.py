"""Map domain errors to HTTP responses, in one place."""

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from portal.core.errors import (
    Conflict,
    DatabaseUnavailable,
    Forbidden,
    HarvestFailed,
    InvalidInput,
    LoadFailed,
    NotFound,
    PayloadTooLarge,
    PortalError,
    PreconditionFailed,
    Unauthorized,
)

log = logging.getLogger(__name__)

STATUS_CODES: dict[type[PortalError], int] = {
    NotFound: 404,
    InvalidInput: 400,
    LoadFailed: 422,
    PayloadTooLarge: 413,
    Unauthorized: 401,
    Forbidden: 403,
    Conflict: 409,
    PreconditionFailed: 412,
    HarvestFailed: 502,
    DatabaseUnavailable: 503,
}


def status_for(error: PortalError) -> int:
    """Return the HTTP status of a domain error (the most specific class wins)."""
    for cls in type(error).__mro__:
        if cls in STATUS_CODES:
            return STATUS_CODES[cls]
    return 500


def problem(status: int, code: str, message: str) -> JSONResponse:
    """Return an RFC 9457 problem document."""
    return JSONResponse(
        {"type": f"about:blank#{code}", "title": code, "status": status, "detail": message},
        status_code=status,
        media_type="application/problem+json",
    )


def register_error_handlers(app: FastAPI) -> None:
    """Install the handlers that turn errors into JSON (or HTML for browsers)."""
    app.add_exception_handler(PortalError, _portal_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected_error)


async def _portal_error(request: Request, exc: PortalError) -> Response:
    status = status_for(exc)
    if status >= 500:
        log.error("%s: %s", exc.code, exc.message)
    return _respond(request, status, exc.code, exc.message)


async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("query", "body", "path"))
        parts.append(f"{where}: {error.get('msg')}" if where else str(error.get("msg")))
    return _respond(request, 400, "invalid_input", "; ".join(parts) or "invalid request")


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    detail = exc.detail if isinstance(exc.detail, str) else code
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no page at {request.url.path}"
    return _respond(request, exc.status_code, code, detail)


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return _respond(request, 500, "internal_error", "an unexpected error occurred; it was logged")


def _respond(request: Request, status: int, code: str, message: str) -> Response:
    if _wants_html(request):
        from portal.web.templating import render_error_page

        return render_error_page(request, status, message)
    if request.url.path == "/ogc" or request.url.path.startswith("/ogc/"):
        return ogc_exception(status, message)
    return problem(status, code, message)


OGC_EXCEPTION_CODES = {
    400: "InvalidParameterValue",
    401: "NotAuthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    412: "PreconditionFailed",
    413: "PayloadTooLarge",
    422: "InvalidParameterValue",
    503: "ServerUnavailable",
}


def ogc_exception(status: int, message: str) -> JSONResponse:
    """Return an OGC API exception document (`code` and `description`)."""
    return JSONResponse(
        {"code": OGC_EXCEPTION_CODES.get(status, "NoApplicableCode"), "description": message},
        status_code=status,
    )


def _wants_html(request: Request) -> bool:
    requested = request.query_params.get("f")
    if requested and (request.url.path == "/ogc" or request.url.path.startswith("/ogc/")):
        return requested.lower() == "html"
    accept = request.headers.get("accept", "")
    return "text/html" in accept


__all__ = ["HTMLResponse", "register_error_handlers", "status_for"]
