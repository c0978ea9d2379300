"""Access tokens shared by every process through Redis, refreshed by one process at a time.

WeCom and DingTalk tokens live 7200 s and may be invalidated early; refetching in every process at
expiry multiplies API calls (and DingTalk counts them). wechatpy's Redis storage has no lock
(docs/wecom.md §4.3), so this small cache does the single-flight itself.
"""

from __future__ import annotations

import time
from typing import Callable

from redis import Redis

# Delete the cached token only if it is still the one that was refused (another process may
# already have stored a fresh one).
_DELETE_IF_EQUAL = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

Fetch = Callable[[], tuple[str, int]]  # -> (token, lifetime in seconds)


class TokenCache:
    def __init__(self, redis: Redis, key: str, fetch: Fetch, *, margin: int = 300,
                 lock_seconds: int = 10, wait_seconds: float = 10.0) -> None:
        self.redis = redis
        self.key = key
        self.fetch = fetch
        self.margin = margin
        self.lock_seconds = lock_seconds
        self.wait_seconds = wait_seconds

    def get(self) -> str:
        """A valid token: from Redis, or fetched by whichever process takes the lock first."""
        deadline = time.monotonic() + self.wait_seconds
        while True:
            cached = self.redis.get(self.key)
            if cached:
                return cached.decode() if isinstance(cached, bytes) else cached
            if self.redis.set(self.key + ":lock", "1", nx=True, ex=self.lock_seconds):
                try:
                    return self._refresh()
                finally:
                    self.redis.delete(self.key + ":lock")
            if time.monotonic() > deadline:
                return self._refresh()  # the lock holder died mid-fetch; don't wait forever
            time.sleep(0.05)

    def invalidate(self, token: str) -> None:
        """Forget `token` after the platform refused it, so the next `get` fetches a new one."""
        self.redis.eval(_DELETE_IF_EQUAL, 1, self.key, token)

    def _refresh(self) -> str:
        cached = self.redis.get(self.key)  # someone may have stored one while we waited for the lock
        if cached:
            return cached.decode() if isinstance(cached, bytes) else cached
        token, lifetime = self.fetch()
        self.redis.set(self.key, token, ex=max(60, int(lifetime) - self.margin))
        return token
