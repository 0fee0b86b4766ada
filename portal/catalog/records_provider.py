"""A pygeoapi record provider over the data catalog (the "catalog" collection of `/ogc`).

The caller and sessions come from `portal.geo.ogc_provider.OGC_CALLER`; records are read
only through `portal.catalog.records`, which applies the catalog's visibility rules.
"""

from datetime import datetime
from typing import Any

from pygeoapi.provider.base import (
    BaseProvider,
    ProviderInvalidQueryError,
    ProviderItemNotFoundError,
)

from portal.catalog.records import Bbox, Period, check_bbox, get_record, search_records
from portal.core.errors import InvalidInput, NotFound
from portal.geo.ogc_provider import caller_session

FIELDS: dict[str, dict[str, str]] = {
    "type": {"type": "string"},
    "title": {"type": "string"},
    "description": {"type": "string"},
    "keywords": {"type": "string"},
    "created": {"type": "string", "format": "date-time"},
    "updated": {"type": "string", "format": "date-time"},
    "license": {"type": "string"},
}


class PortalRecordsProvider(BaseProvider):
    """The datasets the caller may see, as OGC API records (`data` is unused)."""

    def __init__(self, provider_def: dict[str, Any]) -> None:
        super().__init__(provider_def)
        self.id_field = "id"
        self.base_url = str(provider_def.get("base_url", ""))
        self.municipality_name = str(provider_def.get("municipality_name", ""))
        self._fields = self.get_fields()

    def get_fields(self) -> dict[str, dict[str, str]]:
        """Return the record properties that can be shown and asked about."""
        return {name: dict(schema) for name, schema in FIELDS.items()}

    def query(
        self,
        offset: int = 0,
        limit: int = 10,
        resulttype: str = "results",
        bbox: list[float] | None = None,
        datetime_: str | None = None,
        q: str | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Search the records by keywords (q), bbox and datetime, most relevant first."""
        try:
            with caller_session() as (session, principal):
                page = search_records(
                    session,
                    principal,
                    q=q,
                    bbox=_bbox(bbox),
                    datetime_range=parse_period(datetime_),
                    limit=max(1, int(limit)),
                    offset=max(0, int(offset)),
                    base_url=self.base_url,
                    municipality_name=self.municipality_name,
                )
        except InvalidInput as exc:
            raise ProviderInvalidQueryError(user_msg=exc.message) from None
        return {
            "type": "FeatureCollection",
            "features": [] if resulttype == "hits" else page.records,
            "numberMatched": page.number_matched,
            "numberReturned": 0 if resulttype == "hits" else page.number_returned,
            "q": q or "",
        }

    def get(self, identifier: Any, **kwargs: Any) -> dict[str, Any]:
        """Return one record by dataset name, or pygeoapi's "not found"."""
        try:
            with caller_session() as (session, principal):
                return get_record(
                    session,
                    principal,
                    str(identifier),
                    base_url=self.base_url,
                    municipality_name=self.municipality_name,
                )
        except NotFound as exc:
            raise ProviderItemNotFoundError(user_msg=exc.message) from None


def parse_period(text: str | None) -> Period | None:
    """Parse an OGC `datetime` (an instant, or `start/end` with `..` or nothing for open)."""
    if not text:
        return None
    parts = text.split("/")
    if len(parts) > 2:
        raise ProviderInvalidQueryError(
            user_msg=f"datetime must be an instant or start/end (RFC 3339); got {text!r}"
        )
    moments = [_moment(part, text) for part in parts]
    return (moments[0], moments[-1])


def _moment(part: str, whole: str) -> datetime | None:
    if part in ("", ".."):
        return None
    try:
        return datetime.fromisoformat(part)
    except ValueError:
        raise ProviderInvalidQueryError(
            user_msg=f"datetime must be RFC 3339, for example 2024-04-01T00:00:00Z; got {whole!r}"
        ) from None


def _bbox(values: list[float] | None) -> Bbox | None:
    if not values:
        return None
    if len(values) == 6:
        values = [values[0], values[1], values[3], values[4]]
    if len(values) != 4:
        raise InvalidInput("bbox must be minx,miny,maxx,maxy in degrees")
    return check_bbox((float(values[0]), float(values[1]), float(values[2]), float(values[3])))
