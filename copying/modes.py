"""Paper and live never mix: a copy's mode is decided once, and each executor touches only its own.

Where the mode lives:
- `Follow.mode`: None (copied in the mode of the executor that claims its copies, i.e. the
  deployment's `EXECUTION_MODE`) or pinned to 'paper' / 'live' (a paper "shadow" follow next to
  live ones);
- `CopyOrder.paper`: None while a copy is QUEUED and its follow is not pinned. The executor that
  claims it stamps it with its own mode in the claim transaction (`copying.claims`), and from
  then on it never changes. The watcher does not decide it: it does not know (and must not
  need to know) which mode the executors run in, and a QUEUED copy has never been near any
  venue, so its mode can be decided at the claim with no risk.

Invariants:
- an executor claims only QUEUED copies whose follow is unpinned or pinned to its mode, and every
  later step (reconcile, refresh, cancel, reprice) selects copies by `paper == its mode`;
- a live executor closes the paper copies of unpinned follows that are still open (PAPER_CLOSED,
  reason `mode_changed`): they were never at any venue and are never posted;
- a live executor keeps the copies of follows pinned to paper (shadow twins) working: a paper lane
  beside its live one (`ExecutorContext.shadow`, a paper venue) claims only those, fills them
  against the real book and never posts them;
- a paper executor does not start while live copies of unpinned follows may still be at the
  venue (`open_live_copies`): it cannot cancel them, and leaving them there while it runs would
  let the database and the venue disagree. `admin cancel-open --live` cancels them first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from copying.states import OPEN_AT_VENUE, UNRESOLVED, Event, transition
from models import CopyOrder, CopyStatus, Follow, Follower

MODE_CHANGED = "mode_changed"
MAY_BE_AT_VENUE = tuple(sorted(UNRESOLVED | OPEN_AT_VENUE, key=lambda s: s.value))


def mode_name(paper: bool) -> str:
    """'paper' or 'live'."""
    return "paper" if paper else "live"


def for_mode(paper: bool) -> Any:
    """SQL condition on Follow: not pinned to the other mode (its copies are this mode's to claim
    and to manage)."""
    return or_(Follow.mode.is_(None), Follow.mode == mode_name(paper))


def claimable_by(paper: bool, *, pinned_only: bool = False) -> Any:
    """SQL condition on a `copy_orders` row: its follow is not pinned to the other mode (with
    `pinned_only`: pinned to this one). Written on the copy, against the few pinned follows, so
    that the claim query is driven by the queue's index and never by a join with `follows`."""
    if pinned_only:
        return CopyOrder.follow_id.in_(select(Follow.id).where(Follow.mode == mode_name(paper)))
    return CopyOrder.follow_id.not_in(select(Follow.id).where(Follow.mode == mode_name(not paper)))


@dataclass(frozen=True)
class OpenCopyLine:
    """One copy that may still be at the venue, for an operator to read."""

    id: int
    wallet: str
    status: str
    side: str
    token_id: str
    price: Decimal | None
    order_hash: str | None
    signed_at: datetime | None

    def line(self) -> str:
        """`#id wallet STATUS SIDE price token order`."""
        return (f"copy #{self.id} {self.wallet} {self.status} {self.side} @ {self.price} "
                f"token {self.token_id[:12]}… order {(self.order_hash or '-')[:18]}…")


def open_copies_of_mode(s: Session, paper: bool, *, wallet_follower_id: int | None = None,
                        statuses: tuple[CopyStatus, ...] = MAY_BE_AT_VENUE) -> list[OpenCopyLine]:
    """Copies of one mode that may still be at the venue (unpinned or pinned to that mode)."""
    q = (select(CopyOrder.id, Follower.funder_address, CopyOrder.status, CopyOrder.side,
                CopyOrder.token_id, CopyOrder.intended_price, CopyOrder.order_hash,
                CopyOrder.signed_at)
         .join(Follower, Follower.id == CopyOrder.follower_id)
         .join(Follow, Follow.id == CopyOrder.follow_id)
         .where(CopyOrder.status.in_(statuses), CopyOrder.paper == paper, for_mode(paper))
         .order_by(CopyOrder.id))
    if wallet_follower_id is not None:
        q = q.where(CopyOrder.follower_id == wallet_follower_id)
    return [OpenCopyLine(cid, wallet, st.value, side, token, price, h, signed)
            for cid, wallet, st, side, token, price, h, signed in s.execute(q)]


def open_live_copies(s: Session) -> list[OpenCopyLine]:
    """Live copies of follows not pinned to paper that may still be at the venue (a paper
    executor refuses to start while there are any)."""
    return open_copies_of_mode(s, False)


def refusal_message(lines: list[OpenCopyLine], shown: int = 20) -> str:
    """Why a paper executor will not start, the copies concerned, and the command that helps."""
    head = (f"error: EXECUTION_MODE=paper but {len(lines)} live copy order(s) may still be at the "
            "venue; a paper executor cannot manage or cancel them. Cancel them first with "
            "`./admin cancel-open --live` (or run the executor with EXECUTION_MODE=live):")
    body = [f"  {c.line()}" for c in lines[:shown]]
    if len(lines) > shown:
        body.append(f"  … and {len(lines) - shown} more (`./admin status` lists them all)")
    return "\n".join([head, *body])


def has_pinned_paper(s: Session) -> bool:
    """True when some follow not removed is pinned to paper (a shadow twin): a live executor then
    runs its paper lane beside the live one."""
    from models import FollowStatus

    return s.scalar(select(Follow.id).where(Follow.mode == "paper", Follow.status != FollowStatus.REMOVED)
                    .limit(1)) is not None


def close_paper_copies(s: Session, *, follower_id: int | None = None, pinned_too: bool = False,
                       reason: str = MODE_CHANGED) -> int:
    """In `s`: close open paper copies (never posted anywhere); returns how many.

    A live executor closes those of unpinned follows (reason `mode_changed`): a follow pinned to
    paper keeps its paper copies for the paper executor beside it. `admin cancel-open --paper`
    closes them all (`pinned_too`).
    """
    pinned = or_(Follow.mode.is_(None), Follow.mode == "paper") if pinned_too else Follow.mode.is_(None)
    q = (select(CopyOrder).join(Follow, Follow.id == CopyOrder.follow_id)
         .where(CopyOrder.status.in_(MAY_BE_AT_VENUE), CopyOrder.paper.is_(True), pinned)
         .order_by(CopyOrder.id).with_for_update(of=CopyOrder))
    if follower_id is not None:
        q = q.where(CopyOrder.follower_id == follower_id)
    n = 0
    for co in s.scalars(q):
        co.lease_owner = co.lease_expires_at = None
        transition(s, co, Event.PAPER_CLOSED, reason=reason)
        n += 1
    return n
