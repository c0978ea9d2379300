"""Logs an operator can use: one line per callback and one per job, text or JSON (BANLI_LOG_FORMAT),
from every process — the Procfile's own gunicorn line included — and no user text in error lines."""

from __future__ import annotations

import json
import logging
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from sqlalchemy import text

from banli import delivery, logs
from banli.settings import Settings
from bot.wecom.standin import WeComPeer
from conftest import WECOM_AES_KEY, WECOM_AGENT, WECOM_TOKEN, wait_for
from servers import free_port, wait_healthy
from test_processes import CORP, _env, _stop, wecom_api  # noqa: F401 — a fixture

ROOT = Path(__file__).resolve().parent.parent
SECRET = "sk-live-9f8e7d6c5b4a"


def _fields(record: logging.LogRecord) -> dict:
    return getattr(record, "banli_fields", {})


def _lines(caplog, **want) -> list[dict]:
    found = [_fields(r) for r in caplog.records]
    return [f for f in found if f and all(f.get(k) == v for k, v in want.items())]


def test_a_callback_and_its_jobs_each_log_one_line(stack, caplog):
    inner = stack.wecom_peer.text("zhangsan", "帮助")
    assert stack.post_wecom(inner).status_code == 200
    wait_for(lambda: stack.wecom.cards_to("zhangsan"))
    assert stack.post_wecom(inner).status_code == 200  # WeCom's retry of the same message
    assert stack.post_wecom("<xml>garbage</xml>", timestamp=1).status_code == 403

    callbacks = _lines(caplog, platform="wecom", status=200)
    assert [c["outcome"] for c in callbacks] == ["accepted", "duplicate"]
    assert callbacks[0]["event_id"] and callbacks[0]["event_id"] == callbacks[1]["event_id"]
    assert all(isinstance(c["ms"], float) for c in callbacks)
    refused = _lines(caplog, platform="wecom", outcome="refused")
    assert [r["status"] for r in refused] == [403]

    inbound = wait_for(lambda: _lines(caplog, kind="inbound", outcome="done"))
    message = wait_for(lambda: _lines(caplog, kind="message", outcome="done"))
    assert len(inbound) == 1 and len(message) == 1
    assert inbound[0]["platform"] == "wecom" and inbound[0]["outbox_id"] != message[0]["outbox_id"]


def test_json_format_is_one_object_per_line_with_the_fields():
    assert Settings.from_env({"BANLI_LOG_FORMAT": "JSON"}, dotenv=None).log_format == "json"
    assert Settings.from_env({}, dotenv=None).log_format == "text"
    with pytest.raises(ValueError, match="BANLI_LOG_FORMAT"):
        Settings.from_env({"BANLI_LOG_FORMAT": "xml"}, dotenv=None)

    record = logging.getLogger("banli.delivery").makeRecord(
        "banli.delivery", logging.INFO, __file__, 1, "outbox %s done", (7,), None,
        extra=logs.fields(outbox_id=7, kind="message", platform="wecom", outcome="done", ms=3.2))
    line = logs.JsonFormatter().format(record)
    assert "\n" not in line
    obj = json.loads(line)
    assert {k: obj[k] for k in ("level", "logger", "msg", "outbox_id", "kind", "platform", "outcome", "ms")} == {
        "level": "INFO", "logger": "banli.delivery", "msg": "outbox 7 done", "outbox_id": 7, "kind": "message",
        "platform": "wecom", "outcome": "done", "ms": 3.2}
    assert obj["ts"].endswith("+00:00")
    assert logs.TextFormatter().format(record).endswith("outbox 7 done outbox_id=7 kind=message platform=wecom "
                                                         "outcome=done ms=3.2")


def test_error_lines_and_stored_errors_never_repeat_what_the_user_wrote(stack, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)

    def leaky_handler(ctx):
        # A bug whose exception carries the user's words, on the database: SQL with their text as a parameter.
        ctx.session.execute(text("SELECT CAST(:said AS INTEGER) FROM no_such_table"), {"said": ctx.event.text})

    def leaky_send(runtime, row, session):
        session.execute(text("INSERT INTO no_such_table (x) VALUES (:x)"), {"x": f"card for {SECRET}"})

    stack.runtime.router.add_command("记下", leaky_handler, prefix=True)
    monkeypatch.setitem(delivery.PERFORMERS, "message", leaky_send)
    assert stack.post_wecom(stack.wecom_peer.text("zhangsan", f"记下 我的密钥 {SECRET}")).status_code == 200

    wait_for(lambda: _lines(caplog, kind="inbound", outcome="failed"))
    wait_for(lambda: stack.count("outbox", "WHERE kind = 'message' AND last_error <> ''"))
    assert any(r.levelname == "ERROR" and "handler failed" in r.getMessage() for r in caplog.records)
    text_lines = "\n".join(logs.TextFormatter().format(r) for r in caplog.records)
    json_lines = "\n".join(logs.JsonFormatter().format(r) for r in caplog.records)
    assert "no_such_table" in text_lines or "no such table" in text_lines or "ProgrammingError" in text_lines
    assert SECRET not in text_lines and SECRET not in json_lines
    with stack.runtime.engine.connect() as conn:
        stored = conn.execute(text("SELECT last_error FROM outbox WHERE last_error <> ''")).scalars().all()
    assert stored and all("OperationalError" in e or "ProgrammingError" in e for e in stored)
    assert all(SECRET not in e for e in stored)


def _procfile_web(port: int) -> list[str]:
    line = next(l for l in (ROOT / "Procfile").read_text().splitlines() if l.startswith("web:"))
    command = line.split(":", 1)[1].replace("${PORT:-8000}", str(port)).replace("${WEB_CONCURRENCY:-2}", "1")
    args = shlex.split(command)
    assert args[0] == "gunicorn"
    return [sys.executable, "-m", "gunicorn", *args[1:]]


def _gunicorn_callback_log(tmp_path, api, command: list[str], **extra: str) -> str:
    """Run `command` (a gunicorn serving bot.app:create_app()), send it one WeCom message, return its output."""
    env = _env(f"sqlite:///{tmp_path / 'banli.db'}", api, **extra)
    upgrade = subprocess.run([sys.executable, "-m", "banli.cli", "db", "upgrade"], env=env, cwd=ROOT,
                             capture_output=True, text=True, timeout=60)
    assert upgrade.returncode == 0, upgrade.stderr
    port = int(command[command.index("--bind") + 1].rsplit(":", 1)[1])
    log_path = tmp_path / "gunicorn.log"
    with open(log_path, "w") as out:
        web = subprocess.Popen(command, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", web, log_path)
        peer = WeComPeer(token=WECOM_TOKEN, aes_key=WECOM_AES_KEY, corp_id=CORP, agent_id=WECOM_AGENT)
        query, body = peer.callback(peer.text("zhangsan", "帮助"))
        assert requests.post(f"http://127.0.0.1:{port}/wecom/callback?{query}", data=body, timeout=5).status_code == 200
        wait_for(lambda: "callback accepted" in log_path.read_text(), timeout=15)
    finally:
        _stop(web)
    return log_path.read_text()


def test_the_procfiles_web_line_logs_each_callback_as_json(tmp_path, wecom_api):  # noqa: F811
    _, api = wecom_api
    command = _procfile_web(free_port())
    command[command.index("--bind") + 1] = command[command.index("--bind") + 1].replace("0.0.0.0", "127.0.0.1")
    output = _gunicorn_callback_log(tmp_path, api, command, BANLI_LOG_FORMAT="json")
    objects = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    callback = [o for o in objects if o.get("logger") == "banli.wecom"]
    assert len(callback) == 1 and callback[0]["outcome"] == "accepted" and callback[0]["event_id"]
    assert callback[0]["level"] == "INFO" and {"ts", "msg", "ms", "status"} <= set(callback[0])
    assert any(o["logger"] == "gunicorn.error" for o in objects)  # gunicorn's own lines too


def test_a_bare_gunicorn_still_logs_banlis_info_lines(tmp_path, wecom_api):  # noqa: F811
    _, api = wecom_api
    port = free_port()
    output = _gunicorn_callback_log(tmp_path, api, [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}",
                                                    "--workers", "1", "bot.app:create_app()"])
    line = next(l for l in output.splitlines() if "callback accepted" in l)
    assert "INFO banli.wecom: wecom callback accepted" in line and "outcome=accepted" in line and "ms=" in line
