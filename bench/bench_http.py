"""HTTP client CPU per Data API request against the simulator, with httpx's own transport.

Run: `.venv/bin/python bench/bench_http.py`. Requests go out in groups of 4, either back to back
("burst") or with 60 ms between groups ("paced", as the rate-limited watcher sends them: ~66/s).
The simulator runs in its own process, so `time.process_time()` counts only the client's CPU.
(The watcher's hand-written GET-only keep-alive transport, 0.31 ms/request paced against httpx's
0.71 ms, was removed once the chain source made the Data API poll a backfill: README.)
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
from common import quiet_scenario_file, simulator_process

USER = "0x" + "ab" * 20
REQUESTS = 800
GROUP = 4


def _url(base: str, i: int) -> str:
    return (f"{base}/v2/activity?user={USER}&type=TRADE,SPLIT,MERGE,REDEEM,CONVERSION&limit=500"
            f"&start={1_700_000_000 + i}&end={1_800_000_000 + i}&sort_direction=ASC")


async def _cpu_per_request(fetch: Callable[[int], Awaitable[None]], gap: float) -> float:
    for i in range(0, 40, GROUP):  # warm up: connections open, code paths hot
        await asyncio.gather(*(fetch(i + k) for k in range(GROUP)))
    cpu0 = time.process_time()
    for i in range(0, REQUESTS, GROUP):
        await asyncio.gather(*(fetch(i + k) for k in range(GROUP)))
        if gap:
            await asyncio.sleep(gap)
    return (time.process_time() - cpu0) / REQUESTS * 1000


async def _measure(base: str, transport: httpx.AsyncBaseTransport | None, gap: float) -> float:
    async with httpx.AsyncClient(transport=transport) as client:
        async def fetch(i: int) -> None:
            response = await client.get(_url(base, i))
            if response.status_code != 200:
                raise RuntimeError(f"HTTP {response.status_code}: {response.text[:200]}")
        return await _cpu_per_request(fetch, gap)


def main() -> None:
    """Print ms of CPU per request, burst and paced."""
    with tempfile.TemporaryDirectory() as tmp, simulator_process(quiet_scenario_file(Path(tmp))) as sim:
        for label, gap in (("burst", 0.0), ("paced", 0.06)):
            default = asyncio.run(_measure(sim["data"], None, gap))
            print(f"GET /v2/activity {label:>5}: httpx's transport {default:.3f} ms CPU/request")


if __name__ == "__main__":
    main()
