"""Prepare a CSV for GDAL: UTF-8, no metadata rows, and the point columns checked."""

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from portal.catalog.preview import open_table
from portal.core.errors import InvalidInput, LoadFailed
from portal.geo.crs import parse_crs
from portal.geo.csv_points import PointColumns, plan_points
from portal.geo.encoding import SNIFF_BYTES, transcode_to_utf8
from portal.geo.encoding_check import detect_encoding

CSV_OPTIONS = {"SEPARATOR": "COMMA", "AUTODETECT_TYPE": "NO", "EMPTY_STRING_AS_NULL": "NO"}


@dataclass
class PreparedCsv:
    """A CSV ready for GDAL: where it is, how to open it, and what was noticed."""

    path: Path
    options: dict[str, Any]
    encoding: str
    crs_override: str | None = None
    warnings: list[str] = field(default_factory=list)


def prepare_csv(
    path: Path,
    scratch: Path,
    *,
    codec: str | None,
    source_crs: str | None = None,
    point_columns: PointColumns | None = None,
) -> PreparedCsv:
    """Transcode a CSV to UTF-8, drop IMI-style `#` metadata rows, and plan its points.

    `codec` is the caller's encoding as a Python codec (None: detect it).
    """
    with path.open("rb") as handle:
        sample = handle.read(SNIFF_BYTES)
    detected = codec or detect_encoding(sample)
    readable = scratch / (path.stem + ".csv")
    # utf-8-sig also reads files without a BOM, and drops one an "utf-8" setting leaves in.
    transcode_to_utf8(path, readable, "utf-8-sig" if detected == "utf-8" else detected)
    warnings: list[str] = []
    if sample.removeprefix(b"\xef\xbb\xbf").lstrip().startswith(b"#"):
        readable, note = _without_metadata_rows(readable, scratch / "data")
        warnings += [note] if note else []
    with readable.open(encoding="utf-8", newline="") as handle:
        header = next(csv.reader(handle), [])
    forced = parse_crs(source_crs, file_name=path.name) if source_crs else None
    plan = plan_points(
        readable, [name.strip() for name in header], forced_crs=forced, columns=point_columns
    )
    options = dict(CSV_OPTIONS)
    if plan is None:
        return PreparedCsv(readable, options, detected, warnings=warnings)
    return PreparedCsv(
        readable,
        options | plan.gdal_options(),
        detected,
        crs_override=plan.crs_override,
        warnings=warnings + plan.warnings,
    )


def _without_metadata_rows(readable: Path, folder: Path) -> tuple[Path, str | None]:
    """Rewrite a "CSV with a metadata header" (`#property` names the columns) as a plain CSV.

    The table preview already reads this layout; its reader decides the header and rows.
    """
    folder.mkdir(exist_ok=True)
    target = folder / readable.name
    try:
        with (
            open_table(readable, "CSV") as table,
            target.open("w", encoding="utf-8", newline="") as out,
        ):
            if not table.notes and table.columns[:1] != ["#"]:
                return readable, None
            writer = csv.writer(out)
            writer.writerow(table.columns)
            writer.writerows(table.rows)
            skipped = len(table.notes)
    except InvalidInput as exc:
        raise LoadFailed(f"{readable.name}: {exc.message}") from exc
    return target, f"{skipped} metadata rows (#…) before the column names were skipped"
