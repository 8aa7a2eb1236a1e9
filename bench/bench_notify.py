"""Notification benchmarks (PostgreSQL and SQLite).

1. Engine overhead of the outbox: N copies moved QUEUED → SKIPPED in one transaction, with the
   notification hook and with it patched out (same for N fills through `record_fill`): the
   difference is what the outbox costs the trading path.
2. Sender: M notifications to M Telegram chats and M to M Discord webhooks, delivered by the
   sender to the chat fakes running in `simulator.py --chat-fakes` (another process, so the CPU
   measured is the sender's). Telegram is paced by its ~30 messages/s global bucket; Discord
   webhooks have a bucket each.
Run: `.venv/bin/python bench/bench_notify.py [--copies N] [--messages M]`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from unittest import mock

from common import ROOT, fresh_pg
from cryptography.fernet import Fernet
from sqlalchemy import func, select

import copying.ledger
import copying.states
from copying.ledger import FillRecord, record_fill
from copying.outbox import enqueue
from copying.states import Event, transition
from crypto import KeyRing
from infra.config import Settings
from infra.db import make_engine, make_sessionmaker, session_scope
from infra.migrate import upgrade_to_head
from models import CopyOrder, CopyStatus, DeliveryStatus, NotificationDelivery, NotificationKind
from notify import destinations as nd
from notify.channels import DiscordApi, Limits, TelegramApi
from notify.sender import SenderContext, route, send_due
from tests.support import factories

_next = [100_000]


def _copies(factory: object, n: int, status: CopyStatus) -> list[int]:
    with session_scope(factory) as s:  # type: ignore[arg-type]
        t = factories.trader(s, _next[0])
        ids = []
        for _i in range(n):
            _next[0] += 1
            f = factories.follower(s, _next[0])
            fo = factories.follow(s, f, t)
            fill = factories.trader_fill(s, t, key=f"k{_next[0]}")
            ids.append(factories.copy_order(s, fill, fo, status=status, intended_size=Decimal(10)).id)
    return ids


def _timed(fn: Callable[[], None]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _measure(factory: object, n: int, hooked: bool) -> dict[str, float]:
    skip_ids = _copies(factory, n, CopyStatus.QUEUED)
    live_ids = _copies(factory, n, CopyStatus.LIVE)

    def skip_all() -> None:
        with session_scope(factory) as s:  # type: ignore[arg-type]
            for co in s.scalars(select(CopyOrder).where(CopyOrder.id.in_(skip_ids))):
                co.reason_detail = "bench"
                transition(s, co, Event.SKIP, reason="bench")

    def fill_all() -> None:
        with session_scope(factory) as s:  # type: ignore[arg-type]
            for i, co in enumerate(s.scalars(select(CopyOrder).where(CopyOrder.id.in_(live_ids)))):
                record_fill(s, co, FillRecord(f"t{co.id}.{i}", f"0x{co.id:064x}", Decimal(10),
                                              Decimal("0.5"), Decimal(0), "MATCHED", factories.T0))

    patches = [] if hooked else [
        mock.patch.object(copying.states, "copy_status_changed", lambda *a, **k: None),
        mock.patch.object(copying.ledger, "copy_filled", lambda *a, **k: None)]
    for p in patches:
        p.start()
    try:
        return {"skip": _timed(skip_all) / n * 1000, "fill": _timed(fill_all) / n * 1000}
    finally:
        for p in patches:
            p.stop()


def engine_overhead(url: str, n: int, rounds: int = 3) -> dict[str, float]:
    """Milliseconds per event with and without the outbox hook (best of `rounds`, after a warm-up)."""
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    _measure(factory, 100, True)
    _measure(factory, 100, False)
    best: dict[str, float] = {}
    for _ in range(rounds):
        for hooked in (False, True):
            tag = "with" if hooked else "without"
            for k, v in _measure(factory, n, hooked).items():
                best[f"{k}_{tag}"] = min(v, best.get(f"{k}_{tag}", v))
    engine.dispose()
    return best


@contextmanager
def chat_fakes(token: str) -> Iterator[dict[str, str]]:
    """simulator.py --chat-fakes in a subprocess; yields the URLs."""
    scenario = ROOT / "scenarios" / "demo.json"
    proc = subprocess.Popen([sys.executable, str(ROOT / "simulator.py"), "--scenario", str(scenario),  # noqa: S603
                             "--chat-fakes"], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "TELEGRAM_BOT_TOKEN": token})
    urls: dict[str, str] = {}
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.strip()
        if line == "SIMULATOR_READY":
            break
        if "=" in line:
            k, v = line.split("=", 1)
            urls[k] = v
    try:
        yield urls
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def sender_throughput(url: str, m: int) -> dict[str, float]:
    """Messages per second and sender CPU ms per message, Telegram and Discord."""
    import httpx

    token = f"{secrets.randbelow(10**9) + 10**9}:{secrets.token_urlsafe(27)}"
    fernet = Fernet.generate_key().decode()
    ring = KeyRing(fernet)
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    out: dict[str, float] = {}
    with chat_fakes(token) as urls:
        tg_root = urls["TELEGRAM_API_URL"]
        for i in range(m):
            httpx.post(f"{tg_root}/_fake/add_chat", json={"chat_id": 800_000 + i})
        settings = Settings(database_url=url, encryption_key=fernet, telegram_bot_token=token,
                            telegram_api_url=tg_root, discord_api_url=urls["DISCORD_API_URL"])
        for channel in ("telegram", "discord"):
            with session_scope(factory) as s:
                for i in range(m):
                    f = factories.follower(s, 20_000 + i + (m if channel == "discord" else 0))
                    if channel == "telegram":
                        nd.set_destination(s, ring, follower=f, chat_id=800_000 + i)
                    else:
                        hook = nd.parse_webhook_url(
                            f"https://discord.com/api/webhooks/{10**17 + i}/{secrets.token_urlsafe(40)}")
                        nd.set_destination(s, ring, follower=f, webhook=hook)
                    enqueue(s, NotificationKind.COPY_FILLED, f.id, {
                        "side": "BUY", "size": "10", "price": "0.5", "trader_price": "0.49",
                        "fee": "0", "filled_size": "10", "intended_size": "10", "title": f"m{i}"})

            expected = m * (1 if channel == "telegram" else 2)

            async def run(expected: int = expected) -> None:
                ctx = SenderContext(settings=settings, factory=factory, owner="bench",
                                    telegram=TelegramApi(tg_root, token), keyring=ring,
                                    discord=DiscordApi(settings.discord_api_url), limits=Limits())
                try:
                    while True:
                        route(ctx)
                        await send_due(ctx)
                        with session_scope(factory) as s:
                            sent = s.scalar(select(func.count()).select_from(NotificationDelivery).where(
                                NotificationDelivery.status == DeliveryStatus.SENT))
                        if sent == expected:
                            return
                        await asyncio.sleep(0.05)
                finally:
                    assert ctx.telegram is not None and ctx.discord is not None
                    await ctx.telegram.aclose()
                    await ctx.discord.aclose()

            wall0, cpu0 = time.perf_counter(), time.process_time()
            asyncio.run(run())
            wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
            out[f"{channel}_per_s"] = m / wall
            out[f"{channel}_cpu_ms"] = cpu / m * 1000
    engine.dispose()
    return out


def route_cost(url: str, n: int, followers: int = 1000) -> float:
    """Microseconds of route() per notification: n events over `followers` followers that each
    have a Telegram destination, plus two admin destinations."""
    ring = KeyRing(Fernet.generate_key().decode())
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    with session_scope(factory) as s:
        ids = []
        for i in range(followers):
            f = factories.follower(s, 50_000 + i)
            nd.set_destination(s, ring, follower=f, chat_id=900_000 + i)
            ids.append(f.id)
        nd.set_destination(s, ring, follower=None, chat_id=1)
        nd.set_destination(s, ring, follower=None, chat_id=2, events=["copy_filled"])
        for i in range(n):
            enqueue(s, NotificationKind.COPY_FILLED, ids[i % followers], {"side": "BUY"})
    ctx = SenderContext(settings=Settings(database_url=url), factory=factory, owner="bench")
    t0 = time.perf_counter()
    while route(ctx)[0]:
        pass
    elapsed = time.perf_counter() - t0
    engine.dispose()
    return elapsed / n * 1e6


def main() -> int:
    """Run both benchmarks on PostgreSQL and SQLite and print the numbers."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--copies", type=int, default=2000)
    ap.add_argument("--messages", type=int, default=300)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("postgresql", "sqlite"):
            @contextmanager
            def fresh(tag: str, name: str = name) -> Iterator[str]:
                if name == "postgresql":
                    with fresh_pg(f"pmct_bench_{tag}") as url:
                        yield url
                else:
                    url = f"sqlite:///{Path(tmp) / f'{tag}.db'}"
                    upgrade_to_head(url)
                    yield url

            with fresh("engine") as url:
                e = engine_overhead(url, args.copies)
            print(f"{name}: outbox cost per event, ms: skip {e['skip_with']:.3f} vs "
                  f"{e['skip_without']:.3f} without the hook; fill {e['fill_with']:.3f} vs "
                  f"{e['fill_without']:.3f}")
            with fresh("route") as url:
                r = route_cost(url, 5000)
            print(f"{name}: routing {r:.0f} µs per notification (1,000 follower destinations + 2 admin)")
            with fresh("sender") as url:
                t = sender_throughput(url, args.messages)
            print(f"{name}: sender: telegram {t['telegram_per_s']:.1f} msg/s "
                  f"({t['telegram_cpu_ms']:.2f} ms CPU each), discord {t['discord_per_s']:.1f} msg/s "
                  f"({t['discord_cpu_ms']:.2f} ms CPU each), {args.messages} destinations each")
    return 0


if __name__ == "__main__":
    sys.exit(main())
