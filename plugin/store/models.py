"""What Backstride stores: athletes, an inbox of received events, a small record per processed activity.

Activity data and anything derived from it expires after 7 days (see store.queries.expire_old_records).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Float, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Athlete(Base):
    __tablename__ = "athletes"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)  # host athlete id
    access_token_enc: Mapped[str] = mapped_column(Text)
    refresh_token_enc: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[int] = mapped_column(BigInteger)  # epoch seconds
    scopes: Mapped[str] = mapped_column(String(200))  # comma separated, as granted
    needs_reconnect: Mapped[bool] = mapped_column(Boolean, default=False)
    # From the host profile (profile:read_all); the athlete's own settings override them.
    host_weight_kg: Mapped[float | None] = mapped_column(Float, nullable=True)
    host_units: Mapped[str | None] = mapped_column(String(16), nullable=True)
    settings: Mapped[dict] = mapped_column(JSON, default=dict)
    # Fleet-wide guard so one process at a time refreshes this athlete's rotating refresh token.
    refresh_lease_until: Mapped[float | None] = mapped_column(Float, nullable=True)
    # Carried in the signed session cookie; signing out bumps it, so a copy of the old cookie is worthless.
    session_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    connected_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)

    @property
    def scope_set(self) -> frozenset[str]:
        return frozenset(s for s in self.scopes.split(",") if s)


class InboxEvent(Base):
    """A webhook event as received; the durable source of truth for work still to do."""

    __tablename__ = "inbox_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dedupe_key: Mapped[str] = mapped_column(String(64), unique=True)
    subscription_id: Mapped[int] = mapped_column(BigInteger)
    owner_id: Mapped[int] = mapped_column(BigInteger, index=True)
    object_type: Mapped[str] = mapped_column(String(16))
    object_id: Mapped[int] = mapped_column(BigInteger)
    aspect_type: Mapped[str] = mapped_column(String(16))
    updates: Mapped[dict] = mapped_column(JSON, default=dict)
    event_time: Mapped[int] = mapped_column(BigInteger)
    # Serialises events of one object: "activity:123" or "athlete:45".
    object_key: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(300), nullable=True)
    received_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # Host calls spent on the attempt that settled it (None: not settled, or settled before counting began).
    host_calls: Mapped[int | None] = mapped_column(Integer, nullable=True)


class ActivityRecord(Base):
    """What Backstride wrote to one activity, kept 7 days."""

    __tablename__ = "activity_records"

    activity_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    athlete_id: Mapped[int] = mapped_column(BigInteger, index=True)
    efforts: Mapped[int] = mapped_column(Integer, default=0)
    backward_m: Mapped[float] = mapped_column(Float, default=0.0)
    backward_s: Mapped[float] = mapped_column(Float, default=0.0)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    written: Mapped[bool] = mapped_column(Boolean, default=False)
    processed_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    # Why a tagged activity got no note, for the athlete's recent list (None: nothing to explain).
    remark: Mapped[str | None] = mapped_column(Text, nullable=True)


class AppState(Base):
    """Small key/value facts about the installation (the host's push subscription id)."""

    __tablename__ = "app_state"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class RateLimitState(Base):
    """The host's last reported rate-limit usage, shared by every process of the fleet."""

    __tablename__ = "rate_limit_state"

    host: Mapped[str] = mapped_column(String(32), primary_key=True)
    blocked_until: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    short_limit: Mapped[int | None] = mapped_column(Integer, nullable=True)
    short_usage: Mapped[int | None] = mapped_column(Integer, nullable=True)
    daily_limit: Mapped[int | None] = mapped_column(Integer, nullable=True)
    daily_usage: Mapped[int | None] = mapped_column(Integer, nullable=True)
    observed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
