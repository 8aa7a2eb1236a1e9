"""Benchmark: POST /order throughput of the simulator from one keep-alive HTTP client.

Starts `simulator.py --scenario scenarios/demo.json --manual-trades` in a subprocess (so client
and server do not share a GIL), pre-signs orders for the public Hardhat test key #1 (signing is
not timed), then posts them one after another over one HTTP/1.1 connection, computing the L2
HMAC per request (that is timed: it is part of a real client's cost). Prints orders/s and latency
percentiles for resting orders and for marketable FAK orders that match and create trades.

    .venv/bin/python bench/bench_simulator.py [--orders 2000]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import secrets
import statistics
import sys
import time
from pathlib import Path

import coincurve
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sim.verify import CTF_EXCHANGE_V2, NEG_RISK_EXCHANGE_V2, OrderStruct, order_digest  # noqa: E402
from tests.support.simfixtures import start_simulator_process, stop_simulator_process  # noqa: E402

KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"  # Hardhat #1 (public)
ADDRESS = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
BTC_YES = "39884542492448539354984628301280444831869836904205420009985814557208059593221"
FED_YES = "45202227256710257521935388599371620715578063998808294012969308187257000919017"
ZERO32 = "0x" + "00" * 32


def sign_body(
    owner: str,
    token: str,
    exchange: str,
    maker_amount: int,
    taker_amount: int,
    order_type: str,
    ts_ms: int,
) -> str:
    """A compact POST /order body signed with the test key (EOA, side BUY)."""
    salt = secrets.randbits(53)
    struct = OrderStruct(
        salt=salt,
        maker=ADDRESS,
        signer=ADDRESS,
        token_id=int(token),
        maker_amount=maker_amount,
        taker_amount=taker_amount,
        side=0,
        signature_type=0,
        timestamp=ts_ms,
        metadata=bytes(32),
        builder=bytes(32),
    )
    digest = order_digest(struct, 137, exchange, "2")
    raw = coincurve.PrivateKey(bytes.fromhex(KEY[2:])).sign_recoverable(digest, hasher=None)
    signature = "0x" + (raw[:64] + bytes([raw[64] + 27])).hex()
    body = {
        "order": {
            "salt": salt,
            "maker": ADDRESS,
            "signer": ADDRESS,
            "tokenId": token,
            "makerAmount": str(maker_amount),
            "takerAmount": str(taker_amount),
            "side": "BUY",
            "expiration": "0",
            "signatureType": 0,
            "timestamp": str(ts_ms),
            "metadata": ZERO32,
            "builder": ZERO32,
            "signature": signature,
        },
        "owner": owner,
        "orderType": order_type,
        "deferExec": False,
        "postOnly": False,
    }
    return json.dumps(body, separators=(",", ":"))


def l2(creds: dict[str, str], body: str) -> dict[str, str]:
    """L2 headers for POST /order over exactly `body`."""
    ts = str(int(time.time()))
    key = base64.urlsafe_b64decode(creds["secret"])
    sig = base64.urlsafe_b64encode(
        hmac.new(key, (ts + "POST/order" + body).encode(), hashlib.sha256).digest()
    )
    return {
        "POLY_ADDRESS": ADDRESS,
        "POLY_API_KEY": creds["apiKey"],
        "POLY_PASSPHRASE": creds["passphrase"],
        "POLY_TIMESTAMP": ts,
        "POLY_SIGNATURE": sig.decode(),
        "Content-Type": "application/json",
    }


def run(
    client: httpx.Client, creds: dict[str, str], bodies: list[str], expect: str
) -> tuple[float, list[float]]:
    """Post every body; returns (orders per second, latencies in ms)."""
    latencies = []
    start = time.perf_counter()
    for body in bodies:
        t0 = time.perf_counter()
        resp = client.post("/order", content=body.encode(), headers=l2(creds, body))
        latencies.append((time.perf_counter() - t0) * 1000)
        if resp.status_code != 200 or resp.json().get("status") != expect:
            raise SystemExit(f"unexpected answer {resp.status_code}: {resp.text}")
    elapsed = time.perf_counter() - start
    return len(bodies) / elapsed, latencies


def report(label: str, rate: float, latencies: list[float]) -> None:
    """Print one result line."""
    q = statistics.quantiles(latencies, n=100)
    print(
        f"{label:<28} {rate:8.0f} orders/s   p50 {q[49]:.2f} ms   p99 {q[98]:.2f} ms"
        f"   n={len(latencies)}"
    )


def main() -> int:
    """Run the benchmark."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--orders", type=int, default=2000)
    args = p.parse_args()
    sp = start_simulator_process(
        "--scenario", str(ROOT / "scenarios" / "demo.json"), "--manual-trades"
    )
    try:
        creds = sp.remote.create_api_key(address=ADDRESS)
        sp.remote.fund(address=ADDRESS, pusd="100000000")
        sp.remote.set_book(token_id=FED_YES, asks=[["0.99", "100000000"]], bids=[["0.01", "10"]])
        now_ms = int(time.time() * 1000)
        t0 = time.perf_counter()
        resting = []
        for i in range(
            args.orders
        ):  # BUY 10 shares at 0.001..0.049 on the 0.001-tick market: never crosses
            price_milli = 1 + i % 49
            resting.append(
                sign_body(
                    creds["apiKey"],
                    BTC_YES,
                    CTF_EXCHANGE_V2,
                    10 * price_milli * 1000,
                    10_000_000,
                    "GTC",
                    now_ms + i,
                )
            )
        matching = [
            sign_body(
                creds["apiKey"],
                FED_YES,
                NEG_RISK_EXCHANGE_V2,
                1_980_000,
                2_000_000,
                "FAK",
                now_ms + args.orders + i,
            )
            for i in range(args.orders)
        ]
        print(
            f"signed {2 * args.orders} orders in {time.perf_counter() - t0:.1f} s (not timed below)"
        )
        with httpx.Client(base_url=sp.clob_url, timeout=10) as client:
            client.get("/ok")
            report("POST /order resting GTC", *run(client, creds, resting, "live"))
            report("POST /order matching FAK", *run(client, creds, matching, "matched"))
    finally:
        code = stop_simulator_process(sp)
    print(f"simulator exit code {code}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
