"""Map a source file's fields to PostgreSQL columns: safe names and types."""

from dataclasses import dataclass

import pyarrow as pa

MAX_IDENTIFIER_BYTES = 63
RESERVED_COLUMNS = {"fid", "geom"}


@dataclass(frozen=True)
class ColumnSpec:
    """One attribute column: its name in the source, in PostgreSQL, and its SQL type."""

    source: str
    name: str
    sql_type: str

    def as_json(self) -> dict[str, str]:
        """Return the column as stored in the layer registry."""
        return {"name": self.name, "source": self.source, "type": self.sql_type}


def plan_columns(schema: pa.Schema, geometry_column: str | None) -> list[ColumnSpec]:
    """Choose a PostgreSQL name and type for every non-geometry field."""
    taken: set[str] = set(RESERVED_COLUMNS)
    specs = []
    for index, field in enumerate(schema):
        if field.name == geometry_column:
            continue
        name = _unique(_safe_name(field.name, index), taken)
        taken.add(name)
        specs.append(ColumnSpec(field.name, name, sql_type(field.type)))
    return specs


def sql_type(arrow_type: pa.DataType) -> str:
    """Return the PostgreSQL type that holds values of an Arrow type without loss."""
    if pa.types.is_boolean(arrow_type):
        return "boolean"
    if pa.types.is_int8(arrow_type) or pa.types.is_int16(arrow_type):
        return "smallint"
    if pa.types.is_int32(arrow_type) or pa.types.is_uint8(arrow_type):
        return "integer"
    if pa.types.is_integer(arrow_type):
        return "bigint"
    if pa.types.is_floating(arrow_type):
        return "double precision"
    if pa.types.is_decimal(arrow_type):
        return "numeric"
    if pa.types.is_date(arrow_type):
        return "date"
    if pa.types.is_timestamp(arrow_type):
        return "timestamptz" if arrow_type.tz else "timestamp"
    if pa.types.is_time(arrow_type):
        return "time"
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        return "jsonb"
    return "text"


def quote_identifier(name: str) -> str:
    """Quote an SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def _safe_name(name: str, index: int) -> str:
    """Trim whitespace and cut to PostgreSQL's 63-byte limit on a character boundary."""
    cleaned = "".join(ch for ch in name.strip() if ch.isprintable()) or f"column_{index + 1}"
    if cleaned.lower() in RESERVED_COLUMNS:
        cleaned = f"{cleaned}_source"
    return _truncate(cleaned, MAX_IDENTIFIER_BYTES)


def _unique(name: str, taken: set[str]) -> str:
    """Append a counter until the name is free."""
    candidate, counter = name, 2
    while candidate in taken:
        suffix = f"_{counter}"
        candidate = _truncate(name, MAX_IDENTIFIER_BYTES - len(suffix)) + suffix
        counter += 1
    return candidate


def _truncate(name: str, limit: int) -> str:
    encoded = name.encode("utf-8")[:limit]
    return encoded.decode("utf-8", errors="ignore")
