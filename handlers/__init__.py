"""Platform-blind handlers: an InboundEvent in, a Card (or nothing) out.

Each module records what it handles on a `Routes` of its own; `build_router()` includes them all
into a new Router. Nothing is registered by importing a module: a process gets its handlers by
calling banli.wiring.wire(runtime), which calls this.
"""

from handlers.router import Context, Router


def build_router() -> Router:
    """A router with every handler module's routes; a route claimed twice raises here."""
    from handlers import (admin_rules, approval_actions, approval_rules, approvals, checkin, console, crm,
                          customer_entry, customers, deals, directory, guided, menu, overdue, payments, people,
                          pool, role_admin, understand, visit)

    router = Router()
    for module in (menu, guided, customers, crm, visit, checkin, customer_entry, deals, pool, admin_rules,
                   approvals, approval_actions, approval_rules, people, payments, role_admin, console, directory,
                   overdue, understand):
        router.include(module.routes)
    return router


__all__ = ["Context", "Router", "build_router"]
