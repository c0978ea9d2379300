"""The two pretend platforms of the demo: fixed fake credentials, the stand-in APIs Banli calls
(served by the demo's own server under a prefix) and the peers that sign callbacks as the real
platforms do. Nothing here is a secret: the demo talks only to itself."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, replace

from banli.settings import DingTalkSettings, Settings, WeComSettings
from bot.dingtalk.standin import DingTalkPeer, DingTalkStandin
from bot.wecom.standin import WeComPeer, WeComStandin

WECOM_PREFIX = "/sim/wecom-api"
DINGTALK_PREFIX = "/sim/dingtalk-api"

TENANT = "0001"  # tests run several demos in one process: distinct ids keep their token caches apart
AGENT_ID = 1000002
WECOM_SECRET = "banli-demo-wecom-secret"
WECOM_TOKEN = "banlidemo"
# 43 base64 characters, as WeCom's console makes them; derived so nobody mistakes it for a real key.
WECOM_AES_KEY = base64.b64encode(hashlib.sha256(b"banli-demo").digest()).decode()[:43]
DINGTALK_APP_SECRET = "banli-demo-dingtalk-app-secret"
CARD_TEMPLATE_ID = "banli-demo.card"  # only with dingtalk_cards=True: the stand-in accepts any id


@dataclass
class Platforms:
    wecom: WeComStandin
    dingtalk: DingTalkStandin
    wecom_peer: WeComPeer
    dingtalk_peer: DingTalkPeer


def corp_id(tenant: str = TENANT) -> str:
    return f"wwbanlidemo{tenant}"


def dingtalk_app_key(tenant: str = TENANT) -> str:
    return f"dingbanlidemo{tenant}"


def demo_settings(*, base_url: str, database_url: str, queue_name: str = "banli", tenant: str = TENANT,
                  dingtalk_cards: bool = False) -> Settings:
    """Embedded mode always (no Redis), whatever the environment says; both platforms on, pointed
    at the stand-ins on `base_url`."""
    dingtalk_api = base_url + DINGTALK_PREFIX
    return Settings(
        database_url=database_url,
        redis_url="",
        timezone="Asia/Shanghai",
        wecom=WeComSettings(corp_id=corp_id(tenant), agent_id=AGENT_ID, secret=WECOM_SECRET, token=WECOM_TOKEN,
                            aes_key=WECOM_AES_KEY, api_base=base_url + WECOM_PREFIX),
        dingtalk=DingTalkSettings(app_key=dingtalk_app_key(tenant), app_secret=DINGTALK_APP_SECRET,
                                  robot_code=dingtalk_app_key(tenant), api_base=dingtalk_api, oapi_base=dingtalk_api,
                                  card_template_id=CARD_TEMPLATE_ID if dingtalk_cards else ""),
        dispatch_interval_seconds=0.5,
        queue_name=queue_name,
        files_dir="banli-demo-files",  # beside banli-demo.db: the photos people send in the simulator
        public_url=base_url,  # 后台 links point at the demo itself
    )


def make_platforms(settings: Settings, base_url: str, *, wecom_users: dict, dingtalk_users: dict,
                   departments: dict[int, str]) -> Platforms:
    wecom = WeComStandin(corp_id=settings.wecom.corp_id, secret=WECOM_SECRET, agent_id=AGENT_ID,
                         users=wecom_users, departments=departments)
    app_key = settings.dingtalk.app_key
    dingtalk = DingTalkStandin(app_key=app_key, app_secret=DINGTALK_APP_SECRET, robot_code=app_key,
                               users=dingtalk_users, departments=departments)
    # sessionWebhooks must sit on the oapi host Banli is configured with, or it will not use them.
    dingtalk.base_url = base_url + DINGTALK_PREFIX
    return Platforms(
        wecom=wecom, dingtalk=dingtalk,
        wecom_peer=WeComPeer(token=WECOM_TOKEN, aes_key=WECOM_AES_KEY, corp_id=settings.wecom.corp_id,
                             agent_id=AGENT_ID),
        dingtalk_peer=DingTalkPeer(app_secret=DINGTALK_APP_SECRET, robot_code=app_key, standin=dingtalk),
    )


class DingTalkCards:
    """The demo's 钉钉 message switch: interactive cards (the card template, as a company with one
    configured gets them) or the markdown fallback with tap-to-send links (a company without one).
    Flipping it swaps the template id in the running DingTalk client's settings, so the next message
    Banli sends shows the other way; cards already on screen stay as they were, and taps on either
    keep working (a card tap comes back to /dingtalk/card, a link sends its words)."""

    def __init__(self, runtime) -> None:
        self.runtime = runtime

    @property
    def on(self) -> bool:
        return bool(self.runtime.clients["dingtalk"].settings.card_template_id)

    def set(self, on: bool) -> bool:
        client = self.runtime.clients["dingtalk"]
        client.settings = replace(client.settings, card_template_id=CARD_TEMPLATE_ID if on else "")
        return self.on
