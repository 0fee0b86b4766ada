"""A resource's quality report: its 5-star open data level and its 標準データセット conformance.

The 5-star rule. Every licence the portal offers is open, so every resource starts at 1.
- 1: on the web under an open licence, in any format (PDF, images, Word, a broken file).
- 2: structured and machine-readable, in a proprietary format (XLSX, XLS).
- 3: structured, in an open format (CSV, GeoJSON, JSON, XML, KML, GML, GeoPackage, Shapefile).
- 4: the data itself names things with URIs: RDF (Turtle, RDF/XML, JSON-LD, N-Triples).
- 5: RDF that links to other people's data; a file on its own is not graded 5.
The portal's DCAT record gives the *dataset* a URI, but not the rows inside a CSV, so the
DCAT catalog alone does not lift a CSV to 4: otherwise every public file would be a 4 and the
level would say nothing. A file whose content does not parse as its claimed format gets 1.
"""

import re
from pathlib import Path
from typing import Any

from portal.catalog.conformance import StandardCheck
from portal.catalog.convert import cell_text, tabular_format
from portal.catalog.preview import open_table
from portal.catalog.standard_datasets import STANDARD_DATASETS, StandardDataset, find_by_label
from portal.core.errors import InvalidInput, LoadFailed
from portal.core.municipality import is_valid_code
from portal.geo.encoding import SNIFF_BYTES, sniff_encoding

PROPRIETARY_STRUCTURED = {"XLSX", "XLS", "XLSM"}
OPEN_STRUCTURED = {
    "CSV", "TSV", "JSON", "GEOJSON", "XML", "KML", "KMZ", "GML", "GPKG", "SHP", "ODS", "TOPOJSON",
}  # fmt: skip
RDF = {"RDF", "TTL", "TURTLE", "JSON-LD", "JSONLD", "NT", "N-TRIPLES", "N3", "OWL"}
TEXT_FORMATS = {"CSV", "TSV", "TXT", "JSON", "GEOJSON", "XML", "KML", "GML", "TTL", "RDF", "JSONLD"}
_SUFFIX_FORMATS = {"JSONLD": "JSON-LD", "YML": "YAML", "HTM": "HTML"}
_STANDARD_FILE = re.compile(r"^(?P<code>\d+)_(?P<slug>[a-z_]+)\.[A-Za-z0-9]+$")
_SLUGS = {dataset.slug: dataset for dataset in STANDARD_DATASETS if dataset.slug}


def assess_resource(
    path: Path, file_format: str, *, file_name: str, municipality_code: str, tags: list[str]
) -> dict[str, Any]:
    """Grade a stored file: stars, standard-dataset conformance, text encoding, problems."""
    fmt = resource_format(file_format, file_name)
    problems: list[str] = []
    claim = claimed_standard(file_name, tags, municipality_code, problems)
    encoding: str | None = None
    readable = True
    standard: dict[str, Any] | None = None
    table_format = tabular_format(fmt, file_name)
    if table_format:
        check = StandardCheck(claim[0], claim[1], municipality_code) if claim else None
        try:
            encoding = _scan_table(path, table_format, check)
        except InvalidInput as exc:  # the reader's words for a file that is not a table
            problems.append(exc.message)
            readable = False
        if check is not None:
            standard = check.result(problems) if readable else _unchecked(check, problems, None)
    else:
        encoding = _text_encoding(path) if fmt in TEXT_FORMATS else None
        if claim:
            reason = f"{claim[0].id} is published as CSV; a {fmt or 'file'} resource is not checked"
            standard = _unchecked(StandardCheck(*claim, municipality_code), problems, reason)
    return {
        "stars": five_star_level(fmt, readable=readable),
        "standard": standard,
        "encoding": encoding,
        "problems": problems,
    }


def five_star_level(fmt: str, *, readable: bool = True) -> int:
    """Return the 5-star open data level of a resource format (see the module docstring)."""
    if not readable:
        return 1
    if fmt in RDF:
        return 4
    if fmt in OPEN_STRUCTURED:
        return 3
    if fmt in PROPRIETARY_STRUCTURED:
        return 2
    return 1


def resource_format(file_format: str, file_name: str) -> str:
    """Return the upper-case format, from the resource's format or else its file name."""
    fmt = (file_format or "").strip().upper().lstrip(".")
    if not fmt and "." in file_name:
        fmt = file_name.rsplit(".", 1)[-1].upper()
    return _SUFFIX_FORMATS.get(fmt, fmt)


def claimed_standard(
    file_name: str, tags: list[str], municipality_code: str, problems: list[str]
) -> tuple[StandardDataset, str] | None:
    """Return the standard dataset a resource claims (by file name, else by tag or title)."""
    by_name = None
    match = _STANDARD_FILE.match(file_name.strip())
    if match and match.group("slug") in _SLUGS:
        by_name = _SLUGS[match.group("slug")]
        code = match.group("code")
        if not is_valid_code(code):
            problems.append(
                f"the file name's code {code} is not a six-digit 全国地方公共団体コード with a "
                "valid check digit"
            )
        elif municipality_code and code != municipality_code:
            problems.append(
                f"the file name's code {code} is not this municipality's ({municipality_code})"
            )
    by_tag = [found for tag in tags if (found := find_by_label(tag)) is not None]
    if by_name is not None:
        others = sorted({d.id for d in by_tag} - {by_name.id})
        if others:
            problems.append(
                f"the file name claims {by_name.id} but the tags say {', '.join(others)}; "
                f"checked as {by_name.id}"
            )
        return by_name, "file_name"
    if by_tag:
        if len({d.id for d in by_tag}) > 1:
            problems.append(
                "the tags name several standard datasets ("
                + ", ".join(sorted({d.id for d in by_tag}))
                + f"); checked as {by_tag[0].id}"
            )
        return by_tag[0], "tag"
    return None


def _scan_table(path: Path, table_format: str, check: StandardCheck | None) -> str | None:
    """Stream every row once (so a broken file is caught) and feed the standard check.

    Rows are numbered as in a spreadsheet: the header is row 1 (blank lines are not counted).
    """
    with open_table(path, table_format) as table:
        if check is not None:
            check.header([cell_text(name).strip() for name in table.columns])
        for number, row in enumerate(table.rows, start=2):
            if check is not None:
                check.add(number, [cell_text(value) for value in row])
        return table.encoding


def _unchecked(check: StandardCheck, problems: list[str], reason: str | None) -> dict[str, Any]:
    """Return a standard report for a claim whose rows could not be read."""
    report = check.result([])
    report.update(edition=None, missing_columns=[], missing_required=[], conformant=False)
    if reason:
        problems.append(reason)
    return report


def _text_encoding(path: Path) -> str | None:
    try:
        with path.open("rb") as stream:
            return sniff_encoding(stream.read(SNIFF_BYTES))
    except (LoadFailed, OSError):
        return None
