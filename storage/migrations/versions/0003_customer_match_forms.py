"""customer match forms: customer.match_forms (JSON text) for the name matcher

Existing rows get "" and are computed on first load (workflows.matching.stored_forms) or backfilled with
workflows.matching.refresh_stale_forms; a migration does not import workflow code.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 00:55:11.846029
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('customer', schema=None) as batch_op:
        batch_op.add_column(sa.Column('match_forms', sa.Text(), server_default='', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('customer', schema=None) as batch_op:
        batch_op.drop_column('match_forms')
