"""What each platform edge provides to the rest of Banli, and the errors it may raise."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from cards import Card
from workflows.identity import DirectoryEntry


class PlatformError(Exception):
    """A platform API said no. `retryable` separates "try later" (network, rate limit, 5xx) from
    "this will never work" (unknown user, malformed card), so the outbox stops retrying the latter."""

    def __init__(self, message: str, *, retryable: bool = True, code: int | str | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.code = code  # the platform's errcode / error code, when it gave one


class AccessDenied(PlatformError):
    """The app may not read this (WeCom 60011/48002, DingTalk 60011/50004): final until an admin
    grants the permission or widens the app's visible range; the caller says so and carries on."""

    def __init__(self, message: str, *, code: int | str | None = None) -> None:
        super().__init__(message, retryable=False, code=code)


class TokenInvalid(PlatformError):
    """The access token was refused; the caller refreshes it once and retries."""


@dataclass(frozen=True)
class Outgoing:
    """One message to deliver: a card for a person (or a group chat), and how to reply to the event
    that caused it (e.g. a DingTalk sessionWebhook). `key` is the outbox key: stable across retries."""

    key: str
    recipient: str
    card: Card
    conversation: str = ""
    reply: dict[str, Any] = field(default_factory=dict)


class PlatformClient(Protocol):
    name: str

    def send(self, message: Outgoing) -> dict[str, Any]:
        """Deliver; returns what later updates need (WeCom response_code, DingTalk outTrackId)."""

    def update_card(self, sent: dict[str, Any], card: Card) -> dict[str, Any]:
        """Replace a card already delivered (`sent` is what `send` returned) for every recipient."""

    def directory_entry(self, user_id: str) -> DirectoryEntry:
        """Name, department and manager from the platform directory."""

    def download_media(self, media_id: str, *, max_bytes: int) -> bytes:
        """A received photo's bytes (at most max_bytes + 1); a final PlatformError if it is gone."""

    def send_image(self, recipient: str, data: bytes, *, mime: str, filename: str) -> dict[str, Any]:
        """An image message to one person (uploaded to the platform first)."""
