"""The CLOB heartbeat as a dead-man switch (optional, `CLOB_HEARTBEAT=on`; docs/POLYMARKET.md §5.8).

Every HEARTBEAT_EVERY seconds the executor sends `POST /v1/heartbeats` for each live follower
with credentials. The first accepted send arms the venue's switch for that API key: if no send
is accepted for about 10 s, the venue cancels every open order of the key. There is no way to
disarm it, so once on it is sent for as long as the executor runs.

Trade-off (README, "Dead-man switch"): with it, a dead or hung executor leaves no order resting
for more than ~10 s; but any pause longer than that (a restart, an upgrade, a long database
stall, a network blip) also cancels every resting copy, which then ends CANCELED
(`canceled_at_venue`) and is not placed again. It costs one request per follower every 5 s.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import select

from copying.context import ExecutorContext, creds_of
from infra.db import session_scope
from models import Follower

log = logging.getLogger("pmct.executor")
HEARTBEAT_EVERY = 5.0


async def send_heartbeats(ctx: ExecutorContext) -> int:
    """One round: a heartbeat for every live follower with credentials; returns how many were accepted."""
    with session_scope(ctx.factory) as s:
        followers = list(s.scalars(select(Follower).where(Follower.encrypted_api_creds.is_not(None))
                                   .order_by(Follower.id)))
    sem = asyncio.Semaphore(max(1, ctx.post_concurrency))

    async def one(f: Follower) -> bool:
        creds = creds_of(ctx, f)
        if creds is None:
            return False
        async with sem:
            try:
                ctx.heartbeat_ids[f.id] = await ctx.client.post_heartbeat(
                    creds, f.signer_address, ctx.heartbeat_ids.get(f.id, ""))
                return True
            except Exception as exc:  # noqa: BLE001 - the next round tries again
                log.warning("follower %s: heartbeat failed: %s", f.id, exc)
                return False

    return sum(await asyncio.gather(*(one(f) for f in followers)))


async def heartbeat_loop(ctx: ExecutorContext, stop: asyncio.Event) -> None:
    """Send the heartbeats every HEARTBEAT_EVERY seconds until `stop`."""
    log.warning("CLOB heartbeat on: the venue cancels every open order of our followers ~10 s "
                "after this executor stops sending")
    while not stop.is_set():
        await send_heartbeats(ctx)
        try:
            await asyncio.wait_for(stop.wait(), timeout=HEARTBEAT_EVERY)
        except TimeoutError:
            pass
