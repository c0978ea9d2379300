"""DingTalk Stream mode: the official `dingtalk-stream` SDK holds the WebSocket; each frame goes
through the HTTP path's own parsing (bot/dingtalk/parse.py, events.py) into the inbound outbox
(`bot.pipeline.accept`), and is acked once that row is committed (docs/dingtalk.md §2.6).

- CALLBACK `/v1.0/im/bot/messages/get` (a robot message, keyed by msgId) and
  `/v1.0/card/instances/callback` (a card tap, keyed as on /dingtalk/card);
- EVENT (every event ticked in the console): address-book changes, keyed by the eventId header;
  other event types are acked and dropped;
- SYSTEM ping (the SDK echoes it) and disconnect (reconnect with a new ticket).

A frame delivered twice is acked twice and stored once. Replies never go over the stream (it
cannot send, §1.4): they leave through the outbox as in HTTP mode.

What this module changes in the SDK (0.24.3, `DingTalkStreamClient`), and why:
- `open_connection`: the SDK posts to `DINGTALK_OPENAPI_ENDPOINT` read from the environment once, at
  import; Banli posts the same body to its own `DINGTALK_API_BASE` (tests: the gateway stand-in);
- `start` / `stop`: 0.24.3 has no stop, sleeps 10 s after any drop and reconnects forever, and a
  frame that is not JSON ends its connection. This loop can be stopped (the process lost its Redis
  lease, or is exiting), says when it connects, drops and reconnects, and skips a non-JSON frame.
  Frames are still parsed, routed and acked by the SDK's own `route_message` and handlers.
- Events are acked with `{"status": "SUCCESS" | "LATER"}` as the protocol asks (the SDK echoes the
  event's data instead, §2.1): LATER when the database could not take the event, so DingTalk
  pushes it again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import platform as python_platform
import time
from typing import Any, Callable
from urllib.parse import quote_plus

import dingtalk_stream
import requests
import websockets
from dingtalk_stream import AckMessage, CallbackHandler, ChatbotMessage, EventHandler, EventMessage
from dingtalk_stream.frames import Headers
from dingtalk_stream.version import VERSION_STRING

from banli.logs import fields, safe_error
from bot import pipeline
from bot.dingtalk.events import parse_event
from bot.dingtalk.parse import CARD_ANSWER, card_event, for_another_robot, message_event
from bot.runtime import Runtime
from handlers.events import InboundEvent
from storage.db import is_transient

log = logging.getLogger("banli.dingtalk.stream")
sdk_log = logging.getLogger("banli.dingtalk.sdk")

OPEN_PATH = "/v1.0/gateway/connections/open"
ROBOT_TOPIC = ChatbotMessage.TOPIC  # /v1.0/im/bot/messages/get
CARD_TOPIC = CallbackHandler.TOPIC_CARD_CALLBACK  # /v1.0/card/instances/callback
OK, BAD_REQUEST, ERROR = AckMessage.STATUS_OK, AckMessage.STATUS_BAD_REQUEST, AckMessage.STATUS_SYSTEM_EXCEPTION
RECONNECT_SECONDS = (1.0, 2.0, 5.0, 10.0)  # after a drop: quickly at first, then every 10 s
HTTP_TIMEOUT = 10
STOP_GRACE_SECONDS = 5


# -- one frame → the inbound outbox (blocking: runs in a thread of the event loop's pool) ----------

class Intake:
    """What each kind of frame does; every frame gets one log line, like an HTTP callback."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.robot_code = runtime.settings.dingtalk.robot_code

    def robot_message(self, data: Any) -> tuple[int, str]:
        started = time.perf_counter()
        if not isinstance(data, dict):
            return self._line("robot message", started, BAD_REQUEST, "refused", reason="data is not a JSON object")
        if for_another_robot(data, self.robot_code):
            return self._line("robot message", started, BAD_REQUEST, "refused",
                              reason=f"for another robot {str(data['robotCode'])[:40]!r}")
        if data.get("errCode"):
            # 20001: the org's monthly Webhook&Stream quota is spent; the message has no content (§4.8).
            return self._line("robot message", started, OK, "ignored", level=logging.WARNING,
                              reason=f"DingTalk paused the robot (errCode {str(data['errCode'])[:20]}, "
                                     f"{str(data.get('errMsg') or '')[:80]!r})")
        event = message_event(data)
        if event is None:
            return self._line("robot message", started, OK, "ignored",
                              reason=f"{str(data.get('msgtype'))[:20]!r} message from "
                                     f"{str(data.get('senderStaffId') or '')[:64]!r}")
        return self._accept("robot message", started, event)

    def card_callback(self, data: Any) -> tuple[int, str]:
        started = time.perf_counter()
        if not isinstance(data, dict):
            return self._line("card callback", started, BAD_REQUEST, "refused", reason="data is not a JSON object")
        event = card_event(data)
        if event is None:
            return self._line("card callback", started, OK, "ignored",
                              reason=f"on {str(data.get('outTrackId'))[:100]!r} without user or action")
        return self._accept("card callback", started, event)

    def event(self, event_type: str, event_id: str, data: Any) -> tuple[int, str]:
        started = time.perf_counter()
        what = f"event {str(event_type)[:40]}"
        if not isinstance(data, dict):
            return self._line(what, started, BAD_REQUEST, "refused", reason="data is not a JSON object")
        event = parse_event(str(event_type or ""), str(event_id or ""), data)
        if event is None:
            return self._line(what, started, OK, "ignored", reason="not an event Banli acts on")
        return self._accept(what, started, event)

    def _accept(self, what: str, started: float, event: InboundEvent) -> tuple[int, str]:
        try:
            new = pipeline.accept(self.runtime, event)
        except Exception as exc:
            if not is_transient(exc):
                raise
            # Not recorded: a non-200 ACK (events: LATER) so DingTalk offers it again.
            return self._line(what, started, ERROR, "refused", event.event_id,
                              reason=f"database unavailable ({safe_error(exc)})")
        return self._line(what, started, OK, "accepted" if new else "duplicate", event.event_id)

    def _line(self, what: str, started: float, code: int, outcome: str, event_id: str = "", *,
              reason: str = "", level: int = 0) -> tuple[int, str]:
        message = f"dingtalk stream {what} {outcome}" + (f": {reason}" if reason else "")
        level = level or (logging.ERROR if code >= 500 else logging.WARNING if code >= 400 else logging.INFO)
        log.log(level, "%s", message, extra=fields(platform="dingtalk", event_id=event_id, outcome=outcome,
                                                   status=code, ms=round((time.perf_counter() - started) * 1000, 1)))
        return code, outcome


# -- the SDK's handlers, each handing its frame to the Intake ---------------------------------------

class _Callback(CallbackHandler):
    """A CALLBACK topic: `take` stores the frame's data; `answer` is the ACK's response when it did."""

    def __init__(self, take: Callable[[Any], tuple[int, str]], answer: Any) -> None:
        super().__init__()
        self.take, self.answer = take, answer

    async def process(self, message):
        code, outcome = await asyncio.to_thread(self.take, message.data)
        return code, self.answer if code == OK else outcome  # ACK data: {"response": …}


class _EventHandler(EventHandler):
    def __init__(self, intake: Intake) -> None:
        super().__init__()
        self.intake = intake

    async def raw_process(self, event_message: EventMessage) -> AckMessage:
        headers = event_message.headers
        code, outcome = await asyncio.to_thread(self.intake.event, headers.event_type, headers.event_id,
                                                event_message.data)
        ack = AckMessage()
        ack.code = OK  # the status says it: LATER asks DingTalk to push the event again (§2.1)
        ack.headers.message_id = headers.message_id
        ack.headers.content_type = Headers.CONTENT_TYPE_APPLICATION_JSON
        ack.message = "OK" if code == OK else outcome
        ack.data = {"status": "SUCCESS" if code != ERROR else "LATER", "message": outcome}
        return ack


class _QuietPings(logging.Filter):
    """0.24.3 logs every SYSTEM ping as an "unknown message topic" warning, frame and all."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.args and "unknown message topic" in str(record.msg) and record.args[0] == "ping")


sdk_log.addFilter(_QuietPings())


# -- the connection ---------------------------------------------------------------------------------

class StreamClient(dingtalk_stream.DingTalkStreamClient):
    """The SDK's client for one app, subscribed to robot messages, card taps and all events."""

    def __init__(self, runtime: Runtime) -> None:
        settings = runtime.settings.dingtalk
        super().__init__(dingtalk_stream.Credential(settings.app_key, settings.app_secret), logger=sdk_log)
        self.open_url = settings.api_base + OPEN_PATH
        self._count = lambda: runtime.api_meter.count("dingtalk")
        intake = Intake(runtime)
        self.register_callback_handler(ROBOT_TOPIC, _Callback(intake.robot_message, "OK"))
        # A card tap's response would update the clicker's card (§4.6): an empty update, as over HTTP.
        self.register_callback_handler(CARD_TOPIC, _Callback(intake.card_callback, CARD_ANSWER))
        self.register_all_event_handler(_EventHandler(intake))
        self._stopping: asyncio.Event | None = None
        self._tasks: set[asyncio.Task] = set()
        self._open_failures = 0  # in a row: only the first is logged as a warning

    def open_connection(self) -> dict[str, Any] | None:
        """POST …/v1.0/gateway/connections/open with the SDK's own body → {endpoint, ticket} (§2.1)."""
        topics = [{"type": "EVENT", "topic": "*"}] if self._is_event_required else []
        topics += [{"type": "CALLBACK", "topic": topic} for topic in self.callback_handler_map]
        body = {"clientId": self.credential.client_id, "clientSecret": self.credential.client_secret,
                "subscriptions": topics, "ua": f"dingtalk-sdk-python/v{VERSION_STRING}-union",
                "localIp": self.get_host_ip()}
        headers = {"Content-Type": "application/json", "Accept": "application/json",
                   "User-Agent": f"DingTalkStream/1.0 SDK/{VERSION_STRING} Python/{python_platform.python_version()} "
                                 "(+https://github.com/open-dingtalk/dingtalk-stream-sdk-python)"}
        self._count()  # a DingTalk API call like any other (the monthly quota)
        try:
            response = requests.post(self.open_url, data=json.dumps(body).encode(), headers=headers,
                                     timeout=HTTP_TIMEOUT)
            answer = response.json() if response.content else {}
        except (requests.RequestException, ValueError) as exc:
            return self._open_failed(f"cannot open a connection ({exc.__class__.__name__})")
        if response.status_code != 200 or not answer.get("endpoint") or not answer.get("ticket"):
            # The body names the problem (a wrong client id or secret); never the secret itself.
            return self._open_failed(f"connection refused: HTTP {response.status_code} "
                                     + str(answer.get("code") or answer.get("message") or "")[:100])
        self._open_failures = 0
        return answer

    def _open_failed(self, why: str) -> None:
        level = logging.WARNING if self._open_failures == 0 else logging.DEBUG
        log.log(level, "dingtalk stream: %s; retrying", why)
        self._open_failures += 1
        return None

    def get_host_ip(self) -> str:
        try:
            return super().get_host_ip() or ""
        except OSError:  # no route out (0.24.3 lets this escape)
            return ""

    async def stop(self) -> None:
        """Stop reconnecting and close the connection (the SDK's 0.24.3 has no stop)."""
        if self._stopping is not None:
            self._stopping.set()
        if self.websocket is not None:
            await self.websocket.close()

    async def start(self) -> None:
        self.pre_start()
        self._stopping = asyncio.Event()
        drops = 0
        connected_before = False
        while not self._stopping.is_set():
            connection = await asyncio.to_thread(self.open_connection)
            if self._stopping.is_set():
                break
            if connection:
                reason = await self._serve(connection, again=connected_before)
                connected_before = connected_before or reason is not None
                if self._stopping.is_set():
                    break
                if reason is not None:  # it was up: the first retry comes quickly
                    drops = 0
                    log.warning("dingtalk stream: connection dropped (%s); reconnecting", reason)
            delay = RECONNECT_SECONDS[min(drops, len(RECONNECT_SECONDS) - 1)]
            drops += 1
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=delay)
            except asyncio.TimeoutError:
                pass
        if self._tasks:  # frames in hand: let their rows commit (their ACKs may no longer go out)
            await asyncio.wait(list(self._tasks), timeout=STOP_GRACE_SECONDS)

    async def _serve(self, connection: dict[str, Any], *, again: bool) -> str | None:
        """Receive frames until the connection ends; why it ended, or None if it never opened."""
        uri = f"{connection['endpoint']}?ticket={quote_plus(connection['ticket'])}"
        try:
            async with websockets.connect(uri) as websocket:
                self.websocket = websocket
                log.info("dingtalk stream: %s", "reconnected" if again else "connected")
                keepalive = asyncio.create_task(self.keepalive(websocket))
                try:
                    async for raw in websocket:
                        self._spawn(self._frame(raw))
                finally:
                    keepalive.cancel()
                    self.websocket = None
                return "disconnect" if websocket.close_code in (1000, None) else f"closed {websocket.close_code}"
        except websockets.ConnectionClosed as exc:
            return f"closed {exc.rcvd.code if exc.rcvd else 'without a close frame'}"
        except (OSError, websockets.InvalidHandshake, websockets.InvalidURI, asyncio.TimeoutError) as exc:
            log.warning("dingtalk stream: cannot connect (%s)", exc.__class__.__name__)
            return None

    def _spawn(self, coroutine) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)  # a reference, so the task is not collected mid-flight
        task.add_done_callback(self._tasks.discard)

    async def _frame(self, raw: str | bytes) -> None:
        """One frame: the SDK routes it and sends its handler's ACK. One that cannot be read is
        acked 400 (when it names its messageId) and logged; the connection carries on."""
        try:
            frame = json.loads(raw)
            if not isinstance(frame, dict):
                raise ValueError("a frame must be a JSON object")
        except ValueError:
            log.warning("dingtalk stream: frame is not a JSON object (%d bytes); skipped", len(raw))
            return
        try:
            if await self.route_message(frame) == self.TAG_DISCONNECT and self.websocket is not None:
                await self.websocket.close()  # the server closes it 10 s later anyway (§2.1)
        except websockets.ConnectionClosed:
            pass  # the ACK did not go out: DingTalk delivers again; the outbox key makes it a no-op
        except Exception as exc:  # noqa: BLE001 — one bad frame must not end the connection
            await self._refuse(frame, exc)

    async def _refuse(self, frame: dict[str, Any], exc: Exception) -> None:
        headers = frame.get("headers") if isinstance(frame.get("headers"), dict) else {}
        message_id = headers.get("messageId")
        log.warning("dingtalk stream: %s frame on %r refused: %s", str(frame.get("type"))[:20],
                    str(headers.get("topic"))[:60], safe_error(exc),
                    extra=fields(platform="dingtalk", outcome="refused", status=BAD_REQUEST))
        if not message_id or self.websocket is None:
            return
        ack = AckMessage()
        ack.code = BAD_REQUEST
        ack.headers.message_id = message_id
        ack.headers.content_type = Headers.CONTENT_TYPE_APPLICATION_JSON
        ack.message = "malformed frame"
        try:
            await self.websocket.send(json.dumps(ack.to_dict()))
        except websockets.ConnectionClosed:
            pass
