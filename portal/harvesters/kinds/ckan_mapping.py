"""Remote metadata to catalog fields, and copying remote resources (shared by CKAN and DCAT)."""

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from portal.catalog.groups import list_groups
from portal.catalog.licenses import LICENSES, get_license
from portal.catalog.schemas import FREQUENCIES
from portal.catalog.standard_datasets import BY_ID as STANDARD_IDS
from portal.core.database import session_scope
from portal.core.errors import HarvestFailed, InvalidInput
from portal.core.storage import safe_file_name
from portal.harvesters import http
from portal.harvesters.base import (
    HarvestContext,
    HarvestedDataset,
    HarvestedFile,
    HarvestedLink,
)
from portal.harvesters.publish import LOADABLE

BAD_TAG_CHARS = re.compile(r"[,<>\"'&\x00-\x1f]")
SUFFIX_BY_FORMAT = {
    "CSV": ".csv", "GEOJSON": ".geojson", "JSON": ".json", "XLSX": ".xlsx", "XLS": ".xls",
    "KML": ".kml", "KMZ": ".kmz", "GPKG": ".gpkg", "GEOPACKAGE": ".gpkg", "SHP": ".zip",
    "SHAPEFILE": ".zip", "ZIP": ".zip", "PDF": ".pdf", "XML": ".xml", "GML": ".gml",
    "TXT": ".txt", "ODS": ".ods", "RDF": ".rdf",
}  # fmt: skip
SUFFIX_BY_TYPE = {
    "text/csv": ".csv", "application/geo+json": ".geojson", "application/vnd.geo+json": ".geojson",
    "application/json": ".json", "application/zip": ".zip", "application/pdf": ".pdf",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
    "application/vnd.google-earth.kml+xml": ".kml", "application/geopackage+sqlite3": ".gpkg",
}  # fmt: skip
FORMAT_ALIASES = {"TEXT/CSV": "CSV", "SHAPE": "SHP", "SHAPEFILE": "SHP", "GEOPACKAGE": "GPKG"}
# This portal's own layer exports (`/download/<layer>.geojson|csv`): a rendering of an
# original that is listed beside it, so only loaded when no original could be.
_EXPORT_PATH = r"/download/[a-z][a-z0-9_]{0,39}\.(geojson|csv)"


@dataclass
class RemoteResource:
    """A resource or distribution as a remote catalog describes it."""

    url: str
    name: str
    format: str = ""
    description: str = ""
    layer_export: bool = False
    link_only: bool = False


@dataclass
class Copied:
    """The outcome of copying a dataset's resources."""

    files: list[HarvestedFile] = field(default_factory=list)
    links: list[HarvestedLink] = field(default_factory=list)
    fingerprints: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def is_portal_export(url: str, site: str) -> bool:
    """Tell whether a URL is this portal's export of a layer (`<site>/download/<layer>.csv`)."""
    return re.fullmatch(re.escape(site.rstrip("/")) + _EXPORT_PATH, url) is not None


def canonical_hash(value: Any, extra: list[str] | None = None) -> str:
    """SHA-256 of a value's canonical JSON, plus extra lines (such as file hashes)."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    digest = hashlib.sha256(text.encode())
    for line in extra or []:
        digest.update(b"\n" + line.encode())
    return digest.hexdigest()


def copy_resources(
    ctx: HarvestContext, resources: list[RemoteResource], *, mode: str, max_bytes: int, folder: Path
) -> Copied:
    """Download (or link) resources; a layer export is loaded only when no original is."""
    copied = Copied()
    originals = [r for r in resources if not r.layer_export]
    exports = [r for r in resources if r.layer_export]
    if mode == "link":
        for resource in resources:
            _link(copied, resource)
        return copied
    for index, resource in enumerate(originals):
        _download_one(ctx, copied, resource, max_bytes, folder, index, store=True)
    if not any(f.load for f in copied.files):
        for index, resource in enumerate(exports, start=len(originals)):
            _download_one(ctx, copied, resource, max_bytes, folder, index, store=False)
    return copied


def _download_one(
    ctx: HarvestContext,
    copied: Copied,
    resource: RemoteResource,
    max_bytes: int,
    folder: Path,
    index: int,
    *,
    store: bool,
) -> None:
    if resource.link_only or not resource.url.startswith(("http://", "https://")):
        _link(copied, resource)
        return
    name = file_name(resource.url, resource.name, resource.format)
    target = folder / f"{index:03d}" / name
    try:
        got = http.download(ctx, resource.url, target, max_bytes)
    except http.HttpStatusError as exc:
        if exc.status >= 500:
            raise
        copied.warnings.append(f"{resource.name}: {exc.message}; kept as a link")
        _link(copied, resource)
        return
    except http.TooLarge as exc:
        raise HarvestFailed(
            f"{resource.name}: {exc.message}; raise max_resource_bytes, or set resources to "
            "'link' to link large files instead of copying them"
        ) from None
    if target.suffix.lower() not in (".html", ".htm") and _is_html(got):
        target.unlink()
        copied.warnings.append(
            f"{resource.name}: {http.shown(resource.url)} is a web page, not a file; kept as a link"
        )
        _link(copied, resource)
        return
    if not target.suffix and got.content_type in SUFFIX_BY_TYPE:
        target = target.rename(target.with_name(target.name + SUFFIX_BY_TYPE[got.content_type]))
    fmt = normal_format(resource.format) or target.suffix.lstrip(".").upper()
    copied.files.append(
        HarvestedFile(
            path=target,
            name=target.name,
            format=fmt[:32],
            load=_loadable(target, fmt),
            store=store,
            title=resource.name[:500] or None,
        )
    )
    copied.fingerprints.append(f"{resource.url} sha256:{got.sha256}")


def _link(copied: Copied, resource: RemoteResource) -> None:
    if not resource.url.startswith(("http://", "https://")) or len(resource.url) > 2000:
        copied.warnings.append(f"{resource.name}: {resource.url[:100]!r} is not a web address")
        return
    copied.links.append(
        HarvestedLink(
            url=resource.url,
            name=resource.name[:500] or resource.url[:500],
            format=normal_format(resource.format)[:32],
            description=resource.description[:10_000],
        )
    )
    copied.fingerprints.append(f"link {resource.url}")


def _is_html(got: http.Downloaded) -> bool:
    with got.path.open("rb") as stream:
        return http.looks_like_html(stream.read(512), got.content_type)


def _loadable(path: Path, fmt: str) -> bool:
    """Spatial and tabular files are loaded; plain JSON only when it is GeoJSON."""
    suffix = path.suffix.lower()
    if suffix not in LOADABLE:
        return False
    if suffix == ".json" and fmt != "GEOJSON":
        with path.open("rb") as stream:
            head = stream.read(4096)
        return b'"FeatureCollection"' in head or b'"Feature"' in head
    return True


def normal_format(value: str) -> str:
    """A format name as this portal writes it (CSV, GEOJSON, SHP, …)."""
    text = value.strip().lstrip(".").upper()
    text = FORMAT_ALIASES.get(text, text)
    if "/" in text:  # a media type given as the format
        text = {v: k for k, v in SUFFIX_BY_TYPE.items()}.get(text.lower(), text)
        text = text.lstrip(".").upper()
    return text


def file_name(url: str, name: str, fmt: str) -> str:
    """A safe local file name from the URL's last segment (or the name), with a suffix."""
    segment = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    suffix = SUFFIX_BY_FORMAT.get(normal_format(fmt), "")
    candidate = segment if "." in segment else (segment or name or "resource") + suffix
    try:
        return safe_file_name(candidate)
    except InvalidInput:
        return "resource" + (Path(candidate).suffix if Path(candidate).suffix.isascii() else "")


def clean_tags(values: list[str]) -> list[str]:
    """Tags the catalog accepts: markup characters dropped, trimmed, unique, at most 100."""
    tags: list[str] = []
    for value in values:
        tag = BAD_TAG_CHARS.sub(" ", value).strip()[:100].strip()
        if tag and tag not in tags:
            tags.append(tag)
    return tags[:100]


def portal_groups(ctx: HarvestContext) -> dict[str, str]:
    """The portal's groups by name and by title (Japanese and English), to their names."""
    with session_scope(ctx.sessions) as session:
        groups = list_groups(session)
    found: dict[str, str] = {}
    for group in groups:
        for key in (group.name, group.title, group.title_en):
            if key:
                found[key.strip().lower()] = group.name
    return found


def map_groups(keys: list[str], groups: dict[str, str]) -> list[str]:
    """The portal group names among remote group names or titles; others are ignored."""
    names = [groups[k.strip().lower()] for k in keys if k and k.strip().lower() in groups]
    return list(dict.fromkeys(names))


def closest_license(*texts: str | None) -> str | None:
    """The portal licence matching remote licence ids, titles or URLs, or None."""
    for text in texts:
        if text:
            try:
                return get_license(text).id
            except InvalidInput:
                pass
    joined = " ".join(t for t in texts if t).lower()
    for license in LICENSES:
        if license.url.lower().rstrip("/").removesuffix("/deed.ja") in joined:
            return license.id
    if re.search(r"cc0|cc-zero|publicdomain/zero|pddl", joined):
        return "cc-zero"
    if "odbl" in joined:
        return "odc-odbl"
    if "公共データ利用規約" in joined or re.search(r"\bpdl", joined):
        return "pdl-1.0"
    if "政府標準利用規約" in joined:
        return "jp-gsl-2.0"
    restricted = re.search(r"(by|表示)[-_ ]?(nc|nd|sa)\b|非営利|改変禁止|継承", joined)
    if not restricted and re.search(r"cc[-_ ]?by|licenses/by/|表示\s*\d", joined):
        return "cc-by-4.0"
    return None


def frequency(value: str | None) -> str | None:
    """An update frequency the catalog knows, or None."""
    text = (value or "").strip().lower()
    return text if text in FREQUENCIES else None


def iso_date(value: Any) -> date | None:
    """The date at the start of an ISO 8601 text, or None."""
    try:
        return date.fromisoformat(str(value).strip()[:10])
    except ValueError:
        return None


def standard_code(value: Any) -> str | None:
    """A standard-dataset id (A-03, …) the catalog knows, or None."""
    text = str(value or "").strip().upper()
    return text if text in STANDARD_IDS else None


def short(text: Any, limit: int) -> str:
    """Text cut to a length limit with an ellipsis."""
    value = str(text or "").strip()
    return value if len(value) <= limit else value[: limit - 1] + "…"


def email(value: Any) -> str | None:
    """An e-mail address (mailto: removed), or None when it does not look like one."""
    text = str(value or "").strip().removeprefix("mailto:")
    return text if "@" in text and len(text) <= 320 and " " not in text else None


def package_dataset(
    package: dict[str, Any], *, prefix: str, site: str, groups: dict[str, str]
) -> tuple[HarvestedDataset, list[str]]:
    """Map a CKAN package dict to catalog fields; return them with notes on what was changed."""
    notes: list[str] = []
    name = str(package.get("name") or package.get("id") or "dataset")
    extras = {
        str(e.get("key")): e.get("value")
        for e in package.get("extras") or []
        if isinstance(e, dict) and e.get("key")
    }
    license_text = package.get("license_id") or package.get("license_title")
    license_id = closest_license(
        package.get("license_id"), package.get("license_title"), package.get("license_url")
    )
    kept: dict[str, Any] = {
        "harvest_remote_id": str(package.get("id") or ""),
        "harvest_remote_name": name,
        "harvest_remote_url": f"{site}/dataset/{name}",
    }
    organization = package.get("organization")
    if isinstance(organization, dict) and organization.get("title"):
        kept["harvest_remote_organization"] = short(organization["title"], 200)
    if license_text and license_id != license_text:
        kept["harvest_remote_license"] = short(license_text, 200)
        if license_id is None:
            notes.append(
                f"licence {license_text!r} is not one the portal knows; the default is used"
            )
    remote_groups = [
        str(g.get(key) or "")
        for g in package.get("groups") or []
        if isinstance(g, dict)
        for key in ("name", "title", "display_name")
    ]
    start, end = iso_date(extras.get("temporal_start")), iso_date(extras.get("temporal_end"))
    if start and end and start > end:
        start = end = None
    url = str(package.get("url") or "")
    dataset = HarvestedDataset(
        name=prefix + name,
        title=short(package.get("title") or name, 500),
        title_en=short(package["title_en"], 500)
        if isinstance(package.get("title_en"), str)
        else None,
        notes=short(package.get("notes"), 20_000),
        tags=clean_tags(
            [str(t.get("name") or "") for t in package.get("tags") or [] if isinstance(t, dict)]
        ),
        groups=map_groups(remote_groups, groups),
        license_id=license_id,
        source_url=url if url.startswith(("http://", "https://")) else kept["harvest_remote_url"],
        update_frequency=frequency(extras.get("update_frequency")),
        temporal_start=start,
        temporal_end=end,
        contact_name=short(package.get("maintainer") or package.get("author"), 200) or None,
        contact_email=email(package.get("maintainer_email") or package.get("author_email")),
        standard_dataset=standard_code(extras.get("standard_dataset")),
        extras=kept,
    )
    return dataset, notes


def package_resources(package: dict[str, Any], site: str) -> list[RemoteResource]:
    """The active resources of a CKAN package, this portal's layer exports marked."""
    found = []
    for resource in package.get("resources") or []:
        if not isinstance(resource, dict) or resource.get("state", "active") != "active":
            continue
        url = str(resource.get("url") or "").strip()
        if not url:
            continue
        export = resource.get("resource_type") == "layer" or is_portal_export(url, site)
        found.append(
            RemoteResource(
                url=url,
                name=str(resource.get("name") or "").strip() or file_name(url, "", ""),
                format=str(resource.get("format") or ""),
                description=str(resource.get("description") or ""),
                layer_export=export,
            )
        )
    return found
