"""DCAT-AP output: the catalog and each dataset as Turtle, RDF/XML or JSON-LD."""

from portal.catalog.dcat.graph import (
    add_dataset,
    catalog_graph,
    dataset_graph,
    new_graph,
    serialize,
)
from portal.catalog.dcat.paging import (
    catalog_datasets,
    catalog_links,
    check_base_url,
    dataset_links,
    last_page,
    media_type,
    page_url,
    parse_modified_since,
    parse_page,
    parse_page_size,
)
from portal.catalog.dcat.vocabulary import (
    ACCESS_RIGHTS,
    DEFAULT_PAGE_SIZE,
    EU_THEMES,
    FILE_TYPES,
    FORMATS,
    FREQUENCIES,
    HYDRA,
    MAX_PAGE,
    MAX_PAGE_SIZE,
    SPDX,
    RdfFormat,
)

__all__ = [
    "ACCESS_RIGHTS", "DEFAULT_PAGE_SIZE", "EU_THEMES", "FILE_TYPES", "FORMATS", "FREQUENCIES",
    "HYDRA", "SPDX", "MAX_PAGE", "MAX_PAGE_SIZE", "RdfFormat", "add_dataset", "catalog_datasets",
    "catalog_graph", "catalog_links", "check_base_url", "dataset_graph", "dataset_links",
    "last_page", "media_type", "new_graph", "page_url", "parse_modified_since", "parse_page",
    "parse_page_size", "serialize",
]  # fmt: skip
