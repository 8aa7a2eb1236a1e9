"""Which copies must stop now: the kill switch, a disabled follower or follow, a removed follow,
the trader's exit, a closed market. Asked at every wake of the open-order loop, in a handful of
queries whatever the number of open copies.

Reasons (the copy's `reason` when it ends CANCELED): `kill_switch`, `disabled` (follower or
follow kill switch), `follow_removed`, `trader_exited`, `market_closed`.

A trader's exit is seen two ways: a SELL fill of the same token by the trader after the fill a
BUY copy copies (the watcher stores it within one poll, and its NOTIFY wakes the executor), and
the position snapshots' SIZE_DECREASE / POSITION_CLOSED events (merges, redeems, anything the
fills do not show). Only BUY copies stop for an exit: a SELL copy follows the exit.

Exits (SELL copies) are not stopped by a pause, a disable, a removal or the trader's exit: a
follower is never left holding what the leader sold. An exit resting at the venue stops for the
global kill switch and a closed market only; a queued exit is never stopped here (under the kill
switch it waits in the queue and is mirrored once the switch is lifted). Remainder and close
copies have no trader fill: only the rules that do not need one apply to them.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, case, false, func, or_, select
from sqlalchemy.orm import Session, aliased

from copying.killswitch import KillSwitchState
from copying.modes import for_mode
from models import (
    CopyOrder,
    CopyStatus,
    Follow,
    Follower,
    FollowerStatus,
    FollowStatus,
    Market,
    PositionEventKind,
    SystemFlag,
    TraderFill,
    TraderPositionEvent,
)

STOPPABLE = (CopyStatus.QUEUED, CopyStatus.LIVE, CopyStatus.PARTIAL, CopyStatus.CANCELING)
OriginalFill = aliased(TraderFill, name="copied_fill")  # the fill a copy copies


@functools.cache
def _stops_query(paper: bool, incremental: bool) -> Select[Any]:
    """The sweep's one query for a mode, built once (its values are bound per call): with
    `incremental`, only the copies queued since `:queued_since`."""
    sold = (select(TraderFill.id).where(  # index-only on ix_trader_fills_sells
        TraderFill.trader_id == Follow.trader_id, TraderFill.token_id == CopyOrder.token_id,
        TraderFill.occurred_at > OriginalFill.occurred_at, TraderFill.side == "SELL",
        TraderFill.activity_type == "TRADE").exists())
    shrank = (select(TraderPositionEvent.id).where(  # index-only on ix_trader_position_events_shrinks
        TraderPositionEvent.trader_id == Follow.trader_id, TraderPositionEvent.token_id == CopyOrder.token_id,
        TraderPositionEvent.detected_at > CopyOrder.queued_at,
        TraderPositionEvent.kind.in_([PositionEventKind.POSITION_CLOSED, PositionEventKind.SIZE_DECREASE]))
        .exists())
    exited = case((CopyOrder.side == "BUY", or_(sold, shrank)), else_=false())
    since = bindparam("queued_since", type_=CopyOrder.__table__.c.queued_at.type)
    return (select(CopyOrder.id, CopyOrder.side, CopyOrder.status, CopyOrder.follow_id, Follower.status,
                   Follow.status, exited, Market.closed, Market.accepting_orders)
            .join(Follow, Follow.id == CopyOrder.follow_id)
            .join(Follower, Follower.id == CopyOrder.follower_id)
            .outerjoin(OriginalFill, OriginalFill.id == CopyOrder.trader_fill_id)
            .outerjoin(Market, Market.condition_id == CopyOrder.condition_id)
            .where(CopyOrder.status.in_(STOPPABLE), for_mode(paper),
                   or_(CopyOrder.status == CopyStatus.QUEUED, CopyOrder.paper == paper),
                   *((CopyOrder.queued_at >= since,) if incremental else ())))


def find_stops(s: Session, paper: bool, queued_since: datetime | None = None) -> dict[int, str]:
    """Copy id → why it must stop now, for this mode's open copies (QUEUED ones it may claim);
    with `queued_since`, only among the copies queued since then (see `stop_fingerprint`).

    One query (plain columns, no ORM objects: it runs at every wake); a trader's exit is two
    index-only EXISTS probes per open BUY copy on partial indexes, whatever the history.
    """
    switches = KillSwitchState.load(s)
    query = _stops_query(paper, queued_since is not None)
    rows = s.execute(query, {} if queued_since is None else {"queued_since": queued_since}).all()
    out: dict[int, str] = {}
    for cid, side, status, follow_id, follower_status, follow_status, trader_exited, closed, accepting in rows:
        market_closed = bool(closed) or accepting is False
        if side == "SELL":  # an exit: only what makes trading impossible stops it
            if status == CopyStatus.QUEUED:
                continue
            if switches.global_on:
                out[cid] = "kill_switch"
            elif market_closed:
                out[cid] = "market_closed"
            continue
        if switches.global_on:
            out[cid] = "kill_switch"
        elif follower_status == FollowerStatus.DISABLED or follow_id in switches.follow_reasons:
            out[cid] = "disabled"
        elif follow_status == FollowStatus.REMOVED:
            out[cid] = "follow_removed"
        elif trader_exited:
            out[cid] = "trader_exited"
        elif market_closed:
            out[cid] = "market_closed"
    return out


def stop_fingerprint(s: Session, last_fill_id: int) -> tuple[tuple[object, ...], int]:
    """What the stop rules depend on besides the copies themselves, in one round trip of small
    reads: the kill-switch flags, disabled followers, follows not active, markets closed, trader
    position events, and whether a trader SELL was stored after fill `last_fill_id`; with the
    newest fill id. While the fingerprint does not change, only new copies need a look."""
    def scalar(q: Any) -> Any:
        return q.scalar_subquery()

    row = s.execute(select(
        scalar(select(func.count()).select_from(SystemFlag).where(SystemFlag.name.like("kill_switch%"))),
        scalar(select(func.max(SystemFlag.updated_at)).where(SystemFlag.name.like("kill_switch%"))),
        scalar(select(func.count()).select_from(Follower).where(Follower.status == FollowerStatus.DISABLED)),
        scalar(select(func.coalesce(func.sum(Follower.id), 0)).where(Follower.status == FollowerStatus.DISABLED)),
        scalar(select(func.count()).select_from(Follow).where(Follow.status != FollowStatus.ACTIVE)),
        scalar(select(func.coalesce(func.sum(Follow.id), 0)).where(Follow.status != FollowStatus.ACTIVE)),
        scalar(select(func.count()).select_from(Market).where(
            or_(Market.closed.is_(True), Market.accepting_orders.is_(False)))),
        scalar(select(func.max(TraderPositionEvent.id))),
        scalar(select(func.coalesce(func.max(TraderFill.id), 0))),
        scalar(select(func.count()).select_from(TraderFill).where(
            TraderFill.id > last_fill_id, TraderFill.side == "SELL")),
    )).one()
    *state, newest, sold = row
    return (*state, bool(sold)), int(newest)
