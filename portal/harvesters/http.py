"""Fetching harvest URLs safely: the only way harvesters reach the network.

Every request resolves the host itself, refuses non-public addresses unless a site admin
allowed private networks for the source, and then connects to exactly the address it
checked (the URL is rewritten to the IP; `Host` and TLS SNI keep the name, so certificates
are still verified against the name). That pins the connection and closes the DNS-rebinding
gap between "check" and "connect". Redirects are followed by hand so each hop is checked the
same way. Bodies are streamed with a size limit and a total deadline; network errors and
502/503/504/429 are retried with exponential backoff and jitter, 4xx never.

Residual risks: `socket.getaddrinfo` has no timeout of its own (the resolver's applies), and
proxies from the environment are ignored on purpose, since a proxy would connect elsewhere.
"""

import hashlib
import ipaddress
import json
import random
import socket
import ssl
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from functools import cache
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from portal.core.errors import HarvestFailed, InvalidInput
from portal.harvesters.base import HarvestContext

USER_AGENT = "portal-harvester/0.1 (municipal open data portal)"
CONNECT_TIMEOUT = 10.0
REQUEST_SECONDS = 1800.0  # one request (with its retries) never runs longer than this
MAX_DOCUMENT_BYTES = 64 * 1024 * 1024  # an API answer or catalog page
MAX_REDIRECTS = 5
RETRY_STATUSES = {429, 502, 503, 504}
BACKOFF_BASE = 0.5
BACKOFF_CAP = 30.0
RETRY_AFTER_CAP = 60.0
ERROR_BODY_BYTES = 64 * 1024
CHUNK_BYTES = 64 * 1024
_URL_SHOWN = 300
M = TypeVar("M", bound=BaseModel)


class NetworkConfig(BaseModel):
    """Source settings every network kind accepts (plus those the job runner reads)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    timeout: float = Field(default=30.0, ge=1, le=600)
    retries: int = Field(default=2, ge=0, le=5)
    delete_missing: bool = True
    source_crs: str | None = None


class Refused(HarvestFailed):
    """A URL the portal will not fetch (scheme or address)."""


class TooLarge(HarvestFailed):
    """A response over the size limit."""

    code = "payload_too_large"


class HttpStatusError(HarvestFailed):
    """The server answered with an error status."""

    def __init__(self, message: str, *, status: int, body: bytes, content_type: str) -> None:
        super().__init__(message)
        self.status = status
        self.body = body
        self.content_type = content_type

    def json(self) -> Any:
        """The error body as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None


@dataclass
class Response:
    """A complete response held in memory."""

    url: str
    status: int
    headers: httpx.Headers
    content: bytes

    @property
    def content_type(self) -> str:
        """The media type, lower-cased, without parameters."""
        return media_type(self.headers)


class Downloaded(NamedTuple):
    """A downloaded file."""

    path: Path
    sha256: str
    size: int
    content_type: str


class _Transient(Exception):
    """A failure worth trying again (network trouble, 502/503/504/429)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


def parse_config(model: type[M], config: dict[str, Any]) -> M:
    """Validate a source config, turning pydantic's errors into one readable InvalidInput."""
    try:
        return model.model_validate(config)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]) or "config"
            if error["type"] == "extra_forbidden":
                known = ", ".join(model.model_fields)
                problems.append(f"unknown setting {where!r}; use one of: {known}")
            else:
                problems.append(f"{where}: {error['msg']}")
        raise InvalidInput("; ".join(problems)) from None


def check_url(url: str) -> httpx.URL:
    """Accept only absolute http(s) URLs with a host; raise Refused otherwise."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        raise Refused(f"{shown(url)} is not a valid URL") from None
    if parsed.scheme not in ("http", "https"):
        raise Refused(f"{shown(url)}: only http:// and https:// addresses can be harvested")
    if not parsed.host:
        raise Refused(f"{shown(url)} has no host name")
    return parsed


def validate_source_url(url: str) -> str:
    """Check a source URL when the source is saved (InvalidInput for the form)."""
    try:
        check_url(url)
    except Refused as exc:
        raise InvalidInput(exc.message) from None
    return url


def address_problem(address: str) -> str | None:
    """Say why an IP address is not a public one, or None when it is."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is not None:
            ip = embedded
    if str(ip) == "169.254.169.254":
        return "a link-local address (the cloud metadata service)"
    checks = (
        (ip.is_unspecified, "an unspecified address"),
        (ip.is_loopback, "a loopback address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_multicast, "a multicast address"),
        (ip.is_private, "a private address"),
        (ip.is_reserved, "a reserved address"),
        (not ip.is_global, "not a public address"),
    )
    return next((reason for failed, reason in checks if failed), None)


def resolve(url: httpx.URL, *, allow_private: bool) -> list[str]:
    """Return the addresses of a URL's host, refusing non-public ones unless allowed."""
    host = url.raw_host.decode("ascii")
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        addresses = [str(ipaddress.ip_address(host))]
        literal = True
    except ValueError:
        literal = False
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            if exc.errno == socket.EAI_AGAIN:
                raise _Transient(f"could not look up {host} (DNS is not answering)") from None
            raise HarvestFailed(
                f"cannot find the server {host}: the name does not resolve; check the address"
            ) from None
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not allow_private:
        for address in addresses:
            problem = address_problem(address)
            if problem:
                subject = address if literal else f"{host} resolves to {address}, which"
                raise Refused(
                    f"refused: {subject} is {problem}; ask a site admin to allow private "
                    "networks for this source"
                )
    return addresses


def get(
    ctx: HarvestContext,
    url: str,
    params: dict[str, Any] | None = None,
    *,
    accept: str = "*/*",
    max_bytes: int = MAX_DOCUMENT_BYTES,
    limit_hint: str = "the limit for one page",
) -> Response:
    """GET a URL into memory; raise HarvestFailed (or a subclass) with a clerk-readable message."""
    body = _Body(None)
    final, status, headers = _request(ctx, url, params, accept, body, max_bytes, limit_hint)
    return Response(final, status, headers, bytes(body.buffer))


def get_json(
    ctx: HarvestContext,
    url: str,
    params: dict[str, Any] | None = None,
    *,
    hint: str = "",
    max_bytes: int = MAX_DOCUMENT_BYTES,
) -> Any:
    """GET a URL and parse it as JSON; HTML or broken JSON is a HarvestFailed."""
    response = get(ctx, url, params, accept="application/json", max_bytes=max_bytes)
    suffix = f": {hint}" if hint else ""
    if looks_like_html(response.content, response.content_type):
        raise HarvestFailed(f"{shown(response.url)} returned HTML, not JSON{suffix}")
    try:
        return json.loads(response.content)
    except ValueError as exc:
        raise HarvestFailed(
            f"{shown(response.url)} did not return valid JSON ({exc}){suffix}"
        ) from None


def get_text(
    ctx: HarvestContext,
    url: str,
    params: dict[str, Any] | None = None,
    *,
    accept: str = "*/*",
    max_bytes: int = MAX_DOCUMENT_BYTES,
) -> str:
    """GET a URL as text, decoded with the declared charset (UTF-8 when none)."""
    response = get(ctx, url, params, accept=accept, max_bytes=max_bytes)
    return httpx.Response(200, headers=response.headers, content=response.content).text


def download(
    ctx: HarvestContext,
    url: str,
    target: Path,
    max_bytes: int,
    *,
    limit_hint: str = "max_resource_bytes in the source settings",
) -> Downloaded:
    """Stream a URL into `target` with a size limit; return its path, SHA-256, size and type."""
    target.parent.mkdir(parents=True, exist_ok=True)
    body = _Body(target)
    try:
        _, _, headers = _request(ctx, url, None, "*/*", body, max_bytes, limit_hint)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return Downloaded(target, body.digest.hexdigest(), body.size, media_type(headers))


def looks_like_html(content: bytes, content_type: str) -> bool:
    """Tell whether a body is an HTML page (by its type or its first characters)."""
    if content_type in ("text/html", "application/xhtml+xml"):
        return True
    start = content[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return start.startswith((b"<!doctype html", b"<html", b"<head", b"<body"))


def media_type(headers: httpx.Headers) -> str:
    """The lower-cased media type of a Content-Type header, without parameters."""
    return headers.get("content-type", "").split(";", 1)[0].strip().lower()


def shown(url: str | httpx.URL) -> str:
    """A URL as messages show it: without credentials, shortened when very long."""
    text = str(url)
    scheme, separator, rest = text.partition("://")
    authority, slash, path = rest.partition("/")
    if separator and "@" in authority:
        text = f"{scheme}://{authority.rsplit('@', 1)[1]}{slash}{path}"
    return text if len(text) <= _URL_SHOWN else text[: _URL_SHOWN - 1] + "…"


def size_text(size: int) -> str:
    """A byte count as people read it (binary units, as file managers show)."""
    if size < 1024:
        return f"{size} bytes"
    exponent = min(3, (size.bit_length() - 1) // 10)
    return f"{size / 1024**exponent:.1f} {('KB', 'MB', 'GB')[exponent - 1]}"


class _Body:
    """Where a response body goes (memory or a file), restarted on every attempt."""

    def __init__(self, target: Path | None) -> None:
        self.target = target
        self.buffer = bytearray()
        self.digest = hashlib.sha256()
        self.size = 0
        self._file: BinaryIO | None = None

    def start(self) -> None:
        self.close()
        self.buffer, self.digest, self.size = bytearray(), hashlib.sha256(), 0
        if self.target is not None:
            self._file = self.target.open("wb")

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        self.digest.update(chunk)
        if self._file is not None:
            self._file.write(chunk)
        else:
            self.buffer += chunk

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


@dataclass(frozen=True)
class _Limits:
    read: float
    retries: int
    max_bytes: int
    limit_hint: str
    allow_private: bool


def _request(
    ctx: HarvestContext,
    url: str,
    params: dict[str, Any] | None,
    accept: str,
    body: _Body,
    max_bytes: int,
    limit_hint: str,
) -> tuple[str, int, httpx.Headers]:
    """Run one GET with retries; return the final URL, status and headers."""
    config = ctx.source.config
    limits = _Limits(
        read=float(config.get("timeout") or 30.0),
        retries=int(config.get("retries", 2)),
        max_bytes=max_bytes,
        limit_hint=limit_hint,
        allow_private=ctx.source.allow_private_network,
    )
    start = check_url(url)
    if params:
        start = start.copy_merge_params({k: v for k, v in params.items() if v is not None})
    deadline = min(time.monotonic() + REQUEST_SECONDS, ctx.deadline)
    attempt = 0
    try:
        while True:
            ctx.check_time()
            try:
                return _attempt(ctx, start, accept, body, limits, deadline)
            except _Transient as exc:
                if attempt >= limits.retries:
                    tries = f" (tried {attempt + 1} times)" if attempt else ""
                    raise HarvestFailed(exc.message + tries) from None
                delay = _delay(exc, attempt)
                if time.monotonic() + delay > deadline:
                    raise HarvestFailed(f"{exc.message}; no time was left to try again") from None
                ctx.cancelled.wait(delay)  # wakes at once when staff cancel the job
                attempt += 1
    finally:
        body.close()


def _delay(exc: _Transient, attempt: int) -> float:
    """How long to wait before the next try: Retry-After if given, else backoff with jitter."""
    if exc.retry_after is not None:
        if exc.retry_after > RETRY_AFTER_CAP:
            raise HarvestFailed(
                f"{exc.message}, and asked to wait {exc.retry_after:.0f} s before trying again "
                f"(more than the {RETRY_AFTER_CAP:.0f} s a harvest waits); run it again later"
            )
        return exc.retry_after
    backoff = min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt)
    return float(backoff * (0.5 + random.random() / 2))  # noqa: S311 - jitter, not secrecy


def _attempt(
    ctx: HarvestContext,
    url: httpx.URL,
    accept: str,
    body: _Body,
    limits: _Limits,
    deadline: float,
) -> tuple[str, int, httpx.Headers]:
    """One try: follow redirects by hand, checking every hop; stream the final body."""
    current = url
    for _hop in range(MAX_REDIRECTS + 1):
        addresses = resolve(current, allow_private=limits.allow_private)
        with httpx.Client(verify=_tls(), trust_env=False, follow_redirects=False) as client:
            response = _send(client, current, addresses, accept, limits, deadline)
            try:
                location = response.headers.get("location")
                if response.is_redirect and location:
                    current = _next_hop(current, location)
                    continue
                _check_status(response, current, deadline)
                _read(ctx, response, current, body, limits, deadline)
                return str(current), response.status_code, response.headers
            finally:
                response.close()
    raise HarvestFailed(
        f"{shown(url)} redirected more than {MAX_REDIRECTS} times; check the address"
    )


def _send(
    client: httpx.Client,
    url: httpx.URL,
    addresses: list[str],
    accept: str,
    limits: _Limits,
    deadline: float,
) -> httpx.Response:
    """Connect to the checked addresses in turn (pinned) and send the request."""
    host = url.raw_host.decode("ascii")
    problem = ""
    for address in addresses:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        timeout = httpx.Timeout(
            connect=min(CONNECT_TIMEOUT, limits.read, remaining),
            read=min(limits.read, remaining),
            write=min(limits.read, remaining),
            pool=min(CONNECT_TIMEOUT, remaining),
        )
        request = client.build_request(
            "GET",
            url.copy_with(host=address.split("%", 1)[0]),
            headers={
                "Host": url.netloc.decode("ascii"),
                "Accept": accept,
                "User-Agent": USER_AGENT,
            },
            timeout=timeout,
            extensions={"sni_hostname": host} if url.scheme == "https" else {},
        )
        try:
            return client.send(request, stream=True)
        except httpx.ConnectTimeout:
            problem = f"could not connect to {host} within {timeout.connect:.0f} s"
        except httpx.ConnectError as exc:
            if "CERTIFICATE_VERIFY_FAILED" in str(exc):
                raise HarvestFailed(
                    f"the certificate of {host} could not be verified ({_first_line(exc)}); "
                    "the site may be misconfigured or not be who it claims"
                ) from None
            problem = f"could not connect to {host} ({_first_line(exc)})"
        except httpx.TimeoutException:
            raise _Transient(f"timed out after {limits.read:.0f} s reading {shown(url)}") from None
        except httpx.TransportError as exc:
            raise _Transient(
                f"the connection to {host} broke while reading {shown(url)} ({_first_line(exc)})"
            ) from None
    raise _Transient(problem or f"ran out of time before connecting to {host}")


def _check_status(response: httpx.Response, url: httpx.URL, deadline: float) -> None:
    status = response.status_code
    if status < 400 and not response.is_redirect:
        return
    reason = f"{status} {response.reason_phrase}".strip()
    if status in RETRY_STATUSES:
        raise _Transient(f"{shown(url)} returned {reason}", _retry_after(response))
    if response.is_redirect:
        raise HarvestFailed(f"{shown(url)} returned {reason} without saying where to go")
    # An error page is only read for its message: a small limit keeps it cheap.
    error_body = b""
    try:
        for chunk in response.iter_bytes(CHUNK_BYTES):
            error_body += chunk
            if len(error_body) >= ERROR_BODY_BYTES or time.monotonic() > deadline:
                break
    except httpx.HTTPError:
        pass  # the status says enough
    advice = " (a problem on the remote site)" if status >= 500 else ""
    raise HttpStatusError(
        f"{shown(url)} returned {reason}{advice}",
        status=status,
        body=error_body[:ERROR_BODY_BYTES],
        content_type=media_type(response.headers),
    )


def _read(
    ctx: HarvestContext,
    response: httpx.Response,
    url: httpx.URL,
    body: _Body,
    limits: _Limits,
    deadline: float,
) -> None:
    """Stream the body into `body`, stopping at the size limit or the deadline."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limits.max_bytes:
        raise _too_large(url, int(declared), limits)
    body.start()
    try:
        for chunk in response.iter_bytes(CHUNK_BYTES):
            ctx.check_time()
            if body.size + len(chunk) > limits.max_bytes:
                raise _too_large(url, None, limits)
            body.write(chunk)
            if time.monotonic() > deadline:
                raise HarvestFailed(
                    f"took longer than {REQUEST_SECONDS / 60:.0f} minutes reading {shown(url)}; "
                    "the remote site is too slow"
                )
    except httpx.TimeoutException:
        raise _Transient(f"timed out after {limits.read:.0f} s reading {shown(url)}") from None
    except httpx.DecodingError as exc:
        raise HarvestFailed(
            f"{shown(url)} sent a body that cannot be decoded ({_first_line(exc)})"
        ) from None
    except httpx.TransportError as exc:
        raise _Transient(
            f"the connection broke while reading {shown(url)} ({_first_line(exc)})"
        ) from None


def _too_large(url: httpx.URL, size: int | None, limits: _Limits) -> TooLarge:
    what = f"is {size_text(size)}" if size is not None else "is larger than allowed"
    return TooLarge(
        f"{shown(url)} {what}, over the limit of {size_text(limits.max_bytes)} "
        f"({limits.limit_hint})"
    )


def _next_hop(current: httpx.URL, location: str) -> httpx.URL:
    try:
        target = current.join(location)
    except (httpx.InvalidURL, TypeError):
        raise HarvestFailed(f"{shown(current)} redirected to an invalid address") from None
    if target.scheme not in ("http", "https") or not target.host:
        raise Refused(
            f"refused: {shown(current)} redirected to {shown(location)}; "
            "only http:// and https:// addresses are followed"
        )
    return target


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]


@cache
def _tls() -> ssl.SSLContext:
    """One verified TLS context for every request (building one loads the CA store)."""
    return httpx.create_ssl_context()
