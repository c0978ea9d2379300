"""Platform API calls per month, against DingTalk's monthly quota for the organisation.

DingTalk meters an organisation's server-side OpenAPI calls per calendar month; past the quota
the metered APIs answer errcode 90020 / `Forbidden.AccessDenied.ApiCountLimitForOrg` until the
1st of the next month, while unmetered ones go on working; buying 专业版 or an add-on pack raises
it at once (DingTalk's help centre: "API调用量超过限额后,是否会有超额提示"). Free organisations get
5,000 calls a month (BANLI_DINGTALK_MONTHLY_QUOTA, default 5000). WeCom has no monthly quota: its
calls are counted and shown only. docs/dingtalk.md says what Banli counts.

The counter (`api_call_count`, one row per platform and month of the company's time zone) is
incremented by bot/api_meter.py in batches. At WARN_SHARE of the quota every admin gets one warning
card, once a month: whichever flush first sets the row's `warned_at` sends it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlmodel import Session

from cards import Card
from storage.models import ApiCallCount
from workflows import roles
from workflows.identity import PLATFORM_NAMES
from workflows.pushes import Pusher

WARN_SHARE = 0.8


@dataclass(frozen=True)
class Usage:
    platform: str
    name: str
    calls: int
    quota: int | None  # None: the platform has no monthly quota (WeCom), or it is switched off
    warned: str = ""  # when the admins were warned this month, company time ("" not yet)

    @property
    def percent(self) -> int | None:
        """Whole percent used, rounded down: 79.9 % is not yet 80 %."""
        return self.calls * 100 // self.quota if self.quota else None

    @property
    def near(self) -> bool:
        return bool(self.quota) and self.calls >= WARN_SHARE * self.quota


def month_of(now: datetime, tz: str) -> str:
    """`2026-12`: the calendar month of `now` where the company is."""
    return now.astimezone(ZoneInfo(tz)).strftime("%Y-%m")


def add_calls(session: Session, counts: dict[tuple[str, str], int], *, now: datetime) -> dict[tuple[str, str], int]:
    """Add {(platform, month): calls} to the counters in one upsert each; returns the new totals."""
    from sqlalchemy.dialects import postgresql, sqlite

    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    table = ApiCallCount.__table__
    totals = {}
    for (platform, month), calls in sorted(counts.items()):  # one order: two flushers never deadlock
        stmt = insert(table).values(platform=platform, month=month, calls=calls, updated_at=now)
        stmt = stmt.on_conflict_do_update(index_elements=["platform", "month"],
                                          set_={"calls": table.c.calls + stmt.excluded.calls, "updated_at": now})
        totals[(platform, month)] = session.execute(stmt.returning(table.c.calls)).scalar_one()
    return totals


def warn_if_near(session: Session, platform: str, month: str, total: int, *, quota: int, now: datetime) -> int:
    """At WARN_SHARE of `quota`, queue the warning card for every admin — once a month, however many
    processes cross the line at once: only the one whose UPDATE sets `warned_at` sends. Returns how
    many cards were queued."""
    if not quota or total < WARN_SHARE * quota:
        return 0
    won = session.execute(update(ApiCallCount).where(
        ApiCallCount.platform == platform, ApiCallCount.month == month, ApiCallCount.warned_at.is_(None))
        .values(warned_at=now).execution_options(synchronize_session=False)).rowcount
    if won != 1:
        return 0
    card = warning_card(platform, month, total, quota)
    pusher = Pusher(session)
    for admin in roles.people_with(session, "admin"):
        pusher.queue(admin.id, f"quota:warn:{platform}:{month}:{admin.id}", card)
    return len(pusher.flush())


def warning_card(platform: str, month: str, calls: int, quota: int) -> Card:
    name = PLATFORM_NAMES.get(platform, platform)
    year, number = month.split("-")
    return Card(
        title=f"{name}接口调用量已用 {calls * 100 // quota}%",
        body=(f"本月（{year}年{int(number)}月）办理已调用{name}开放接口 {calls:,} 次，"
              f"本企业每月额度 {quota:,} 次。\n"
              f"用满后，{name}会拒绝本月剩下的计量接口调用（错误码 90020）：办理发出的消息、卡片和通讯录同步"
              "会失败，直到下月 1 日额度重置。\n"
              f"怎么办：在{name}开发者后台「资源管理」查看用量明细；升级专业版或购买调用量增购包可立即提高额度，"
              "之后请把 BANLI_DINGTALK_MONTHLY_QUOTA 改成新的额度。后台「发送队列」页可随时查看本月用量。"),
        fields=(("本月已用", f"{calls:,} 次"), ("每月额度", f"{quota:,} 次")),
    )


def usage(session: Session, *, month: str, quotas: dict[str, int | None], tz: str) -> list[Usage]:
    """This month's calls for each platform in `quotas` (the configured ones) and any other that has calls."""
    counted = {platform: (calls, warned_at) for platform, calls, warned_at in session.execute(
        select(ApiCallCount.platform, ApiCallCount.calls, ApiCallCount.warned_at).where(ApiCallCount.month == month))}
    platforms = sorted(set(quotas) | set(counted), key=lambda p: (p != "dingtalk", p))
    found = []
    for platform in platforms:
        calls, warned_at = counted.get(platform, (0, None))
        warned = warned_at.astimezone(ZoneInfo(tz)).strftime("%m-%d %H:%M") if warned_at else ""
        found.append(Usage(platform, PLATFORM_NAMES.get(platform, platform), calls, quotas.get(platform) or None, warned))
    return found
