"""Table conversion: CSV (UTF-8 with BOM or CP932) and XLSX, with clear errors for bad input."""

import codecs
import csv
import io
import os
import zipfile
from datetime import date, datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook

from portal.catalog.convert import (
    cell_text,
    convert_file,
    csv_encoding,
    tabular_format,
    write_csv,
    write_table,
    write_xlsx,
)
from portal.core.errors import InvalidInput

DEMO_EVACUATION = "bosai/442020_evacuation_space.csv"
DEMO_POPULATION = "shimin/population_by_chocho_age.xlsx"


def csv_rows(data: bytes, encoding: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode(encoding), newline="")))


def zip_bomb(path: Path, *, megabytes: int = 50) -> Path:
    """An 'XLSX' whose sheet is tens of megabytes of one byte, compressed a thousandfold."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
        archive.writestr("xl/worksheets/sheet1.xml", b"0" * (megabytes * 1024 * 1024))
    return path


def test_utf8_csv_starts_with_a_bom_and_reads_back() -> None:
    out = io.BytesIO()
    assert write_csv([["名称", "緯度"], ["公民館", 33.28], ["学校", None]], out, "utf-8") == 3
    data = out.getvalue()
    assert data.startswith(codecs.BOM_UTF8)
    assert csv_rows(data, "utf-8-sig") == [["名称", "緯度"], ["公民館", "33.28"], ["学校", ""]]


def test_cp932_csv_keeps_nec_special_characters() -> None:
    out = io.BytesIO()
    write_csv([["№", "備考"], ["1", "①屋内避難可 Ⅱ"]], out, "cp932")
    assert not out.getvalue().startswith(codecs.BOM_UTF8)
    assert csv_rows(out.getvalue(), "cp932") == [["№", "備考"], ["1", "①屋内避難可 Ⅱ"]]


@pytest.mark.parametrize("char", ["𠮷", "😀", "\u00a0"])
def test_a_character_outside_cp932_names_row_column_and_code_point(char: str) -> None:
    rows = [["ID", "名称"], ["1", "吉田"], ["2", f"{char}野家"]]
    with pytest.raises(InvalidInput) as caught:
        write_csv(rows, io.BytesIO(), "cp932")
    message = caught.value.message
    assert "row 3" in message and "column 2 (名称)" in message
    assert repr(char) in message and f"U+{ord(char):04X}" in message
    assert "utf-8" in message


def test_encoding_names_are_folded_and_unknown_ones_refused() -> None:
    assert csv_encoding(None) == "utf-8"
    assert csv_encoding("UTF-8") == "utf-8"
    assert csv_encoding("Shift_JIS") == "cp932"
    assert csv_encoding("windows-31j") == "cp932"
    with pytest.raises(InvalidInput, match="utf-8 .* or cp932"):
        csv_encoding("euc-jp")


def test_xlsx_keeps_codes_as_text_and_numbers_as_numbers(tmp_path: Path) -> None:
    out = io.BytesIO()
    rows = [["コード", "人口", "日付", "属性"], ["012025", 1200, date(2024, 3, 1), {"a": [1]}]]
    assert write_xlsx(rows, out, sheet_title="人口/世帯[2024]") == 2
    sheet = load_workbook(io.BytesIO(out.getvalue()), read_only=True).worksheets[0]
    values = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert values[0] == ["コード", "人口", "日付", "属性"]
    assert values[1][:2] == ["012025", 1200]
    assert values[1][2].date() == date(2024, 3, 1)
    assert values[1][3] == '{"a": [1]}'
    assert sheet.title == "人口_世帯_2024_"


def test_xlsx_refuses_a_cell_longer_than_excel_allows() -> None:
    with pytest.raises(InvalidInput, match="row 2, column 1 holds 40,000 characters"):
        write_xlsx([["wkt"], ["x" * 40_000]], io.BytesIO(), sheet_title="t")


def test_the_cp932_demo_csv_converts_to_xlsx_with_the_same_rows(demo_root: Path) -> None:
    source = demo_root / DEMO_EVACUATION
    expected = csv_rows(source.read_bytes(), "cp932")
    converted = convert_file(source, "CSV", "xlsx", encoding="utf-8", title="指定緊急避難場所一覧")
    data = b"".join(converted.chunks())
    assert len(data) == converted.size
    sheet = load_workbook(io.BytesIO(data), read_only=True).worksheets[0]
    got = [["" if v is None else v for v in row] for row in sheet.iter_rows(values_only=True)]
    assert got == expected
    assert got[1][0] == "442020" and "①" in got[1][-1]


def test_the_cp932_demo_csv_converts_to_utf8_and_back(demo_root: Path) -> None:
    source = demo_root / DEMO_EVACUATION
    expected = csv_rows(source.read_bytes(), "cp932")
    utf8 = b"".join(convert_file(source, "CSV", "csv", encoding="utf-8", title="t").chunks())
    assert utf8.startswith(codecs.BOM_UTF8) and csv_rows(utf8, "utf-8-sig") == expected
    cp932 = b"".join(convert_file(source, "CSV", "csv", encoding="cp932", title="t").chunks())
    assert cp932 == source.read_bytes()  # the demo file is CP932 with CRLF, as written here


def test_the_population_workbook_converts_to_csv(demo_root: Path) -> None:
    source = demo_root / DEMO_POPULATION
    converted = convert_file(source, "XLSX", "csv", encoding="utf-8", title="人口")
    rows = csv_rows(b"".join(converted.chunks()), "utf-8-sig")
    workbook = load_workbook(source, read_only=True)
    sheet = workbook.worksheets[0]
    expected = [[cell_text(v) for v in row] for row in sheet.iter_rows(values_only=True)]
    workbook.close()
    assert rows == expected
    assert rows[0][0] == "全国地方公共団体コード" and rows[1][0] == "442020" and len(rows) == 51


def test_a_zip_bomb_is_refused_before_openpyxl_opens_it(tmp_path: Path) -> None:
    bomb = zip_bomb(tmp_path / "bomb.xlsx")
    assert bomb.stat().st_size < 200_000
    with pytest.raises(InvalidInput, match="zip bomb"):
        convert_file(bomb, "XLSX", "csv", encoding="utf-8", title="t")


def test_an_xlsx_that_is_not_a_zip_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "fake.xlsx"
    fake.write_text("名称,緯度\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match="not an XLSX"):
        convert_file(fake, "XLSX", "csv", encoding="utf-8", title="t")


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (os.urandom(4096) + b"\x00" * 16, "binary"),
        (b"PK\x03\x04" + os.urandom(200), "zip"),
        (b"<!DOCTYPE html><html><body>Not found</body></html>", "HTML"),
    ],
)
def test_a_csv_that_is_not_csv_is_refused_clearly(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    path = tmp_path / "data.csv"
    path.write_bytes(content)
    with pytest.raises(InvalidInput, match=reason):
        convert_file(path, "CSV", "xlsx", encoding="utf-8", title="t")


def test_an_unknown_target_is_refused() -> None:
    with pytest.raises(InvalidInput, match="csv or xlsx"):
        write_table([["a"]], "pdf", encoding="utf-8", title="t")


def test_cell_text_renders_spreadsheet_values_as_people_expect() -> None:
    assert cell_text(None) == ""
    assert cell_text(12.0) == "12"
    assert cell_text(12.5) == "12.5"
    assert cell_text(datetime(2024, 3, 1)) == "2024-03-01"
    assert cell_text(datetime(2024, 3, 1, 9, 30)) == "2024-03-01 09:30:00"
    assert cell_text(True) == "true"
    assert cell_text(["a", 1]) == '["a", 1]'


def test_tabular_formats_come_from_the_format_or_the_file_name() -> None:
    assert tabular_format("csv") == "CSV"
    assert tabular_format("", "人口.xlsx") == "XLSX"
    assert tabular_format("PDF", "a.csv") is None
    assert tabular_format("", "noext") is None


def test_a_large_csv_converts_without_holding_it_in_memory(tmp_path: Path) -> None:
    """Two hundred thousand rows stream through; the result is a file, not bytes in memory."""
    source = tmp_path / "big.csv"
    with source.open("w", encoding="cp932", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["ID", "名称"])
        writer.writerows([i, f"施設{i}"] for i in range(200_000))
    converted = convert_file(source, "CSV", "csv", encoding="utf-8", title="t")
    assert not isinstance(converted.file, io.BytesIO)
    assert converted.size > source.stat().st_size  # UTF-8 kanji take 3 bytes, not 2
    lines = sum(chunk.count(b"\n") for chunk in converted.chunks())
    assert lines == 200_001
