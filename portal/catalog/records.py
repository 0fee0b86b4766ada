"""The catalog as OGC API Records: search, one record, and the collection description.

Records are the datasets a `Principal` may see, found through the catalog search
(`portal.catalog.search`) and shaped by `portal.catalog.record_format`.
"""

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from portal.catalog.datasets import get_dataset
from portal.catalog.models import Dataset
from portal.catalog.record_format import collection_dict, day, record_dict, timestamp
from portal.catalog.search import MAX_ROWS, MAX_START, DatasetQuery, search_datasets
from portal.catalog.views import DatasetView, dataset_visible
from portal.core.errors import InvalidInput
from portal.core.principal import Principal

MAX_LIMIT = MAX_ROWS
MAX_OFFSET = MAX_START
# Temporal coverage is recorded as calendar days in Japan.
JST = timezone(timedelta(hours=9), "JST")
BBOX_FORM = (
    "bbox must be minx,miny,maxx,maxy in degrees (WGS 84 longitude and latitude), "
    "for example 131.4,33.2,131.6,33.4"
)

Bbox = tuple[float, float, float, float]
Period = tuple[datetime | None, datetime | None]


@dataclass(frozen=True)
class RecordPage:
    """One page of records, with how many records match in all."""

    records: list[dict[str, Any]]
    number_matched: int
    number_returned: int


def search_records(
    session: Session,
    principal: Principal,
    *,
    q: str | None,
    bbox: Bbox | None,
    datetime_range: Period | None,
    limit: int,
    offset: int,
    base_url: str,
    municipality_name: str = "",
) -> RecordPage:
    """Return the records `principal` may see that match, most relevant first.

    `q` is the catalog's Japanese full-text search; `bbox` keeps datasets whose spatial
    extent intersects it. `datetime_range` (either end may be open, naive times are UTC)
    keeps datasets whose time overlaps it: the temporal coverage when the dataset has
    one (whole days in Japan time, an open side unbounded), otherwise the time its
    metadata was last modified. `base_url` is the portal's public URL, without `/ogc`.
    """
    _check_page(limit, offset)
    if bbox is not None:
        bbox = check_bbox(bbox)
    wanted = _check_period(datetime_range)
    query = DatasetQuery(q=q or "", bbox=bbox, rows=limit, start=offset)
    if wanted is None:
        result = search_datasets(session, principal, query)
        views, matched = result.datasets, result.count
    else:
        views, matched = _search_in_period(session, principal, query, wanted)
    records = [
        record_dict(view, base_url=base_url, municipality_name=municipality_name) for view in views
    ]
    return RecordPage(records, matched, len(records))


def get_record(
    session: Session, principal: Principal, name: str, *, base_url: str, municipality_name: str = ""
) -> dict[str, Any]:
    """Return one record by dataset name, or `NotFound` (the same for hidden and missing)."""
    dataset = get_dataset(session, principal, name)
    return record_dict(dataset, base_url=base_url, municipality_name=municipality_name)


def catalog_collection(session: Session, principal: Principal, *, base_url: str) -> dict[str, Any]:
    """Describe the "catalog" collection; its extent covers only datasets `principal` may see."""
    no_coverage = and_(Dataset.temporal_start.is_(None), Dataset.temporal_end.is_(None))
    extent = func.ST_Extent(Dataset.spatial)
    row = session.execute(
        select(
            func.ST_XMin(extent),
            func.ST_YMin(extent),
            func.ST_XMax(extent),
            func.ST_YMax(extent),
            func.count(),
            func.min(Dataset.temporal_start),
            func.max(Dataset.temporal_end),
            func.bool_or(and_(Dataset.temporal_start.is_(None), Dataset.temporal_end.is_not(None))),
            func.bool_or(and_(Dataset.temporal_start.is_not(None), Dataset.temporal_end.is_(None))),
            func.min(Dataset.modified_at).filter(no_coverage),
            func.max(Dataset.modified_at).filter(no_coverage),
        ).where(dataset_visible(principal))
    ).one()
    bbox = None if row[0] is None else [float(v) for v in row[0:4]]
    interval = None
    if row[4]:
        first, last, open_start, open_end, first_change, last_change = row[5:]
        interval = (
            None if open_start else _earliest(first, first_change),
            None if open_end else _latest(last, last_change),
        )
    return collection_dict(base_url=base_url, bbox=bbox, interval=interval)


def parse_bbox(text: str | None) -> Bbox | None:
    """Parse `bbox=minx,miny,maxx,maxy` (or the six-number 3D form) in degrees (WGS 84)."""
    if text is None or not text.strip():
        return None
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        raise InvalidInput(f"{BBOX_FORM}; got {text!r}") from None
    if len(values) == 6:
        values = [values[0], values[1], values[3], values[4]]
    if len(values) != 4:
        raise InvalidInput(f"{BBOX_FORM}; got {text!r}")
    return check_bbox((values[0], values[1], values[2], values[3]))


def check_bbox(bbox: Bbox) -> Bbox:
    """Refuse a box that is not finite, not ordered, or outside longitude/latitude range."""
    if len(bbox) != 4 or not all(math.isfinite(v) for v in bbox):
        raise InvalidInput(f"{BBOX_FORM}; got {_numbers(bbox)}")
    minx, miny, maxx, maxy = bbox
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise InvalidInput(
            "bbox must have -180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90 "
            f"(degrees, WGS 84); got {_numbers(bbox)}"
        )
    return minx, miny, maxx, maxy


def _check_page(limit: int, offset: int) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
    if not 0 <= offset <= MAX_OFFSET:
        raise InvalidInput(f"offset must be between 0 and {MAX_OFFSET:,}, got {offset}")


def _check_period(period: Period | None) -> Period | None:
    """Return the period in UTC, or None when both ends are open."""
    if period is None:
        return None
    start, end = (None if v is None else _utc(v) for v in period)
    if start is None and end is None:
        return None
    if start is not None and end is not None and start > end:
        raise InvalidInput(
            f"datetime must not end before it starts; got {timestamp(start)}/{timestamp(end)}"
        )
    return start, end


def _search_in_period(
    session: Session, principal: Principal, query: DatasetQuery, wanted: Period
) -> tuple[list[DatasetView], int]:
    """Walk the search's matches in order, keeping those whose time overlaps `wanted`.

    The period test needs each dataset's coverage or modification time, which the catalog
    search does not filter on, so the matches are read in pages of MAX_ROWS.
    """
    page: list[DatasetView] = []
    matched = 0
    start = 0
    while True:
        batch = DatasetQuery(q=query.q, bbox=query.bbox, rows=MAX_ROWS, start=start)
        result = search_datasets(session, principal, batch)
        for view in result.datasets:
            if _overlaps(_period_of(view), wanted):
                if query.start <= matched < query.start + query.rows:
                    page.append(view)
                matched += 1
        start += MAX_ROWS
        if start >= result.count or start > MAX_START:
            return page, matched


def _period_of(dataset: DatasetView) -> Period:
    """The time a dataset covers: its temporal coverage, else the moment it last changed."""
    if dataset.temporal_start is None and dataset.temporal_end is None:
        changed = _utc(dataset.modified_at)
        return changed, changed
    start = _day_start(dataset.temporal_start) if dataset.temporal_start else None
    end = _day_end(dataset.temporal_end) if dataset.temporal_end else None
    return start, end


def _overlaps(period: Period, wanted: Period) -> bool:
    start, end = period
    low, high = wanted
    if high is not None and start is not None and start > high:
        return False
    return not (low is not None and end is not None and end < low)


def _day_start(value: date) -> datetime:
    return datetime.combine(value, time.min, JST)


def _day_end(value: date) -> datetime:
    return datetime.combine(value, time.max, JST)


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def _earliest(first_day: date | None, first_change: datetime | None) -> str | None:
    """The earlier of a coverage start day and a modification time, formatted as it came."""
    candidates = [(_day_start(first_day), day(first_day))] if first_day else []
    if first_change:
        candidates.append((first_change, timestamp(first_change)))
    return min(candidates)[1] if candidates else None


def _latest(last_day: date | None, last_change: datetime | None) -> str | None:
    """The later of a coverage end day and a modification time, formatted as it came."""
    candidates = [(_day_end(last_day), day(last_day))] if last_day else []
    if last_change:
        candidates.append((last_change, timestamp(last_change)))
    return max(candidates)[1] if candidates else None


def _numbers(values: tuple[float, ...]) -> str:
    return ",".join(f"{v:g}" for v in values)
