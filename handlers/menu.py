"""帮助 / 菜单: the main menu, what each menu button explains, and the friendly fallback.

Older staff use Banli "like WeChat": every answer they cannot act on ends with the menu buttons.
These cards name nothing of anyone's, so they are `shareable`: asked in a group, the group sees them.
"""

from __future__ import annotations

from dataclasses import replace

from cards import Button, Card
from handlers.router import Context, Routes
from workflows import roles

routes = Routes()

MENU_BUTTONS = (
    Button("客户跟进", "menu.crm", style="primary", command="客户跟进"),
    Button("报销", "menu.expense", style="primary", command="报销"),
    Button("请假", "menu.leave", command="请假"),
    Button("我的审批", "approval.todo", command="我的审批"),
    Button("帮助", "help", command="帮助"),
)

# One line for admins only: what they alone can do, and what IT runs (WeCom's subtitle holds ~112
# characters, so it stays one line). Everyone else never sees commands they would be refused.
ADMIN_LINE = "管理员可发：角色、审批规则、规则、离职；IT 同步通讯录：banli directory sync"

# What an area accepts, said the way people type it (报销 and 请假 open their forms: handlers/approvals.py).
FEATURES = {
    "menu.crm": ("客户跟进", "记拜访、记电话，定下次跟进时间，到时提醒你；拜访后发位置或照片就是签到；商机一句话推进；"
                         "没人跟进的客户在「公海」里领取。",
                 ("拜访 腾讯 聊了报价 下周三再跟进", "电话 美团 约了演示 明天下午3点", "商机 腾讯 方案报价 50万 月底签",
                  "公海", "领取 腾讯", "撤销")),
}


def menu_card(ctx: Context, greeting: str = "") -> Card:
    # Until the directory has been read the name is only a platform id: greet without it.
    name = f"{ctx.employee.name}，" if ctx.employee.synced_at else ""
    hello = greeting or f"{name}您好！想办什么事？"
    admin = "\n" + ADMIN_LINE if ctx.employee is not None and roles.is_admin(ctx.session, ctx.employee) else ""
    return Card(
        title="办理 · 主菜单",
        body=hello + "\n点下面的按钮，或者直接打字，比如「报销 出租车 86.5」。" + admin,
        buttons=MENU_BUTTONS,
        footer="随时发「帮助」回到这里",
        shareable=True,
    )


@routes.command("帮助", "菜单", "help", "?", "你好", "您好", "hi", "hello", "开始", "menu")
@routes.action("help")
def show_menu(ctx: Context) -> Card:
    return menu_card(ctx)


def _feature_card(ctx: Context) -> Card:
    action = ctx.event.action
    title, what, examples = FEATURES[action]
    return Card(
        title=title,
        body=what,
        fields=tuple((f"例子{i + 1}", ex) for i, ex in enumerate(examples)),
        buttons=(Button("返回菜单", "help", command="帮助"),),
        shareable=True,
    )


for _action in FEATURES:
    routes.add_action(_action, _feature_card)


@routes.command("客户跟进")
def feature_by_word(ctx: Context) -> Card:
    """A menu word typed alone (or sent by a DingTalk markdown button) shows the same card as a tap."""
    word = ctx.event.text.strip()
    action = next(b.action for b in MENU_BUTTONS if b.command == word)
    ctx.event = replace(ctx.event, kind="action", action=action)
    return _feature_card(ctx)


@routes.kind("enter")
def on_enter(ctx: Context) -> Card | None:
    """Opening the app chat: greet newcomers once; say nothing to regulars."""
    return menu_card(ctx, "欢迎使用办理！") if ctx.first_contact else None


def not_understood(ctx: Context) -> Card:
    said = ctx.event.text.strip()
    head = f"没听明白「{said[:20]}」。" if said else "这个按钮已经失效了。"
    return Card(title="没听明白", body=head + "\n可以发「帮助」，或者点下面的按钮：", buttons=MENU_BUTTONS,
                shareable=True)


@routes.action("banli.done")
def finished_card_tapped(ctx: Context) -> None:
    """The grey status button of a finished WeCom card (已通过, 已处理): WeCom shows it untappable;
    should an old client send the tap anyway, there is nothing to do and nothing to say."""
    return None
