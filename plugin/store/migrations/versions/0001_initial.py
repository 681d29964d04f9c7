"""The schema as it stood when migrations began: athletes, inbox, activity records, app state, rate limits.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "athletes",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("access_token_enc", sa.Text(), nullable=False),
        sa.Column("refresh_token_enc", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("scopes", sa.String(200), nullable=False),
        sa.Column("needs_reconnect", sa.Boolean(), nullable=False),
        sa.Column("host_weight_kg", sa.Float(), nullable=True),
        sa.Column("host_units", sa.String(16), nullable=True),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("refresh_lease_until", sa.Float(), nullable=True),
        sa.Column("connected_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "inbox_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("dedupe_key", sa.String(64), nullable=False, unique=True),
        sa.Column("subscription_id", sa.BigInteger(), nullable=False),
        sa.Column("owner_id", sa.BigInteger(), nullable=False),
        sa.Column("object_type", sa.String(16), nullable=False),
        sa.Column("object_id", sa.BigInteger(), nullable=False),
        sa.Column("aspect_type", sa.String(16), nullable=False),
        sa.Column("updates", sa.JSON(), nullable=False),
        sa.Column("event_time", sa.BigInteger(), nullable=False),
        sa.Column("object_key", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("not_before", sa.DateTime(), nullable=True),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.Column("outcome", sa.String(300), nullable=True),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
    )
    for column in ("owner_id", "object_key", "status", "received_at"):
        op.create_index(f"ix_inbox_events_{column}", "inbox_events", [column])
    op.create_table(
        "activity_records",
        sa.Column("activity_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("athlete_id", sa.BigInteger(), nullable=False),
        sa.Column("efforts", sa.Integer(), nullable=False),
        sa.Column("backward_m", sa.Float(), nullable=False),
        sa.Column("backward_s", sa.Float(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("written", sa.Boolean(), nullable=False),
        sa.Column("processed_at", sa.DateTime(), nullable=False),
    )
    for column in ("athlete_id", "processed_at"):
        op.create_index(f"ix_activity_records_{column}", "activity_records", [column])
    op.create_table(
        "app_state",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
    )
    op.create_table(
        "rate_limit_state",
        sa.Column("host", sa.String(32), primary_key=True),
        sa.Column("blocked_until", sa.DateTime(), nullable=True),
        sa.Column("short_limit", sa.Integer(), nullable=True),
        sa.Column("short_usage", sa.Integer(), nullable=True),
        sa.Column("daily_limit", sa.Integer(), nullable=True),
        sa.Column("daily_usage", sa.Integer(), nullable=True),
        sa.Column("observed_at", sa.DateTime(), nullable=True),
    )


def downgrade() -> None:
    for table in ("rate_limit_state", "app_state", "activity_records", "inbox_events", "athletes"):
        op.drop_table(table)
