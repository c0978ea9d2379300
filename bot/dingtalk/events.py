"""DingTalk event subscriptions → InboundEvent: the address-book changes Banli keeps its directory
in step with (docs/dingtalk.md §2.6). One function for both ways they arrive — a Stream EVENT frame
(headers eventType / eventId, `data` the event's JSON) and an HTTP event-subscription push once
decrypted (docs/dingtalk.md §3) — so both paths store the same event under the same key.
"""

from __future__ import annotations

from typing import Any

from handlers.events import InboundEvent

PLATFORM = "dingtalk"

USER_EVENTS = frozenset({"user_add_org", "user_modify_org", "user_leave_org"})
DEPARTMENT_EVENTS = frozenset({"org_dept_create", "org_dept_modify", "org_dept_remove"})
DIRECTORY_EVENTS = USER_EVENTS | DEPARTMENT_EVENTS


def parse_event(event_type: str, event_id: str, data: dict[str, Any]) -> InboundEvent | None:
    """The address-book event as an InboundEvent; None for any other event type, or without an id.

    The shape, for whoever acts on it (a directory-sync handler):
    - `platform` "dingtalk", `kind` "directory", `sender` "" (an event is nobody's message: it is
      never answered, and creates no employee);
    - `event_id`: the delivery key — the Stream frame's `eventId` header (DingTalk may push an event
      twice, docs/dingtalk.md §2.3); the inbound outbox stores it once;
    - `action`: the event type, one of DIRECTORY_EVENTS (user_add_org, user_modify_org,
      user_leave_org, org_dept_create, org_dept_modify, org_dept_remove);
    - `value`: the ids it is about, comma-joined — user ids for user_*, department ids for org_dept_*
      (Stream data is lower camel case, `userId` / `deptId`; an HTTP push says `UserId` / `DeptId`);
    - `raw`: the event's data as DingTalk sent it (timeStamp, optStaffId, diffInfo, …).
    """
    if event_type not in DIRECTORY_EVENTS or not event_id or not isinstance(data, dict):
        return None
    names = ("userId", "UserId") if event_type in USER_EVENTS else ("deptId", "DeptId")
    ids = next((data[name] for name in names if data.get(name)), [])
    if not isinstance(ids, list):
        ids = [ids]
    value = ",".join(str(i) for i in ids if isinstance(i, (str, int)) and not isinstance(i, bool))
    return InboundEvent(platform=PLATFORM, event_id=f"event:{event_id}", kind="directory",
                        sender="", action=event_type, value=value, raw=data)
