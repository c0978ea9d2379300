"""Platform-blind handlers: an InboundEvent in, a Card (or nothing) out.

`routes` is the application's router; importing `handlers.menu` (and later feature modules)
registers their handlers on it.
"""

from handlers.router import Context, Router

routes = Router()


def load() -> Router:
    """Import every handler module once and return the populated router."""
    from handlers import approval_rules, approvals, crm, customer_entry, customers, deals, menu, payments  # noqa: F401
    import workflows.contracts  # noqa: F401  (subscribes the deal → contract → 回款 loop)

    return routes


__all__ = ["Context", "Router", "routes", "load"]
