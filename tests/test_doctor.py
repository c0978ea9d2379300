"""`banli doctor` run for real (cli main(), settings from the environment) against the platform
stand-ins, each told to fail the way the platform does; the callback checks call a running Banli."""

from __future__ import annotations

import pytest

from banli import cli
from tests.conftest import WECOM_AES_KEY, WECOM_TOKEN


def _env(settings, *, wecom: bool = True, dingtalk: bool = True, **extra: str) -> dict[str, str]:
    env: dict[str, str] = {}
    if wecom:
        w = settings.wecom
        env.update(WECOM_CORP_ID=w.corp_id, WECOM_AGENT_ID=str(w.agent_id), WECOM_SECRET=w.secret,
                   WECOM_TOKEN=w.token, WECOM_AES_KEY=w.aes_key, WECOM_API_BASE=w.api_base)
    if dingtalk:
        d = settings.dingtalk
        env.update(DINGTALK_APP_KEY=d.app_key, DINGTALK_APP_SECRET=d.app_secret,
                   DINGTALK_API_BASE=d.api_base, DINGTALK_OAPI_BASE=d.oapi_base)
    env.update(extra)
    return env


@pytest.fixture
def doctor(monkeypatch, tmp_path, capsys):
    """Run `banli doctor ARGS` with exactly `env` as the platform settings; (exit code, output)."""
    monkeypatch.chdir(tmp_path)  # no .env from the working copy
    for name in ("WECOM_CORP_ID", "WECOM_AGENT_ID", "WECOM_SECRET", "WECOM_TOKEN", "WECOM_AES_KEY",
                 "WECOM_API_BASE", "DINGTALK_APP_KEY", "DINGTALK_APP_SECRET", "DINGTALK_API_BASE",
                 "DINGTALK_OAPI_BASE", "DINGTALK_ROBOT_CODE", "DINGTALK_CARD_TEMPLATE_ID", "DINGTALK_MODE",
                 "BANLI_PUBLIC_URL", "BANLI_LLM_URL", "BANLI_LLM_MODEL", "BANLI_LLM_KEY", "BANLI_LLM_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)

    def run(env: dict[str, str], *args: str) -> tuple[int, str]:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        capsys.readouterr()
        code = cli.main(["doctor", *args])
        return code, capsys.readouterr().out

    return run


def _lines(output: str, title: str) -> list[str]:
    return [line for line in output.splitlines() if title in line]


def _line(output: str, title: str) -> str:
    lines = _lines(output, title)
    assert len(lines) == 1, output
    return lines[0]


def test_all_pass_with_callback_urls_exits_0(stack, doctor):
    stack.dingtalk.card_templates = {"tpl-banli.schema"}
    code, out = doctor(_env(stack.runtime.settings, DINGTALK_CARD_TEMPLATE_ID="tpl-banli.schema"),
                       "--public-url", stack.url)
    assert code == 0, out
    assert "✗" not in out
    for title in ("获取 access_token", "应用与发消息权限", "回调 Token 与 EncodingAESKey", "回调地址验证",
                  "获取 accessToken", "机器人 robotCode", "卡片模板", "HTTP 回调地址"):
        assert "✓" in _line(out, title), out
    for title in ("通讯录读取·部门", "通讯录读取·成员"):  # one line per platform
        assert [line.strip()[0] for line in _lines(out, title)] == ["✓", "✓"], out
    assert "正确回显" in _line(out, "回调地址验证")
    assert "「销售一部」" in out or "「总经办」" in out  # a department really read
    assert "ready" in out.splitlines()[-1]
    # Secrets masked, never printed.
    settings = stack.runtime.settings
    for secret in (settings.wecom.secret, settings.dingtalk.app_secret, WECOM_AES_KEY):
        assert secret not in out
    assert WECOM_TOKEN not in out  # not even the callback token
    # The card probe created an instance but delivered nothing to anyone.
    assert stack.dingtalk.undelivered and stack.dingtalk.sent == [] and stack.wecom.sent == []


def test_wrong_secrets_name_the_errcode_and_the_fix(stack, doctor):
    env = _env(stack.runtime.settings, WECOM_SECRET="not-the-secret-at-all", DINGTALK_APP_SECRET="wrong-secret-xyz")
    code, out = doctor(env)
    assert code == 1
    wecom = _line(out, "获取 access_token")
    assert "✗" in wecom and "40001" in wecom and "WECOM_SECRET 不对" in wecom and "Secret「查看」" in wecom
    ding = _line(out, "获取 accessToken")
    assert "✗" in ding and "invalidClientIdOrSecret" in ding and "Client Secret" in ding
    assert "未检查" in _line(out, "应用与发消息权限")  # later checks say why they did not run
    assert "not-the-secret-at-all" not in out and "wrong-secret-xyz" not in out
    assert "Traceback" not in out


def test_wrong_corp_id_and_agent_id(stack, doctor):
    code, out = doctor(_env(stack.runtime.settings, dingtalk=False, WECOM_AGENT_ID="1000099"))
    assert code == 1
    agent = _line(out, "应用与发消息权限")
    assert "✗" in agent and "301002" in agent and "AgentId" in agent
    assert "钉钉 DingTalk — 未配置，跳过" in out and "DINGTALK_APP_KEY" in out
    code, out = doctor({"WECOM_CORP_ID": "wwnotmine", "WECOM_AGENT_ID": str(stack.runtime.settings.wecom.agent_id)})
    token = _line(out, "获取 access_token")
    assert code == 1 and "40013" in token and "企业ID" in token


def test_no_directory_permission(stack, doctor):
    stack.wecom.directory_denied = True
    stack.dingtalk.directory_denied = True
    code, out = doctor(_env(stack.runtime.settings))
    assert code == 1
    for title in ("通讯录读取·部门", "通讯录读取·成员"):
        wecom, ding = _lines(out, title)  # WeCom's, then DingTalk's
        assert "✗" in wecom and "60011" in wecom and "可见范围" in wecom
        assert "✗" in ding and "60011" in ding and "权限管理" in ding
    assert "qyapi_get_department_list" in out and "qyapi_get_member" in out
    assert "✓" in _line(out, "获取 access_token")  # the token itself was fine


def test_unknown_card_template_and_wrong_robot_code(stack, doctor):
    stack.dingtalk.card_templates = {"tpl-banli.schema"}
    env = _env(stack.runtime.settings, wecom=False, DINGTALK_CARD_TEMPLATE_ID="tpl-typo.schema",
               DINGTALK_ROBOT_CODE="dingnotmyrobot")
    code, out = doctor(env)
    assert code == 1
    card = _line(out, "卡片模板")
    assert "✗" in card and "tpl-typo.schema" in card and "卡片平台" in card and "DINGTALK_CARD_TEMPLATE_ID" in card
    robot = _line(out, "机器人 robotCode")
    assert "✗" in robot and "robotCode.notExsit" in robot and "发布机器人" in robot
    assert stack.dingtalk.undelivered == {}


def test_stream_mode_gateway(stack, doctor):
    env = _env(stack.runtime.settings, wecom=False, DINGTALK_MODE="stream")
    code, out = doctor(env)
    assert code == 0, out
    assert "✓" in _line(out, "Stream 连接") and "endpoint" in out
    stack.dingtalk.gateway_refused = True
    code, out = doctor(env)
    gateway = _line(out, "Stream 连接")
    assert code == 1 and "✗" in gateway and "Stream 模式" in gateway and "wss-open-connection" in gateway


def test_callback_urls_that_do_not_match(stack, doctor):
    # Banli at the public URL runs with the stack's token and keys; this machine has other ones.
    env = _env(stack.runtime.settings, WECOM_TOKEN="OtherToken1", DINGTALK_APP_SECRET="x")
    stack.dingtalk.app_secret = "x"  # the platform agrees with this machine; the server does not
    code, out = doctor(env, "--public-url", stack.url)
    assert code == 1
    wecom = _line(out, "回调地址验证")
    assert "✗" in wecom and "403" in wecom and "WECOM_TOKEN" in wecom
    ding = _line(out, "HTTP 回调地址")
    assert "✗" in ding and "正确签名被拒" in ding and "DINGTALK_APP_SECRET" in ding


def test_malformed_aes_key_and_unreachable_platform(doctor):
    env = {"WECOM_CORP_ID": "wwx", "WECOM_AGENT_ID": "1", "WECOM_SECRET": "s" * 40, "WECOM_TOKEN": "tok",
           "WECOM_AES_KEY": "tooshort", "WECOM_API_BASE": "http://127.0.0.1:9"}  # port 9: nothing listens
    code, out = doctor(env, "--public-url", "http://127.0.0.1:9")
    assert code == 1
    assert "43 位" in _line(out, "回调 Token 与 EncodingAESKey")
    reach = _line(out, "连接企业微信")
    assert "✗" in reach and "网络错误 network error" in reach and "qyapi.weixin.qq.com" in reach
    assert "Traceback" not in out


def test_nothing_configured(doctor):
    code, out = doctor({})
    assert code == 1
    assert "WECOM_CORP_ID" in out and "DINGTALK_APP_KEY" in out and "没有配置任何平台" in out


def test_a_configured_language_model_is_asked_once_and_must_answer_json(stack, doctor):
    from tests.llm_standin import LanguageModelStandin

    model = LanguageModelStandin().start()
    try:
        model.readings["帮我看看我的客户有哪些"] = {"intent": "我的客户"}
        env = _env(stack.runtime.settings, BANLI_LLM_URL=model.url, BANLI_LLM_MODEL="qwen-test",
                   BANLI_LLM_KEY="sk-test-secret-key")
        code, out = doctor(env)
        assert code == 0 and "✓" in _line(out, "语言模型 / language model") and "'我的客户'" in out, out
        assert "sk-test-secret-key" not in out and len(model.calls) == 1
        model.behaviour = "http401"
        code, out = doctor(env)
        line = _line(out, "语言模型 / language model")
        assert code == 1 and "✗" in line and "HTTP 401" in line and "BANLI_LLM_KEY" in line, out
    finally:
        model.stop()


def test_no_language_model_configured_says_nothing_about_one(stack, doctor):
    code, out = doctor(_env(stack.runtime.settings))
    assert "语言模型" not in out
