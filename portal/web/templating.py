"""Jinja2 rendering with the caller's language."""

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from portal.web.i18n import LANGUAGES, translate

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

    return templates.TemplateResponse(
        request,
        name,
        {
            "t": t,
            "localized": localized,
            "lang": language,
            "other_lang": "en" if language == "ja" else "ja",
            "municipality": localized(settings.municipality_name, settings.municipality_name_en),
            **context,
        },
        status_code=status_code,
    )


def render_error_page(request: Request, status: int, message: str) -> HTMLResponse:
    """Render the HTML error page."""
    return render(request, "error.html", status_code=status, status=status, message=message)
