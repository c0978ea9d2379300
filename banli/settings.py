"""The one module that reads the environment (docs/architecture.md §1).

Everything else receives a `Settings`; tests build their own instead of patching os.environ.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping

WECOM_API_BASE = "https://qyapi.weixin.qq.com"
DINGTALK_API_BASE = "https://api.dingtalk.com"
DINGTALK_OAPI_BASE = "https://oapi.dingtalk.com"


@dataclass(frozen=True)
class WeComSettings:
    corp_id: str
    agent_id: int
    secret: str
    token: str
    aes_key: str
    api_base: str = WECOM_API_BASE


@dataclass(frozen=True)
class DingTalkSettings:
    app_key: str
    app_secret: str
    robot_code: str
    api_base: str = DINGTALK_API_BASE
    oapi_base: str = DINGTALK_OAPI_BASE
    card_template_id: str = ""
    # How DingTalk reaches Banli (docs/dingtalk.md §2): "http" posts to /dingtalk/callback and
    # /dingtalk/card (a public HTTPS URL); "stream" is an outbound WebSocket held by `banli stream`
    # (or a thread of `banli web` in embedded mode), so no public URL is needed.
    mode: str = "http"
    # HTTP event subscription (开发配置 → 事件订阅, docs/dingtalk.md §3): POST /dingtalk/events is served
    # only when both are set.
    event_token: str = ""
    event_aes_key: str = ""

    @property
    def stream(self) -> bool:
        return self.mode == "stream"


DINGTALK_MODES = ("http", "stream")


@dataclass(frozen=True)
class LanguageModelSettings:
    """An OpenAI-compatible chat completions API, asked only about messages the rules cannot place
    (handlers/model_guess.py). Off unless BANLI_LLM_URL is set."""

    url: str  # the API's base, e.g. https://api.openai.com/v1 or http://llm.intranet:8000/v1
    model: str
    key: str = ""  # sent as `Authorization: Bearer …` when set; a local server may need none
    # Short: the question is asked inside the worker job that answers the message, and a person
    # waiting for a reply is better served by the plain hint than by a long wait.
    timeout_seconds: float = 8.0


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///banli.db"
    redis_url: str = ""  # empty: embedded mode (in-process fakeredis + threads)
    timezone: str = "Asia/Shanghai"
    wecom: WeComSettings | None = None
    dingtalk: DingTalkSettings | None = None
    # How long a dispatched outbox row belongs to one worker before it is offered again.
    outbox_lease_seconds: int = 60
    dispatch_interval_seconds: float = 1.0
    # WeCom has no replay window of its own; a callback older than this is refused (dedup covers retries).
    callback_max_age_seconds: int = 600
    queue_name: str = "banli"
    # Process options (the CLI's): where `banli web` listens, how many web processes, how many jobs a
    # `banli worker` runs at once (0: the default for this machine's cores), logging.
    port: int = 8000
    host: str = "0.0.0.0"
    web_concurrency: int = 2
    worker_concurrency: int = 0
    log_level: str = "INFO"
    log_format: str = "text"  # or "json": one object per line, for log shippers (banli/logs.py)
    access_log: bool = False
    # BANLI_ADMINS: the first admins, as (platform, user id); platform "" matches either platform.
    # They are made admins on every message they send (workflows/roles.py grant_env_admin).
    admins: tuple[tuple[str, str], ...] = ()
    # Where the platforms reach this Banli (https://banli.example.com); `banli doctor` calls its
    # callback routes there to prove they answer. Empty: that check is skipped.
    public_url: str = ""
    # Where photos people send are kept (storage/files.py: content-addressed by SHA-256), and the
    # largest one accepted (10 MB: also WeCom's limit for sending an image back, docs/wecom.md §5.2).
    files_dir: str = "files"
    files_max_bytes: int = 10 * 1024 * 1024
    language_model: LanguageModelSettings | None = None  # optional; Banli works fully without it
    # BANLI_SECRET_KEY signs the 后台 (admin console) login links and session cookies. Empty: Banli
    # generates one on first use and keeps it in the database (workflows/console.py), so every
    # process and every restart signs with the same key.
    secret_key: str = ""
    # DingTalk's monthly API call quota for the organisation (free organisations: 5,000; 专业版 and
    # add-on packs raise it): at 80 % every admin is warned once a month (workflows/api_usage.py).
    # 0: no quota, calls are only counted.
    dingtalk_monthly_quota: int = 5000

    @property
    def embedded(self) -> bool:
        return not self.redis_url

    def with_(self, **changes) -> "Settings":
        return replace(self, **changes)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, dotenv: str | Path | None = ".env") -> "Settings":
        """Build settings from `env` (default: os.environ over an optional `.env` file: a variable set
        in the environment wins). The environment itself is never changed, so two runtimes built in
        one process (tests, a CLI command inside a web process) cannot leak settings into each other."""
        if env is None:
            env = {**_dotenv_values(dotenv), **os.environ}
        return cls(
            database_url=env.get("DATABASE_URL") or "sqlite:///banli.db",
            redis_url=env.get("REDIS_URL", ""),
            timezone=env.get("BANLI_TIMEZONE") or "Asia/Shanghai",
            wecom=_wecom_from(env),
            dingtalk=_dingtalk_from(env),
            outbox_lease_seconds=int(env.get("BANLI_OUTBOX_LEASE_SECONDS") or 60),
            dispatch_interval_seconds=float(env.get("BANLI_DISPATCH_INTERVAL") or 1.0),
            port=int(env.get("PORT") or 8000),
            host=env.get("HOST") or "0.0.0.0",
            web_concurrency=int(env.get("WEB_CONCURRENCY") or 2),
            worker_concurrency=int(env.get("BANLI_WORKER_CONCURRENCY") or 0),
            log_level=(env.get("BANLI_LOG_LEVEL") or "INFO").upper(),
            log_format=_log_format(env.get("BANLI_LOG_FORMAT") or "text"),
            access_log=bool(env.get("BANLI_ACCESS_LOG")),
            admins=parse_admins(env.get("BANLI_ADMINS", "")),
            public_url=(env.get("BANLI_PUBLIC_URL") or "").rstrip("/"),
            files_dir=env.get("BANLI_FILES_DIR") or "files",
            files_max_bytes=int(float(env.get("BANLI_FILES_MAX_MB") or 10) * 1024 * 1024),
            language_model=_language_model_from(env),
            secret_key=env.get("BANLI_SECRET_KEY", ""),
            dingtalk_monthly_quota=_count(env, "BANLI_DINGTALK_MONTHLY_QUOTA", 5000),
        )

    def describe(self) -> list[str]:
        """Start-up lines: which platforms are on, which mode, which database (no secrets)."""
        lines = [
            f"数据库 database: {_redact(self.database_url)}",
            "模式 mode: " + ("embedded (in-process queue, worker and dispatcher)" if self.embedded
                             else f"redis {_redact(self.redis_url)}"),
        ]
        lines.append("企业微信 WeCom: " + (f"on (corp {self.wecom.corp_id}, agent {self.wecom.agent_id})"
                                          if self.wecom else f"off (set {', '.join(WECOM_VARS)})"))
        lines.append("钉钉 DingTalk: " + (f"on (app {self.dingtalk.app_key}"
                                          + (", stream mode" if self.dingtalk.stream else ", http mode")
                                          + (", interactive cards" if self.dingtalk.card_template_id else
                                             ", markdown cards") + ")"
                                          if self.dingtalk else f"off (set {', '.join(DINGTALK_VARS)})"))
        model = self.language_model
        lines.append("语言模型 language model: " + (f"on ({model.model} at {_redact(model.url)}, {model.timeout_seconds:g} s)"
                                                     if model else "off (optional: set BANLI_LLM_URL, BANLI_LLM_MODEL)"))
        lines.append(f"照片 files: {self.files_dir} (≤{self.files_max_bytes // (1024 * 1024)} MB, JPEG/PNG)")
        return lines


def _dotenv_values(path: str | Path | None) -> dict[str, str]:
    if not path or not Path(path).is_file():
        return {}
    from dotenv import dotenv_values

    # A bare `KEY` line (no `=`) has the value None: treat it as unset.
    return {k: v for k, v in dotenv_values(path).items() if v is not None}


WECOM_VARS = ("WECOM_CORP_ID", "WECOM_AGENT_ID", "WECOM_SECRET", "WECOM_TOKEN", "WECOM_AES_KEY")
DINGTALK_VARS = ("DINGTALK_APP_KEY", "DINGTALK_APP_SECRET")


def _wecom_from(env: Mapping[str, str]) -> WeComSettings | None:
    if not all(env.get(k) for k in WECOM_VARS):
        return None
    return WeComSettings(
        corp_id=env["WECOM_CORP_ID"],
        agent_id=int(env["WECOM_AGENT_ID"]),
        secret=env["WECOM_SECRET"],
        token=env["WECOM_TOKEN"],
        aes_key=env["WECOM_AES_KEY"],
        api_base=(env.get("WECOM_API_BASE") or WECOM_API_BASE).rstrip("/"),
    )


def _dingtalk_from(env: Mapping[str, str]) -> DingTalkSettings | None:
    if not all(env.get(k) for k in DINGTALK_VARS):
        return None
    return DingTalkSettings(
        app_key=env["DINGTALK_APP_KEY"],
        app_secret=env["DINGTALK_APP_SECRET"],
        # An internal app's robotCode is its AppKey (docs/dingtalk.md §1.1).
        robot_code=env.get("DINGTALK_ROBOT_CODE") or env["DINGTALK_APP_KEY"],
        api_base=(env.get("DINGTALK_API_BASE") or DINGTALK_API_BASE).rstrip("/"),
        oapi_base=(env.get("DINGTALK_OAPI_BASE") or DINGTALK_OAPI_BASE).rstrip("/"),
        card_template_id=env.get("DINGTALK_CARD_TEMPLATE_ID", ""),
        mode=_dingtalk_mode(env.get("DINGTALK_MODE") or "http"),
        event_token=env.get("DINGTALK_EVENT_TOKEN", ""),
        event_aes_key=env.get("DINGTALK_EVENT_AES_KEY", ""),
    )


def _language_model_from(env: Mapping[str, str]) -> LanguageModelSettings | None:
    url = (env.get("BANLI_LLM_URL") or "").strip().rstrip("/")
    if not url:
        return None
    model = (env.get("BANLI_LLM_MODEL") or "").strip()
    if not model:  # every OpenAI-compatible API wants one; better said at start than per message
        raise ValueError("BANLI_LLM_URL is set: set BANLI_LLM_MODEL too (the model name the API expects)")
    timeout = float(env.get("BANLI_LLM_TIMEOUT") or 8)
    if not 0 < timeout <= 60:
        raise ValueError(f"BANLI_LLM_TIMEOUT must be between 0 and 60 seconds, not {timeout:g}")
    return LanguageModelSettings(url=url, model=model, key=env.get("BANLI_LLM_KEY", ""), timeout_seconds=timeout)


PLATFORMS = ("wecom", "dingtalk")


def parse_admins(value: str) -> tuple[tuple[str, str], ...]:
    """`zhangsan, wecom:lisi ，dingtalk:0147001` → (("", "zhangsan"), ("wecom", "lisi"), ("dingtalk", "0147001")).
    A bare user id matches on either platform; commas (also full-width) or spaces separate entries."""
    entries = []
    for item in value.replace("，", ",").replace(" ", ",").split(","):
        item = item.strip()
        if not item:
            continue
        platform, sep, user = item.partition(":")
        entries.append((platform.lower(), user.strip()) if sep and platform.lower() in PLATFORMS else ("", item))
    return tuple(e for e in entries if e[1])


def _dingtalk_mode(value: str) -> str:
    value = value.strip().lower()
    if value not in DINGTALK_MODES:
        raise ValueError(f"DINGTALK_MODE must be http or stream, not {value!r}")
    return value


def _count(env: Mapping[str, str], name: str, default: int) -> int:
    value = (env.get(name) or "").strip().replace(",", "").replace("_", "")
    if not value:
        return default
    if not value.isdigit():
        raise ValueError(f"{name} must be a whole number of calls (0: none), not {env[name]!r}")
    return int(value)


def _log_format(value: str) -> str:
    value = value.strip().lower()
    if value not in ("text", "json"):
        raise ValueError(f"BANLI_LOG_FORMAT must be text or json, not {value!r}")
    return value


def _redact(url: str) -> str:
    """Hide a password in a URL such as postgresql://u:pw@host/db."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in creds else url
