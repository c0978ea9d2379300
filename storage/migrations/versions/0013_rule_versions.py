"""rule versions: every saved state of a routing rule, for its history and diff

Revision ID: 0013_rule_versions
Revises: 0012_overdue_marks
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0013_rule_versions'
down_revision = '0012_overdue_marks'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('approval_rule_version',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('rule_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('data', sa.Text(), nullable=False),
    sa.Column('by_id', sa.Integer(), nullable=True),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['rule_id'], ['approval_rule.id'], ),
    sa.ForeignKeyConstraint(['by_id'], ['employee.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('rule_id', 'version', name='uq_approval_rule_version')
    )
    with op.batch_alter_table('approval_rule_version', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_approval_rule_version_rule_id'), ['rule_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('approval_rule_version', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_approval_rule_version_rule_id'))
    op.drop_table('approval_rule_version')
