"""Configuration from the environment, and one person with two platform identities."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import text

from banli import cli
from banli.settings import Settings

WECOM = dict(WECOM_CORP_ID="ww1", WECOM_AGENT_ID="1000002", WECOM_SECRET="s", WECOM_TOKEN="t",
             WECOM_AES_KEY="jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C")


def test_defaults_are_embedded_sqlite_shanghai_and_no_platform():
    settings = Settings.from_env({})
    assert settings.embedded and settings.database_url == "sqlite:///banli.db"
    assert settings.timezone == "Asia/Shanghai"
    assert settings.wecom is None and settings.dingtalk is None
    assert any("WECOM_CORP_ID" in line for line in settings.describe())


def test_a_platform_with_missing_credentials_is_off():
    partial = {k: v for k, v in WECOM.items() if k != "WECOM_SECRET"}
    assert Settings.from_env(partial).wecom is None
    assert Settings.from_env(WECOM).wecom.api_base == "https://qyapi.weixin.qq.com"


def test_dingtalk_robot_code_defaults_to_the_app_key_and_bases_can_be_overridden():
    settings = Settings.from_env({"DINGTALK_APP_KEY": "dingk", "DINGTALK_APP_SECRET": "sec",
                                  "DINGTALK_API_BASE": "http://127.0.0.1:9/", "REDIS_URL": "redis://x:6379/0"})
    assert settings.dingtalk.robot_code == "dingk"
    assert settings.dingtalk.api_base == "http://127.0.0.1:9"
    assert not settings.embedded


def test_dotenv_file_is_read(tmp_path, monkeypatch):
    for key in WECOM:
        monkeypatch.delenv(key, raising=False)
    env_file = tmp_path / ".env"
    env_file.write_text("\n".join(f"{k}={v}" for k, v in WECOM.items()) + "\nBANLI_TIMEZONE=Asia/Urumqi\n")
    monkeypatch.delenv("BANLI_TIMEZONE", raising=False)
    settings = Settings.from_env(dotenv=env_file)
    assert settings.wecom.corp_id == "ww1" and settings.timezone == "Asia/Urumqi"


def test_dotenv_file_does_not_change_the_environment_and_the_environment_wins(tmp_path, monkeypatch):
    env_file = tmp_path / ".env"
    env_file.write_text("BANLI_TIMEZONE=Asia/Urumqi\nPORT=9100\nBANLI_TEST_ONLY_MARKER=1\n")
    monkeypatch.setenv("PORT", "9200")
    monkeypatch.delenv("BANLI_TIMEZONE", raising=False)
    settings = Settings.from_env(dotenv=env_file)
    assert settings.timezone == "Asia/Urumqi" and settings.port == 9200
    assert "BANLI_TEST_ONLY_MARKER" not in os.environ and "BANLI_TIMEZONE" not in os.environ


def test_process_options_come_from_settings():
    settings = Settings.from_env({"PORT": "9000", "HOST": "127.0.0.1", "WEB_CONCURRENCY": "3",
                                  "BANLI_WORKER_CONCURRENCY": "5", "BANLI_LOG_LEVEL": "debug",
                                  "BANLI_ACCESS_LOG": "1"})
    assert (settings.port, settings.host, settings.web_concurrency) == (9000, "127.0.0.1", 3)
    assert (settings.worker_concurrency, settings.log_level, settings.access_log) == (5, "DEBUG", True)
    defaults = Settings.from_env({})
    assert (defaults.port, defaults.web_concurrency, defaults.log_level, defaults.access_log) == (8000, 2, "INFO", False)


def test_the_language_model_is_off_unless_its_url_is_set():
    assert Settings.from_env({}).language_model is None
    assert Settings.from_env({"BANLI_LLM_MODEL": "qwen", "BANLI_LLM_KEY": "sk-1"}).language_model is None
    on = Settings.from_env({"BANLI_LLM_URL": "http://llm:8000/v1/", "BANLI_LLM_MODEL": "qwen", "BANLI_LLM_KEY": "sk-1"})
    model = on.language_model
    assert (model.url, model.model, model.key, model.timeout_seconds) == ("http://llm:8000/v1", "qwen", "sk-1", 8.0)
    assert Settings.from_env({"BANLI_LLM_URL": "http://llm/v1", "BANLI_LLM_MODEL": "m",
                              "BANLI_LLM_TIMEOUT": "3"}).language_model.timeout_seconds == 3.0
    lines = "\n".join(on.describe())
    assert "语言模型 language model: on (qwen" in lines and "sk-1" not in lines
    assert "language model: off" in "\n".join(Settings.from_env({}).describe())


def test_a_language_model_url_without_a_model_name_stops_the_start():
    with pytest.raises(ValueError, match="BANLI_LLM_MODEL"):
        Settings.from_env({"BANLI_LLM_URL": "http://llm/v1"})


def test_the_dingtalk_monthly_quota_is_5000_unless_set_and_a_bad_value_stops_the_start():
    assert Settings.from_env({}).dingtalk_monthly_quota == 5000
    assert Settings.from_env({"BANLI_DINGTALK_MONTHLY_QUOTA": "205,000"}).dingtalk_monthly_quota == 205000
    assert Settings.from_env({"BANLI_DINGTALK_MONTHLY_QUOTA": "0"}).dingtalk_monthly_quota == 0
    with pytest.raises(ValueError, match="BANLI_DINGTALK_MONTHLY_QUOTA"):
        Settings.from_env({"BANLI_DINGTALK_MONTHLY_QUOTA": "五千"})


def test_secrets_are_not_printed_at_start_up():
    settings = Settings.from_env({**WECOM, "DATABASE_URL": "postgresql://banli:hunter2@db:5432/banli"})
    assert "hunter2" not in "\n".join(settings.describe())


def test_employees_link_joins_a_wecom_and_a_dingtalk_identity(database_url, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert cli.main(["employees", "link", "wecom:zhangsan", "dingtalk:0147001"]) == 0
    from storage.db import make_engine

    with make_engine(database_url).connect() as conn:
        owners = conn.execute(text("SELECT DISTINCT employee_id FROM identity")).scalars().all()
    assert len(owners) == 1
    assert cli.main(["employees", "link", "zhangsan", "dingtalk:1"]) == 2
