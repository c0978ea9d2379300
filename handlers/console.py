"""`后台`: an admin or a manager asks for the web console and gets a one-time link in chat
(workflows/console.py); anyone else is told who may, and the attempt is audited."""

from __future__ import annotations

from cards import Card
from handlers import refusals
from handlers.router import Context, Routes
from workflows import console

routes = Routes()


@routes.command("后台", "管理后台", "打开后台")
def console_link(ctx: Context) -> Card:
    if console.viewer(ctx.session, ctx.employee) is None:
        return refusals.refuse(ctx, attempted="console.link", why="not_admin_or_manager", subject="console",
                               title="打不开后台", body=console.REFUSAL + "。需要时请找管理员。")
    if not ctx.public_url:
        return Card(title="后台还没有地址", body="管理员还没有设置 BANLI_PUBLIC_URL（办理的网址），所以发不了后台链接。")
    key = console.signing_key(ctx.session, ctx.secret_key)
    token = console.issue_login(ctx.session, ctx.employee, key=key, now=ctx.now)
    return Card(title="后台登录链接", body=f"{console.LOGIN_MINUTES}分钟内有效，只能用一次；请不要转发给别人。",
                link=f"{ctx.public_url}/admin/login?token={token}", link_label="打开后台")
