"""GIS file exports written by GDAL from PostGIS rows: GeoPackage, zipped Shapefile and KML.

Rows come from a server-side cursor and reach GDAL as a stream of Arrow record batches
(`pyogrio.raw.write_arrow`), so memory holds one batch however large the layer is. Each file
is written in a private temporary directory that `write_temporary` removes as soon as the
finished file is open: nothing stays on disk once that file is closed, on every path.
"""

import codecs
import csv
import io
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
from psycopg import sql
from pyogrio.raw import write_arrow

from portal.catalog.convert import cell_text

GPKG_MEDIA_TYPE = "application/geopackage+sqlite3"
SHAPEFILE_MEDIA_TYPE = "application/zip"
KML_MEDIA_TYPE = "application/vnd.google-earth.kml+xml"
BATCH_ROWS = 5_000
CHUNK_BYTES = 1024 * 1024
DBF_NAME_BYTES = 10
DBF_TEXT_BYTES = 254
KML_NAME_COLUMNS = ("名称", "name")
SHAPEFILE_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg")
# Shapefile holds one geometry family per file: a mixed layer becomes one file per family.
_FAMILIES = (
    ("point", 1, "MultiPoint"),
    ("line", 2, "MultiLineString"),
    ("polygon", 3, "MultiPolygon"),
)
_OGR_TYPES = {"Geometry": "Unknown"}
_GEOMETRY = sql.SQL("s.geom")
_ARROW_TYPES: dict[int, pa.DataType] = {
    16: pa.bool_(),
    20: pa.int64(),
    21: pa.int16(),
    23: pa.int32(),
    700: pa.float32(),
    701: pa.float64(),
    1700: pa.float64(),
    25: pa.string(),
    1042: pa.string(),
    1043: pa.string(),
    1082: pa.date32(),
    1114: pa.timestamp("us"),
    1184: pa.timestamp("us", tz="UTC"),
}
_NUMERIC_OID = 1700
_WKB_FIELD = pa.field("geom", pa.binary(), metadata={b"ARROW:extension:name": b"geoarrow.wkb"})
Converter = Callable[[Sequence[Any]], Sequence[Any]]


@dataclass(frozen=True)
class Selection:
    """Rows to write: a SELECT of `fid`, the attribute columns and `geom`, and their layout."""

    statement: sql.Composable
    columns: tuple[str, ...]
    layer_name: str
    geometry_type: str | None
    srid: int


class FileChunks:
    """The chunks of an open file; closing the iterator, or dropping it, closes the file."""

    def __init__(self, file: IO[bytes], chunk_size: int = CHUNK_BYTES) -> None:
        self._file = file
        self._chunk_size = chunk_size

    def __iter__(self) -> "FileChunks":
        return self

    def __next__(self) -> bytes:
        chunk = b"" if self._file.closed else self._file.read(self._chunk_size)
        if not chunk:
            self.close()
            raise StopIteration
        return chunk

    def close(self) -> None:
        """Close the file (a server calls this when the client goes away)."""
        self._file.close()

    def __del__(self) -> None:
        self.close()


def write_temporary(write: Callable[[Path], Path]) -> tuple[IO[bytes], int]:
    """Run `write` in a fresh temporary directory; return its file, open, and its size.

    The directory is removed before this returns (also when `write` fails): the open file
    stays readable until it is closed, and then its space is freed.
    """
    directory = Path(tempfile.mkdtemp(prefix="portal-export-"))
    try:
        file = write(directory).open("rb")
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return file, os.fstat(file.fileno()).st_size


def write_geopackage(connection: Any, selection: Selection, directory: Path) -> Path:
    """Write the rows as one GeoPackage layer (a plain table when there is no geometry)."""
    path = directory / f"{selection.layer_name}.gpkg"
    _write(connection, selection, path, driver="GPKG")
    return path


def write_kml(connection: Any, selection: Selection, directory: Path) -> Path:
    """Write the rows as KML (longitude/latitude), naming placemarks from 名称 or name."""
    path = directory / f"{selection.layer_name}.kml"
    name = kml_name_column(selection.columns)
    options = {"NameField": name} if name else {}
    _write(connection, selection, path, driver="KML", dataset_options=options)
    return path


def write_shapefile_zip(connection: Any, selection: Selection, directory: Path) -> Path:
    """Write the rows as Shapefile parts (UTF-8, with .prj and .cpg) and zip them.

    Field names are cut to the 10 bytes DBF allows; `<layer>_fields.csv` in the archive
    maps every field back to its column. A layer of mixed geometry types becomes one
    Shapefile per family (`<layer>_point`, `_line`, `_polygon`).
    """
    names = shapefile_field_names(["fid", *selection.columns])
    parts = _shapefile_parts(connection, selection)
    written: list[Path] = []
    for stem, geometry, geometry_type, where in parts:
        path = directory / f"{stem}.shp"
        _write(
            connection,
            selection,
            path,
            driver="ESRI Shapefile",
            names=names,
            geometry=geometry,
            geometry_type=geometry_type,
            where=where,
            layer_options={"ENCODING": "UTF-8"},
            dbf_text=True,
        )
        written.extend(path.with_suffix(suffix) for suffix in SHAPEFILE_PARTS)
    mapping = directory / f"{selection.layer_name}_fields.csv"
    mapping.write_bytes(_field_mapping(names, ["fid", *selection.columns]))
    archive = directory / f"{selection.layer_name}.shp.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as bundle:
        for path in [*written, mapping]:
            bundle.write(path, path.name)
    return archive


def kml_name_column(columns: Sequence[str]) -> str | None:
    """Return the column that names placemarks: 名称, else one called name in any case."""
    for column in columns:
        if column == KML_NAME_COLUMNS[0]:
            return column
    return next((column for column in columns if column.lower() == KML_NAME_COLUMNS[1]), None)


def shapefile_field_names(columns: Sequence[str]) -> list[str]:
    """Return DBF field names for `columns`: at most 10 UTF-8 bytes, safe and unique.

    A name that fits is kept; others lose their ending at a character boundary. Characters
    other than letters, digits and `_` become `_`, a leading digit gets an `F` in front,
    and clashes (compared without case) get `_2`, `_3`, ... within the 10 bytes.
    """
    taken: set[str] = set()
    names = []
    for column in columns:
        safe = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in column) or "field"
        if safe[0].isdigit():
            safe = "F" + safe
        name = _cut_name(safe, DBF_NAME_BYTES)
        number = 1
        while name.casefold() in taken:
            number += 1
            suffix = f"_{number}"
            name = _cut_name(safe, DBF_NAME_BYTES - len(suffix)) + suffix
        taken.add(name.casefold())
        names.append(name)
    return names


def _shapefile_parts(
    connection: Any, selection: Selection
) -> list[tuple[str, sql.Composable, str | None, sql.Composable | None]]:
    """Return (file stem, geometry, type, filter) for each Shapefile the layer needs."""
    stem = selection.layer_name
    kind = selection.geometry_type
    if kind not in ("Geometry", "GeometryCollection"):
        return [(stem, _GEOMETRY, kind, None)]
    present = connection.execute(
        sql.SQL("SELECT {} FROM ({}) AS s").format(
            sql.SQL(", ").join(
                sql.SQL("bool_or(NOT ST_IsEmpty(ST_CollectionExtract(s.geom, {})))").format(
                    sql.Literal(number)
                )
                for _, number, _ in _FAMILIES
            ),
            selection.statement,
        )
    ).fetchone()
    parts: list[tuple[str, sql.Composable, str | None, sql.Composable | None]] = []
    for (family, number, multi), found in zip(_FAMILIES, present, strict=True):
        if not found:
            continue
        extract = sql.SQL("ST_Multi(ST_CollectionExtract(s.geom, {}))").format(sql.Literal(number))
        where = sql.SQL("NOT ST_IsEmpty(ST_CollectionExtract(s.geom, {}))").format(
            sql.Literal(number)
        )
        if not parts:  # rows without a geometry go with the first family
            where = sql.SQL("(s.geom IS NULL OR {})").format(where)
        parts.append((f"{stem}_{family}", extract, multi, where))
    return parts or [(stem, _GEOMETRY, "Point", None)]


def _write(
    connection: Any,
    selection: Selection,
    path: Path,
    *,
    driver: str,
    names: Sequence[str] | None = None,
    geometry: sql.Composable = _GEOMETRY,
    geometry_type: str | None = None,
    where: sql.Composable | None = None,
    layer_options: dict[str, str] | None = None,
    dataset_options: dict[str, str] | None = None,
    dbf_text: bool = False,
) -> None:
    """Stream the selection's rows from a server-side cursor into one GDAL layer."""
    spatial = selection.geometry_type is not None
    expressions: list[sql.Composable] = [sql.SQL("s.fid")]
    expressions += [sql.SQL("s.{}").format(sql.Identifier(c)) for c in selection.columns]
    if spatial:
        expressions.append(sql.SQL("ST_AsBinary({}) AS geom").format(geometry))
    statement = sql.SQL("SELECT {} FROM ({}) AS s{} ORDER BY s.fid").format(
        sql.SQL(", ").join(expressions),
        selection.statement,
        sql.SQL(" WHERE {}").format(where) if where is not None else sql.SQL(""),
    )
    kind = geometry_type or selection.geometry_type
    with connection.cursor(name="export_rows", binary=True) as cursor:
        cursor.itersize = BATCH_ROWS
        cursor.execute(statement)
        description = list(cursor.description or [])
        attributes = description[:-1] if spatial else description
        schema, converters = _arrow_layout(attributes, names, dbf_text=dbf_text)
        if spatial:
            schema = schema.append(_WKB_FIELD)
            converters.append(None)
        failure: list[BaseException] = []
        reader = pa.RecordBatchReader.from_batches(
            schema, _batches(cursor, schema, converters, failure)
        )
        try:
            write_arrow(
                reader,
                str(path),
                layer=selection.layer_name,
                driver=driver,
                geometry_name="geom" if spatial else None,
                geometry_type=_OGR_TYPES.get(kind, kind) if spatial and kind else None,
                crs=f"EPSG:{selection.srid}" if spatial else None,
                layer_options=layer_options,
                dataset_options=dataset_options,
            )
        except Exception:
            if failure:  # GDAL only says the stream broke; the reason is the database's
                raise failure[0] from None
            raise


def _arrow_layout(
    description: Sequence[Any], names: Sequence[str] | None, *, dbf_text: bool
) -> tuple[pa.Schema, list[Converter | None]]:
    """Map result columns to Arrow fields, with a converter where values need one."""
    fields, converters = [], []
    for index, column in enumerate(description):
        arrow_type = _ARROW_TYPES.get(column.type_code, pa.string())
        converter: Converter | None = None
        if column.type_code == _NUMERIC_OID:
            converter = _to_float
        elif column.type_code not in _ARROW_TYPES:
            converter = _to_text
        if dbf_text and arrow_type == pa.string():
            converter = _dbf_text if converter is None else _chain(converter, _dbf_text)
        fields.append(pa.field(names[index] if names else column.name, arrow_type))
        converters.append(converter)
    return pa.schema(fields), converters


def _batches(
    cursor: Any,
    schema: pa.Schema,
    converters: Sequence[Converter | None],
    failure: list[BaseException],
) -> Iterator[pa.RecordBatch]:
    """Fetch rows in batches and turn each into an Arrow record batch."""
    try:
        while rows := cursor.fetchmany(BATCH_ROWS):
            columns = list(zip(*rows, strict=True))
            arrays = [
                pa.array(convert(values) if convert else values, type=field.type)
                for values, convert, field in zip(columns, converters, schema, strict=True)
            ]
            yield pa.RecordBatch.from_arrays(arrays, schema=schema)
    except BaseException as exc:
        failure.append(exc)
        raise


def _to_float(values: Sequence[Any]) -> list[float | None]:
    return [None if value is None else float(value) for value in values]


def _to_text(values: Sequence[Any]) -> list[str | None]:
    return [None if value is None else cell_text(value) for value in values]


def _dbf_text(values: Sequence[Any]) -> list[str | None]:
    """Cut text to the 254 bytes a DBF field holds, at a character boundary."""
    return [
        value if value is None or len(value) * 4 <= DBF_TEXT_BYTES else _cut(value, DBF_TEXT_BYTES)
        for value in values
    ]


def _chain(first: Converter, second: Converter) -> Converter:
    return lambda values: second(first(values))


def _cut(text: str, limit: int) -> str:
    """Return the longest start of `text` whose UTF-8 form fits in `limit` bytes."""
    return text.encode()[:limit].decode(errors="ignore")


def _cut_name(text: str, limit: int) -> str:
    """Cut a field name to `limit` bytes, without a dangling `_` where it was cut."""
    cut = _cut(text, limit)
    return cut if cut == text else (cut.rstrip("_") or cut)


def _field_mapping(names: Sequence[str], columns: Sequence[str]) -> bytes:
    """A UTF-8 CSV (with BOM, for Excel) of each Shapefile field and the column it holds."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["shapefile_field", "column"])
    writer.writerows(zip(names, columns, strict=True))
    return codecs.BOM_UTF8 + buffer.getvalue().encode()
