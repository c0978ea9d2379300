"""What arrives from a platform, after the edge has verified and parsed it."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Literal

# "directory": an address-book change (bot/dingtalk/events.py), answered to nobody.
Kind = Literal["text", "action", "location", "image", "voice", "enter", "directory"]


@dataclass(frozen=True)
class InboundEvent:
    """One user action on one platform.

    `event_id` is the de-duplication key (WeCom MsgId or sender+time+event; DingTalk msgId or
    outTrackId+user+action). `reply` carries what the platform needs to answer *this* event (a DingTalk
    sessionWebhook, a WeCom card ResponseCode); it is stored with the outbox row, never interpreted by
    handlers. Platform message types Banli does not handle never become events (the edge answers 200).

    A directory change (kind "directory") comes from the platform, not a person: `sender` is the
    platform's own name for itself (WeCom "sys", DingTalk ""), `action` the platform's event type
    (create_user, delete_user, update_party…; user_add_org, user_leave_org, org_dept_remove…) and
    `raw` the event's data as the platform sent it (bot/dingtalk/events.py). It never gets a reply.
    """

    platform: str
    event_id: str
    kind: Kind
    sender: str
    text: str = ""
    action: str = ""
    value: str = ""
    conversation: str = ""  # a group chat id; "" for one-to-one
    media_id: str = ""  # image / voice: the platform's id or download code
    location: tuple[float, float, str] | None = None  # latitude, longitude, label
    reply: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        # Shallow on purpose: dataclasses.asdict deep-copies `raw`, a tenth of a callback's CPU.
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "InboundEvent":
        location = data.get("location")
        return cls(**{**data, "location": tuple(location) if location else None})
