"""Run the local Polymarket simulator (Data API, Gamma, CLOB V2) until SIGTERM/SIGINT.

    python simulator.py --scenario scenarios/demo.json [--data-port N --gamma-port N --clob-port N]
                        [--random-walk --traders 3 --markets 4 --rate 0.5]

Prints the three base URLs as environment assignments (POLYMARKET_DATA_API_URL=…, …) and a
final `SIMULATOR_READY` line, then serves on 127.0.0.1 until signalled; exits 0.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

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
    p.add_argument(
        "--random-walk", action="store_true", help="generate trader fills and book moves"
    )
    p.add_argument("--traders", type=int, default=3)
    p.add_argument("--markets", type=int, default=4)
    p.add_argument("--rate", type=float, default=0.5, help="random-walk fills per second")
    p.add_argument("--seed", type=int, default=None, help="override the scenario seed")
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
    for name in ("data_port", "gamma_port", "clob_port"):
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
    config = None
    if args.seed is not None or args.manual_trades:
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
    print(f"POLYMARKET_DATA_API_URL={sim.data_url}")
    print(f"POLYMARKET_GAMMA_API_URL={sim.gamma_url}")
    print(f"POLYMARKET_CLOB_API_URL={sim.clob_url}")
    print(f"POLYGON_RPC={sim.tx_rpc_url}")
    print(f"POLYMARKET_RELAYER_URL={sim.relayer_url}")
    print("SIMULATOR_READY", flush=True)
    while not stop.wait(0.5):
        pass
    sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
