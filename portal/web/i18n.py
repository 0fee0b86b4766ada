"""Message catalogs (Japanese first, English second) and the language switch."""

import tomllib
from functools import lru_cache
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Message, Receive, Scope, Send

LANGUAGES = ("ja", "en")
CATALOG_DIR = Path(__file__).resolve().parent / "i18n"
COOKIE = "lang"
ONE_YEAR = 365 * 24 * 3600


@lru_cache
def catalog(language: str) -> dict[str, str]:
    """Return the flat message catalog of a language: `{lang}.toml` plus `{area}.{lang}.toml`."""
    messages: dict[str, str] = {}
    for path in [CATALOG_DIR / f"{language}.toml", *sorted(CATALOG_DIR.glob(f"*.{language}.toml"))]:
        with path.open("rb") as handle:
            messages |= _flatten(tomllib.load(handle))
    return messages


def translate(language: str, key: str, **values: object) -> str:
    """Return the message for `key`, falling back to Japanese, then to the key itself."""
    message = catalog(language).get(key) or catalog("ja").get(key) or key
    return message.format(**values) if values else message


def _flatten(tree: dict[str, object], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat |= _flatten(value, name + ".")
        else:
            flat[name] = str(value)
    return flat


class LanguageMiddleware:
    """Choose the page language from `?lang=`, then the cookie, then the default."""

    def __init__(self, app: ASGIApp, default: str = "ja") -> None:
        self.app = app
        self.default = default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Set `request.state.lang`, and remember an explicit choice in a cookie."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        asked = (query.get("lang") or [""])[0]
        chosen = asked if asked in LANGUAGES else self._from_cookie(scope) or self.default
        scope.setdefault("state", {})["lang"] = chosen

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start" and asked in LANGUAGES:
                cookie = f"{COOKIE}={asked}; Path=/; Max-Age={ONE_YEAR}; SameSite=Lax"
                message.setdefault("headers", []).append((b"set-cookie", cookie.encode()))
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    @staticmethod
    def _from_cookie(scope: Scope) -> str | None:
        for name, value in scope.get("headers", []):
            if name == b"cookie":
                jar: SimpleCookie = SimpleCookie()
                jar.load(value.decode("latin-1"))
                if COOKIE in jar and jar[COOKIE].value in LANGUAGES:
                    return jar[COOKIE].value
        return None
