"""`banli doctor` for DingTalk: the real API, called the way Banli calls it (docs/dingtalk.md §8).

Nothing reaches anyone: the token, a read-status query for the robot, directory reads, a card
instance that is created but never delivered, the Stream gateway's connection-open (its ticket is
left unused), and — with a public URL in HTTP mode — two signed probes of Banli's own callback route.
Its own token fetch leaves a running Banli's token valid: a refetch returns the same one (§5.1).
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import requests

from banli.settings import DingTalkSettings
from bot.checks import Check, Unreachable, call, failed, info, passed
from bot.dingtalk.client import CALLBACK_ROUTE_KEY, TOKEN_HEADER
from bot.dingtalk.verify import robot_sign

TOKEN_T = "获取 accessToken / token"
ROBOT_T = "机器人 robotCode / robot code"
DEPT_T = "通讯录读取·部门 / directory read: department"
USER_T = "通讯录读取·成员 / directory read: user"
CARD_T = "卡片模板 / card template"
MODE_T = "消息接收模式 / receive mode"
STREAM_T = "Stream 连接 / stream gateway"
HTTP_T = "HTTP 回调地址 / callback URL"

CONSOLE = "开发者后台 open-dev.dingtalk.com → 应用开发 → 企业内部应用 → 办理"
PERMISSION_FIX = f"{CONSOLE} → 权限管理：申请开通 {{scopes}} / grant the API permission {{scopes}}"
DIRECTORY_SCOPES = {"department": "qyapi_get_department_list（通讯录部门信息读权限）",
                    "user": "qyapi_get_member（成员信息读权限）"}
# oapi errcodes (docs/dingtalk.md §8): no API permission; outside the contacts scope.
NO_PERMISSION, OUT_OF_SCOPE = 60011, 50004
BUSY = {-1, 90018, 90002}  # 系统繁忙, QPS limits (§4.8): a retry, not a setting, fixes these
RETRY_FIX = "钉钉繁忙或限流，稍后重试 / DingTalk is busy or throttling: run it again later"
PROBE_QUERY_KEY = "banli-doctor-probe"  # a processQueryKey no send ever returned


def checks(settings: DingTalkSettings, public_url: str = "") -> list[Check]:
    http = requests.Session()
    out: list[Check] = []
    try:
        token = _token(http, settings, out)
        if token:
            _robot(http, settings, token, out)
            _directory(http, settings, token, out)
            _card_template(http, settings, token, out)
        _receiving(http, settings, public_url, out)
    except Unreachable as exc:
        out.append(failed(f"连接钉钉 / reach DingTalk ({settings.api_base})", str(exc),
                          "检查本机能否访问 api.dingtalk.com:443 与 oapi.dingtalk.com:443（代理、防火墙） "
                          "/ check outbound HTTPS"))
    return out


def _error(status: int, body: dict[str, Any]) -> str:
    """A new-API refusal as DingTalk gives it: HTTP status, `code`, `message` (and requiredScopes)."""
    scopes = (body.get("accessdenieddetail") or {}).get("requiredScopes") or []
    text = f"HTTP {status} {body.get('code', '')} {str(body.get('message', ''))[:160]}".rstrip()
    return text + (f" requiredScopes={','.join(map(str, scopes))}" if scopes else "")


def _permission_denied(status: int, body: dict[str, Any]) -> bool:
    return status == 403 and "PermissionDenied" in str(body.get("code", ""))


def _scopes(body: dict[str, Any], default: str) -> str:
    scopes = (body.get("accessdenieddetail") or {}).get("requiredScopes") or []
    return ", ".join(map(str, scopes)) or default


def _token(http: requests.Session, settings: DingTalkSettings, out: list[Check]) -> str:
    status, body = call(http, "POST", settings.api_base + "/v1.0/oauth2/accessToken",
                        json={"appKey": settings.app_key, "appSecret": settings.app_secret})
    if status == 200 and body.get("accessToken"):
        out.append(passed(TOKEN_T, f"oauth2/accessToken ok (app {settings.app_key}); 应用密钥正确，"
                                   "回调签名可校验 the app secret is right, so callback signatures verify"))
        return str(body["accessToken"])
    fix = (f"DINGTALK_APP_KEY / DINGTALK_APP_SECRET 不对：{CONSOLE} → 凭证与基础信息 → Client ID / Client Secret "
           "/ copy Client ID and Client Secret again")
    out.append(failed(TOKEN_T, f"oauth2/accessToken: {_error(status, body)}", fix))
    for title in (ROBOT_T, DEPT_T, USER_T, CARD_T):
        out.append(info(title, "未检查：需要先拿到 accessToken / not checked: needs a token"))
    return ""


def _robot(http: requests.Session, settings: DingTalkSettings, token: str, out: list[Check]) -> None:
    """GET /v1.0/robot/oToMessages/readStatus (查询机器人单聊消息已读状态) with a processQueryKey no send
    returned: a query, so nothing is sent. An unknown or foreign robotCode is refused with a
    `…robotCode…` code; any other answer (the key not found) means the robot code was accepted."""
    status, body = call(http, "GET", settings.api_base + "/v1.0/robot/oToMessages/readStatus",
                        headers={TOKEN_HEADER: token},
                        params={"robotCode": settings.robot_code, "processQueryKey": PROBE_QUERY_KEY})
    code = str(body.get("code", ""))
    if _permission_denied(status, body):
        out.append(failed(ROBOT_T, f"readStatus: {_error(status, body)}",
                          PERMISSION_FIX.format(scopes=_scopes(body, "qyapi_robot_sendmsg（企业内机器人发送消息权限）"))))
    elif "robot" in code.lower():
        out.append(failed(ROBOT_T, f"robotCode {settings.robot_code}: {_error(status, body)}",
                          f"{CONSOLE} → 应用能力 → 机器人：添加并发布机器人；DINGTALK_ROBOT_CODE 填机器人的 RobotCode"
                          "（企业内部应用即 AppKey，可不设） / add and publish the robot; its RobotCode is the AppKey"))
    elif status >= 500:
        out.append(failed(ROBOT_T, f"readStatus: {_error(status, body)}", RETRY_FIX))
    else:
        out.append(passed(ROBOT_T, f"robotCode {settings.robot_code} 有效 accepted (readStatus, nothing sent)"))


def _oapi(http: requests.Session, settings: DingTalkSettings, token: str, path: str,
          body: dict[str, Any]) -> tuple[int, str, dict[str, Any]]:
    _, answer = call(http, "POST", settings.oapi_base + path, params={"access_token": token}, json=body)
    code = answer.get("errcode", 0)
    return (code if isinstance(code, int) else -1), str(answer.get("errmsg", ""))[:160], answer


def _directory_fix(kind: str, code: int) -> str:
    if code in BUSY:
        return RETRY_FIX
    if code == OUT_OF_SCOPE:
        return (f"{CONSOLE} → 权限管理 → 通讯录权限范围：设为「全部员工」或包含要用办理的部门 "
                "/ widen the app's contacts scope")
    return PERMISSION_FIX.format(scopes=DIRECTORY_SCOPES[kind])


def _directory(http: requests.Session, settings: DingTalkSettings, token: str, out: list[Check]) -> None:
    """One department and one user, through the calls Banli makes (topapi/v2/department/get and
    topapi/v2/user/get); their ids come from topapi/v2/department/listsub and topapi/v2/user/list."""
    code, msg, answer = _oapi(http, settings, token, "/topapi/v2/department/listsub",
                              {"dept_id": 1, "language": "zh_CN"})
    if code != 0:
        out.append(failed(DEPT_T, f"department/listsub: {code} {msg}", _directory_fix("department", code)))
        dept = 1
    else:
        children = [d.get("dept_id") for d in answer.get("result") or [] if d.get("dept_id")]
        dept = children[0] if children else 1
        code, msg, answer = _oapi(http, settings, token, "/topapi/v2/department/get",
                                  {"dept_id": dept, "language": "zh_CN"})
        if code == 0:
            out.append(passed(DEPT_T, f"department/get {dept}: 「{(answer.get('result') or {}).get('name', '')}」"))
        else:
            out.append(failed(DEPT_T, f"department/get {dept}: {code} {msg}", _directory_fix("department", code)))
    code, msg, answer = _oapi(http, settings, token, "/topapi/v2/user/list",
                              {"dept_id": dept, "cursor": 0, "size": 1, "language": "zh_CN"})
    if code != 0:
        out.append(failed(USER_T, f"user/list dept {dept}: {code} {msg}", _directory_fix("user", code)))
        return
    users = [u.get("userid") for u in (answer.get("result") or {}).get("list") or [] if u.get("userid")]
    if not users:
        out.append(info(USER_T, f"部门 {dept} 没有成员，未读取成员 no user in department {dept}: not checked"))
        return
    code, msg, answer = _oapi(http, settings, token, "/topapi/v2/user/get", {"userid": users[0], "language": "zh_CN"})
    if code == 0:
        out.append(passed(USER_T, f"user/get {users[0]}: 「{(answer.get('result') or {}).get('name', '')}」"))
    else:
        out.append(failed(USER_T, f"user/get {users[0]}: {code} {msg}", _directory_fix("user", code)))


def _card_template(http: requests.Session, settings: DingTalkSettings, token: str, out: list[Check]) -> None:
    """POST /v1.0/card/instances (创建卡片, without 投放): an unknown template is refused there. No API
    looks a template up, so this creates one instance that is never delivered: nobody sees it."""
    if not settings.card_template_id:
        out.append(info(CARD_T, "未配置 DINGTALK_CARD_TEMPLATE_ID：发 markdown 消息（点链接代替按钮） "
                                "/ not set: markdown messages with tap-to-send links"))
        return
    status, body = call(http, "POST", settings.api_base + "/v1.0/card/instances", headers={TOKEN_HEADER: token},
                        json={"cardTemplateId": settings.card_template_id,
                              "outTrackId": "banli-doctor-" + secrets.token_hex(8),
                              "callbackType": "HTTP", "callbackRouteKey": CALLBACK_ROUTE_KEY,
                              "cardData": {"cardParamMap": {}}, "userIdType": 1})
    if 200 <= status < 300:
        out.append(passed(CARD_T, f"{settings.card_template_id} 可用 accepted (instance created, not delivered)"))
    elif _permission_denied(status, body):
        out.append(failed(CARD_T, f"card/instances: {_error(status, body)}",
                          PERMISSION_FIX.format(scopes=_scopes(body, "Card.Instance.Write（互动卡片实例写权限）"))))
    else:
        out.append(failed(CARD_T, f"{settings.card_template_id}: {_error(status, body)}",
                          "开发者后台 → 卡片平台 → 模板：发布模板并复制模板 ID（…​.schema）到 DINGTALK_CARD_TEMPLATE_ID，"
                          "模板须属于这个应用 / publish the template and copy its id; it must belong to this app"))


def _receiving(http: requests.Session, settings: DingTalkSettings, public_url: str, out: list[Check]) -> None:
    if settings.mode == "stream":
        out.append(_gateway(http, settings))
    elif settings.mode != "http":
        out.append(failed(MODE_T, f"DINGTALK_MODE={settings.mode!r}", "DINGTALK_MODE 只能是 http 或 stream"))
    else:
        out.append(_callback_url(http, settings, public_url))


def _gateway(http: requests.Session, settings: DingTalkSettings) -> Check:
    """POST /v1.0/gateway/connections/open: the Stream client's first step (docs/dingtalk.md §2.1).
    The ticket it returns is single-use and expires unused in 90 s, so asking for one is harmless."""
    status, body = call(http, "POST", settings.api_base + "/v1.0/gateway/connections/open", json={
        "clientId": settings.app_key, "clientSecret": settings.app_secret,
        "subscriptions": [{"type": "CALLBACK", "topic": "/v1.0/im/bot/messages/get"},
                          {"type": "CALLBACK", "topic": "/v1.0/card/instances/callback"}],
        "ua": "banli-doctor", "localIp": "127.0.0.1"})
    if status == 200 and body.get("endpoint") and body.get("ticket"):
        return passed(STREAM_T,
                      f"gateway/connections/open → endpoint {str(body['endpoint'])[:80]}")
    return failed(STREAM_T, f"gateway/connections/open: {_error(status, body)}",
                  f"{CONSOLE} → 应用能力 → 机器人 → 消息接收模式选「Stream 模式」并发布；允许出站访问 "
                  "api.dingtalk.com:443 与 wss-open-connection.dingtalk.com:443 / choose Stream mode, allow outbound")


def _callback_url(http: requests.Session, settings: DingTalkSettings, public_url: str) -> Check:
    """HTTP mode: Banli's POST /dingtalk/callback must refuse a wrong signature and accept one signed
    with the app secret. The signed probe has no sender and no msgId, so Banli ignores it."""
    title = HTTP_T
    if not public_url:
        return info(title, "未检查：设置 BANLI_PUBLIC_URL（或 --public-url）后检查 / set BANLI_PUBLIC_URL to check")
    url = public_url.rstrip("/") + "/dingtalk/callback"
    ts = str(int(time.time() * 1000))
    body = json.dumps({"msgtype": "banli-doctor", "robotCode": settings.robot_code})
    headers = {"Content-Type": "application/json; charset=utf-8", "timestamp": ts}
    try:
        forged = http.post(url, data=body, headers={**headers, "sign": "banli-doctor-wrong"}, timeout=(3.05, 10))
        signed = http.post(url, data=body, headers={**headers, "sign": robot_sign(ts, settings.app_secret)},
                           timeout=(3.05, 10))
    except requests.RequestException as exc:
        return failed(title, f"{url}: 无法访问 unreachable ({exc.__class__.__name__})",
                      "确认 Banli 在运行、该地址公网可访问（HTTPS） / is Banli running and public?")
    if forged.status_code < 400:
        return failed(title, f"{url}: 错误签名也被接受 HTTP {forged.status_code} a forged signature was accepted",
                      "这个地址上的不是 Banli 的回调路由 / the URL does not reach Banli's callback route")
    if signed.status_code == 404:
        return failed(title, f"{url}: HTTP 404", "那个地址上的 Banli 没有开启钉钉（缺 DINGTALK_* 变量），或地址不对")
    if signed.status_code != 200:
        return failed(title, f"{url}: 正确签名被拒 HTTP {signed.status_code} a correct signature was refused",
                      "那台 Banli 的 DINGTALK_APP_SECRET 与这里不同，改成一致 / the server runs with another app secret")
    return passed(title, f"{url} 验签正确 signatures checked; 请确认机器人的消息接收地址就是它 "
                         "(应用能力 → 机器人 → 消息接收地址)")
