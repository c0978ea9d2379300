"""directory: departments, and what the platform directories say about employees

Revision ID: 0009_directory
Revises: 0006
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0009_directory'
down_revision = '0008_roles'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('department',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('platform', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('dept_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('parent_dept_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('synced_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('platform', 'dept_id', name='uq_department_platform_dept')
    )
    with op.batch_alter_table('employee', schema=None) as batch_op:
        batch_op.add_column(sa.Column('mobile', sqlmodel.sql.sqltypes.AutoString(length=32), server_default='', nullable=False))
        batch_op.add_column(sa.Column('email', sqlmodel.sql.sqltypes.AutoString(length=128), server_default='', nullable=False))
        batch_op.add_column(sa.Column('job_number', sqlmodel.sql.sqltypes.AutoString(length=64), server_default='', nullable=False))
        batch_op.add_column(sa.Column('department_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('left_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('handed_over_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('merged_into_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_employee_mobile'), ['mobile'], unique=False)
        batch_op.create_index(batch_op.f('ix_employee_email'), ['email'], unique=False)
        batch_op.create_index(batch_op.f('ix_employee_job_number'), ['job_number'], unique=False)
        batch_op.create_index(batch_op.f('ix_employee_department_id'), ['department_id'], unique=False)
        batch_op.create_foreign_key('fk_employee_department_id', 'department', ['department_id'], ['id'])
        batch_op.create_foreign_key('fk_employee_merged_into_id', 'employee', ['merged_into_id'], ['id'])
    with op.batch_alter_table('identity', schema=None) as batch_op:
        batch_op.add_column(sa.Column('digest', sqlmodel.sql.sqltypes.AutoString(length=32), server_default='', nullable=False))
        batch_op.add_column(sa.Column('left_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('identity', schema=None) as batch_op:
        batch_op.drop_column('left_at')
        batch_op.drop_column('digest')
    with op.batch_alter_table('employee', schema=None) as batch_op:
        batch_op.drop_constraint('fk_employee_merged_into_id', type_='foreignkey')
        batch_op.drop_constraint('fk_employee_department_id', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_employee_department_id'))
        batch_op.drop_index(batch_op.f('ix_employee_job_number'))
        batch_op.drop_index(batch_op.f('ix_employee_email'))
        batch_op.drop_index(batch_op.f('ix_employee_mobile'))
        for column in ('merged_into_id', 'handed_over_at', 'left_at', 'department_id', 'job_number', 'email', 'mobile'):
            batch_op.drop_column(column)
    op.drop_table('department')
