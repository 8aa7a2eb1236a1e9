"""pytest fixtures for the local Polymarket simulator (`from tests.support.simfixtures import *`).

- `simulator`: the demo scenario in-process on free loopback ports (threads); yields the
  `Simulator` (data_url, gamma_url, clob_url + the Python control API); stopped at teardown,
  which also fails the test if the simulator hit an internal error.
- `simulator_factory`: build your own (scenario / `SimConfig` / random walk), stopped at teardown.
- `simulator_process`: the same demo scenario run as `python simulator.py` in a subprocess;
  yields a `SimProcess` (URLs + `remote`, a `RemoteSimulator` speaking the control API over HTTP);
  SIGTERM at teardown, which must exit 0.
- `SimClient`: a tiny L2-signing HTTP client for tests (HMAC computed here, independent of the
  project's clob_auth.py), and the public Hardhat test keys.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from sim import RandomWalkConfig, RemoteSimulator, SimConfig, Simulator
from tests.support.paths import POLYMARKET, ROOT

DEMO_SCENARIO = ROOT / "scenarios" / "demo.json"


# Public Hardhat/Anvil test accounts (never fund them on a real chain).
HARDHAT_KEYS = {
    0: "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    1: "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    2: "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
}
HARDHAT_ADDRESSES = {
    0: "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
    1: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    2: "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
}
DEPOSIT_WALLET_0 = "0xBc0fF067b7740Eff76C1ca93c875Ba6B890d6B50"
SAFE_WALLET_0 = "0xd93B25cb943D14d0d34FBaF01Fc93a0f8b5F6E47"
FED_YES = "45202227256710257521935388599371620715578063998808294012969308187257000919017"
FED_NO = "46889952437493978641606697465725212275743506716002855899008989138170349125777"
BTC_YES = "39884542492448539354984628301280444831869836904205420009985814557208059593221"
LAKERS = "655227644479306272751661717784854124094004764770302675341665585225807617536"
FED_CONDITION = "0x649b6fd3f386ef1bf5f7955fa76fa7545c94e2ad5938be41b00eb08d50d7a4c2"
TRADER_QUIET = "0x0d6cf071dbddb6780f4b6912b49d683b8f234395"
TRADER_CAR = "0x7c3db723f1d4d8cb9c550095203b686cb11e5c6b"

__all__ = [
    "ROOT",
    "start_simulator_process",
    "stop_simulator_process",
    "BTC_YES",
    "DEMO_SCENARIO",
    "DEPOSIT_WALLET_0",
    "FED_CONDITION",
    "FED_NO",
    "FED_YES",
    "HARDHAT_ADDRESSES",
    "HARDHAT_KEYS",
    "LAKERS",
    "SAFE_WALLET_0",
    "POLYMARKET",
    "TRADER_CAR",
    "TRADER_QUIET",
    "SimClient",
    "SimProcess",
    "account",
    "l2_headers",
    "sdk_limit_body",
    "sdk_market_body",
    "simulator",
    "simulator_factory",
    "simulator_process",
]


def l2_headers(
    creds: dict[str, str],
    address: str,
    method: str,
    path: str,
    body: str = "",
    timestamp: int | None = None,
) -> dict[str, str]:
    """POLY_* L2 headers: base64url(HMAC-SHA256(secret, ts+METHOD+path+body)), per docs/POLYMARKET.md §4.2."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    secret = creds["secret"]
    key = base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4))
    sig = base64.urlsafe_b64encode(
        hmac.new(key, (ts + method + path + body).encode(), hashlib.sha256).digest()
    )
    return {
        "POLY_ADDRESS": address,
        "POLY_API_KEY": creds["apiKey"],
        "POLY_PASSPHRASE": creds["passphrase"],
        "POLY_TIMESTAMP": ts,
        "POLY_SIGNATURE": sig.decode(),
    }


class SimClient:
    """L2-authenticated requests against the simulator's CLOB for one API key."""

    def __init__(self, clob_url: str, creds: dict[str, str], address: str) -> None:
        self.clob_url = clob_url
        self.creds = creds
        self.address = address
        self.http = httpx.Client(base_url=clob_url, timeout=10.0)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, Any] | None = None,
        raw: str | None = None,
    ) -> httpx.Response:
        """Send with L2 headers signed over exactly the bytes sent (compact JSON unless `raw`)."""
        text = (
            raw
            if raw is not None
            else ("" if body is None else json.dumps(body, separators=(",", ":")))
        )
        headers = l2_headers(self.creds, self.address, method, path, text)
        return self.http.request(
            method,
            path,
            params=params,
            content=text.encode() if text else None,
            headers={**headers, "Content-Type": "application/json"},
        )

    def post_order(self, body: dict[str, Any]) -> httpx.Response:
        """POST /order."""
        return self.request("POST", "/order", body)

    def get(self, path: str, **params: Any) -> httpx.Response:
        """L2 GET with query parameters (not signed, as the CLOB does)."""
        return self.request("GET", path, params=params or None)

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()


_CLIENTS: dict[int, list[SimClient]] = {}


def account(sim: Simulator, index: int) -> SimClient:
    """A `SimClient` for Hardhat account `index` with fresh credentials from the control API
    (closed when the simulator fixture tears down)."""
    address = HARDHAT_ADDRESSES[index]
    client = SimClient(sim.clob_url, sim.create_api_key(address), address)
    _CLIENTS.setdefault(id(sim), []).append(client)
    return client


def _builder(index: int, signature_type: int, funder: str | None) -> Any:
    from py_clob_client_v2.order_builder.builder import OrderBuilder
    from py_clob_client_v2.order_utils import SignatureTypeV2
    from py_clob_client_v2.signer import Signer

    return OrderBuilder(Signer(HARDHAT_KEYS[index], 137), SignatureTypeV2(signature_type), funder)


def sdk_limit_body(
    owner: str,
    index: int,
    token_id: str,
    price: float,
    size: float,
    side: str,
    tick: str,
    neg_risk: bool,
    order_type: str = "GTC",
    signature_type: int = 0,
    funder: str | None = None,
    expiration: int = 0,
    position: bool = False,
    post_only: bool = False,
    version: int = 2,
) -> dict[str, Any]:
    """A POST /order body built and signed offline by py-clob-client-v2's OrderBuilder."""
    from py_clob_client_v2.clob_types import CreateOrderOptions, OrderArgsV2
    from py_clob_client_v2.order_utils.model.order_data_v1 import order_to_json_v1
    from py_clob_client_v2.order_utils.model.order_data_v2 import order_to_json_v2

    args = (
        OrderArgsV2(position_id=token_id, price=price, size=size, side=side, expiration=expiration)
        if position
        else OrderArgsV2(
            token_id=token_id, price=price, size=size, side=side, expiration=expiration
        )
    )
    order = _builder(index, signature_type, funder).build_order(
        args, CreateOrderOptions(tick_size=tick, neg_risk=neg_risk), version=version
    )
    if version == 1:
        return order_to_json_v1(order, owner, order_type, post_only)
    return order_to_json_v2(order, owner, order_type, post_only)


def sdk_market_body(
    owner: str,
    index: int,
    token_id: str,
    amount: float,
    side: str,
    price: float,
    tick: str,
    neg_risk: bool,
    order_type: str = "FOK",
    signature_type: int = 0,
    funder: str | None = None,
    position: bool = False,
) -> dict[str, Any]:
    """A market (FOK/FAK) POST /order body built offline by py-clob-client-v2 (BUY amount in $)."""
    from py_clob_client_v2.clob_types import CreateOrderOptions, MarketOrderArgsV2
    from py_clob_client_v2.order_utils.model.order_data_v2 import order_to_json_v2

    kwargs: dict[str, Any] = {
        "amount": amount,
        "side": side,
        "price": price,
        "order_type": order_type,
    }
    args = (
        MarketOrderArgsV2(position_id=token_id, **kwargs)
        if position
        else MarketOrderArgsV2(token_id=token_id, **kwargs)
    )
    order = _builder(index, signature_type, funder).build_market_order(
        args, CreateOrderOptions(tick_size=tick, neg_risk=neg_risk)
    )
    return order_to_json_v2(order, owner, order_type)


@pytest.fixture
def simulator_factory() -> Iterator[Callable[..., Simulator]]:
    """Start simulators on demand: `make(scenario=..., config=SimConfig(...), random_walk=...)`."""
    started: list[Simulator] = []

    def make(
        scenario: Any = DEMO_SCENARIO,
        config: SimConfig | None = None,
        random_walk: RandomWalkConfig | None = None,
    ) -> Simulator:
        sim = Simulator(scenario, config=config, random_walk=random_walk).start()
        started.append(sim)
        return sim

    yield make
    for sim in started:
        for client in _CLIENTS.pop(id(sim), []):
            client.close()
        sim.stop()
    errors = [e for sim in started for e in sim.errors]
    assert not errors, "simulator internal errors:\n" + "\n".join(errors)


@pytest.fixture
def simulator(simulator_factory: Callable[..., Simulator]) -> Simulator:
    """The demo scenario, in-process, on free ports."""
    return simulator_factory()


@dataclass
class SimProcess:
    """A simulator running in a subprocess."""

    process: subprocess.Popen[str]
    data_url: str
    gamma_url: str
    clob_url: str
    remote: RemoteSimulator
    rpc_url: str = ""
    ws_url: str = ""
    relayer_url: str = ""


def start_simulator_process(*args: str, timeout: float = 20.0) -> SimProcess:
    """Run `python simulator.py ARGS` and wait for its URLs."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(  # noqa: S603 - our own script with fixed arguments
        [sys.executable, str(ROOT / "simulator.py"), *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    urls: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        line = line.strip()
        if line == "SIMULATOR_READY":
            remote = RemoteSimulator(
                urls["POLYMARKET_CLOB_API_URL"],
                urls["POLYMARKET_DATA_API_URL"],
                urls["POLYMARKET_GAMMA_API_URL"],
            )
            return SimProcess(
                proc,
                urls["POLYMARKET_DATA_API_URL"],
                urls["POLYMARKET_GAMMA_API_URL"],
                urls["POLYMARKET_CLOB_API_URL"],
                remote,
                urls.get("POLYGON_RPC", ""),
                urls.get("POLYGON_WS", ""),
                urls.get("POLYMARKET_RELAYER_URL", ""),
            )
        if "=" in line:
            k, v = line.split("=", 1)
            urls[k] = v
    proc.kill()
    raise RuntimeError(f"simulator did not start: {proc.stderr.read() if proc.stderr else ''}")


def stop_simulator_process(sp: SimProcess, timeout: float = 10.0) -> int:
    """SIGTERM the subprocess and return its exit code."""
    sp.process.send_signal(signal.SIGTERM)
    try:
        return sp.process.wait(timeout=timeout)
    finally:
        if sp.process.poll() is None:
            sp.process.kill()
        for stream in (sp.process.stdout, sp.process.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def simulator_process() -> Iterator[SimProcess]:
    """The demo scenario in a separate process; must exit 0 on SIGTERM at teardown."""
    sp = start_simulator_process("--scenario", str(DEMO_SCENARIO))
    yield sp
    assert stop_simulator_process(sp) == 0
