"""Initial schema: residents, listings, messages, the callback queue, calls,
brokers, the audit trail and matches.

Revision ID: 0001
Revises: 
Create Date: 2026-11-22
"""

from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor_type', sa.String(length=32), nullable=False),
    sa.Column('actor_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('object_type', sa.String(length=32), nullable=True),
    sa.Column('object_id', sa.String(length=64), nullable=True),
    sa.Column('result', sa.String(length=32), server_default='ok', nullable=False),
    sa.Column('remote_addr', sa.String(length=64), nullable=True),
    sa.Column('detail', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_events'))
    )
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_events_at'), ['at'], unique=False)
        batch_op.create_index('ix_audit_events_object', ['object_type', 'object_id'], unique=False)

    op.create_table('brokers',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('role', sa.String(length=32), server_default='broker', nullable=False),
    sa.Column('phone', sa.String(length=20), nullable=True),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('active', sa.Boolean(), server_default=sa.true(), nullable=False),
    sa.Column('language', sa.String(length=32), server_default='nl', nullable=False),
    sa.Column('failed_logins', sa.Integer(), server_default='0', nullable=False),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_login_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.CheckConstraint("role IN ('broker', 'coordinator')", name=op.f('ck_brokers_role')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_brokers')),
    sa.UniqueConstraint('email', name=op.f('uq_brokers_email'))
    )
    op.create_table('residents',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('phone', sa.String(length=20), nullable=False),
    sa.Column('language', sa.String(length=32), server_default='nl', nullable=False),
    sa.Column('name', sa.String(length=120), nullable=True),
    sa.Column('postcode', sa.String(length=4), nullable=True),
    sa.Column('district', sa.String(length=32), nullable=True),
    sa.Column('opted_out', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('opted_out_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('opted_in_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('number_status', sa.String(length=32), server_default='ok', nullable=False),
    sa.Column('line_type', sa.String(length=32), server_default='unknown', nullable=False),
    sa.Column('prefers_voice', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('conversation', sa.JSON(), nullable=True),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('last_contact_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_residents')),
    sa.UniqueConstraint('phone', name=op.f('uq_residents_phone'))
    )
    op.create_table('listings',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('resident_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('category', sa.String(length=32), server_default='other', nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('postcode', sa.String(length=4), nullable=True),
    sa.Column('district', sa.String(length=32), nullable=True),
    sa.Column('timing', sa.String(length=32), nullable=True),
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=32), server_default='open', nullable=False),
    sa.Column('recording_sid', sa.String(length=64), nullable=True),
    sa.Column('recording_url', sa.String(length=500), nullable=True),
    sa.Column('recording_duration', sa.Integer(), nullable=True),
    sa.Column('recording_deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("kind IN ('request', 'offer')", name=op.f('ck_listings_kind')),
    sa.CheckConstraint("status IN ('open', 'matched', 'done', 'cancelled', 'expired')", name=op.f('ck_listings_status')),
    sa.ForeignKeyConstraint(['resident_id'], ['residents.id'], name=op.f('fk_listings_resident_id_residents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_listings'))
    )
    with op.batch_alter_table('listings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_listings_resident_id'), ['resident_id'], unique=False)
        batch_op.create_index('ix_listings_status_kind', ['status', 'kind'], unique=False)

    op.create_table('matches',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('request_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('offer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('status', sa.String(length=32), server_default='proposed', nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('proposed_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('respond_by', sa.DateTime(timezone=True), nullable=True),
    sa.Column('meeting_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('accepted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('declined_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('expired_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('confirmed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cancelled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.CheckConstraint("status IN ('proposed', 'accepted', 'declined', 'expired', 'confirmed', 'done', 'cancelled')", name=op.f('ck_matches_status')),
    sa.ForeignKeyConstraint(['offer_id'], ['listings.id'], name=op.f('fk_matches_offer_id_listings')),
    sa.ForeignKeyConstraint(['proposed_by_id'], ['brokers.id'], name=op.f('fk_matches_proposed_by_id_brokers')),
    sa.ForeignKeyConstraint(['request_id'], ['listings.id'], name=op.f('fk_matches_request_id_listings')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_matches'))
    )
    with op.batch_alter_table('matches', schema=None) as batch_op:
        batch_op.create_index('ix_matches_offer_status', ['offer_id', 'status'], unique=False)
        batch_op.create_index(batch_op.f('ix_matches_request_id'), ['request_id'], unique=False)

    op.create_table('calls',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('call_sid', sa.String(length=64), nullable=False),
    sa.Column('direction', sa.String(length=32), nullable=False),
    sa.Column('purpose', sa.String(length=32), server_default='menu', nullable=False),
    sa.Column('resident_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('raw_from', sa.String(length=64), nullable=True),
    sa.Column('language', sa.String(length=32), server_default='nl', nullable=False),
    sa.Column('step', sa.String(length=64), nullable=True),
    sa.Column('step_seq', sa.Integer(), server_default='0', nullable=False),
    sa.Column('tries', sa.Integer(), server_default='0', nullable=False),
    sa.Column('data', sa.JSON(), nullable=True),
    sa.Column('status', sa.String(length=32), server_default='in_progress', nullable=False),
    sa.Column('twilio_status', sa.String(length=32), nullable=True),
    sa.Column('listing_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('callback_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('match_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('broker_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('dedupe_key', sa.String(length=120), nullable=True),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('error_code', sa.Integer(), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.ForeignKeyConstraint(['broker_id'], ['brokers.id'], name=op.f('fk_calls_broker_id_brokers')),
    sa.ForeignKeyConstraint(['listing_id'], ['listings.id'], name=op.f('fk_calls_listing_id_listings')),
    sa.ForeignKeyConstraint(['match_id'], ['matches.id'], name=op.f('fk_calls_match_id_matches')),
    sa.ForeignKeyConstraint(['resident_id'], ['residents.id'], name=op.f('fk_calls_resident_id_residents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_calls')),
    sa.UniqueConstraint('call_sid', name=op.f('uq_calls_call_sid')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_calls_dedupe_key'))
    )
    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_calls_resident_id'), ['resident_id'], unique=False)

    op.create_table('messages',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('direction', sa.String(length=32), nullable=False),
    sa.Column('twilio_sid', sa.String(length=64), nullable=True),
    sa.Column('resident_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('phone', sa.String(length=20), nullable=True),
    sa.Column('raw_from', sa.String(length=64), nullable=True),
    sa.Column('body', sa.Text(), server_default='', nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('keyword', sa.String(length=32), nullable=True),
    sa.Column('opt_out_type', sa.String(length=16), nullable=True),
    sa.Column('purpose', sa.String(length=32), nullable=True),
    sa.Column('dedupe_key', sa.String(length=120), nullable=True),
    sa.Column('urgent', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('send_after', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('error_code', sa.Integer(), nullable=True),
    sa.Column('error_message', sa.String(length=500), nullable=True),
    sa.Column('listing_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('match_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('handled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('status_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.CheckConstraint("direction IN ('inbound', 'outbound')", name=op.f('ck_messages_direction')),
    sa.ForeignKeyConstraint(['listing_id'], ['listings.id'], name=op.f('fk_messages_listing_id_listings')),
    sa.ForeignKeyConstraint(['match_id'], ['matches.id'], name=op.f('fk_messages_match_id_matches')),
    sa.ForeignKeyConstraint(['resident_id'], ['residents.id'], name=op.f('fk_messages_resident_id_residents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_messages')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_messages_dedupe_key')),
    sa.UniqueConstraint('twilio_sid', name=op.f('uq_messages_twilio_sid'))
    )
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.create_index('ix_messages_pending', ['direction', 'status'], unique=False)
        batch_op.create_index('ix_messages_phone_created', ['phone', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_messages_resident_id'), ['resident_id'], unique=False)

    op.create_table('callbacks',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=32), server_default='open', nullable=False),
    sa.Column('resident_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('listing_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('message_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('call_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('match_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('priority', sa.Integer(), server_default='10', nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('claimed_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('lease_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('outcome', sa.String(length=32), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('dedupe_key', sa.String(length=120), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('open', 'claimed', 'done', 'cancelled')", name=op.f('ck_callbacks_status')),
    sa.ForeignKeyConstraint(['call_id'], ['calls.id'], name=op.f('fk_callbacks_call_id_calls')),
    sa.ForeignKeyConstraint(['claimed_by_id'], ['brokers.id'], name=op.f('fk_callbacks_claimed_by_id_brokers')),
    sa.ForeignKeyConstraint(['listing_id'], ['listings.id'], name=op.f('fk_callbacks_listing_id_listings')),
    sa.ForeignKeyConstraint(['match_id'], ['matches.id'], name=op.f('fk_callbacks_match_id_matches')),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name=op.f('fk_callbacks_message_id_messages')),
    sa.ForeignKeyConstraint(['resident_id'], ['residents.id'], name=op.f('fk_callbacks_resident_id_residents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_callbacks')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_callbacks_dedupe_key'))
    )
    with op.batch_alter_table('callbacks', schema=None) as batch_op:
        batch_op.create_index('ix_callbacks_queue', ['status', 'priority', 'due_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_callbacks_resident_id'), ['resident_id'], unique=False)


    # calls <-> callbacks refer to each other: this key comes once both exist.
    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.create_foreign_key(
            batch_op.f('fk_calls_callback_id_callbacks'), 'callbacks', ['callback_id'], ['id']
        )


def downgrade() -> None:
    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_calls_callback_id_callbacks'), type_='foreignkey')
    with op.batch_alter_table('callbacks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_callbacks_resident_id'))
        batch_op.drop_index('ix_callbacks_queue')

    op.drop_table('callbacks')
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_messages_resident_id'))
        batch_op.drop_index('ix_messages_phone_created')
        batch_op.drop_index('ix_messages_pending')

    op.drop_table('messages')
    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_calls_resident_id'))

    op.drop_table('calls')
    with op.batch_alter_table('matches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_matches_request_id'))
        batch_op.drop_index('ix_matches_offer_status')

    op.drop_table('matches')
    with op.batch_alter_table('listings', schema=None) as batch_op:
        batch_op.drop_index('ix_listings_status_kind')
        batch_op.drop_index(batch_op.f('ix_listings_resident_id'))

    op.drop_table('listings')
    op.drop_table('residents')
    op.drop_table('brokers')
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_events_object')
        batch_op.drop_index(batch_op.f('ix_audit_events_at'))

    op.drop_table('audit_events')
