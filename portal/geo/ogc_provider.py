"""A pygeoapi feature provider over the portal's layers, used by the HTML pages of `/ogc`.

pygeoapi creates providers from its configuration alone, so the caller (a `Principal`), the
engine and the request's query parameters reach them through `OGC_CALLER`, a context
variable that the page renderer sets around each call. Features are read through the
features core (`portal.geo.features`), which checks the caller may see the layer.
"""

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from pygeoapi.provider.base import (
    BaseProvider,
    ProviderConnectionError,
    ProviderInvalidQueryError,
    ProviderItemNotFoundError,
)
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from portal.core.errors import InvalidInput, NotFound
from portal.core.principal import Principal
from portal.geo.features import parse_feature_query, read_item, read_items
from portal.geo.registry import LayerSummary, get_layer

JSON_TYPES: dict[str, dict[str, str]] = {
    "text": {"type": "string"},
    "character varying": {"type": "string"},
    "smallint": {"type": "integer"},
    "integer": {"type": "integer"},
    "bigint": {"type": "integer"},
    "real": {"type": "number"},
    "double precision": {"type": "number"},
    "numeric": {"type": "number"},
    "boolean": {"type": "boolean"},
    "date": {"type": "string", "format": "date"},
    "timestamp with time zone": {"type": "string", "format": "date-time"},
    "timestamp without time zone": {"type": "string", "format": "date-time"},
}
# Parameters pygeoapi has already read (and checked) or that only shape the HTML page; the
# pages always get CRS84, the coordinates their map draws.
HANDLED_BY_PYGEOAPI = frozenset(
    {"f", "lang", "limit", "offset", "sortby", "skipGeometry", "q", "crs"}
)


@dataclass(frozen=True)
class OgcCaller:
    """Who the pygeoapi providers read for, the engine, and the request's query parameters."""

    principal: Principal
    engine: Engine
    params: Mapping[str, str] = field(default_factory=dict)


OGC_CALLER: ContextVar[OgcCaller] = ContextVar("ogc_caller")


def current_caller() -> OgcCaller:
    """Return the caller set around this pygeoapi call; refuse to run without one."""
    caller = OGC_CALLER.get(None)
    if caller is None:
        raise ProviderConnectionError(
            "no caller is set; render OGC pages through portal.api.ogc.html.render_ogc_html"
        )
    return caller


@contextmanager
def caller_session() -> Iterator[tuple[Session, Principal]]:
    """Open a session on the caller's engine, with the caller's `Principal`."""
    caller = current_caller()
    with Session(caller.engine) as session:
        yield session, caller.principal


class PortalFeatureProvider(BaseProvider):
    """The features of one layer (`data` is the layer id, `id_field` is `fid`)."""

    def __init__(self, provider_def: dict[str, Any]) -> None:
        super().__init__(provider_def)
        self.id_field = "fid"
        with caller_session() as (session, principal):
            try:
                self.layer: LayerSummary = get_layer(session, principal, str(self.data))
            except NotFound as exc:
                raise ProviderItemNotFoundError(user_msg=exc.message) from None
        self._fields = self.get_fields()

    def get_fields(self) -> dict[str, dict[str, str]]:
        """Return the layer's attribute columns as JSON Schema types, in table order."""
        return {
            column["name"]: dict(JSON_TYPES.get(column.get("type", ""), {"type": "string"}))
            for column in self.layer.columns
        }

    def query(
        self,
        offset: int = 0,
        limit: int = 10,
        resulttype: str = "results",
        skip_geometry: bool = False,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Return one page of features (in fid order) as a GeoJSON FeatureCollection.

        Filters (bbox, datetime, prop=value, filter) are read by the features core from the
        request's own parameters, so the pages filter exactly as the JSON API does.
        """
        caller = current_caller()
        params = {k: v for k, v in caller.params.items() if k not in HANDLED_BY_PYGEOAPI}
        params |= {"limit": str(max(1, int(limit))), "offset": str(max(0, int(offset)))}
        try:
            query = parse_feature_query(self.layer, params)
            page = read_items(caller.engine, caller.principal, self.layer.id, query)
        except InvalidInput as exc:
            raise ProviderInvalidQueryError(user_msg=exc.message) from None
        except NotFound as exc:
            raise ProviderItemNotFoundError(user_msg=exc.message) from None
        features = [] if resulttype == "hits" else json.loads(b"[" + page.features + b"]")
        if skip_geometry:
            for feature in features:
                feature["geometry"] = None
        collection: dict[str, Any] = {
            "type": "FeatureCollection",
            "features": features,
            "numberReturned": len(features),
        }
        if page.number_matched is not None:
            collection["numberMatched"] = page.number_matched
        return collection

    def get(self, identifier: Any, **kwargs: Any) -> dict[str, Any]:
        """Return one feature by its `fid`, or pygeoapi's "not found"."""
        text = str(identifier)
        if not text.isascii() or not text.isdigit() or len(text) > 18:
            raise ProviderItemNotFoundError(user_msg=f"feature {text!r} not found")
        caller = current_caller()
        try:
            found = read_item(caller.engine, caller.principal, self.layer.id, int(text))
        except NotFound as exc:
            raise ProviderItemNotFoundError(user_msg=exc.message) from None
        feature: dict[str, Any] = json.loads(found.json)
        return feature
