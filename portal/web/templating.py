"""Jinja2 rendering with the caller's language."""

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates

from portal.core.principal import ANONYMOUS
from portal.web.i18n import LANGUAGES, translate

NONCE_COOKIE = "portal_nonce"

WEB_DIR = Path(__file__).resolve().parent
STATIC_DIR = WEB_DIR / "static"
templates = Jinja2Templates(directory=WEB_DIR / "templates")


def language_of(request: Request) -> str:
    """Return the language chosen for this request."""
    language = getattr(request.state, "lang", "ja")
    return language if language in LANGUAGES else "ja"


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render a template with `t()` bound to the request's language."""
    language = language_of(request)
    settings = request.app.state.settings

    def t(key: str, **values: object) -> str:
        return translate(language, key, **values)

    def localized(ja: str | None, en: str | None) -> str:
        return (en or ja or "") if language == "en" else (ja or en or "")

    from portal.api.deps import csrf_token_for  # the web layer sits above the API layer

    response = templates.TemplateResponse(
        request,
        name,
        {
            "t": t,
            "csrf_token": lambda: csrf_token_for(request),
            "principal": getattr(request.state, "principal", ANONYMOUS),
            "localized": localized,
            "lang": language,
            "other_lang": "en" if language == "ja" else "ja",
            "municipality": localized(settings.municipality_name, settings.municipality_name_en),
            **context,
        },
        status_code=status_code,
    )
    # The body is rendered above, so a nonce created for a form's CSRF token is known now.
    nonce = getattr(request.state, "new_nonce", None)
    if nonce:
        set_cookie(request, response, NONCE_COOKIE, nonce, max_age=24 * 3600)
    return response


def set_cookie(
    request: Request, response: Response, name: str, value: str, *, max_age: int | None
) -> None:
    """Set an HttpOnly, SameSite=Lax cookie, Secure when the request came over https."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )


def render_error_page(request: Request, status: int, message: str) -> HTMLResponse:
    """Render the HTML error page."""
    return render(request, "error.html", status_code=status, status=status, message=message)
