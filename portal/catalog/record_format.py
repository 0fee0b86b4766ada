"""OGC API Records documents (Part 1, GeoJSON encoding) of datasets and of the catalog."""

from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import quote

from portal.catalog.dcat.vocabulary import EU, EU_THEMES, FILE_TYPES
from portal.catalog.licenses import License
from portal.catalog.package import resource_url
from portal.catalog.views import DatasetView, ResourceView

COLLECTION_ID = "catalog"
COLLECTION_TITLE = "データカタログ"
COLLECTION_DESCRIPTION = (
    "ポータルで公開しているデータセットの目録です（OGC API - Records）。"
    "キーワード・範囲・期間で検索できます。"
)
RECORD_CORE = "http://www.opengis.net/spec/ogcapi-records-1/1.0/req/record-core"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
GREGORIAN = "http://www.opengis.net/def/uri/ISO-8601/0/Gregorian"
JAPANESE = {"code": "ja", "name": "日本語", "alternate": "Japanese"}
EU_THEME_SCHEME = f"{EU}/data-theme"
GEOJSON = "application/geo+json"
# Our licence ids with an SPDX identifier; the others are "other" plus a rel="license" link,
# as the Records licence rules ask.
SPDX_IDS = {
    "cc-by-4.0": "CC-BY-4.0",
    "cc-by-sa-4.0": "CC-BY-SA-4.0",
    "cc-by-nc-4.0": "CC-BY-NC-4.0",
    "cc-by-nd-4.0": "CC-BY-ND-4.0",
    "cc-zero": "CC0-1.0",
    "odc-odbl": "ODbL-1.0",
}


def collection_url(base_url: str) -> str:
    """Return the URL of the catalog collection under the portal's `/ogc`."""
    return f"{base_url}/ogc/collections/{COLLECTION_ID}"


def record_url(base_url: str, name: str) -> str:
    """Return the URL of one record."""
    return f"{collection_url(base_url)}/items/{quote(name)}"


def record_dict(
    dataset: DatasetView, *, base_url: str, municipality_name: str = ""
) -> dict[str, Any]:
    """Return a dataset as an OGC API record: a GeoJSON Feature with record properties."""
    properties: dict[str, Any] = {"type": "dataset", "title": dataset.title}
    if dataset.title_en:
        properties["title_en"] = dataset.title_en
    properties |= {"description": dataset.notes, "keywords": list(dataset.tags)}
    themes = _themes(dataset, base_url)
    if themes:
        properties["themes"] = themes
    properties |= {
        "language": dict(JAPANESE),
        "created": timestamp(dataset.created_at),
        "updated": timestamp(dataset.modified_at),
        "contacts": _contacts(dataset, base_url),
        "license": SPDX_IDS.get(dataset.license.id, "other"),
        "rights": _rights(dataset, base_url, municipality_name),
        "formats": _formats(dataset.resources),
    }
    return {
        "id": dataset.name,
        "type": "Feature",
        "conformsTo": [RECORD_CORE],
        "time": _time(dataset),
        "geometry": bbox_polygon(dataset.bbox) if dataset.bbox else None,
        "properties": properties,
        "links": _record_links(dataset, base_url),
    }


def collection_dict(
    *,
    base_url: str,
    bbox: list[float] | None,
    interval: tuple[str | None, str | None] | None,
) -> dict[str, Any]:
    """Return the description of the catalog collection, with its extent when known."""
    extent: dict[str, Any] = {}
    if bbox is not None:
        extent["spatial"] = {"bbox": [bbox], "crs": CRS84}
    if interval is not None:
        extent["temporal"] = {"interval": [list(interval)], "trs": GREGORIAN}
    url = collection_url(base_url)
    return {
        "id": COLLECTION_ID,
        "type": "Catalog",
        "itemType": "record",
        "title": COLLECTION_TITLE,
        "description": COLLECTION_DESCRIPTION,
        "language": dict(JAPANESE),
        "extent": extent,
        "links": [
            _link(url, "self", "application/json", COLLECTION_TITLE),
            _link(f"{url}/items", "items", GEOJSON, "データセットの目録（GeoJSON）"),
            _link(f"{base_url}/dataset", "alternate", "text/html", "データセットを探す"),
            _link(f"{base_url}/catalog.ttl", "alternate", "text/turtle", "DCAT-AP（Turtle）"),
        ],
    }


def bbox_polygon(bbox: list[float]) -> dict[str, Any]:
    """Return a [minx, miny, maxx, maxy] box as a GeoJSON polygon."""
    minx, miny, maxx, maxy = bbox
    ring = [[minx, miny], [maxx, miny], [maxx, maxy], [minx, maxy], [minx, miny]]
    return {"type": "Polygon", "coordinates": [ring]}


def timestamp(value: datetime) -> str:
    """Format a time as RFC 3339 in UTC with a `Z` (naive times are taken as UTC)."""
    value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return value.isoformat(timespec="seconds").replace("+00:00", "Z")


def day(value: date) -> str:
    """Format a calendar date as ISO 8601 (YYYY-MM-DD)."""
    return value.isoformat()


def _time(dataset: DatasetView) -> dict[str, Any] | None:
    if not dataset.temporal_start and not dataset.temporal_end:
        return None
    start = day(dataset.temporal_start) if dataset.temporal_start else ".."
    end = day(dataset.temporal_end) if dataset.temporal_end else ".."
    return {"interval": [start, end]}


def _contacts(dataset: DatasetView, base_url: str) -> list[dict[str, Any]]:
    """The publishing department, and the contact the dataset publishes (if any)."""
    department = dataset.department
    page = f"{base_url}/organization/{quote(department.slug)}"
    contacts: list[dict[str, Any]] = [
        {
            "identifier": department.slug,
            "organization": department.name,
            "links": [_link(page, "about", "text/html", department.name)],
            "roles": ["publisher"],
        }
    ]
    if dataset.contact_name or dataset.contact_email:
        contact: dict[str, Any] = {
            "name": dataset.contact_name or department.name,
            "organization": department.name,
            "roles": ["pointOfContact"],
        }
        if dataset.contact_email:
            contact["emails"] = [{"value": dataset.contact_email.strip()}]
        contacts.append(contact)
    return contacts


def _themes(dataset: DatasetView, base_url: str) -> list[dict[str, Any]]:
    """The groups (e-Stat categories) and the EU data themes they map to."""
    if not dataset.groups:
        return []
    groups = {
        "scheme": f"{base_url}/group",
        "concepts": [
            {"id": g.name, "title": g.title, "url": f"{base_url}/group/{quote(g.name)}"}
            for g in dataset.groups
        ],
    }
    codes = dict.fromkeys(code for g in dataset.groups for code in EU_THEMES.get(g.name, ()))
    if not codes:
        return [groups]
    eu = {
        "scheme": EU_THEME_SCHEME,
        "concepts": [{"id": code, "url": f"{EU_THEME_SCHEME}/{code}"} for code in codes],
    }
    return [groups, eu]


def _rights(dataset: DatasetView, base_url: str, municipality_name: str) -> str:
    """The licence's attribution wording, naming the city, the department and the page."""
    source = f"{municipality_name} {dataset.department.name}".strip()
    page = f"{base_url}/dataset/{quote(dataset.name)}"
    return dataset.license.attribution.format(source=source, url=page)


def _format_name(resource: ResourceView) -> str:
    """The format a resource is served in (a layer is exported as GeoJSON or CSV)."""
    if resource.kind == "layer":
        return "GeoJSON" if resource.format.upper() in ("GEOJSON", "") else "CSV"
    return resource.format


def _media_type(resource: ResourceView) -> str | None:
    known = FILE_TYPES.get(_format_name(resource).upper())
    if known is not None and known[1] is not None:
        return known[1]
    if resource.kind == "file" and resource.mimetype and "/" in resource.mimetype:
        return resource.mimetype
    return None


def _formats(resources: list[ResourceView]) -> list[dict[str, str]]:
    formats: dict[str, dict[str, str]] = {}
    for resource in resources:
        name = _format_name(resource)
        if not name or name.upper() in formats:
            continue
        entry = {"name": name}
        media_type = _media_type(resource)
        if media_type:
            entry["mediaType"] = media_type
        formats[name.upper()] = entry
    return list(formats.values())


def _record_links(dataset: DatasetView, base_url: str) -> list[dict[str, Any]]:
    page = f"{base_url}/dataset/{quote(dataset.name)}"
    links = [
        _link(record_url(base_url, dataset.name), "self", GEOJSON, dataset.title),
        _link(page, "alternate", "text/html", dataset.title),
        _link(f"{page}.ttl", "alternate", "text/turtle", f"{dataset.title}（DCAT-AP）"),
        _link(collection_url(base_url), "collection", "application/json", COLLECTION_TITLE),
        _license_link(dataset.license),
    ]
    for resource in dataset.resources:
        href = resource_url(base_url, dataset.name, resource)
        if not href.startswith(("http://", "https://")):
            continue
        # A link resource may be a web page rather than a file: it is related, not enclosed.
        rel = "related" if resource.kind == "url" else "enclosure"
        link = _link(href, rel, _media_type(resource), resource.name)
        if resource.kind == "file" and resource.size is not None and resource.size >= 0:
            link["length"] = resource.size
        links.append(link)
    return links


def _license_link(license: License) -> dict[str, Any]:
    return _link(license.url, "license", "text/html", license.title)


def _link(href: str, rel: str, media_type: str | None, title: str) -> dict[str, Any]:
    link: dict[str, Any] = {"href": href, "rel": rel}
    if media_type:
        link["type"] = media_type
    link["title"] = title
    return link
