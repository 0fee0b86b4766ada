"""Table previews: encodings, metadata rows, paging, streaming, and files that are not tables."""

import codecs
import tracemalloc
import zipfile
from pathlib import Path

import pytest
from openpyxl import Workbook

from portal.catalog import preview
from portal.catalog.preview import check_xlsx_archive, open_table, preview_table
from portal.core.errors import InvalidInput

REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "real"
TAKAMATSU = REAL / "takamatsu_population_by_chocho_age_202303_utf8bom.csv"
HEADER = "名称,住所,緯度,経度\r\n"


def write(path: Path, text: str, encoding: str) -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def evacuation_text(rows: int) -> str:
    body = "".join(
        f"避難場所{i}（公民館）,別府市①丁目{i},33.28,131.49\r\n" for i in range(1, rows + 1)
    )
    return HEADER + body


@pytest.mark.parametrize(
    ("encoding", "expected"),
    [("cp932", "cp932"), ("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig")],
)
def test_csv_is_decoded_in_its_own_encoding(tmp_path: Path, encoding: str, expected: str) -> None:
    path = write(tmp_path / "a.csv", evacuation_text(3), encoding)
    table = preview_table(path, "CSV")
    assert table.encoding == expected
    assert table.columns == ["名称", "住所", "緯度", "経度"]
    assert table.rows[0] == ["避難場所1（公民館）", "別府市①丁目1", "33.28", "131.49"]
    assert table.total_rows == 3 and not table.has_next


def test_csv_pages_with_exact_counts(tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", evacuation_text(120), "cp932")
    first = preview_table(path, "CSV", page=1, page_size=50)
    assert first.has_next and first.total_rows == 120 and first.page_count == 3
    assert first.rows[0][0] == "避難場所1（公民館）" and len(first.rows) == 50
    last = preview_table(path, "CSV", page=3, page_size=50)
    assert not last.has_next and last.first_row_number == 101
    assert [row[0] for row in last.rows][-1] == "避難場所120（公民館）" and len(last.rows) == 20
    beyond = preview_table(path, "CSV", page=9, page_size=50)
    assert beyond.rows == [] and not beyond.has_next


@pytest.mark.skipif(not TAKAMATSU.is_file(), reason="shared/data/real is not beside the repository")
def test_the_real_takamatsu_file_uses_its_property_row_and_keeps_metadata_as_notes() -> None:
    table = preview_table(TAKAMATSU, "CSV", page=1, page_size=50)
    assert table.encoding == "utf-8-sig"
    assert table.columns[:7] == [
        "#",
        "prefCode",
        "regionCode",
        "prefName",
        "cityName",
        "surveyDate",
        "regionName",
    ]
    assert table.columns[-1] == "location" and len(table.columns) == 49
    assert table.rows[0][:7] == ["1", "37201", "", "香川県", "高松市", "3/1/2023", "塩屋町"]
    assert table.rows[0][-1] == "34.342286,134.055021"
    assert table.total_rows == 235
    assert "attribution_name: 高松市" in table.notes
    assert "object_type_xsd: string ×48" in table.notes
    assert not any(row[0].startswith("#") for row in table.rows)
    last = preview_table(TAKAMATSU, "CSV", page=5, page_size=50)
    assert len(last.rows) == 35 and not last.has_next


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"<!DOCTYPE html><html><body>Not found</body></html>", "HTML"),
        (b"\xef\xbb\xbf  <html lang=ja><head>", "HTML"),
        (bytes(range(256)) * 64, "binary"),
        (b"PK\x03\x04" + b"\x00" * 100, "zip"),
    ],
)
def test_a_csv_that_is_not_csv_is_refused_clearly(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "data.csv"
    path.write_bytes(content)
    with pytest.raises(InvalidInput, match=message):
        preview_table(path, "CSV")


def test_an_encoding_change_mid_file_is_a_clear_error(tmp_path: Path) -> None:
    head = evacuation_text(8000).encode("utf-8")  # longer than the sniffed sample
    path = tmp_path / "mixed.csv"
    path.write_bytes(head + "末尾の行,シフトJIS,1,2\r\n".encode("cp932"))
    with pytest.raises(InvalidInput, match="stops being valid utf-8"):
        preview_table(path, "CSV", page=200)


def test_utf16_tab_separated_text_from_excel_is_read(tmp_path: Path) -> None:
    path = tmp_path / "unicode.csv"
    path.write_bytes(codecs.BOM_UTF16_LE + "名称\t人口\r\n別府\t1\r\n".encode("utf-16-le"))
    table = preview_table(path, "CSV")
    assert table.columns == ["名称", "人口"] and table.rows == [["別府", "1"]]


def test_wide_rows_and_long_cells_are_cut_for_display(tmp_path: Path) -> None:
    header = ",".join(f"c{i}" for i in range(150))
    row = ",".join(["x" * 1000] + ["1"] * 149)
    path = write(tmp_path / "wide.csv", f"{header}\n{row}\n", "utf-8")
    table = preview_table(path, "CSV")
    assert len(table.columns) == preview.MAX_COLUMNS and table.columns_total == 150
    assert len(table.rows[0]) == preview.MAX_COLUMNS
    assert table.rows[0][0] == "x" * preview.MAX_CELL_CHARS + "…"


def test_a_big_csv_streams_in_little_memory(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    with path.open("w", encoding="cp932", newline="") as out:
        out.write(HEADER)
        for i in range(300_000):
            out.write(f"避難場所{i},別府市{i},33.28,131.49\r\n")
    assert path.stat().st_size > 10_000_000
    tracemalloc.start()
    try:
        table = preview_table(path, "CSV", page=3_000, page_size=50)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert table.rows[0][0] == "避難場所149950"
    assert table.total_rows is None and table.has_next  # more than the counting limit is left
    assert peak < 5_000_000


def test_page_numbers_below_one_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", evacuation_text(2), "utf-8")
    with pytest.raises(InvalidInput, match="page must be 1 or more"):
        preview_table(path, "CSV", page=0)


def population_workbook(path: Path) -> Path:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "人口"
    sheet.append(["町丁名", "総人口", "調査日", None, None])
    for i in range(1, 76):
        sheet.append([f"サンプル町{i}丁目", 100.0 + i, "2024-03-31", None, None])
    workbook.create_sheet("注記").append(["サンプルです"])
    workbook.save(path)
    return path


def test_xlsx_preview_reads_the_first_sheet_in_pages(tmp_path: Path) -> None:
    path = population_workbook(tmp_path / "population.xlsx")
    table = preview_table(path, "XLSX", page=2, page_size=50)
    assert table.columns == ["町丁名", "総人口", "調査日"]
    assert table.rows[0] == ["サンプル町51丁目", "151", "2024-03-31"]
    assert table.total_rows == 75 and not table.has_next
    assert table.sheet == "人口" and table.sheets == ["人口", "注記"] and table.encoding is None


def zip_bomb(path: Path, megabytes: int) -> Path:
    """An XLSX-shaped zip whose sheet XML is huge and compresses extremely well."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
        with archive.open("xl/worksheets/sheet1.xml", "w") as sheet:
            chunk = b"<row><c><v>0</v></c></row>" * 40_000
            for _ in range(megabytes):
                sheet.write(chunk[: 1024 * 1024])
    return path


def test_an_xlsx_zip_bomb_is_refused_before_openpyxl_sees_it(tmp_path: Path) -> None:
    path = zip_bomb(tmp_path / "bomb.xlsx", 40)
    assert path.stat().st_size < 1_000_000
    with pytest.raises(InvalidInput, match="zip bomb"):
        preview_table(path, "XLSX")


def test_an_xlsx_too_big_when_unpacked_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(preview, "XLSX_MAX_UNCOMPRESSED", 5 * 1024 * 1024)
    path = zip_bomb(tmp_path / "big.xlsx", 8)
    with pytest.raises(InvalidInput, match="over the 5 MB limit"):
        check_xlsx_archive(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 512, "Excel 97-2003"),
        (b"name,value\n1,2\n", "not a zip archive"),
    ],
)
def test_files_that_are_not_xlsx_are_refused(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "book.xlsx"
    path.write_bytes(content)
    with pytest.raises(InvalidInput, match=message):
        preview_table(path, "XLSX")


def test_a_zip_without_a_workbook_is_not_an_xlsx(tmp_path: Path) -> None:
    path = tmp_path / "other.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(InvalidInput, match="no xl/workbook.xml"):
        preview_table(path, "XLSX")


def test_the_shared_reader_yields_raw_xlsx_values(tmp_path: Path) -> None:
    path = population_workbook(tmp_path / "population.xlsx")
    with open_table(path, "xlsx") as table:
        first = next(table.rows)
    assert first[:2] == ["サンプル町1丁目", 101.0]


def test_formats_without_a_table_preview_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "a.pdf", "%PDF-1.4", "ascii")
    with pytest.raises(InvalidInput, match="no table preview"):
        preview_table(path, "PDF")
