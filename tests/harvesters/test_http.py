"""The harvest fetcher: address checks, pinning, redirects, size limits, timeouts and retries."""

import json
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from portal.core.errors import HarvestFailed
from portal.core.principal import Visibility
from portal.core.settings import Settings
from portal.harvesters import http
from portal.harvesters.base import HarvestContext, JobTimedOut, SourceSpec

Answer = tuple[int, dict[str, str], bytes]
Route = Callable[["Request"], Answer]


class Request:
    """What a route sees of a request."""

    def __init__(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        self.path = parts.path
        self.query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self.headers = handler.headers


class LocalServer:
    """A small HTTP server on 127.0.0.1 with routes set per test; counts requests by path."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: Counter[str] = Counter()
        self.hosts: list[str] = []
        self.release = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                request = Request(self)
                owner.hits[request.path] += 1
                owner.hosts.append(self.headers.get("Host", ""))
                route = owner.routes.get(request.path)
                status, headers, body = route(request) if route else (404, {}, b"not found")
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        if value:  # an empty value leaves the header out
                            self.send_header(name, value)
                    if "Content-Length" not in headers and status != 204:
                        self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> "LocalServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)

    def static(self, path: str, body: bytes | str, content_type: str = "application/json") -> None:
        """Serve fixed content at a path."""
        data = body.encode() if isinstance(body, str) else body
        self.routes[path] = lambda request: (200, {"Content-Type": content_type}, data)

    def hang(self, seconds: float) -> Answer:
        """Wait (until the test ends at the latest), then answer."""
        self.release.wait(seconds)
        return 200, {"Content-Type": "application/json"}, b"{}"


def make_context(
    tmp_path: Path,
    *,
    allow_private: bool = True,
    config: dict[str, Any] | None = None,
    seconds: float = 60,
) -> HarvestContext:
    """A job context for fetches only (no database is touched)."""
    source = SourceSpec(
        id=0,
        name="http-test",
        title="http-test",
        kind="ckan",
        url="http://127.0.0.1/",
        department="doboku",
        default_visibility=Visibility.public,
        config=config or {},
        allow_private_network=allow_private,
    )
    return HarvestContext(
        source=source,
        settings=Settings(env="test", data_dir=tmp_path),
        engine=None,  # type: ignore[arg-type]
        sessions=None,  # type: ignore[arg-type]
        storage=None,  # type: ignore[arg-type]
        workdir=tmp_path,
        job_id=None,
        deadline=time.monotonic() + seconds,
    )


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with LocalServer() as running:
        yield running


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Names that resolve to chosen addresses; every other lookup is real."""
    names: dict[str, list[str]] = {}
    real = socket.getaddrinfo

    def lookup(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in names:
            return [
                (
                    socket.AF_INET6 if ":" in ip else socket.AF_INET,
                    socket.SOCK_STREAM,
                    6,
                    "",
                    (ip, port, 0, 0) if ":" in ip else (ip, port),
                )
                for ip in names[host]
            ]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(http.socket, "getaddrinfo", lookup)
    return names


@pytest.fixture
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http, "BACKOFF_BASE", 0.01)


ADVICE = "; ask a site admin to allow private networks for this source"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://10.0.0.5/api", "refused: 10.0.0.5 is a private address" + ADVICE),
        ("http://192.168.1.20/", "refused: 192.168.1.20 is a private address" + ADVICE),
        (
            "http://169.254.169.254/latest/meta-data/",
            "refused: 169.254.169.254 is a link-local address (the cloud metadata service)"
            + ADVICE,
        ),
        ("http://[::1]:8080/", "refused: ::1 is a loopback address" + ADVICE),
        ("http://[fd00::5]/", "refused: fd00::5 is a private address" + ADVICE),
        ("http://[::ffff:10.1.2.3]/", "refused: ::ffff:a01:203 is a private address" + ADVICE),
        ("http://0.0.0.0/", "refused: 0.0.0.0 is an unspecified address" + ADVICE),
        ("http://224.0.0.1/", "refused: 224.0.0.1 is a multicast address" + ADVICE),
        ("http://100.64.0.1/", "refused: 100.64.0.1 is not a public address" + ADVICE),
    ],
)
def test_non_public_addresses_are_refused(tmp_path: Path, url: str, message: str) -> None:
    with pytest.raises(http.Refused) as caught:
        http.get(make_context(tmp_path, allow_private=False), url)
    assert caught.value.message == message


def test_a_name_resolving_to_loopback_is_refused(
    tmp_path: Path, server: LocalServer, fake_dns: dict[str, list[str]]
) -> None:
    fake_dns["data.example.jp"] = ["127.0.0.1"]
    url = f"http://data.example.jp:{server.port}/x"
    with pytest.raises(http.Refused) as caught:
        http.get(make_context(tmp_path, allow_private=False), url)
    assert caught.value.message == (
        "refused: data.example.jp resolves to 127.0.0.1, which is a loopback address" + ADVICE
    )
    with pytest.raises(http.Refused, match=r"localhost resolves to (127\.0\.0\.1|::1), which"):
        http.get(make_context(tmp_path, allow_private=False), f"http://localhost:{server.port}/")
    assert server.hits.total() == 0


def test_every_address_of_a_name_is_checked(tmp_path: Path, fake_dns: dict[str, list[str]]) -> None:
    fake_dns["mixed.example.jp"] = ["93.184.216.34", "10.0.0.7"]
    with pytest.raises(
        http.Refused, match="mixed.example.jp resolves to 10.0.0.7, which is a private"
    ):
        http.get(make_context(tmp_path, allow_private=False), "http://mixed.example.jp/")


def test_private_addresses_are_fetched_when_allowed_and_pinned(
    tmp_path: Path, server: LocalServer, fake_dns: dict[str, list[str]]
) -> None:
    server.static("/data.json", '{"名称": "別府市"}')
    fake_dns["data.example.jp"] = ["127.0.0.1"]
    ctx = make_context(tmp_path, allow_private=True)
    assert http.get_json(ctx, f"http://data.example.jp:{server.port}/data.json") == {
        "名称": "別府市"
    }
    # The connection went to the address that was checked, under the original name.
    assert server.hosts == [f"data.example.jp:{server.port}"]
    assert http.get_json(ctx, f"{server.url}/data.json") == {"名称": "別府市"}


def test_only_http_and_https_are_fetched(tmp_path: Path) -> None:
    with pytest.raises(http.Refused, match="only http:// and https:// addresses can be harvested"):
        http.get(make_context(tmp_path), "file:///etc/passwd")
    with pytest.raises(http.Refused, match="only http:// and https://"):
        http.get(make_context(tmp_path), "ftp://example.jp/data.csv")


def test_a_redirect_to_a_private_address_is_refused(
    tmp_path: Path, server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Let the test server pass as public, so that only the redirect target is private.
    real = http.address_problem
    monkeypatch.setattr(http, "address_problem", lambda ip: None if ip == "127.0.0.1" else real(ip))
    server.routes["/go"] = lambda r: (
        302,
        {"Location": "http://169.254.169.254/latest/meta-data/"},
        b"",
    )
    with pytest.raises(http.Refused) as caught:
        http.get(make_context(tmp_path, allow_private=False), f"{server.url}/go")
    assert caught.value.message == (
        "refused: 169.254.169.254 is a link-local address (the cloud metadata service)" + ADVICE
    )
    server.routes["/scheme"] = lambda r: (301, {"Location": "file:///etc/passwd"}, b"")
    with pytest.raises(http.Refused, match="redirected to file:///etc/passwd"):
        http.get(make_context(tmp_path, allow_private=False), f"{server.url}/scheme")


def test_redirects_are_followed_up_to_a_limit(tmp_path: Path, server: LocalServer) -> None:
    server.routes["/old"] = lambda r: (301, {"Location": "/new"}, b"")
    server.static("/new", '{"ok": true}')
    assert http.get_json(make_context(tmp_path), f"{server.url}/old") == {"ok": True}
    server.routes["/loop"] = lambda r: (302, {"Location": "/loop"}, b"")
    with pytest.raises(HarvestFailed, match=r"redirected more than 5 times"):
        http.get(make_context(tmp_path), f"{server.url}/loop")
    assert server.hits["/loop"] == 6


def test_a_response_over_the_limit_is_refused(tmp_path: Path, server: LocalServer) -> None:
    server.static("/big.csv", b"x" * 10_240, "text/csv")
    target = tmp_path / "big.csv"
    with pytest.raises(http.TooLarge) as caught:
        http.download(make_context(tmp_path), f"{server.url}/big.csv", target, 1024)
    assert caught.value.message == (
        f"{server.url}/big.csv is 10.0 KB, over the limit of 1.0 KB "
        "(max_resource_bytes in the source settings)"
    )
    assert not target.exists()
    # Without Content-Length the body is counted as it streams, and reading stops at the limit.
    server.routes["/stream.csv"] = lambda r: (200, {"Content-Length": ""}, b"y" * 200_000)
    with pytest.raises(http.TooLarge, match="is larger than allowed, over the limit of 1.0 KB"):
        http.download(make_context(tmp_path), f"{server.url}/stream.csv", target, 1024)
    got = http.download(make_context(tmp_path), f"{server.url}/big.csv", target, 20_000)
    assert (got.size, got.content_type, got.path) == (10_240, "text/csv", target)
    assert len(got.sha256) == 64


def test_retries_503_then_succeeds(
    tmp_path: Path, server: LocalServer, quick_backoff: None
) -> None:
    def flaky(request: Request) -> Answer:
        if server.hits["/flaky"] < 3:
            return 503, {}, b"busy"
        return 200, {"Content-Type": "application/json"}, b'{"count": 1}'

    server.routes["/flaky"] = flaky
    assert http.get_json(make_context(tmp_path), f"{server.url}/flaky") == {"count": 1}
    assert server.hits["/flaky"] == 3


def test_retries_give_up_with_the_count(
    tmp_path: Path, server: LocalServer, quick_backoff: None
) -> None:
    server.routes["/down"] = lambda r: (502, {}, b"")
    with pytest.raises(HarvestFailed) as caught:
        http.get(make_context(tmp_path, config={"retries": 1}), f"{server.url}/down")
    assert caught.value.message == f"{server.url}/down returned 502 Bad Gateway (tried 2 times)"
    assert server.hits["/down"] == 2


def test_retry_after_is_respected_up_to_a_cap(tmp_path: Path, server: LocalServer) -> None:
    def limited(request: Request) -> Answer:
        if server.hits["/limited"] == 1:
            return 429, {"Retry-After": "1"}, b""
        return 200, {"Content-Type": "application/json"}, b"[]"

    server.routes["/limited"] = limited
    started = time.monotonic()
    assert http.get_json(make_context(tmp_path), f"{server.url}/limited") == []
    assert time.monotonic() - started >= 0.9
    server.routes["/later"] = lambda r: (503, {"Retry-After": "3600"}, b"")
    with pytest.raises(HarvestFailed, match="asked to wait 3600 s before trying again"):
        http.get(make_context(tmp_path), f"{server.url}/later")
    assert server.hits["/later"] == 1


def test_client_errors_are_not_retried(tmp_path: Path, server: LocalServer) -> None:
    server.routes["/gone"] = lambda r: (404, {"Content-Type": "text/plain"}, b"no such page")
    with pytest.raises(http.HttpStatusError) as caught:
        http.get(make_context(tmp_path), f"{server.url}/gone")
    assert caught.value.status == 404
    assert caught.value.message == f"{server.url}/gone returned 404 Not Found"
    assert caught.value.body == b"no such page"
    assert server.hits["/gone"] == 1


def test_html_is_not_json(tmp_path: Path, server: LocalServer) -> None:
    server.static("/api", "<!DOCTYPE html><html><body>ようこそ</body></html>", "text/html")
    with pytest.raises(HarvestFailed) as caught:
        http.get_json(make_context(tmp_path), f"{server.url}/api", hint="is this a CKAN URL?")
    assert caught.value.message == f"{server.url}/api returned HTML, not JSON: is this a CKAN URL?"
    server.static("/broken", "{not json", "application/json")
    with pytest.raises(HarvestFailed, match="did not return valid JSON"):
        http.get_json(make_context(tmp_path), f"{server.url}/broken")


def test_a_slow_server_times_out(tmp_path: Path, server: LocalServer) -> None:
    server.routes["/slow"] = lambda r: server.hang(10)
    ctx = make_context(tmp_path, config={"timeout": 1, "retries": 0})
    started = time.monotonic()
    with pytest.raises(HarvestFailed) as caught:
        http.get(ctx, f"{server.url}/slow?page=2")
    assert caught.value.message == f"timed out after 1 s reading {server.url}/slow?page=2"
    assert time.monotonic() - started < 5


def test_the_job_deadline_stops_a_request(tmp_path: Path, server: LocalServer) -> None:
    server.static("/data", "{}")
    with pytest.raises(JobTimedOut):
        http.get(make_context(tmp_path, seconds=-1), f"{server.url}/data")


def test_text_uses_the_declared_charset(tmp_path: Path, server: LocalServer) -> None:
    server.static("/sjis", "避難所".encode("cp932"), "text/plain; charset=Shift_JIS")
    assert http.get_text(make_context(tmp_path), f"{server.url}/sjis") == "避難所"


def test_params_are_merged_into_the_query(tmp_path: Path, server: LocalServer) -> None:
    server.routes["/echo"] = lambda r: (200, {}, json.dumps(r.query).encode())
    got = http.get_json(
        make_context(tmp_path), f"{server.url}/echo?a=1", {"fq": "tags:防災", "rows": 2, "x": None}
    )
    assert got == {"a": "1", "fq": "tags:防災", "rows": "2"}


def test_messages_never_show_credentials() -> None:
    assert http.shown("https://user:secret@example.jp/api") == "https://example.jp/api"
    assert re.fullmatch(r"https://example\.jp/a+…", http.shown("https://example.jp/" + "a" * 400))


def test_https_is_pinned_and_verified_against_the_name(
    tmp_path: Path, fake_dns: dict[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is needed to make a test certificate")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=data.example.jp",
         "-addext", "subjectAltName=DNS:data.example.jp"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    client_tls = ssl.create_default_context(cafile=str(cert))
    monkeypatch.setattr(http, "_tls", lambda: client_tls)
    fake_dns["data.example.jp"] = ["127.0.0.1"]
    with LocalServer() as server:
        server.server.socket = server_tls.wrap_socket(server.server.socket, server_side=True)
        server.static("/data.json", '{"ok": true}')
        ctx = make_context(tmp_path)
        # Connected to 127.0.0.1, yet the certificate was checked against the name.
        assert http.get_json(ctx, f"https://data.example.jp:{server.port}/data.json") == {
            "ok": True
        }
        with pytest.raises(
            HarvestFailed, match="the certificate of 127.0.0.1 could not be verified"
        ):
            http.get(ctx, f"https://127.0.0.1:{server.port}/data.json")
