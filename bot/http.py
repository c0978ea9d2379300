"""JSON over HTTP for the platform clients: one place that turns network trouble into PlatformError."""

from __future__ import annotations

from typing import Any

import requests

from bot.platform import PlatformError

TIMEOUT = (3.05, 10)  # connect, read: well under the outbox lease


def request_json(session: requests.Session, method: str, url: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    """(HTTP status, decoded JSON body). Network errors and non-JSON answers are retryable failures."""
    try:
        response = session.request(method, url, timeout=TIMEOUT, **kwargs)
    except requests.RequestException as exc:
        raise PlatformError(f"{method} {url.split('?')[0]}: {exc.__class__.__name__}") from exc
    try:
        body = response.json()
    except ValueError:
        raise PlatformError(f"{method} {url.split('?')[0]}: HTTP {response.status_code}, not JSON",
                            retryable=response.status_code >= 500 or response.status_code == 429) from None
    return response.status_code, body if isinstance(body, dict) else {"value": body}
