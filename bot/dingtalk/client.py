"""DingTalk API client: robot messages, interactive cards, the directory, files
(docs/dingtalk.md §1.4 sessionWebhook, §4.2–4.4 robot sends, §4.6 cards, §4.8 limits, §4.9 files and
images, §5 token + contacts).

A thin client over `requests`, like the WeCom one: the official SDKs wrap one call per class and
none of them shares a token across processes (§6). New APIs (api.dingtalk.com) take the token in
the `x-acs-dingtalk-access-token` header and answer errors as HTTP 4xx/5xx + `code`; the old oapi
ones take `?access_token=` and answer `errcode` with HTTP 200.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import replace
from typing import Any, Callable, Iterator

from redis import Redis

from banli.settings import DingTalkSettings
from bot.dingtalk import render
from bot.http import CountedSession, check_errcode, json_of, request_bytes, request_json
from bot.platform import AccessDenied, Outgoing, PlatformError, TokenInvalid
from bot.tokens import TokenCache
from cards import Card
from workflows.identity import DirectoryDepartment, DirectoryEntry, DirectoryTag

log = logging.getLogger("banli.dingtalk")

TOKEN_HEADER = "x-acs-dingtalk-access-token"
ROOT_DEPT = "1"  # the company itself (§5.2)
USER_PAGE = 100  # topapi/v2/user/list's largest page
CALLBACK_ROUTE_KEY = "banli"  # registered once with /v1.0/card/callbacks/register → /dingtalk/card
WEBHOOK_MARGIN_MS = 60_000  # a sessionWebhook this close to expiry may die in flight: use the API
# New API codes that mean "later" rather than "never" (§4.2, §4.8); other 4xx are final.
RETRYABLE_CODES = ("send.too.fast", "Throttling", "QpsLimit")
# oapi errcodes: token refused (§5.1); "never" answers (§5.2: bad / unknown user; 60003 unknown
# department, 90020 monthly quota spent). Anything else (busy -1, QPS 90018/90002, timeouts) is retried.
OAPI_TOKEN_ERRORS = {40014, 42001, 33001, 40001}
OAPI_FINAL_ERRORS = {33012, 60121, 60003, 90020}
# The permission not granted / outside the app's contacts scope (docs/dingtalk.md §7).
DENIED_ERRORS = {60011, 50004}
ROLE_PAGE = 200  # topapi/role/list's largest page
ROLE_MEMBER_PAGE = 50  # topapi/role/simplelist's largest page
# A dtmd sendMessage link tapped in a group sends its words without an @, and a group robot only
# receives messages that @ it: so group markdown carries no buttons, and says how to ask instead.
GROUP_HINT = "在群里请 @办理 再发指令，或打开与办理的单聊点按钮"


def unmetered(settings: DingTalkSettings) -> tuple[str, ...]:
    """The calls DingTalk leaves out of the organisation's monthly API quota (docs/dingtalk.md §4.8):
    the access token and the contacts APIs (users, departments). Everything else Banli sends to
    api.dingtalk.com or oapi.dingtalk.com is counted — role lists, sessionWebhook replies and the
    Stream gateway too, whose metering DingTalk does not spell out: counting them warns early, never late."""
    return (settings.api_base + "/v1.0/oauth2/accessToken", settings.oapi_base + "/gettoken",
            settings.oapi_base + "/topapi/v2/user/", settings.oapi_base + "/topapi/v2/department/")


def for_group(card: Card) -> Card:
    """A card as group markdown: its buttons dropped (they would not reach Banli), and the hint."""
    return replace(card, buttons=(), footer=GROUP_HINT)


class DingTalkClient:
    name = "dingtalk"

    def __init__(self, settings: DingTalkSettings, redis: Redis, count: Callable[[], None] | None = None) -> None:
        """`count` is told of each call to DingTalk's API hosts (the monthly quota, bot/api_meter.py)."""
        self.settings = settings
        self.http = CountedSession(count, (settings.api_base, settings.oapi_base), unmetered(settings))
        self.tokens = TokenCache(redis, f"banli:token:dingtalk:{settings.app_key}", self._fetch_token)

    # -- Platform ---------------------------------------------------------------------------------
    def send(self, message: Outgoing) -> dict[str, Any]:
        """A template card when one is configured and there is something to tap; markdown with
        tap-to-send links otherwise (docs/dingtalk.md §4.1) — in a group, markdown without them (`for_group`)."""
        if self.settings.card_template_id and message.card.buttons:
            return self._send_card(message)
        if message.conversation and message.card.buttons:
            message = replace(message, card=for_group(message.card))
        webhook = self._live_webhook(message.reply)
        if webhook and self._post_webhook(webhook, message.card):
            return {"via": "webhook"}
        if message.conversation:
            return self._send_group(message)
        return self._send_one(message)

    def update_card(self, sent: dict[str, Any], card: Card) -> dict[str, Any]:
        """Replace a template card for everyone who has it (the callback answer reaches only the clicker, §4.6)."""
        track = sent.get("out_track_id")
        if not track:
            # Markdown messages cannot be edited; the workflow's next message carries the news.
            log.info("dingtalk: %s message cannot be updated; nothing sent", sent.get("via", "a"))
            return {"updated": False}
        self.api("PUT", "/v1.0/card/instances", {
            "outTrackId": track,
            "cardData": {"cardParamMap": render.card_params(card)},
            "cardUpdateOptions": {"updateCardDataByKey": True},
            "userIdType": 1,
        })
        return {"out_track_id": track, "updated": True}

    def register_card_callback(self, callback_url: str) -> dict[str, Any]:
        """Point this app's card button callbacks at Banli (`banli dingtalk register-card-callback`).
        The apiSecret is the app secret, which /dingtalk/card checks (§4.6)."""
        return self.api("POST", "/v1.0/card/callbacks/register", {
            "callbackRouteKey": CALLBACK_ROUTE_KEY,
            "callbackUrl": callback_url,
            "apiSecret": self.settings.app_secret,
            "forceUpdate": True,
        })

    def directory_entry(self, user_id: str) -> DirectoryEntry:
        user = self.oapi("/topapi/v2/user/get", {"userid": user_id, "language": "zh_CN"}).get("result") or {}
        entry = _entry({"userid": user_id, **user})
        department = ""
        if entry.department_ids:  # which entry is the main department is undefined (§5.2): take the first
            department = (self.oapi("/topapi/v2/department/get", {"dept_id": int(entry.department_ids[0]),
                                                                  "language": "zh_CN"})
                          .get("result") or {}).get("name", "")
        return replace(entry, department=department)

    # -- the whole directory (docs/dingtalk.md §5.2) ------------------------------------------------
    def directory_departments(self) -> list[DirectoryDepartment]:
        """The tree from the root (dept 1) down, one listsub call per department (it lists direct children)."""
        root = self.directory_department(ROOT_DEPT)
        out, queue = [DirectoryDepartment(root.dept_id, root.name, "")], [ROOT_DEPT]
        while queue:
            parent = queue.pop(0)
            for d in self.oapi("/topapi/v2/department/listsub", {"dept_id": int(parent), "language": "zh_CN"}) \
                    .get("result") or []:
                out.append(DirectoryDepartment(str(d["dept_id"]), d.get("name") or str(d["dept_id"]), str(parent)))
                queue.append(str(d["dept_id"]))
        return out

    def directory_department(self, dept_id: str) -> DirectoryDepartment:
        d = self.oapi("/topapi/v2/department/get", {"dept_id": int(dept_id), "language": "zh_CN"}).get("result") or {}
        parent = str(d.get("parent_id") or "")
        return DirectoryDepartment(str(d.get("dept_id", dept_id)), d.get("name") or str(dept_id),
                                   "" if str(dept_id) == ROOT_DEPT else parent)

    def directory_people(self, departments: list[DirectoryDepartment]) -> Iterator[DirectoryEntry]:
        """Everyone, with details: topapi/v2/user/list per department, `next_cursor` while `has_more`."""
        for department in departments:
            cursor = 0
            while True:
                result = self.oapi("/topapi/v2/user/list", {"dept_id": int(department.dept_id), "cursor": cursor,
                                                            "size": USER_PAGE, "language": "zh_CN"}).get("result") or {}
                for user in result.get("list") or []:
                    yield _entry(user)
                if not result.get("has_more"):
                    break
                cursor = result.get("next_cursor") or 0

    # -- files and images (docs/dingtalk.md §4.9) ---------------------------------------------------
    def download_media(self, download_code: str, *, max_bytes: int) -> bytes:
        """The bytes of a received picture, at most max_bytes + 1 of them: the robot's download code
        becomes a short-lived URL (`robot/messageFiles/download`), which is then read without a token.
        A code DingTalk refuses is a final PlatformError; network trouble is retryable."""
        answer = self.api("POST", "/v1.0/robot/messageFiles/download",
                          {"downloadCode": download_code, "robotCode": self.settings.robot_code})
        url = answer.get("downloadUrl")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise PlatformError("dingtalk messageFiles/download: no downloadUrl in the answer", retryable=False)
        status, content_type, body = request_bytes(self.http, "GET", url, max_bytes=max_bytes)
        if status != 200:
            # The URL lives about an hour; a new one comes with the next attempt.
            raise PlatformError(f"dingtalk file download: HTTP {status}", retryable=status >= 500 or status in (403, 429))
        if "json" in content_type and json_of(body) is not None:
            raise PlatformError("dingtalk file download: JSON instead of a file")
        return body

    def upload_image(self, data: bytes, *, mime: str, filename: str) -> str:
        """A media id for these bytes (`oapi media/upload?type=image`), usable as an image message's
        photoURL — so sending a stored photo needs no public URL of Banli's."""
        answer = self._oapi_upload("/media/upload", {"type": "image"}, {"media": (filename, data, mime)})
        if not answer.get("media_id"):
            raise PlatformError("dingtalk media/upload: no media_id in the answer")
        return answer["media_id"]

    def send_image(self, recipient: str, data: bytes, *, mime: str, filename: str) -> dict[str, Any]:
        """An image to one person in the robot chat: upload, then batchSend `sampleImageMsg`."""
        media_id = self.upload_image(data, mime=mime, filename=filename)
        answer = self.api("POST", "/v1.0/robot/oToMessages/batchSend", {
            "robotCode": self.settings.robot_code, "userIds": [recipient],
            "msgKey": "sampleImageMsg", "msgParam": json.dumps({"photoURL": media_id})})
        if recipient in (answer.get("invalidStaffIdList") or []):
            raise PlatformError(f"dingtalk batchSend: {recipient} is not a valid user", retryable=False)
        if recipient in (answer.get("flowControlledStaffIdList") or []):
            raise PlatformError(f"dingtalk batchSend: {recipient} flow-controlled")
        return {"via": "batchSend", "media_id": media_id, "process_query_key": answer.get("processQueryKey", "")}

    def _oapi_upload(self, path: str, params: dict[str, str], files: dict) -> dict[str, Any]:
        try:
            return self._oapi_once(path, None, params=params, files=files)
        except TokenInvalid:
            return self._oapi_once(path, None, params=params, files=files)

    # -- role groups → roles (docs/dingtalk.md §5.4) ----------------------------------------------
    def directory_tags(self, named: Callable[[str], bool] = lambda _: True) -> list[DirectoryTag]:
        """Every role (in its role group) with its members: topapi/role/list {offset, size} →
        result{hasMore, list[{groupId, name, roles[{id, name}]}]}, then topapi/role/simplelist
        {role_id, offset, size} → result{hasMore, nextCursor, list[{userid, name}]} per role whose
        name `named` accepts (the others come without members)."""
        out, offset = [], 0
        while True:
            result = self._role_call("/topapi/role/list", {"offset": offset, "size": ROLE_PAGE})
            groups = result.get("list") or []
            for group in groups:
                for role in group.get("roles") or []:
                    name = role.get("name") or ""
                    members = tuple(self._role_members(role["id"])) if named(name) else ()
                    out.append(DirectoryTag(tag_id=str(role["id"]), name=name, user_ids=members))
            if not result.get("hasMore") or not groups:
                return out
            offset += ROLE_PAGE

    def _role_members(self, role_id: Any) -> Iterator[str]:
        offset = 0
        while True:
            result = self._role_call("/topapi/role/simplelist", {"role_id": role_id, "offset": offset,
                                                                 "size": ROLE_MEMBER_PAGE})
            for user in result.get("list") or []:
                if user.get("userid"):
                    yield user["userid"]
            if not result.get("hasMore") or result.get("nextCursor") is None:
                return
            offset = int(result["nextCursor"])

    def _role_call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            return self.oapi(path, body).get("result") or {}
        except PlatformError as exc:
            if exc.code in DENIED_ERRORS:
                raise AccessDenied(str(exc), code=exc.code) from None
            raise

    # -- sending ------------------------------------------------------------------------------------
    def _send_card(self, message: Outgoing) -> dict[str, Any]:
        track = render.out_track_id(message.key)
        body = {
            "cardTemplateId": self.settings.card_template_id,
            "outTrackId": track,
            # Taps come back the way messages do: over the stream, or to /dingtalk/card (§2.1, §4.6).
            **({"callbackType": "STREAM"} if self.settings.stream else
               {"callbackType": "HTTP", "callbackRouteKey": CALLBACK_ROUTE_KEY}),
            "cardData": {"cardParamMap": render.card_params(message.card)},
            "userIdType": 1,
            **self._card_space(message),
        }
        answer = self.api("POST", "/v1.0/card/instances/createAndDeliver", body)
        failed = [r for r in (answer.get("result") or {}).get("deliverResults") or [] if not r.get("success", True)]
        if failed:
            # The instance exists; delivering it again under the same outTrackId would not help.
            raise PlatformError(f"dingtalk card {track} not delivered: {failed[0].get('errorMsg', '')}",
                                retryable=False)
        return {"via": "card", "out_track_id": track}

    def _card_space(self, message: Outgoing) -> dict[str, Any]:
        if message.conversation:
            return {"openSpaceId": f"dtv1.card//IM_GROUP.{message.conversation}",
                    "imGroupOpenSpaceModel": {"supportForward": False},
                    "imGroupOpenDeliverModel": {"robotCode": self.settings.robot_code}}
        return {"openSpaceId": f"dtv1.card//IM_ROBOT.{message.recipient}",
                "imRobotOpenSpaceModel": {"supportForward": False},
                "imRobotOpenDeliverModel": {"spaceType": "IM_ROBOT", "robotCode": self.settings.robot_code}}

    def _send_one(self, message: Outgoing) -> dict[str, Any]:
        answer = self.api("POST", "/v1.0/robot/oToMessages/batchSend", {
            "robotCode": self.settings.robot_code, "userIds": [message.recipient],
            "msgKey": "sampleMarkdown", "msgParam": render.msg_param(message.card)})
        if message.recipient in (answer.get("invalidStaffIdList") or []):
            raise PlatformError(f"dingtalk batchSend: {message.recipient} is not a valid user", retryable=False)
        if message.recipient in (answer.get("flowControlledStaffIdList") or []):
            raise PlatformError(f"dingtalk batchSend: {message.recipient} flow-controlled")
        return {"via": "batchSend", "process_query_key": answer.get("processQueryKey", "")}

    def _send_group(self, message: Outgoing) -> dict[str, Any]:
        answer = self.api("POST", "/v1.0/robot/groupMessages/send", {
            "robotCode": self.settings.robot_code, "openConversationId": message.conversation,
            "msgKey": "sampleMarkdown", "msgParam": render.msg_param(message.card)})
        return {"via": "groupSend", "process_query_key": answer.get("processQueryKey", "")}

    def _post_webhook(self, url: str, card: Card) -> bool:
        """True if the sessionWebhook took the message. A refusal falls back to the API; a network
        error is raised (it may have been delivered, and the outbox retry will decide)."""
        _, answer = request_json(self.http, "POST", url, json=render.webhook_body(card))
        if answer.get("errcode", 0) == 0:
            return True
        log.info("dingtalk: sessionWebhook refused (%s %s); sending through the API",
                 answer.get("errcode"), answer.get("errmsg", ""))
        return False

    def _live_webhook(self, reply: dict[str, Any]) -> str:
        """The event's sessionWebhook if it is DingTalk's and outlives the margin, else "".

        The robot signature covers the timestamp, not the body (§1.2): whoever replays a signed
        header pair within the hour may write any body. So the URL must be on the oapi host —
        Banli never posts replies to an address a caller chose.
        """
        url = str(reply.get("session_webhook") or "")
        if not url.startswith(self.settings.oapi_base.rstrip("/") + "/"):
            return ""
        expires = int(reply.get("session_webhook_expires") or 0)
        return url if expires - time.time() * 1000 > WEBHOOK_MARGIN_MS else ""

    # -- HTTP ---------------------------------------------------------------------------------------
    def api(self, method: str, path: str, json: Any = None) -> dict[str, Any]:
        """A new-style API call with the cached token; on a token error refresh once and call again."""
        try:
            return self._api_once(method, path, json)
        except TokenInvalid:
            return self._api_once(method, path, json)

    def oapi(self, path: str, json: Any = None) -> dict[str, Any]:
        """An old-style oapi POST (`?access_token=`, errcode answers); same token, same single retry."""
        try:
            return self._oapi_once(path, json)
        except TokenInvalid:
            return self._oapi_once(path, json)

    def _api_once(self, method: str, path: str, json: Any) -> dict[str, Any]:
        token = self.tokens.get()
        status, body = request_json(self.http, method, self.settings.api_base + path,
                                    headers={TOKEN_HEADER: token}, json=json)
        if 200 <= status < 300:
            return body
        code = str(body.get("code", ""))
        if status == 401 or code == "InvalidAuthentication":
            self.tokens.invalidate(token)
            raise TokenInvalid(f"dingtalk {path}: token refused ({status} {code})")
        retryable = status == 429 or status >= 500 or any(part in code for part in RETRYABLE_CODES)
        error = PlatformError(f"dingtalk {path}: HTTP {status} {code} {body.get('message', '')}".rstrip(),
                              retryable=retryable)
        error.code = code
        raise error

    def _oapi_once(self, path: str, json: Any, *, params: dict[str, str] | None = None,
                   files: dict | None = None) -> dict[str, Any]:
        token = self.tokens.get()
        extra = {"files": files} if files else {"json": json}
        status, body = request_json(self.http, "POST", self.settings.oapi_base + path,
                                    params={**(params or {}), "access_token": token}, **extra)
        errcode = body.get("errcode", 0)
        if status >= 500 or status == 429 or "punish" in body:  # "punish": the per-IP ban page (§4.8)
            raise PlatformError(f"dingtalk {path}: HTTP {status} {errcode}")
        return check_errcode(body, where=f"dingtalk {path}", token=token, tokens=self.tokens,
                             token_errors=OAPI_TOKEN_ERRORS, final_errors=OAPI_FINAL_ERRORS)

    def _fetch_token(self) -> tuple[str, int]:
        status, body = request_json(self.http, "POST", self.settings.api_base + "/v1.0/oauth2/accessToken",
                                    json={"appKey": self.settings.app_key, "appSecret": self.settings.app_secret})
        if status != 200 or not body.get("accessToken"):
            raise PlatformError(f"dingtalk accessToken: HTTP {status} {body.get('code', '')}",
                                retryable=status >= 500 or status == 429)
        return body["accessToken"], int(body.get("expireIn", 7200))


def _entry(user: dict[str, Any]) -> DirectoryEntry:
    """topapi/v2/user/get or a user/list row → DirectoryEntry. `active` there means "has activated
    DingTalk", not "still employed": someone who left is simply not listed any more."""
    return DirectoryEntry(user_id=user.get("userid") or "", name=user.get("name") or user.get("userid") or "",
                          manager_user_id=user.get("manager_userid") or "", mobile=user.get("mobile") or "",
                          email=user.get("email") or user.get("org_email") or "", job_number=user.get("job_number") or "",
                          department_ids=tuple(str(d) for d in user.get("dept_id_list") or []))
