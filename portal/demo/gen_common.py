"""Shared pieces of the demo generator: the sample city, fixed dates, CRS and safe writes."""

import csv
import io
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import numpy as np
from pyproj import Transformer

from portal.demo.city import CENTER_LAT, CENTER_LON, SAMPLE_LABEL

# Libraries stamp "now" into files; pinning one date keeps the output byte-identical.
FIXED_DATETIME = datetime(2024, 4, 1, 0, 0, 0)
SURVEY_DATE = date(2024, 3, 31)
SAMPLE_NOTE = f"{SAMPLE_LABEL}データ"

PLANE_CRS = "EPSG:6670"  # JGD2011 / Japan Plane Rectangular CS II (Oita)
GEOGRAPHIC_CRS = "EPSG:6668"  # JGD2011 geographic
WGS84_CRS = "EPSG:4326"

PREFECTURES: tuple[str, ...] = (
    "北海道", "青森県", "岩手県", "宮城県", "秋田県", "山形県", "福島県",
    "茨城県", "栃木県", "群馬県", "埼玉県", "千葉県", "東京都", "神奈川県",
    "新潟県", "富山県", "石川県", "福井県", "山梨県", "長野県", "岐阜県",
    "静岡県", "愛知県", "三重県", "滋賀県", "京都府", "大阪府", "兵庫県",
    "奈良県", "和歌山県", "鳥取県", "島根県", "岡山県", "広島県", "山口県",
    "徳島県", "香川県", "愛媛県", "高知県", "福岡県", "佐賀県", "長崎県",
    "熊本県", "大分県", "宮崎県", "鹿児島県", "沖縄県",
)  # fmt: skip

_FULL_WIDTH_DIGITS = str.maketrans("0123456789", "０１２３４５６７８９")


@dataclass(frozen=True)
class SampleCity:
    """The municipality the sample files pretend to come from."""

    code: str
    name: str

    @property
    def jis_code(self) -> str:
        """Return the five-digit JIS X 0402 code (the code without its check digit)."""
        return self.code[:5]

    @property
    def prefecture(self) -> str:
        """Return the prefecture name (都道府県名) from the first two digits of the code."""
        return prefecture_name(self.code)

    @property
    def full_name(self) -> str:
        """Return prefecture and municipality joined, as in 地方公共団体名 (大分県別府市)."""
        return self.prefecture + self.name


def prefecture_name(municipality_code: str) -> str:
    """Return the 都道府県名 for a municipality code, from its first two digits."""
    number = int(municipality_code[:2])
    if not 1 <= number <= len(PREFECTURES):
        raise ValueError(f"municipality code {municipality_code!r} has no prefecture 01-47")
    return PREFECTURES[number - 1]


def full_width(number: int) -> str:
    """Return `number` written with full-width digits (１２), as Japanese names use them."""
    return str(number).translate(_FULL_WIDTH_DIGITS)


def plane_center() -> tuple[float, float]:
    """Return Beppu city hall as (easting, northing) in EPSG:6670."""
    easting, northing = Transformer.from_crs(WGS84_CRS, PLANE_CRS, always_xy=True).transform(
        CENTER_LON, CENTER_LAT
    )
    return float(easting), float(northing)


def plane_to_lonlat(
    easting: np.ndarray, northing: np.ndarray, crs: str = WGS84_CRS
) -> tuple[np.ndarray, np.ndarray]:
    """Transform EPSG:6670 easting/northing arrays to lon/lat arrays (x = lon, never swapped)."""
    transformer = Transformer.from_crs(PLANE_CRS, crs, always_xy=True)
    lon, lat = transformer.transform(easting, northing)
    return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)


@contextmanager
def staged_output(final: Path) -> Iterator[Path]:
    """Yield a path in a private folder beside `final`; on success move what was written there.

    Every file written into the private folder (a Shapefile's sidecars too) replaces its
    namesake beside `final`, so a crash never leaves a half-written file under a final name.
    """
    staging = Path(tempfile.mkdtemp(prefix=f".{final.stem}.", suffix=".tmp", dir=final.parent))
    try:
        yield staging / final.name
        # The main file goes last so that it never points at sidecars from an older run.
        parts = sorted(staging.iterdir(), key=lambda part: part.name == final.name)
        for part in parts:
            os.replace(part, final.parent / part.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def write_bytes_atomically(final: Path, content: bytes) -> None:
    """Write `content` to `final` through a temporary file and a rename."""
    with staged_output(final) as staging_path:
        staging_path.write_bytes(content)


def csv_text(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Return CSV text with CRLF line ends, quoting only where a field needs it."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def degrees_text(values: np.ndarray, rng: np.random.Generator) -> list[str]:
    """Format decimal degrees as text, mostly with 7 decimals and some with 6, as real files do."""
    decimals = np.where(rng.random(len(values)) < 0.2, 6, 7)
    return [f"{value:.{places}f}" for value, places in zip(values, decimals, strict=True)]
