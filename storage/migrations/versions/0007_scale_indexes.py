"""scale: indexes for the periodic scans and for cancelling outbox rows by key prefix

Revision ID: 0007_scale_indexes
Revises: 0006

- ix_customer_owner_next (customer: owner_id, next_followup_at): the 08:00 digest's per-owner counts.
- ix_outbox_pending_key (outbox: key, pending rows only): storage.outbox.cancel's key range. On
  PostgreSQL built under COLLATE "C", so the byte-order range is served whatever the database's
  collation (the unique index follows the database's, under which a range or a LIKE prefix need not
  be served, or correct).
"""
from alembic import op
import sqlalchemy as sa


revision = '0007_scale_indexes'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_customer_owner_next', 'customer', ['owner_id', 'next_followup_at'], unique=False)
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('CREATE INDEX ix_outbox_pending_key ON outbox (key COLLATE "C") WHERE status = \'pending\'')
    else:
        op.create_index('ix_outbox_pending_key', 'outbox', ['key'], unique=False,
                        sqlite_where=sa.text("status = 'pending'"))


def downgrade() -> None:
    op.drop_index('ix_outbox_pending_key', table_name='outbox')
    op.drop_index('ix_customer_owner_next', table_name='customer')
