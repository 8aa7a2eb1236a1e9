"""Run the local Polymarket simulator (Data API, Gamma, CLOB V2, Polygon RPC) until SIGTERM/SIGINT.

    python simulator.py --scenario scenarios/demo.json [--data-port N --gamma-port N --clob-port N]
                        [--rpc-port N --ws-port N --block-time 2]
                        [--random-walk --traders 3 --markets 4 --rate 0.5] [--chat-fakes]

Prints the base URLs as environment assignments (POLYMARKET_DATA_API_URL=…, …, POLYGON_RPC=…,
POLYGON_WS=…) and a final `SIMULATOR_READY` line, then serves on 127.0.0.1 until signalled;
exits 0. Blocks come every `--block-time` seconds (default: $BLOCK_TIME, else 2; 0 = only
when mined through the control API). With `--chat-fakes` it also serves a Telegram Bot API
(sim/telegram.py; it accepts the TELEGRAM_BOT_TOKEN of its environment, or any well-formed
token) and Discord webhooks (sim/discord.py; any webhook id/token) and prints
TELEGRAM_API_URL= and DISCORD_API_URL=.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from types import FrameType
from typing import Any

from sim import RandomWalkConfig, SimConfig, Simulator
from sim.scenario import ScenarioError, read_scenario


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(
        description="Local strict Polymarket simulator (Data API, Gamma, CLOB V2)."
    )
    p.add_argument("--scenario", help="scenario JSON (markets, books, traders, accounts, fills)")
    p.add_argument("--data-port", type=int, default=0)
    p.add_argument("--gamma-port", type=int, default=0)
    p.add_argument("--clob-port", type=int, default=0)
    p.add_argument("--rpc-port", type=int, default=0, help="Polygon JSON-RPC over HTTP")
    p.add_argument("--ws-port", type=int, default=0, help="Polygon JSON-RPC websocket")
    p.add_argument("--block-time", type=float, default=None,
                   help="seconds between blocks (default $BLOCK_TIME or 2; 0 = mined by hand)")
    p.add_argument(
        "--random-walk", action="store_true", help="generate trader fills and book moves"
    )
    p.add_argument("--traders", type=int, default=3)
    p.add_argument("--markets", type=int, default=4)
    p.add_argument("--rate", type=float, default=0.5, help="random-walk fills per second")
    p.add_argument("--seed", type=int, default=None, help="override the scenario seed")
    p.add_argument("--chat-fakes", action="store_true",
                   help="also serve local Telegram Bot API and Discord webhook fakes")
    p.add_argument(
        "--manual-trades",
        action="store_true",
        help="trades stay MATCHED until advanced through the control API",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = parse_args(argv)
    if not args.scenario and not args.random_walk:
        print("error: give --scenario and/or --random-walk", file=sys.stderr)
        return 2
    for name in ("data_port", "gamma_port", "clob_port", "rpc_port", "ws_port"):
        if not 0 <= getattr(args, name) <= 65535:
            print(f"error: --{name.replace('_', '-')} must be 0..65535", file=sys.stderr)
            return 2
    if args.random_walk and (args.traders < 1 or args.markets < 1 or args.rate < 0):
        print("error: --traders and --markets must be ≥ 1 and --rate ≥ 0", file=sys.stderr)
        return 2
    try:
        scenario = read_scenario(args.scenario) if args.scenario else {}
    except ScenarioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    block_time = args.block_time
    if block_time is None and os.environ.get("BLOCK_TIME"):
        try:
            block_time = float(os.environ["BLOCK_TIME"])
        except ValueError:
            print("error: BLOCK_TIME must be a number of seconds", file=sys.stderr)
            return 2
    if block_time is not None and not 0 <= block_time <= 3600:
        print("error: --block-time must be between 0 and 3600 seconds", file=sys.stderr)
        return 2
    config = None
    if args.seed is not None or args.manual_trades or block_time is not None:
        config = SimConfig(
            seed=args.seed if args.seed is not None else int(scenario.get("seed", 1))
        )
        delays = scenario.get("trade_delays") or {}
        config.mined_after = (
            None if args.manual_trades else delays.get("mined_after", config.mined_after)
        )
        config.confirmed_after = (
            None if args.manual_trades else delays.get("confirmed_after", config.confirmed_after)
        )
        config.chain_id = int(scenario.get("chain_id", 137))
        config.block_time = float(block_time if block_time is not None
                                  else scenario.get("block_time", config.block_time))
    walk = (
        RandomWalkConfig(traders=args.traders, markets=args.markets, rate=args.rate)
        if args.random_walk
        else None
    )
    try:
        sim = Simulator(
            scenario,
            config=config,
            random_walk=walk,
            data_port=args.data_port,
            gamma_port=args.gamma_port,
            clob_port=args.clob_port,
            rpc_port=args.rpc_port,
            ws_port=args.ws_port,
        )
    except ScenarioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot listen: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    sim.start()
    fakes: list[Any] = []
    if args.chat_fakes:
        from sim.discord import FakeDiscord
        from sim.telegram import FakeTelegram

        fakes = [FakeTelegram(os.environ.get("TELEGRAM_BOT_TOKEN") or None).start(),
                 FakeDiscord(accept_any=True).start()]
    print(f"POLYMARKET_DATA_API_URL={sim.data_url}")
    print(f"POLYMARKET_GAMMA_API_URL={sim.gamma_url}")
    print(f"POLYMARKET_CLOB_API_URL={sim.clob_url}")
    print(f"POLYGON_RPC={sim.rpc_url}")
    print(f"POLYGON_WS={sim.ws_url}")
    print(f"POLYMARKET_RELAYER_URL={sim.relayer_url}")
    if fakes:
        print(f"TELEGRAM_API_URL={fakes[0].url}")
        print(f"DISCORD_API_URL={fakes[1].url}/api")
    print("SIMULATOR_READY", flush=True)
    while not stop.wait(0.5):
        pass
    for fake in fakes:
        fake.stop()
    sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
