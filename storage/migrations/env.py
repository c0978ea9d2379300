"""Alembic environment: the engine comes from storage.migrate (config.attributes).

SQLite changes a table's constraints by rebuilding it (create a copy, move the rows, drop the old
one). With foreign keys enforced, dropping `employee` fails as soon as any row points at it, so on
SQLite the migrations run with enforcement off and `PRAGMA foreign_key_check` must find nothing
broken before the transaction commits (SQLite's documented procedure for altering a table).
"""

from alembic import context
from sqlmodel import SQLModel

import storage.models  # noqa: F401  (registers the tables)

config = context.config
engine = config.attributes["engine"]
sqlite = engine.dialect.name == "sqlite"

with engine.connect() as connection:
    if sqlite:  # only takes effect outside a transaction
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        connection.commit()
    with connection.begin():
        context.configure(connection=connection, target_metadata=SQLModel.metadata, render_as_batch=sqlite)
        context.run_migrations()
        if sqlite:
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"migration left rows pointing nowhere: {broken[:5]}")
    if sqlite:
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")
        connection.commit()
