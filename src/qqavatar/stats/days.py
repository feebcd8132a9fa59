"""Statistics days: calendar days in Asia/Shanghai, as YesApi (a Chinese service) counts them.

China has kept UTC+8 without daylight saving since 1991, so a fixed offset is exact and
needs no time-zone database on the host.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")
_DAY_SECONDS = 86400
_OFFSET_SECONDS = 8 * 3600


def day_of(unix: float) -> date:
    """The Shanghai calendar day that holds the Unix time `unix`."""
    return datetime.fromtimestamp(unix, SHANGHAI).date()


def next_midnight(unix: float) -> float:
    """The Unix time at which the Shanghai day holding `unix` ends."""
    local = unix + _OFFSET_SECONDS
    return local - local % _DAY_SECONDS + _DAY_SECONDS - _OFFSET_SECONDS


def last_days(today: date, count: int) -> list[date]:
    """`count` days ending with `today`, oldest first."""
    return [today - timedelta(days=back) for back in range(count - 1, -1, -1)]
