"""Platform-blind handlers: an InboundEvent in, a Card (or nothing) out.

`routes` is the application's router; importing `handlers.menu` (and later feature modules)
registers their handlers on it.
"""

from handlers.router import Context, Router

routes = Router()


def load() -> Router:
    """Import every handler module once and return the populated router."""
    # checkin imports menu first, so its image/location handlers replace the menu's plain ones.
    from handlers import (admin_rules, approval_actions, approval_rules, approvals, checkin, crm,  # noqa: F401
                          customer_entry, customers, deals, guided, menu, payments, people, pool, visit)
    import workflows.contracts  # noqa: F401  (subscribes the deal → contract → 回款 loop)

    return routes


__all__ = ["Context", "Router", "routes", "load"]
