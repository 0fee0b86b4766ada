"""Table previews of CSV and XLSX files: decoded server-side, streamed, one page at a time.

`open_table` is the shared streaming reader (downloads may reuse it to convert tables);
`preview_table` turns one page of it into display strings.
"""

import codecs
import csv
import itertools
import re
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

from portal.core.errors import InvalidInput, LoadFailed
from portal.geo.encoding import SNIFF_BYTES, sniff_encoding

TABULAR_FORMATS = frozenset({"CSV", "TSV", "XLSX"})
MAX_PAGE_SIZE = 500
MAX_COLUMNS = 100
MAX_CELL_CHARS = 300
COUNT_LIMIT = 100_000
XLSX_MAX_UNCOMPRESSED = 200 * 1024 * 1024
XLSX_MAX_RATIO = 100
XLSX_MAX_MEMBERS = 10_000
# Small members compress oddly well (empty styles, repeated XML) without being dangerous.
XLSX_RATIO_FLOOR = 1024 * 1024
_METADATA_KEY = re.compile(r"^#[A-Za-z_][A-Za-z0-9_:-]*$")
_HTML_START = (b"<!doctype", b"<html", b"<?xml", b"<head", b"<body", b"<table", b"<meta")
_SUPPORTED_TEXT = {"utf-8", "utf-8-sig", "cp932", "utf-16"}


@dataclass
class TableStream:
    """An open table: its column names and an iterator over its data rows (raw values)."""

    columns: list[str]
    rows: Iterator[list[Any]]
    encoding: str | None = None
    notes: list[str] = field(default_factory=list)
    sheet: str | None = None
    sheets: list[str] = field(default_factory=list)


@dataclass
class TablePreview:
    """One page of a table, as display strings."""

    columns: list[str]
    rows: list[list[str]]
    page: int
    page_size: int
    has_next: bool
    total_rows: int | None
    encoding: str | None
    notes: list[str]
    first_row_number: int = 1
    columns_total: int = 0
    sheet: str | None = None
    sheets: list[str] = field(default_factory=list)

    @property
    def page_count(self) -> int | None:
        """Return the number of pages when the row count is known."""
        if self.total_rows is None:
            return None
        return max(1, -(-self.total_rows // self.page_size))


def can_preview(format_name: str) -> bool:
    """Tell whether a resource format gets a table preview."""
    return format_name.upper() in TABULAR_FORMATS


def preview_table(
    path: Path, format_name: str, *, page: int = 1, page_size: int = 50
) -> TablePreview:
    """Return page `page` (1-based) of a CSV or XLSX file, never reading it all into memory."""
    if page < 1:
        raise InvalidInput(f"page must be 1 or more, got {page}")
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise InvalidInput(f"page_size must be between 1 and {MAX_PAGE_SIZE}, got {page_size}")
    with open_table(path, format_name) as table:
        skip = (page - 1) * page_size
        wanted = list(itertools.islice(table.rows, skip, skip + page_size + 1))
        has_next = len(wanted) > page_size
        total: int | None = None
        if not has_next:
            # The end is reached: the count is exact without another pass.
            total = skip + len(wanted) if wanted or page == 1 else None
        else:
            rest = sum(1 for _ in itertools.islice(table.rows, COUNT_LIMIT))
            if rest < COUNT_LIMIT:
                total = skip + len(wanted) + rest
        shown = [_trim_trailing_blank(list(row)) for row in wanted[:page_size]]
        widest = max([len(table.columns), *(len(row) for row in shown)])
        width = min(MAX_COLUMNS, widest)
        columns = (table.columns + [""] * width)[:width]
        return TablePreview(
            columns=columns,
            rows=[_display_row(row, width) for row in shown],
            page=page,
            page_size=page_size,
            has_next=has_next,
            total_rows=total,
            encoding=table.encoding,
            notes=table.notes,
            first_row_number=skip + 1,
            columns_total=widest,
            sheet=table.sheet,
            sheets=table.sheets,
        )


def table_page(
    columns: list[str], rows: list[list[Any]], *, page: int, page_size: int, total: int
) -> TablePreview:
    """Format one page of rows read elsewhere (e.g. a layer's table) as a preview."""
    shown = columns[:MAX_COLUMNS]
    return TablePreview(
        columns=shown,
        rows=[_display_row(row, len(shown)) for row in rows],
        page=page,
        page_size=page_size,
        has_next=(page - 1) * page_size + len(rows) < total,
        total_rows=total,
        encoding=None,
        notes=[],
        first_row_number=(page - 1) * page_size + 1,
        columns_total=len(columns),
    )


@contextmanager
def open_table(path: Path, format_name: str) -> Iterator[TableStream]:
    """Open a CSV/TSV or XLSX file as a stream of rows; refuse files that are not tables."""
    kind = format_name.upper()
    if kind == "XLSX":
        with _open_xlsx(path) as table:
            yield table
    elif kind in ("CSV", "TSV"):
        with _open_csv(path) as table:
            yield table
    else:
        raise InvalidInput(f"a {format_name or 'file'} resource has no table preview (CSV or XLSX)")


# --- CSV ---------------------------------------------------------------------------------


@contextmanager
def _open_csv(path: Path) -> Iterator[TableStream]:
    with path.open("rb") as raw:
        sample = raw.read(SNIFF_BYTES)
    encoding = _text_encoding(sample)
    with path.open("r", encoding=encoding, newline="", errors="strict") as text:
        delimiter = _delimiter(sample.decode(encoding, errors="ignore"))
        reader = _checked(csv.reader(text, delimiter=delimiter), encoding)
        notes: list[str] = []
        header: list[str] | None = None
        in_metadata = True
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            key = row[0].strip()
            if in_metadata and _METADATA_KEY.match(key):
                # A "CSV with a metadata header" (IMI style): `#property` names the columns.
                if key == "#property":
                    header = ["#", *(cell.strip() for cell in row[1:])]
                else:
                    notes.append(_note(key, row[1:]))
                continue
            in_metadata = False
            if header is None:
                header = [cell.strip() for cell in row]
                continue
            yield TableStream(
                columns=header,
                rows=_data_rows(itertools.chain([row], reader)),
                encoding=encoding,
                notes=notes,
            )
            return
        yield TableStream(columns=header or [], rows=iter(()), encoding=encoding, notes=notes)


def _text_encoding(sample: bytes) -> str:
    """Return the encoding of a CSV sample, or refuse what is not delimited text."""
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        # Excel's "Unicode text" export: UTF-16 with a BOM, usually tab-separated.
        return "utf-16"
    if sample.startswith(b"PK\x03\x04"):
        raise InvalidInput(
            "this file is a zip archive (perhaps an Excel workbook), not CSV text / "
            "CSVではなくZIP形式（Excelブック等）のファイルです"
        )
    if b"\x00" in sample:
        raise InvalidInput(
            "this file is binary data, not CSV text / CSVではなくバイナリ形式のファイルです"
        )
    head = sample.removeprefix(codecs.BOM_UTF8).lstrip().lower()
    if head.startswith(_HTML_START):
        raise InvalidInput(
            "this file is an HTML or XML page saved under a CSV name, not CSV text / "
            "CSVではなくHTML（ウェブページ）またはXMLのファイルです"
        )
    try:
        encoding = sniff_encoding(sample)
    except LoadFailed as exc:
        raise InvalidInput(f"{exc.message} / 文字コードを判別できません") from exc
    text = sample.decode(encoding, errors="ignore")
    controls = sum(1 for ch in text if ord(ch) < 32 and ch not in "\t\r\n\x0c")
    if encoding not in _SUPPORTED_TEXT or controls > max(3, len(text) // 200):
        raise InvalidInput(
            "this file does not look like CSV text (expected UTF-8 or CP932) / "
            "CSV（UTF-8またはShift_JIS）のテキストとして読めません"
        )
    return encoding


def _delimiter(sample: str) -> str:
    """Pick comma or tab from the first lines that are not metadata."""
    lines = [line for line in sample.splitlines()[:20] if line and not line.startswith("#")]
    first = lines[0] if lines else ""
    return "\t" if first.count("\t") > first.count(",") else ","


def _checked(reader: Iterator[list[str]], encoding: str) -> Iterator[list[str]]:
    """Turn decoding and CSV syntax errors met mid-file into a clear `InvalidInput`."""
    line = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except UnicodeDecodeError as exc:
            raise InvalidInput(
                f"after line {line}, the file stops being valid {encoding}; "
                "save it in one encoding (UTF-8 or CP932) / 途中から文字コードが変わっています"
            ) from exc
        except csv.Error as exc:
            raise InvalidInput(f"line {line + 1} is not valid CSV: {exc}") from exc
        line += 1
        yield row


def _data_rows(rows: Iterator[list[str]]) -> Iterator[list[Any]]:
    for row in rows:
        if any(cell.strip() for cell in row):
            yield row


def _note(key: str, values: list[str]) -> str:
    """Summarise a metadata row; a row of one repeated value (types, contexts) collapses."""
    shown = [value.strip() for value in values if value.strip()]
    name = key.lstrip("#")
    if not shown:
        return name
    if len(shown) > 2 and len(set(shown)) == 1:
        return f"{name}: {shown[0]} ×{len(shown)}"
    text = f"{name}: {', '.join(shown)}"
    return text if len(text) <= MAX_CELL_CHARS else text[:MAX_CELL_CHARS] + "…"


# --- XLSX --------------------------------------------------------------------------------


@contextmanager
def _open_xlsx(path: Path) -> Iterator[TableStream]:
    check_xlsx_archive(path)
    from openpyxl import load_workbook  # imported late: only previews and exports need it

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except (KeyError, ValueError, OSError, zipfile.BadZipFile) as exc:
        raise InvalidInput(
            f"the workbook could not be read: {exc} / Excelブックを読めません"
        ) from exc
    try:
        names = list(workbook.sheetnames)
        if not names:
            raise InvalidInput("the workbook has no sheets / シートがありません")
        sheet = workbook[names[0]]
        rows = (list(values) for values in sheet.iter_rows(values_only=True))
        meaningful = (row for row in rows if any(_present(v) for v in row))
        header_row = next(meaningful, None)
        columns = [_cell_text(v) for v in header_row] if header_row else []
        yield TableStream(
            columns=_trim_trailing_blank(columns),
            rows=meaningful,
            encoding=None,
            sheet=names[0],
            sheets=names,
        )
    finally:
        workbook.close()


def check_xlsx_archive(path: Path) -> None:
    """Refuse a workbook whose zip is not an XLSX, or would expand too far (a zip bomb)."""
    with path.open("rb") as raw:
        magic = raw.read(8)
    if magic.startswith(b"\xd0\xcf\x11\xe0"):
        raise InvalidInput(
            "this is an old Excel 97-2003 (.xls) file; only .xlsx has a preview / "
            "旧形式（.xls）のためプレビューできません"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except zipfile.BadZipFile as exc:
        raise InvalidInput(
            "this file is not an XLSX workbook (it is not a zip archive) / "
            "XLSX形式のExcelブックではありません"
        ) from exc
    if len(members) > XLSX_MAX_MEMBERS:
        raise InvalidInput(f"the workbook holds {len(members):,} parts; refusing to open it")
    names = {member.filename for member in members}
    if "xl/workbook.xml" not in names:
        raise InvalidInput(
            "this zip archive is not an XLSX workbook (no xl/workbook.xml) / "
            "XLSX形式のExcelブックではありません"
        )
    unpacked = sum(member.file_size for member in members)
    packed = sum(member.compress_size for member in members)
    if unpacked > XLSX_MAX_UNCOMPRESSED:
        raise InvalidInput(
            f"the workbook would expand to {unpacked / 1024**2:,.0f} MB when opened, over the "
            f"{XLSX_MAX_UNCOMPRESSED // 1024**2} MB limit; it may be a zip bomb / "
            "展開後のサイズが上限を超えるため開きません（zip爆弾の可能性）"
        )
    ratio = unpacked / max(packed, 1)
    if unpacked > XLSX_RATIO_FLOOR and ratio > XLSX_MAX_RATIO:
        raise InvalidInput(
            f"the workbook is compressed {ratio:,.0f}:1, over the {XLSX_MAX_RATIO}:1 limit; "
            "it may be a zip bomb / 圧縮率が異常に高いため開きません（zip爆弾の可能性）"
        )


# --- display -----------------------------------------------------------------------------


def _display_row(row: list[Any], width: int) -> list[str]:
    cells = [_cell_text(value) for value in row[:width]]
    return cells + [""] * (width - len(cells))


def _cell_text(value: Any) -> str:
    """Show a cell as people expect: 12 not 12.0, dates without midnight, no huge texts."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        text = str(int(value))
    elif isinstance(value, datetime):
        text = value.date().isoformat() if value.time() == time() else value.isoformat(sep=" ")
    elif isinstance(value, date | time | Decimal | int | float):
        text = str(value)
    else:
        text = str(value).strip()
    return text if len(text) <= MAX_CELL_CHARS else text[:MAX_CELL_CHARS] + "…"


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())


def _trim_trailing_blank(cells: list[Any]) -> list[Any]:
    while cells and not _present(cells[-1]):
        cells.pop()
    return cells


__all__ = [
    "TablePreview",
    "TableStream",
    "can_preview",
    "check_xlsx_archive",
    "open_table",
    "preview_table",
    "table_page",
]
