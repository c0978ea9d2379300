"""A local stand-in for WeCom: the API Banli calls (token, directory, message send, card update,
media download and upload — docs/wecom.md §5.2) and
a peer that signs and encrypts callbacks exactly as WeCom does (with wechatpy, independent of
Banli's own signature code). Tests and the demo point WECOM_API_BASE at it.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from typing import Any
from urllib.parse import urlencode

from flask import Flask, Response, jsonify, request
from wechatpy.enterprise.crypto import WeChatCrypto


class WeComStandin:
    def __init__(self, *, corp_id: str, secret: str, agent_id: int,
                 users: dict[str, dict[str, Any]] | None = None,
                 departments: dict[int, str] | None = None, parents: dict[int, int] | None = None) -> None:
        self.corp_id, self.secret, self.agent_id = corp_id, secret, agent_id
        self.users = {uid: dict(fields) for uid, fields in (users or {}).items()}  # a test may change its own
        self.departments = dict(departments or {})
        # Each department's parent (docs/wecom.md §5.4 `parentid`); by default the lowest id is the
        # root (parent 0) and every other department hangs under it.
        self.parents = dict(parents or {})
        self._dept_index: dict[int, list[str]] | None = None
        self.list_calls: dict[str, int] = {}  # directory list API → how many calls (pagination tests)
        self.lock = threading.Lock()
        self.tokens: set[str] = set()
        self.token_fetches = 0
        self.sent: list[dict[str, Any]] = []  # message/send bodies actually delivered
        self.sent_at: list[float] = []  # time.monotonic() each of `sent` arrived (bench/latency.py)
        self.duplicates_dropped = 0
        self.dropped: list[dict[str, Any]] = []  # bodies the duplicate check kept from the user
        self.updates: list[dict[str, Any]] = []
        self.refused_updates: list[dict[str, Any]] = []  # update bodies answered with an error
        self.task_ids: set[str] = set()
        self.response_codes: dict[str, str] = {}  # code -> task_id, each usable once
        self.issued_codes: dict[str, str] = {}  # every code ever issued -> task_id (kept after use)
        self.fail_next: list[dict[str, Any]] = []  # canned error answers for the next sends
        self.send_delay = 0.0  # seconds each message/send takes (a slow network, a busy platform)
        self.in_flight = 0
        self.max_in_flight = 0  # the most sends seen at once: how many jobs a worker runs side by side
        # Failure switches (banli doctor's tests): the directory outside the app's visible range.
        self.directory_denied = False
        # Tags (tag/list, tag/get): id → {"tagname", "userlist": [userid…], "partylist": [dept id…]};
        # tags_denied: the app may not read them (60011, as outside the visible range).
        self.tags: dict[int, dict[str, Any]] = {}
        self.tags_denied = False
        # Media people sent (what media/get serves, by MediaId) and media Banli uploaded (media/upload).
        self.media: dict[str, tuple[bytes, str]] = {}
        self.uploads: dict[str, tuple[bytes, str]] = {}
        self.media_fetches = 0
        self.fail_media: list[Any] = []  # canned answers for the next media/get: a dict (JSON) or an int (HTTP status)
        self.app = self._build()

    # -- test controls --------------------------------------------------------------------------
    def expire_tokens(self) -> None:
        with self.lock:
            self.tokens.clear()

    def cards_to(self, user: str) -> list[dict[str, Any]]:
        return [m for m in self.sent if m["touser"] == user and m["msgtype"] == "template_card"]

    def messages_to(self, user: str) -> list[dict[str, Any]]:
        return [m for m in self.sent if m["touser"] == user]

    def add_media(self, data: bytes, content_type: str = "image/jpeg", media_id: str | None = None) -> str:
        """A photo a member sent: its MediaId, as the image callback carries it."""
        media_id = media_id or secrets.token_hex(16)
        with self.lock:
            self.media[media_id] = (data, content_type)
        return media_id

    def expire_media(self, media_id: str) -> None:
        """Past its 3 days: media/get answers 40007 from now on."""
        with self.lock:
            self.media.pop(media_id, None)

    def images_to(self, user: str) -> list[bytes]:
        """The bytes of every image message delivered to `user`, in order."""
        return [self.uploads[m["image"]["media_id"]][0] for m in self.messages_to(user) if m["msgtype"] == "image"]

    # -- the directory, as a test or the demo changes it --------------------------------------------
    def add_user(self, user_id: str, **fields: Any) -> None:
        with self.lock:
            self.users[user_id] = {"department": [1], "main_department": 1, "direct_leader": [], "status": 1, **fields}
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
        if dept_id in self.parents:
            return self.parents[dept_id]
        root = min(self.departments) if self.departments else 1
        return 0 if dept_id == root else root

    def _members(self, dept_id: int) -> list[str]:
        with self.lock:
            if self._dept_index is None:
                index: dict[int, list[str]] = {}
                for uid, user in self.users.items():
                    for d in user.get("department") or []:
                        index.setdefault(int(d), []).append(uid)
                self._dept_index = index
            return list(self._dept_index.get(dept_id, []))

    def _count(self, api: str) -> None:
        with self.lock:
            self.list_calls[api] = self.list_calls.get(api, 0) + 1

    def _slowly(self, seconds: float) -> None:
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        time.sleep(seconds)
        with self.lock:
            self.in_flight -= 1

    # -- the API --------------------------------------------------------------------------------
    def _build(self) -> Flask:
        app = Flask("wecom-standin")
        recent: dict[str, float] = {}

        def authorized() -> bool:
            return request.args.get("access_token") in self.tokens

        def directory_refusal():
            """None, or WeCom's answer for a directory read outside the visible range (docs/wecom.md §7)."""
            if not authorized():
                return jsonify(errcode=40014, errmsg="invalid access_token")
            if self.directory_denied:
                return jsonify(errcode=60011, errmsg="no privilege to access/modify contact/party/agent")
            return None

        @app.get("/cgi-bin/gettoken")
        def gettoken():
            if request.args.get("corpid") != self.corp_id:
                return jsonify(errcode=40013, errmsg="invalid corpid")
            if request.args.get("corpsecret") != self.secret:
                return jsonify(errcode=40001, errmsg="invalid credential")
            with self.lock:
                token = secrets.token_hex(16)
                self.tokens.add(token)
                self.token_fetches += 1
            return jsonify(errcode=0, errmsg="ok", access_token=token, expires_in=7200)

        @app.post("/cgi-bin/message/send")
        def send():
            received = time.monotonic()
            if not authorized():
                return jsonify(errcode=40014, errmsg="invalid access_token")
            body = request.get_json(force=True)
            if self.send_delay:
                self._slowly(self.send_delay)
            with self.lock:
                if self.fail_next:
                    return jsonify(self.fail_next.pop(0))
                fingerprint = json.dumps(body, sort_keys=True, ensure_ascii=False)
                if body.get("enable_duplicate_check") and \
                        time.time() - recent.get(fingerprint, -1e9) < body.get("duplicate_check_interval", 1800):
                    self.duplicates_dropped += 1
                    self.dropped.append(body)
                    return jsonify(errcode=0, errmsg="ok", msgid="dup")
                recent[fingerprint] = time.time()
                answer: dict[str, Any] = {"errcode": 0, "errmsg": "ok", "msgid": secrets.token_hex(8)}
                if body.get("msgtype") == "image" and (body.get("image") or {}).get("media_id") not in self.uploads:
                    return jsonify(errcode=40007, errmsg="invalid media_id")
                if body.get("msgtype") == "template_card":
                    task = body["template_card"].get("task_id", "")
                    if task in self.task_ids:
                        return jsonify(errcode=42014, errmsg="taskid has existed")
                    self.task_ids.add(task)
                    code = secrets.token_hex(12)
                    self.response_codes[code] = self.issued_codes[code] = task
                    answer["response_code"] = code
                self.sent.append(body)
                self.sent_at.append(received)
            return jsonify(answer)

        @app.post("/cgi-bin/message/update_template_card")
        def update():
            if not authorized():
                return jsonify(errcode=40014, errmsg="invalid access_token")
            body = request.get_json(force=True)
            malformed = _update_problem(body)
            if malformed:  # checked before the code is spent, so a bad request leaves it usable
                self.refused_updates.append(body)
                return jsonify(errcode=40058, errmsg=malformed)
            with self.lock:
                if self.response_codes.pop(body.get("response_code", ""), None) is None:
                    # Each code works once (docs/wecom.md §3.4); the real errcode is undocumented.
                    return jsonify(errcode=40058, errmsg="invalid response_code")
                self.updates.append(body)
            return jsonify(errcode=0, errmsg="ok")

        @app.get("/cgi-bin/media/get")
        def media_get():
            # Errors are a JSON errcode body with HTTP 200, never the file (docs/wecom.md §5.2).
            if not authorized():
                return jsonify(errcode=40014, errmsg="invalid access_token")
            with self.lock:
                self.media_fetches += 1
                canned = self.fail_media.pop(0) if self.fail_media else None
                found = self.media.get(request.args.get("media_id", ""))
            if isinstance(canned, int):
                return Response("busy", status=canned, content_type="text/html")
            if canned is not None:
                return jsonify(canned)
            if found is None:
                return jsonify(errcode=40007, errmsg="invalid media_id")
            data, content_type = found
            return Response(data, content_type=content_type,
                            headers={"Content-Disposition": f'attachment; filename="{request.args["media_id"][:16]}.jpg"'})

        @app.post("/cgi-bin/media/upload")
        def media_upload():
            if not authorized():
                return jsonify(errcode=40014, errmsg="invalid access_token")
            media_type, upload = request.args.get("type"), request.files.get("media")
            if media_type not in ("image", "voice", "video", "file"):
                return jsonify(errcode=40004, errmsg="invalid media type")
            if upload is None:
                return jsonify(errcode=41005, errmsg="media data missing")
            data = upload.read()
            if media_type == "image" and (len(data) > 10 * 1024 * 1024 or
                                          not data.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n"))):
                return jsonify(errcode=40005, errmsg="invalid file type or size: image is JPG/PNG up to 10MB")
            media_id = "3" + secrets.token_hex(20)
            with self.lock:
                self.uploads[media_id] = (data, upload.mimetype or "")
            return jsonify(errcode=0, errmsg="", type=media_type, media_id=media_id,
                           created_at=str(int(time.time())))

        @app.get("/cgi-bin/agent/get")
        def agent_get():
            if not authorized():
                return jsonify(errcode=40014, errmsg="invalid access_token")
            if request.args.get("agentid") != str(self.agent_id):  # a token reads only its own app
                return jsonify(errcode=301002, errmsg="not allow operate another agent with this accesstoken")
            return jsonify(errcode=0, errmsg="ok", agentid=self.agent_id, name="办理", close=0,
                           allow_userinfos={"user": []}, allow_partys={"partyid": sorted(self.departments)},
                           allow_tags={"tagid": []})

        @app.get("/cgi-bin/user/simplelist")
        def user_simplelist():
            refusal = directory_refusal()
            if refusal:
                return refusal
            dept = int(request.args.get("department_id", "0"))
            return jsonify(errcode=0, errmsg="ok", userlist=[
                {"userid": uid, "name": u.get("name", ""), "department": u.get("department", [])}
                for uid, u in self.users.items() if dept in u.get("department", [])])

        @app.get("/cgi-bin/user/get")
        def user_get():
            refusal = directory_refusal()
            if refusal:
                return refusal
            user = self.users.get(request.args.get("userid", ""))
            if user is None:
                return jsonify(errcode=60111, errmsg="userid not found")
            return jsonify(errcode=0, errmsg="ok", userid=request.args["userid"], **user)

        @app.get("/cgi-bin/department/list")
        def department_list():
            if not authorized():
                return jsonify(errcode=40014, errmsg="invalid access_token")
            self._count("department/list")
            return jsonify(errcode=0, errmsg="ok", department=[
                {"id": d, "name": name, "parentid": self.parent_of(d), "order": d} for d, name in sorted(self.departments.items())])

        @app.post("/cgi-bin/user/list_id")
        def user_list_id():
            """Pages of (userid, department) rows, `next_cursor` until it is empty (docs/wecom.md §5.4)."""
            if not authorized():
                return jsonify(errcode=40014, errmsg="invalid access_token")
            body = request.get_json(force=True, silent=True) or {}
            limit = int(body.get("limit") or 1000)
            if not 1 <= limit <= 10000:
                return jsonify(errcode=40058, errmsg="limit must be 1~10000")
            start = int(body.get("cursor") or "0", 16) if body.get("cursor") else 0
            self._count("user/list_id")
            with self.lock:
                rows = [{"userid": uid, "department": d} for uid in sorted(self.users)
                        for d in self.users[uid].get("department") or [1]]
            page = rows[start:start + limit]
            more = start + limit < len(rows)
            return jsonify(errcode=0, errmsg="ok", dept_user=page, next_cursor=format(start + limit, "x") if more else "")

        @app.get("/cgi-bin/user/list")
        def user_list():
            if not authorized():
                return jsonify(errcode=40014, errmsg="invalid access_token")
            dept_id = int(request.args.get("department_id", "0"))
            if dept_id not in self.departments:
                return jsonify(errcode=60003, errmsg="department not found")
            self._count("user/list")
            users = [{"userid": uid, **self.users[uid]} for uid in self._members(dept_id) if uid in self.users]
            return jsonify(errcode=0, errmsg="ok", userlist=users)

        @app.get("/cgi-bin/tag/list")
        def tag_list():
            if not authorized():
                return jsonify(errcode=40014, errmsg="invalid access_token")
            if self.tags_denied:
                return jsonify(errcode=60011, errmsg="no privilege to access/modify contact/party/agent")
            self._count("tag/list")
            return jsonify(errcode=0, errmsg="ok", taglist=[{"tagid": t, "tagname": tag["tagname"]}
                                                            for t, tag in sorted(self.tags.items())])

        @app.get("/cgi-bin/tag/get")
        def tag_get():
            if not authorized():
                return jsonify(errcode=40014, errmsg="invalid access_token")
            if self.tags_denied:
                return jsonify(errcode=60011, errmsg="no privilege to access/modify contact/party/agent")
            tag = self.tags.get(int(request.args.get("tagid") or -1))
            if tag is None:
                return jsonify(errcode=40068, errmsg="invalid tagid")
            self._count("tag/get")
            return jsonify(errcode=0, errmsg="ok", tagname=tag["tagname"],
                           userlist=[{"userid": u, "name": self.users.get(u, {}).get("name", "")}
                                     for u in tag.get("userlist", []) if u in self.users],
                           partylist=list(tag.get("partylist", [])))

        @app.get("/cgi-bin/department/get")
        def department_get():
            refusal = directory_refusal()
            if refusal:
                return refusal
            dept_id = int(request.args.get("id", "0"))
            if dept_id not in self.departments:
                return jsonify(errcode=60003, errmsg="department not found")
            return jsonify(errcode=0, errmsg="ok",
                           department={"id": dept_id, "name": self.departments[dept_id],
                                       "parentid": self.parent_of(dept_id)})

        return app

    def issue_response_code(self, task_id: str) -> str:
        """A fresh code, as a click callback brings (each click gets its own)."""
        code = secrets.token_hex(12)
        with self.lock:
            self.response_codes[code] = self.issued_codes[code] = task_id
        return code


def _update_problem(body: dict[str, Any]) -> str:
    """What the real update_template_card would refuse in `body` (94888), or "" if nothing.

    Either `button.replace_name` (grey the buttons out with that text) or a whole `template_card`;
    a `button_interaction` card needs a `button_list` of 1–6 buttons, in an update as in a send. The
    real errcodes for these are undocumented; 40058 is WeCom's "invalid parameter"."""
    button, card = body.get("button"), body.get("template_card")
    if (button is None) == (card is None):
        return "invalid parameter: exactly one of button / template_card"
    if button is not None:
        return "" if isinstance(button, dict) and button.get("replace_name") else "button.replace_name missing"
    if card.get("card_type") == "button_interaction":
        buttons = card.get("button_list") or []
        if not 1 <= len(buttons) <= 6:
            return "Template_Card.button_list missing or invalid: button_interaction needs 1-6 buttons"
        if any(not b.get("text") or not b.get("key") for b in buttons):
            return "Template_Card.button_list invalid: every button needs text and key"
    if not (card.get("main_title") or {}).get("title") and not card.get("sub_title_text"):
        return "Template_Card.main_title missing"
    return ""


class WeComPeer:
    """Signs and encrypts callbacks the way WeCom does, using wechatpy as the reference."""

    def __init__(self, *, token: str, aes_key: str, corp_id: str, agent_id: int) -> None:
        self.crypto = WeChatCrypto(token, aes_key, corp_id)
        self.corp_id, self.agent_id = corp_id, agent_id
        self._msg_id = int(time.time() * 1000)

    def next_msg_id(self) -> str:
        self._msg_id += 1
        return str(self._msg_id)

    def callback(self, inner_xml: str, *, timestamp: int | None = None) -> tuple[str, bytes]:
        """(query string, body) for POST /wecom/callback."""
        ts = str(timestamp if timestamp is not None else int(time.time()))
        nonce = secrets.token_hex(5)
        envelope = self.crypto.encrypt_message(inner_xml, nonce, ts)
        # wechatpy builds the reply envelope; the callback form carries the same Encrypt + signature.
        import xmltodict

        env = xmltodict.parse(envelope)["xml"]
        body = (f"<xml><ToUserName><![CDATA[{self.corp_id}]]></ToUserName>"
                f"<AgentID><![CDATA[{self.agent_id}]]></AgentID>"
                f"<Encrypt><![CDATA[{env['Encrypt']}]]></Encrypt></xml>")
        query = urlencode({"msg_signature": env["MsgSignature"], "timestamp": ts, "nonce": nonce})
        return query, body.encode()

    def url_verification(self, echo: str) -> str:
        """Query string for GET /wecom/callback whose echostr decrypts to `echo`."""
        ts, nonce = str(int(time.time())), secrets.token_hex(5)
        import xmltodict

        env = xmltodict.parse(self.crypto.encrypt_message(echo, nonce, ts))["xml"]
        return urlencode({"msg_signature": env["MsgSignature"], "timestamp": ts, "nonce": nonce,
                          "echostr": env["Encrypt"]})

    # -- inner messages (docs/wecom.md §5, §3.3) --------------------------------------------
    def _wrap(self, user: str, fields: str, create_time: int | None) -> str:
        return (f"<xml><ToUserName><![CDATA[{self.corp_id}]]></ToUserName>"
                f"<FromUserName><![CDATA[{user}]]></FromUserName>"
                f"<CreateTime>{create_time or int(time.time())}</CreateTime>{fields}"
                f"<AgentID>{self.agent_id}</AgentID></xml>")

    def text(self, user: str, content: str, *, msg_id: str | None = None, create_time: int | None = None) -> str:
        return self._wrap(user, f"<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{content}]]></Content>"
                                f"<MsgId>{msg_id or self.next_msg_id()}</MsgId>", create_time)

    def image(self, user: str, media_id: str = "MEDIA1", *, create_time: int | None = None) -> str:
        return self._wrap(user, "<MsgType><![CDATA[image]]></MsgType><PicUrl><![CDATA[http://pic]]></PicUrl>"
                                f"<MediaId><![CDATA[{media_id}]]></MediaId><MsgId>{self.next_msg_id()}</MsgId>",
                          create_time)

    def voice(self, user: str, recognition: str | None = None, *, create_time: int | None = None) -> str:
        """A voice message; with `recognition`, the speech-to-text WeChat adds when 语音识别 is on
        (docs/wecom.md §5.3) — "" is the empty element it sends when it heard nothing."""
        heard = "" if recognition is None else f"<Recognition><![CDATA[{recognition}]]></Recognition>"
        return self._wrap(user, "<MsgType><![CDATA[voice]]></MsgType><MediaId><![CDATA[V1]]></MediaId>"
                                f"<Format><![CDATA[amr]]></Format>{heard}<MsgId>{self.next_msg_id()}</MsgId>",
                          create_time)

    def location(self, user: str, lat: float, lng: float, label: str, *, create_time: int | None = None) -> str:
        return self._wrap(user, f"<MsgType><![CDATA[location]]></MsgType><Location_X>{lat}</Location_X>"
                                f"<Location_Y>{lng}</Location_Y><Scale>15</Scale>"
                                f"<Label><![CDATA[{label}]]></Label><MsgId>{self.next_msg_id()}</MsgId>",
                          create_time)

    def event(self, user: str, event: str, key: str = "", *, create_time: int | None = None) -> str:
        return self._wrap(user, f"<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[{event}]]></Event>"
                                f"<EventKey><![CDATA[{key}]]></EventKey>", create_time)

    def card_click(self, user: str, key: str, task_id: str, response_code: str, *,
                   create_time: int | None = None) -> str:
        return self._wrap(user, "<MsgType><![CDATA[event]]></MsgType>"
                                "<Event><![CDATA[template_card_event]]></Event>"
                                f"<EventKey><![CDATA[{key}]]></EventKey><TaskId><![CDATA[{task_id}]]></TaskId>"
                                "<CardType><![CDATA[button_interaction]]></CardType>"
                                f"<ResponseCode><![CDATA[{response_code}]]></ResponseCode>", create_time)

    def change_contact(self, change_type: str, *, create_time: int | None = None, **fields: str) -> str:
        """A `change_contact` event as WeCom sends it to the app's callback: from "sys", with the
        changed fields as elements (UserID, Name, Department, …; Id, Name, ParentId for parties)."""
        body = "".join(f"<{k}><![CDATA[{v}]]></{k}>" for k, v in fields.items())
        return self._wrap("sys", "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_contact]]></Event>"
                                 f"<ChangeType><![CDATA[{change_type}]]></ChangeType>{body}", create_time)

    def unknown(self, user: str, msg_type: str = "video", *, create_time: int | None = None) -> str:
        return self._wrap(user, f"<MsgType><![CDATA[{msg_type}]]></MsgType>"
                                f"<MediaId><![CDATA[X]]></MediaId><MsgId>{self.next_msg_id()}</MsgId>", create_time)
