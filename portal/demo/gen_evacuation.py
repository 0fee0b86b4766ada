"""指定緊急避難場所一覧 (A-03 evacuation sites) in the current standard layout, as a CP932 CSV."""

from pathlib import Path

import numpy as np

from portal.demo.city import SAMPLE_LABEL
from portal.demo.gen_common import (
    SAMPLE_NOTE,
    SampleCity,
    csv_text,
    degrees_text,
    full_width,
    plane_center,
    plane_to_lonlat,
    write_bytes_atomically,
)
from portal.demo.gen_places import Chocho
from portal.demo.gen_roads import StreetGrid, points_along_streets

SITES_PER_SCALE = 60
HAZARD_COLUMNS: tuple[str, ...] = (
    "災害種別_洪水",
    "災害種別_崖崩れ、土石流及び地滑り",
    "災害種別_高潮",
    "災害種別_地震",
    "災害種別_津波",
    "災害種別_大規模な火事",
    "災害種別_内水氾濫",
    "災害種別_火山現象",
)
EVACUATION_COLUMNS: tuple[str, ...] = (
    "全国地方公共団体コード", "ID", "地方公共団体名", "名称", "名称_カナ", "名称_英語",
    "所在地_全国地方公共団体コード", "町字ID", "所在地_連結表記", "所在地_都道府県",
    "所在地_市区町村", "所在地_町字", "所在地_番地以下", "建物名等(方書)", "緯度", "経度",
    "標高", "電話番号",
    *HAZARD_COLUMNS,
    "指定避難所との重複", "想定収容人数", "対象となる町会・自治会", "URL", "備考",
)  # fmt: skip
# Circled numerals are CP932-only (NEC row 13): real files use them, and strict Shift_JIS
# decoders fail on them, which is exactly the quirk a harvester has to survive.
_BUILDING_NOTE = "①屋内避難可 ②駐車場あり"
_OPEN_SPACE_NOTE = "①屋外のみ"
# (facility, reading, is a building, capacity range)
_FACILITIES: tuple[tuple[str, str, bool, tuple[int, int]], ...] = (
    ("小学校", "ショウガッコウ", True, (400, 1200)),
    ("中学校", "チュウガッコウ", True, (500, 1500)),
    ("公民館", "コウミンカン", True, (50, 300)),
    ("体育館", "タイイクカン", True, (300, 1000)),
    ("公園", "コウエン", False, (300, 3000)),
    ("グラウンド", "グラウンド", False, (1000, 5000)),
)


def evacuation_rows(
    grid: StreetGrid,
    rng: np.random.Generator,
    scale: int,
    city: SampleCity,
    chocho: list[Chocho],
) -> list[list[str]]:
    """Build the 指定緊急避難場所 rows with hazard flags that fit each site's height and kind."""
    count = SITES_PER_SCALE * scale
    easting, northing = points_along_streets(grid, rng, count, offset_m=25.0)
    lon, lat = plane_to_lonlat(easting, northing)
    lat_text, lon_text = degrees_text(lat, rng), degrees_text(lon, rng)
    # The land rises west towards 鶴見岳 and meets Beppu Bay to the east.
    east = easting - plane_center()[0]
    elevation = np.clip(22.0 - east * 0.03 + rng.normal(0.0, 3.0, count), 1.5, None)
    towns = rng.integers(0, len(chocho), count)
    kinds = rng.integers(0, len(_FACILITIES), count)
    draws = rng.random((count, len(HAZARD_COLUMNS) + 3))
    rows = []
    for index in range(count):
        place = chocho[towns[index]]
        facility, reading, is_building, (low, high) = _FACILITIES[kinds[index]]
        draw = draws[index]
        number = index + 1
        block = f"{full_width(1 + int(draw[8] * 40))}－{full_width(1 + int(draw[9] * 30))}"
        flags = _hazard_flags(float(elevation[index]), float(east[index]), is_building, draw)
        rows.append(
            [
                city.code,
                f"{number:04d}",
                city.full_name,
                f"{SAMPLE_LABEL}避難場所 {number}（{place.town}{facility}）",
                f"サンプルヒナンバショ {number}（{place.town_kana}{reading}）",
                f"Sample Evacuation Site {number}",
                city.code,
                "",
                f"{city.full_name}{place.name}{block}",
                city.prefecture,
                city.name,
                place.name,
                block,
                "",
                lat_text[index],
                lon_text[index],
                f"{elevation[index]:.1f}",
                "",
                *flags,
                "有" if is_building else "無",
                str(low + int(draw[10] * (high - low) / 10) * 10),
                f"{place.name}自治会;{SAMPLE_LABEL}{place.town}自治会連合会",
                "",
                f"{SAMPLE_NOTE} {_BUILDING_NOTE if is_building else _OPEN_SPACE_NOTE}",
            ]
        )
    return rows


def _hazard_flags(elevation: float, east: float, is_building: bool, draw: np.ndarray) -> list[str]:
    """Return the eight 災害種別 flags ("1" or empty) in HAZARD_COLUMNS order."""
    suitable = (
        draw[0] < (0.85 if elevation > 3 and is_building else 0.4),  # 洪水
        draw[1] < (0.7 if elevation < 60 else 0.3),  # 崖崩れ、土石流及び地滑り
        elevation > 5 and draw[2] < 0.8,  # 高潮
        draw[3] < 0.97,  # 地震
        elevation > 10 and draw[4] < 0.9,  # 津波
        draw[5] < (0.9 if not is_building else 0.3),  # 大規模な火事: open spaces
        draw[6] < (0.6 if elevation > 3 else 0.2),  # 内水氾濫
        draw[7] < (0.6 if east > 0 else 0.15),  # 火山現象: far from the volcano to the west
    )
    return ["1" if flag else "" for flag in suitable]


def write_evacuation_sites(
    path: Path,
    grid: StreetGrid,
    rng: np.random.Generator,
    scale: int,
    city: SampleCity,
    chocho: list[Chocho],
) -> int:
    """Write the 指定緊急避難場所 CSV (CP932, CRLF) and return its row count."""
    rows = evacuation_rows(grid, rng, scale, city, chocho)
    # Real city files are Windows-31J (CP932), not strict Shift_JIS.
    write_bytes_atomically(path, csv_text(EVACUATION_COLUMNS, rows).encode("cp932"))
    return len(rows)
