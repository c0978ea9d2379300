"""When a push may go out: quiet hours hold it to the release time, weekends to Monday."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from workflows.business_time import push_time

SHANGHAI = timezone(timedelta(hours=8))
DEFAULT = {"start": "21:00", "end": "08:00", "release": "08:30"}
LUNCH = {"start": "12:00", "end": "13:30", "release": "13:30"}
EARLY_RELEASE = {"start": "21:00", "end": "08:00", "release": "07:00"}


def sh(day: int, hour: int, minute: int = 0) -> datetime:
    """November 2026 in Shanghai: the 20th is a Friday, 21st Saturday, 23rd Monday."""
    return datetime(2026, 11, day, hour, minute, tzinfo=SHANGHAI)


@pytest.mark.parametrize("moment, quiet, skip_weekends, expected", [
    (sh(24, 10), DEFAULT, True, sh(24, 10)),  # Tuesday morning: now
    (sh(24, 20, 59), DEFAULT, True, sh(24, 20, 59)),  # a minute before quiet hours
    (sh(24, 21), DEFAULT, True, sh(25, 8, 30)),  # quiet starts: next morning's release
    (sh(24, 23, 30), DEFAULT, True, sh(25, 8, 30)),
    (sh(25, 0, 10), DEFAULT, True, sh(25, 8, 30)),  # after midnight: the same morning
    (sh(25, 7, 59), DEFAULT, True, sh(25, 8, 30)),
    (sh(25, 8, 0), DEFAULT, True, sh(25, 8, 0)),  # quiet hours over: no need to wait for 08:30
    (sh(20, 22), DEFAULT, True, sh(23, 8, 30)),  # Friday night → Monday
    (sh(21, 10), DEFAULT, True, sh(23, 8, 30)),  # Saturday → Monday
    (sh(22, 23), DEFAULT, True, sh(23, 8, 30)),  # Sunday night → Monday
    (sh(21, 10), DEFAULT, False, sh(21, 10)),  # weekends allowed: Saturday is fine
    (sh(20, 22), DEFAULT, False, sh(21, 8, 30)),  # ... and Friday night goes Saturday morning
    (sh(24, 12, 30), LUNCH, True, sh(24, 13, 30)),  # a period that does not wrap midnight
    (sh(24, 22), LUNCH, True, sh(24, 22)),
    (sh(24, 22), EARLY_RELEASE, True, sh(25, 8, 0)),  # a release set inside quiet hours: at the end
    (sh(24, 22), {"start": "08:00", "end": "08:00", "release": "08:00"}, True, sh(24, 22)),  # none
])
def test_push_time(moment, quiet, skip_weekends, expected):
    out = push_time(moment, quiet=quiet, skip_weekends=skip_weekends, tz="Asia/Shanghai")
    assert out == expected and out.tzinfo == timezone.utc


def test_the_answer_is_utc_in_the_business_zone():
    """22:00 UTC on a Tuesday is 06:00 Wednesday in Shanghai: held to 08:30 there, i.e. 00:30 UTC."""
    out = push_time(datetime(2026, 11, 24, 22, 0, tzinfo=timezone.utc), quiet=DEFAULT, skip_weekends=True,
                    tz="Asia/Shanghai")
    assert out == datetime(2026, 11, 25, 0, 30, tzinfo=timezone.utc)
