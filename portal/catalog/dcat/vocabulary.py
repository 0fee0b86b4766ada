"""DCAT vocabulary: namespaces, serialisation formats and the EU code lists we map to."""

import re
from dataclasses import dataclass

from rdflib import Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF, OWL, RDF, SKOS, XSD

ADMS = Namespace("http://www.w3.org/ns/adms#")
GSP = Namespace("http://www.opengis.net/ont/geosparql#")
HYDRA = Namespace("http://www.w3.org/ns/hydra/core#")
LOCN = Namespace("http://www.w3.org/ns/locn#")
SPDX = Namespace("http://spdx.org/rdf/terms#")
VCARD = Namespace("http://www.w3.org/2006/vcard/ns#")
EU = "http://publications.europa.eu/resource/authority"
IANA = "https://www.iana.org/assignments/media-types/"
DCAT3_VERSION = URIRef(f"{DCAT}version")  # DCAT 3; rdflib's DCAT namespace stops at DCAT 2
GEOJSON_LITERAL = URIRef(IANA + "application/vnd.geo+json")
PREFIXES = {
    "adms": ADMS, "dcat": DCAT, "dct": DCTERMS, "foaf": FOAF, "gsp": GSP, "hydra": HYDRA,
    "locn": LOCN, "owl": OWL, "rdf": RDF, "skos": SKOS, "spdx": SPDX, "vcard": VCARD, "xsd": XSD,
}  # fmt: skip

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 500  # rdflib needs about a second per 100 datasets: keep one page bounded
MAX_PAGE = 1_000_000


@dataclass(frozen=True)
class RdfFormat:
    """A serialisation: its rdflib plugin and its media type."""

    plugin: str
    media_type: str


FORMATS = {
    "ttl": RdfFormat("turtle", "text/turtle"),
    "rdf": RdfFormat("pretty-xml", "application/rdf+xml"),
    "xml": RdfFormat("pretty-xml", "application/rdf+xml"),
    "jsonld": RdfFormat("json-ld", "application/ld+json"),
}

FREQUENCIES = {
    "continual": "CONT", "daily": "DAILY", "weekly": "WEEKLY", "monthly": "MONTHLY",
    "quarterly": "QUARTERLY", "annual": "ANNUAL", "irregular": "IRREG",
}  # fmt: skip
# The e-Stat categories mapped to the EU data-theme vocabulary, where a mapping is obvious.
EU_THEMES = {
    "land-weather": ("ENVI",),
    "population-households": ("SOCI",),
    "labour-wages": ("ECON",),
    "agriculture-forestry-fisheries": ("AGRI",),
    "mining-manufacturing": ("ECON",),
    "commerce-services": ("ECON",),
    "economy-finance": ("ECON",),
    "housing-land-construction": ("REGI",),
    "energy-water": ("ENER",),
    "transport-tourism": ("TRAN",),
    "ict-science": ("TECH",),
    "education-culture-sports": ("EDUC",),
    "government-finance": ("GOVE",),
    "justice-safety-environment": ("JUST", "ENVI"),
    "social-security-health": ("HEAL",),
    "international": ("INTR",),
}
# Upper-cased resource format: (EU file-type code, IANA media type).
FILE_TYPES: dict[str, tuple[str, str | None]] = {
    "CSV": ("CSV", "text/csv"),
    "GEOJSON": ("GEOJSON", "application/geo+json"),
    "XLSX": ("XLSX", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    "XLS": ("XLS", "application/vnd.ms-excel"),
    "ZIP": ("ZIP", "application/zip"),
    "SHP": ("SHP", "application/zip"),  # a Shapefile travels as a zip of its parts
    "JSON": ("JSON", "application/json"),
    "GPKG": ("GPKG", "application/geopackage+sqlite3"),
    "KML": ("KML", "application/vnd.google-earth.kml+xml"),
    "KMZ": ("KMZ", "application/vnd.google-earth.kmz"),
    "PDF": ("PDF", "application/pdf"),
    "XML": ("XML", "application/xml"),
    "TXT": ("TXT", "text/plain"),
    "HTML": ("HTML", "text/html"),
    "ODS": ("ODS", "application/vnd.oasis.opendocument.spreadsheet"),
    "RDF": ("RDF", None),
}
ACCESS_RIGHTS = {"public": "PUBLIC", "internal": "RESTRICTED", "department": "NON_PUBLIC"}
CDATA = re.compile(r"<!\[CDATA\[(.*?)\]\]>", re.DOTALL)
URI_UNSAFE = '<>" {}|\\^`'
# Characters XML 1.0 cannot carry: RDF/XML would be unreadable with them.
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
