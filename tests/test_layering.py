"""docs/architecture.md §1: handlers/ workflows/ cards/ storage/ never import Flask or a platform
module, and the import direction is bot → handlers → workflows → storage."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {
    "handlers": {"flask", "werkzeug", "bot", "banli", "wechatpy", "dingtalk", "requests", "rq"},
    "workflows": {"flask", "werkzeug", "bot", "banli", "wechatpy", "dingtalk", "handlers", "requests", "rq"},
    "cards": {"flask", "werkzeug", "bot", "banli", "wechatpy", "dingtalk", "handlers", "workflows", "storage"},
    "storage": {"flask", "werkzeug", "bot", "banli", "wechatpy", "dingtalk", "handlers", "workflows", "requests"},
}


PACKAGES = ("banli", "bot", "handlers", "cards", "workflows", "storage")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_core_packages_stay_platform_blind():
    offences = []
    for package, banned in FORBIDDEN.items():
        for path in (ROOT / package).rglob("*.py"):
            bad = _imports(path) & banned
            if bad:
                offences.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    assert offences == []


def test_platform_wire_code_lives_only_in_its_folder():
    offences = []
    for path in (p for package in PACKAGES for p in (ROOT / package).rglob("*.py")):
        rel = path.relative_to(ROOT)
        if rel.parts[:2] in (("bot", "wecom"), ("bot", "dingtalk")):
            continue
        if _imports(path) & {"wechatpy", "dingtalk", "xmltodict"}:
            offences.append(str(rel))
    assert offences == []
