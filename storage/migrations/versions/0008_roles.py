"""roles: several per person, in employee_role (employee.role goes)

Revision ID: 0008_roles
Revises: 0006
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
from datetime import datetime, timezone


revision = '0008_roles'
down_revision = '0007_scale_indexes'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('employee_role',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('employee_id', sa.Integer(), nullable=False),
    sa.Column('role', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('granted_by', sa.Integer(), nullable=True),
    sa.Column('granted_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['employee_id'], ['employee.id'], ),
    sa.ForeignKeyConstraint(['granted_by'], ['employee.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('employee_id', 'role', name='uq_employee_role')
    )
    with op.batch_alter_table('employee_role', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_employee_role_employee_id'), ['employee_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_employee_role_role'), ['role'], unique=False)
    # The one role each person had carries over, granted by an admin as far as anyone can tell.
    rows = op.get_bind().execute(sa.text("SELECT id, role FROM employee WHERE role <> ''")).all()
    if rows:
        table = sa.table('employee_role', sa.column('employee_id', sa.Integer), sa.column('role', sa.String),
                         sa.column('source', sa.String), sa.column('granted_at', sqlmodel.sql.sqltypes.UTCDateTime()))
        now = datetime.now(timezone.utc)
        op.bulk_insert(table, [{"employee_id": i, "role": role, "source": "admin", "granted_at": now}
                               for i, role in rows])
    # A plain ALTER TABLE … DROP COLUMN, on SQLite too (3.35+): batch mode would copy the table and
    # drop the old one, which the foreign keys of every identity, role and request refuse.
    op.drop_column('employee', 'role')


def downgrade() -> None:
    op.add_column('employee', sa.Column('role', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False,
                                        server_default=''))
    # One role per person again: admin wins, else the first granted.
    op.execute("UPDATE employee SET role = COALESCE((SELECT r.role FROM employee_role r WHERE r.employee_id = employee.id "
               "ORDER BY CASE WHEN r.role = 'admin' THEN 0 ELSE 1 END, r.id LIMIT 1), '')")
    with op.batch_alter_table('employee_role', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_employee_role_role'))
        batch_op.drop_index(batch_op.f('ix_employee_role_employee_id'))
    op.drop_table('employee_role')
