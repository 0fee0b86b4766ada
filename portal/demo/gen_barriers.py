"""バリアフリー情報 (barrier-free points) with MLIT 歩行空間ネットワーク codes, as a UTF-8 CSV."""

from pathlib import Path

import numpy as np

from portal.demo.city import SAMPLE_LABEL
from portal.demo.gen_common import (
    SAMPLE_NOTE,
    csv_text,
    degrees_text,
    plane_to_lonlat,
    write_bytes_atomically,
)
from portal.demo.gen_roads import StreetGrid, points_along_streets

BARRIERS_PER_SCALE = 300
BARRIER_COLUMNS: tuple[str, ...] = (
    "ID", "名称", "緯度", "経度", "種別",
    "width", "vtcl_slope", "lev_diff", "route_type", "brail_tile", "handrail", "備考",
)  # fmt: skip
# 種別 with its share of points and MLIT route_type (4 elevator, 6 stairs, 7 slope).
BARRIER_KINDS: tuple[tuple[str, float, str], ...] = (
    ("段差", 0.30, ""),
    ("階段", 0.15, "6"),
    ("スロープ", 0.25, "7"),
    ("エレベーター", 0.10, "4"),
    ("多機能トイレ", 0.20, ""),
)
UNKNOWN = "99"  # MLIT's code for "not surveyed"


def barrier_rows(grid: StreetGrid, rng: np.random.Generator, scale: int) -> list[list[str]]:
    """Build the barrier-free CSV rows, one point per row, near the streets."""
    count = BARRIERS_PER_SCALE * scale
    easting, northing = points_along_streets(grid, rng, count, offset_m=4.0)
    lon, lat = plane_to_lonlat(easting, northing)
    shares = np.array([share for _, share, _ in BARRIER_KINDS])
    kinds = rng.choice(len(BARRIER_KINDS), size=count, p=shares / shares.sum())
    lat_text, lon_text = degrees_text(lat, rng), degrees_text(lon, rng)
    draws = rng.random((count, 8))
    rows = []
    for index in range(count):
        kind, _, route_type = BARRIER_KINDS[kinds[index]]
        draw = draws[index]
        rows.append(
            [
                f"BF{index + 1:06d}",
                f"{SAMPLE_LABEL}{kind} {index + 1}",
                lat_text[index],
                lon_text[index],
                kind,
                _coded(draw[0], str(1 + int(draw[1] * 4))),
                _coded(draw[2], "2" if kind == "スロープ" and draw[6] < 0.6 else "1"),
                _coded(draw[3], "2" if kind == "段差" and draw[7] < 0.8 else "1"),
                route_type,
                "1" if draw[4] < 0.45 else "0",
                _handrail(kind, draw[5]),
                SAMPLE_NOTE,
            ]
        )
    return rows


def _coded(draw: float, value: str) -> str:
    """Return `value`, or the unknown code 99 for one point in twenty."""
    return UNKNOWN if draw < 0.05 else value


def _handrail(kind: str, draw: float) -> str:
    """Return the handrail code: stairs and slopes mostly have one, 99 when not surveyed."""
    if draw < 0.05:
        return UNKNOWN
    if kind in ("階段", "スロープ"):
        return "1" if draw < 0.85 else "0"
    return "1" if draw < 0.2 else "0"


def write_barriers(path: Path, grid: StreetGrid, rng: np.random.Generator, scale: int) -> int:
    """Write the バリアフリー CSV (UTF-8 with BOM, CRLF) and return its row count."""
    rows = barrier_rows(grid, rng, scale)
    write_bytes_atomically(path, csv_text(BARRIER_COLUMNS, rows).encode("utf-8-sig"))
    return len(rows)
