"""Order within a follow and token: a copy never sizes against a holding an earlier copy of the
same follow and token is still changing.

A follow's target holding (`follower_positions.target_size`) moves with every copy of a token in
the leader's order: a BUY's fills add to it, an exit scales it by the leader's kept fraction. So:

- no copy is sized while an earlier copy of the same follow and token that an exit is involved
  with (either side) is not sized yet (QUEUED or CLAIMED): the target moves in the leader's order;
- an exit is not sized while an earlier BUY of the same follow and token may still bring shares
  (SIGNED, IN_DOUBT, LIVE, PARTIAL, CANCELING): the exit would otherwise be skipped for
  `no_holdings` (or sized short) while shares are on their way. A resting BUY (LIVE, PARTIAL) is
  cancelled for such an exit (`superseded_by_exit`, the leader is leaving the position): its
  fills are recorded by the confirmed cancel and the exit is then sized on what it got;
- an earlier SELL that is sized needs no wait: what it still offers is reserved
  (`copying.reservations.held_shares`) and the target already counts it;
- a close (`--close-positions`: everything held, at market) waits for every earlier copy of its
  follow and token, and resting ones (BUY or SELL) are cancelled for it.

`BLOCKS` is the rule as data; `blocked_clause` is the same rule as SQL (the claim query takes
only copies no earlier copy blocks), and `blocks` the same rule in Python (tests compare them).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, exists, or_
from sqlalchemy.orm import aliased

from models import CopyOrder, CopyOrigin
from models import CopyStatus as S

NOT_SIZED = (S.QUEUED, S.CLAIMED)
MAY_BRING_SHARES = (S.SIGNED, S.IN_DOUBT, S.LIVE, S.PARTIAL, S.CANCELING)
RESTING = (S.LIVE, S.PARTIAL)

# (later copy's side, earlier copy's side) → earlier statuses that make the later copy wait
BLOCKS: dict[tuple[str, str], tuple[S, ...]] = {
    ("BUY", "BUY"): (),
    ("BUY", "SELL"): NOT_SIZED,
    ("SELL", "SELL"): NOT_SIZED,
    ("SELL", "BUY"): NOT_SIZED + MAY_BRING_SHARES,
}


CLOSE_WAITS_FOR = NOT_SIZED + MAY_BRING_SHARES  # a close waits for every earlier open copy


def blocks(later_side: str, earlier_side: str, earlier_status: S, *, later_close: bool = False) -> bool:
    """True when an earlier copy (same follow and token) in `earlier_status` makes the later wait."""
    if later_close:
        return earlier_status in CLOSE_WAITS_FOR
    return earlier_status in BLOCKS[(later_side, earlier_side)]


def blocked_clause() -> Any:
    """SQL: true for a `copy_orders` row that an earlier copy of its follow and token blocks.

    One EXISTS per side of the later copy, each with the union of the statuses that may block it
    as a plain IN list: the same rule as one EXISTS over an OR of (side, side, statuses) arms,
    but PostgreSQL plans it in about 1 ms instead of 15 (the claim query is planned every time).
    """
    arms = []
    for later in sorted({side for side, _ in BLOCKS}):
        earlier = aliased(CopyOrder, name=f"earlier_{later.lower()}")
        rules = [(before, statuses) for (side, before), statuses in BLOCKS.items() if side == later and statuses]
        waits_on = sorted({st for _, statuses in rules for st in statuses} | set(CLOSE_WAITS_FOR),
                          key=lambda st: st.value)
        which = [and_(earlier.side == before, earlier.status.in_(statuses)) for before, statuses in rules]
        which.append(and_(CopyOrder.origin == CopyOrigin.CLOSE, earlier.status.in_(CLOSE_WAITS_FOR)))
        arms.append(and_(CopyOrder.side == later, exists().where(
            earlier.follow_id == CopyOrder.follow_id, earlier.token_id == CopyOrder.token_id,
            earlier.id < CopyOrder.id, earlier.status.in_(waits_on), or_(*which))))
    return or_(*arms)


def superseded_clause() -> Any:
    """SQL: true for a resting copy that a later copy of its follow and token waits for: a BUY
    before an exit not sized yet, or any resting copy before a close not sized yet."""
    later = aliased(CopyOrder, name="later")
    waiting = exists().where(later.follow_id == CopyOrder.follow_id,
                             later.token_id == CopyOrder.token_id, later.id > CopyOrder.id,
                             later.side == "SELL", later.status.in_(NOT_SIZED),
                             or_(CopyOrder.side == "BUY", later.origin == CopyOrigin.CLOSE))
    return and_(CopyOrder.status.in_(RESTING), waiting)
