"""DingTalk event-subscription events → InboundEvent: one conversion for the HTTP route
(POST /dingtalk/events) and for Stream mode's EVENT frames.

The shape of a directory event (handlers/directory.py applies it; it never gets a chat reply):

    InboundEvent(platform="dingtalk", kind="directory", sender="",
                 event_id=<the platform's event id, else a digest of the data>,
                 action=<the event type: user_add_org, user_modify_org, user_leave_org,
                         user_active_org, org_dept_create, org_dept_modify, org_dept_remove,
                         label_user_change, label_conf_add, label_conf_del, label_conf_modify>,
                 raw=<the event's data as sent: HTTP {"EventType", "UserId": [...], "DeptId": [...],
                      "CorpId", "TimeStamp"}; Stream data may spell them userId / deptId>)

Other event types return None (the caller answers success and does nothing).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from handlers.events import InboundEvent

PLATFORM = "dingtalk"

# Address-book events (docs/dingtalk.md §5.3).
DIRECTORY_EVENTS = {"user_add_org", "user_modify_org", "user_leave_org", "user_active_org",
                    "org_dept_create", "org_dept_modify", "org_dept_remove",
                    # a role's members (label_user_change) or a role / role group changed
                    "label_user_change", "label_conf_add", "label_conf_del", "label_conf_modify"}


def parse_event(event_type: str, event_id: str, data: dict[str, Any]) -> InboundEvent | None:
    """The event Banli acts on, or None. `event_id`: the platform's (Stream's header eventId); the
    HTTP push carries none, so "" there — then a digest of the data is the de-duplication key (a
    redelivery is the same data; two changes differ in their TimeStamp or ids)."""
    if event_type not in DIRECTORY_EVENTS or not isinstance(data, dict):
        return None
    key = event_id or hashlib.sha1(json.dumps(data, sort_keys=True, ensure_ascii=False, default=str)
                                   .encode()).hexdigest()[:24]
    return InboundEvent(platform=PLATFORM, event_id=f"event|{event_type}|{key}"[:200], kind="directory", sender="",
                        action=event_type, raw=data)
