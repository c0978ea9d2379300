"""DingTalk callback signatures (docs/dingtalk.md §1.2 robot messages, §4.6 HTTP card callbacks).

No DingTalk package checks these (§1.2), so both are here, compared in constant time and with a
replay window: a captured callback stays valid for its lifetime, and that is all.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

MAX_SKEW_MS = 3600_000  # DingTalk's own rule: "相差1小时以上" is refused (§1.2)


def _hmac_b64(key: str, msg: str) -> str:
    return base64.b64encode(hmac.new(key.encode(), msg.encode(), hashlib.sha256).digest()).decode()


def robot_sign(timestamp: str, app_secret: str) -> str:
    """base64(HMAC-SHA256(key=appSecret, msg=timestamp + "\\n" + appSecret)) — header `sign`."""
    return _hmac_b64(app_secret, f"{timestamp}\n{app_secret}")


def card_sign(timestamp: str, api_secret: str) -> str:
    """base64(HMAC-SHA256(key=apiSecret, msg=timestamp)) — header `x-ddpaas-signature`."""
    return _hmac_b64(api_secret, timestamp)


def robot_signature_ok(timestamp: str, sign: str, app_secret: str) -> bool:
    return hmac.compare_digest(robot_sign(timestamp, app_secret).encode(), sign.encode())


def card_signature_ok(timestamp: str, sign: str, api_secret: str) -> bool:
    return hmac.compare_digest(card_sign(timestamp, api_secret).encode(), sign.encode())


def fresh(timestamp: str, now_ms: int, max_skew_ms: int = MAX_SKEW_MS) -> bool:
    """The millisecond timestamp is a number within ±max_skew_ms of now."""
    if not timestamp.isdigit() or len(timestamp) > 16:
        return False
    return abs(now_ms - int(timestamp)) <= max_skew_ms
