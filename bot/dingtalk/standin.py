"""A local stand-in for DingTalk: the APIs Banli calls (token, robot sends, cards, directory, the
sessionWebhook) and a peer that signs callbacks the way DingTalk does — with its own HMAC code, not
Banli's, so the tests check Banli against a second implementation (docs/dingtalk.md §1.2–1.4,
§4.1–4.6, §5). Tests and the demo point DINGTALK_API_BASE and DINGTALK_OAPI_BASE at it.

Error codes follow the reference where it names them; the sessionWebhook's refusal code is a guess.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from typing import Any

from flask import Flask, Response, jsonify, request

ROOT_DEPT, ROOT_NAME = 1, "全公司"
USER_PAGE_MAX = 100  # topapi/v2/user/list `size` (docs/dingtalk.md §5.2)
SAMPLE_PARAMS = {"sampleText": ("content",), "sampleMarkdown": ("title", "text"), "sampleImageMsg": ("photoURL",)}
BATCH_LIMIT = 20  # userIds per batchSend (§4.2)


class DingTalkStandin:
    def __init__(self, *, app_key: str, app_secret: str, robot_code: str,
                 users: dict[str, dict[str, Any]] | None = None,
                 departments: dict[int, str] | None = None, parents: dict[int, int] | None = None) -> None:
        self.app_key, self.app_secret, self.robot_code = app_key, app_secret, robot_code
        self.users = {uid: dict(fields) for uid, fields in (users or {}).items()}  # a test may change its own
        self.departments = {ROOT_DEPT: ROOT_NAME, **(departments or {})}  # dept 1 is the company itself
        self.parents = dict(parents or {})  # dept → parent; by default every department is under the root
        self._dept_index: dict[int, list[str]] | None = None
        self.list_calls: dict[str, int] = {}
        self.base_url: str | None = None  # where this stand-in is served; set by whoever starts it
        self.lock = threading.Lock()
        self.tokens: set[str] = set()
        self.token_fetches = 0
        self.sent: list[dict[str, Any]] = []  # every message delivered, whichever way it came
        self.cards: dict[str, dict[str, Any]] = {}  # card instances by outTrackId
        self.card_updates: list[dict[str, Any]] = []
        self.card_callbacks: dict[str, dict[str, Any]] = {}  # callbackRouteKey -> {callbackUrl, apiSecret}
        self.sessions: dict[str, tuple[str, int]] = {}  # sessionWebhook id -> (user or group, expires ms)
        self.fail_next: list[tuple[int, dict[str, Any]]] = []  # canned (status, json) for the next sends
        self.refused: list[str] = []  # why requests were refused, for tests that expect none
        # Failure switches (banli doctor's tests). card_templates: the published templates, None = any.
        self.directory_denied = False
        # Role groups (topapi/role/list, simplelist): group id → {"name", "roles": {role id: {"name",
        # "users": [userid…]}}}; roles_denied: the app lacks the permission (60011).
        self.role_groups: dict[int, dict[str, Any]] = {}
        self.roles_denied = False
        self.card_templates: set[str] | None = None
        self.gateway_refused = False
        self.gateway = None  # a Stream gateway stand-in, when a test plugs one in
        self.undelivered: dict[str, dict[str, Any]] = {}  # card instances created without delivery
        # Files people sent the robot, by downloadCode; the short-lived URLs they were given; media
        # Banli uploaded (oapi media/upload), by media_id (docs/dingtalk.md §4.9).
        self.files: dict[str, tuple[bytes, str]] = {}
        self.download_urls: dict[str, str] = {}
        self.uploads: dict[str, tuple[bytes, str]] = {}
        self.fail_downloads: list[tuple[int, dict[str, Any]]] = []  # canned (status, json) for the next downloads
        self.app = self._build()

    # -- test controls --------------------------------------------------------------------------
    def expire_tokens(self) -> None:
        with self.lock:
            self.tokens.clear()

    def messages_to(self, target: str) -> list[dict[str, Any]]:
        """Everything delivered to a user (one-to-one) or a group conversation, in order."""
        with self.lock:
            return [m for m in self.sent if m["to"] == target]

    def add_file(self, data: bytes, content_type: str = "image/jpeg", download_code: str | None = None) -> str:
        """A picture a user sent the robot: its downloadCode, as the message carries it."""
        code = download_code or "dl" + secrets.token_hex(16)
        with self.lock:
            self.files[code] = (data, content_type)
        return code

    def images_to(self, user: str) -> list[bytes]:
        """The bytes of every image message delivered to `user`, in order."""
        return [m["photo"] for m in self.messages_to(user) if m.get("msg_key") == "sampleImageMsg"]

    def session_webhook(self, target: str, *, ttl_ms: int = 5_400_000) -> tuple[str, int]:
        """A sessionWebhook URL on this stand-in for a user or group, and its expiry (ms epoch).
        DingTalk's last ~90 minutes (§1.3); a negative ttl makes one already expired."""
        if not self.base_url:
            raise RuntimeError("set DingTalkStandin.base_url to the URL it is served on first")
        session = secrets.token_hex(12)
        expires = int(time.time() * 1000) + ttl_ms
        with self.lock:
            self.sessions[session] = (target, expires)
        return f"{self.base_url}/robot/sendBySession?session={session}", expires

    # -- the directory, as a test or the demo changes it --------------------------------------------
    def add_user(self, user_id: str, **fields: Any) -> None:
        with self.lock:
            self.users[user_id] = {"dept_id_list": [ROOT_DEPT], **fields}
            self._dept_index = None

    def modify_user(self, user_id: str, **fields: Any) -> None:
        with self.lock:
            self.users[user_id].update(fields)
            self._dept_index = None

    def remove_user(self, user_id: str) -> None:
        with self.lock:
            self.users.pop(user_id, None)
            self._dept_index = None

    def parent_of(self, dept_id: int) -> int:
        return self.parents.get(dept_id, 0 if dept_id == ROOT_DEPT else ROOT_DEPT)

    def _members(self, dept_id: int) -> list[str]:
        with self.lock:
            if self._dept_index is None:
                index: dict[int, list[str]] = {}
                for uid in sorted(self.users):
                    for d in self.users[uid].get("dept_id_list") or []:
                        index.setdefault(int(d), []).append(uid)
                self._dept_index = index
            return list(self._dept_index.get(dept_id, []))

    def _count(self, api: str) -> None:
        with self.lock:
            self.list_calls[api] = self.list_calls.get(api, 0) + 1

    # -- the API --------------------------------------------------------------------------------
    def _build(self) -> Flask:
        app = Flask("dingtalk-standin")
        app.add_url_rule("/topapi/v2/department/listsub", view_func=self._department_listsub, methods=["POST"])
        app.add_url_rule("/topapi/v2/user/list", view_func=self._user_list, methods=["POST"])
        app.add_url_rule("/topapi/role/list", view_func=self._role_list, methods=["POST"])
        app.add_url_rule("/topapi/role/simplelist", view_func=self._role_simplelist, methods=["POST"])
        app.add_url_rule("/topapi/user/listid", view_func=self._user_listid, methods=["POST"])
        app.add_url_rule("/v1.0/oauth2/accessToken", view_func=self._access_token, methods=["POST"])
        app.add_url_rule("/v1.0/robot/oToMessages/batchSend", view_func=self._batch_send, methods=["POST"])
        app.add_url_rule("/v1.0/robot/groupMessages/send", view_func=self._group_send, methods=["POST"])
        app.add_url_rule("/v1.0/card/instances/createAndDeliver", view_func=self._create_and_deliver,
                         methods=["POST"])
        app.add_url_rule("/v1.0/card/instances", view_func=self._update_card, methods=["PUT"])
        app.add_url_rule("/v1.0/card/callbacks/register", view_func=self._register_callback, methods=["POST"])
        app.add_url_rule("/topapi/v2/user/get", view_func=self._user_get, methods=["POST"])
        app.add_url_rule("/topapi/v2/department/get", view_func=self._department_get, methods=["POST"])
        app.add_url_rule("/robot/sendBySession", view_func=self._send_by_session, methods=["POST"])
        app.add_url_rule("/v1.0/robot/oToMessages/readStatus", view_func=self._read_status, methods=["GET"])
        app.add_url_rule("/v1.0/card/instances", view_func=self._create_card, methods=["POST"])
        app.add_url_rule("/v1.0/gateway/connections/open", view_func=self._open_connection, methods=["POST"])
        app.add_url_rule("/v1.0/robot/messageFiles/download", view_func=self._file_download_url, methods=["POST"])
        app.add_url_rule("/files/<ticket>", view_func=self._file_bytes, methods=["GET"])
        app.add_url_rule("/media/upload", view_func=self._media_upload, methods=["POST"])
        return app

    def _refuse(self, status: int, code: str, message: str):
        with self.lock:
            self.refused.append(f"{request.path}: {status} {code} {message}")
        return jsonify(code=code, message=message, requestid=secrets.token_hex(8)), status

    def _oapi_error(self, errcode: int, errmsg: str):
        with self.lock:
            self.refused.append(f"{request.path}: {errcode} {errmsg}")
        return jsonify(errcode=errcode, errmsg=errmsg, request_id=secrets.token_hex(8))

    def _token_ok(self) -> bool:
        with self.lock:
            return request.headers.get("x-acs-dingtalk-access-token", "") in self.tokens

    def _canned_failure(self):
        """The next queued failure, if a test queued one."""
        with self.lock:
            if not self.fail_next:
                return None
            status, body = self.fail_next.pop(0)
            self.refused.append(f"{request.path}: canned {status} {body}")
        return jsonify(body), status

    def _record(self, **message: Any) -> None:
        with self.lock:
            self.sent.append(message)

    def _access_token(self):
        body = request.get_json(force=True, silent=True) or {}
        if body.get("appKey") != self.app_key or body.get("appSecret") != self.app_secret:
            return self._refuse(400, "invalidClientIdOrSecret", "无效的clientId或者clientSecret")
        token = secrets.token_hex(16)
        with self.lock:
            self.tokens.add(token)
            self.token_fetches += 1
        return jsonify(accessToken=token, expireIn=7200)

    def _robot_message(self, body: dict[str, Any]):
        """(msgKey, decoded msgParam) or an error answer; msgParam must be a JSON *string* (§4.2)."""
        if body.get("robotCode") != self.robot_code:
            return None, self._refuse(400, "invalidParameter.robotCode", "robotCode 不正确")
        param = body.get("msgParam")
        if not isinstance(param, str):
            return None, self._refuse(400, "invalidParameter.msgParam", "msgParam 必须是字符串")
        try:
            decoded = json.loads(param)
        except ValueError:
            return None, self._refuse(400, "invalidParameter.msgParam", "msgParam 不是 JSON")
        key = body.get("msgKey")
        if key not in SAMPLE_PARAMS or not isinstance(decoded, dict) or \
                any(not isinstance(decoded.get(f), str) for f in SAMPLE_PARAMS[key]):
            return None, self._refuse(400, "invalidParameter.msgKey", f"msgKey/msgParam 不匹配: {key}")
        return (key, decoded), None

    def _robot_request(self):
        """(body, (msgKey, msgParam), None) for a well-formed authorised robot send, else the refusal."""
        if not self._token_ok():
            return None, None, self._refuse(401, "InvalidAuthentication", "不合法的access_token")
        body = request.get_json(force=True, silent=True) or {}
        message, error = self._robot_message(body)
        return body, message, error

    def _batch_send(self):
        body, message, error = self._robot_request()
        if error:
            return error
        users = body.get("userIds")
        if not isinstance(users, list) or not 1 <= len(users) <= BATCH_LIMIT:
            return self._refuse(400, "invalidParameter.userIds", "userIds 数量不正确")
        canned = self._canned_failure()
        if canned:
            return canned
        key, param = message
        photo = None
        if key == "sampleImageMsg":
            with self.lock:
                photo = self.uploads.get(param["photoURL"])
            if photo is None and not param["photoURL"].startswith(("http://", "https://")):
                return self._refuse(400, "invalidParameter.photoURL", "photoURL 不是可用的图片地址或 media_id")
        for user in users:
            if user in self.users:
                extra = {"photo": photo[0] if photo else None, "photo_url": param["photoURL"]} if key == "sampleImageMsg" else {}
                self._record(via="batchSend", to=user, msg_key=key, title=param.get("title", ""),
                             text=param.get("text", param.get("content", "")), **extra)
        return jsonify(processQueryKey=secrets.token_hex(10), flowControlledStaffIdList=[],
                       invalidStaffIdList=[u for u in users if u not in self.users])

    def _group_send(self):
        body, message, error = self._robot_request()
        if error:
            return error
        if not body.get("openConversationId"):
            return self._refuse(400, "invalidParameter.openConversationId", "缺少 openConversationId")
        canned = self._canned_failure()
        if canned:
            return canned
        key, param = message
        self._record(via="groupSend", to=body["openConversationId"], msg_key=key, title=param.get("title", ""),
                     text=param.get("text", param.get("content", "")))
        return jsonify(processQueryKey=secrets.token_hex(10))

    def _create_and_deliver(self):
        if not self._token_ok():
            return self._refuse(401, "InvalidAuthentication", "不合法的access_token")
        body = request.get_json(force=True, silent=True) or {}
        track = body.get("outTrackId")
        if not body.get("cardTemplateId") or not isinstance(track, str) or not 0 < len(track) <= 100:
            return self._refuse(400, "invalidParameter", "cardTemplateId / outTrackId 不正确")
        if not self._template_known(body["cardTemplateId"]):
            return self._unknown_template(body["cardTemplateId"])
        params = (body.get("cardData") or {}).get("cardParamMap")
        if not _all_strings(params):
            return self._refuse(400, "invalidParameter.cardParamMap", "cardParamMap 的值必须是字符串")
        spaces, problem = self._card_spaces(body)
        if problem:
            return self._refuse(400, "invalidParameter.openSpaceId", problem)
        canned = self._canned_failure()
        if canned:
            return canned
        results = []
        with self.lock:
            fresh = track not in self.cards  # an outTrackId names one instance: a repeat is not a second card
            if fresh:
                self.cards[track] = {"template": body["cardTemplateId"], "card_data": dict(params),
                                     "route": body.get("callbackRouteKey", "")}
        for space_type, space_id in spaces:
            ok = space_type == "IM_GROUP" or space_id in self.users
            if ok and fresh:
                self._record(via="card", to=space_id, space=space_type, out_track_id=track,
                             template=body["cardTemplateId"], card_data=dict(params),
                             callback_type=body.get("callbackType"), route=body.get("callbackRouteKey"))
            results.append({"spaceType": space_type, "spaceId": space_id, "success": ok,
                            "carrierId": secrets.token_hex(6), "errorMsg": None if ok else "用户不存在"})
        return jsonify(success=True, result={"outTrackId": track, "deliverResults": results})

    def _card_spaces(self, body: dict[str, Any]) -> tuple[list[tuple[str, str]], str]:
        """[(space type, id)] from openSpaceId, checking each type has its space and deliver models."""
        open_space = body.get("openSpaceId") or ""
        if not open_space.startswith("dtv1.card//"):
            return [], "openSpaceId 必须以 dtv1.card// 开头"
        spaces = []
        for part in open_space[len("dtv1.card//"):].split(";"):
            space_type, _, space_id = part.partition(".")
            if space_type not in ("IM_ROBOT", "IM_GROUP") or not space_id:
                return [], f"不支持的空间 {part}"
            model = "imRobot" if space_type == "IM_ROBOT" else "imGroup"
            deliver = body.get(f"{model}OpenDeliverModel") or {}
            if f"{model}OpenSpaceModel" not in body or deliver.get("robotCode") != self.robot_code:
                return [], f"{space_type} 缺少 {model}OpenSpaceModel / {model}OpenDeliverModel.robotCode"
            if space_type == "IM_ROBOT" and deliver.get("spaceType") != "IM_ROBOT":
                return [], "imRobotOpenDeliverModel.spaceType 必须是 IM_ROBOT"
            spaces.append((space_type, space_id))
        return spaces, ""

    def _update_card(self):
        if not self._token_ok():
            return self._refuse(401, "InvalidAuthentication", "不合法的access_token")
        body = request.get_json(force=True, silent=True) or {}
        track = body.get("outTrackId")
        params = (body.get("cardData") or {}).get("cardParamMap")
        if not _all_strings(params):
            return self._refuse(400, "invalidParameter.cardParamMap", "cardParamMap 的值必须是字符串")
        with self.lock:
            card = self.cards.get(track)
            if card is not None:
                by_key = (body.get("cardUpdateOptions") or {}).get("updateCardDataByKey")
                card["card_data"] = {**card["card_data"], **params} if by_key else dict(params)
                self.card_updates.append({"out_track_id": track, "card_data": dict(params), "body": body})
        if card is None:
            return self._refuse(400, "cardInstance.notExist", f"卡片实例不存在: {track}")
        return jsonify(success=True, result=True)

    def _register_callback(self):
        """POST /v1.0/card/callbacks/register (§4.6): one URL per route key."""
        if not self._token_ok():
            return self._refuse(401, "InvalidAuthentication", "不合法的access_token")
        body = request.get_json(force=True, silent=True) or {}
        if not body.get("callbackRouteKey") or not body.get("callbackUrl"):
            return self._refuse(400, "invalidParameter", "callbackRouteKey 和 callbackUrl 必填")
        with self.lock:
            self.card_callbacks[body["callbackRouteKey"]] = {"callbackUrl": body["callbackUrl"],
                                                             "apiSecret": body.get("apiSecret", "")}
        return jsonify(success=True, result={"callbackUrl": body["callbackUrl"],
                                             "apiSecret": body.get("apiSecret", "")})

    def _send_by_session(self):
        """A sessionWebhook: no token, just the session id in the URL (§1.4)."""
        with self.lock:
            target, expires = self.sessions.get(request.args.get("session", ""), ("", 0))
        if not target or expires < time.time() * 1000:
            return self._oapi_error(300001, "session 不存在或已过期")
        body = request.get_json(force=True, silent=True) or {}
        canned = self._canned_failure()
        if canned:
            return canned
        if body.get("msgtype") == "markdown":
            md = body.get("markdown") or {}
            self._record(via="webhook", to=target, msg_key="markdown", title=md.get("title", ""),
                         text=md.get("text", ""))
        elif body.get("msgtype") == "text":
            self._record(via="webhook", to=target, msg_key="text", title="",
                         text=(body.get("text") or {}).get("content", ""))
        else:
            return self._oapi_error(40035, f"不支持的 msgtype {body.get('msgtype')}")
        return jsonify(errcode=0, errmsg="ok")

    def _file_download_url(self):
        """POST /v1.0/robot/messageFiles/download: a downloadCode → a short-lived downloadUrl.
        The error code for an unknown code is a guess (the docs name none)."""
        if not self._token_ok():
            return self._refuse(401, "InvalidAuthentication", "不合法的access_token")
        body = request.get_json(force=True, silent=True) or {}
        if body.get("robotCode") != self.robot_code:
            return self._refuse(400, "invalidParameter.robotCode", "robotCode 不正确")
        code = body.get("downloadCode")
        with self.lock:
            known = code in self.files
            ticket = secrets.token_hex(12)
            if known:
                self.download_urls[ticket] = code
        if not known:
            return self._refuse(400, "invalidParameter.downloadCode", "downloadCode 无效或已过期")
        with self.lock:
            canned = self.fail_downloads.pop(0) if self.fail_downloads else None
        if canned is not None:
            return jsonify(canned[1]), canned[0]
        return jsonify(downloadUrl=f"{self.base_url}/files/{ticket}")

    def _file_bytes(self, ticket: str):
        with self.lock:
            found = self.files.get(self.download_urls.get(ticket, ""))
        if found is None:
            return Response("<Error><Code>AccessDenied</Code></Error>", status=403, content_type="application/xml")
        return Response(found[0], content_type=found[1])

    def _media_upload(self):
        """oapi POST /media/upload?access_token=&type=image, multipart field `media` → media_id."""
        if not self._oapi_token_ok():
            return self._oapi_error(40014, "不合法的access_token")
        upload = request.files.get("media")
        if request.args.get("type") not in ("image", "voice", "video", "file") or upload is None:
            return self._oapi_error(40035, "缺少参数 type 或 media")
        data = upload.read()
        media_id = "@lA" + base64.urlsafe_b64encode(secrets.token_bytes(18)).decode()
        with self.lock:
            self.uploads[media_id] = (data, upload.mimetype or "")
        return jsonify(errcode=0, errmsg="ok", media_id=media_id, created_at=int(time.time() * 1000),
                       type=request.args["type"])

    def _oapi_token_ok(self) -> bool:
        with self.lock:
            return request.args.get("access_token", "") in self.tokens

    def _directory_refusal(self):
        """None, or DingTalk's answer for a directory read without the contacts permission."""
        if not self._oapi_token_ok():
            return self._oapi_error(40014, "不合法的access_token")
        if self.directory_denied:
            return self._oapi_error(60011, "没有调用该接口的权限，接口权限申请参考："
                                           "https://open.dingtalk.com/document/orgapp-server/add-api-permission")
        return None

    def _user_get(self):
        refusal = self._directory_refusal()
        if refusal:
            return refusal
        user_id = (request.get_json(force=True, silent=True) or {}).get("userid", "")
        user = self.users.get(user_id)
        if user is None:
            return self._oapi_error(60121, "找不到该用户")
        return jsonify(errcode=0, errmsg="ok", result={"userid": user_id, **user}, request_id=secrets.token_hex(8))

    def _department_get(self):
        refusal = self._directory_refusal()
        if refusal:
            return refusal
        dept_id = (request.get_json(force=True, silent=True) or {}).get("dept_id")
        if dept_id not in self.departments:
            return self._oapi_error(60003, "部门不存在")
        return jsonify(errcode=0, errmsg="ok", result={"dept_id": dept_id, "name": self.departments[dept_id],
                                                       "parent_id": self.parent_of(dept_id)},
                       request_id=secrets.token_hex(8))

    def _department_listsub(self):
        """Direct children only (§5.2)."""
        if not self._oapi_token_ok():
            return self._oapi_error(40014, "不合法的access_token")
        refusal = self._directory_refusal()
        if refusal:
            return refusal
        dept_id = (request.get_json(force=True, silent=True) or {}).get("dept_id", ROOT_DEPT)
        if dept_id not in self.departments:
            return self._oapi_error(60003, "部门不存在")
        self._count("department/listsub")
        children = [{"dept_id": d, "name": name, "parent_id": dept_id, "create_dept_group": False,
                     "auto_add_user": False}
                    for d, name in sorted(self.departments.items()) if d != ROOT_DEPT and self.parent_of(d) == dept_id]
        return jsonify(errcode=0, errmsg="ok", result=children, request_id=secrets.token_hex(8))

    def _user_list(self):
        """One department's users with details, `size` ≤ 100 a page, `next_cursor` while `has_more`."""
        if not self._oapi_token_ok():
            return self._oapi_error(40014, "不合法的access_token")
        refusal = self._directory_refusal()
        if refusal:
            return refusal
        body = request.get_json(force=True, silent=True) or {}
        dept_id, cursor, size = body.get("dept_id"), int(body.get("cursor") or 0), int(body.get("size") or 0)
        if dept_id not in self.departments:
            return self._oapi_error(60003, "部门不存在")
        if not 1 <= size <= USER_PAGE_MAX:
            return self._oapi_error(40035, "size 不合法")
        self._count("user/list")
        members = self._members(dept_id)
        page = [{"userid": uid, "active": True, **self.users[uid]} for uid in members[cursor:cursor + size]
                if uid in self.users]
        more = cursor + size < len(members)
        result: dict[str, Any] = {"has_more": more, "list": page}
        if more:
            result["next_cursor"] = cursor + size
        return jsonify(errcode=0, errmsg="ok", result=result, request_id=secrets.token_hex(8))

    def _role_refusal(self):
        if not self._oapi_token_ok():
            return self._oapi_error(40014, "不合法的access_token")
        if self.roles_denied:
            return self._oapi_error(60011, "没有调用该接口的权限，接口权限申请参考："
                                           "https://open.dingtalk.com/document/orgapp-server/add-api-permission")
        return None

    def _role_list(self):
        """Role groups with their roles, `size` ≤ 200 a page by `offset`, `hasMore` (docs/dingtalk.md §5.4)."""
        refusal = self._role_refusal()
        if refusal:
            return refusal
        body = request.get_json(force=True, silent=True) or {}
        offset, size = int(body.get("offset") or 0), int(body.get("size") or 20)
        if not 1 <= size <= 200:
            return self._oapi_error(40035, "size 不合法")
        self._count("role/list")
        groups = [{"groupId": g, "name": group["name"],
                   "roles": [{"id": r, "name": role["name"]} for r, role in sorted(group["roles"].items())]}
                  for g, group in sorted(self.role_groups.items())]
        return jsonify(errcode=0, errmsg="ok", result={"hasMore": offset + size < len(groups),
                                                       "list": groups[offset:offset + size]},
                       request_id=secrets.token_hex(8))

    def _role_simplelist(self):
        """One role's members, `size` ≤ 50 a page; `nextCursor` is the next `offset` while `hasMore`."""
        refusal = self._role_refusal()
        if refusal:
            return refusal
        body = request.get_json(force=True, silent=True) or {}
        role_id, offset, size = body.get("role_id"), int(body.get("offset") or 0), int(body.get("size") or 20)
        role = next((g["roles"][r] for g in self.role_groups.values() for r in g["roles"] if str(r) == str(role_id)),
                    None)
        if role is None:
            return self._oapi_error(40068, "角色不存在")
        if not 1 <= size <= 50:
            return self._oapi_error(40035, "size 不合法")
        self._count("role/simplelist")
        members = [u for u in role.get("users", []) if u in self.users]
        page = [{"userid": u, "name": self.users[u].get("name", "")} for u in members[offset:offset + size]]
        more = offset + size < len(members)
        result: dict[str, Any] = {"hasMore": more, "list": page}
        if more:
            result["nextCursor"] = offset + size
        return jsonify(errcode=0, errmsg="ok", result=result, request_id=secrets.token_hex(8))

    def _user_listid(self):
        if not self._oapi_token_ok():
            return self._oapi_error(40014, "不合法的access_token")
        dept_id = (request.get_json(force=True, silent=True) or {}).get("dept_id")
        if dept_id not in self.departments:
            return self._oapi_error(60003, "部门不存在")
        return jsonify(errcode=0, errmsg="ok", result={"userid_list": self._members(dept_id)},
                       request_id=secrets.token_hex(8))

    def _read_status(self):
        """GET /v1.0/robot/oToMessages/readStatus: a foreign robotCode is refused before the key is
        looked up; the stand-in keeps no read status, so every key is unknown (code is a guess)."""
        if not self._token_ok():
            return self._refuse(401, "InvalidAuthentication", "不合法的access_token")
        if request.args.get("robotCode") != self.robot_code:
            return self._refuse(400, "invalidParameter.robotCode.notExsit", "机器人不存在")
        return self._refuse(400, "invalidParameter.processQueryKey", "processQueryKey 不存在")

    def _template_known(self, template: str) -> bool:
        return self.card_templates is None or template in self.card_templates

    def _unknown_template(self, template: str):
        # DingTalk's code for an unknown template is undocumented; this one is the stand-in's own.
        return self._refuse(400, "invalidParameter.cardTemplateId", f"卡片模板不存在: {template}")

    def _create_card(self):
        """POST /v1.0/card/instances: create an instance without delivering it (§4.6 two-step create)."""
        if not self._token_ok():
            return self._refuse(401, "InvalidAuthentication", "不合法的access_token")
        body = request.get_json(force=True, silent=True) or {}
        track = body.get("outTrackId")
        if not body.get("cardTemplateId") or not isinstance(track, str) or not 0 < len(track) <= 100:
            return self._refuse(400, "invalidParameter", "cardTemplateId / outTrackId 不正确")
        if not self._template_known(body["cardTemplateId"]):
            return self._unknown_template(body["cardTemplateId"])
        with self.lock:
            self.undelivered[track] = body
        return jsonify(success=True, result=track)

    def _open_connection(self):
        """POST /v1.0/gateway/connections/open (§2.1): an endpoint and a one-use ticket — from a plugged-in
        gateway stand-in (`self.gateway`, the Stream tests), else a ticket nobody will use (banli doctor
        only asks). A refusal's real code is undocumented; `gateway_refused` answers like a wrong secret."""
        body = request.get_json(force=True, silent=True) or {}
        if self.gateway_refused or body.get("clientId") != self.app_key or body.get("clientSecret") != self.app_secret:
            return self._refuse(400, "invalidClientIdOrSecret", "无效的clientId或者clientSecret")
        if self.gateway is not None:
            status, answer = self.gateway.open(body)
            return jsonify(answer), status
        host = (self.base_url or "http://127.0.0.1").replace("http", "ws", 1)
        return jsonify(endpoint=f"{host}/connect", ticket=secrets.token_hex(16))


def _all_strings(params: Any) -> bool:
    return isinstance(params, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in params.items())


class DingTalkPeer:
    """Builds robot messages and card callbacks as DingTalk sends them: (headers, body bytes)."""

    def __init__(self, *, app_secret: str, robot_code: str, standin: DingTalkStandin | None = None,
                 corp_id: str = "dingcorptest") -> None:
        self.app_secret, self.robot_code, self.standin, self.corp_id = app_secret, robot_code, standin, corp_id
        self._msg_no = 0

    # -- signing (its own HMAC, independent of bot/dingtalk/verify.py) ----------------------------
    def robot_headers(self, timestamp_ms: int | None = None) -> dict[str, str]:
        ts = str(timestamp_ms if timestamp_ms is not None else int(time.time() * 1000))
        mac = hmac.new(self.app_secret.encode("utf-8"), (ts + "\n" + self.app_secret).encode("utf-8"),
                       hashlib.sha256)
        return {"Content-Type": "application/json; charset=utf-8", "timestamp": ts,
                "sign": base64.b64encode(mac.digest()).decode("ascii")}

    def card_headers(self, timestamp_ms: int | None = None) -> dict[str, str]:
        ts = str(timestamp_ms if timestamp_ms is not None else int(time.time() * 1000))
        mac = hmac.new(self.app_secret.encode("utf-8"), ts.encode("utf-8"), hashlib.sha256)
        return {"Content-Type": "application/json", "x-ddpaas-signature-timestamp": ts,
                "x-ddpaas-signature": base64.b64encode(mac.digest()).decode("ascii")}

    def next_msg_id(self) -> str:
        self._msg_no += 1
        # Real msgIds are base64: mixed case, sometimes with "/" and "+" (e.g. msgVYFdXwPB6sC5/y1ZVIj3mg==).
        return f"msg{base64.b64encode(secrets.token_bytes(9)).decode()}{self._msg_no}=="

    # -- robot messages (§1.3) --------------------------------------------------------------------
    def message(self, sender: str, msgtype: str, fields: dict[str, Any], *, conversation_type: str = "1",
                conversation_id: str | None = None, msg_id: str | None = None, timestamp_ms: int | None = None,
                with_webhook: bool = True, webhook_ttl_ms: int = 5_400_000) -> tuple[dict[str, str], bytes]:
        group = conversation_type == "2"
        conversation = conversation_id or ("cidGroupTest==" if group else f"cidOto{sender}==")
        body: dict[str, Any] = {
            "msgtype": msgtype, **fields,
            "msgId": msg_id or self.next_msg_id(),
            "createAt": int(time.time() * 1000),
            "conversationType": conversation_type,
            "conversationId": conversation,
            "senderId": f"$:LWCP_v1:${secrets.token_hex(8)}",
            "senderNick": sender,
            "senderCorpId": self.corp_id,
            "chatbotCorpId": self.corp_id,
            "chatbotUserId": "$:LWCP_v1:$bot",
            "robotCode": self.robot_code,
            "isInAtList": True,
            "isAdmin": False,
        }
        if sender:  # external users have none
            body["senderStaffId"] = sender
        if group:
            body["conversationTitle"] = "测试群"
        if with_webhook:
            url, expires = self._standin().session_webhook(conversation if group else sender, ttl_ms=webhook_ttl_ms)
            body.update(sessionWebhook=url, sessionWebhookExpiredTime=expires)
        return self.robot_headers(timestamp_ms), json.dumps(body, ensure_ascii=False).encode()

    def text(self, sender: str, content: str, **options: Any) -> tuple[dict[str, str], bytes]:
        # The @mention leaves a leading space, in one-to-one chats too.
        return self.message(sender, "text", {"text": {"content": " " + content}}, **options)

    def picture(self, sender: str, download_code: str = "dlPicture1", **options: Any) -> tuple[dict[str, str], bytes]:
        """A picture message; the stand-in serves its bytes if a test gave them (DingTalkStandin.add_file)."""
        return self.message(sender, "picture", {"content": {"downloadCode": download_code}}, **options)

    def audio(self, sender: str, recognition: str, **options: Any) -> tuple[dict[str, str], bytes]:
        return self.message(sender, "audio", {"content": {"duration": 3000, "downloadCode": "dlAudio1",
                                                          "recognition": recognition}}, **options)

    def rich_text(self, sender: str, parts: list[dict[str, str]], **options: Any) -> tuple[dict[str, str], bytes]:
        return self.message(sender, "richText", {"content": {"richText": parts}}, **options)

    def unknown(self, sender: str, msgtype: str = "video", **options: Any) -> tuple[dict[str, str], bytes]:
        return self.message(sender, msgtype, {"content": {"downloadCode": "dlX", "duration": 1000}}, **options)

    # -- card callbacks (§4.6) -------------------------------------------------------------------
    def card_click(self, user: str, out_track_id: str, action: str, value: str = "", *,
                   use_value_field: bool = False, timestamp_ms: int | None = None) -> tuple[dict[str, str], bytes]:
        """A button tap. The docs show two shapes: `content` with params inside cardPrivateData, or
        `value` with params beside it; `use_value_field` picks the second."""
        params = {"action": action, "value": value}
        body: dict[str, Any] = {"type": "actionCallback", "outTrackId": out_track_id, "corpId": self.corp_id,
                                "userId": user, "userIdType": 1, "spaceType": "im", "spaceId": f"cidOto{user}==",
                                "extension": "{}"}
        if use_value_field:
            body["value"] = json.dumps({"cardPrivateData": {"actionIds": ["btn_1"]}, "params": params})
        else:
            body["content"] = json.dumps({"cardPrivateData": {"actionIds": ["btn_1"], "params": params}})
        return self.card_headers(timestamp_ms), json.dumps(body, ensure_ascii=False).encode()

    # -- HTTP event subscription (§3) -------------------------------------------------------------
    def event(self, event_type: str, *, token: str, aes_key: str, timestamp_ms: int | None = None,
              **data: Any) -> tuple[str, bytes]:
        """(query string, body) of an event push, encrypted with wechatpy's PrpCrypto — the same
        AES scheme (§3.3), other code than Banli's — with the AppKey as owner key."""
        from urllib.parse import urlencode

        from wechatpy.crypto import PrpCrypto

        payload = {"EventType": event_type, "CorpId": self.corp_id,
                   "TimeStamp": str(int(time.time() * 1000)), **data}
        encrypt = PrpCrypto(base64.b64decode(aes_key + "=")).encrypt(
            json.dumps(payload, ensure_ascii=False), self.standin.app_key if self.standin else self.robot_code).decode()
        ts = str(timestamp_ms if timestamp_ms is not None else int(time.time() * 1000))
        nonce = secrets.token_hex(8)
        sig = hashlib.sha1("".join(sorted([token, ts, nonce, encrypt])).encode()).hexdigest()
        return urlencode({"msg_signature": sig, "timestamp": ts, "nonce": nonce}), json.dumps({"encrypt": encrypt}).encode()

    @staticmethod
    def read_reply(answer: dict[str, Any], *, token: str, aes_key: str, owner_key: str) -> str:
        """Check and decrypt Banli's answer to a push (it must be the encrypted "success")."""
        from wechatpy.crypto import PrpCrypto

        expected = hashlib.sha1("".join(sorted([token, answer["timeStamp"], answer["nonce"], answer["encrypt"]]))
                                .encode()).hexdigest()
        if expected != answer["msg_signature"]:
            raise ValueError("reply signature does not match")
        return PrpCrypto(base64.b64decode(aes_key + "=")).decrypt(answer["encrypt"], owner_key)

    def _standin(self) -> DingTalkStandin:
        if self.standin is None:
            raise RuntimeError("a sessionWebhook needs the stand-in: pass standin= or with_webhook=False")
        return self.standin
