"""Shared pieces of the CKAN API tests: the published demo catalog, staff and a checked caller."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker

from portal.catalog.datasets import list_dataset_names
from portal.catalog.models import Dataset
from portal.core.database import session_scope
from portal.core.principal import ANONYMOUS, Role
from portal.core.settings import Settings
from portal.core.storage import LocalStorage
from portal.demo.catalog import publish_demo_catalog
from tests.staff import Staff, make_staff

PREFIX = "ckan-api-test-"
"""Datasets the tests create start with this and are removed afterwards."""


@pytest.fixture(scope="module")
def catalog(
    demo_city: object, demo_root: Path, sessions: sessionmaker[Session], settings: Settings
) -> Iterator[list[str]]:
    """The demo datasets, published (idempotently); yield the public names, then clean up."""
    with session_scope(sessions) as session:
        publish_demo_catalog(
            session,
            LocalStorage(settings.data_dir),
            demo_root,
            municipality_code=settings.municipality_code,
            max_bytes=settings.max_upload_bytes,
        )
    with session_scope(sessions) as session:
        names = list_dataset_names(session, ANONYMOUS)
    yield names
    with session_scope(sessions) as session:
        session.execute(delete(Dataset).where(Dataset.name.startswith(PREFIX)))


@pytest.fixture(scope="module")
def suido(catalog: list[str], sessions: sessionmaker[Session]) -> Staff:
    return make_staff(sessions, department="suido")


@pytest.fixture(scope="module")
def doboku_editor(catalog: list[str], sessions: sessionmaker[Session]) -> Staff:
    return make_staff(sessions, department="doboku", role=Role.editor)


def call(
    http: httpx.Client,
    action: str,
    params: dict[str, Any] | list[tuple[str, Any]] | None = None,
    *,
    token: str | None = None,
    post: bool = False,
    status: int = 200,
    prefix: str = "/api/3/action/",
) -> dict[str, Any]:
    """Call an action and check the envelope; return the whole body."""
    headers = {"Authorization": token} if token else {}
    if post:
        response = http.post(prefix + action, json=params or {}, headers=headers)
    else:
        response = http.get(prefix + action, params=params, headers=headers)
    assert response.status_code == status, response.text[:500]
    body = response.json()
    assert body["help"].endswith(f"/api/3/action/help_show?name={action}")
    assert body["success"] is (status == 200)
    if status != 200:
        assert isinstance(body["error"], dict) and body["error"]["__type"]
    return body


def result(http: httpx.Client, action: str, params: Any = None, **kwargs: Any) -> Any:
    return call(http, action, params, **kwargs)["result"]


def error(http: httpx.Client, action: str, params: Any, status: int, **kwargs: Any) -> Any:
    return call(http, action, params, status=status, **kwargs)["error"]
