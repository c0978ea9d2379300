"""SQL state: tables, engine and sessions, migrations and small repositories. No Flask, no platforms."""
