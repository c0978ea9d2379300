"""`banli` — run the web app, a worker, the dispatcher, or migrations.

    banli web [--port N]     web server; with no REDIS_URL also the worker and dispatcher (embedded)
    banli worker [--concurrency N]  runs queued jobs, N at once in one process (needs REDIS_URL)
    banli dispatcher         leases due outbox rows and rings RQ (needs REDIS_URL)
    banli stream             holds the DingTalk Stream connection (DINGTALK_MODE=stream; one per app)
    banli demo [--port N] [--dingtalk-cards]    try Banli without a tenant: a seeded company and a chat simulator at /sim
    banli db upgrade         apply database migrations
    banli directory sync [--platform P]   departments and people from the platform directories
    banli employees link A B one person, two platforms: e.g. wecom:zhangsan dingtalk:0147xx
    banli admins list | grant USERID [--platform P] | revoke USERID [--platform P]   who is 管理员
    banli dingtalk register-card-callback URL   send DingTalk card taps to URL (…/dingtalk/card)
    banli import customers FILE [--dry-run]     the customer list from Excel (CSV or XLSX; see README)
    banli export customers|followups|deals|requests|audit --format csv|xlsx --out FILE   everything, for Excel
    banli rules export [FILE]  |  banli rules import FILE [--yes]   every rule as one YAML file, and back
    banli doctor [--public-url URL]  check each configured platform for real; exit 1 on any failure
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from banli import logs
from banli.settings import Settings

log = logging.getLogger("banli")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = Settings.from_env()
    logs.configure_once(settings)  # a command run inside another process (tests) keeps its logging
    return args.run(settings, args) or 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="banli", description="办理 Banli — chat-first CRM + OA")
    sub = parser.add_subparsers(required=True, metavar="command")

    web = sub.add_parser("web", help="run the web server (embedded mode without REDIS_URL)")
    web.add_argument("--port", type=int, help="default: PORT, else 8000")
    web.add_argument("--host", help="default: HOST, else 0.0.0.0")
    web.set_defaults(run=run_web)

    demo = sub.add_parser("demo", help="a seeded demo company and a browser chat simulator (no tenant needed)")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--reset", action="store_true", help="delete banli-demo.db and seed afresh")
    demo.add_argument("--dingtalk-cards", action="store_true",
                      help="钉钉 starts with interactive cards instead of markdown links (the page has a switch)")
    demo.set_defaults(run=run_demo)

    worker = sub.add_parser("worker", help="run the queue's jobs (several at once, one process, no fork per job)")
    worker.add_argument("--concurrency", type=int, metavar="N",
                        help="jobs at once (default: BANLI_WORKER_CONCURRENCY, else 2 per core, at most 8)")
    worker.set_defaults(run=run_worker)
    sub.add_parser("dispatcher", help="run the outbox dispatcher").set_defaults(run=run_dispatcher)
    sub.add_parser("stream", help="receive DingTalk over Stream mode (no public URL); one connection per app"
                   ).set_defaults(run=run_stream)

    db = sub.add_parser("db", help="database commands")
    db_sub = db.add_subparsers(required=True, metavar="action")
    db_sub.add_parser("upgrade", help="apply migrations").set_defaults(run=run_db_upgrade)

    directory = sub.add_parser("directory", help="the platform directories (通讯录)")
    dir_sub = directory.add_subparsers(required=True, metavar="action")
    dsync = dir_sub.add_parser("sync", help="read departments and people from each configured platform")
    dsync.add_argument("--platform", choices=("wecom", "dingtalk"), help="only this platform")
    dsync.add_argument("--allow-mass-leave", action="store_true",
                       help="apply departures even when more than half of a platform's people would leave")
    dsync.set_defaults(run=run_directory_sync)

    employees = sub.add_parser("employees", help="employee commands")
    emp_sub = employees.add_subparsers(required=True, metavar="action")
    link = emp_sub.add_parser("link", help="mark two platform identities as one person")
    link.add_argument("first", help="platform:user_id, e.g. wecom:zhangsan")
    link.add_argument("second", help="platform:user_id, e.g. dingtalk:014735")
    link.set_defaults(run=run_link)

    admins = sub.add_parser("admins", help="who is an admin (管理员)")
    admins_sub = admins.add_subparsers(required=True, metavar="action")
    admins_sub.add_parser("list", help="list the admins").set_defaults(run=run_admins_list)
    for action, text, run in (("grant", "make someone an admin", run_admins_grant),
                              ("revoke", "take the admin role away", run_admins_revoke)):
        command = admins_sub.add_parser(action, help=text)
        command.add_argument("user_id", help="their platform user id (WeCom UserID, DingTalk userid); "
                                             "wecom:ID or dingtalk:ID also works")
        command.add_argument("--platform", choices=("wecom", "dingtalk"), help="when the id exists on both")
        command.set_defaults(run=run)

    importing = sub.add_parser("import", help="bulk import")
    import_sub = importing.add_subparsers(required=True, metavar="what")
    customers = import_sub.add_parser("customers", help="customers from a CSV or XLSX file (columns: README)")
    customers.add_argument("file", help="a .csv (UTF-8 or GBK) or .xlsx file; row 1 is the header")
    customers.add_argument("--dry-run", action="store_true", help="check and report; write nothing")
    customers.add_argument("--owner-default", metavar="NAME", help="owner for rows without one (公海: the pool)")
    customers.add_argument("--skip-bad", action="store_true", help="import the good rows even if some are bad")
    customers.add_argument("--allow-duplicates", action="store_true", help="create likely duplicates too")
    customers.set_defaults(run=run_import_customers)

    export = sub.add_parser("export", help="customers, follow-ups, deals, requests or the audit log as CSV / XLSX")
    export.add_argument("what", choices=("customers", "followups", "deals", "requests", "audit"))
    export.add_argument("--format", choices=("csv", "xlsx"), help="default: from --out's extension")
    export.add_argument("--out", required=True, metavar="FILE", help="where to write it (- : standard output, CSV)")
    export.set_defaults(run=run_export)

    rules_cmd = sub.add_parser("rules", help="all the rules (routing and the others) as one YAML file")
    rules_sub = rules_cmd.add_subparsers(required=True, metavar="action")
    rules_out = rules_sub.add_parser("export", help="write the rules as YAML")
    rules_out.add_argument("file", nargs="?", default="-", metavar="FILE", help="default: standard output")
    rules_out.set_defaults(run=run_rules_export)
    rules_in = rules_sub.add_parser("import", help="show what a rules file would change, then apply it")
    rules_in.add_argument("file", metavar="FILE")
    rules_in.add_argument("--yes", action="store_true", help="apply without asking")
    rules_in.set_defaults(run=run_rules_import)

    dingtalk = sub.add_parser("dingtalk", help="DingTalk set-up commands")
    ding_sub = dingtalk.add_subparsers(required=True, metavar="action")
    register = ding_sub.add_parser("register-card-callback", help="register the card callback URL")
    register.add_argument("url", help="public URL of /dingtalk/card, e.g. https://banli.example.com/dingtalk/card")
    register.set_defaults(run=run_register_card_callback)

    doctor = sub.add_parser("doctor", help="check the WeCom / DingTalk set-up against the real APIs")
    doctor.add_argument("--public-url", metavar="URL",
                        help="where the platforms reach Banli, to test its callback route (default: BANLI_PUBLIC_URL)")
    doctor.set_defaults(run=run_doctor)
    return parser


def run_db_upgrade(settings: Settings, _args) -> int:
    from storage.db import make_engine
    from storage.migrate import upgrade

    engine = make_engine(settings.database_url)
    upgrade(engine)
    from storage.db import session_scope
    from workflows.matching import refresh_stale_forms

    with session_scope(engine) as session:  # matching forms for rows written by older code
        refreshed = refresh_stale_forms(session)
    engine.dispose()  # `banli web` forks its workers next: no pooled connection may cross the fork
    print("数据库已是最新 database is up to date" + (f" ({refreshed} customers re-indexed)" if refreshed else ""))
    return 0


def run_web(settings: Settings, args) -> int:
    for line in settings.describe():
        print(line)
    if not settings.wecom and not settings.dingtalk:
        print("没有配置任何平台 no platform is configured: set the WeCom or DingTalk variables (see README)")
    if settings.dingtalk and settings.dingtalk.stream and not settings.embedded:
        print("钉钉 Stream 模式：另需运行 `banli stream` DingTalk stream mode: run `banli stream` beside the web")
    run_db_upgrade(settings, args)
    host, port = args.host or settings.host, args.port or settings.port
    from gunicorn.app.base import BaseApplication

    from bot.app import create_app

    class WebServer(BaseApplication):
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("threads", 8)
            # Embedded mode keeps its queue in process memory: exactly one web process.
            self.cfg.set("workers", 1 if settings.embedded else settings.web_concurrency)
            self.cfg.set("accesslog", "-" if settings.access_log else None)
            self.cfg.set("logger_class", "banli.logs.GunicornLogger")  # gunicorn's lines in Banli's format
            # Not preloaded (gunicorn's default, kept on purpose): `load` runs in each forked worker,
            # so every engine pool and Redis connection is opened after the fork, never shared.
            # run_db_upgrade's engine above is its own and is disposed before the fork.
            self.cfg.set("preload_app", False)
            self.cfg.set("post_worker_init", _start_embedded if settings.embedded else _start_heartbeat)

        def load(self):
            return create_app(settings)

    print(f"办理 Banli listening on http://{host}:{port}")
    WebServer().run()
    return 0


def run_demo(_settings: Settings, args) -> int:
    # The demo ignores the environment's platform, database and Redis settings: it is self-contained.
    from sim.demo import run_demo as serve_demo

    return serve_demo(port=args.port, host=args.host, reset=args.reset, dingtalk_cards=args.dingtalk_cards)


def _start_embedded(worker) -> None:
    from banli.embedded import Embedded

    Embedded(worker.wsgi.extensions["banli"]).start()


def _start_heartbeat(worker) -> None:
    """Each web process says it is alive, for the queue page (banli/heartbeat.py)."""
    from banli.heartbeat import Pulse

    Pulse(worker.wsgi.extensions["banli"], threading.Event()).add("web")


def _needs_redis(settings: Settings, what: str) -> None:
    if settings.embedded:
        print(f"banli {what} needs REDIS_URL; without it `banli web` runs everything in one process.")
        sys.exit(2)


def run_worker(settings: Settings, args) -> int:
    _needs_redis(settings, "worker")
    from banli import worker
    from banli.wiring import wire
    from bot.runtime import Runtime

    return worker.run_process(wire(Runtime(settings)), concurrency=args.concurrency or settings.worker_concurrency)


def run_dispatcher(settings: Settings, _args) -> int:
    _needs_redis(settings, "dispatcher")
    from banli import dispatcher
    from banli.wiring import wire
    from bot.runtime import Runtime

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    dispatcher.run(wire(Runtime(settings)), stop)
    return 0


def run_stream(settings: Settings, _args) -> int:
    if not settings.dingtalk:
        print("钉钉未配置 DingTalk is not configured: set DINGTALK_APP_KEY and DINGTALK_APP_SECRET")
        return 2
    if not settings.dingtalk.stream:
        print("DINGTALK_MODE 不是 stream：钉钉回调走 HTTP。DINGTALK_MODE is not stream: DingTalk posts to "
              "/dingtalk/callback. Set DINGTALK_MODE=stream to receive over Stream mode.")
        return 2
    if settings.embedded:
        print("banli stream needs REDIS_URL (its lease keeps to one connection per app); "
              "without it `DINGTALK_MODE=stream banli web` runs the stream in the web process.")
        return 2
    from banli import stream
    from banli.wiring import wire
    from bot.runtime import Runtime

    return stream.run_process(wire(Runtime(settings)))


def run_directory_sync(settings: Settings, args) -> int:
    """Exit 0: synced (or nothing to change); 1: a platform failed (that platform unchanged); 2: not configured."""
    from banli.directory import sync_all
    from bot.platform import PlatformError
    from bot.runtime import Runtime

    runtime = Runtime(settings)
    platforms = [args.platform] if args.platform else sorted(runtime.clients)
    missing = [p for p in platforms if p not in runtime.clients]
    if not platforms or missing:
        print(f"没有配置 not configured: {', '.join(missing) or 'wecom / dingtalk'}")
        return 2
    try:
        reports = sync_all(runtime, platforms, progress=print, allow_mass_leave=args.allow_mass_leave)
    except PlatformError as exc:
        print(f"同步失败，该平台没有改动 sync failed, nothing changed for that platform: {exc}")
        return 1
    finally:
        runtime.close()
    for report in reports:
        print("\n".join(report.lines()))
    if not any(r.changed for r in reports):
        print("通讯录没有变化 the directory has not changed since the last sync")
    return 0


def run_link(settings: Settings, args) -> int:
    from bot.runtime import Runtime
    from storage.db import session_scope
    from workflows import audit
    from workflows.identity import employee_for, link_identities

    sides = [a.split(":", 1) for a in (args.first, args.second)]
    if any(len(s) != 2 or s[0] not in ("wecom", "dingtalk") for s in sides):
        print("格式 format: wecom:USERID dingtalk:USERID")
        return 2
    with session_scope(Runtime(settings).engine) as session:
        keep, _ = employee_for(session, *sides[0])
        other, _ = employee_for(session, *sides[1])
        if keep.id == other.id:
            print(f"已经是同一个人 already linked: {args.first} ↔ {args.second}")
            return 0
        moved = link_identities(session, keep, other)
        audit.record(session, actor=None, action="employee.link", subject=f"employee:{keep.id}", platform="cli",
                     detail={"merged": other.id, "references": moved})
    print(f"已关联 linked {args.first} ↔ {args.second}（合并 merged employee {other.id} → {keep.id}）")
    return 0


def run_admins_list(settings: Settings, _args) -> int:
    from sqlalchemy import select

    from storage.db import make_engine, session_scope
    from storage.models import Identity
    from workflows import roles

    engine = make_engine(settings.database_url)
    with session_scope(engine) as session:
        admins = roles.people_with(session, "admin")
        for person in admins:
            ids = session.execute(select(Identity).where(Identity.employee_id == person.id)
                                  .order_by(Identity.id)).scalars()
            where = ", ".join(f"{i.platform}:{i.user_id}" for i in ids) or "-"
            print(f"{person.name}\t{where}\t来源 source: {roles.source_of(session, person, 'admin')}")
    engine.dispose()
    if not admins:
        print("还没有管理员 no admins yet: banli admins grant USERID, or set BANLI_ADMINS")
    listed = ", ".join(f"{p}:{u}" if p else u for p, u in settings.admins)
    print(f"BANLI_ADMINS: {listed or '(未设置 not set)'}")
    return 0


def run_admins_grant(settings: Settings, args) -> int:
    return _admins_change(settings, args, grant=True)


def run_admins_revoke(settings: Settings, args) -> int:
    return _admins_change(settings, args, grant=False)


def _admins_change(settings: Settings, args, *, grant: bool) -> int:
    """Exit 0: done (or already so); 1: refused (the last admin); 2: no such user, or ambiguous."""
    from sqlalchemy import select

    from storage.db import make_engine, session_scope
    from storage.models import Employee, Identity
    from workflows import roles

    platform, sep, user_id = args.user_id.partition(":")
    if not sep or platform not in ("wecom", "dingtalk"):
        platform, user_id = args.platform or "", args.user_id
    engine = make_engine(settings.database_url)
    try:
        with session_scope(engine) as session:
            query = select(Identity).where(Identity.user_id == user_id)
            if platform:
                query = query.where(Identity.platform == platform)
            found = list(session.execute(query).scalars())
            people = {i.employee_id for i in found}
            if not people:
                print(f"找不到用户 no such user: {args.user_id}\n"
                      "TA 要先给办理发过一条消息；或检查 ID（企业微信 UserID / 钉钉 userid），或写进 BANLI_ADMINS。\n"
                      "They must have messaged Banli once; check the id, or list them in BANLI_ADMINS.")
                return 2
            if len(people) > 1:
                print(f"两个平台上都有 {user_id}，请加 --platform wecom 或 --platform dingtalk "
                      f"the id exists on both platforms: add --platform")
                return 2
            person = session.get(Employee, people.pop())
            if grant:
                changed = roles.grant(session, person, "admin", source="admin", platform="cli")
                print(f"{'已设为管理员 now an admin' if changed else '已经是管理员 already an admin'}: "
                      f"{person.name} ({args.user_id})")
                return 0
            changed = roles.revoke(session, person, "admin", platform="cli")
            print(f"{'已去掉管理员 no longer an admin' if changed else '本来就不是管理员 was not an admin'}: "
                  f"{person.name} ({args.user_id})")
            if changed and any(u == user_id and p in ("", found[0].platform) for p, u in settings.admins):
                print("注意 note: BANLI_ADMINS 仍列着 TA，下次发消息时会恢复管理员；请从 BANLI_ADMINS 去掉。"
                      " Still listed in BANLI_ADMINS: remove them there too, or they are admin again on their next message.")
            return 0
    except roles.LastAdmin:
        print("不能去掉最后一位管理员 cannot remove the last admin: grant another admin first (banli admins grant USERID)")
        return 1
    finally:
        engine.dispose()


def run_import_customers(settings: Settings, args) -> int:
    """Exit 0: imported (or a clean dry run); 1: bad rows or duplicates found by --dry-run, bad rows
    refused a real run, or the database failed mid-import (nothing written in any of these); 2: the
    file or an option cannot be used."""
    from sqlalchemy.exc import SQLAlchemyError

    from storage.db import make_engine, session_scope
    from workflows import importing

    engine = make_engine(settings.database_url)
    try:
        with session_scope(engine) as session:
            plan = importing.plan(session, args.file, owner_default=args.owner_default,
                                  allow_duplicates=args.allow_duplicates)
            print("\n".join(importing.report_lines(plan)))
            if args.dry_run:
                session.rollback()
                print("试运行 dry run：没有写入任何数据")
                return 1 if plan.bad or plan.duplicates else 0
            if plan.bad and not args.skip_bad:
                print("有问题的行，没有导入任何数据。改好后再导入，或加 --skip-bad 只导入没问题的行。")
                return 1
            created = importing.apply(session, plan, source=os.path.basename(args.file))
    except importing.ImportFileError as problem:
        print(f"无法导入 cannot import: {problem}")
        return 2
    except SQLAlchemyError as exc:  # one transaction: rolled back whole
        print(f"导入失败，没有写入任何数据 import failed, nothing written: {exc.__class__.__name__}: {exc}"[:500])
        return 1
    skipped = f"，跳过疑似重复 {len(plan.duplicates)} 行" if plan.duplicates and not args.allow_duplicates else ""
    print(f"已导入 {len(created)} 个客户{skipped}" + (f"，跳过有问题的 {len(plan.bad)} 行" if plan.bad else ""))
    return 0


def run_export(settings: Settings, args) -> int:
    """Exit 0: written; 2: the format cannot be told or the file cannot be written. Everything is
    exported (whoever runs this on the server can read the database anyway); audited as the CLI's."""
    from storage.db import make_engine, session_scope
    from workflows import export

    fmt = args.format or os.path.splitext(args.out)[1].lstrip(".").lower()
    if args.out == "-":
        fmt = args.format or "csv"
    if fmt not in export.FORMATS:
        print("请用 --format csv 或 --format xlsx 指定格式 give --format csv or --format xlsx")
        return 2
    if args.out == "-" and fmt != "csv":
        print("XLSX 不能写到标准输出，请用 --out 文件名 XLSX needs a file: --out FILE")
        return 2
    engine = make_engine(settings.database_url)
    try:
        out = sys.stdout.buffer if args.out == "-" else open(args.out, "wb")
    except OSError as exc:
        print(f"无法写入 cannot write {args.out}: {exc.strerror}")
        return 2
    try:
        with session_scope(engine) as session:
            count = export.write(session, args.what, fmt, out, team=None, tz=settings.timezone)
        with session_scope(engine) as session:
            export.record(session, actor=None, kind=args.what, fmt=fmt, rows=count, team=None, platform="cli")
    finally:
        if out is not sys.stdout.buffer:
            out.close()
        engine.dispose()
    if args.out != "-":
        print(f"已导出{export.KINDS[args.what].name} {count} 行 → {args.out}")
    return 0


def run_rules_export(settings: Settings, args) -> int:
    """Exit 0: written; 2: the file cannot be written."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from storage.db import make_engine, session_scope
    from workflows import audit, rules_yaml

    engine = make_engine(settings.database_url)
    try:
        with session_scope(engine) as session:
            text = rules_yaml.export_text(session, at=datetime.now(ZoneInfo(settings.timezone)))
            audit.record(session, actor=None, action="rules.export", subject="rules", platform="cli")
    finally:
        engine.dispose()
    if args.file == "-":
        sys.stdout.write(text)
        return 0
    try:
        with open(args.file, "w", encoding="utf-8") as out:
            out.write(text)
    except OSError as exc:
        print(f"无法写入 cannot write {args.file}: {exc.strerror}")
        return 2
    print(f"已导出规则 → {args.file}")
    return 0


def run_rules_import(settings: Settings, args) -> int:
    """Exit 0: applied, or nothing to change, or not confirmed; 1: the file has problems (nothing
    changed); 2: the file cannot be read."""
    from storage.db import make_engine, session_scope
    from workflows import rules_import

    try:
        with open(args.file, encoding="utf-8-sig") as source:
            text = source.read()
    except (OSError, UnicodeDecodeError) as exc:
        print(f"无法读取 cannot read {args.file}: {exc}")
        return 2
    engine = make_engine(settings.database_url)
    try:
        with session_scope(engine) as session:
            plan = rules_import.plan(session, text)
            session.rollback()
        print("\n".join(rules_import.report_lines(plan)))
        if plan.problems:
            print("文件有问题，没有改动任何规则。")
            return 1
        if not plan.to_change:
            print("没有改动：文件里的规则和现在的一样。")
            return 0
        if not args.yes and not _confirmed(f"确认导入（改动 {len(plan.to_change)} 条）？[y/N] "):
            print("没有导入（加 --yes 直接导入）。")
            return 0
        with session_scope(engine) as session:
            done = rules_import.apply(session, text, by=None, platform="cli", expected=plan.digest)
    except rules_import.ImportRefused as refused:
        print(f"没有导入：{refused}")
        return 1
    finally:
        engine.dispose()
    print(f"已导入，改动了 {len(done.to_change)} 条规则（已记入审计日志）。")
    return 0


def _confirmed(question: str) -> bool:
    if not sys.stdin.isatty():
        return False
    return input(question).strip().lower() in ("y", "yes", "是")


def run_register_card_callback(settings: Settings, args) -> int:
    if not settings.dingtalk:
        print("钉钉未配置 DingTalk is not configured: set DINGTALK_APP_KEY and DINGTALK_APP_SECRET")
        return 2
    from bot.platform import PlatformError
    from bot.runtime import Runtime

    try:
        Runtime(settings).clients["dingtalk"].register_card_callback(args.url)
    except PlatformError as exc:
        print(f"注册失败 registration failed: {exc}")
        return 1
    print(f"已注册 card callbacks now go to {args.url}")
    return 0


def run_doctor(settings: Settings, args) -> int:
    from banli import doctor

    return doctor.run(settings, public_url=args.public_url or "")


if __name__ == "__main__":
    sys.exit(main())
