"""A local stand-in for an OpenAI-compatible chat completions API (`POST /v1/chat/completions`).

It answers the way such a server does — a chat completion whose `choices[0].message.content` is the
model's text — with the reading a test gives it for a message, and records every request, so a test
can tell whether Banli asked at all, and what it sent. `behaviour` makes it misbehave as real
servers do: too slow, an HTTP error, prose instead of JSON, or refusing `response_format`.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from flask import Flask, jsonify, request

from bot.serving import ServerThread


class LanguageModelStandin:
    def __init__(self) -> None:
        self.readings: dict[str, Any] = {}  # the person's message → the object the "model" answers
        self.calls: list[dict[str, Any]] = []  # each request: its JSON body and Authorization header
        self.behaviour = "ok"  # ok | slow | http500 | http401 | prose | fenced | no_json_mode | not_json
        self.delay = 3.0  # seconds, for "slow"
        self.app = self._build()
        self.server: ServerThread | None = None

    def start(self) -> "LanguageModelStandin":
        self.server = ServerThread(self.app).start()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.stop()

    @property
    def url(self) -> str:
        return self.server.url + "/v1"

    def user_messages(self) -> list[str]:
        return [next(m["content"] for m in call["body"]["messages"] if m["role"] == "user") for call in self.calls]

    def _build(self) -> Flask:
        app = Flask("llm-standin")

        @app.post("/v1/chat/completions")
        def completions():
            body = request.get_json(force=True)
            self.calls.append({"body": body, "authorization": request.headers.get("Authorization", "")})
            said = next(m["content"] for m in body["messages"] if m["role"] == "user")
            answer = json.dumps(self.readings.get(said, {"intent": ""}), ensure_ascii=False)
            if self.behaviour == "slow":
                time.sleep(self.delay)
            if self.behaviour == "http500":
                return jsonify(error={"message": "upstream overloaded", "type": "server_error"}), 500
            if self.behaviour == "http401":
                return jsonify(error={"message": "Incorrect API key provided", "type": "invalid_request_error"}), 401
            if self.behaviour == "not_json":
                return "<html>502 Bad Gateway</html>", 502
            if self.behaviour == "no_json_mode" and "response_format" in body:
                return jsonify(error={"message": "response_format is not supported", "type": "invalid_request_error"}), 400
            if self.behaviour == "prose":
                answer = "好的，我来帮您分析一下这条消息的意图。"
            if self.behaviour == "fenced":
                answer = f"当然可以：\n```json\n{answer}\n```"
            return jsonify(id="chatcmpl-" + secrets.token_hex(6), object="chat.completion", created=int(time.time()),
                           model=body.get("model", ""),
                           choices=[{"index": 0, "message": {"role": "assistant", "content": answer},
                                     "finish_reason": "stop"}],
                           usage={"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2})

        return app
