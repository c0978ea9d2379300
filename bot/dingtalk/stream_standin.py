"""A local stand-in for DingTalk's Stream gateway (docs/dingtalk.md §2.1): the connection-open call
(served by DingTalkStandin at POST /v1.0/gateway/connections/open, which hands it to `open`) and a
WebSocket server that pushes frames as DingTalk does and records the client's ACKs.

Frames: `{"specVersion": "1.0", "type": "CALLBACK" | "EVENT" | "SYSTEM", "headers": {...},
"data": "<JSON string>"}`; headers carry appId, connectionId, contentType, messageId, time and topic,
and an EVENT's also eventType, eventId, eventCorpId, eventBornTime, eventUnifiedAppId. A ticket
works once, for 90 s. ACKs are kept as received: `{code, headers: {messageId, contentType},
message, data}` (data a JSON string, decoded into `data_json` when it is JSON).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, serve

TICKET_SECONDS = 90
ROBOT_TOPIC = "/v1.0/im/bot/messages/get"
CARD_TOPIC = "/v1.0/card/instances/callback"


class StreamGateway:
    def __init__(self, *, app_key: str, app_secret: str, corp_id: str = "dingcorptest") -> None:
        self.app_key, self.app_secret, self.corp_id = app_key, app_secret, corp_id
        self.lock = threading.Lock()
        self.tickets: dict[str, float] = {}  # ticket -> expiry (time.time())
        self.opens: list[dict[str, Any]] = []  # every connection-open body, as posted
        self.connections: list[ServerConnection] = []  # open now, oldest first
        self.connects = 0  # connections accepted so far
        self.refused: list[str] = []
        self.acks: list[dict[str, Any]] = []
        self.received_raw: list[str] = []  # what the client sent that was not an ACK
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server = None
        self.port = 0

    # -- running ----------------------------------------------------------------------------------
    def start(self) -> "StreamGateway":
        ready = threading.Event()
        threading.Thread(target=self._run, args=(ready,), name="stream-gateway", daemon=True).start()
        if not ready.wait(10):
            raise RuntimeError("the stream gateway stand-in did not start")
        return self

    def _run(self, ready: threading.Event) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)

        async def begin() -> None:
            self._server = await serve(self._connection, "127.0.0.1", 0, process_request=self._check_ticket)
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()

        self._loop.run_until_complete(begin())
        self._loop.run_forever()

    def stop(self) -> None:
        if self._loop is None:
            return

        async def end() -> None:
            self._server.close()
            await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(end(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)

    # -- the open call (DingTalkStandin's route calls this) ----------------------------------------
    def open(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.opens.append(body)
        if body.get("clientId") != self.app_key or body.get("clientSecret") != self.app_secret:
            with self.lock:
                self.refused.append(f"open: bad credentials for {body.get('clientId')!r}")
            return 400, {"code": "invalidClientIdOrSecret", "message": "无效的clientId或者clientSecret"}
        if not isinstance(body.get("subscriptions"), list) or not body["subscriptions"]:
            return 400, {"code": "invalidParameter.subscriptions", "message": "subscriptions 不能为空"}
        ticket = secrets.token_hex(16)
        with self.lock:
            self.tickets[ticket] = time.time() + TICKET_SECONDS
        return 200, {"endpoint": f"ws://127.0.0.1:{self.port}/connect", "ticket": ticket}

    def _check_ticket(self, connection: ServerConnection, request):
        url = urlsplit(request.path)
        ticket = (parse_qs(url.query).get("ticket") or [""])[0]
        with self.lock:
            expires = self.tickets.pop(ticket, 0)  # one connection per ticket
        if url.path != "/connect" or expires < time.time():
            with self.lock:
                self.refused.append(f"connect: bad or spent ticket {ticket[:8]!r}")
            return connection.respond(HTTPStatus.UNAUTHORIZED, "invalid ticket\n")
        return None

    async def _connection(self, websocket: ServerConnection) -> None:
        with self.lock:
            self.connections.append(websocket)
            self.connects += 1
        try:
            async for raw in websocket:
                self._record(raw)
        except Exception:  # noqa: BLE001 — a client that vanished (kill -9) just ends its connection
            pass
        finally:
            with self.lock:
                self.connections.remove(websocket)

    def _record(self, raw: str | bytes) -> None:
        text = raw.decode() if isinstance(raw, bytes) else raw
        try:
            ack = json.loads(text)
        except ValueError:
            ack = None
        with self.lock:
            if isinstance(ack, dict) and "code" in ack:
                try:
                    ack["data_json"] = json.loads(ack.get("data") or "null")
                except (TypeError, ValueError):
                    ack["data_json"] = None
                self.acks.append(ack)
            else:
                self.received_raw.append(text)

    # -- pushing frames ---------------------------------------------------------------------------
    @property
    def connected(self) -> int:
        with self.lock:
            return len(self.connections)

    def send_raw(self, text: str) -> None:
        """Send `text` as it is on the newest connection (raises if there is none)."""
        with self.lock:
            if not self.connections:
                raise RuntimeError("no stream client is connected")
            websocket = self.connections[-1]
        asyncio.run_coroutine_threadsafe(websocket.send(text), self._loop).result(10)

    def send(self, frame_type: str, topic: str, data: Any, *, message_id: str | None = None,
             extra_headers: dict[str, str] | None = None) -> str:
        """Push one frame; `data` is JSON-encoded into the frame's data string unless it is a str.
        Returns its messageId (give the same one again to deliver the same frame twice)."""
        message_id = message_id or f"{secrets.token_hex(4)}_{secrets.token_hex(8)}"
        headers = {"appId": self.app_key, "connectionId": secrets.token_hex(8), "contentType": "application/json",
                   "messageId": message_id, "time": str(int(time.time() * 1000)), "topic": topic,
                   **(extra_headers or {})}
        body = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
        self.send_raw(json.dumps({"specVersion": "1.0", "type": frame_type, "headers": headers, "data": body},
                                 ensure_ascii=False))
        return message_id

    def robot_message(self, body: dict[str, Any] | bytes | str, *, message_id: str | None = None) -> str:
        """A robot message: `body` as an HTTP-mode robot callback has it (DingTalkPeer builds one)."""
        return self.send("CALLBACK", ROBOT_TOPIC, _text(body), message_id=message_id)

    def card_callback(self, body: dict[str, Any] | bytes | str, *, message_id: str | None = None) -> str:
        return self.send("CALLBACK", CARD_TOPIC, _text(body), message_id=message_id)

    def event(self, event_type: str, data: dict[str, Any], *, event_id: str | None = None,
              message_id: str | None = None) -> str:
        headers = {"eventType": event_type, "eventId": event_id or secrets.token_hex(16),
                   "eventCorpId": self.corp_id, "eventBornTime": str(int(time.time() * 1000)),
                   "eventUnifiedAppId": "unifiedAppIdTest"}
        return self.send("EVENT", "*", data, message_id=message_id, extra_headers=headers)

    def ping(self, opaque: str = "") -> str:
        return self.send("SYSTEM", "ping", {"opaque": opaque or secrets.token_hex(8)})

    def disconnect(self, reason: str = "gateway restarting") -> str:
        """Tell the client to go; the real gateway closes the TCP connection 10 s later."""
        return self.send("SYSTEM", "disconnect", {"reason": reason})

    def acks_for(self, message_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [a for a in self.acks if (a.get("headers") or {}).get("messageId") == message_id]


def _text(body: dict[str, Any] | bytes | str) -> str:
    if isinstance(body, bytes):
        return body.decode()
    return body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
