"""customer name changes: a trigger-written log of customers added, renamed or removed

The name matcher each process holds in memory used to decide whether it was stale with
count(id), max(id) and sum(length(match_forms)) over the whole customer table on every lookup —
~100 ms at 1,000,000 customers — and could miss a rename that kept the forms' length. Now a
trigger on `customer` writes one row per insert, delete, or update of a column the matcher reads;
a process reads the rows after the last one it applied (an index range, usually empty).

Revision ID: 0015_customer_name_changes
Revises: 0014_queue_health
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0015_customer_name_changes'
down_revision = '0014_queue_health'
branch_labels = None
depends_on = None

# The columns workflows/matching.py builds a customer's forms from (and the forms themselves).
MATCHED = "name, short_names, region, match_forms"


def upgrade() -> None:
    op.create_table('customer_name_change',
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('changed_at', sqlmodel.sql.sqltypes.UTCDateTime(), server_default=sa.func.now(),
              nullable=False),
    sa.PrimaryKeyConstraint('seq'),
    sqlite_autoincrement=True,
    )
    op.create_index(op.f('ix_customer_name_change_changed_at'), 'customer_name_change', ['changed_at'], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("""
            CREATE FUNCTION banli_customer_name_change() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                INSERT INTO customer_name_change (customer_id)
                VALUES (CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END);
                RETURN NULL;
            END $$""")
        op.execute(f"""
            CREATE TRIGGER customer_name_change AFTER INSERT OR DELETE OR UPDATE OF {MATCHED} ON customer
            FOR EACH ROW EXECUTE FUNCTION banli_customer_name_change()""")
        return
    for event, row in (("INSERT", "NEW"), ("DELETE", "OLD"), (f"UPDATE OF {MATCHED}", "NEW")):
        name = "customer_name_change_" + event.split()[0].lower()
        op.execute(f"""
            CREATE TRIGGER {name} AFTER {event} ON customer FOR EACH ROW
            BEGIN INSERT INTO customer_name_change (customer_id) VALUES ({row}.id); END""")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER customer_name_change ON customer")
        op.execute("DROP FUNCTION banli_customer_name_change()")
    else:
        for event in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER customer_name_change_{event}")
    op.drop_index(op.f('ix_customer_name_change_changed_at'), table_name='customer_name_change')
    op.drop_table('customer_name_change')
