"""DCAT request parameters, Hydra paging links and the page of datasets to describe."""

import math
from datetime import UTC, datetime
from urllib.parse import quote, urlencode

from sqlalchemy.orm import Session

from portal.catalog.dcat.vocabulary import (
    DEFAULT_PAGE_SIZE,
    FORMATS,
    MAX_PAGE,
    MAX_PAGE_SIZE,
    URI_UNSAFE,
)
from portal.catalog.search import DatasetQuery, SearchResult, search_datasets
from portal.core.errors import InvalidInput
from portal.core.principal import Principal


def parse_page(value: str | None) -> int:
    """Read the 1-based `page` parameter, refusing anything but a positive integer."""
    if value is None or value == "":
        return 1
    if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= MAX_PAGE:
        raise InvalidInput(
            f"page must be a positive integer from 1 to {MAX_PAGE} (1 is the first page), "
            f"got {value!r}"
        )
    return int(value)


def parse_page_size(value: str | None) -> int:
    """Read the optional `page_size` parameter (1 to MAX_PAGE_SIZE)."""
    if value is None or value == "":
        return DEFAULT_PAGE_SIZE
    if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= MAX_PAGE_SIZE:
        raise InvalidInput(f"page_size must be an integer from 1 to {MAX_PAGE_SIZE}, got {value!r}")
    return int(value)


def parse_modified_since(value: str | None) -> datetime | None:
    """Read `modified_since` as an ISO 8601 date or date-time (UTC when no offset is given)."""
    if value is None or value.strip() == "":
        return None
    text = value.strip()
    if "T" in text and " " in text:
        text = text.replace(" ", "+")  # an unencoded `+09:00` arrives as ` 09:00`
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            "modified_since must be an ISO 8601 date or date-time such as 2024-04-01 or "
            f"2024-04-01T09:00:00+09:00, got {value!r}"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def catalog_datasets(
    session: Session,
    principal: Principal,
    *,
    page: int,
    page_size: int = DEFAULT_PAGE_SIZE,
    modified_since: datetime | None = None,
) -> SearchResult:
    """Return one page of the datasets `principal` may see, newest change first."""
    query = DatasetQuery(
        modified_since=modified_since,
        sort=(("metadata_modified", "desc"),),
        rows=page_size,
        start=(page - 1) * page_size,
    )
    return search_datasets(session, principal, query)


def media_type(fmt: str) -> str:
    """Return the Content-Type of a format, with its charset."""
    return f"{FORMATS[fmt].media_type}; charset=utf-8"


def check_base_url(base_url: str) -> str:
    """Refuse a base URL (from the Host header) that cannot be part of an IRI."""
    if not base_url.startswith(("http://", "https://")) or any(c in base_url for c in URI_UNSAFE):
        raise InvalidInput(
            "the portal's base URL (PORTAL_PUBLIC_URL or the Host header) cannot be used in RDF"
        )
    return base_url


def page_url(
    base_url: str, fmt: str, page: int, page_size: int, modified_since: datetime | None
) -> str:
    """Return the URL of one catalog page, keeping the filter and page size."""
    params: dict[str, str] = {}
    if modified_since is not None:
        params["modified_since"] = modified_since.isoformat()
    if page_size != DEFAULT_PAGE_SIZE:
        params["page_size"] = str(page_size)
    params["page"] = str(page)
    return f"{base_url}/catalog.{fmt}?{urlencode(params)}"


def catalog_links(
    base_url: str,
    fmt: str,
    page: int,
    page_size: int,
    total: int,
    modified_since: datetime | None,
) -> list[str]:
    """Return HTTP `Link` header values for a catalog page: paging and other formats."""
    last = last_page(total, page_size)
    pages = {"first": 1, "last": last}
    if page < last:
        pages["next"] = page + 1
    if page > 1:
        pages["prev"] = min(page - 1, last)
    links = [
        f'<{page_url(base_url, fmt, number, page_size, modified_since)}>; rel="{rel}"'
        for rel, number in pages.items()
    ]
    links += [
        f'<{page_url(base_url, other, page, page_size, modified_since)}>; rel="alternate"; '
        f'type="{FORMATS[other].media_type}"'
        for other in ("ttl", "rdf", "jsonld")
        if other != fmt
    ]
    return links


def dataset_links(base_url: str, name: str, fmt: str) -> list[str]:
    """Return HTTP `Link` header values for a dataset document: its page and other formats."""
    page = f"{base_url}/dataset/{quote(name)}"
    links = [f'<{page}>; rel="alternate"; type="text/html"']
    links += [
        f'<{page}.{other}>; rel="alternate"; type="{FORMATS[other].media_type}"'
        for other in ("ttl", "rdf", "jsonld")
        if other != fmt
    ]
    return links


def last_page(total: int, page_size: int) -> int:
    """Return the number of the last page (1 for an empty catalog)."""
    return max(1, math.ceil(total / page_size))
