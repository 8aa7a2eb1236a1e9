"""`python simulator.py` in its own process: prints URLs, obeys control calls, exits 0 on TERM."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.simfixtures import (
    FED_YES,
    HARDHAT_ADDRESSES,
    ROOT,
    SimClient,
    SimProcess,
    sdk_limit_body,
    start_simulator_process,
    stop_simulator_process,
)


def test_subprocess_serves_three_services(simulator_process: SimProcess) -> None:
    """Data, Gamma and CLOB answer on the printed loopback URLs."""
    sp = simulator_process
    assert all(u.startswith("http://127.0.0.1:") for u in (sp.data_url, sp.gamma_url, sp.clob_url))
    with httpx.Client() as http:
        assert http.get(f"{sp.clob_url}/ok").json() == "OK"
        assert http.get(f"{sp.data_url}/v2/status").status_code == 200
        assert len(http.get(f"{sp.gamma_url}/markets").json()) == 4


def test_remote_control_drives_the_subprocess(simulator_process: SimProcess) -> None:
    """Credentials, funding, orders and inspection all work over the HTTP control API."""
    remote = simulator_process.remote
    creds = remote.create_api_key(address=HARDHAT_ADDRESSES[2])
    remote.fund(address=HARDHAT_ADDRESSES[2], pusd="50")
    client = SimClient(simulator_process.clob_url, creds, HARDHAT_ADDRESSES[2])
    try:
        body = sdk_limit_body(creds["apiKey"], 2, FED_YES, 0.6, 10, "BUY", "0.01", True)
        assert client.post_order(body).json()["status"] == "live"
    finally:
        client.close()
    [order] = remote.orders()
    assert order["maker"] == HARDHAT_ADDRESSES[2] and order["status"] == "LIVE"
    assert remote.balances(address=HARDHAT_ADDRESSES[2])["pusd"] == "50"


def test_random_walk_process_generates_fills() -> None:
    """--random-walk produces trader fills on the global Data API feed; SIGTERM exits 0."""
    sp = start_simulator_process(
        "--random-walk", "--traders", "2", "--markets", "2", "--rate", "20"
    )
    try:
        rows: list[object] = []
        deadline = time.monotonic() + 20
        with httpx.Client(base_url=sp.data_url) as data:
            while not rows and time.monotonic() < deadline:
                rows = data.get("/v2/trades").json()["data"]
                time.sleep(0.1)
        assert rows
    finally:
        assert stop_simulator_process(sp) == 0


def test_cli_without_scenario_or_walk_is_usage_error() -> None:
    """No --scenario and no --random-walk → exit 2 with a message."""
    proc = subprocess.run(  # noqa: S603 - our own script
        [sys.executable, str(ROOT / "simulator.py")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=30,
    )
    assert proc.returncode == 2 and "--scenario" in proc.stderr


def test_cli_bad_scenario_is_usage_error(tmp_path: Path) -> None:
    """An unreadable scenario file → exit 2."""
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    proc = subprocess.run(  # noqa: S603 - our own script
        [sys.executable, str(ROOT / "simulator.py"), "--scenario", str(bad)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=30,
    )
    assert proc.returncode == 2 and "cannot read scenario" in proc.stderr


def test_remote_errors_and_reset(simulator_process: SimProcess) -> None:
    """A bad control call raises with the simulator's message; reset empties orders and keys."""
    remote = simulator_process.remote
    try:
        remote.set_book(token_id=FED_YES, bids=[["0.7", "10"]], asks=[["0.6", "10"]])
    except RuntimeError as exc:
        assert "400" in str(exc) and "cross" in str(exc)
    else:
        raise AssertionError("a crossed synthetic book must be refused")
    creds = remote.create_api_key(address=HARDHAT_ADDRESSES[1])
    client = SimClient(simulator_process.clob_url, creds, HARDHAT_ADDRESSES[1])
    try:
        body = sdk_limit_body(creds["apiKey"], 1, FED_YES, 0.6, 10, "BUY", "0.01", True)
        assert client.post_order(body).status_code == 200
        remote.set_clock(advance=3600)
        remote.reset()
        assert remote.orders() == [] and abs(remote.now() - time.time()) < 60
        assert client.get("/data/orders").status_code == 401  # keys are gone too
    finally:
        client.close()


def test_the_process_prints_the_polygon_urls(simulator_process: SimProcess) -> None:
    """`simulator.py` prints POLYGON_RPC / POLYGON_WS like its other URLs; the node answers."""
    assert simulator_process.rpc_url.startswith("http://127.0.0.1:")
    assert simulator_process.ws_url.startswith("ws://127.0.0.1:")
    answer = httpx.post(simulator_process.rpc_url,
                        json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}).json()
    assert answer["result"] == "0x89"
    assert simulator_process.remote.chain_head()["block_time"] == 2.0
