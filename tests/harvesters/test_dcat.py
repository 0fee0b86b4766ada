"""The dcat kind: portal B reads portal A's DCAT catalog, and broken or hostile catalogs."""

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from portal.core.errors import InvalidInput
from portal.harvesters.kinds.dcat import DcatHarvester
from tests.harvest_support import add_source
from tests.harvesters.test_ckan import FIXTURES, Portal, a_layers, throwaway_portal
from tests.harvesters.test_http import LocalServer

PREFIXES = """@prefix dcat: <http://www.w3.org/ns/dcat#> .
@prefix dct: <http://purl.org/dc/terms/> .
@prefix hydra: <http://www.w3.org/ns/hydra/core#> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
"""
PAGE_1 = (
    PREFIXES
    + """
<{base}/catalog.ttl> a dcat:Catalog ; dcat:dataset <{base}/dataset/aed> .
<{base}/dataset/aed> a dcat:Dataset ;
    dct:identifier "442020-aed" ;
    dct:title "AED設置箇所一覧"@ja , "AED locations"@en ;
    dct:description "別府市内の公共施設等に設置しているAEDの一覧です。"@ja ;
    dcat:keyword "AED"@ja , "救急"@ja ;
    dct:modified "2024-04-01T09:00:00+09:00"^^xsd:dateTime ;
    dcat:landingPage <{base}/dataset/442020_aed> ;
    dct:license <https://creativecommons.org/licenses/by/4.0/> ;
    dcat:distribution <{base}/dataset/aed/csv> .
<{base}/dataset/aed/csv> a dcat:Distribution ;
    dct:title "AED設置箇所一覧（CSV）"@ja ;
    dcat:downloadURL <{base}/files/442020_aed.csv> ;
    dcat:mediaType <https://www.iana.org/assignments/media-types/text/csv> .
<{base}/catalog.ttl> a hydra:PagedCollection ; hydra:nextPage "{base}/page2.ttl" .
"""
)
PAGE_2 = (
    PREFIXES
    + """
<{base}/dataset/toilet> a dcat:Dataset ;
    dct:identifier "442020-public-toilet" ;
    dct:title "公衆トイレ一覧"@ja ;
    dct:modified "2024-04-01T09:00:00+09:00"^^xsd:dateTime ;
    dcat:distribution [ a dcat:Distribution ; dct:title "公衆トイレ一覧"@ja ;
        dcat:accessURL <{base}/files/442020_public_toilet.csv> ] .
"""
)
BROKEN_PAGES: dict[str, tuple[Any, str]] = {
    "missing": (None, "page 2 of the catalog is broken: {base}/page2.ttl returned 404 Not Found"),
    "html": (
        ("<!DOCTYPE html><html><body>メンテナンス中です</body></html>", "text/html"),
        "page 2 of the catalog is broken: {base}/page2.ttl returned HTML, not RDF: is this "
        "the address of a DCAT catalog (for example https://data.example.jp/catalog.ttl)?",
    ),
    "garbage": (
        ("<{base}/x> dct:title 'unterminated ;", "text/turtle"),
        "page 2 of the catalog is broken: {base}/page2.ttl is not valid Turtle (",
    ),
    "loop": (
        (PAGE_2 + '<{base}/page2.ttl> hydra:next "{base}/catalog.ttl" .\n', "text/turtle"),
        "the catalog's paging is broken: page 2 links back to {base}/catalog.ttl, "
        "a page already read (a loop)",
    ),
}
KEPT = (
    ". Nothing was imported or withdrawn ({read} read before the problem); "
    "fix the catalog's paging and run the harvest again"
)
XXE = """<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE rdf:RDF [
  <!ENTITY dcat "http://www.w3.org/ns/dcat#">
  <!ENTITY xxe SYSTEM "{target}">
]>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
         xmlns:dct="http://purl.org/dc/terms/">
  <rdf:Description rdf:about="{base}/dataset/secret">
    <rdf:type rdf:resource="&dcat;Dataset"/>
    <dct:identifier>secret</dct:identifier>
    <dct:title xml:lang="ja">&xxe;</dct:title>
  </rdf:Description>
</rdf:RDF>
"""
LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n<!ENTITY lol "lol">\n'
    + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n'
        for i in range(1, 10)
    )
    + ']>\n<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">&lol9;</rdf:RDF>\n'
)
JSONLD = """{
  "@context": "/context.jsonld",
  "@id": "{base}/dataset/tourism",
  "@type": "Dataset",
  "identifier": "442020-tourism",
  "title": {"@value": "観光施設一覧", "@language": "ja"},
  "keyword": ["観光", "温泉"],
  "distribution": {"@type": "Distribution", "downloadURL": "{base}/files/442020_tourism.geojson",
                   "format": "GeoJSON"}
}"""
CONTEXT = """{"@context": {
  "dcat": "http://www.w3.org/ns/dcat#", "dct": "http://purl.org/dc/terms/",
  "Dataset": "dcat:Dataset", "Distribution": "dcat:Distribution",
  "identifier": "dct:identifier", "title": "dct:title", "format": "dct:format",
  "keyword": "dcat:keyword", "distribution": {"@id": "dcat:distribution", "@type": "@id"},
  "downloadURL": {"@id": "dcat:downloadURL", "@type": "@id"}
}}"""


@pytest.fixture(scope="module")
def portal_a(demo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    with throwaway_portal(tmp_path_factory.mktemp("dcat-a"), demo_root=demo_root) as portal:
        yield portal


@pytest.fixture(scope="module")
def portal_b(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    with throwaway_portal(tmp_path_factory.mktemp("dcat-b")) as portal:
        yield portal


@pytest.fixture
def catalog() -> Iterator[LocalServer]:
    """A two-page Turtle catalog with the recorded BODIK files beside it."""
    with LocalServer() as server:
        for path in (FIXTURES / "files").iterdir():
            server.static(f"/files/{path.name}", path.read_bytes(), "text/csv")
        server.static("/catalog.ttl", PAGE_1.replace("{base}", server.url), "text/turtle")
        server.static("/page2.ttl", PAGE_2.replace("{base}", server.url), "text/turtle")
        yield server


def test_portal_b_reads_portal_a_catalog_in_turtle(portal_a: Portal, portal_b: Portal) -> None:
    url = f"{portal_a.url}/catalog.ttl?page_size=2"
    add_source(portal_b.sessions, name="a-dcat", kind="dcat", url=url, config={"name_prefix": "d-"})
    first = portal_b.harvest("a-dcat")
    assert (first.status, first.stats) == ("succeeded", {"created": 5}), first.objects
    datasets = portal_b.datasets("a-dcat")
    for name, count in a_layers(portal_a).items():
        layers = portal_b.layers(f"d-{name}")
        assert [layer.feature_count for layer in layers] == [count], name
    evacuation = datasets["d-evacuation-space"]
    assert [g.name for g in evacuation.groups] == ["justice-safety-environment"]
    assert (evacuation.license.id, evacuation.standard_dataset) == ("pdl-1.0", "A-03")
    remote = portal_a.dataset("evacuation-space")
    assert (evacuation.update_frequency, evacuation.title_en) == ("annual", remote.title_en)
    assert "避難場所" in evacuation.tags
    assert datasets["d-youto-chiiki"].license.id == "cc-by-4.0"
    again = portal_b.harvest("a-dcat")
    assert (again.status, again.stats) == ("succeeded", {"unchanged": 5})


@pytest.mark.parametrize("fmt", ["rdf", "jsonld"])
def test_rdf_xml_and_json_ld_catalogs(portal_a: Portal, portal_b: Portal, fmt: str) -> None:
    url = f"{portal_a.url}/catalog.{fmt}?page_size=3"
    config = {"name_prefix": f"{fmt}-", "resources": "link"}
    add_source(portal_b.sessions, name=f"a-{fmt}", kind="dcat", url=url, config=config)
    outcome = portal_b.harvest(f"a-{fmt}")
    assert (outcome.status, outcome.stats) == ("succeeded", {"created": 5}), outcome.objects
    names = sorted(portal_b.datasets(f"a-{fmt}"))
    assert f"{fmt}-evacuation-space" in names
    assert {r.kind for r in portal_b.resources(f"{fmt}-road-ledger")} == {"url"}


def test_a_paged_catalog_with_files(portal_b: Portal, catalog: LocalServer) -> None:
    add_source(portal_b.sessions, name="pages", kind="dcat", url=f"{catalog.url}/catalog.ttl",
               config={"name_prefix": "p-"})  # fmt: skip
    outcome = portal_b.harvest("pages")
    assert (outcome.status, outcome.stats) == ("succeeded", {"created": 2}), outcome.objects
    datasets = portal_b.datasets("pages")
    aed = datasets["p-442020-aed"]
    assert (aed.title, aed.title_en, aed.license.id) == (
        "AED設置箇所一覧",
        "AED locations",
        "cc-by-4.0",
    )
    assert aed.source_url == f"{catalog.url}/dataset/442020_aed"
    [layer] = portal_b.layers("p-442020-aed")
    assert layer.feature_count == 5
    # Only an access URL (a page, perhaps): linked, never downloaded.
    toilet = portal_b.resources("p-442020-public-toilet")
    assert [(r.kind, r.url) for r in toilet] == [
        ("url", f"{catalog.url}/files/442020_public_toilet.csv")
    ]
    assert catalog.hits["/files/442020_public_toilet.csv"] == 0


@pytest.mark.parametrize("case", list(BROKEN_PAGES))
def test_a_broken_next_link_fails_the_job_and_keeps_the_previous_harvest(
    portal_b: Portal, catalog: LocalServer, case: str
) -> None:
    source = f"broken-{case}"
    add_source(portal_b.sessions, name=source, kind="dcat", url=f"{catalog.url}/catalog.ttl",
               config={"name_prefix": f"{case}-", "resources": "link"})  # fmt: skip
    assert portal_b.harvest(source).stats == {"created": 2}
    page, message = BROKEN_PAGES[case]
    if page is None:
        del catalog.routes["/page2.ttl"]
    else:
        catalog.static("/page2.ttl", page[0].replace("{base}", catalog.url), page[1])
    outcome = portal_b.harvest(source)
    assert outcome.status == "failed"
    assert outcome.error is not None
    expected = message.replace("{base}", catalog.url)
    assert outcome.error.startswith(expected), outcome.error
    read = "2 datasets were" if case == "loop" else "1 dataset was"
    assert outcome.error.endswith(KEPT.format(read=read)), outcome.error
    assert len(portal_b.datasets(source)) == 2


def test_an_external_entity_is_never_resolved(portal_b: Portal, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("password")
    with LocalServer() as server:
        server.static("/secret", "password", "text/plain")
        for name, target in (("file", secret.as_uri()), ("http", f"{server.url}/secret")):
            document = XXE.replace("{base}", server.url).replace("{target}", target)
            server.static(f"/{name}.rdf", document, "application/rdf+xml")
            add_source(portal_b.sessions, name=f"xxe-{name}", kind="dcat",
                       url=f"{server.url}/{name}.rdf")  # fmt: skip
            outcome = portal_b.harvest(f"xxe-{name}")
            assert outcome.status == "failed"
            assert outcome.error == (
                f"refused: {server.url}/{name}.rdf declares an external entity (xxe); external "
                "entities are never resolved (they can read files or reach other servers)"
            )
        assert server.hits["/secret"] == 0
        server.static("/laughs.rdf", LAUGHS, "application/rdf+xml")
        add_source(portal_b.sessions, name="laughs", kind="dcat", url=f"{server.url}/laughs.rdf")
        outcome = portal_b.harvest("laughs")
        assert outcome.status == "failed"
        assert outcome.error is not None
        assert re.match(
            rf"{re.escape(server.url)}/laughs.rdf is not well-formed XML \(.*amplification",
            outcome.error,
        ), outcome.error


def test_a_remote_json_ld_context_is_fetched_safely(portal_b: Portal) -> None:
    with LocalServer() as server:
        for path in (FIXTURES / "files").iterdir():
            server.static(f"/files/{path.name}", path.read_bytes(), "application/geo+json")
        server.static(
            "/catalog.jsonld", JSONLD.replace("{base}", server.url), "application/ld+json"
        )
        server.static("/context.jsonld", CONTEXT, "application/ld+json")
        add_source(portal_b.sessions, name="jsonld-context", kind="dcat",
                   url=f"{server.url}/catalog.jsonld", config={"name_prefix": "ctx-"})  # fmt: skip
        outcome = portal_b.harvest("jsonld-context")
        assert (outcome.status, outcome.stats) == ("succeeded", {"created": 1}), outcome.objects
        assert server.hits["/context.jsonld"] == 1
        [layer] = portal_b.layers("ctx-442020-tourism")
        assert layer.feature_count == 2


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"format": "n3"}, "format: Input should be 'auto', 'turtle', 'xml' or 'json-ld'"),
        ({"max_pages": 0}, "max_pages: Input should be greater than or equal to 1"),
        ({"organizations": ["bosai"]}, "unknown setting 'organizations'"),
    ],
)
def test_config_is_checked_on_save(config: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(message)):
        DcatHarvester().validate_config("https://data.example.jp/catalog.ttl", config)
    assert DcatHarvester().validate_config("https://x.jp/c.rdf", {"format": "ttl"}) == {
        "format": "turtle"
    }
