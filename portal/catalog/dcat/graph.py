"""DCAT-AP graphs of the catalog and its datasets, built with rdflib.

Every piece of text goes in as an rdflib `Literal`, never by string building, so
markup in titles stays inert data in every serialisation.
"""

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import escape

from rdflib import BNode, Graph, Literal, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF, OWL, RDF, SKOS, XSD, NamespaceManager

from portal.catalog.dcat.paging import last_page, page_url
from portal.catalog.dcat.vocabulary import (
    ACCESS_RIGHTS,
    ADMS,
    CDATA,
    DCAT3_VERSION,
    EU,
    EU_THEMES,
    FILE_TYPES,
    FORMATS,
    FREQUENCIES,
    GEOJSON_LITERAL,
    GSP,
    HYDRA,
    IANA,
    LOCN,
    NOT_XML,
    PREFIXES,
    SPDX,
    URI_UNSAFE,
    VCARD,
)
from portal.catalog.licenses import License
from portal.catalog.package import resource_url
from portal.catalog.views import DatasetView, GroupPublic, ResourceView
from portal.core.errors import InvalidInput
from portal.core.settings import Settings


class _QuickNames(NamespaceManager):
    """A namespace manager that gives up at once on IRIs outside every bound namespace.

    rdflib's Turtle writer asks for a prefixed name of every subject and object, and on a
    miss grows and rescans its namespace trie: quadratic in the number of datasets.
    """

    _bound: tuple[str, ...] | None = None

    def bind(self, *args: Any, **kwargs: Any) -> None:
        """Bind a prefix, forgetting the known namespaces."""
        self._bound = None
        super().bind(*args, **kwargs)

    def compute_qname(self, uri: str, generate: bool = True) -> tuple[str, URIRef, str]:
        """Split an IRI into prefix, namespace and name; fail fast when none can fit."""
        if not generate:
            if self._bound is None:
                self._bound = tuple(str(namespace) for _, namespace in self.namespaces())
            if not str(uri).startswith(self._bound):  # URIRef.startswith takes no tuple
                raise KeyError(f"no bound namespace for {uri}")
        return super().compute_qname(uri, generate)


def new_graph() -> Graph:
    """Return an empty graph with the DCAT-AP prefixes bound."""
    graph = Graph(bind_namespaces="none")
    graph.namespace_manager = _QuickNames(graph, bind_namespaces="core")
    for prefix, namespace in PREFIXES.items():
        graph.bind(prefix, namespace, override=True)
    return graph


def catalog_graph(
    datasets: list[DatasetView],
    *,
    base_url: str,
    page: int,
    page_size: int,
    total: int,
    modified_since: datetime | None,
    settings: Settings,
    fmt: str = "ttl",
) -> Graph:
    """Describe the catalog, one page of its datasets and the Hydra paging links."""
    graph = new_graph()
    catalog = URIRef(f"{base_url}/")
    name, name_en = settings.municipality_name, settings.municipality_name_en
    graph.add((catalog, RDF.type, DCAT.Catalog))
    graph.add((catalog, DCTERMS.title, _text(f"{name} オープンデータカタログ", lang="ja")))
    graph.add((catalog, DCTERMS.title, _text(f"{name_en} Open Data Catalog", lang="en")))
    graph.add(
        (
            catalog,
            DCTERMS.description,
            _text(f"{name}が公開するオープンデータの一覧です。", lang="ja"),
        )
    )
    graph.add(
        (catalog, DCTERMS.description, _text(f"Open data published by {name_en}.", lang="en"))
    )
    graph.add((catalog, DCTERMS.language, URIRef(f"{EU}/language/JPN")))
    graph.add((catalog, FOAF.homepage, catalog))
    graph.add((catalog, DCAT.themeTaxonomy, URIRef(f"{base_url}/group")))
    graph.add((catalog, DCTERMS.publisher, _municipality(graph, settings)))
    if page == 1 and datasets:
        graph.add((catalog, DCTERMS.modified, _time(datasets[0].modified_at)))
    for dataset in datasets:
        graph.add((catalog, DCAT.dataset, add_dataset(graph, dataset, base_url=base_url)))
    _add_paging(graph, base_url, fmt, page, page_size, total, modified_since)
    return graph


def dataset_graph(dataset: DatasetView, *, base_url: str) -> Graph:
    """Describe one dataset and its visible distributions."""
    graph = new_graph()
    add_dataset(graph, dataset, base_url=base_url)
    return graph


def add_dataset(graph: Graph, dataset: DatasetView, *, base_url: str) -> URIRef:
    """Add a dcat:Dataset with its distributions to `graph`; return its URI."""
    node = URIRef(f"{base_url}/dataset/{dataset.id}")
    landing = URIRef(f"{base_url}/dataset/{quote(dataset.name)}")
    graph.add((node, RDF.type, DCAT.Dataset))
    graph.add((node, DCTERMS.identifier, Literal(str(dataset.id))))
    identifier = BNode()
    graph.add((node, ADMS.identifier, identifier))
    graph.add((identifier, RDF.type, ADMS.Identifier))
    graph.add((identifier, SKOS.notation, _text(dataset.name)))
    graph.add((node, DCTERMS.title, _text(dataset.title, lang="ja")))
    if dataset.title_en:
        graph.add((node, DCTERMS.title, _text(dataset.title_en, lang="en")))
    if dataset.notes:
        graph.add((node, DCTERMS.description, _text(dataset.notes, lang="ja")))
    for tag in dataset.tags:
        graph.add((node, DCAT.keyword, _text(tag, lang="ja")))
    for group in dataset.groups:
        _add_theme(graph, node, group, base_url)
    graph.add((node, DCTERMS.publisher, _department(graph, dataset, base_url)))
    graph.add((node, DCTERMS.issued, _time(dataset.created_at)))
    graph.add((node, DCTERMS.modified, _time(dataset.modified_at)))
    graph.add((node, DCTERMS.language, URIRef(f"{EU}/language/JPN")))
    graph.add((node, DCAT.landingPage, landing))
    graph.add((landing, RDF.type, FOAF.Document))
    access = ACCESS_RIGHTS[dataset.visibility.value]
    graph.add((node, DCTERMS.accessRights, URIRef(f"{EU}/access-right/{access}")))
    graph.add((node, DCTERMS.license, _license(graph, dataset.license)))
    if dataset.update_frequency in FREQUENCIES:
        frequency = URIRef(f"{EU}/frequency/{FREQUENCIES[dataset.update_frequency]}")
        graph.add((node, DCTERMS.accrualPeriodicity, frequency))
        graph.add((frequency, RDF.type, DCTERMS.Frequency))
    if dataset.version:
        graph.add((node, OWL.versionInfo, _text(dataset.version)))
        graph.add((node, DCAT3_VERSION, _text(dataset.version)))
    source = _safe_uri(dataset.source_url)
    if source is not None:
        graph.add((node, FOAF.page, source))
    if dataset.standard_dataset:
        _add_standard(graph, node, dataset.standard_dataset)
    _add_spatial(graph, node, dataset.bbox)
    _add_temporal(graph, node, dataset)
    _add_contact(graph, node, dataset)
    for resource in dataset.resources:
        graph.add((node, DCAT.distribution, _distribution(graph, dataset, resource, base_url)))
    return node


def serialize(graph: Graph, fmt: str) -> str:
    """Serialise `graph` as Turtle (ttl), RDF/XML (rdf, xml) or JSON-LD (jsonld)."""
    if fmt not in FORMATS:
        raise InvalidInput(f"unknown RDF format {fmt!r}; use one of {', '.join(FORMATS)}")
    plugin = FORMATS[fmt].plugin
    if plugin == "json-ld":
        context = {prefix: str(namespace) for prefix, namespace in PREFIXES.items()}
        text = graph.serialize(format=plugin, context=context, auto_compact=True, indent=2)
        # `<`, `>` and `&` only occur inside JSON strings: escape them so the document
        # stays inert even if someone embeds it in an HTML <script> element.
        return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    text = graph.serialize(format=plugin)
    if plugin == "pretty-xml":
        # rdflib wraps text holding both `<` and `>` in CDATA; escape it instead, so that no
        # markup appears even to a reader that does not parse XML (CDATA never holds `]]>`).
        text = CDATA.sub(lambda match: escape(match.group(1)), text)
    return text


def _add_paging(
    graph: Graph,
    base_url: str,
    fmt: str,
    page: int,
    page_size: int,
    total: int,
    modified_since: datetime | None,
) -> None:
    """Add the paging triples the way ckanext-dcat does (page URLs as literals)."""

    def url(number: int) -> Literal:
        return Literal(page_url(base_url, fmt, number, page_size, modified_since))

    last = last_page(total, page_size)
    node = URIRef(page_url(base_url, fmt, page, page_size, modified_since))
    graph.add((node, RDF.type, HYDRA.PagedCollection))
    graph.add((node, HYDRA.totalItems, Literal(total, datatype=XSD.integer)))
    graph.add((node, HYDRA.itemsPerPage, Literal(page_size, datatype=XSD.integer)))
    graph.add((node, HYDRA.firstPage, url(1)))
    graph.add((node, HYDRA.lastPage, url(last)))
    if page < last:
        graph.add((node, HYDRA.nextPage, url(page + 1)))
    if page > 1:
        graph.add((node, HYDRA.previousPage, url(min(page - 1, last))))


def _municipality(graph: Graph, settings: Settings) -> BNode:
    agent = BNode()
    graph.add((agent, RDF.type, FOAF.Agent))
    graph.add((agent, FOAF.name, _text(settings.municipality_name, lang="ja")))
    graph.add((agent, FOAF.name, _text(settings.municipality_name_en, lang="en")))
    graph.add((agent, DCTERMS.identifier, Literal(settings.municipality_code)))
    graph.add((agent, DCTERMS.type, URIRef("http://purl.org/adms/publishertype/LocalAuthority")))
    return agent


def _department(graph: Graph, dataset: DatasetView, base_url: str) -> URIRef:
    department = dataset.department
    node = URIRef(f"{base_url}/organization/{quote(department.slug)}")
    graph.add((node, RDF.type, FOAF.Organization))
    graph.add((node, RDF.type, FOAF.Agent))
    graph.add((node, FOAF.name, _text(department.name, lang="ja")))
    if department.name_en:
        graph.add((node, FOAF.name, _text(department.name_en, lang="en")))
    graph.add((node, DCTERMS.type, URIRef("http://purl.org/adms/publishertype/LocalAuthority")))
    return node


def _add_theme(graph: Graph, node: URIRef, group: GroupPublic, base_url: str) -> None:
    theme = URIRef(f"{base_url}/group/{quote(group.name)}")
    graph.add((node, DCAT.theme, theme))
    graph.add((theme, RDF.type, SKOS.Concept))
    graph.add((theme, SKOS.inScheme, URIRef(f"{base_url}/group")))
    graph.add((theme, SKOS.prefLabel, _text(group.title, lang="ja")))
    if group.title_en:
        graph.add((theme, SKOS.prefLabel, _text(group.title_en, lang="en")))
    for code in EU_THEMES.get(group.name, ()):
        eu_theme = URIRef(f"{EU}/data-theme/{code}")
        graph.add((node, DCAT.theme, eu_theme))
        graph.add((theme, SKOS.closeMatch, eu_theme))


def _license(graph: Graph, license: License) -> URIRef:
    node = URIRef(license.url)
    graph.add((node, RDF.type, DCTERMS.LicenseDocument))
    graph.add((node, DCTERMS.title, _text(license.title, lang="ja")))
    graph.add((node, DCTERMS.title, _text(license.title_en, lang="en")))
    graph.add((node, DCTERMS.identifier, Literal(license.id)))
    return node


def _add_standard(graph: Graph, node: URIRef, code: str) -> None:
    standard = BNode()
    graph.add((node, DCTERMS.conformsTo, standard))
    graph.add((standard, RDF.type, DCTERMS.Standard))
    graph.add((standard, DCTERMS.identifier, Literal(code)))
    graph.add((standard, DCTERMS.title, Literal("自治体標準オープンデータセット", lang="ja")))
    graph.add(
        (standard, DCTERMS.title, Literal("Standard open data sets for municipalities", lang="en"))
    )


def _add_spatial(graph: Graph, node: URIRef, bbox: list[float] | None) -> None:
    if not bbox:
        return
    minx, miny, maxx, maxy = bbox
    ring = [(minx, miny), (maxx, miny), (maxx, maxy), (minx, maxy), (minx, miny)]
    wkt = "POLYGON((" + ", ".join(f"{x} {y}" for x, y in ring) + "))"
    geojson = json.dumps({"type": "Polygon", "coordinates": [[list(p) for p in ring]]})
    location = BNode()
    graph.add((node, DCTERMS.spatial, location))
    graph.add((location, RDF.type, DCTERMS.Location))
    graph.add((location, DCAT.bbox, Literal(wkt, datatype=GSP.wktLiteral)))
    graph.add((location, LOCN.geometry, Literal(geojson, datatype=GEOJSON_LITERAL)))


def _add_temporal(graph: Graph, node: URIRef, dataset: DatasetView) -> None:
    if not dataset.temporal_start and not dataset.temporal_end:
        return
    period = BNode()
    graph.add((node, DCTERMS.temporal, period))
    graph.add((period, RDF.type, DCTERMS.PeriodOfTime))
    if dataset.temporal_start:
        graph.add((period, DCAT.startDate, Literal(dataset.temporal_start, datatype=XSD.date)))
    if dataset.temporal_end:
        graph.add((period, DCAT.endDate, Literal(dataset.temporal_end, datatype=XSD.date)))


def _add_contact(graph: Graph, node: URIRef, dataset: DatasetView) -> None:
    if not dataset.contact_name and not dataset.contact_email:
        return
    contact = BNode()
    graph.add((node, DCAT.contactPoint, contact))
    graph.add((contact, RDF.type, VCARD.Kind))
    graph.add((contact, VCARD.fn, _text(dataset.contact_name or dataset.department.name)))
    if dataset.contact_email:
        mailto = URIRef("mailto:" + quote(dataset.contact_email.strip(), safe="@.+-_~!$'*=?"))
        graph.add((contact, VCARD.hasEmail, mailto))


def _distribution(
    graph: Graph, dataset: DatasetView, resource: ResourceView, base_url: str
) -> URIRef:
    node = URIRef(f"{base_url}/dataset/{dataset.id}/resource/{resource.id}")
    landing = URIRef(f"{base_url}/dataset/{quote(dataset.name)}")
    graph.add((node, RDF.type, DCAT.Distribution))
    graph.add((node, DCTERMS.identifier, Literal(str(resource.id))))
    graph.add((node, DCTERMS.title, _text(resource.name, lang="ja")))
    if resource.description:
        graph.add((node, DCTERMS.description, _text(resource.description, lang="ja")))
    download = _safe_uri(resource_url(base_url, dataset.name, resource))
    if resource.kind == "url":
        # A link may be a web page rather than a file: it is where the data is reached.
        graph.add((node, DCAT.accessURL, download or landing))
    else:
        graph.add((node, DCAT.accessURL, landing))
        if download is not None:
            graph.add((node, DCAT.downloadURL, download))
    _add_format(graph, node, resource)
    if resource.size is not None and resource.size >= 0:
        graph.add((node, DCAT.byteSize, Literal(resource.size, datatype=XSD.nonNegativeInteger)))
    if resource.sha256:
        checksum = BNode()
        graph.add((node, SPDX.checksum, checksum))
        graph.add((checksum, RDF.type, SPDX.Checksum))
        graph.add((checksum, SPDX.algorithm, SPDX.checksumAlgorithm_sha256))
        graph.add((checksum, SPDX.checksumValue, Literal(resource.sha256, datatype=XSD.hexBinary)))
    graph.add((node, DCTERMS.issued, _time(resource.created_at)))
    graph.add((node, DCTERMS.modified, _time(resource.modified_at)))
    graph.add((node, DCTERMS.license, _license(graph, dataset.license)))
    return node


def _add_format(graph: Graph, node: URIRef, resource: ResourceView) -> None:
    name = resource.format.upper()
    if resource.kind == "layer":
        name = "GEOJSON" if name in ("GEOJSON", "") else "CSV"  # what the layer export serves
    if not name:
        return
    code, iana = FILE_TYPES.get(name, (None, None))
    if code is None:
        graph.add((node, DCTERMS.format, _text(resource.format)))
    else:
        file_type = URIRef(f"{EU}/file-type/{code}")
        graph.add((node, DCTERMS.format, file_type))
        graph.add((file_type, RDF.type, DCTERMS.MediaTypeOrExtent))
    if iana is None and resource.kind == "file" and resource.mimetype:
        if resource.mimetype != "application/octet-stream" and "/" in resource.mimetype:
            iana = resource.mimetype
    if iana is not None:
        media = _safe_uri(IANA + iana)
        if media is not None:
            graph.add((node, DCAT.mediaType, media))
            graph.add((media, RDF.type, DCTERMS.MediaType))


def _safe_uri(value: str | None) -> URIRef | None:
    """Return an http(s) URL as an IRI, percent-encoding characters IRIs forbid."""
    if not value or not value.startswith(("http://", "https://")):
        return None
    return URIRef("".join(f"%{ord(c):02X}" if c in URI_UNSAFE else c for c in value))


def _text(value: str, lang: str | None = None) -> Literal:
    """Return text as a literal, replacing characters no XML document can hold."""
    return Literal(NOT_XML.sub("\ufffd", value), lang=lang)


def _time(value: datetime) -> Literal:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return Literal(value, datatype=XSD.dateTime)
