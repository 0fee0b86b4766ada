import httpx

from portal.core.settings import Settings
from tests.conftest import LiveServer, free_port


def test_health_reports_database_and_postgis(http: httpx.Client) -> None:
    response = http.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == "ok"
    assert body["postgis"].startswith("3.")


def test_health_says_which_database_is_unreachable(settings: Settings) -> None:
    url = f"postgresql://portal:secret@127.0.0.1:{free_port()}/portal"
    broken = settings.model_copy(update={"database_url": url})
    with LiveServer(broken) as server:
        response = httpx.get(f"{server.url}/healthz", timeout=30)
    assert response.status_code == 503
    body = response.json()
    assert body["database"] == "unreachable"
    assert "postgresql://portal:***@127.0.0.1" in body["detail"]
    assert "secret" not in body["detail"]
    assert "DATABASE_URL" in body["detail"]


def test_openapi_document_is_served(http: httpx.Client) -> None:
    response = http.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    assert "/healthz" in document["paths"]


def test_unknown_api_paths_get_a_json_problem(http: httpx.Client) -> None:
    response = http.get("/no/such/thing", headers={"accept": "application/json"})
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["detail"] == "no page at /no/such/thing"


def test_unknown_pages_get_an_html_error_in_japanese(http: httpx.Client) -> None:
    response = http.get("/no/such/page", headers={"accept": "text/html"})
    assert response.status_code == 404
    assert "エラー 404" in response.text
    assert "トップページへ戻る" in response.text
