"""Check a table's rows against a 自治体標準オープンデータセット definition, one row at a time."""

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from portal.catalog.standard_datasets import (
    ALIASES,
    CODE_COLUMNS,
    PRIMARY_CODE,
    Edition,
    StandardDataset,
    column_key,
)
from portal.core.municipality import is_valid_code

MAX_LISTED = 20
# The edition must account for this share of the header (and at least 3 columns) to count.
MIN_MATCH_SHARE = 0.25
LAT_RANGE = (20.0, 46.0)
LON_RANGE = (122.0, 154.0)
FLAG_VALUES = {"", "1"}
_DECIMAL_DEGREES = re.compile(r"^[+-]?\d{1,3}(?:\.\d+)?$")
_ALIAS_KEYS = {column_key(k): tuple(column_key(v) for v in vs) for k, vs in ALIASES.items()}


@dataclass
class HeaderMatch:
    """How a header lines up with one edition of a standard dataset."""

    edition: str | None
    spec: Edition | None
    index: dict[str, int] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    score: float = 0.0


def match_header(dataset: StandardDataset, header: list[str]) -> HeaderMatch:
    """Pick the edition the header fits best (exact names count double aliases)."""
    best = HeaderMatch(None, None)
    for edition, spec in dataset.editions.items():
        candidate = _match(edition, spec, header)
        if candidate.score > best.score:
            best = candidate
    if best.spec is not None and len(best.index) >= max(
        3, int(len(best.spec.columns) * MIN_MATCH_SHARE)
    ):
        return best
    # No edition fits (or none is defined): still check codes and coordinates by name.
    wanted = {column_key(c): c for c in (*CODE_COLUMNS, "緯度", "経度")}
    index: dict[str, int] = {}
    for position, name in enumerate(header):
        column = wanted.get(column_key(name))
        if column is not None:
            index.setdefault(column, position)
    return HeaderMatch(None, None, index=index)


def _match(edition: str, spec: Edition, header: list[str]) -> HeaderMatch:
    by_key = {column_key(column): column for column in spec.columns}
    keys = [column_key(name) for name in header]
    found = HeaderMatch(edition, spec)
    leftover = []
    for position, key in enumerate(keys):
        column = by_key.get(key)
        if not key:
            continue
        if column is not None and column not in found.index:
            found.index[column] = position
        elif column is not None:
            found.duplicates.append(header[position])
        else:
            leftover.append(position)
    for position in leftover:
        for alias in _ALIAS_KEYS.get(keys[position], ()):
            column = by_key.get(alias)
            if column is not None and column not in found.index:
                found.index[column] = position
                found.aliases[header[position].strip()] = column
                break
        else:
            found.unknown.append(header[position].strip())
    found.score = len(found.index) - 0.5 * len(found.aliases)
    return found


@dataclass
class StandardCheck:
    """Accumulates what is wrong with the rows of a claimed standard dataset."""

    dataset: StandardDataset
    claimed_by: str
    municipality_code: str = ""
    match: HeaderMatch | None = None
    header_width: int = 0
    rows: int = 0
    bad_codes: list[dict[str, Any]] = field(default_factory=list)
    bad_code_count: int = 0
    foreign_codes: Counter[str] = field(default_factory=Counter)
    bad_coordinates: int = 0
    swapped: int = 0
    bad_coordinate_rows: list[int] = field(default_factory=list)
    empty_coordinates: int = 0
    bad_values: dict[str, Counter[str]] = field(default_factory=dict)
    empty_required: Counter[str] = field(default_factory=Counter)
    ragged_rows: int = 0

    def header(self, names: list[str]) -> None:
        """Take the header row."""
        self.header_width = len(names)
        self.match = match_header(self.dataset, names)

    def add(self, number: int, row: list[str]) -> None:
        """Check one data row (`number` counts records from 1, the header included)."""
        match = self.match
        self.rows += 1
        if len(row) != self.header_width:
            self.ragged_rows += 1
        if match is None:
            return

        def cell(column: str) -> str | None:
            position = match.index.get(column)
            if position is None:
                return None
            return row[position].strip() if position < len(row) else ""

        self._codes(number, cell, PRIMARY_CODE.get(match.edition or "", CODE_COLUMNS[0]))
        self._coordinates(number, cell("緯度"), cell("経度"))
        if match.spec is None:
            return
        for column in match.spec.flag_columns:
            value = cell(column)
            if value is not None and value not in FLAG_VALUES:
                self.bad_values.setdefault(column, Counter())[value] += 1
        for column in match.spec.required:
            if cell(column) == "":
                self.empty_required[column] += 1

    def _codes(self, number: int, cell: Any, primary: str) -> None:
        for column in CODE_COLUMNS:
            value = cell(column)
            if value is None or (value == "" and column != primary):
                continue
            if not is_valid_code(value):
                self.bad_code_count += 1
                if len(self.bad_codes) < MAX_LISTED:
                    self.bad_codes.append({"row": number, "column": column, "value": value})
            elif column == primary and self.municipality_code and value != self.municipality_code:
                self.foreign_codes[value] += 1

    def _coordinates(self, number: int, lat_text: str | None, lon_text: str | None) -> None:
        if lat_text is None or lon_text is None:
            return
        if lat_text == "" and lon_text == "":
            self.empty_coordinates += 1
            return
        verdict = coordinate_problem(lat_text, lon_text)
        if verdict is None:
            return
        self.bad_coordinates += 1
        self.swapped += verdict == "swapped"
        if len(self.bad_coordinate_rows) < MAX_LISTED:
            self.bad_coordinate_rows.append(number)

    def result(self, problems: list[str]) -> dict[str, Any]:
        """Return the `standard` part of a quality report and add its problems to `problems`."""
        match = self.match or HeaderMatch(None, None)
        spec = match.spec
        missing = [c for c in spec.columns if c not in match.index] if spec else []
        missing_required = [c for c in spec.required if c not in match.index] if spec else []
        unknown = match.unknown if spec and spec.complete else []
        bad_values = {
            column: {"count": sum(values.values()), "values": [v for v, _ in values.most_common(5)]}
            for column, values in self.bad_values.items()
        }
        report = {
            "id": self.dataset.id,
            "title": self.dataset.title,
            "slug": self.dataset.slug,
            "claimed_by": self.claimed_by,
            "edition": match.edition,
            "columns_complete": bool(spec and spec.complete),
            "missing_required": missing_required,
            "missing_columns": missing,
            "unknown_columns": unknown,
            "aliases": match.aliases,
            "bad_codes": self.bad_codes,
            "bad_code_count": self.bad_code_count,
            "bad_coordinates": self.bad_coordinates,
            "swapped_coordinates": self.swapped,
            "bad_coordinate_rows": self.bad_coordinate_rows,
            "empty_coordinates": self.empty_coordinates,
            "bad_values": bad_values,
            "empty_required": dict(self.empty_required),
            "rows": self.rows,
        }
        found = self._problems(report, match)
        problems.extend(found)
        report["conformant"] = match.edition is not None and not found
        return report

    def _problems(self, report: dict[str, Any], match: HeaderMatch) -> list[str]:
        name = f"{self.dataset.id} {self.dataset.title}"
        found = []
        if not self.dataset.editions:
            found.append(f"the portal has no column definitions for {name}; columns not checked")
        elif match.edition is None:
            found.append(f"the header matches neither edition of {name}")
        if report["missing_required"]:
            found.append("required (◎) columns missing: " + ", ".join(report["missing_required"]))
        if report["missing_columns"]:
            found.append("columns missing: " + ", ".join(report["missing_columns"]))
        if report["unknown_columns"]:
            found.append("columns not in the standard: " + ", ".join(report["unknown_columns"]))
        if match.duplicates:
            found.append("columns given twice: " + ", ".join(match.duplicates))
        for column, count in report["empty_required"].items():
            found.append(f"{count} rows leave the required (◎) column {column} empty")
        if self.bad_code_count:
            first = self.bad_codes[0]
            hint = (
                "; spreadsheets drop leading zeros, so keep the column as text"
                if any(len(bad["value"]) == 5 for bad in self.bad_codes)
                else ""
            )
            found.append(
                f"{self.bad_code_count} 全国地方公共団体コード values are not six digits with a "
                f"valid check digit (row {first['row']}: {first['value']!r}){hint}"
            )
        if self.foreign_codes:
            codes = ", ".join(sorted(self.foreign_codes))
            found.append(
                f"{sum(self.foreign_codes.values())} rows carry another municipality's code "
                f"({codes}), not {self.municipality_code}"
            )
        if self.bad_coordinates:
            swapped = (
                f", {self.swapped} with latitude and longitude swapped" if self.swapped else ""
            )
            found.append(
                f"{self.bad_coordinates} rows have coordinates that are not decimal degrees "
                f"inside Japan{swapped} (first rows: {self.bad_coordinate_rows[:5]})"
            )
        for column, detail in report["bad_values"].items():
            values = ", ".join(repr(v) for v in detail["values"])
            found.append(
                f"{column}: {detail['count']} rows hold {values} where the standard expects 1 "
                "or an empty cell"
            )
        if self.ragged_rows:
            found.append(
                f"{self.ragged_rows} rows have a different number of fields than the header"
            )
        return found


def coordinate_problem(lat_text: str, lon_text: str) -> str | None:
    """Return None for a good 緯度/経度 pair, else `format`, `outside` or `swapped`."""
    if not (_DECIMAL_DEGREES.match(lat_text) and _DECIMAL_DEGREES.match(lon_text)):
        return "format"
    lat, lon = float(lat_text), float(lon_text)
    if _within(lat, LAT_RANGE) and _within(lon, LON_RANGE):
        return None
    if _within(lon, LAT_RANGE) and _within(lat, LON_RANGE):
        return "swapped"
    return "outside"


def _within(value: float, bounds: tuple[float, float]) -> bool:
    return bounds[0] <= value <= bounds[1]
