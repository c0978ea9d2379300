"""approvals: rules, requests, tasks

Revision ID: 0006
Revises: 0005
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import json
from datetime import datetime, timezone


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('approval_rule',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_type', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('condition', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('steps', sa.Text(), nullable=False),
    sa.Column('cc', sa.Text(), server_default='[]', nullable=False),
    sa.Column('no_approver', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('updated_by', sa.Integer(), nullable=True),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['updated_by'], ['employee.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('approval_rule', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_approval_rule_request_type'), ['request_type'], unique=False)

    op.create_table('approval_request',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('type', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('requester_id', sa.Integer(), nullable=False),
    sa.Column('summary', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('details', sa.Text(), nullable=False),
    sa.Column('amount', sa.Numeric(precision=14, scale=2), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('rule_id', sa.Integer(), nullable=True),
    sa.Column('rule_version', sa.Integer(), nullable=False),
    sa.Column('chain', sa.Text(), nullable=False),
    sa.Column('step', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('source_key', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('submitted_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('decided_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['requester_id'], ['employee.id'], ),
    sa.ForeignKeyConstraint(['rule_id'], ['approval_rule.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('source_key', name='uq_approval_request_source_key')
    )
    with op.batch_alter_table('approval_request', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_approval_request_requester_id'), ['requester_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_approval_request_status'), ['status'], unique=False)

    op.create_table('approval_task',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('step', sa.Integer(), nullable=False),
    sa.Column('approver_id', sa.Integer(), nullable=False),
    sa.Column('on_behalf_of_id', sa.Integer(), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('comment', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('decided_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['approver_id'], ['employee.id'], ),
    sa.ForeignKeyConstraint(['on_behalf_of_id'], ['employee.id'], ),
    sa.ForeignKeyConstraint(['request_id'], ['approval_request.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('approval_task', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_approval_task_approver_id'), ['approver_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_approval_task_request_id'), ['request_id'], unique=False)


    op.create_table('approval_card',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('employee_id', sa.Integer(), nullable=False),
    sa.Column('role', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=True),
    sa.Column('outbox_key', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.ForeignKeyConstraint(['employee_id'], ['employee.id'], ),
    sa.ForeignKeyConstraint(['request_id'], ['approval_request.id'], ),
    sa.ForeignKeyConstraint(['task_id'], ['approval_task.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('outbox_key', name='uq_approval_card_outbox_key')
    )
    with op.batch_alter_table('approval_card', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_approval_card_request_id'), ['request_id'], unique=False)

    op.create_table('payment_plan',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('deal_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('amount', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('paid', sa.Numeric(precision=14, scale=2), server_default='0', nullable=False),
    sa.Column('due_date', sa.Date(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], ),
    sa.ForeignKeyConstraint(['deal_id'], ['deal.id'], ),
    sa.ForeignKeyConstraint(['request_id'], ['approval_request.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('payment_plan', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payment_plan_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_payment_plan_deal_id'), ['deal_id'], unique=False)

    op.create_table('delegation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('employee_id', sa.Integer(), nullable=False),
    sa.Column('delegate_id', sa.Integer(), nullable=False),
    sa.Column('first_day', sa.Date(), nullable=False),
    sa.Column('last_day', sa.Date(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['delegate_id'], ['employee.id'], ),
    sa.ForeignKeyConstraint(['employee_id'], ['employee.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('delegation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_delegation_employee_id'), ['employee_id'], unique=False)

    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('card_ref', sqlmodel.sql.sqltypes.AutoString(length=128), server_default='',
                                      nullable=False))
        batch_op.create_index(batch_op.f('ix_outbox_card_ref'), ['card_ref'], unique=False)

    _seed_default_rules()


# The defaults (报销, 合同, 请假) plus sensible ones for the other types. Admins edit them later;
# they are data from here on, so a later change of these literals touches only new databases.
DEFAULT_RULES = [
    ("报销", 10, "amount <= 1000", [["manager"]]),
    ("报销", 20, "amount > 1000", [["manager"], ["role:finance"]]),
    ("合同", 10, "amount < 50000", [["role:sales_director"]]),
    ("合同", 20, "amount >= 50000", [["role:legal"], ["role:ceo"]]),
    ("请假", 10, "days <= 3", [["manager"]]),
    ("请假", 20, "days > 3", [["manager"], ["dept_head"]]),
    ("出差", 10, "", [["manager"]]),
    ("采购", 10, "amount <= 5000", [["manager"]]),
    ("采购", 20, "amount > 5000", [["manager"], ["role:finance"]]),
    ("通用", 10, "", [["manager"]]),
]


def _seed_default_rules() -> None:
    table = sa.table("approval_rule", sa.column("request_type", sa.String), sa.column("priority", sa.Integer),
                     sa.column("condition", sa.String), sa.column("steps", sa.Text), sa.column("cc", sa.Text),
                     sa.column("no_approver", sa.String), sa.column("version", sa.Integer),
                     sa.column("active", sa.Boolean), sa.column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime()))
    now = datetime.now(timezone.utc)
    op.bulk_insert(table, [
        {"request_type": kind, "priority": priority, "condition": condition, "cc": "[]", "no_approver": "admin",
         "steps": json.dumps([{"approvers": step, "mode": "any"} for step in steps]), "version": 1,
         "active": True, "updated_at": now}
        for kind, priority, condition, steps in DEFAULT_RULES])


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_card_ref'))
        batch_op.drop_column('card_ref')
    with op.batch_alter_table('delegation', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_delegation_employee_id'))
    op.drop_table('delegation')
    with op.batch_alter_table('payment_plan', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payment_plan_deal_id'))
        batch_op.drop_index(batch_op.f('ix_payment_plan_customer_id'))
    op.drop_table('payment_plan')
    with op.batch_alter_table('approval_card', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_approval_card_request_id'))
    op.drop_table('approval_card')
    with op.batch_alter_table('approval_task', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_approval_task_request_id'))
        batch_op.drop_index(batch_op.f('ix_approval_task_approver_id'))

    op.drop_table('approval_task')
    with op.batch_alter_table('approval_request', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_approval_request_status'))
        batch_op.drop_index(batch_op.f('ix_approval_request_requester_id'))

    op.drop_table('approval_request')
    with op.batch_alter_table('approval_rule', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_approval_rule_request_type'))

    op.drop_table('approval_rule')
