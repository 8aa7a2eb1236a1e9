#!/usr/bin/env python3
"""Offline demo: PMCT copies scripted traders on the local Polymarket simulator.

`make demo` (or `.venv/bin/python demo.py`): starts the simulator (Polymarket and a Polygon
node with blocks every 2 s; the watcher reads fills from the chain), uses a fresh SQLite database
and a generated encryption key in ./demo-out, adds a follower (a public throwaway test key),
derives its CLOB credentials, follows two traders, sends its notifications to a Telegram chat and
the admins' to a Discord webhook (both local fakes served by the simulator), runs the watcher,
the executor (live against the simulator, or `--paper`) and the notifier, lets the traders trade,
asks the bot /status from the follower's chat, flips the kill switch, prints what was copied, the
follower's P&L report and every message the fakes received, then stops everything. No network
beyond 127.0.0.1, no money, no keys of your own. Secrets are never printed; logs go to
demo-out/*.log.

The dashboard (`web.py`) runs on the demo database too; the demo prints its URL and a login
(a throwaway password made at run time). `python demo.py --serve` keeps the simulator, the
daemons and the dashboard running (the traders keep trading now and then) until Ctrl-C.
"""

from __future__ import annotations

import argparse
import html
import itertools
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
OUT = ROOT / "demo-out"  # replaced by --out
PY = sys.executable
# Public Hardhat/Anvil test account #1: known to everyone, never funded on a real chain.
DEMO_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
DEMO_WALLET = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
TRADERS = {"quiet": "0x0d6cf071dbddb6780f4b6912b49d683b8f234395",
           "car": "0x7c3db723f1d4d8cb9c550095203b686cb11e5c6b"}
# (seconds after the daemons start, trader, market, outcome, side, size, price)
SCRIPT = [
    (2, "quiet", "fed", "Yes", "BUY", "120", "0.65"),
    (4, "car", "btc", "Yes", "BUY", "1500", "0.065"),
    (6, "quiet", "fed", "No", "BUY", "100", "0.35"),
    (9, "car", "lakers", "Lakers", "BUY", "400", "0.42"),
    (12, "quiet", "fed", "Yes", "SELL", "185", "0.64"),
]


DEMO_CHAT = 424242  # the follower's Telegram chat (in the local fake)
# throwaway secrets for the local fakes (the token may come from the environment, so tests can
# check that it never shows up); never printed
BOT_TOKEN = os.environ.get("TELEGRAM_BOT_TOKEN") or f"{secrets.randbelow(10**9) + 10**9}:{secrets.token_urlsafe(27)}"
WEBHOOK_URL = f"https://discord.com/api/webhooks/{secrets.randbelow(10**17) + 10**17}/{secrets.token_urlsafe(48)}"


def fake_call(base: str, method: str, **kwargs: Any) -> Any:
    """A control call on a chat fake (`POST /_fake/<method>`)."""
    import httpx

    root = base.removesuffix("/api")
    return httpx.post(f"{root}/_fake/{method}", json=kwargs, timeout=10).json()["result"]


def plain(text: str) -> str:
    """Telegram HTML / Discord Markdown as plain text for the terminal."""
    text = re.sub(r"</?[a-z]+>", "", text)
    text = re.sub(r"\\([\\*_~`|>#\[\]()-])", r"\1", text).replace("**", "")
    return html.unescape(text)


def print_messages(urls: dict[str, str]) -> int:
    """Every message the local Telegram and Discord fakes received; returns how many."""
    tg = fake_call(urls["TELEGRAM_API_URL"], "messages")
    dc = fake_call(urls["DISCORD_API_URL"], "messages")
    say(f"notifications the follower's Telegram chat received ({len(tg)} message(s), local fake):")
    for m in tg:
        print("  ┌─ telegram chat", m["chat_id"])
        for line in plain(m["text"]).splitlines():
            print("  │ " + line)
    print()
    say(f"notifications the admins' Discord webhook received ({len(dc)} message(s), local fake):")
    for m in dc:
        print("  ┌─ discord webhook")
        for line in plain(m["content"]).splitlines():
            print("  │ " + line)
    return len(tg) + len(dc)


def say(text: str) -> None:
    """One line of demo narration."""
    print(f"[demo] {text}", flush=True)


def start_simulator() -> tuple[subprocess.Popen[str], dict[str, str]]:
    """The simulator as a subprocess; returns it and its three base URLs."""
    proc = subprocess.Popen([PY, str(ROOT / "simulator.py"), "--scenario", str(ROOT / "scenarios" / "demo.json"),  # noqa: S603
                             "--chat-fakes"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=open(OUT / "simulator.log", "w"),  # noqa: SIM115
                            text=True, env={**os.environ, "TELEGRAM_BOT_TOKEN": BOT_TOKEN})
    urls: dict[str, str] = {}
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline().strip()
        if line == "SIMULATOR_READY":
            return proc, urls
        if "=" in line:
            key, value = line.split("=", 1)
            urls[key] = value
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise SystemExit("demo: the simulator did not start; see demo-out/simulator.log")


def admin(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    """Run `./admin ARGS`; stop the demo on failure."""
    done = subprocess.run([PY, str(ROOT / "admin"), *args], cwd=ROOT, env=env, input=stdin,  # noqa: S603
                          capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise SystemExit(f"demo: `admin {args[0]}` failed: {done.stderr.strip()}")
    return done.stdout


def daemon(env: dict[str, str], script: str) -> subprocess.Popen[bytes]:
    """Start watcher.py, executor.py or notifier.py with its log in demo-out."""
    log = open(OUT / f"{script.removesuffix('.py')}.log", "wb")  # noqa: SIM115
    return subprocess.Popen([PY, str(ROOT / script)], cwd=ROOT, env=env, stdout=log, stderr=log)  # noqa: S603


def free_port(preferred: int) -> int:
    """`preferred` when nothing listens on it on 127.0.0.1, else a free port the OS picks."""
    for port in ((preferred, 0) if preferred else (0,)):
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise SystemExit("demo: no free TCP port for the dashboard")


def start_web(env: dict[str, str], port: int) -> tuple[subprocess.Popen[bytes], str]:
    """web.py on the demo database; returns the process and its URL once /healthz answers."""
    log = open(OUT / "web.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([PY, str(ROOT / "web.py"), "--host", "127.0.0.1", "--port", str(port)],  # noqa: S603
                            cwd=ROOT, env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1) as answer:  # noqa: S310
                if answer.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("demo: the dashboard did not start; see demo-out/web.log")


def settled(env: dict[str, str], expected: int) -> bool:
    """True when at least `expected` copies exist and none is still on its way."""
    from sqlalchemy import func, select

    from infra.db import make_engine
    from models import CopyOrder, CopyStatus

    engine = make_engine(env["DATABASE_URL"])
    try:
        with engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(CopyOrder)).scalar_one()
            busy = conn.execute(select(func.count()).select_from(CopyOrder).where(CopyOrder.status.in_(
                [CopyStatus.QUEUED, CopyStatus.CLAIMED, CopyStatus.SIGNED, CopyStatus.IN_DOUBT]))).scalar_one()
    finally:
        engine.dispose()
    return total >= expected and busy == 0


def copied_table(env: dict[str, str]) -> list[dict[str, Any]]:
    """Trader fill → copy order rows for the summary."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from infra.db import make_engine
    from models import CopyOrder, Market, MarketTokenRow, Trader, TraderFill

    engine = make_engine(env["DATABASE_URL"])
    rows = []
    try:
        with Session(engine) as s:
            labels = {w: k for k, w in TRADERS.items()}
            for co in s.scalars(select(CopyOrder).order_by(CopyOrder.id)):
                fill = s.get(TraderFill, co.trader_fill_id)
                trader = s.get(Trader, fill.trader_id) if fill else None
                token = s.get(MarketTokenRow, co.token_id)
                market = s.get(Market, token.condition_id) if token else None
                rows.append({
                    "trader": labels.get(trader.wallet, trader.wallet[:10]) if trader else "?",
                    "market": (market.question[:38] if market else co.condition_id[:12]),
                    "outcome": token.outcome if token else (fill.outcome if fill else ""),
                    "trader_fill": f"{fill.side} {fill.size:f} @ {fill.price.normalize():f}" if fill else "",
                    "seen_by": _first_source(fill),
                    "copy": (f"{co.side} {co.intended_size} @ {co.intended_price}"
                             if co.intended_size is not None else "-"),
                    "filled": f"{co.filled_size}" + (f" @ {co.avg_fill_price:.4f}" if co.avg_fill_price else ""),
                    "status": co.status.value + (f" ({co.reason})" if co.reason else ""),
                })
    finally:
        engine.dispose()
    return rows


def _first_source(fill: Any) -> str:
    """Which source stored the leader's fill first ("chain" / "data api")."""
    if fill is None:
        return ""
    if fill.seen_by_chain_at and (not fill.seen_by_data_api_at
                                  or fill.seen_by_chain_at <= fill.seen_by_data_api_at):
        return f"chain (block {fill.block_number})"
    return "data api"


def notified(urls: dict[str, str]) -> bool:
    """True once the /status reply and the kill switch OFF message reached the fakes."""
    texts = [m["text"] for m in fake_call(urls["TELEGRAM_API_URL"], "messages")]
    return any("Status" in t for t in texts) and any("Kill switch OFF" in t for t in texts)


def print_table(rows: list[dict[str, Any]]) -> None:
    """Aligned columns."""
    if not rows:
        print("(no copies)")
        return
    cols = list(rows[0])
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in cols}
    print("  ".join(c.upper().ljust(widths[c]) for c in cols))
    for r in rows:
        print("  ".join(str(r[c]).ljust(widths[c]) for c in cols))


def stop(proc: subprocess.Popen[Any], name: str) -> int:
    """SIGTERM and wait; returns the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        say(f"{name} did not stop within 30 s and was killed")
        return -9


def serve_until_interrupted(remote: Any, url: str, password: str,
                            procs: list[tuple[str, subprocess.Popen[Any]]]) -> None:
    """Keep everything running until Ctrl-C or SIGTERM (or until a process stops by itself);
    the scripted traders trade again every 30 s."""
    def interrupt(_sig: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)  # also when started in the background (SIG_IGN)
    say(f"serving: open {url} and log in as demo / {password}; Ctrl-C stops everything")
    more = itertools.cycle([(t, m, o, side, str(int(size) // 2 or 1), price)
                            for _, t, m, o, side, size, price in SCRIPT])
    next_fill = time.monotonic() + 30
    try:
        while True:
            time.sleep(1)
            gone = [name for name, proc in procs if proc.poll() is not None]
            if gone:
                say(f"{', '.join(gone)} stopped by itself; stopping the rest")
                return
            if time.monotonic() >= next_fill:
                next_fill += 30
                trader, market, outcome, side, size, price = next(more)
                remote.add_trader_fill(trader=TRADERS[trader], market=market, outcome=outcome,
                                       side=side, size=size, price=price)
                say(f"trader {trader}: {side} {size} {market}/{outcome} @ {price}")
    except KeyboardInterrupt:
        print()
        say("stopping")


def main(argv: list[str] | None = None) -> int:
    """Run the demo end to end; exit 0 when every process stopped cleanly and copies happened."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paper", action="store_true", help="paper mode: simulated fills, no order posted")
    parser.add_argument("--log-level", default="INFO", help="daemon log level (logs in demo-out/)")
    parser.add_argument("--timeout", type=float, default=45.0, help="seconds to wait for copies to settle")
    parser.add_argument("--out", type=Path, default=OUT, help="working directory (wiped first)")
    parser.add_argument("--serve", action="store_true",
                        help="keep the simulator, daemons and dashboard running until Ctrl-C")
    parser.add_argument("--web-port", type=int, default=8080,
                        help="dashboard port (another free one when it is taken; 0 = any)")
    args = parser.parse_args(argv)
    globals()["OUT"] = args.out.resolve()
    sys.path.insert(0, str(ROOT))
    from cryptography.fernet import Fernet

    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir()
    say("starting the local Polymarket simulator (Data API, Gamma, CLOB V2) on 127.0.0.1")
    sim, urls = start_simulator()
    env = {**os.environ, **urls,
           "DATABASE_URL": f"sqlite:///{OUT / 'pmct.db'}",
           # a throwaway key, never printed (tests pass their own to check no log holds it)
           "ENCRYPTION_KEY": os.environ.get("ENCRYPTION_KEY") or Fernet.generate_key().decode(),
           "EXECUTION_MODE": "paper" if args.paper else "live",
           "PMCT_ENV_FILE": str(OUT / "no.env"),
           "WATCHER_POLL_INTERVAL": "1", "EXECUTOR_POLL_INTERVAL": "1",
           "ORDER_MANAGE_INTERVAL": "2", "POSITION_SNAPSHOT_INTERVAL": "3",
           "LOG_LEVEL": args.log_level.upper(),
           "TELEGRAM_BOT_TOKEN": BOT_TOKEN, "NOTIFY_POLL_INTERVAL": "0.5",
           "TELEGRAM_POLL_TIMEOUT": "1", "NOTIFY_SKIP_DIGEST_SECONDS": "5"}
    procs: list[tuple[str, subprocess.Popen[Any]]] = []
    codes: dict[str, int] = {}
    rows: list[dict[str, Any]] = []
    messages = 0
    try:
        say(f"database {env['DATABASE_URL']}; mode {env['EXECUTION_MODE']}")
        say(admin(env, "init-db").strip())
        say(admin(env, "add-follower", "--name", "Demo Follower", "--email", "demo@example.com",
                  "--private-key", "-", "--tier", "elite", stdin=DEMO_KEY + "\n").strip())
        say(admin(env, "auth-follower", "--wallet", DEMO_WALLET).strip())
        for name, wallet in TRADERS.items():
            say(admin(env, "add-follow", "--wallet", DEMO_WALLET, "--follow", wallet, "--copy-pct", "10",
                      "--max-trade", "25", "--label", name).strip())
        fake_call(urls["TELEGRAM_API_URL"], "add_chat", chat_id=DEMO_CHAT)  # the follower pressed Start
        say(admin(env, "set-notify", "--wallet", DEMO_WALLET, "--telegram-chat", str(DEMO_CHAT),
                  "--test").strip().replace("\n", "; "))
        say(admin(env, "set-notify", "--admin", "--discord-webhook", "-", "--events",
                  "copy_filled,copy_rejected,copy_in_doubt,kill_switch_on,kill_switch_off,daemon_stale",
                  stdin=WEBHOOK_URL + "\n").strip())
        password = secrets.token_urlsafe(12)  # a throwaway login for this demo run only
        say(admin(env, "add-user", "--username", "demo", "--role", "admin", "--password", "-",
                  stdin=password + "\n").strip())
        procs = [("watcher", daemon(env, "watcher.py")), ("executor", daemon(env, "executor.py")),
                 ("notifier", daemon(env, "notifier.py"))]
        web, url = start_web(env, free_port(args.web_port))
        procs.append(("web", web))
        say(f"dashboard: {url}  (login: demo / {password})")
        say("watcher, executor and notifier running; the watcher reads fills from the simulated chain "
            "(OrderFilled logs, a block every 2 s, websocket newHeads) with the Data API as backfill")
        say("the scripted traders start trading")
        from sim import RemoteSimulator

        remote = RemoteSimulator(urls["POLYMARKET_CLOB_API_URL"])
        time.sleep(2.5)  # let the watcher seed its cursors
        t0 = time.monotonic()
        for at, trader, market, outcome, side, size, price in SCRIPT:
            time.sleep(max(0.0, at - (time.monotonic() - t0)))
            remote.add_trader_fill(trader=TRADERS[trader], market=market, outcome=outcome, side=side,
                                   size=size, price=price)
            say(f"trader {trader}: {side} {size} {market}/{outcome} @ {price}")
        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline and not settled(env, expected=len(SCRIPT)):
            time.sleep(0.5)
        time.sleep(2)  # one more manage pass picks up resting fills
        print()
        say("what was copied (trader fill -> follower order):")
        rows = copied_table(env)
        print_table(rows)
        print()
        day = datetime.now(UTC).strftime("%Y-%m-%d")
        say(f"P&L report (`admin report --wallet {DEMO_WALLET} --start {day} --by-trader`):")
        print(admin(env, "report", "--wallet", DEMO_WALLET, "--start", day, "--by-trader"))
        if not args.paper:
            placed = [o for o in remote.orders() if o.get("maker", "").lower() == DEMO_WALLET.lower()]
            say(f"the simulator verified and accepted {len(placed)} signed order(s) from the follower")
        say(f"the follower sends /status to the bot from Telegram chat {DEMO_CHAT}")
        fake_call(urls["TELEGRAM_API_URL"], "user_says", chat_id=DEMO_CHAT, text="/status")
        say(admin(env, "disable", "--all", "--reason", "demo: end of the show").strip())
        say(admin(env, "enable", "--all").strip())
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not notified(urls):
            time.sleep(0.3)
        print()
        messages = print_messages(urls)
        print()
        if args.serve:
            serve_until_interrupted(remote, url, password, [*procs, ("simulator", sim)])
        else:
            say("run `python demo.py --serve` to keep the dashboard up and click around")
    finally:
        for name, proc in reversed(procs):
            codes[name] = stop(proc, name)
        codes["simulator"] = stop(sim, "simulator")
    say("stopped: " + ", ".join(f"{k} exit {v}" for k, v in codes.items()) + f"; logs in {OUT}")
    copied = sum(1 for r in rows if r["status"].startswith(("FILLED", "LIVE", "PARTIAL")))
    ok = all(v == 0 for v in codes.values()) and copied > 0 and messages > 0
    say("demo finished" if ok else "demo finished with problems (see the logs)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
