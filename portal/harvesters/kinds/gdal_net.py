"""GDAL's network reads under the harvest network rules, through a local vetting proxy.

GDAL (libcurl) does the HTTP for the OGC kinds. Every request it makes, including `rel=next`
links and redirects to other hosts, goes through `GuardProxy`, which resolves the host, refuses
loopback, private, link-local and other special addresses (unless the source is allowed on a
private network), connects to the address it checked (no DNS rebinding), caps the bytes
received, and notes error statuses (GDAL stops paging at a failed page without raising).
"""

import os
import selectors
import socket
import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pyogrio

from portal.core.errors import HarvestFailed
from portal.harvesters.http import Refused, address_problem

HEAD_LIMIT = 64 * 1024
CHUNK = 256 * 1024
# One GDAL network session at a time per process: its config options are process-wide.
_SESSION_LOCK = threading.Lock()


@dataclass(frozen=True)
class NetRules:
    """What one source may reach, and how long and how much it may take."""

    allow_private: bool = False
    max_bytes: int = 200 * 1024 * 1024
    timeout: float = 60.0
    connect_timeout: float = 10.0
    retries: int = 3
    retry_delay: float = 1.0


def vet_host(host: str, port: int, *, allow_private: bool) -> list[str]:
    """Resolve a host and return its addresses, or raise `Refused` (the http module's rules)."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise HarvestFailed(f"cannot find the server {host}: the name does not resolve") from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
    if not allow_private:
        for address in addresses:
            problem = address_problem(address)
            if problem:
                raise Refused(
                    f"refused: {host} resolves to {address}, which is {problem}; ask a site "
                    "admin to allow private networks for this source"
                )
    return addresses


def vet_url(url: str, *, allow_private: bool) -> list[str]:
    """Check an http(s) URL's host before anything fetches it."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Refused(f"{url!r}: only http:// and https:// addresses can be harvested")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return vet_host(parts.hostname, port, allow_private=allow_private)


@dataclass
class _Budget:
    limit: int
    used: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, size: int) -> bool:
        with self.lock:
            self.used += size
            return self.used <= self.limit


class GuardProxy(socketserver.ThreadingTCPServer):
    """An HTTP proxy on 127.0.0.1 that only relays to hosts the rules allow."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, rules: NetRules) -> None:
        super().__init__(("127.0.0.1", 0), _GuardHandler)
        self.rules = rules
        self.budget = _Budget(rules.max_bytes)
        self.refusals: list[str] = []
        self.requests: list[str] = []
        self.statuses: list[tuple[str, int]] = []
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        """host:port for GDAL_HTTP_PROXY."""
        return f"127.0.0.1:{self.server_address[1]}"

    def start(self) -> "GuardProxy":
        """Serve in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=5)

    def refuse(self, reason: str) -> None:
        """Remember why a request was refused, for the job's message."""
        self.refusals.append(reason)

    def problem(self) -> str | None:
        """What went wrong in this session, if anything: GDAL itself may end a read quietly.

        A refusal (address, size, idle time) counts, and so does an error status on the last
        plain-HTTP response: GDAL stops paging at a failed page without raising.
        """
        if self.refusals:
            return self.refusals[-1]
        if self.statuses and self.statuses[-1][1] >= 400:
            target, status = self.statuses[-1]
            return f"the server answered HTTP {status} for {target}"
        return None


class _GuardHandler(socketserver.BaseRequestHandler):
    server: GuardProxy

    def handle(self) -> None:
        client: socket.socket = self.request
        rules = self.server.rules
        client.settimeout(rules.timeout)
        try:
            head, rest = _read_head(client)
            method, target, version = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
        except (OSError, ValueError):
            return
        try:
            if method == "CONNECT":
                host, _, port_text = target.rpartition(":")
                upstream = self._connect(host.strip("[]"), int(port_text))
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                first = rest
            elif method in ("GET", "HEAD") and target.startswith("http://"):
                parts = urlsplit(target)
                upstream = self._connect(parts.hostname or "", parts.port or 80)
                first = _origin_request(head, method, target, version) + rest
            else:
                raise Refused(f"the harvest proxy does not relay {method} {target}")
        except (HarvestFailed, OSError, ValueError) as exc:
            reason = exc.message if isinstance(exc, HarvestFailed) else f"{target}: {exc}"
            self.server.refuse(reason)
            _reply(client, 403 if isinstance(exc, Refused) else 502, reason)
            return
        with upstream:
            if first:
                upstream.sendall(first)
            self._relay(client, upstream, None if method == "CONNECT" else target)

    def _connect(self, host: str, port: int) -> socket.socket:
        rules = self.server.rules
        self.server.requests.append(f"{host}:{port}")
        addresses = vet_host(host, port, allow_private=rules.allow_private)
        error: OSError | None = None
        for address in addresses:
            try:
                upstream = socket.create_connection((address, port), rules.connect_timeout)
                upstream.settimeout(rules.timeout)
                return upstream
            except OSError as exc:
                error = exc
        raise error or OSError(f"no address for {host}")

    def _relay(self, client: socket.socket, upstream: socket.socket, plain: str | None) -> None:
        """Copy bytes both ways until one side closes, the budget runs out, or it goes idle.

        For plain HTTP (`plain` is the URL), the response status is recorded.
        """
        budget = self.server.budget
        status_pending = plain is not None
        with selectors.DefaultSelector() as selector:
            selector.register(client, selectors.EVENT_READ, upstream)
            selector.register(upstream, selectors.EVENT_READ, client)
            while True:
                # libcurl enforces GDAL's own timeouts; an idle tunnel here is only let go.
                ready = selector.select(self.server.rules.timeout * 2)
                if not ready:
                    return
                for key, _ in ready:
                    source: socket.socket = key.fileobj  # type: ignore[assignment]
                    try:
                        data = source.recv(CHUNK)
                        if not data:
                            return
                        if source is upstream and not budget.take(len(data)):
                            self.server.refuse(
                                f"the source sent more than {budget.limit:,} bytes, "
                                "the download limit"
                            )
                            return
                        if source is upstream and status_pending and plain:
                            status_pending = False
                            self.server.statuses.append((plain, _status(data)))
                        key.data.sendall(data)
                    except OSError:
                        return


def _status(data: bytes) -> int:
    """The status code of an HTTP response from its first bytes (0 if unreadable)."""
    parts = data.split(b"\r\n", 1)[0].split(b" ")
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


def _read_head(client: socket.socket) -> tuple[bytes, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = client.recv(8192)
        if not chunk:
            raise ValueError("the client closed before sending a request")
        data += chunk
        if len(data) > HEAD_LIMIT:
            raise ValueError("request head too long")
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def _origin_request(head: bytes, method: str, target: str, version: str) -> bytes:
    """Rewrite a proxy request to origin form, one request per connection."""
    parts = urlsplit(target)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    lines = [f"{method} {path} {version}".encode("latin-1")]
    for line in head.split(b"\r\n")[1:]:
        name = line.split(b":", 1)[0].strip().lower()
        if name in (b"connection", b"proxy-connection", b"proxy-authorization", b"keep-alive"):
            continue
        lines.append(line)
    lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _reply(client: socket.socket, status: int, reason: str) -> None:
    body = reason.encode()
    title = "Forbidden" if status == 403 else "Bad Gateway"
    head = (
        f"HTTP/1.1 {status} {title}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    try:
        client.sendall(head.encode() + body)
    except OSError:
        pass


def gdal_options(proxy: GuardProxy) -> dict[str, str]:
    """The GDAL config options that route and bound its HTTP through the proxy."""
    rules = proxy.rules
    return {
        "GDAL_HTTP_PROXY": proxy.address,
        "GDAL_HTTPS_PROXY": proxy.address,
        "GDAL_HTTP_TIMEOUT": str(int(rules.timeout)),
        "GDAL_HTTP_CONNECTTIMEOUT": str(int(rules.connect_timeout)),
        "GDAL_HTTP_LOW_SPEED_TIME": str(int(rules.timeout)),
        "GDAL_HTTP_LOW_SPEED_LIMIT": "1",
        "GDAL_HTTP_MAX_RETRY": str(rules.retries),
        "GDAL_HTTP_RETRY_DELAY": str(rules.retry_delay),
        "GDAL_HTTP_NETRC": "NO",
        "GDAL_HTTP_USERAGENT": "portal-harvester (GDAL)",
    }


def proxy_bypass_configured() -> str | None:
    """The NO_PROXY setting that would let libcurl skip the proxy, if the process has one."""
    for name in ("no_proxy", "NO_PROXY"):
        value = os.environ.get(name, "").strip()
        if value:
            return f"{name}={value}"
    return None


@contextmanager
def guarded_gdal(rules: NetRules) -> Iterator[GuardProxy]:
    """Run GDAL network reads through a fresh vetting proxy, then restore GDAL's settings."""
    bypass = proxy_bypass_configured()
    if bypass and not rules.allow_private:
        raise Refused(
            f"the worker's environment sets {bypass}, which would let GDAL skip the harvest "
            "address check; remove it from the worker's environment to harvest this source"
        )
    with _SESSION_LOCK:
        proxy = GuardProxy(rules).start()
        options = gdal_options(proxy)
        saved = {name: pyogrio.get_gdal_config_option(name) for name in options}
        pyogrio.set_gdal_config_options(options)
        try:
            yield proxy
        finally:
            pyogrio.set_gdal_config_options(saved)
            proxy.stop()
