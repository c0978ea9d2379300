"""An OpenAI-compatible chat completions API, asked for one JSON object (BANLI_LLM_URL).

The request and answer shape every such server shares (OpenAI, vLLM, llama.cpp, Ollama's /v1):
`POST {base}/chat/completions` with `model` and `messages` ([{role, content}]), the key as
`Authorization: Bearer …`; the answer's text is `choices[0].message.content`.
`response_format: {"type": "json_object"}` (JSON mode) is asked for, but not every server knows it —
one that refuses it (HTTP 400 or 422) is asked again without it, and from then on never with it — and
even where it is honoured the text is parsed defensively: a fenced ```json block, prose around the
object, or a cut-off answer (finish_reason "length") are all met in practice.

Never raises: any trouble (down, slow, 4xx/5xx, garbage) is one log line — never the person's
words — and None, and the caller answers with its usual hint.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any
from urllib.parse import urlsplit

import requests

from banli.settings import LanguageModelSettings
from bot.checks import Check, failed, passed

log = logging.getLogger("banli.llm")

MAX_ANSWER_TOKENS = 200  # an intent and a few slots; a longer answer is not one we asked for


class LanguageModel:
    def __init__(self, settings: LanguageModelSettings) -> None:
        self.settings = settings
        self.endpoint = settings.url + "/chat/completions"
        self._json_mode = True  # until the server says it does not know response_format

    def ask(self, system: str, text: str) -> dict[str, Any] | None:
        """The JSON object the model answers `text` with, under the `system` instructions; None if
        there is none in time (one log line says why)."""
        found, why = self.try_ask(system, text)
        if found is None:
            log.warning("language model at %s not used: %s", urlsplit(self.endpoint).netloc, why)
        return found

    def try_ask(self, system: str, text: str) -> tuple[dict[str, Any] | None, str]:
        """(the JSON object answered, "") or (None, why not): for `ask`, and for `banli doctor`."""
        started = time.monotonic()
        status, body, why = self._post(system, text, self.settings.timeout_seconds)
        if status in (400, 422) and self._json_mode:
            self._json_mode = False  # an older or smaller server: JSON mode is only a nicety
            left = self.settings.timeout_seconds - (time.monotonic() - started)
            if left > 0.5:
                status, body, why = self._post(system, text, left)
        if status != 200:
            return None, why or f"HTTP {status}"
        found = json_object_in(content_of(body))
        return (found, "") if found is not None else (None, "the answer holds no JSON object")

    def _post(self, system: str, text: str, timeout: float) -> tuple[int, Any, str]:
        """(HTTP status, decoded body or None, why it failed); status 0 when nothing came back."""
        request: dict[str, Any] = {
            "model": self.settings.model,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": text}],
            "temperature": 0,
            "max_tokens": MAX_ANSWER_TOKENS,
        }
        if self._json_mode:
            request["response_format"] = {"type": "json_object"}
        headers = {"Authorization": f"Bearer {self.settings.key}"} if self.settings.key else {}
        try:
            # (connect, read): the read timeout bounds each wait for bytes, which for an answer
            # this short is the whole wait.
            response = requests.post(self.endpoint, json=request, headers=headers,
                                     timeout=(min(3.05, timeout), timeout))
        except requests.RequestException as exc:
            return 0, None, exc.__class__.__name__
        try:
            return response.status_code, response.json(), ""
        except ValueError:
            return response.status_code, None, f"HTTP {response.status_code}, not JSON"


def doctor_checks(settings: LanguageModelSettings) -> list[Check]:
    """One question the rules would answer themselves, asked the way Banli asks: does the model
    answer, in time, with a JSON object?"""
    from workflows.model_reading import system_prompt

    title = "语言模型 / language model"
    started = time.monotonic()
    found, why = LanguageModel(settings).try_ask(system_prompt(), "帮我看看我的客户有哪些")
    ms = round((time.monotonic() - started) * 1000)
    if found is None:
        return [failed(title, f"{why} ({ms} ms)", "检查 BANLI_LLM_URL（以 /v1 结尾）、BANLI_LLM_MODEL、BANLI_LLM_KEY；"
                                                  "或不设 BANLI_LLM_URL，办理不需要它")]
    return [passed(title, f"answered with a JSON object in {ms} ms (intent {str(found.get('intent', ''))[:12]!r})")]


def content_of(body: Any) -> str:
    """`choices[0].message.content` of a chat completion, or "" if the body has no such thing."""
    try:
        content = body["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        return ""
    return content if isinstance(content, str) else ""


def json_object_in(text: str) -> dict[str, Any] | None:
    """The JSON object in a model's answer: the whole text, else the span from the first { to the
    last } (a ```json fence, a sentence before it); None if there is no object."""
    text = text.strip()
    for candidate in (text, text[text.find("{"):text.rfind("}") + 1] if "{" in text else ""):
        if not candidate:
            continue
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None
