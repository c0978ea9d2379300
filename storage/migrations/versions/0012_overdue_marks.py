"""overdue marks: the "told about this period" records move out of the outbox into their own table

The first overdue scan over a big company writes one record per overdue customer; as outbox rows
they paid for the outbox's five indexes and wide columns though they are never sent. Existing
records are carried over (their card from the JSON `result`; who was told is not in them: NULL).

Revision ID: 0012_overdue_marks
Revises: 0011_console
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0012_overdue_marks'
down_revision = '0011_console'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('overdue_mark',
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=96), nullable=False),
    sa.Column('level', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('person', sa.Integer(), nullable=True),
    sa.Column('card', sqlmodel.sql.sqltypes.AutoString(length=96), nullable=False),
    sa.Column('marked_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        # The keys are ASCII: byte order compares them several times faster than the database's
        # collation, and the first scan's ~400,000 inserts are mostly key comparisons.
        op.execute('ALTER TABLE overdue_mark ALTER COLUMN key TYPE varchar(96) COLLATE "C"')
    card = "(result::json)->>'card'" if postgres else "json_extract(result, '$.card')"
    op.execute(
        "INSERT INTO overdue_mark (key, level, person, card, marked_at)"
        " SELECT key, CASE WHEN key LIKE 'overdue:owner:%' THEN 'owner' ELSE 'manager' END, NULL,"
        f" COALESCE({card}, ''), created_at FROM outbox WHERE kind = 'alerted'")
    op.execute("DELETE FROM outbox WHERE kind = 'alerted'")


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    tagged = "json_build_object('card', card)::text" if postgres else "json_object('card', card)"
    result = f"CASE WHEN card = '' THEN '{{}}' ELSE {tagged} END"
    op.execute(
        "INSERT INTO outbox (key, kind, platform, recipient, conversation, payload, status, due_at, attempts,"
        " lease_token, last_error, result, card_ref, created_at, sent_at)"
        f" SELECT key, 'alerted', '', '', '', '{{}}', 'sent', marked_at, 0, '', '', {result}, '', marked_at, marked_at"
        " FROM overdue_mark")
    op.drop_table('overdue_mark')
