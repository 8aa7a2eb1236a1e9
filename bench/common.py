"""Shared set-up for the benchmarks: a fresh PostgreSQL database and a simulator subprocess."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from infra.migrate import upgrade_to_head  # noqa: E402
from tests.support.dbfixtures import create_pg_database, drop_pg_database  # noqa: E402


@contextmanager
def fresh_pg(prefix: str) -> Iterator[str]:
    """A new migrated PostgreSQL database, dropped afterwards."""
    url = create_pg_database(prefix)
    try:
        upgrade_to_head(url)
        yield url
    finally:
        drop_pg_database(url)


def quiet_scenario_file(tmp: Path) -> Path:
    """The demo scenario without scheduled fills (benchmarks add their own)."""
    data = json.loads((ROOT / "scenarios" / "demo.json").read_text())
    data["fills"] = [f for f in data["fills"] if f["at"] < 0]
    data["activities"], data["combos"] = [], []
    path = tmp / "bench-scenario.json"
    path.write_text(json.dumps(data))
    return path


@contextmanager
def simulator_process(scenario: Path, *extra: str) -> Iterator[dict[str, Any]]:
    """`python simulator.py` in a subprocess; yields its URLs and a RemoteSimulator."""
    from tests.support.simfixtures import start_simulator_process, stop_simulator_process

    sp = start_simulator_process("--scenario", str(scenario), *extra)
    try:
        yield {"data": sp.data_url, "gamma": sp.gamma_url, "clob": sp.clob_url, "remote": sp.remote,
               "rpc": sp.rpc_url, "ws": sp.ws_url}
    finally:
        stop_simulator_process(sp)


def claim_context(owner: str = "bench") -> Any:
    """What `copying.claims.claim_ids` / `claim_in` read of an executor (a live one, unpinned)."""
    from datetime import UTC, datetime, timedelta
    from types import SimpleNamespace

    return SimpleNamespace(clock=lambda: datetime.now(UTC), owner=owner, lease=timedelta(seconds=60),
                           paper=False, pinned_only=False)


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of `values`."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def stop_all(procs: list[subprocess.Popen[str]], timeout: float = 60) -> None:
    """SIGTERM every process, then wait for each (they stop in parallel)."""
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        p.communicate(timeout=timeout)
