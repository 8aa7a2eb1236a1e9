"""Benchmark: sign_order + post_order_body per order, coincurve vs pure-Python ECC, types 0 and 3.

Run: .venv/bin/python bench/bench_signing.py [--orders 2000] [--sdk-orders 500]

Each ECC backend runs in its own subprocess (eth_keys picks its backend at import from
ECC_BACKEND_CLASS). For comparison it also times py-clob-client-v2's ExchangeOrderBuilderV2
(generic EIP-712 encoder + eth_account) building the same order and its JSON body. Prints a
table of mean / p50 / p99 milliseconds per order. Uses the public Hardhat test key only.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"  # Hardhat #0
EOA = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
DEPOSIT_WALLET = "0xBc0fF067b7740Eff76C1ca93c875Ba6B890d6B50"
TOKEN_ID = "71321045679252212594626385532706912750332728571942532289631379312455583992563"  # noqa: S105
BACKENDS = {
    "coincurve": "eth_keys.backends.CoinCurveECCBackend",
    "pure-python": "eth_keys.backends.NativeECCBackend",
}


def _stats(samples_ns: list[int]) -> dict[str, float]:
    ms = sorted(s / 1e6 for s in samples_ns)
    p99 = ms[min(len(ms) - 1, int(round(0.99 * (len(ms) - 1))))]
    return {"n": len(ms), "mean": statistics.fmean(ms), "p50": statistics.median(ms), "p99": p99}


def _time(fn, n: int, warmup: int = 20) -> dict[str, float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        fn()
        out.append(time.perf_counter_ns() - t0)
    return _stats(out)


def _child(orders: int, sdk_orders: int) -> dict:
    sys.path.insert(0, str(ROOT))
    from wire import auth as clob_auth
    from wire.signing import (
        OrderRequest,
        exchange_for,
        post_order_body,
        sign_order,
    )
    from wire.types import MarketVersion, OrderType, Side, SignatureType

    exchange = exchange_for(MarketVersion.V1, True, 137)
    reqs = {
        0: OrderRequest(maker=EOA, signer=EOA, token_id=TOKEN_ID, maker_amount=4625000,
                        taker_amount=12500000, side=Side.BUY, signature_type=SignatureType.EOA),
        3: OrderRequest(maker=DEPOSIT_WALLET, signer=DEPOSIT_WALLET, token_id=TOKEN_ID,
                        maker_amount=4625000, taker_amount=12500000, side=Side.BUY,
                        signature_type=SignatureType.POLY_1271),
    }
    results: dict = {"backend": clob_auth.ecc_backend_name(), "rows": []}
    for sig_type, req in reqs.items():
        def ours(req=req) -> bytes:
            return post_order_body(sign_order(req, KEY, exchange, 137), "owner", OrderType.GTC)

        results["rows"].append({"impl": "order_signing", "type": sig_type,
                                **_time(ours, orders)})

    if sdk_orders:
        from py_clob_client_v2.order_utils.exchange_order_builder_v2 import ExchangeOrderBuilderV2
        from py_clob_client_v2.order_utils.model.order_data_v2 import (
            OrderDataV2,
            order_to_json_v2,
        )
        from py_clob_client_v2.order_utils.model.side import Side as SdkSide
        from py_clob_client_v2.order_utils.model.signature_type_v2 import SignatureTypeV2
        from py_clob_client_v2.signer import Signer

        builder = ExchangeOrderBuilderV2(exchange.address, 137, Signer(KEY, 137),
                                         domain_version=exchange.domain_version)
        for sig_type, maker in ((0, EOA), (3, DEPOSIT_WALLET)):
            def sdk(maker=maker, sig_type=sig_type) -> bytes:
                data = OrderDataV2(maker=maker, tokenId=TOKEN_ID, makerAmount="4625000",
                                   takerAmount="12500000", side=SdkSide.BUY, signer=maker,
                                   signatureType=SignatureTypeV2(sig_type),
                                   timestamp=str(time.time_ns() // 1_000_000))
                signed = builder.build_signed_order(data)
                return json.dumps(order_to_json_v2(signed, "owner", "GTC"),
                                  separators=(",", ":")).encode()

            results["rows"].append({"impl": "SDK ExchangeOrderBuilderV2", "type": sig_type,
                                    **_time(sdk, sdk_orders, warmup=5)})
    return results


def main() -> None:
    """Run each backend in a subprocess and print one table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--orders", type=int, default=2000, help="orders per row (ours)")
    ap.add_argument("--sdk-orders", type=int, default=500, help="orders per SDK row (0 = skip)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(_child(args.orders, args.sdk_orders)))
        return

    rows = []
    for label, cls in BACKENDS.items():
        env = {**os.environ, "ECC_BACKEND_CLASS": cls}
        out = subprocess.run(  # noqa: S603 (our own script, fixed argv)
            [sys.executable, __file__, "--child", "--orders", str(args.orders),
             "--sdk-orders", str(args.sdk_orders)],
            env=env, check=True, capture_output=True, text=True,
        )
        res = json.loads(out.stdout.strip().splitlines()[-1])
        for r in res["rows"]:
            rows.append((label, res["backend"], r))

    head = f"{'backend':<12} {'implementation':<27} {'type':>4} {'n':>6} " \
           f"{'mean ms':>8} {'p50 ms':>8} {'p99 ms':>8} {'orders/s':>9}"
    print(f"sign_order + post_order_body per order (python {sys.version.split()[0]})")
    print(head)
    print("-" * len(head))
    for label, _backend, r in rows:
        print(f"{label:<12} {r['impl']:<27} {r['type']:>4} {r['n']:>6} {r['mean']:>8.3f} "
              f"{r['p50']:>8.3f} {r['p99']:>8.3f} {1000 / r['mean']:>9.0f}")


if __name__ == "__main__":
    main()
