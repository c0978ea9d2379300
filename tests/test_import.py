"""`banli import customers FILE`: CSV (UTF-8, UTF-8 with BOM, GBK) and XLSX, Chinese or English
headers; --dry-run reports bad rows by their Excel row number and likely duplicates and writes nothing;
a real run is one transaction; importing the same file again creates nothing new."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from openpyxl import Workbook
from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from banli.cli import main
from storage.db import make_engine, session_scope
from storage.models import Contact, Customer, Employee
from workflows import customers
from workflows.matching import refresh_forms

HEADER = ["客户名称", "简称", "等级", "负责人", "行业", "地区", "联系人", "电话", "备注"]
GOOD = [
    ["上海华美教育科技有限公司", "华美", "A", "张三", "教育", "上海", "陈老师", "138 0000 1111", "老客户"],
    ["杭州云栖科技有限公司", "云栖", "b级", "李四", "软件", "杭州", "周总", "0571-88886666", ""],
    ["成都天府软件园有限公司", "", "", "张三", "", "成都", "", "", ""],
]
BAD = [
    ["北京字节跳动科技有限公司", "字节", "D", "张三", "", "", "", "", ""],  # row 5: tier
    ["南京某某商贸有限公司", "", "C", "王五", "", "", "", "", ""],  # row 6: unknown owner
    ["广州某某物流有限公司", "", "C", "李四", "", "", "刘经理", "12345", ""],  # row 7: phone
]


@pytest.fixture
def db(database_url, monkeypatch):
    engine = make_engine(database_url)
    with session_scope(engine) as session:
        session.add_all([Employee(name="张三"), Employee(name="李四")])
        session.flush()
        tencent = Customer(name="腾讯科技(深圳)有限公司", short_names="腾讯", owner_id=1)
        refresh_forms(tencent)
        session.add(tencent)
        session.flush()
        session.add(Contact(customer_id=tencent.id, name="马化腾", phone="13800138000"))
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.chdir(os.path.dirname(__file__))  # no stray .env from the working directory
    yield engine
    engine.dispose()


def run(capsys, *args: str) -> tuple[int, str]:
    code = main(["import", "customers", *map(str, args)])
    return code, capsys.readouterr().out


def write_csv(path, rows, encoding="utf-8"):
    lines = [",".join(HEADER)] + [",".join(r) for r in rows]
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


def counts(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
                for t in ("customer", "contact", "ownership_change", "audit_log")}


NOTHING_YET = {"customer": 1, "contact": 1, "ownership_change": 0, "audit_log": 0}


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk"])
def test_dry_run_reports_bad_rows_by_excel_row_number_and_writes_nothing(db, tmp_path, capsys, encoding):
    path = write_csv(tmp_path / "客户.csv", GOOD + BAD, encoding)
    code, out = run(capsys, path, "--dry-run")
    assert code == 1
    assert "读取 6 行：可创建 3 个，疑似重复 0 行，有问题 3 行" in out
    assert "第5行：等级「D」不对" in out
    assert "第6行：负责人「王五」不是在职员工的名字" in out
    assert "第7行：电话「12345」不对" in out
    assert "忽略的列：备注" in out
    assert counts(db) == NOTHING_YET


def test_a_real_run_with_bad_rows_is_refused_whole_unless_told_to_skip_them(db, tmp_path, capsys):
    path = write_csv(tmp_path / "c.csv", GOOD + BAD)
    code, out = run(capsys, path)
    assert code == 1 and "没有导入任何数据" in out
    assert counts(db) == NOTHING_YET

    code, out = run(capsys, path, "--skip-bad")
    assert code == 0 and "已导入 3 个客户" in out and "跳过有问题的 3 行" in out
    with db.connect() as conn:
        rows = conn.execute(text("SELECT c.name, c.tier, c.status, c.short_names, e.name FROM customer c "
                                 "JOIN employee e ON e.id = c.owner_id WHERE c.id > 1 ORDER BY c.id")).all()
        phones = conn.execute(text("SELECT name, phone FROM contact WHERE customer_id > 1 ORDER BY id")).all()
        reasons = conn.execute(text("SELECT DISTINCT reason FROM ownership_change")).scalars().all()
        actions = conn.execute(text("SELECT action, platform FROM audit_log ORDER BY id")).all()
    assert rows == [("上海华美教育科技有限公司", "A", "潜在", "华美", "张三"),
                    ("杭州云栖科技有限公司", "B", "潜在", "云栖", "李四"),
                    ("成都天府软件园有限公司", "C", "潜在", "", "张三")]
    assert phones == [("陈老师", "13800001111"), ("周总", "057188886666")]
    assert reasons == ["import"]
    assert actions == [("customer.create", "cli")] * 3 + [("customer.import", "cli")]


def test_imported_customers_are_found_by_name_in_chat_straight_away(db, tmp_path, capsys):
    # Written in bulk, they still carry the matching forms a one-by-one create stores.
    assert run(capsys, write_csv(tmp_path / "c.csv", GOOD))[0] == 0
    with session_scope(db) as session:
        imported = session.query(Customer).filter(Customer.id > 1).order_by(Customer.id).all()
        stored = [c.match_forms for c in imported]
        assert stored == [refresh_forms(c) and c.match_forms for c in imported]
        found = customers.index(session).match("杭州云栖")
    assert found.decision == "accept" and found.candidates[0].name == "杭州云栖科技有限公司"


def test_importing_the_same_file_again_creates_no_duplicates(db, tmp_path, capsys):
    path = write_csv(tmp_path / "c.csv", GOOD)
    assert run(capsys, path)[0] == 0
    after_first = counts(db)

    code, out = run(capsys, path, "--dry-run")
    assert code == 1 and "可创建 0 个，疑似重复 3 行" in out
    assert "第2行「上海华美教育科技有限公司」：已有客户「上海华美教育科技有限公司」（负责人 张三）名称相同" in out
    code, out = run(capsys, path)
    assert code == 0 and "已导入 0 个客户，跳过疑似重复 3 行" in out
    assert counts(db)["customer"] == after_first["customer"] == 4


def test_duplicates_of_existing_customers_and_within_the_file_are_reported_and_skipped(db, tmp_path, capsys):
    path = write_csv(tmp_path / "c.csv", [
        ["深圳市腾讯计算机系统有限公司", "腾讯", "A", "张三", "", "", "", "", ""],  # 简称 of an existing one
        ["深圳鹅厂贸易有限公司", "", "C", "李四", "", "", "小马", "+86 138-0013-8000", ""],  # its contact's phone
        ["上海华美教育科技有限公司", "华美", "A", "张三", "", "", "", "", ""],
        ["上海华美教育科技有限公司", "", "A", "李四", "", "", "", "", ""],  # the same row twice
    ])
    code, out = run(capsys, path, "--dry-run")
    assert code == 1 and "可创建 1 个，疑似重复 3 行" in out
    assert "第2行「深圳市腾讯计算机系统有限公司」：已有客户「腾讯科技(深圳)有限公司」（负责人 张三）简称「腾讯」相同" in out
    assert "第3行「深圳鹅厂贸易有限公司」：已有客户「腾讯科技(深圳)有限公司」（负责人 张三）联系人电话相同" in out
    assert "第5行「上海华美教育科技有限公司」：和第4行的名称相同" in out

    code, out = run(capsys, path, "--allow-duplicates")
    assert code == 0 and "已导入 4 个客户" in out
    assert counts(db)["customer"] == 5


def test_names_that_sound_the_same_are_duplicates_of_a_customer_and_of_an_earlier_row(db, tmp_path, capsys):
    path = write_csv(tmp_path / "c.csv", [
        ["腾迅科技(深圳)有限公司", "", "A", "张三", "", "", "", "", ""],  # 迅 for 讯, as an input method types it
        ["上海华美教育科技有限公司", "", "A", "张三", "", "", "", "", ""],
        ["上海华镁教育科技有限公司", "", "A", "李四", "", "", "", "", ""],  # 镁 for 美
        ["杭州云栖科技有限公司", "", "B", "李四", "", "", "", "", ""],
    ])
    code, out = run(capsys, path, "--dry-run")
    assert "可创建 2 个，疑似重复 2 行" in out
    assert "第2行「腾迅科技(深圳)有限公司」：已有客户「腾讯科技(深圳)有限公司」（负责人 张三）名称相近" in out
    assert "第4行「上海华镁教育科技有限公司」：和第3行的名称相近" in out


def test_xlsx_with_english_headers_numbers_as_phones_and_a_default_owner(db, tmp_path, capsys):
    book = Workbook()
    sheet = book.active
    sheet.append(["Name", "Short names", "Tier", "Owner", "Industry", "Region", "Contact", "Phone"])
    sheet.append(["上海华美教育科技有限公司", "华美,华美教育", "A", None, "教育", "上海", "陈老师", 13800001111])
    sheet.append([None] * 8)  # blank rows in the middle are skipped …
    sheet.append(["杭州云栖科技有限公司", None, "X", "李四", None, None, None, None])  # … but counted: row 4
    path = tmp_path / "customers.xlsx"
    book.save(path)

    code, out = run(capsys, path, "--dry-run")
    assert code == 1 and "第2行：负责人是空的" in out and "第4行：等级「X」不对" in out
    code, out = run(capsys, path, "--skip-bad", "--owner-default", "李四")
    assert code == 0 and "已导入 1 个客户" in out
    with db.connect() as conn:
        assert conn.execute(text("SELECT c.short_names, e.name, t.phone FROM customer c JOIN employee e "
                                 "ON e.id = c.owner_id JOIN contact t ON t.customer_id = c.id WHERE c.id > 1")).all() \
            == [("华美,华美教育", "李四", "13800001111")]


def test_owner_default_pool_and_unusable_inputs(db, tmp_path, capsys):
    path = write_csv(tmp_path / "c.csv", [["成都天府软件园有限公司", "", "", "", "", "", "", "", ""]])
    assert run(capsys, path, "--owner-default", "赵六") == (2, "无法导入 cannot import: --owner-default「赵六」不是在职员工的名字\n")
    assert run(capsys, tmp_path / "missing.csv")[0] == 2
    (tmp_path / "old.xls").write_bytes(b"\xd0\xcf\x11\xe0")
    code, out = run(capsys, tmp_path / "old.xls")
    assert code == 2 and "另存为 .xlsx" in out
    (tmp_path / "noname.csv").write_text("简称,等级\n腾讯,A\n", encoding="utf-8")
    code, out = run(capsys, tmp_path / "noname.csv")
    assert code == 2 and "「名称」" in out
    assert counts(db) == NOTHING_YET

    code, out = run(capsys, path, "--owner-default", "公海")
    assert code == 0
    with db.connect() as conn:
        assert conn.execute(text("SELECT owner_id FROM customer WHERE id > 1")).scalars().all() == [None]


def test_a_database_error_midway_writes_nothing(db, tmp_path, capsys):
    # The customers are written, then the connection drops at their contacts: nothing may stay.
    def lose_connection(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith("INSERT INTO CONTACT"):
            raise OperationalError(statement, {}, Exception("connection lost"))

    event.listen(Engine, "before_cursor_execute", lose_connection)
    try:
        code, out = run(capsys, write_csv(tmp_path / "c.csv", GOOD))
    finally:
        event.remove(Engine, "before_cursor_execute", lose_connection)
    assert code == 1 and "没有写入任何数据" in out
    assert counts(db) == NOTHING_YET


def test_the_real_banli_command(db, tmp_path):
    path = write_csv(tmp_path / "客户.csv", GOOD + BAD[:1], "gbk")
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    dry = subprocess.run([sys.executable, "-m", "banli.cli", "import", "customers", str(path), "--dry-run"],
                         env=env, capture_output=True, text=True, encoding="utf-8", timeout=60, cwd=tmp_path)
    assert dry.returncode == 1 and "第5行：等级「D」不对" in dry.stdout, dry.stdout + dry.stderr
    real = subprocess.run([sys.executable, "-m", "banli.cli", "import", "customers", str(path), "--skip-bad"],
                          env=env, capture_output=True, text=True, encoding="utf-8", timeout=60, cwd=tmp_path)
    assert real.returncode == 0 and "已导入 3 个客户" in real.stdout, real.stdout + real.stderr
    assert counts(db)["customer"] == 4
