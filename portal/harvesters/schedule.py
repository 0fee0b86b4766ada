"""Harvest schedules: manual, hourly, daily, weekly, or a cron expression (Japan time)."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter

from portal.core.errors import InvalidInput

CRON_ZONE = ZoneInfo("Asia/Tokyo")
INTERVALS = {"hourly": timedelta(hours=1), "daily": timedelta(days=1), "weekly": timedelta(weeks=1)}


def check_schedule(schedule: str) -> str:
    """Return a valid schedule, or refuse it with the accepted forms."""
    value = schedule.strip()
    if value == "manual" or value in INTERVALS or croniter.is_valid(value):
        return value
    raise InvalidInput(
        f"schedule {schedule!r} must be manual, hourly, daily, weekly, "
        "or a cron expression such as '30 2 * * *'"
    )


def next_run(schedule: str, after: datetime) -> datetime | None:
    """When a source runs next after `after` (None for manual sources)."""
    if schedule == "manual":
        return None
    if schedule in INTERVALS:
        return after + INTERVALS[schedule]
    # Staff write cron times as they read the clock on the office wall.
    following: datetime = croniter(schedule, after.astimezone(CRON_ZONE)).get_next(datetime)
    return following
