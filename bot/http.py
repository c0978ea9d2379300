"""JSON over HTTP for the platform clients: one place that turns network trouble into PlatformError."""

from __future__ import annotations

from typing import Any, Callable

import requests

from bot.platform import PlatformError, TokenInvalid
from bot.tokens import TokenCache

TIMEOUT = (3.05, 10)  # connect, read: well under the outbox lease


class CountedSession(requests.Session):
    """A session that calls `count` before each request to one of `hosts` (a platform's API bases)
    unless its URL starts with one of `free` (calls the platform does not meter): every call that
    may reach the platform is counted, one that then times out included, since the platform may
    have counted it too (bot/api_meter.py)."""

    def __init__(self, count: Callable[[], None] | None, hosts: tuple[str, ...], free: tuple[str, ...] = ()) -> None:
        super().__init__()
        self._count = count
        self._hosts = tuple(host.rstrip("/") + "/" for host in hosts)
        self._free = free

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:
        if self._count is not None and url.startswith(self._hosts) and not url.startswith(self._free):
            self._count()
        return super().request(method, url, *args, **kwargs)


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


def check_errcode(body: dict[str, Any], *, where: str, token: str, tokens: TokenCache,
                  token_errors: set[int], final_errors: set[int]) -> dict[str, Any]:
    """The `errcode` convention shared by WeCom and DingTalk's oapi: 0 is success; a token error
    drops the cached token (the caller retries once); codes in `final_errors` will never succeed;
    anything else is worth retrying later."""
    errcode = body.get("errcode", 0)
    if errcode == 0:
        return body
    if errcode in token_errors:
        tokens.invalidate(token)
        raise TokenInvalid(f"{where}: token refused ({errcode})", code=errcode)
    raise PlatformError(f"{where}: {errcode} {body.get('errmsg', '')}", code=errcode,
                        retryable=errcode not in final_errors)


def request_bytes(session: requests.Session, method: str, url: str, *, max_bytes: int,
                  **kwargs: Any) -> tuple[int, str, bytes]:
    """(HTTP status, Content-Type, body) of a download, read as a stream and cut off after
    max_bytes + 1 bytes: a file over the limit is known to be over it without being held whole.
    Network errors are retryable failures."""
    try:
        with session.request(method, url, timeout=TIMEOUT, stream=True, **kwargs) as response:
            chunks, size = [], 0
            for chunk in response.iter_content(64 * 1024):
                chunks.append(chunk)
                size += len(chunk)
                if size > max_bytes:
                    break
            body = b"".join(chunks)[: max_bytes + 1]
            return response.status_code, response.headers.get("Content-Type", ""), body
    except requests.RequestException as exc:
        raise PlatformError(f"{method} {url.split('?')[0]}: {exc.__class__.__name__}") from exc


def json_of(body: bytes) -> dict[str, Any] | None:
    """A download answered with a JSON object instead of the file (an error), else None."""
    import json

    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None
