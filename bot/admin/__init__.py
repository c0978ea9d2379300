"""The web console (后台) at /admin: an edge like the platform blueprints. Pages are server-rendered
Jinja (autoescaped) with one layout and one stylesheet served from here; what they show comes from
workflows/ (console, audit_view, queue_health), which know nothing of Flask."""
