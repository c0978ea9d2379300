"""Seed data for `banli demo`: a small Shenzhen company, its CRM book and a month of follow-ups.

Everything is drawn from one `random.Random(rng_seed)` and positioned relative to `now`, so a given
(seed, now) always yields the same rows; the demo and its tests can name customers and expect them.
Times are aware UTC; "today" and office hours are business time (Asia/Shanghai), as the digest sees them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlmodel import Session

from storage.models import (CUSTOMER_STATUSES, DEAL_STAGES, FOLLOWUP_METHODS, Contact, Customer, Deal,
                            DealStageChange, Employee, EmployeeRole, FollowUp, Identity)
from workflows.matching import refresh_forms

BUSINESS_TZ = ZoneInfo("Asia/Shanghai")
COMPANY = "深圳市联拓智能科技有限公司"

# -- the company --------------------------------------------------------------------------------

# Ids start at 2: on both platforms department 1 is the root (the company itself).
DEPARTMENTS: dict[int, str] = {2: "总经办", 3: "销售一部", 4: "销售二部", 5: "财务部", 6: "法务部", 7: "行政部"}


@dataclass(frozen=True)
class Person:
    key: str
    name: str
    department: str
    role: str
    manager_key: str | None
    wecom_id: str
    dingtalk_id: str
    title: str
    older: bool = False  # the veteran who types slowly and in full sentences (黄德明, 58)


def _person(key: str, name: str, department: str, role: str, manager_key: str | None, n: int, title: str,
            older: bool = False) -> Person:
    # WeCom ids are the pinyin an admin would type; DingTalk staffIds are the digit strings it assigns.
    return Person(key=key, name=name, department=department, role=role, manager_key=manager_key, wecom_id=key,
                  dingtalk_id=f"01472100{n:02d}", title=title, older=older)


# Managers come before their reports, so the order is also a valid insertion order.
PEOPLE: tuple[Person, ...] = (
    _person("chenjianguo", "陈建国", "总经办", "ceo", None, 1, "总经理"),
    _person("liuzhiqiang", "刘志强", "总经办", "sales_director", "chenjianguo", 2, "销售总监"),
    _person("wanghaiyan", "王海燕", "销售一部", "sales_manager", "liuzhiqiang", 3, "销售一部经理"),
    _person("zhouming", "周明", "销售二部", "sales_manager", "liuzhiqiang", 4, "销售二部经理"),
    _person("zhangwei", "张伟", "销售一部", "rep", "wanghaiyan", 5, "销售代表"),
    _person("lilin", "李琳", "销售一部", "rep", "wanghaiyan", 6, "销售代表"),
    _person("huangdeming", "黄德明", "销售一部", "rep", "wanghaiyan", 7, "资深客户经理", older=True),
    _person("zhaolei", "赵磊", "销售二部", "rep", "zhouming", 8, "销售代表"),
    _person("suntingting", "孙婷婷", "销售二部", "rep", "zhouming", 9, "销售代表"),
    _person("wujunjie", "吴俊杰", "销售二部", "rep", "zhouming", 10, "大客户经理"),
    _person("qianlihua", "钱丽华", "财务部", "finance", "chenjianguo", 11, "财务经理"),
    _person("zhengxiaoyan", "郑晓燕", "财务部", "finance", "qianlihua", 12, "会计"),
    _person("hejing", "何静", "法务部", "legal", "chenjianguo", 13, "法务专员"),
    _person("linhao", "林浩", "行政部", "admin", "chenjianguo", 14, "行政/IT主管"),
)

SALES_ROLES = ("rep", "sales_manager")  # who owns customers
OWNER_WEIGHT = {"rep": 3, "sales_manager": 1}  # managers keep a few key accounts, reps carry the book

# -- customers ----------------------------------------------------------------------------------

N_CUSTOMERS = 200
N_PUBLIC = 15  # 公海: nobody owns them
TIER_SHARES = (("A", 0.15), ("B", 0.35), ("C", 0.50))
STATUS_WEIGHTS = {"潜在": 35, "意向": 35, "成交": 20, "流失": 10}

# Well-known names the matching demos lean on: (legal name, 简称, industry, region). The brief writes
# the parentheses ASCII; generated names follow suit so one normaliser serves both.
FAMOUS: tuple[tuple[str, str, str, str], ...] = (
    ("腾讯科技(深圳)有限公司", "腾讯", "互联网", "深圳"),
    ("北京三快在线科技有限公司", "美团", "互联网", "北京"),
    ("招商银行股份有限公司", "招行,招商银行", "金融", "深圳"),
    ("阿里巴巴(中国)有限公司", "阿里", "互联网", "杭州"),
    ("华为技术有限公司", "华为", "制造", "深圳"),
    ("顺丰速运有限公司", "顺丰", "物流", "深圳"),
)

# region -> districts; legal names read "深圳市南山区…" or "上海…股份有限公司".
REGIONS: dict[str, tuple[str, ...]] = {
    "深圳": ("南山区", "福田区", "宝安区", "龙岗区", "龙华区"),
    "广州": ("天河区", "白云区", "番禺区", "黄埔区"),
    "上海": ("浦东新区", "闵行区", "嘉定区"),
    "北京": ("海淀区", "朝阳区", "丰台区"),
    "杭州": ("余杭区", "滨江区", "萧山区"),
    "成都": ("武侯区", "锦江区", "双流区"),
    "武汉": ("江汉区", "洪山区", "东西湖区"),
    "东莞": ("长安镇", "虎门镇", "松山湖"),
    "苏州": ("工业园区", "吴中区"),
    "南京": ("江宁区", "鼓楼区"),
}
# Most of the book is local, as for any Shenzhen SME.
REGION_WEIGHTS = {"深圳": 30, "广州": 15, "东莞": 10, "上海": 10, "北京": 8, "杭州": 8, "成都": 6, "武汉": 5,
                  "苏州": 4, "南京": 4}

# industry -> (business scope word in the legal name, what people append to the brand when they say it)
INDUSTRIES: dict[str, tuple[tuple[str, str], ...]] = {
    "制造": (("精密机械", "机械"), ("电子科技", "电子"), ("模具", "模具"), ("五金制品", "五金"),
           ("新材料科技", "材料"), ("包装制品", "包装")),
    "零售": (("商贸", "商贸"), ("百货", "百货"), ("超市", "超市"), ("便利店管理", "便利店"), ("服饰", "服饰")),
    "医疗": (("医疗器械", "医疗"), ("生物医药", "医药"), ("医药连锁", "医药"), ("健康管理", "健康")),
    "教育": (("教育科技", "教育"), ("教育咨询", "教育"), ("职业技能培训", "培训")),
    "物流": (("物流", "物流"), ("供应链管理", "供应链"), ("国际货运代理", "货代"), ("冷链物流", "冷链"), ("快运", "快运")),
    "互联网": (("网络科技", "网络"), ("信息技术", "信息"), ("软件", "软件"), ("数字科技", "数科")),
    "金融": (("融资租赁", "租赁"), ("投资管理", "投资"), ("商业保理", "保理")),
    "建筑": (("建筑工程", "建筑"), ("装饰工程", "装饰"), ("建材", "建材"), ("市政工程", "市政")),
    "餐饮": (("餐饮管理", "餐饮"), ("食品", "食品"), ("餐饮连锁", "餐饮"), ("酒店管理", "酒店")),
    "能源": (("新能源科技", "新能源"), ("光伏科技", "光伏"), ("电力工程", "电力"), ("燃气", "燃气"), ("储能技术", "储能")),
}

# Two-character trade names. Brands repeat across industries on purpose: "恒达" meaning two different
# customers is exactly what the matcher has to ask about.
BRANDS: tuple[str, ...] = (
    "恒达", "华信", "盛通", "鑫源", "宏图", "金桥", "永泰", "天诚", "瑞丰", "博远", "嘉禾", "德润", "安泰", "海川",
    "九州", "汇通", "润发", "星河", "远航", "新宇", "明德", "同创", "佳和", "长盛", "东升", "振华", "联创", "天成",
    "宝利", "鸿运", "金鼎", "智远", "睿博", "凯旋", "锦程", "万通", "恒信", "富源", "广源", "聚丰", "和泰", "顺达",
    "华瑞", "盈科", "国润", "春晖", "青禾", "蓝海", "云帆", "众诚", "中恒", "百川", "亿佳", "美嘉", "祥瑞", "通达",
    "卓越", "启航", "鼎盛", "华美", "合力", "金石", "新锐", "银河",
)

# Legal-name shapes and how often they occur.
NAME_FORMS: dict[str, int] = {
    "{city}市{brand}{scope}有限公司": 45,
    "{city}市{district}{brand}{scope}有限公司": 20,
    "{city}{brand}{scope}股份有限公司": 15,
    "{brand}{scope}({city})有限公司": 10,
    "{city}{brand}{scope}集团有限公司": 10,
}

SURNAMES = ("王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭", "何",
            "高", "林", "罗", "郑", "梁", "谢", "宋", "唐", "许", "韩", "冯", "邓", "曹", "彭", "曾", "肖", "田")
GIVEN_NAMES = ("伟", "芳", "娜", "敏", "静", "强", "磊", "洋", "艳", "勇", "军", "杰", "涛", "明", "超", "霞",
               "建华", "秀英", "志明", "丽娟", "海涛", "晓东", "文博", "雪梅", "国庆", "春燕", "宇航", "思远",
               "佳怡", "子豪", "红梅", "建军", "永刚", "晓燕", "俊峰", "慧敏", "立新", "海峰", "婷婷", "鹏飞")
CONTACT_TITLES = ("采购经理", "总经理", "行政主管", "副总经理", "财务总监", "IT负责人", "采购专员", "运营总监",
                  "技术总监", "办公室主任", "董事长助理", "项目经理")
MOBILE_PREFIXES = ("138", "139", "137", "136", "135", "150", "151", "158", "159", "186", "188", "189", "177", "133")

# -- deals and follow-ups -----------------------------------------------------------------------

N_DEALS = 40
# What 联拓智能 sells; a deal is titled "<简称><product>".
PRODUCTS = ("智能仓储管理系统", "门店数字化改造", "设备物联网平台", "年度运维服务", "智能门禁考勤系统",
            "能耗监测平台", "视频AI巡检方案", "数据中台建设", "车间MES系统", "会议室智能化改造")
# Amount ranges by tier, in yuan: big accounts buy big.
AMOUNT_RANGE = {"A": (200_000, 2_000_000), "B": (50_000, 600_000), "C": (8_000, 150_000)}
# Which stages fit a customer's status.
STAGES_FOR_STATUS = {
    "潜在": ("初步接触", "需求分析"),
    "意向": ("需求分析", "方案报价", "商务谈判"),
    "成交": ("赢单", "赢单", "赢单", "商务谈判"),
    "流失": ("输单",),
}

FOLLOWUP_COUNT_WEIGHTS = (20, 30, 25, 15, 10)  # 0..4 past follow-ups per owned customer, mean ≈ 1.65
METHOD_WEIGHTS = {"拜访": 30, "电话": 35, "微信": 35}
# "{who}" becomes how a rep would name the contact: 王总, 李经理, or the full name.
FOLLOWUP_NOTES = (
    "聊了报价，对方嫌贵，下周再谈",
    "上门拜访{who}，演示了系统，反馈不错",
    "电话沟通需求，对方下月有预算，约了再聊",
    "微信发了方案和报价单，{who}说要内部走流程",
    "对方采购换人了，重新对接{who}",
    "送了样品，等对方测试结果",
    "催了回款，对方财务说月底付",
    "合同条款对方法务还在看，主要卡在付款方式",
    "{who}出差，改约下周三",
    "竞品报价比我们低15%，需要申请特价",
    "年度框架协议续签，意向明确",
    "老客户回访，提了两个新需求",
    "参观了对方工厂，产线有改造需求",
    "对方老板亲自参会，最关心交付周期",
    "电话没人接，微信给{who}留言了",
    "发了案例资料，对方说先内部评估",
    "确认了开票信息和收货地址",
    "技术交流，对方IT提了系统对接的问题",
    "招标文件下来了，准备投标材料",
    "对方预算砍了一半，在调整方案",
    "聊了售后服务条款，基本没问题",
    "请{who}吃饭，关系拉近了，下季度有单",
    "对方在比价，我们价格偏高",
    "首次拜访，了解了组织架构和决策人",
    "对方要求账期90天，需要和财务确认",
    "试用反馈良好，准备签正式合同",
    "对方项目延期到下季度",
    "微信问了使用情况，暂时没有新需求",
    "约了下周去现场做方案演示",
    "对方负责人离职了，要重新建立联系",
)

HISTORY_DAYS = 60
TODAY_SLOTS = ((10, 0), (14, 30), (16, 0))  # when a follow-up due "today" is booked, business time
BOOKING_SLOTS = ((9, 30), (10, 0), (11, 0), (14, 0), (14, 30), (15, 0), (16, 0), (17, 0))
N_OVERDUE = 20  # including one per owner
N_STALE_A = 5  # of those, tier-A accounts overdue by more than a week with nothing since
N_TODAY = 16  # including one per owner
P_NOTHING_BOOKED = 0.15  # owned, active, but no next follow-up set: digest fodder for "无计划"


@dataclass
class SeedSummary:
    employees: int
    customers: int
    deals: int
    followups: int


@dataclass
class _Plan:
    """One customer before it has an id: the row plus what hangs off it."""

    customer: Customer
    owner_key: str | None
    contacts: list[tuple[str, str, str]] = field(default_factory=list)  # (name, title, phone)
    history: list[datetime] = field(default_factory=list)  # past follow-ups, oldest first


# -- public API ---------------------------------------------------------------------------------


def seed(session: Session, *, now: datetime, rng_seed: int = 2026) -> SeedSummary:
    """Write the demo company into the caller's transaction. Callers check `is_seeded` first: the
    identities are unique, so seeding the same database twice fails on the second run."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    now = now.astimezone(timezone.utc)
    rng = random.Random(rng_seed)
    employees = _seed_people(session, now)
    plans = _plan_customers(rng, now)
    _plan_schedule(rng, plans, now)
    session.add_all(p.customer for p in plans)
    for plan in plans:
        plan.customer.owner_id = employees[plan.owner_key].id if plan.owner_key else None
        refresh_forms(plan.customer)  # stored matching forms, as any new customer gets
    session.flush()  # customer ids for everything below
    _add_contacts(session, plans)
    deals = _add_deals(session, rng, plans, employees, now)
    followups = _add_followups(session, rng, plans, employees)
    session.flush()
    return SeedSummary(employees=len(employees), customers=len(plans), deals=deals, followups=followups)


def is_seeded(session: Session) -> bool:
    """Any employee at all: the demo only seeds an empty company."""
    return session.execute(select(Employee.id).limit(1)).first() is not None


def directory_users(platform: str) -> dict[str, dict]:
    """PEOPLE as each platform's user/get would describe them, for the directory stand-ins."""
    dept_id = {name: i for i, name in DEPARTMENTS.items()}
    by_key = {p.key: p for p in PEOPLE}
    users: dict[str, dict] = {}
    for p in PEOPLE:
        manager = by_key[p.manager_key] if p.manager_key else None
        if platform == "wecom":
            users[p.wecom_id] = {"name": p.name, "department": [dept_id[p.department]],
                                 "main_department": dept_id[p.department],
                                 "direct_leader": [manager.wecom_id] if manager else []}
        elif platform == "dingtalk":
            user = {"name": p.name, "dept_id_list": [dept_id[p.department]]}
            if manager:  # DingTalk omits the field for people with no manager
                user["manager_userid"] = manager.dingtalk_id
            users[p.dingtalk_id] = user
        else:
            raise ValueError(f"unknown platform {platform!r}")
    return users


# -- people -------------------------------------------------------------------------------------


def _seed_people(session: Session, now: datetime) -> dict[str, Employee]:
    """Employees with both identities and their manager links, as if the directory had been read."""
    employees: dict[str, Employee] = {}
    for n, p in enumerate(PEOPLE):
        joined = now - timedelta(days=400 + 30 * n)  # fixed, so reruns match row for row
        employees[p.key] = Employee(name=p.name, department=p.department, active=True,
                                    synced_at=now, created_at=joined)
    session.add_all(employees.values())
    session.flush()
    for p in PEOPLE:
        employee = employees[p.key]
        employee.manager_id = employees[p.manager_key].id if p.manager_key else None
        for platform, user_id in (("wecom", p.wecom_id), ("dingtalk", p.dingtalk_id)):
            session.add(Identity(platform=platform, user_id=user_id, employee_id=employee.id,
                                 created_at=employee.created_at))
        # Roles as if the directory had said them (so a demo admin can still change them in chat).
        session.add(EmployeeRole(employee_id=employee.id, role=p.role, source="sync", granted_at=employee.created_at))
    session.flush()
    return employees


# -- customers ----------------------------------------------------------------------------------


def _plan_customers(rng: random.Random, now: datetime) -> list[_Plan]:
    names = _customer_names(rng, N_CUSTOMERS - len(FAMOUS))
    rows = [(name, short, industry, region) for name, short, industry, region in FAMOUS] + names
    tiers = _tiers(rng, len(rows), famous=len(FAMOUS))
    owners = _owners(rng, len(rows), famous=len(FAMOUS))
    plans = []
    for (name, short, industry, region), tier, owner in zip(rows, tiers, owners):
        status = _weighted(rng, STATUS_WEIGHTS)
        if owner is None and status == "成交":
            status = "流失"  # a customer who bought stays owned; an ownerless one was let go
        customer = Customer(name=name, short_names=short, industry=industry, region=region, tier=tier,
                            status=status, created_at=now - timedelta(days=rng.randint(HISTORY_DAYS + 10, 900)))
        plans.append(_Plan(customer=customer, owner_key=owner, contacts=_contacts(rng)))
    return plans


def _customer_names(rng: random.Random, count: int) -> list[tuple[str, str, str, str]]:
    """(legal name, 简称, industry, region), unique by legal name and never clashing with FAMOUS."""
    seen = {name for name, *_ in FAMOUS}
    out = []
    while len(out) < count:
        industry = rng.choice(tuple(INDUSTRIES))
        scope, spoken = rng.choice(INDUSTRIES[industry])
        region = _weighted(rng, REGION_WEIGHTS)
        brand = rng.choice(BRANDS)
        form = _weighted(rng, NAME_FORMS)
        name = form.format(city=region, district=rng.choice(REGIONS[region]), brand=brand, scope=scope)
        if name in seen:
            continue
        seen.add(name)
        out.append((name, _short_names(rng, brand, spoken, form), industry, region))
    return out


def _short_names(rng: random.Random, brand: str, spoken: str, form: str) -> str:
    names = [brand + spoken]
    if "集团" in form:
        names.append(brand + "集团")
    elif rng.random() < 0.25:
        names.append(brand)  # people often drop the trade: "恒达那边"
    return ",".join(names)


def _tiers(rng: random.Random, count: int, famous: int) -> list[str]:
    """Exact shares (rounded) so the mix is the same for every seed; famous names are all A."""
    pool = [tier for tier, share in TIER_SHARES for _ in range(round(count * share))]
    pool += ["C"] * (count - len(pool))
    for _ in range(famous):
        pool.remove("A")
    rng.shuffle(pool)
    return ["A"] * famous + pool


def _owners(rng: random.Random, count: int, famous: int) -> list[str | None]:
    """Owner keys; N_PUBLIC of the ordinary customers sit in the 公海. Every seller gets a base
    share first so no one (the older rep included) ends up with too few to have a digest."""
    sellers = [p for p in PEOPLE if p.role in SALES_ROLES]
    base = [p.key for p in sellers for _ in range(OWNER_WEIGHT[p.role] * 5)]
    rest = count - N_PUBLIC - len(base)
    weights = [OWNER_WEIGHT[p.role] for p in sellers]
    owned = base + rng.choices([p.key for p in sellers], weights=weights, k=rest)
    rng.shuffle(owned)
    public_slots = set(rng.sample(range(famous, count), N_PUBLIC))
    it = iter(owned)
    return [None if i in public_slots else next(it) for i in range(count)]


def _contacts(rng: random.Random) -> list[tuple[str, str, str]]:
    titles = rng.sample(CONTACT_TITLES, rng.choice((1, 1, 2)))
    return [(rng.choice(SURNAMES) + rng.choice(GIVEN_NAMES), title, _mobile(rng)) for title in titles]


def _mobile(rng: random.Random) -> str:
    return rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"


def _add_contacts(session: Session, plans: list[_Plan]) -> None:
    session.add_all(Contact(customer_id=plan.customer.id, name=name, title=title, phone=phone)
                    for plan in plans for name, title, phone in plan.contacts)


# -- schedule: when each customer is next due, and the history before it ---------------------


def _plan_schedule(rng: random.Random, plans: list[_Plan], now: datetime) -> None:
    """Set next_followup_at and the past follow-up times. Every owner gets one due today, one due
    tomorrow and one overdue, so each person's digest has both sections, today and after the
    simulator's "next 08:00"; overdue ones have nothing since."""
    today = now.astimezone(BUSINESS_TZ).date()
    active = [p for p in plans if p.owner_key and p.customer.status != "流失"]
    due: dict[int, datetime] = {}
    for owner in dict.fromkeys(p.owner_key for p in active):  # first-seen order: deterministic
        mine = [p for p in active if p.owner_key == owner]
        first, second, third = rng.sample(mine, 3)
        due[id(first)] = _today_slot(rng, today)
        due[id(second)] = _overdue(rng, today, 1, 7)
        # Tomorrow too: the first thing a demo user tries is the clock's "next 08:00" digest.
        due[id(third)] = _booking(rng, today + timedelta(days=1), TODAY_SLOTS)
    free = [p for p in active if id(p) not in due]
    stale = rng.sample([p for p in free if p.customer.tier == "A"], N_STALE_A)
    for plan in stale:
        due[id(plan)] = _overdue(rng, today, 8, 20)
    free = [p for p in free if id(p) not in due]
    owners = len({p.owner_key for p in active})
    extra = rng.sample(free, (N_OVERDUE - owners - N_STALE_A) + (N_TODAY - owners))
    for i, plan in enumerate(extra):
        late = i < N_OVERDUE - owners - N_STALE_A
        due[id(plan)] = _overdue(rng, today, 1, 14) if late else _today_slot(rng, today)
    for plan in active:
        if id(plan) not in due and rng.random() >= P_NOTHING_BOOKED:
            due[id(plan)] = _booking(rng, today + timedelta(days=rng.randint(1, 14)))
    for plan in plans:
        if plan.owner_key:
            _plan_history(rng, plan, due.get(id(plan)), today)


def _plan_history(rng: random.Random, plan: _Plan, next_at: datetime | None, today: date) -> None:
    """0–4 past follow-ups on distinct days in the last HISTORY_DAYS, all before the due date."""
    last_day = today - timedelta(days=1)
    if next_at is not None:
        last_day = min(last_day, next_at.astimezone(BUSINESS_TZ).date() - timedelta(days=1))
    first_day = today - timedelta(days=HISTORY_DAYS)
    span = (last_day - first_day).days + 1
    count = min(rng.choices(range(len(FOLLOWUP_COUNT_WEIGHTS)), weights=FOLLOWUP_COUNT_WEIGHTS)[0], span)
    days = sorted(rng.sample(range(span), count))
    plan.history = [_booking(rng, first_day + timedelta(days=d), BOOKING_SLOTS, jitter=True) for d in days]
    plan.customer.next_followup_at = next_at
    plan.customer.last_followup_at = plan.history[-1] if plan.history else None


def _today_slot(rng: random.Random, today: date) -> datetime:
    return _booking(rng, today, TODAY_SLOTS)


def _overdue(rng: random.Random, today: date, min_days: int, max_days: int) -> datetime:
    # Whole days in the past, so it is overdue whatever time of day the digest runs.
    return _booking(rng, today - timedelta(days=rng.randint(min_days, max_days)))


def _booking(rng: random.Random, day: date, slots: tuple[tuple[int, int], ...] = BOOKING_SLOTS,
             jitter: bool = False) -> datetime:
    """A business-time appointment on `day`, as aware UTC; `jitter` for things that really happened."""
    hour, minute = rng.choice(slots)
    local = datetime.combine(day, time(hour, minute), BUSINESS_TZ)
    if jitter:
        local += timedelta(minutes=rng.randrange(0, 50))
    return local.astimezone(timezone.utc)


# -- deals ------------------------------------------------------------------------------------


def _add_deals(session: Session, rng: random.Random, plans: list[_Plan], employees: dict[str, Employee],
               now: datetime) -> int:
    """N_DEALS on owned customers, most on those showing interest; owner is the customer's owner."""
    owned = [p for p in plans if p.owner_key]
    warm = [p for p in owned if p.customer.status in ("意向", "成交")]
    cold = [p for p in owned if p.customer.status not in ("意向", "成交")]
    n_warm = min(len(warm), N_DEALS * 4 // 5)
    chosen = rng.sample(warm, n_warm) + rng.sample(cold, min(len(cold), N_DEALS - n_warm))
    today = now.astimezone(BUSINESS_TZ).date()
    made = [_deal(rng, plan, employees[plan.owner_key], today, now) for plan in chosen]
    session.add_all(made)
    session.flush()
    # Each deal's history starts with its creation, as one opened from chat does (from_stage "").
    session.add_all(DealStageChange(deal_id=d.id, from_stage="", to_stage=d.stage, employee_id=d.owner_id,
                                    at=d.created_at) for d in made)
    return len(chosen)


def _deal(rng: random.Random, plan: _Plan, owner: Employee, today: date, now: datetime) -> Deal:
    c = plan.customer
    stage = rng.choice(STAGES_FOR_STATUS[c.status])
    closed = stage in ("赢单", "输单")
    # Closed deals closed in the past; open ones mostly ahead, a few already slipping.
    offset = -rng.randint(1, 60) if closed else rng.randint(-10, 60)
    return Deal(customer_id=c.id, owner_id=owner.id, title=c.short_names.split(",")[0] + rng.choice(PRODUCTS),
                amount=_amount(rng, c.tier), stage=stage, expected_close=today + timedelta(days=offset),
                created_at=now - timedelta(days=_deal_age(rng, offset, (now - c.created_at).days)))


def _deal_age(rng: random.Random, close_offset: int, customer_age: int) -> int:
    """Days since the deal was opened: after the customer was created, before its expected close."""
    youngest = max(5, 1 - close_offset)
    return rng.randint(youngest, max(youngest, min(90, customer_age)))


def _amount(rng: random.Random, tier: str) -> Decimal:
    """Log-uniform within the tier's range, rounded the way a quote would be."""
    low, high = AMOUNT_RANGE[tier]
    value = low * (high / low) ** rng.random()
    step = 1000 if value >= 100_000 else 100
    return Decimal(min(high, max(low, round(value / step) * step)))


# -- follow-ups -------------------------------------------------------------------------------


def _add_followups(session: Session, rng: random.Random, plans: list[_Plan], employees: dict[str, Employee]) -> int:
    count = 0
    for plan in plans:
        for i, happened in enumerate(plan.history):
            # Each note booked the next one; the latest booked the customer's current due date.
            next_at = plan.history[i + 1] if i + 1 < len(plan.history) else plan.customer.next_followup_at
            session.add(FollowUp(customer_id=plan.customer.id, employee_id=employees[plan.owner_key].id,
                                 method=_weighted(rng, METHOD_WEIGHTS), content=_note(rng, plan),
                                 happened_at=happened, next_at=next_at))
            count += 1
    return count


def _note(rng: random.Random, plan: _Plan) -> str:
    name, title, _ = rng.choice(plan.contacts)
    return rng.choice(FOLLOWUP_NOTES).format(who=_form_of_address(name, title))


def _form_of_address(name: str, title: str) -> str:
    """How a rep refers to a contact in a note: 王总, 李经理, 张主管, else the full name."""
    for suffix, word in (("总经理", "总"), ("总监", "总"), ("经理", "经理"), ("主管", "主管"), ("主任", "主任")):
        if title.endswith(suffix):
            return name[0] + word
    return name


def _weighted(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(tuple(weights), weights=tuple(weights.values()))[0]


# Guard the data against drifting from the schema's vocabularies.
assert set(STATUS_WEIGHTS) == set(CUSTOMER_STATUSES)
assert {s for stages in STAGES_FOR_STATUS.values() for s in stages} <= set(DEAL_STAGES)
assert set(METHOD_WEIGHTS) == set(FOLLOWUP_METHODS)
assert set(DEPARTMENTS.values()) == {p.department for p in PEOPLE}
