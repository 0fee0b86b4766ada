"""The `dcat` kind: a DCAT catalog in Turtle, RDF/XML or JSON-LD, paged by Hydra links.

A page that cannot be read after the first (404, HTML, unparseable, a loop back to a page
already read) fails the whole job with a message naming the page. Importing the datasets of
the earlier pages would make the runner withdraw every dataset of the later pages, so
nothing is imported and the previous harvest stays as it was.
"""

import json
import re
import warnings
from typing import Any, Literal, NoReturn
from urllib.parse import urlsplit
from xml.parsers import expat

import httpx
from pydantic import Field, field_validator
from rdflib import Graph, URIRef
from rdflib import Literal as RdfLiteral
from rdflib.namespace import DCAT, DCTERMS, FOAF, RDF, SKOS
from rdflib.term import Node

from portal.catalog.dcat.vocabulary import ADMS, FREQUENCIES, HYDRA, VCARD
from portal.core.errors import HarvestFailed
from portal.harvesters import http
from portal.harvesters.base import (
    FetchedObject,
    HarvestContext,
    HarvestedDataset,
    Harvester,
    JobTimedOut,
    RemoteObject,
)
from portal.harvesters.kinds.ckan import object_folder
from portal.harvesters.kinds.ckan_mapping import (
    RemoteResource,
    canonical_hash,
    clean_tags,
    closest_license,
    copy_resources,
    email,
    is_portal_export,
    iso_date,
    map_groups,
    portal_groups,
    short,
    standard_code,
)

SCHEMA_START = URIRef("http://schema.org/startDate")
SCHEMA_END = URIRef("http://schema.org/endDate")
FREQUENCY_BY_CODE = {code: name for name, code in FREQUENCIES.items()}
FORMAT_NAMES = {"turtle": "Turtle", "xml": "RDF/XML", "json-ld": "JSON-LD", "nt": "N-Triples"}
ACCEPT = {
    "auto": "text/turtle, application/rdf+xml;q=0.9, application/ld+json;q=0.8",
    "turtle": "text/turtle",
    "xml": "application/rdf+xml",
    "json-ld": "application/ld+json",
}
BY_TYPE = {
    "text/turtle": "turtle", "application/x-turtle": "turtle", "application/rdf+xml": "xml",
    "application/xml": "xml", "text/xml": "xml", "application/ld+json": "json-ld",
    "application/json": "json-ld", "application/n-triples": "nt",
}  # fmt: skip
BY_SUFFIX = {".ttl": "turtle", ".rdf": "xml", ".xml": "xml", ".owl": "xml", ".jsonld": "json-ld",
             ".json": "json-ld", ".nt": "nt"}  # fmt: skip
ALIASES = {"ttl": "turtle", "rdf": "xml", "rdf/xml": "xml", "jsonld": "json-ld"}
HINT = "is this the address of a DCAT catalog (for example https://data.example.jp/catalog.ttl)?"
MAX_CONTEXTS = 10
MAX_CONTEXT_BYTES = 1024 * 1024
SLUG = re.compile(r"[^a-z0-9]+")


class DcatConfig(http.NetworkConfig):
    """Settings of a DCAT source."""

    format: Literal["auto", "turtle", "xml", "json-ld"] = "auto"
    resources: Literal["download", "link"] = "download"
    max_resource_bytes: int | None = Field(default=None, ge=1024)
    max_pages: int = Field(default=1000, ge=1, le=100_000)
    name_prefix: str = Field(default="", pattern=r"^[a-z0-9_-]{0,40}$")

    @field_validator("format", mode="before")
    @classmethod
    def _format_alias(cls, value: Any) -> Any:
        return ALIASES.get(str(value).strip().lower(), value) if isinstance(value, str) else value


class DcatHarvester(Harvester):
    """Copy the datasets a DCAT catalog describes."""

    kind = "dcat"
    title = "DCAT カタログ（Turtle・RDF/XML・JSON-LD）"

    def validate_config(self, url: str, config: dict[str, Any]) -> dict[str, Any]:
        """Check the catalog URL and the settings."""
        http.validate_source_url(url)
        parsed = http.parse_config(DcatConfig, config)
        return parsed.model_dump(mode="json", exclude_unset=True)

    def gather(self, ctx: HarvestContext) -> list[RemoteObject]:
        """Read every catalog page, following Hydra next links, and list its datasets."""
        config = DcatConfig.model_validate(ctx.source.config)
        site = _origin(ctx.source.url)
        records: dict[str, dict[str, Any]] = {}
        url: str | None = ctx.source.url
        read: set[str] = set()
        while url is not None:
            number = len(read) + 1
            if url.split("#", 1)[0] in read:
                lead = f"the catalog's paging is broken: page {number - 1} links back to "
                raise _broken(f"{lead}{http.shown(url)}, a page already read (a loop)", records)
            if number > config.max_pages:
                raise HarvestFailed(
                    f"the catalog has more than {config.max_pages} pages (max_pages)"
                )
            read.add(url.split("#", 1)[0])
            try:
                graph, url = read_page(ctx, url, config.format)
            except JobTimedOut:
                raise
            except HarvestFailed as exc:
                if number == 1:
                    raise
                lead = f"page {number} of the catalog is broken: {exc.message}"
                raise _broken(lead, records) from None
            for record in dataset_records(graph, site):
                records.setdefault(record["remote_id"], record)
        return [RemoteObject(r["remote_id"], r["modified"], r) for r in records.values()]

    def fetch(self, ctx: HarvestContext, remote: RemoteObject) -> FetchedObject:
        """Map a dataset description and copy (or link) its distributions."""
        config = DcatConfig.model_validate(ctx.source.config)
        record: dict[str, Any] = remote.payload
        groups = portal_groups(ctx) if record["themes"] else {}
        dataset, notes = record_dataset(record, prefix=config.name_prefix, groups=groups)
        resources = [RemoteResource(**d) for d in record["distributions"]]
        copied = copy_resources(
            ctx,
            resources,
            mode=config.resources,
            max_bytes=config.max_resource_bytes or ctx.settings.max_upload_bytes,
            folder=object_folder(ctx, remote.remote_id),
        )
        return FetchedObject(
            remote=remote,
            content_hash=canonical_hash(record, copied.fingerprints),
            dataset=dataset,
            files=copied.files,
            links=copied.links,
            warnings=notes + copied.warnings,
        )


def _broken(lead: str, records: dict[str, Any]) -> HarvestFailed:
    read = f"{len(records)} dataset was" if len(records) == 1 else f"{len(records)} datasets were"
    return HarvestFailed(
        f"{lead}. Nothing was imported or withdrawn ({read} read before the problem); fix the "
        "catalog's paging and run the harvest again"
    )


def read_page(ctx: HarvestContext, url: str, forced: str) -> tuple[Graph, str | None]:
    """Fetch and parse one catalog page; return its graph and the next page's URL."""
    response = http.get(ctx, url, accept=ACCEPT[forced])
    if forced == "auto" and http.looks_like_html(response.content, response.content_type):
        raise HarvestFailed(f"{http.shown(response.url)} returned HTML, not RDF: {HINT}")
    fmt = (
        forced
        if forced != "auto"
        else rdf_format(response.content_type, response.url, response.content)
    )
    graph = parse_rdf(ctx, response.content, fmt, response.url)
    return graph, next_page(graph, response.url, response.headers)


def rdf_format(content_type: str, url: str, content: bytes) -> str:
    """The rdflib parser for a page: by Content-Type, then extension, then first character."""
    if content_type in BY_TYPE:
        return BY_TYPE[content_type]
    path = urlsplit(url).path.lower()
    for suffix, fmt in BY_SUFFIX.items():
        if path.endswith(suffix):
            return fmt
    start = content.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    return "xml" if start == b"<" else "json-ld" if start in (b"{", b"[") else "turtle"


def parse_rdf(ctx: HarvestContext, content: bytes, fmt: str, url: str) -> Graph:
    """Parse RDF without ever reaching the network (no XML entities, no remote contexts)."""
    graph = Graph()
    data: str | bytes
    if fmt == "xml":
        check_xml(content, url)
        data = content
    elif fmt == "json-ld":
        try:
            document = json.loads(content)
        except ValueError as exc:
            raise HarvestFailed(f"{http.shown(url)} is not valid JSON-LD ({exc})") from None
        data = json.dumps(inline_contexts(ctx, document, url, {}))
    else:
        data = content.decode("utf-8", errors="replace")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # odd literals in remote data are not our bugs
            graph.parse(data=data, format=fmt, publicID=url)
    except Exception as exc:  # noqa: BLE001 - rdflib raises many types for bad input
        first = (str(exc).strip() or type(exc).__name__).splitlines()[0][:200]
        raise HarvestFailed(
            f"{http.shown(url)} is not valid {FORMAT_NAMES[fmt]} ({first})"
        ) from None
    return graph


def check_xml(content: bytes, url: str) -> None:
    """Refuse XML that declares external entities or DTDs; expat limits entity expansion."""

    def refuse(what: str) -> NoReturn:
        raise http.Refused(
            f"refused: {http.shown(url)} declares {what}; external entities are never "
            "resolved (they can read files or reach other servers)"
        )

    def entity(
        name: str, _param: int, _value: Any, _base: Any, system: Any, public: Any, _n: Any
    ) -> None:
        if system or public:
            refuse(f"an external entity ({name})")

    def doctype(name: str, system: Any, public: Any, _internal: int) -> None:
        if system or public:
            refuse(f"an external DTD ({name})")

    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.EntityDeclHandler = entity
    parser.StartDoctypeDeclHandler = doctype
    parser.ExternalEntityRefHandler = lambda *_: refuse("an external entity")
    try:
        parser.Parse(content, True)
    except expat.ExpatError as exc:
        raise HarvestFailed(f"{http.shown(url)} is not well-formed XML ({exc})") from None


def inline_contexts(ctx: HarvestContext, node: Any, base: str, cache: dict[str, Any]) -> Any:
    """Replace remote JSON-LD contexts with their content, fetched through the safe client."""
    if isinstance(node, list):
        return [inline_contexts(ctx, item, base, cache) for item in node]
    if not isinstance(node, dict):
        return node
    result = {}
    for key, value in node.items():
        if key == "@context":
            result[key] = _context(ctx, value, base, cache)
        elif key == "@import":
            raise HarvestFailed(
                f"{http.shown(base)}: JSON-LD contexts with @import are not supported"
            )
        else:
            result[key] = inline_contexts(ctx, value, base, cache)
    return result


def _context(ctx: HarvestContext, value: Any, base: str, cache: dict[str, Any]) -> Any:
    if isinstance(value, list):
        return [_context(ctx, item, base, cache) for item in value]
    if not isinstance(value, str):
        return inline_contexts(ctx, value, base, cache)
    url = str(httpx.URL(base).join(value))
    if url not in cache:
        if len(cache) >= MAX_CONTEXTS:
            raise HarvestFailed(f"{http.shown(base)} uses more than {MAX_CONTEXTS} remote contexts")
        cache[url] = None  # a context that refers back to itself stops here
        document = http.get_json(ctx, url, max_bytes=MAX_CONTEXT_BYTES)
        inner = document.get("@context", {}) if isinstance(document, dict) else {}
        cache[url] = _context(ctx, inner, url, cache)
    if cache[url] is None:
        raise HarvestFailed(f"the JSON-LD context {http.shown(url)} refers to itself")
    return cache[url]


def next_page(graph: Graph, url: str, headers: httpx.Headers) -> str | None:
    """The next page: hydra:nextPage or hydra:next (the current page's first), else Link."""
    links = [
        (str(subject), str(target))
        for predicate in (HYDRA.nextPage, HYDRA.next)
        for subject, target in graph.subject_objects(predicate)
    ]
    if links:
        own = sorted(t for s, t in links if s == url) or sorted(t for _, t in links)
        return str(httpx.URL(url).join(own[0].strip()))
    for link in httpx.Response(200, headers=headers).links.values():
        if link.get("rel") == "next" and link.get("url"):
            return str(httpx.URL(url).join(link["url"]))
    return None


def dataset_records(graph: Graph, site: str) -> list[dict[str, Any]]:
    """Every dcat:Dataset of a page as plain data (what fetch maps and the hash covers)."""
    records = []
    for node in sorted(set(graph.subjects(RDF.type, DCAT.Dataset)), key=str):
        identifier = _text(graph, node, DCTERMS.identifier)
        remote_id = identifier or (str(node) if isinstance(node, URIRef) else "")
        if not remote_id:
            continue  # a blank node without dct:identifier cannot be followed between runs
        records.append(_record(graph, node, remote_id, site))
    return records


def _record(graph: Graph, node: Node, remote_id: str, site: str) -> dict[str, Any]:
    landing = _first(graph, node, DCAT.landingPage) or _first(graph, node, FOAF.page)
    notation = _first(graph, _first_node(graph, node, ADMS.identifier), SKOS.notation)
    license_node = _first_node(graph, node, DCTERMS.license)
    contact = _first_node(graph, node, DCAT.contactPoint)
    period = _first_node(graph, node, DCTERMS.temporal)
    themes = []
    for theme in graph.objects(node, DCAT.theme):
        themes.append(str(theme).rstrip("/").rsplit("/", 1)[-1])
        themes += [str(label) for label in graph.objects(theme, SKOS.prefLabel)]
    frequency = str(_first(graph, node, DCTERMS.accrualPeriodicity) or "").rsplit("/", 1)[-1]
    return {
        "remote_id": remote_id,
        "uri": str(node) if isinstance(node, URIRef) else None,
        "modified": _first(graph, node, DCTERMS.modified),
        "slug": notation,
        "title": _text(graph, node, DCTERMS.title),
        "title_en": _text(graph, node, DCTERMS.title, "en", fallback=False),
        "description": _text(graph, node, DCTERMS.description),
        "keywords": sorted({str(k) for k in graph.objects(node, DCAT.keyword)}),
        "themes": themes,
        "landing_page": landing,
        "license": [
            _first(graph, license_node, DCTERMS.identifier),
            _text(graph, license_node, DCTERMS.title),
            str(license_node) if isinstance(license_node, URIRef) else None,
        ],
        "contact_name": _text(graph, contact, VCARD.fn),
        "contact_email": _first(graph, contact, VCARD.hasEmail)
        or _first(graph, contact, VCARD.email),
        "frequency": FREQUENCY_BY_CODE.get(frequency),
        "temporal": [
            _first(graph, period, DCAT.startDate) or _first(graph, period, SCHEMA_START),
            _first(graph, period, DCAT.endDate) or _first(graph, period, SCHEMA_END),
        ],
        "standard": _first(graph, _first_node(graph, node, DCTERMS.conformsTo), DCTERMS.identifier),
        "distributions": [
            _distribution(graph, d, site)
            for d in sorted(set(graph.objects(node, DCAT.distribution)), key=str)
        ],
    }


def _distribution(graph: Graph, node: Node, site: str) -> dict[str, Any]:
    download = _first(graph, node, DCAT.downloadURL)
    access = _first(graph, node, DCAT.accessURL)
    fmt = _first(graph, node, DCTERMS.format) or _first(graph, node, DCAT.mediaType) or ""
    if "/" in fmt and fmt.startswith("http"):
        # an EU file-type URI ends in the format's name; an IANA one in the media type
        fmt = (
            fmt.split("/media-types/", 1)[-1] if "/media-types/" in fmt else fmt.rsplit("/", 1)[-1]
        )
    url = download or access or ""
    export = bool(download) and is_portal_export(url, site)
    return {
        "url": url,
        "name": _text(graph, node, DCTERMS.title) or url.rsplit("/", 1)[-1],
        "format": fmt,
        "description": _text(graph, node, DCTERMS.description) or "",
        "layer_export": bool(export),
        "link_only": not download,
    }


def record_dataset(
    record: dict[str, Any], *, prefix: str, groups: dict[str, str]
) -> tuple[HarvestedDataset, list[str]]:
    """Map a dataset record to catalog fields; return them with notes on what was changed."""
    notes: list[str] = []
    license_texts = [t for t in record["license"] if t]
    license_id = closest_license(*license_texts)
    extras: dict[str, Any] = {"harvest_remote_id": record["remote_id"]}
    if record["uri"]:
        extras["harvest_remote_uri"] = record["uri"]
    if license_texts and license_id is None:
        extras["harvest_remote_license"] = short(license_texts[-1], 200)
        notes.append(
            f"licence {license_texts[-1]!r} is not one the portal knows; the default is used"
        )
    start, end = iso_date(record["temporal"][0]), iso_date(record["temporal"][1])
    if start and end and start > end:
        start = end = None
    landing = record["landing_page"] or record["uri"] or ""
    return (
        HarvestedDataset(
            name=prefix + _slug(record),
            title=short(record["title"] or record["remote_id"], 500),
            title_en=short(record["title_en"], 500) or None,
            notes=short(record["description"], 20_000),
            tags=clean_tags(record["keywords"]),
            groups=map_groups(record["themes"], groups),
            license_id=license_id,
            source_url=landing if landing.startswith(("http://", "https://")) else None,
            update_frequency=record["frequency"],
            temporal_start=start,
            temporal_end=end,
            contact_name=short(record["contact_name"], 200) or None,
            contact_email=email(record["contact_email"]),
            standard_dataset=standard_code(record["standard"]),
            extras=extras,
        ),
        notes,
    )


def _slug(record: dict[str, Any]) -> str:
    """An ASCII name: the catalog's own name for it, else the landing page's or the id."""
    for candidate in (record["slug"], record["landing_page"], record["remote_id"], record["uri"]):
        text = SLUG.sub("-", str(candidate or "").rstrip("/").rsplit("/", 1)[-1].lower()).strip("-")
        if len(text) >= 2:
            return text[:80]
    return "dataset"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _first_node(graph: Graph, node: Node | None, predicate: URIRef) -> Node | None:
    if node is None:
        return None
    return next(iter(sorted(graph.objects(node, predicate), key=str)), None)


def _first(graph: Graph, node: Node | None, predicate: URIRef) -> str | None:
    found = _first_node(graph, node, predicate)
    return str(found).strip() if found is not None else None


def _text(
    graph: Graph, node: Node | None, predicate: URIRef, lang: str = "ja", *, fallback: bool = True
) -> str | None:
    """A literal in the wanted language; else one without a language; else any."""
    if node is None:
        return None
    values = [v for v in graph.objects(node, predicate) if isinstance(v, RdfLiteral)]
    ranked = [v for v in values if v.language == lang]
    if fallback:
        ranked += sorted((v for v in values if not v.language), key=str)
        ranked += sorted(values, key=str)
    return str(ranked[0]).strip() if ranked else None
