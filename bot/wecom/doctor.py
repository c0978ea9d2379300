"""`banli doctor` for WeCom: the real API, called the way Banli calls it (docs/wecom.md §7).

Read-only: gettoken, agent/get, department/get, user/simplelist, user/get, and — with a public URL —
one signed URL verification against Banli's own GET /wecom/callback. Nothing is sent to anyone.
The doctor fetches its own token, bypassing Banli's cache. Should that retire the token a running
Banli holds (the current docs no longer promise the same token on a refetch, docs/wecom.md §4.3),
Banli's client meets a token error, fetches anew and retries once (bot/wecom/client.py).
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Any
from urllib.parse import urlencode

import requests

from banli.settings import WeComSettings
from bot.checks import Check, Unreachable, call, failed, info, passed
from bot.wecom.crypto import CallbackCrypto, signature

TOKEN_T = "获取 access_token / token"
AGENT_T = "应用与发消息权限 / app & sending rights"
DEPT_T = "通讯录读取·部门 / directory read: department"
USER_T = "通讯录读取·成员 / directory read: user"
KEYS_T = "回调 Token 与 EncodingAESKey / callback token & AES key"
URL_T = "回调地址验证 / callback URL verification"

APP_PAGE = "管理后台 work.weixin.qq.com → 应用管理 → 自建应用 → 办理"
VISIBLE_FIX = (f"{APP_PAGE} → 可见范围：加入要用办理的部门或成员（应用 Secret 只能读可见范围内的通讯录）"
               " / add the departments or people to the app's visible range")
# errcode → the fix (docs/wecom.md §7); anything else is shown with WeCom's own errmsg.
TOKEN_FIXES = {
    40001: f"WECOM_SECRET 不对：{APP_PAGE} → Secret「查看」，发到企业微信后复制 / WECOM_SECRET is wrong",
    40091: f"WECOM_SECRET 不对或已重置：{APP_PAGE} → Secret「查看」 / WECOM_SECRET is wrong or was reset",
    40013: "WECOM_CORP_ID 不对：管理后台 → 我的企业 → 企业信息 → 企业ID / WECOM_CORP_ID is wrong",
    60020: f"本机 IP 不在企业可信IP：{APP_PAGE} → 企业可信IP，加入本机出口 IP / add this server's IP to the trusted IPs",
}
DIRECTORY_FIXES = {
    60011: VISIBLE_FIX,
    48002: f"接口无权限：{APP_PAGE} → 检查 API 权限 / the app may not call this API",
    60020: TOKEN_FIXES[60020],
    -1: "企业微信系统繁忙，稍后重试 / WeCom is busy: run it again later",
    45009: "接口调用超过限制，稍后重试 / API rate limit: run it again later",
}


def checks(settings: WeComSettings, public_url: str = "") -> list[Check]:
    http = requests.Session()
    base = settings.api_base + "/cgi-bin/"
    result = [_keys(settings)]
    try:
        token = _token(http, base, settings, result)
        if token:
            agent = _agent(http, base, settings, token, result)
            _directory(http, base, token, agent, result)
    except Unreachable as exc:
        result.append(failed(f"连接企业微信 / reach WeCom ({settings.api_base})", str(exc),
                             "检查本机能否访问 qyapi.weixin.qq.com:443（代理、防火墙） / check outbound HTTPS"))
    result.append(_callback_url(http, settings, public_url))
    return result


def _errcode(body: dict[str, Any]) -> tuple[int, str]:
    code = body.get("errcode", 0)
    return (code if isinstance(code, int) else -1), str(body.get("errmsg", ""))[:160]


def _token(http: requests.Session, base: str, settings: WeComSettings, out: list[Check]) -> str:
    _, body = call(http, "GET", base + "gettoken",
                   params={"corpid": settings.corp_id, "corpsecret": settings.secret})
    code, msg = _errcode(body)
    if code == 0 and body.get("access_token"):
        out.append(passed(TOKEN_T, f"gettoken ok (corp {settings.corp_id})"))
        return str(body["access_token"])
    out.append(failed(TOKEN_T, f"gettoken {code} {msg}",
                      TOKEN_FIXES.get(code, "对照管理后台核对 WECOM_CORP_ID 与 WECOM_SECRET / check both")))
    for title in (AGENT_T, DEPT_T, USER_T):
        out.append(info(title, "未检查：需要先拿到 access_token / not checked: needs a token"))
    return ""


def _agent(http: requests.Session, base: str, settings: WeComSettings, token: str,
           out: list[Check]) -> dict[str, Any]:
    """agent/get: the app exists for this secret, is enabled, and someone can see it (receive messages).
    A token only reads its own app, so a mismatched WECOM_AGENT_ID fails here."""
    _, body = call(http, "GET", base + "agent/get", params={"access_token": token, "agentid": settings.agent_id})
    code, msg = _errcode(body)
    if code != 0:
        out.append(failed(AGENT_T, f"agent/get agentid={settings.agent_id}: {code} {msg}",
                          f"WECOM_AGENT_ID 应是 Secret 所属应用的 AgentId（{APP_PAGE} → AgentId） "
                          "/ WECOM_AGENT_ID must be the AgentId of the app whose Secret you set"))
        return {}
    users = [u.get("userid") for u in (body.get("allow_userinfos") or {}).get("user") or [] if u.get("userid")]
    parties = list((body.get("allow_partys") or {}).get("partyid") or [])
    tags = list((body.get("allow_tags") or {}).get("tagid") or [])
    name = str(body.get("name") or settings.agent_id)
    if body.get("close"):
        out.append(failed(AGENT_T, f"应用「{name}」已停用 the app is disabled",
                          f"{APP_PAGE} → 启用 / enable the app"))
    elif not (users or parties or tags):
        out.append(failed(AGENT_T, f"应用「{name}」可见范围为空：没有人能收到消息 nobody can receive its messages",
                          VISIBLE_FIX))
    else:
        out.append(passed(AGENT_T, f"应用「{name}」已启用，可见范围 visible to "
                                   f"{len(parties)} 个部门 departments, {len(users)} 人 people, {len(tags)} 个标签 tags"))
    return {"users": users, "parties": parties}


def _directory(http: requests.Session, base: str, token: str, agent: dict[str, Any], out: list[Check]) -> None:
    """One department (department/get) and one user (user/get): the two calls Banli makes for every
    new employee. Their ids come from the app's visible range, else from the root department 1."""
    parties = agent.get("parties") or [1]
    users = list(agent.get("users") or [])
    dept = parties[0]
    _, body = call(http, "GET", base + "department/get", params={"access_token": token, "id": dept})
    code, msg = _errcode(body)
    if code == 0:
        out.append(passed(DEPT_T, f"department/get id={dept}: 「{(body.get('department') or {}).get('name', '')}」"))
    else:
        out.append(failed(DEPT_T, f"department/get id={dept}: {code} {msg}", DIRECTORY_FIXES.get(code, VISIBLE_FIX)))
    if not users:
        _, body = call(http, "GET", base + "user/simplelist",
                       params={"access_token": token, "department_id": dept})
        code, msg = _errcode(body)
        if code != 0:
            out.append(failed(USER_T, f"user/simplelist department_id={dept}: {code} {msg}",
                              DIRECTORY_FIXES.get(code, VISIBLE_FIX)))
            return
        users = [u.get("userid") for u in body.get("userlist") or [] if u.get("userid")]
        if not users:
            out.append(failed(USER_T, f"部门 {dept} 里没有成员 no user in department {dept}", VISIBLE_FIX))
            return
    _, body = call(http, "GET", base + "user/get", params={"access_token": token, "userid": users[0]})
    code, msg = _errcode(body)
    if code == 0:
        out.append(passed(USER_T, f"user/get {users[0]}: 「{body.get('name', '')}」"))
    else:
        out.append(failed(USER_T, f"user/get {users[0]}: {code} {msg}", DIRECTORY_FIXES.get(code, VISIBLE_FIX)))


def _keys(settings: WeComSettings) -> Check:
    """EncodingAESKey is exactly 43 letters and digits, base64 for 32 bytes (docs/wecom.md §1.1, §1.5).
    The Token may be any string WeCom accepted; a space in it is always a copy-paste slip."""
    problems = []
    if not settings.token.strip() or re.search(r"\s", settings.token):
        problems.append("WECOM_TOKEN 为空或含空格 is empty or contains whitespace")
    if not re.fullmatch(r"[A-Za-z0-9]{43}", settings.aes_key):
        problems.append(f"WECOM_AES_KEY 应为 43 位英文或数字 (now {len(settings.aes_key)} chars)")
    else:
        try:
            CallbackCrypto(settings.token, settings.aes_key, settings.corp_id)
        except ValueError:
            problems.append("WECOM_AES_KEY 不是有效的 EncodingAESKey")
    if problems:
        return failed(KEYS_T, "; ".join(problems),
                      f"{APP_PAGE} → 接收消息 → 设置API接收：「随机获取」Token 与 EncodingAESKey，原样复制 "
                      "/ copy both exactly as the console shows them")
    return passed(KEYS_T, "格式正确 well-formed (token, 43-char key)")


def _callback_url(http: requests.Session, settings: WeComSettings, public_url: str) -> Check:
    """Sign and encrypt a URL verification exactly as WeCom does when the admin clicks 保存, send it to
    Banli's GET /wecom/callback at the public URL, and expect the plain echo back (docs/wecom.md §1.2)."""
    if not public_url:
        return info(URL_T, "未检查：设置 BANLI_PUBLIC_URL（或 --public-url）后检查 / set BANLI_PUBLIC_URL to check")
    url = public_url.rstrip("/") + "/wecom/callback"
    try:
        crypto = CallbackCrypto(settings.token, settings.aes_key, settings.corp_id)
    except ValueError:
        return info(URL_T, "未检查：EncodingAESKey 无效 / not checked: the AES key is invalid")
    echo = "banli-doctor-" + secrets.token_hex(8)
    ts, nonce = str(int(time.time())), secrets.token_hex(5)
    echostr = crypto.encrypt(echo)
    query = urlencode({"msg_signature": signature(settings.token, ts, nonce, echostr), "timestamp": ts,
                       "nonce": nonce, "echostr": echostr})
    try:
        response = http.get(f"{url}?{query}", timeout=(3.05, 10))
    except requests.RequestException as exc:
        return failed(URL_T, f"{url}: 无法访问 unreachable ({exc.__class__.__name__})",
                      "确认 Banli 在运行、该地址公网可访问（HTTPS、域名解析、防火墙） / is Banli running and public?")
    if response.status_code == 200 and response.text == echo:
        return passed(URL_T, f"{url} 正确回显 echostr answered correctly")
    if response.status_code == 403:
        return failed(URL_T, f"{url}: HTTP 403 签名或企业 ID 不符 signature/corp id refused",
                      "那台 Banli 的 WECOM_TOKEN / WECOM_AES_KEY / WECOM_CORP_ID 与这里不同，改成一致 "
                      "/ the server runs with other WeCom values")
    if response.status_code == 404:
        return failed(URL_T, f"{url}: HTTP 404",
                      "那个地址上的 Banli 没有开启企业微信（缺 WECOM_* 变量），或地址不对 / WeCom is off there")
    return failed(URL_T, f"{url}: HTTP {response.status_code}, 回显不符 wrong echo",
                  "确认地址指向 Banli（不是别的服务或登录页） / the URL must reach Banli itself")
