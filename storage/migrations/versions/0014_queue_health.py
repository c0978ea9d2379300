"""queue health: process heartbeats and platform API calls per month

Revision ID: 0014_queue_health
Revises: 0013_rule_versions
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0014_queue_health'
down_revision = '0013_rule_versions'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('process_beat',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('host', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('started_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('last_seen', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('jobs', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('process_beat', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_process_beat_last_seen'), ['last_seen'], unique=False)
    op.create_table('api_call_count',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('platform', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('month', sqlmodel.sql.sqltypes.AutoString(length=7), nullable=False),
    sa.Column('calls', sa.Integer(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('warned_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('platform', 'month', name='uq_api_call_count_platform_month')
    )


def downgrade() -> None:
    op.drop_table('api_call_count')
    with op.batch_alter_table('process_beat', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_process_beat_last_seen'))
    op.drop_table('process_beat')
