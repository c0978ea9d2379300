"""Platform-blind handlers: an InboundEvent in, a Card (or nothing) out.

`routes` is the application's router; importing `handlers.menu` (and later feature modules)
registers their handlers on it.
"""

from handlers.router import Context, Router

routes = Router()


def load() -> Router:
    """Import every handler module once and return the populated router."""
    from handlers import admin_rules, crm, menu, pool  # noqa: F401

    return routes


__all__ = ["Context", "Router", "routes", "load"]
