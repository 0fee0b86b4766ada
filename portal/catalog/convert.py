"""Convert tables to CSV (UTF-8 with BOM, or CP932) and XLSX, through temporary files.

A conversion is written completely to an anonymous temporary file before anything is sent,
so a character that CP932 cannot hold becomes a clear 400 instead of a truncated download.
"""

import codecs
import contextlib
import csv
import io
import itertools
import json
import re
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

# The preview's reader is the one streaming reader of CSV/XLSX files, with the zip-bomb guard.
from portal.catalog.preview import open_table
from portal.core.errors import InvalidInput

CHUNK = 1024 * 1024
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_MEDIA_TYPES = {"utf-8": "text/csv; charset=utf-8", "cp932": "text/csv; charset=Shift_JIS"}
TABULAR_FORMATS = frozenset({"CSV", "TSV", "XLSX"})
MAX_XLSX_ROWS = 1_048_576
MAX_XLSX_CELL_CHARS = 32_767
_ENCODING_NAMES = {
    "utf-8": "utf-8", "utf8": "utf-8", "utf-8-sig": "utf-8",
    "cp932": "cp932", "windows-31j": "cp932", "shift_jis": "cp932", "shift-jis": "cp932",
    "sjis": "cp932", "ms932": "cp932",
}  # fmt: skip
# Characters XML 1.0 cannot carry; openpyxl refuses them, so they are dropped from cells.
_XML_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_SHEET_TITLE_ILLEGAL = re.compile(r"[\[\]:*?/\\]")


@dataclass
class Converted:
    """A finished conversion: an open temporary file (rewound), its size and media type."""

    file: IO[bytes]
    size: int
    media_type: str

    def chunks(self) -> Iterator[bytes]:
        """Yield the file in chunks and close it (the file is anonymous, so it is gone)."""
        return iter_file(self.file)


def iter_file(file: IO[bytes]) -> Iterator[bytes]:
    """Yield a file's bytes in chunks, closing it at the end or when the consumer stops."""
    with file:
        while chunk := file.read(CHUNK):
            yield chunk


def csv_encoding(value: str | None) -> str:
    """Return `utf-8` or `cp932` for a requested encoding name, or refuse it."""
    key = (value or "utf-8").strip().lower()
    if key not in _ENCODING_NAMES:
        raise InvalidInput(f"encoding {value!r} is not offered; use utf-8 (default) or cp932")
    return _ENCODING_NAMES[key]


def write_csv(rows: Iterable[Sequence[Any]], out: IO[bytes], encoding: str) -> int:
    """Write rows (the first is the header) as CSV; return the row count.

    UTF-8 gets a BOM so that Excel opens it. For CP932 each row is encoded before it is
    written, and a character that does not fit is reported by row, column and code point.
    """
    if encoding == "utf-8":
        out.write(codecs.BOM_UTF8)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    header: Sequence[Any] = ()
    count = 0
    for count, row in enumerate(rows, start=1):
        if count == 1:
            header = row
        writer.writerow([cell_text(value) for value in row])
        try:
            out.write(buffer.getvalue().encode(encoding))
        except UnicodeEncodeError as exc:
            raise _unencodable(row, header, count, encoding) from exc
        buffer.seek(0)
        buffer.truncate()
    return count


def _unencodable(
    row: Sequence[Any], header: Sequence[Any], number: int, encoding: str
) -> InvalidInput:
    """Describe the first character of a row that `encoding` cannot hold."""
    for index, value in enumerate(row):
        text = cell_text(value)
        for char in text:
            try:
                char.encode(encoding)
            except UnicodeEncodeError:
                column = str(header[index]) if index < len(header) else f"column {index + 1}"
                return InvalidInput(
                    f"row {number}, column {index + 1} ({column}): the character {char!r} "
                    f"(U+{ord(char):04X}) cannot be written in {encoding.upper()}; "
                    "download the UTF-8 CSV (encoding=utf-8) instead"
                )
    return InvalidInput(f"row {number} cannot be written in {encoding.upper()}")


def write_xlsx(rows: Iterable[Sequence[Any]], out: IO[bytes], *, sheet_title: str) -> int:
    """Write rows (the first is the header) to a one-sheet XLSX; return the row count.

    openpyxl's write-only mode keeps only the current row in memory. Text stays text: codes
    such as 全国地方公共団体コード keep their leading zeros.
    """
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(_sheet_title(sheet_title))
    sheet.freeze_panes = "A2"
    count = 0
    try:
        for count, row in enumerate(rows, start=1):
            if count > MAX_XLSX_ROWS:
                raise InvalidInput(
                    f"the table has more than {MAX_XLSX_ROWS:,} rows, the most XLSX can hold; "
                    "download it as CSV instead"
                )
            sheet.append([_xlsx_value(value, count, index) for index, value in enumerate(row)])
    except BaseException:
        _discard(sheet)
        raise
    workbook.save(out)
    return count


def _discard(sheet: Any) -> None:
    """Finish and delete the sheet's temporary XML file after a failed conversion."""
    with contextlib.suppress(Exception):
        sheet.close()
        sheet._writer.cleanup()


def convert_file(
    path: Path, source_format: str, target: str, *, encoding: str, title: str
) -> Converted:
    """Convert a CSV or XLSX file to `target` (csv or xlsx) in a temporary file."""
    with open_table(path, source_format) as table:
        rows = itertools.chain([table.columns], table.rows)
        return write_table(rows, target, encoding=encoding, title=title)


def write_table(
    rows: Iterable[Sequence[Any]], target: str, *, encoding: str, title: str
) -> Converted:
    """Write rows to a temporary CSV or XLSX file and return it rewound."""
    out = tempfile.TemporaryFile(prefix="portal-convert-")
    try:
        if target == "csv":
            write_csv(rows, out, encoding)
            media_type = CSV_MEDIA_TYPES[encoding]
        elif target == "xlsx":
            write_xlsx(rows, out, sheet_title=title)
            media_type = XLSX_MEDIA_TYPE
        else:
            raise InvalidInput(f"format {target!r} is not offered; use csv or xlsx")
        size = out.tell()
        out.seek(0)
    except BaseException:
        out.close()
        raise
    return Converted(out, size, media_type)


def tabular_format(file_format: str, file_name: str = "") -> str | None:
    """Return CSV, TSV or XLSX for a resource format (else its file name's suffix), or None."""
    declared = (file_format or "").strip().upper().lstrip(".")
    if not declared and "." in file_name:
        declared = file_name.rsplit(".", 1)[-1].upper()
    return declared if declared in TABULAR_FORMATS else None


def cell_text(value: Any) -> str:
    """Render a value as CSV text: 12 not 12.0, dates without midnight, JSON for lists."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, datetime):
        if value.tzinfo is None and value.time() == time(0, 0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _xlsx_value(value: Any, row: int, column: int) -> Any:
    """Return a value openpyxl can store; refuse text longer than an Excel cell holds."""
    if isinstance(value, dict | list):
        value = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, datetime) and value.tzinfo is not None:
        value = value.isoformat(sep=" ")  # Excel has no time zones; keep the offset as text
    elif isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, str):
        value = _XML_ILLEGAL.sub("", value)
        if len(value) > MAX_XLSX_CELL_CHARS:
            raise InvalidInput(
                f"row {row}, column {column + 1} holds {len(value):,} characters; an XLSX cell "
                f"holds at most {MAX_XLSX_CELL_CHARS:,}; download it as CSV instead"
            )
    return value


def _sheet_title(title: str) -> str:
    cleaned = _SHEET_TITLE_ILLEGAL.sub("_", title).strip("'") or "data"
    return cleaned[:31]
