"""WeCom API client: send cards/text/images, update cards, read the directory, fetch and upload
media (docs/wecom.md §3, §5, §5.2).

A thin client over `requests` rather than wechatpy's WeChatClient: the latter has no template-card
send/update, no duplicate-check options and no single-flight token refresh, and every call here
needs all three. The shared TokenCache keeps one token for all processes.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable, Iterator

from redis import Redis

from banli.settings import WeComSettings
from bot.http import CountedSession, check_errcode, json_of, request_bytes, request_json
from bot.platform import AccessDenied, Outgoing, PlatformError, TokenInvalid
from bot.tokens import TokenCache
from bot.wecom import render
from cards import Card
from workflows.identity import DirectoryDepartment, DirectoryEntry, DirectoryTag

TOKEN_ERRORS = {40001, 40014, 42001}
LIST_ID_PAGE = 10_000  # user/list_id's largest page
# user/get `status`: 1 active, 2 disabled, 4 not yet activated, 5 left the company (docs/wecom.md §5.4).
GONE_STATUSES = {2, 5}
TASK_ID_EXISTS = 42014
# Answers that no retry will change: bad user, empty/oversized content, malformed card.
FINAL_ERRORS = {40003, 40058, 44004, 45002, 42045, 60111, 81013, 82001}
# media/get: an unknown or expired (3 days) media id; 40004/40005 a bad media file or type on upload.
INVALID_MEDIA = 40007
MEDIA_FINAL_ERRORS = {INVALID_MEDIA, 40004, 40005, 40006}
# Outside the app's visible range / no rights to the API (docs/wecom.md §7): tags are then not read.
DENIED_ERRORS = {60011, 48002}


class WeComClient:
    name = "wecom"

    def __init__(self, settings: WeComSettings, redis: Redis, count: Callable[[], None] | None = None) -> None:
        """`count` is told of each call to the WeCom API (shown on the queue page, bot/api_meter.py)."""
        self.settings = settings
        self.base = settings.api_base + "/cgi-bin/"
        self.http = CountedSession(count, (settings.api_base,))
        self.tokens = TokenCache(redis, f"banli:token:wecom:{settings.corp_id}:{settings.agent_id}",
                                 self._fetch_token)

    # -- Platform ---------------------------------------------------------------------------------
    def send(self, message: Outgoing) -> dict[str, Any]:
        body = render.message_body(message.card, to_user=message.recipient,
                                   agent_id=self.settings.agent_id, outbox_key=message.key)
        try:
            answer = self.call("POST", "message/send", json=body)
        except PlatformError as exc:
            if exc.code == TASK_ID_EXISTS:
                return {"task_id": body["template_card"]["task_id"], "already_sent": True}
            raise
        result = {"msgid": answer.get("msgid", "")}
        if "template_card" in body:
            result.update(task_id=body["template_card"]["task_id"],
                          response_code=answer.get("response_code", ""))
        return result

    def update_card(self, sent: dict[str, Any], card: Card) -> dict[str, Any]:
        """Replace the card for everyone who received it (`atall`); the response code is single-use.
        A card with nothing left to tap keeps its new text and gets a grey status button (render.py)."""
        body = {
            "atall": 1,
            "agentid": self.settings.agent_id,
            "response_code": sent["response_code"],
            "template_card": render.template_card(card, sent["task_id"]),
        }
        self.call("POST", "message/update_template_card", json=body)
        return {"task_id": sent["task_id"]}

    def directory_entry(self, user_id: str) -> DirectoryEntry:
        user = self.call("GET", "user/get", params={"userid": user_id})
        entry = _entry(user)
        department = ""
        if entry.department_ids:
            department = self.call("GET", "department/get", params={"id": entry.department_ids[0]}) \
                .get("department", {}).get("name", "")
        return replace(entry, user_id=user_id, department=department)

    # -- the whole directory (docs/wecom.md §5.4) --------------------------------------------------
    def directory_departments(self) -> list[DirectoryDepartment]:
        """Every department in the app's visible range: department/list without an id."""
        answer = self.call("GET", "department/list")
        return [DirectoryDepartment(dept_id=str(d["id"]), name=d.get("name") or str(d["id"]),
                                    parent_id=str(d.get("parentid") or "") if d.get("parentid") else "")
                for d in answer.get("department") or []]

    def directory_department(self, dept_id: str) -> DirectoryDepartment:
        d = self.call("GET", "department/get", params={"id": dept_id}).get("department") or {}
        return DirectoryDepartment(dept_id=str(d.get("id", dept_id)), name=d.get("name") or str(dept_id),
                                   parent_id=str(d.get("parentid") or "") if d.get("parentid") else "")

    def directory_people(self, departments: list[DirectoryDepartment]) -> Iterator[DirectoryEntry]:
        """Everyone, with details: user/list per department (someone in two departments comes twice;
        the sync keeps the first), then user/get for anyone user/list_id has and no department gave."""
        wanted = set(self._all_user_ids())
        for department in departments:
            for user in self.call("GET", "user/list", params={"department_id": department.dept_id}).get("userlist") or []:
                if user.get("userid") in wanted:
                    wanted.discard(user["userid"])
                    yield _entry(user)
        for user_id in sorted(wanted):
            yield _entry(self.call("GET", "user/get", params={"userid": user_id}))

    # -- tags → roles (docs/wecom.md §5.6) ---------------------------------------------------------
    def directory_tags(self, named: Callable[[str], bool] = lambda _: True) -> list[DirectoryTag]:
        """Every tag with its members: tag/list → taglist[{tagid, tagname}], then tag/get per tag →
        userlist[{userid, name}], partylist[dept ids]. Tags whose name `named` refuses are listed
        without members (one call saved each). AccessDenied when the app may not read them."""
        listed = self._tag_call({}, "tag/list").get("taglist") or []
        return [self.directory_tag(str(t["tagid"]), name=t.get("tagname") or "") if named(t.get("tagname") or "")
                else DirectoryTag(tag_id=str(t["tagid"]), name=t.get("tagname") or "") for t in listed]

    def directory_tag(self, tag_id: str, *, name: str = "") -> DirectoryTag:
        answer = self._tag_call({"tagid": tag_id}, "tag/get")
        return DirectoryTag(tag_id=str(tag_id), name=answer.get("tagname") or name,
                            user_ids=tuple(u["userid"] for u in answer.get("userlist") or [] if u.get("userid")),
                            dept_ids=tuple(str(d) for d in answer.get("partylist") or []))

    def _tag_call(self, params: dict, path: str) -> dict[str, Any]:
        try:
            return self.call("GET", path, params=params)
        except PlatformError as exc:
            if exc.code in DENIED_ERRORS:
                raise AccessDenied(str(exc), code=exc.code) from None
            raise

    def _all_user_ids(self) -> Iterator[str]:
        """user/list_id, page by page: `next_cursor` until it comes back empty."""
        cursor = ""
        while True:
            answer = self.call("POST", "user/list_id", json={"cursor": cursor, "limit": LIST_ID_PAGE} if cursor
                               else {"limit": LIST_ID_PAGE})
            for row in answer.get("dept_user") or []:
                yield row["userid"]
            cursor = answer.get("next_cursor") or ""
            if not cursor:
                return

    # -- media (docs/wecom.md §5.2) ----------------------------------------------------------------
    def download_media(self, media_id: str, *, max_bytes: int) -> bytes:
        """The bytes of a received image (`media/get`), at most max_bytes + 1 of them. An expired or
        unknown media id is a final PlatformError (40007); network trouble is retryable."""
        try:
            return self._download_once(media_id, max_bytes)
        except TokenInvalid:
            return self._download_once(media_id, max_bytes)

    def _download_once(self, media_id: str, max_bytes: int) -> bytes:
        token = self.tokens.get()
        status, content_type, body = request_bytes(self.http, "GET", self.base + "media/get", max_bytes=max_bytes,
                                                   params={"access_token": token, "media_id": media_id})
        # An error is a JSON errcode body (HTTP 200), not the file: never keep it as a photo.
        answer = json_of(body) if ("json" in content_type or "text" in content_type or not body) else None
        if answer is not None:
            check_errcode(answer, where="wecom media/get", token=token, tokens=self.tokens,
                          token_errors=TOKEN_ERRORS, final_errors=MEDIA_FINAL_ERRORS)
            raise PlatformError(f"wecom media/get: HTTP {status}, JSON instead of a file")
        if status != 200:
            raise PlatformError(f"wecom media/get: HTTP {status}", retryable=status >= 500 or status == 429)
        return body

    def upload_image(self, data: bytes, *, mime: str, filename: str) -> str:
        """A temporary media id (3 days) for these bytes: `media/upload?type=image` (JPG/PNG, ≤10 MB)."""
        answer = self.call("POST", "media/upload", params={"type": "image"},
                           files={"media": (filename, data, mime)})
        if not answer.get("media_id"):
            raise PlatformError("wecom media/upload: no media_id in the answer")
        return answer["media_id"]

    def send_image(self, recipient: str, data: bytes, *, mime: str, filename: str) -> dict[str, Any]:
        """An image message to one person: upload, then `message/send` msgtype image. A retry
        uploads again (a media id is cheap and the first upload may be what failed)."""
        media_id = self.upload_image(data, mime=mime, filename=filename)
        answer = self.call("POST", "message/send", json={
            "touser": recipient, "msgtype": "image", "agentid": self.settings.agent_id,
            "image": {"media_id": media_id}})
        return {"msgid": answer.get("msgid", ""), "media_id": media_id}

    # -- HTTP ------------------------------------------------------------------------------------
    def call(self, method: str, path: str, *, params: dict | None = None, json: Any = None,
             files: dict | None = None) -> dict[str, Any]:
        """Call with the cached token; on a token error refresh once and call again."""
        try:
            return self._call_once(method, path, params, json, files)
        except TokenInvalid:
            return self._call_once(method, path, params, json, files)

    def _call_once(self, method: str, path: str, params: dict | None, json: Any,
                   files: dict | None = None) -> dict[str, Any]:
        token = self.tokens.get()
        extra = {"files": files} if files else {}
        _, body = request_json(self.http, method, self.base + path,
                               params={**(params or {}), "access_token": token}, json=json, **extra)
        return check_errcode(body, where=f"wecom {path}", token=token, tokens=self.tokens,
                             token_errors=TOKEN_ERRORS,
                             final_errors=FINAL_ERRORS | MEDIA_FINAL_ERRORS | {TASK_ID_EXISTS})

    def _fetch_token(self) -> tuple[str, int]:
        _, body = request_json(self.http, "GET", self.base + "gettoken",
                               params={"corpid": self.settings.corp_id, "corpsecret": self.settings.secret})
        if body.get("errcode", 0) != 0 or not body.get("access_token"):
            raise PlatformError(f"wecom gettoken: {body.get('errcode')} {body.get('errmsg', '')}",
                                retryable=body.get("errcode") not in (40013, 40001, 40091))
        return body["access_token"], int(body.get("expires_in", 7200))


def _entry(user: dict[str, Any]) -> DirectoryEntry:
    """user/get or a user/list row → DirectoryEntry (the main department first)."""
    departments = [str(d) for d in user.get("department") or []]
    main = str(user.get("main_department") or "")
    if main:
        departments = [main] + [d for d in departments if d != main]
    leaders = user.get("direct_leader") or []
    return DirectoryEntry(user_id=user.get("userid") or "", name=user.get("name") or user.get("userid") or "",
                          manager_user_id=leaders[0] if leaders else "", mobile=user.get("mobile") or "",
                          email=user.get("email") or user.get("biz_mail") or "", department_ids=tuple(departments),
                          active=int(user.get("status") or 1) not in GONE_STATUSES)
