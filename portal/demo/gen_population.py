"""地域・年齢別人口 (A-04 population by 町丁 and age) as an XLSX workbook."""

import io
import zipfile
from pathlib import Path

import numpy as np
from openpyxl import Workbook
from openpyxl.xml.constants import ARC_CORE
from openpyxl.xml.functions import tostring

from portal.demo.city import SAMPLE_LABEL
from portal.demo.gen_common import (
    FIXED_DATETIME,
    SAMPLE_NOTE,
    SURVEY_DATE,
    SampleCity,
    write_bytes_atomically,
)
from portal.demo.gen_places import Chocho

CHOCHO_PER_SCALE = 50
SHEET_TITLE = "人口"
AGE_BANDS: tuple[str, ...] = (
    *(f"{start}-{start + 4}歳" for start in range(0, 85, 5)),
    "85歳以上",
)
POPULATION_COLUMNS: tuple[str, ...] = (
    "全国地方公共団体コード", "地方公共団体名", "町丁名", "調査年月日", "総人口", "男性", "女性",
    *(f"{band}{sex}" for band in AGE_BANDS for sex in ("男", "女")),
    "世帯数", "備考",
)  # fmt: skip
# Relative head-counts per 5-year band for an ageing spa town (0-4 … 85+).
_MALE_WEIGHTS = np.array(
    [30, 33, 36, 40, 45, 42, 43, 48, 55, 62, 60, 58, 62, 70, 64, 50, 38, 30], dtype=float
)
_FEMALE_WEIGHTS = np.array(
    [28, 31, 34, 38, 43, 41, 42, 47, 54, 61, 61, 60, 66, 78, 75, 66, 58, 70], dtype=float
)
_ZIP_TIMESTAMP = FIXED_DATETIME.timetuple()[:6]


def population_rows(
    rng: np.random.Generator, city: SampleCity, chocho: list[Chocho]
) -> list[list[object]]:
    """Build one row per 町丁 whose totals add up: total = male + female = sum of bands."""
    count = len(chocho)
    total = rng.integers(60, 3200, count)
    male = rng.binomial(total, 0.47)
    rows: list[list[object]] = []
    for index, place in enumerate(chocho):
        female = int(total[index] - male[index])
        male_bands = rng.multinomial(int(male[index]), _MALE_WEIGHTS / _MALE_WEIGHTS.sum())
        female_bands = rng.multinomial(female, _FEMALE_WEIGHTS / _FEMALE_WEIGHTS.sum())
        households = max(1, round(int(total[index]) / rng.uniform(1.6, 2.4)))
        bands = np.stack([male_bands, female_bands], axis=1).ravel()
        rows.append(
            [
                city.code,  # a str, so the cell is text and keeps any leading zero
                city.full_name,
                place.name,
                SURVEY_DATE,
                int(total[index]),
                int(male[index]),
                female,
                *(int(value) for value in bands),
                households,
                SAMPLE_NOTE,
            ]
        )
    return rows


def population_workbook(rows: list[list[object]]) -> Workbook:
    """Lay the rows out on one sheet 「人口」 under a header row."""
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = SHEET_TITLE
    sheet.append(list(POPULATION_COLUMNS))
    for row in rows:
        sheet.append(row)
    date_column = POPULATION_COLUMNS.index("調査年月日") + 1
    for (cell,) in sheet.iter_rows(min_row=2, min_col=date_column, max_col=date_column):
        cell.number_format = "yyyy/m/d"
    sheet.freeze_panes = "A2"
    workbook.properties.title = f"地域・年齢別人口（{SAMPLE_LABEL}）"
    workbook.properties.creator = "portal demo generator"
    workbook.properties.created = FIXED_DATETIME
    return workbook


def workbook_bytes(workbook: Workbook) -> bytes:
    """Serialise a workbook reproducibly: fixed zip entry times and document dates."""
    buffer = io.BytesIO()
    workbook.save(buffer)
    # openpyxl stamps "now" into docProps/core.xml and into every zip entry, so both are redone.
    workbook.properties.modified = FIXED_DATETIME
    core_xml = tostring(workbook.properties.to_tree())
    output = io.BytesIO()
    with (
        zipfile.ZipFile(buffer) as source,
        zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for entry in source.infolist():
            data = core_xml if entry.filename == ARC_CORE else source.read(entry)
            target.writestr(
                zipfile.ZipInfo(entry.filename, _ZIP_TIMESTAMP), data, zipfile.ZIP_DEFLATED
            )
    return output.getvalue()


def write_population(
    path: Path, rng: np.random.Generator, city: SampleCity, chocho: list[Chocho]
) -> int:
    """Write the 地域・年齢別人口 XLSX and return its row count (町丁)."""
    rows = population_rows(rng, city, chocho)
    write_bytes_atomically(path, workbook_bytes(population_workbook(rows)))
    return len(rows)
