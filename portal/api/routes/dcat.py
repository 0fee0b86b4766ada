"""DCAT catalog and dataset documents (Turtle, RDF/XML, JSON-LD), as ckanext-dcat serves them."""

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from portal.api.deps import PrincipalDep, SessionDep, SettingsDep, base_url
from portal.catalog import dcat
from portal.catalog.datasets import get_dataset

router = APIRouter(tags=["DCAT"])

PageParam = Annotated[str | None, Query(description="1-based page number (100 datasets a page)")]
PageSizeParam = Annotated[
    str | None, Query(description=f"datasets per page, 1 to {dcat.MAX_PAGE_SIZE} (default 100)")
]
SinceParam = Annotated[
    str | None, Query(description="only datasets modified at or after this ISO 8601 date/time")
]


def _rdf(text: str, fmt: str, links: list[str]) -> Response:
    headers = {"X-Content-Type-Options": "nosniff"}
    if links:
        headers["Link"] = ", ".join(links)
    return Response(text, media_type=dcat.media_type(fmt), headers=headers)


def _catalog_endpoint(fmt: str) -> Callable[..., Any]:
    def catalog(
        request: Request,
        session: SessionDep,
        principal: PrincipalDep,
        settings: SettingsDep,
        page: PageParam = None,
        page_size: PageSizeParam = None,
        modified_since: SinceParam = None,
    ) -> Response:
        base = dcat.check_base_url(base_url(request))
        number, size = dcat.parse_page(page), dcat.parse_page_size(page_size)
        since = dcat.parse_modified_since(modified_since)
        found = dcat.catalog_datasets(
            session, principal, page=number, page_size=size, modified_since=since
        )
        graph = dcat.catalog_graph(
            found.datasets,
            base_url=base,
            page=number,
            page_size=size,
            total=found.count,
            modified_since=since,
            settings=settings,
            fmt=fmt,
        )
        return _rdf(
            dcat.serialize(graph, fmt),
            fmt,
            dcat.catalog_links(base, fmt, number, size, found.count, since),
        )

    catalog.__doc__ = f"The DCAT-AP catalog as {dcat.FORMATS[fmt].media_type}, paged with Hydra."
    return catalog


def _dataset_endpoint(fmt: str) -> Callable[..., Any]:
    def dataset(
        name: str, request: Request, session: SessionDep, principal: PrincipalDep
    ) -> Response:
        base = dcat.check_base_url(base_url(request))
        view = get_dataset(session, principal, name)
        text = dcat.serialize(dcat.dataset_graph(view, base_url=base), fmt)
        return _rdf(text, fmt, dcat.dataset_links(base, view.name, fmt))

    dataset.__doc__ = f"One dataset as DCAT-AP in {dcat.FORMATS[fmt].media_type}."
    return dataset


for _fmt in dcat.FORMATS:
    router.add_api_route(
        f"/catalog.{_fmt}",
        _catalog_endpoint(_fmt),
        methods=["GET"],
        name=f"dcat_catalog_{_fmt}",
        response_class=Response,
        include_in_schema=_fmt != "xml",
    )
    router.add_api_route(
        f"/dataset/{{name}}.{_fmt}",
        _dataset_endpoint(_fmt),
        methods=["GET"],
        name=f"dcat_dataset_{_fmt}",
        response_class=Response,
        include_in_schema=_fmt != "xml",
    )
