"""OGC API - Features sources: each collection becomes a dataset with one PostGIS layer.

GDAL's OAPIF driver speaks the protocol (collections, paging by `rel=next`); its requests go
through the vetting proxy of `gdal_net`, so the harvest network rules hold for every page.
"""

import hashlib
import json
import re
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pyarrow as pa
import pyogrio
from pydantic import Field, field_validator
from pyogrio.errors import DataLayerError, DataSourceError
from pyproj import CRS
from pyproj.exceptions import CRSError

from portal.catalog.schemas import TAG
from portal.core.errors import HarvestFailed, InvalidInput
from portal.harvesters import http
from portal.harvesters.base import (
    FetchedObject,
    HarvestContext,
    HarvestedDataset,
    HarvestedFile,
    Harvester,
    RemoteObject,
)
from portal.harvesters.kinds.gdal_net import GuardProxy, NetRules, guarded_gdal, vet_url

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
DEFAULT_MAX_FEATURES = 1_000_000
DEFAULT_PAGE_SIZE = 1000
MAX_COLLECTION_PAGES = 100
BATCH_SIZE = 20_000
_NOT_SLUG = re.compile(r"[^a-z0-9]+")
_NOT_LAYER = re.compile(r"\W+")


class OgcApiConfig(http.NetworkConfig):
    """Settings of an OGC API - Features source."""

    collections: list[str] = Field(default_factory=list, max_length=1000)
    max_features: int = Field(default=DEFAULT_MAX_FEATURES, ge=1)
    page_size: int = Field(default=DEFAULT_PAGE_SIZE, ge=1, le=100_000)
    crs: str = CRS84
    max_download_bytes: int | None = Field(default=None, ge=1024)

    @field_validator("collections")
    @classmethod
    def _collection_ids(cls, values: list[str]) -> list[str]:
        return list(dict.fromkeys(v.strip() for v in values if v.strip()))

    @field_validator("crs")
    @classmethod
    def _known_crs(cls, value: str) -> str:
        try:
            CRS.from_user_input(value)
        except CRSError:
            raise ValueError(f"{value!r} is not a CRS (such as EPSG:6670)") from None
        return value


class OgcApiHarvester(Harvester):
    """OGC API - Features: one dataset per feature collection, read with GDAL."""

    kind = "ogcapi"
    title = "OGC API - Features"

    def validate_config(self, url: str, config: dict[str, Any]) -> dict[str, Any]:
        """Check the landing page URL and the settings."""
        http.validate_source_url(url)
        parts = urlsplit(url)
        if parts.query or parts.fragment:
            raise InvalidInput(f"{url!r}: give the landing page URL without ?query or #fragment")
        parsed = http.parse_config(OgcApiConfig, config)
        return parsed.model_dump(mode="json", exclude_unset=True)

    def gather(self, ctx: HarvestContext) -> Iterable[RemoteObject]:
        """List the feature collections (one request to /collections, paged if the server pages)."""
        base = api_root(ctx.source.url)
        config = OgcApiConfig.model_validate(ctx.source.config)
        offered = list_collections(ctx, base)
        wanted = config.collections
        by_id = {str(c["id"]): c for c in offered if "id" in c}
        if not wanted:
            wanted = [i for i, c in by_id.items() if c.get("itemType", "feature") == "feature"]
        remotes = []
        for collection_id in wanted:
            collection = by_id.get(collection_id)
            marker = _modified(collection, config.crs) if collection else None
            remotes.append(RemoteObject(collection_id, marker, collection))
        ctx.log(f"{len(remotes)} collections to harvest from {base}")
        return remotes

    def fetch(self, ctx: HarvestContext, remote: RemoteObject) -> FetchedObject:
        """Download one collection to a GeoPackage with GDAL, paging through `rel=next`."""
        collection: dict[str, Any] | None = remote.payload
        if collection is None:
            raise HarvestFailed(
                f"the server does not list the collection {remote.remote_id!r}; "
                "check the collections setting of this source"
            )
        config = OgcApiConfig.model_validate(ctx.source.config)
        base = api_root(ctx.source.url)
        collection_url = f"{base}/collections/{quote(remote.remote_id, safe='')}"
        layer = _NOT_LAYER.sub("_", remote.remote_id).strip("_") or "features"
        target = ctx.workdir / f"{_slug(remote.remote_id)}.gpkg"
        target.unlink(missing_ok=True)  # two ids may share a slug; each object starts afresh
        rules = net_rules(ctx, config)
        vet_url(collection_url, allow_private=rules.allow_private)
        with guarded_gdal(rules) as proxy:
            count, data_hash = download_collection(
                ctx, proxy, collection_url, target, layer, config
            )
        dataset = _dataset(ctx, remote.remote_id, collection, collection_url, count)
        metadata = json.dumps(
            [dataset.title, dataset.notes, dataset.tags, config.crs], ensure_ascii=False
        )
        content_hash = hashlib.sha256(metadata.encode() + data_hash.encode()).hexdigest()
        title = dataset.title
        harvested = HarvestedFile(
            target, target.name, "GPKG", load=True, store=True, source_layer=layer, title=title
        )
        return FetchedObject(remote, content_hash, dataset, files=[harvested])


def api_root(url: str) -> str:
    """The landing page URL without a trailing slash or a trailing /collections."""
    root = url.rstrip("/")
    return root.removesuffix("/collections").rstrip("/")


def net_rules(ctx: HarvestContext, config: OgcApiConfig) -> NetRules:
    """The network rules of this source: private networks only when a site admin allowed it."""
    return NetRules(
        allow_private=ctx.source.allow_private_network,
        max_bytes=config.max_download_bytes or ctx.settings.max_upload_bytes,
        timeout=config.timeout,
        retries=config.retries,
    )


def list_collections(ctx: HarvestContext, base: str) -> list[dict[str, Any]]:
    """Read /collections with the http module (following `rel=next` if the server pages it)."""
    url: str | None = f"{base}/collections?f=json"
    collections: list[dict[str, Any]] = []
    seen: set[str] = set()
    while url and url not in seen and len(seen) < MAX_COLLECTION_PAGES:
        seen.add(url)
        document = http.get_json(ctx, url, hint="is this an OGC API - Features landing page?")
        page = document.get("collections") if isinstance(document, dict) else None
        if not isinstance(page, list):
            raise HarvestFailed(
                f"{http.shown(url)} is not an OGC API collections document (no 'collections')"
            )
        collections += [c for c in page if isinstance(c, dict)]
        url = _link(document, "next")
    return collections


def download_collection(
    ctx: HarvestContext,
    proxy: GuardProxy,
    collection_url: str,
    target: Path,
    layer: str,
    config: OgcApiConfig,
) -> tuple[int, str]:
    """Stream a collection from GDAL's OAPIF driver into a GeoPackage; return count and hash."""
    limit = config.max_features
    options = {"PAGE_SIZE": str(config.page_size)}
    if config.crs != CRS84:
        options["CRS"] = config.crs
    source = "OAPIF:" + collection_url
    digest = hashlib.sha256()
    count = 0
    stopped: list[HarvestFailed] = []

    def counted(reader: pa.RecordBatchReader) -> Iterator[pa.RecordBatch]:
        nonlocal count
        for batch in reader:
            try:
                ctx.check_time()
                count += batch.num_rows
                if count > limit:
                    raise _too_many(limit)
            except HarvestFailed as exc:
                stopped.append(exc)
                raise
            digest.update(_batch_bytes(batch))
            yield batch

    gdal_said: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as gdal_said:
            warnings.simplefilter("always")  # GDAL's retries and errors arrive as warnings
            # numberMatched, when the server gives it (-1 otherwise): GDAL ends a read quietly
            # when a page fails, so the count read is checked against it.
            expected = int(pyogrio.read_info(source, **options).get("features") or -1)
            if expected > limit:
                raise _too_many(limit, expected)
            _copy(source, options, target, layer, counted)
    except (DataSourceError, DataLayerError, OSError, RuntimeError, pa.ArrowException) as exc:
        if stopped:
            raise stopped[0] from exc
        raise HarvestFailed(_gdal_message(collection_url, exc, proxy)) from exc
    if stopped:
        raise stopped[0]
    problem = proxy.problem()
    if problem:
        raise HarvestFailed(f"{collection_url}: {problem} (after {count:,} features)")
    said = [str(w.message) for w in gdal_said if "error" in str(w.message).lower()]
    if 0 <= count < expected:
        raise HarvestFailed(
            f"{collection_url}: the server announced {expected:,} features but only {count:,} "
            "could be read; a page of results failed, try again later"
            + (f" (GDAL: {said[-1]})" if said else "")
        )
    return count, digest.hexdigest()


def _copy(
    source: str,
    options: dict[str, str],
    target: Path,
    layer: str,
    counted: Callable[[pa.RecordBatchReader], Iterator[pa.RecordBatch]],
) -> None:
    """Stream the OAPIF layer into a GeoPackage layer, batch by batch."""
    with pyogrio.open_arrow(source, use_pyarrow=True, batch_size=BATCH_SIZE, **options) as (
        meta,
        reader,
    ):
        pyogrio.write_arrow(
            pa.RecordBatchReader.from_batches(reader.schema, counted(reader)),
            target,
            layer=layer,
            driver="GPKG",
            geometry_name=_geometry_field(reader.schema),
            geometry_type=meta.get("geometry_type") or "Unknown",
            crs=meta.get("crs"),
            layer_options={"SPATIAL_INDEX": "NO"},
        )


def _too_many(limit: int, announced: int | None = None) -> HarvestFailed:
    said = f"{announced:,} features" if announced else f"more than {limit:,} features"
    return HarvestFailed(
        f"the collection has {said}, over the limit of {limit:,} (max_features); "
        "raise max_features in the source settings to harvest all of it"
    )


def _batch_bytes(batch: pa.RecordBatch) -> bytes:
    """The batch in Arrow IPC form: the same features always give the same bytes."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return bytes(sink.getvalue())


def _geometry_field(schema: pa.Schema) -> str | None:
    for item in schema:
        extension = (item.metadata or {}).get(b"ARROW:extension:name")
        if extension in (b"ogc.wkb", b"geoarrow.wkb"):
            return str(item.name)
    return None


def _gdal_message(url: str, exc: BaseException, proxy: GuardProxy) -> str:
    """A message a clerk can act on: the proxy's refusal if there was one, else GDAL's."""
    if proxy.refusals:
        return f"{url}: {proxy.refusals[-1]}"
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return f"{url}: GDAL could not read the collection ({first})"


def _dataset(
    ctx: HarvestContext,
    collection_id: str,
    collection: dict[str, Any],
    url: str,
    count: int,
) -> HarvestedDataset:
    title = str(collection.get("title") or collection_id)[:500]
    keywords = collection.get("keywords") or []
    tags = [_keyword(k) for k in keywords if isinstance(k, str | dict)]
    return HarvestedDataset(
        name=f"{ctx.source.name}-{_slug(collection_id)}",
        title=title,
        notes=str(collection.get("description") or "")[:20_000],
        tags=list(dict.fromkeys(t for t in tags if t and TAG.match(t)))[:100],
        source_url=url,
        extras={"ogcapi_collection": collection_id, "ogcapi_features": count},
    )


def _keyword(value: str | dict[str, Any]) -> str:
    text = value.get("keyword", "") if isinstance(value, dict) else value
    return str(text).strip()


def _modified(collection: dict[str, Any], crs: str) -> str | None:
    """The collection's own modification mark, if the server gives one (with the request CRS)."""
    updated = collection.get("updated") or collection.get("modified")
    return f"{updated}|{crs}" if isinstance(updated, str) else None


def _link(document: dict[str, Any], rel: str) -> str | None:
    for link in document.get("links") or []:
        if isinstance(link, dict) and link.get("rel") == rel and link.get("href"):
            kind = str(link.get("type") or "application/json")
            if "json" in kind:
                return str(link["href"])
    return None


def _slug(collection_id: str) -> str:
    slug = _NOT_SLUG.sub("-", collection_id.lower()).strip("-")
    return slug[:60] or "c-" + hashlib.sha1(collection_id.encode()).hexdigest()[:8]
