"""PMCT data model (SQLAlchemy 2.0, typed). Alembic migrations in migrations/ create it.

Promises enforced by the database itself:
- a trader fill is stored once: unique (trader_id, fill_key), where fill_key covers tx hash,
  token, side, size, price, type and an occurrence count for byte-identical rows, and unique
  (trader_id, match_key), the key the chain's log and the Data API's row of one fill share
  (tx hash, token, side, size to 6 decimals, occurrence);
- one copy order per (trader fill, follow);
- a venue order hash appears once (copy_orders.order_hash unique);
- copy order statuses come from one Enum (`CopyStatus`), written only by copying.states.transition().
Secrets are stored only as Fernet tokens (encrypted_private_key, encrypted_api_creds).
"""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from infra.db import DecimalType, UTCDateTime, utcnow

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base with a stable constraint naming convention."""

    metadata = MetaData(naming_convention=NAMING)


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    # Stored as plain strings (VARCHAR + CHECK) so adding a value needs no ALTER TYPE.
    return Enum(cls, name=name, native_enum=False, create_constraint=True, length=24,
                values_callable=lambda e: [m.value for m in e], validate_strings=True)


class Tier(str, enum.Enum):
    """Subscription tiers from the copy-trading plan."""

    FREE = "free"
    PRO = "pro"
    ELITE = "elite"
    WHALE = "whale"


class FollowerStatus(str, enum.Enum):
    """Whether a follower's copies run."""

    ACTIVE = "active"
    PAUSED = "paused"
    DISABLED = "disabled"


class FollowStatus(str, enum.Enum):
    """Whether a follow relationship queues copies."""

    ACTIVE = "active"
    PAUSED = "paused"
    REMOVED = "removed"


class CopyStatus(str, enum.Enum):
    """A copy order's life (see copying.states for the allowed moves)."""

    QUEUED = "QUEUED"
    CLAIMED = "CLAIMED"
    SIGNED = "SIGNED"
    LIVE = "LIVE"
    PARTIAL = "PARTIAL"
    CANCELING = "CANCELING"
    FILLED = "FILLED"
    REJECTED = "REJECTED"
    IN_DOUBT = "IN_DOUBT"
    NOT_PLACED = "NOT_PLACED"
    CANCELED = "CANCELED"
    EXPIRED = "EXPIRED"
    SKIPPED = "SKIPPED"


class UserRole(str, enum.Enum):
    """Dashboard / API roles: an admin sees every wallet, a follower only its own."""

    ADMIN = "admin"
    FOLLOWER = "follower"


class PositionEventKind(str, enum.Enum):
    """Trader position changes detected between two snapshots."""

    NEW_POSITION = "NEW_POSITION"
    SIZE_INCREASE = "SIZE_INCREASE"
    SIZE_DECREASE = "SIZE_DECREASE"
    POSITION_CLOSED = "POSITION_CLOSED"


class NotificationKind(str, enum.Enum):
    """What an outbox notification is about (notify/: events, digests, command replies)."""

    COPY_FILLED = "copy_filled"
    COPY_SKIPPED = "copy_skipped"
    COPY_REJECTED = "copy_rejected"
    COPY_IN_DOUBT = "copy_in_doubt"
    KILL_SWITCH_ON = "kill_switch_on"
    KILL_SWITCH_OFF = "kill_switch_off"
    DAEMON_STALE = "daemon_stale"
    DAEMON_RECOVERED = "daemon_recovered"
    RESOLUTION_PAYOUT = "resolution_payout"
    DAILY_DIGEST = "daily_digest"
    COMMAND_REPLY = "command_reply"
    FOLLOW_AUTO_PAUSED = "follow_auto_paused"  # a follow's copied edge stayed negative (copying.auto_pause)


class NotifyChannel(str, enum.Enum):
    """Where a notification destination delivers."""

    TELEGRAM = "telegram"
    DISCORD = "discord"


class DeliveryStatus(str, enum.Enum):
    """One notification's delivery to one destination (see notify/sender.py for the moves)."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


SELLS_SQL = "side = 'SELL' AND activity_type = 'TRADE'"  # a trader's sales (partial index)
SHRINKS_SQL = "kind IN ('POSITION_CLOSED', 'SIZE_DECREASE')"  # a holding that shrank (partial index)
OPEN_STATUS_SQL = ("status IN ('QUEUED', 'CLAIMED', 'SIGNED', 'IN_DOUBT', 'LIVE', 'PARTIAL', "
                   "'CANCELING')")


class Follower(Base):
    """A person whose wallet copies traders; keys only as Fernet tokens."""

    __tablename__ = "followers"
    __table_args__ = (CheckConstraint("signature_type BETWEEN 0 AND 3", name="signature_type"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320))
    signer_address: Mapped[str] = mapped_column(String(42), unique=True)
    funder_address: Mapped[str] = mapped_column(String(42), unique=True)
    signature_type: Mapped[int] = mapped_column(SmallInteger)
    encrypted_private_key: Mapped[str] = mapped_column(Text)
    encrypted_api_creds: Mapped[str | None] = mapped_column(Text)
    api_key_id: Mapped[str | None] = mapped_column(String(64))
    tier: Mapped[Tier] = mapped_column(_enum(Tier, "tier"), default=Tier.PRO)
    status: Mapped[FollowerStatus] = mapped_column(
        _enum(FollowerStatus, "follower_status"), default=FollowerStatus.ACTIVE
    )
    paper_balance: Mapped[Decimal | None] = mapped_column(DecimalType())
    # per-follower limits across all its follows (None = no limit): USD bought per UTC day, and
    # USD at risk (cost of positions held + open BUY orders)
    daily_usd_cap: Mapped[Decimal | None] = mapped_column(DecimalType())
    max_open_exposure: Mapped[Decimal | None] = mapped_column(DecimalType())
    # event-level risk (copying.event_risk), all follows together, None = no limit: USD at risk
    # per event (a neg-risk event's outcomes are mutually exclusive), per category, per
    # resolution-date window; and the day's realized loss that stops new BUYs until UTC midnight
    event_cap: Mapped[Decimal | None] = mapped_column(DecimalType())
    category_cap: Mapped[Decimal | None] = mapped_column(DecimalType())
    window_cap: Mapped[Decimal | None] = mapped_column(DecimalType())
    daily_loss_stop: Mapped[Decimal | None] = mapped_column(DecimalType())
    # the local ledger's anchor: pUSD the CLOB reported at `venue_balance_at` (fills recorded
    # after that are subtracted or added by the executor, see copying/balances.py)
    venue_balance: Mapped[Decimal | None] = mapped_column(DecimalType())
    venue_balance_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    follows: Mapped[list[Follow]] = relationship(back_populates="follower")


class Trader(Base):
    """A followed trader, keyed by profile (proxy) wallet, lowercase; carries the poll cursor."""

    __tablename__ = "traders"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    wallet: Mapped[str] = mapped_column(String(42), unique=True)
    label: Mapped[str | None] = mapped_column(String(200))
    cursor_ts: Mapped[int | None] = mapped_column(BigInteger)  # last fill block time seen (epoch s)
    seeded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_polled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_snapshot_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    follows: Mapped[list[Follow]] = relationship(back_populates="trader")


class Follow(Base):
    """Follower F copies trader T at copy_pct %, at most max_usd_per_trade per copy."""

    __tablename__ = "follows"
    __table_args__ = (
        # one follow per (follower, trader); shadow twins (paper, `shadow_of` set) come beside it
        Index("uq_follows_follower_trader", "follower_id", "trader_id", unique=True,
              postgresql_where=text("shadow_of IS NULL"), sqlite_where=text("shadow_of IS NULL")),
        CheckConstraint("CAST(copy_pct AS NUMERIC) > 0 AND CAST(copy_pct AS NUMERIC) <= 100", name="copy_pct_range"),
        CheckConstraint("CAST(max_usd_per_trade AS NUMERIC) > 0", name="max_usd_positive"),
        CheckConstraint("mode IS NULL OR mode IN ('paper', 'live')", name="mode"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    follower_id: Mapped[int] = mapped_column(ForeignKey("followers.id"), index=True)
    trader_id: Mapped[int] = mapped_column(ForeignKey("traders.id"), index=True)
    copy_pct: Mapped[Decimal] = mapped_column(DecimalType())
    max_usd_per_trade: Mapped[Decimal] = mapped_column(DecimalType())
    max_slippage: Mapped[Decimal | None] = mapped_column(DecimalType())
    daily_usd_cap: Mapped[Decimal | None] = mapped_column(DecimalType())
    market_exposure_cap: Mapped[Decimal | None] = mapped_column(DecimalType())
    price_min: Mapped[Decimal | None] = mapped_column(DecimalType())
    price_max: Mapped[Decimal | None] = mapped_column(DecimalType())
    # a leader exit first seen later than MAX_COPY_DELAY is still mirrored (it lowers risk)
    mirror_late_exits: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    status: Mapped[FollowStatus] = mapped_column(
        _enum(FollowStatus, "follow_status"), default=FollowStatus.ACTIVE
    )
    # None: copied in the mode of the executor that claims its copies (EXECUTION_MODE); 'paper'
    # or 'live' pins it (a paper "shadow" follow next to live ones). See copying/modes.py.
    mode: Mapped[str | None] = mapped_column(String(8))
    # a shadow twin: a paper follow that sees the same fills as the live follow it shadows
    shadow_of: Mapped[int | None] = mapped_column(ForeignKey("follows.id"), index=True)
    # why the follow was paused by the engine (auto-pause on a negative copied edge), else None
    pause_reason: Mapped[str | None] = mapped_column(String(300))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    follower: Mapped[Follower] = relationship(back_populates="follows")
    trader: Mapped[Trader] = relationship(back_populates="follows")

    @property
    def active(self) -> bool:
        """True when this follow queues copies (the follower's own status is checked apart)."""
        return self.status == FollowStatus.ACTIVE


class TraderFill(Base):
    """One fill (or activity row) of a followed trader, stored once whichever source saw it first."""

    __tablename__ = "trader_fills"
    __table_args__ = (
        UniqueConstraint("trader_id", "fill_key", name="uq_trader_fills_identity"),
        UniqueConstraint("trader_id", "match_key", name="uq_trader_fills_match"),
        Index("ix_trader_fills_trader_time", "trader_id", "occurred_at"),
        Index("ix_trader_fills_trader_tx", "trader_id", "transaction_hash"),
        Index("ix_trader_fills_unchecked", "sources_checked_at", "first_seen_at"),
        Index("ix_trader_fills_trader_token_time", "trader_id", "token_id", "occurred_at"),
        # the stop sweep's "did the trader sell after the copied fill?" (copying.stops)
        Index("ix_trader_fills_sells", "trader_id", "token_id", "occurred_at",
              postgresql_where=text(SELLS_SQL), sqlite_where=text(SELLS_SQL)),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trader_id: Mapped[int] = mapped_column(ForeignKey("traders.id"))
    fill_key: Mapped[str] = mapped_column(String(64))  # sha256 of the identity tuple + occurrence
    occurrence: Mapped[int] = mapped_column(Integer, default=0)
    activity_type: Mapped[str] = mapped_column(String(24))
    transaction_hash: Mapped[str] = mapped_column(String(66))
    condition_id: Mapped[str] = mapped_column(String(66))
    token_id: Mapped[str] = mapped_column(String(80))
    side: Mapped[str | None] = mapped_column(String(4))
    size: Mapped[Decimal] = mapped_column(DecimalType())
    price: Mapped[Decimal] = mapped_column(DecimalType())
    usdc_size: Mapped[Decimal | None] = mapped_column(DecimalType())
    outcome: Mapped[str] = mapped_column(String(200), default="")
    outcome_index: Mapped[int | None] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(Text, default="")
    slug: Mapped[str] = mapped_column(String(300), default="")
    event_slug: Mapped[str] = mapped_column(String(300), default="")
    is_combo: Mapped[bool] = mapped_column(Boolean, default=False)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    raw: Mapped[dict[str, Any]] = mapped_column(JSON)
    # cross-source identity of a TRADE (None for splits/merges/...): see copying.intake
    match_key: Mapped[str | None] = mapped_column(String(64))
    # which sources saw it, and when (the first of them is first_seen_at)
    seen_by_chain_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    seen_by_data_api_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # the chain log it came from (a reorg may move it: the latest sighting)
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    block_hash: Mapped[str | None] = mapped_column(String(66))
    log_index: Mapped[int | None] = mapped_column(Integer)
    chain_removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # reorged out
    sources_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # grace audit


class CopyOrigin(str, enum.Enum):
    """Why a copy order exists: a leader's row, or the follow's own target (no leader row)."""

    FILL = "fill"  # the copy of one trader fill (TRADE, MERGE, CONVERSION or SNAPSHOT row)
    REMAINDER = "remainder"  # sells what the follow holds above its target (kept remainders)
    CLOSE = "close"  # `--close-positions`: sells the follow's whole holding at market


class CopyOrder(Base):
    """The copy of one trader fill for one follow (or a sell down to the follow's target);
    at most one live venue order at a time."""

    __tablename__ = "copy_orders"
    __table_args__ = (
        UniqueConstraint("trader_fill_id", "follow_id", name="uq_copy_orders_fill_follow"),
        # the executor's hot set: only copies not closed yet (a few thousand among many millions)
        Index("ix_copy_orders_open", "status", "id", postgresql_where=text(OPEN_STATUS_SQL),
              sqlite_where=text(OPEN_STATUS_SQL)),
        Index("ix_copy_orders_follower_queued", "follower_id", "queued_at"),  # a follower's history
        Index("ix_copy_orders_open_follower", "follower_id", postgresql_where=text(OPEN_STATUS_SQL),
              sqlite_where=text(OPEN_STATUS_SQL)),
        Index("ix_copy_orders_follower_signed", "follower_id", "signed_at"),
        Index("ix_copy_orders_follow_signed", "follow_id", "signed_at"),
        Index("ix_copy_orders_closed_at", "closed_at"),
        Index("ix_copy_orders_queued_at", "queued_at"),
        Index("ix_copy_orders_follow_token", "follow_id", "token_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    follow_id: Mapped[int] = mapped_column(ForeignKey("follows.id"))
    trader_fill_id: Mapped[int | None] = mapped_column(ForeignKey("trader_fills.id"))
    origin: Mapped[CopyOrigin] = mapped_column(_enum(CopyOrigin, "copy_origin"), default=CopyOrigin.FILL,
                                               server_default=CopyOrigin.FILL.value)
    follower_id: Mapped[int] = mapped_column(ForeignKey("followers.id"))
    side: Mapped[str] = mapped_column(String(4))
    token_id: Mapped[str] = mapped_column(String(80))
    condition_id: Mapped[str] = mapped_column(String(66))
    trader_price: Mapped[Decimal] = mapped_column(DecimalType())
    status: Mapped[CopyStatus] = mapped_column(_enum(CopyStatus, "copy_status"))
    reason: Mapped[str | None] = mapped_column(String(64))
    reason_detail: Mapped[str | None] = mapped_column(Text)
    intended_size: Mapped[Decimal | None] = mapped_column(DecimalType())
    intended_price: Mapped[Decimal | None] = mapped_column(DecimalType())
    order_type: Mapped[str | None] = mapped_column(String(4))
    signed_payload: Mapped[bytes | None] = mapped_column(LargeBinary)
    order_hash: Mapped[str | None] = mapped_column(String(66), unique=True)
    venue_size: Mapped[Decimal | None] = mapped_column(DecimalType())  # shares of the current venue order
    exchange_order_id: Mapped[str | None] = mapped_column(String(66))
    filled_size: Mapped[Decimal] = mapped_column(DecimalType(), default=Decimal(0))
    avg_fill_price: Mapped[Decimal | None] = mapped_column(DecimalType())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # crowding control (copying.crowding): why the copy was shrunk below its size, if it was
    crowd_note: Mapped[str | None] = mapped_column(String(300))
    # the copy's mode, decided once when an executor claims it (None while QUEUED and not pinned by
    # its follow) and never changed: every later step only touches copies of its own mode
    paper: Mapped[bool | None] = mapped_column(Boolean)
    lease_owner: Mapped[str | None] = mapped_column(String(120))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    posted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    acked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    follow: Mapped[Follow] = relationship()
    trader_fill: Mapped[TraderFill | None] = relationship()
    events: Mapped[list[CopyOrderEvent]] = relationship(
        back_populates="copy_order", order_by="CopyOrderEvent.id"
    )


class CopyOrderEvent(Base):
    """One state change of a copy order, written in the same transaction as the change."""

    __tablename__ = "copy_order_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    copy_order_id: Mapped[int] = mapped_column(ForeignKey("copy_orders.id"), index=True)
    event: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(24))
    to_status: Mapped[str] = mapped_column(String(24))
    reason: Mapped[str | None] = mapped_column(String(64))
    order_hash: Mapped[str | None] = mapped_column(String(66), index=True)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    copy_order: Mapped[CopyOrder] = relationship(back_populates="events")


class FollowerFill(Base):
    """A fill of one of the follower's venue (or paper) orders."""

    __tablename__ = "follower_fills"
    __table_args__ = (
        UniqueConstraint("trade_id", "order_hash", name="uq_follower_fills_trade_order"),
        Index("ix_follower_fills_follower_time", "follower_id", "filled_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    copy_order_id: Mapped[int] = mapped_column(ForeignKey("copy_orders.id"), index=True)
    follower_id: Mapped[int] = mapped_column(ForeignKey("followers.id"))
    follow_id: Mapped[int] = mapped_column(ForeignKey("follows.id"))
    trade_id: Mapped[str] = mapped_column(String(80))
    order_hash: Mapped[str] = mapped_column(String(66))
    token_id: Mapped[str] = mapped_column(String(80))
    side: Mapped[str] = mapped_column(String(4))
    size: Mapped[Decimal] = mapped_column(DecimalType())
    price: Mapped[Decimal] = mapped_column(DecimalType())
    fee: Mapped[Decimal] = mapped_column(DecimalType(), default=Decimal(0))
    trade_status: Mapped[str] = mapped_column(String(32))
    paper: Mapped[bool] = mapped_column(Boolean, default=False)
    realized_pnl: Mapped[Decimal] = mapped_column(DecimalType(), default=Decimal(0))
    filled_at: Mapped[datetime] = mapped_column(UTCDateTime())


class FollowerPosition(Base):
    """What a follower holds in one token through one follow (paper and live kept apart)."""

    __tablename__ = "follower_positions"
    __table_args__ = (
        UniqueConstraint("follow_id", "token_id", "paper", name="uq_follower_positions_key"),
        CheckConstraint("CAST(size AS NUMERIC) >= 0", name="size_not_negative"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    follower_id: Mapped[int] = mapped_column(ForeignKey("followers.id"), index=True)
    follow_id: Mapped[int] = mapped_column(ForeignKey("follows.id"))
    token_id: Mapped[str] = mapped_column(String(80))
    condition_id: Mapped[str] = mapped_column(String(66))
    paper: Mapped[bool] = mapped_column(Boolean, default=False)
    size: Mapped[Decimal] = mapped_column(DecimalType(), default=Decimal(0))
    # what the follow should hold now: BUY fills add to it, each leader exit scales it by the
    # leader's kept fraction; size − target is what is still to be sold (see copying.targets)
    target_size: Mapped[Decimal] = mapped_column(DecimalType(), default=Decimal(0),
                                                 server_default="0")
    avg_cost: Mapped[Decimal] = mapped_column(DecimalType(), default=Decimal(0))
    realized_pnl: Mapped[Decimal] = mapped_column(DecimalType(), default=Decimal(0))
    fees_paid: Mapped[Decimal] = mapped_column(DecimalType(), default=Decimal(0))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class TraderPositionSnapshot(Base):
    """A followed trader's holding in one token at one snapshot time."""

    __tablename__ = "trader_position_snapshots"
    __table_args__ = (Index("ix_trader_snapshots_trader_time", "trader_id", "taken_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trader_id: Mapped[int] = mapped_column(ForeignKey("traders.id"))
    token_id: Mapped[str] = mapped_column(String(80))
    condition_id: Mapped[str] = mapped_column(String(66))
    size: Mapped[Decimal] = mapped_column(DecimalType())
    avg_price: Mapped[Decimal | None] = mapped_column(DecimalType())
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TraderPositionEvent(Base):
    """NEW_POSITION / SIZE_INCREASE / SIZE_DECREASE / POSITION_CLOSED between two snapshots."""

    __tablename__ = "trader_position_events"
    __table_args__ = (
        Index("ix_trader_position_events_trader_token", "trader_id", "token_id", "detected_at"),
        # the stop sweep's "did the holding shrink after the copy was queued?" (copying.stops)
        Index("ix_trader_position_events_shrinks", "trader_id", "token_id", "detected_at",
              postgresql_where=text(SHRINKS_SQL), sqlite_where=text(SHRINKS_SQL)),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trader_id: Mapped[int] = mapped_column(ForeignKey("traders.id"), index=True)
    token_id: Mapped[str] = mapped_column(String(80))
    kind: Mapped[PositionEventKind] = mapped_column(_enum(PositionEventKind, "position_event_kind"))
    old_size: Mapped[Decimal] = mapped_column(DecimalType())
    new_size: Mapped[Decimal] = mapped_column(DecimalType())
    detected_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    handled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Market(Base):
    """Cached market parameters (condition id → tick, min size, neg-risk, version, ...)."""

    __tablename__ = "markets"

    condition_id: Mapped[str] = mapped_column(String(66), primary_key=True)
    question: Mapped[str] = mapped_column(Text, default="")
    version: Mapped[str] = mapped_column(String(2))
    tick_size: Mapped[Decimal] = mapped_column(DecimalType())
    min_size: Mapped[Decimal] = mapped_column(DecimalType())
    neg_risk: Mapped[bool] = mapped_column(Boolean, default=False)
    accepting_orders: Mapped[bool] = mapped_column(Boolean, default=True)
    closed: Mapped[bool] = mapped_column(Boolean, default=False)
    end_date: Mapped[datetime | None] = mapped_column(UTCDateTime())
    fee_rate: Mapped[Decimal] = mapped_column(DecimalType(), default=Decimal(0))
    fee_exponent: Mapped[Decimal] = mapped_column(DecimalType(), default=Decimal(1))
    fee_takers_only: Mapped[bool] = mapped_column(Boolean, default=True)
    # event-level risk: the event (neg-risk market id, else Gamma event id) and category
    event_key: Mapped[str | None] = mapped_column(String(80), index=True)
    category: Mapped[str | None] = mapped_column(String(120))
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # payouts known (Gamma)

    tokens: Mapped[list[MarketTokenRow]] = relationship(
        back_populates="market", order_by="MarketTokenRow.outcome_index"
    )


class CrowdPlan(Base):
    """How the copies of one leader fill share the book (copying.crowding): written once, by the
    first signing transaction that needs it, and read by every later batch of the same fill."""

    __tablename__ = "crowd_plans"
    __table_args__ = (UniqueConstraint("trader_fill_id", "paper", name="uq_crowd_plans_fill_mode"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trader_fill_id: Mapped[int] = mapped_column(ForeignKey("trader_fills.id"))
    paper: Mapped[bool] = mapped_column(Boolean)
    token_id: Mapped[str] = mapped_column(String(80))
    depth: Mapped[Decimal] = mapped_column(DecimalType())  # shares within the loosest limit
    planned: Mapped[Decimal] = mapped_column(DecimalType())  # Σ shares allotted so far
    rotation: Mapped[int] = mapped_column(Integer)
    order: Mapped[list[int]] = mapped_column(JSON)  # copy ids, first to last
    caps: Mapped[dict[str, str]] = mapped_column(JSON)  # copy id → shares allotted
    resting: Mapped[bool] = mapped_column(Boolean, default=False)  # nothing within the limit: uncapped
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class MarketTokenRow(Base):
    """One outcome of a cached market: token id (or position id) → label and index."""

    __tablename__ = "market_tokens"

    token_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    condition_id: Mapped[str] = mapped_column(ForeignKey("markets.condition_id"), index=True)
    outcome: Mapped[str] = mapped_column(String(200), default="")
    outcome_index: Mapped[int] = mapped_column(Integer)
    payout: Mapped[Decimal | None] = mapped_column(DecimalType())  # pUSD per share once resolved

    market: Mapped[Market] = relationship(back_populates="tokens")


class PositionSettlement(Base):
    """A follow's position closed by its market's resolution, at the payout (1 or 0 per share)."""

    __tablename__ = "position_settlements"
    __table_args__ = (
        UniqueConstraint("follow_id", "token_id", "paper", name="uq_position_settlements_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    follower_id: Mapped[int] = mapped_column(ForeignKey("followers.id"), index=True)
    follow_id: Mapped[int] = mapped_column(ForeignKey("follows.id"))
    token_id: Mapped[str] = mapped_column(String(80))
    condition_id: Mapped[str] = mapped_column(String(66))
    paper: Mapped[bool] = mapped_column(Boolean, default=False)
    size: Mapped[Decimal] = mapped_column(DecimalType())
    avg_cost: Mapped[Decimal] = mapped_column(DecimalType())
    payout: Mapped[Decimal] = mapped_column(DecimalType())  # per share
    realized_pnl: Mapped[Decimal] = mapped_column(DecimalType())
    settled_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RedemptionStatus(str, enum.Enum):
    """Where a redemption of a follower's winning shares stands (copying.redeem)."""

    PENDING = "PENDING"  # intent stored, nothing signed yet
    SIGNED = "SIGNED"  # the transaction (or relayer request) is stored, maybe not sent
    SENT = "SENT"  # handed to the node (or relayer); waiting for the receipt
    CONFIRMED = "CONFIRMED"  # mined with success: the pUSD is in the wallet
    FAILED = "FAILED"  # mined and reverted, or refused for good: needs a look
    MANUAL = "MANUAL"  # no way to redeem from here: "redeem by hand"


class Redemption(Base):
    """One follower's redemption of one resolved market, exactly once (intent before sending)."""

    __tablename__ = "redemptions"
    __table_args__ = (
        UniqueConstraint("follower_id", "condition_id", name="uq_redemptions_follower_condition"),
        Index("ix_redemptions_status", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    follower_id: Mapped[int] = mapped_column(ForeignKey("followers.id"))
    condition_id: Mapped[str] = mapped_column(String(66))
    method: Mapped[str] = mapped_column(String(16))  # eoa | relayer | manual
    status: Mapped[RedemptionStatus] = mapped_column(_enum(RedemptionStatus, "redemption_status"))
    shares: Mapped[Decimal] = mapped_column(DecimalType())  # winning shares held
    amount: Mapped[Decimal] = mapped_column(DecimalType())  # pUSD expected
    target: Mapped[str | None] = mapped_column(String(42))  # contract called
    nonce: Mapped[int | None] = mapped_column(BigInteger)
    tx_hash: Mapped[str | None] = mapped_column(String(66), unique=True)
    raw_tx: Mapped[bytes | None] = mapped_column(LargeBinary)  # signed bytes, re-sent as they are
    relayer_request: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    relayer_id: Mapped[str | None] = mapped_column(String(80))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class DaemonHeartbeat(Base):
    """Last sign of life of a daemon process (watcher shard, executor)."""

    __tablename__ = "daemon_heartbeats"

    name: Mapped[str] = mapped_column(String(120), primary_key=True)
    pid: Mapped[int] = mapped_column(Integer)
    host: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_cycle_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_cycle_ms: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class ShardLease(Base):
    """Which watcher process owns shard i of N, until when."""

    __tablename__ = "shard_leases"

    shard: Mapped[str] = mapped_column(String(16), primary_key=True)  # "i/N"
    owner: Mapped[str] = mapped_column(String(120))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ChainCursor(Base):
    """A watcher shard's chain source: the last block fully read, and the source's health."""

    __tablename__ = "chain_cursors"

    shard: Mapped[str] = mapped_column(String(16), primary_key=True)  # "i/N"
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(String(66))
    head_number: Mapped[int | None] = mapped_column(BigInteger)
    head_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    mode: Mapped[str] = mapped_column(String(8), default="poll")  # ws | poll
    healthy: Mapped[bool] = mapped_column(Boolean, default=True)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SystemFlag(Base):
    """Deployment-wide switches, e.g. the global kill switch."""

    __tablename__ = "system_flags"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class WebUser(Base):
    """A dashboard/API user; the password only as an argon2 hash. A follower user is bound to
    one follower (its wallet) and sees and acts on that follower only."""

    __tablename__ = "web_users"
    __table_args__ = (
        CheckConstraint("role = 'admin' OR follower_id IS NOT NULL", name="follower_has_wallet"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[UserRole] = mapped_column(_enum(UserRole, "user_role"))
    follower_id: Mapped[int | None] = mapped_column(ForeignKey("followers.id"), index=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    password_changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    follower: Mapped[Follower | None] = relationship()


class ApiToken(Base):
    """A bearer token of a web user, stored only as the SHA-256 of the token (shown once)."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("web_users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[WebUser] = relationship()


class NotifyDestination(Base):
    """A Telegram chat or Discord webhook that receives a follower's (or the admins') notifications.

    `scope` is 'admin' or 'follower:<id>'. A webhook URL is a secret: only its Fernet token is
    stored; `target_hash` (sha256 of the chat id or URL) finds duplicates without decrypting.
    """

    __tablename__ = "notify_destinations"
    __table_args__ = (
        UniqueConstraint("scope", "channel", "target_hash", name="uq_notify_destinations_target"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope: Mapped[str] = mapped_column(String(40))
    follower_id: Mapped[int | None] = mapped_column(ForeignKey("followers.id"), index=True)
    channel: Mapped[NotifyChannel] = mapped_column(_enum(NotifyChannel, "notify_channel"))
    telegram_chat_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    encrypted_webhook_url: Mapped[str | None] = mapped_column(Text)
    target_hash: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(80))
    events: Mapped[list[str] | None] = mapped_column(JSON)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Notification(Base):
    """The outbox: one event to tell people about, written in the transaction of the event itself.

    `routed_at` is NULL until the sender has created its deliveries. `dedupe_key` makes events
    the sender itself generates (daily digests, stale heartbeats) idempotent.
    """

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[NotificationKind] = mapped_column(_enum(NotificationKind, "notification_kind"))
    follower_id: Mapped[int | None] = mapped_column(ForeignKey("followers.id"), index=True)
    destination_id: Mapped[int | None] = mapped_column(ForeignKey("notify_destinations.id"))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    dedupe_key: Mapped[str | None] = mapped_column(String(160), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    routed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)


class NotificationDelivery(Base):
    """One notification to one destination: claimed with a lease, sent, marked (at most one repeat)."""

    __tablename__ = "notification_deliveries"
    __table_args__ = (
        UniqueConstraint("notification_id", "destination_id", name="uq_notification_deliveries_pair"),
        Index("ix_notification_deliveries_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    notification_id: Mapped[int] = mapped_column(ForeignKey("notifications.id"))
    destination_id: Mapped[int] = mapped_column(ForeignKey("notify_destinations.id"), index=True)
    kind: Mapped[NotificationKind] = mapped_column(_enum(NotificationKind, "notification_kind"))
    status: Mapped[DeliveryStatus] = mapped_column(
        _enum(DeliveryStatus, "delivery_status"), default=DeliveryStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    in_doubt: Mapped[bool] = mapped_column(Boolean, default=False)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(String(120))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(String(500))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


def init_db(database_url: str | None = None) -> None:
    """Create or upgrade the schema to the latest migration (idempotent)."""
    from infra.migrate import upgrade_to_head

    upgrade_to_head(database_url)
