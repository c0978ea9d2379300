"""The one call every process makes at start — web, worker, dispatcher, the demo, tests:
`wire(runtime)` gives the runtime its router (every handler module's routes) and its signal
subscribers (the CRM ↔ OA loop, alerts a follow-up makes moot).

Nothing is registered by importing a module, so what a process can do never depends on what it
happened to import first: a worker whose very first job is a timer has the same subscribers as a
web process that has answered a thousand messages.
"""

from __future__ import annotations

from bot.runtime import Runtime
from handlers import build_router
from workflows import contracts, pool, signals
from workflows.approvals.requests import APPROVAL_DECIDED


def subscribers() -> signals.Signals:
    bus = signals.Signals()
    bus.subscribe(signals.DEAL_STAGE_CHANGED, contracts.raise_contract)  # 赢单 → contract approval
    bus.subscribe(APPROVAL_DECIDED, contracts.contract_decided)  # contract approved → 已签约 + 回款计划
    bus.subscribe(signals.FOLLOWUP_LOGGED, pool.on_followup_logged)  # held 公海 warnings withdrawn
    return bus


def wire(runtime: Runtime) -> Runtime:
    """Give `runtime` its router and subscribers; calling it again on the same runtime does nothing."""
    if runtime.wired:
        return runtime
    runtime.router = build_router()
    runtime.signals = subscribers()
    signals.attach(runtime.engine, runtime.signals)  # domain events come from ORM sessions on it
    return runtime
