"""files: photos kept in the file store (invoices, 签到)

Revision ID: 0010_files
Revises: 0006
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0010_files'
down_revision = '0009_directory'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('stored_file',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('mime', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('platform', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('source_media_id', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('uploaded_by', sa.Integer(), nullable=False),
    sa.Column('attached_type', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('attached_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['uploaded_by'], ['employee.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('stored_file', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_stored_file_sha256'), ['sha256'], unique=False)
        batch_op.create_index(batch_op.f('ix_stored_file_uploaded_by'), ['uploaded_by'], unique=False)
        batch_op.create_index(batch_op.f('ix_stored_file_attached_id'), ['attached_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('stored_file', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_stored_file_attached_id'))
        batch_op.drop_index(batch_op.f('ix_stored_file_uploaded_by'))
        batch_op.drop_index(batch_op.f('ix_stored_file_sha256'))
    op.drop_table('stored_file')
