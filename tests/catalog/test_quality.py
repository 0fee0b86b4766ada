"""The quality check: 自治体標準オープンデータセット conformance and the 5-star level."""

import csv
import io
import zipfile
from pathlib import Path
from typing import Any

import pytest

from portal.catalog.quality import assess_resource, five_star_level
from portal.catalog.standard_datasets import (
    BY_ID,
    CURRENT,
    LOCATION_CURRENT,
    OLD,
    STANDARD_DATASETS,
    find_by_label,
)

REAL = Path("/work/shared/data/real")
A03_CURRENT = BY_ID["A-03"].editions[CURRENT].columns
needs_real = pytest.mark.skipif(not REAL.is_dir(), reason="the real corpus is not mounted")


def assess(
    path: Path,
    fmt: str = "",
    *,
    name: str | None = None,
    code: str = "222127",
    tags: list[str] | None = None,
) -> dict[str, Any]:
    return assess_resource(
        path, fmt, file_name=name or path.name, municipality_code=code, tags=tags or []
    )


def write_csv(path: Path, rows: list[list[str]], encoding: str = "utf-8") -> Path:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


def evacuation_row(**values: str) -> list[str]:
    """A conformant current-edition A-03 row for 別府市, with some cells replaced."""
    row = dict.fromkeys(A03_CURRENT, "")
    row.update(
        {"全国地方公共団体コード": "442020", "ID": "0001", "名称": "公民館", "緯度": "33.2846",
         "経度": "131.4914", "所在地_全国地方公共団体コード": "442020", "災害種別_地震": "1"}
    )  # fmt: skip
    row.update(values)
    return [row[c] for c in A03_CURRENT]


# --- real files --------------------------------------------------------------------------


@needs_real
def test_the_yaizu_evacuation_csv_is_a03_old_edition_with_its_code_alias() -> None:
    report = assess(REAL / "yaizu_evacuation_space_utf8.csv", name="222127_evacuation_space.csv")
    standard = report["standard"]
    assert standard["id"] == "A-03" and standard["title"] == "指定緊急避難場所一覧"
    assert standard["slug"] == "evacuation_space" and standard["claimed_by"] == "file_name"
    assert standard["edition"] == OLD
    assert standard["aliases"] == {"市区町村コード": "都道府県コード又は市区町村コード"}
    assert standard["missing_columns"] == [] and standard["unknown_columns"] == []
    assert standard["missing_required"] == []
    assert standard["bad_codes"] == [] and standard["bad_coordinates"] == 0
    assert standard["rows"] == 31
    # Its hazard flags use ○ where the standard says 1: reported, not hidden.
    assert standard["bad_values"]["災害種別_地震"]["values"] == ["○"]
    assert any("災害種別_津波" in p and "'○'" in p for p in report["problems"])
    assert report["stars"] == 3 and report["encoding"] == "utf-8"


@needs_real
def test_the_yaizu_evacuation_csv_is_recognised_by_tag_or_title_too() -> None:
    path = REAL / "yaizu_evacuation_space_utf8.csv"
    assert assess(path, tags=["防災", "A-03"])["standard"]["claimed_by"] == "tag"
    assert assess(path, tags=["指定緊急避難場所一覧"])["standard"]["edition"] == OLD
    assert assess(path)["standard"] is None  # its renamed file name claims nothing


@needs_real
def test_the_yaizu_toilet_csv_is_a13_current_edition_with_the_english_name_alias() -> None:
    report = assess(REAL / "yaizu_public_toilet_utf8.csv", name="222127_public_toilet.csv")
    standard = report["standard"]
    assert standard["id"] == "A-13" and standard["edition"] == CURRENT
    assert standard["aliases"] == {"名称_英語": "名称_英字"}
    assert standard["missing_required"] == [] and standard["empty_required"] == {}
    assert standard["missing_columns"] == [] and standard["unknown_columns"] == []
    assert standard["bad_codes"] == [] and standard["bad_coordinates"] == 0
    assert standard["rows"] == 112 and standard["conformant"] is True
    assert report["problems"] == [] and report["stars"] == 3


@needs_real
def test_the_cp932_care_facilities_are_no_standard_dataset_but_their_encoding_shows() -> None:
    report = assess(REAL / "yaizu_care_facilities_cp932.csv", name="yohairyosya.csv")
    assert report == {"stars": 3, "standard": None, "encoding": "cp932", "problems": []}


@needs_real
def test_the_yaizu_facilities_match_the_old_a01_layout_when_tagged() -> None:
    path = REAL / "yaizu_public_facilities_utf8bom.csv"
    report = assess(path, name="222127_facilities_smartmap.csv", tags=["A-01"])
    assert report["standard"]["edition"] == OLD and report["standard"]["conformant"] is True
    assert report["encoding"] == "utf-8-sig"


@needs_real
@pytest.mark.parametrize(
    "path", sorted(p for p in REAL.rglob("*") if p.is_file()) if REAL.is_dir() else []
)
def test_every_real_file_gets_a_report(path: Path) -> None:
    report = assess(path)
    assert set(report) == {"stars", "standard", "encoding", "problems"}
    assert 1 <= report["stars"] <= 5
    if path.suffix in (".csv", ".geojson"):
        assert report["stars"] == 3 and report["encoding"] in ("utf-8", "utf-8-sig", "cp932")
        assert report["problems"] == []
    if path.suffix == ".shp":
        assert report["stars"] == 3 and report["encoding"] is None


def test_the_demo_evacuation_csv_is_fully_conformant(demo_root: Path) -> None:
    path = demo_root / "bosai/442020_evacuation_space.csv"
    report = assess(path, "CSV", code="442020", tags=["避難場所", "自治体標準オープンデータセット"])
    standard = report["standard"]
    assert standard["id"] == "A-03" and standard["edition"] == CURRENT
    assert standard["conformant"] is True and report["problems"] == []
    assert standard["rows"] == 60 and report["encoding"] == "cp932" and report["stars"] == 3


def test_the_demo_population_workbook_is_two_stars_and_its_codes_are_checked(
    demo_root: Path,
) -> None:
    path = demo_root / "shimin/population_by_chocho_age.xlsx"
    report = assess(path, "XLSX", code="442020", tags=["地域・年齢別人口（サンプル）"])
    assert report["stars"] == 2 and report["encoding"] is None
    assert report["standard"]["id"] == "A-04" and report["standard"]["rows"] == 50
    assert report["standard"]["bad_codes"] == []
    assert any("no column definitions" in p for p in report["problems"])


# --- what the check finds ----------------------------------------------------------------


def test_bad_codes_swapped_and_foreign_coordinates_are_found(tmp_path: Path) -> None:
    rows = [
        list(A03_CURRENT),
        evacuation_row(),
        evacuation_row(全国地方公共団体コード="44202"),  # a dropped check digit / zero
        evacuation_row(全国地方公共団体コード="442021"),  # wrong check digit
        evacuation_row(緯度="131.4914", 経度="33.2846"),  # swapped
        evacuation_row(緯度="33°17'", 経度="131°29'"),  # not decimal degrees
        evacuation_row(緯度="51.5", 経度="-0.12"),  # London
        evacuation_row(緯度="", 経度=""),  # no position: not a bad one
        evacuation_row(災害種別_洪水="○"),
        evacuation_row(全国地方公共団体コード="011002"),  # 札幌市: valid, but not this city
    ]
    path = write_csv(tmp_path / "442020_evacuation_space.csv", rows, "cp932")
    report = assess(path, code="442020")
    standard = report["standard"]
    assert standard["edition"] == CURRENT and standard["rows"] == 9
    assert standard["bad_codes"] == [
        {"row": 3, "column": "全国地方公共団体コード", "value": "44202"},
        {"row": 4, "column": "全国地方公共団体コード", "value": "442021"},
    ]
    assert standard["bad_coordinates"] == 3 and standard["swapped_coordinates"] == 1
    assert standard["bad_coordinate_rows"] == [5, 6, 7] and standard["empty_coordinates"] == 1
    assert standard["bad_values"] == {"災害種別_洪水": {"count": 1, "values": ["○"]}}
    assert standard["conformant"] is False
    text = "\n".join(report["problems"])
    assert "leading zeros" in text and "1 with latitude and longitude swapped" in text
    assert "another municipality's code (011002)" in text


def test_at_most_twenty_bad_codes_are_listed_but_all_are_counted(tmp_path: Path) -> None:
    rows = [list(A03_CURRENT)] + [evacuation_row(全国地方公共団体コード="12345")] * 25
    report = assess(write_csv(tmp_path / "a.csv", rows), code="442020", tags=["A-03"])
    assert len(report["standard"]["bad_codes"]) == 20
    assert report["standard"]["bad_code_count"] == 25


def test_missing_and_unknown_columns_and_required_fields(tmp_path: Path) -> None:
    header = [c for c in BY_ID["A-13"].editions[CURRENT].columns if c != "設置位置"] + ["独自列"]
    row = dict.fromkeys(header, "")
    row.update({"全国地方公共団体コード": "442020", "名称": "", "緯度": "33.3", "経度": "131.5"})
    path = write_csv(tmp_path / "442020_public_toilet.csv", [header, list(row.values())])
    standard = assess(path, code="442020")["standard"]
    assert standard["edition"] == CURRENT
    assert standard["missing_required"] == ["設置位置"]
    assert standard["missing_columns"] == ["設置位置"]
    assert standard["unknown_columns"] == ["独自列"]
    assert standard["empty_required"] == {"名称": 1, "所在地_連結表記": 1}


def test_the_old_aed_layout_checks_its_required_fields(tmp_path: Path) -> None:
    header = [
        "都道府県コード又は市区町村コード",
        "NO",
        "都道府県名",
        "市区町村名",
        "名称",
        "住所",
        "緯度",
        "経度",
    ]
    row = ["442020", "1", "大分県", "別府市", "市役所", "別府市上野口町1-15", "33.2846", "131.4914"]
    path = write_csv(tmp_path / "442020_aed.csv", [header, row])
    standard = assess(path, code="442020")["standard"]
    assert standard["id"] == "A-08" and standard["edition"] == OLD
    assert standard["missing_required"] == ["名称_カナ", "設置位置"]
    assert standard["unknown_columns"] == []  # only the location block is known: no guessing


def test_a_header_that_fits_no_edition_is_said_so(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "x.csv", [["番号", "施設名", "緯度", "経度"], ["1", "a", "34", "135"]]
    )
    report = assess(path, tags=["A-03"])
    assert report["standard"]["edition"] is None and report["standard"]["conformant"] is False
    assert any("matches neither edition" in p for p in report["problems"])


def test_the_file_name_code_is_checked(tmp_path: Path) -> None:
    rows = [list(A03_CURRENT), evacuation_row()]
    report = assess(write_csv(tmp_path / "442021_evacuation_space.csv", rows), code="442020")
    assert any("file name's code 442021" in p for p in report["problems"])
    report = assess(write_csv(tmp_path / "402133_evacuation_space.csv", rows), code="442020")
    assert any("not this municipality's (442020)" in p for p in report["problems"])


def test_conflicting_claims_are_reported(tmp_path: Path) -> None:
    rows = [list(A03_CURRENT), evacuation_row()]
    path = write_csv(tmp_path / "442020_evacuation_space.csv", rows)
    report = assess(path, code="442020", tags=["A-08"])
    assert report["standard"]["id"] == "A-03"
    assert any("tags say A-08" in p for p in report["problems"])


def test_a_claimed_pdf_is_one_star_and_not_checked(tmp_path: Path) -> None:
    path = tmp_path / "442020_evacuation_space.pdf"
    path.write_bytes(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    report = assess(path, "PDF", code="442020")
    assert report["stars"] == 1 and report["standard"]["id"] == "A-03"
    assert report["standard"]["edition"] is None
    assert any("PDF resource is not checked" in p for p in report["problems"])


def test_a_csv_that_is_not_csv_is_one_star_with_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "442020_evacuation_space.csv"
    path.write_bytes(bytes(range(256)) * 64)
    report = assess(path, "CSV", code="442020")
    assert report["stars"] == 1 and report["encoding"] is None
    assert any("binary" in p for p in report["problems"])
    assert report["standard"]["conformant"] is False


def test_a_zip_bomb_workbook_is_one_star_with_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
        archive.writestr("xl/worksheets/sheet1.xml", b"\x20" * (30 * 1024 * 1024))
    report = assess(path, "XLSX")
    assert report["stars"] == 1 and any("zip bomb" in p for p in report["problems"])


# --- the 5-star rule and the definitions -------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "stars"),
    [("PDF", 1), ("DOCX", 1), ("JPG", 1), ("ZIP", 1), ("XLSX", 2), ("XLS", 2), ("CSV", 3),
     ("GEOJSON", 3), ("GPKG", 3), ("SHP", 3), ("KML", 3), ("TTL", 4), ("RDF", 4), ("JSON-LD", 4)],
)  # fmt: skip
def test_five_star_levels(fmt: str, stars: int) -> None:
    assert five_star_level(fmt) == stars
    assert five_star_level(fmt, readable=False) == 1


def test_the_format_falls_back_to_the_file_name(tmp_path: Path) -> None:
    path = tmp_path / "catalog.ttl"
    path.write_text("@prefix dcat: <http://www.w3.org/ns/dcat#> .\n", encoding="utf-8")
    assert assess(path)["stars"] == 4 and assess(path)["encoding"] == "utf-8"


def test_the_standard_definitions_hold_what_reference_md_lists() -> None:
    assert [d.id for d in STANDARD_DATASETS] == [f"A-{n:02d}" for n in range(1, 18)]
    assert A03_CURRENT[: len(LOCATION_CURRENT)] == LOCATION_CURRENT
    assert A03_CURRENT[len(LOCATION_CURRENT) :][:2] == ("標高", "電話番号")
    assert len(A03_CURRENT) == len(LOCATION_CURRENT) + 2 + 8 + 5
    assert BY_ID["A-13"].editions[CURRENT].required == ("名称", "所在地_連結表記", "設置位置")
    assert BY_ID["A-08"].editions[OLD].required == ("名称", "名称_カナ", "住所", "設置位置")
    assert BY_ID["A-17"].slug == "school_districts"


@pytest.mark.parametrize(
    ("label", "expected"),
    [("A-03", "A-03"), ("a3", "A-03"), ("Ａ－０３", "A-03"), ("evacuation_space", "A-03"),
     ("指定緊急避難場所一覧（サンプル）", "A-03"), ("AED", "A-08"), ("防災", None), ("", None),
     ("自治体標準オープンデータセット", None)],
)  # fmt: skip
def test_labels_name_standard_datasets(label: str, expected: str | None) -> None:
    found = find_by_label(label)
    assert (found.id if found else None) == expected
