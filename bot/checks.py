"""What one `banli doctor` check found: a line of the checklist an IT admin reads (banli/doctor.py).

The platform checks live with their platforms (bot/wecom/doctor.py, bot/dingtalk/doctor.py); this
is the shape they share and the HTTP call they share, so a timeout is a failed line, not a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests

from bot.http import request_json
from bot.platform import PlatformError

PASS, FAIL, INFO = "pass", "fail", "info"  # INFO: not checked (nothing configured to check), no verdict


@dataclass(frozen=True)
class Check:
    status: str
    title: str  # "中文 / English", e.g. "通讯录读取权限 / directory read"
    detail: str  # what was found: the platform's own code and message on a failure
    fix: str = ""  # on a failure: where to click or what to set

    @property
    def failed(self) -> bool:
        return self.status == FAIL


def passed(title: str, detail: str) -> Check:
    return Check(PASS, title, detail)


def failed(title: str, detail: str, fix: str) -> Check:
    return Check(FAIL, title, detail, fix)


def info(title: str, detail: str) -> Check:
    return Check(INFO, title, detail)


class Unreachable(Exception):
    """The call never got an answer: DNS, refused connection, timeout, or not JSON."""


def call(session: requests.Session, method: str, url: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON body); any network trouble becomes Unreachable with a one-line reason
    (never the query string, which may carry a secret or a token)."""
    try:
        return request_json(session, method, url, **kwargs)
    except PlatformError as exc:
        raise Unreachable(f"网络错误 network error: {exc}") from None


def mask(secret: str) -> str:
    """Enough of a secret to tell two apart, never enough to use: `ab…yz (32 chars)`."""
    if len(secret) <= 8:
        return f"*** ({len(secret)} chars)"
    return f"{secret[:2]}…{secret[-2:]} ({len(secret)} chars)"
