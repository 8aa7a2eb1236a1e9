"""Benchmark: infra.metrics on prometheus-client against the hand-written module it replaced.

Run: .venv/bin/python bench/bench_metrics.py [--calls 200000] [--repeats 7] [--scrapes 300]

The old module is read from git (the newest revision of infra/metrics.py that does not import
prometheus_client, or --old-rev) into a temporary file and imported beside the new one, so both
run in the same process on the same machine state. Measured per implementation:
- ns per `inc("copies", status=...)` (a labelled counter: the executor's per-copy call),
- ns per `observe("copy_overhead_seconds", x)` (unlabelled histogram, per copy) and per
  `observe("cycle_seconds", x, daemon=...)` (labelled histogram, per cycle),
- µs per render of a registry holding ~50 series of our catalogue (74 samples with the
  histograms' buckets; the same set in both), and per HTTP scrape of it
  on loopback (GET /metrics through `start_server`).
For the new module the render and scrape are also timed with the standard process/platform/gc
collectors on (the daemons' setting) and off, and the library's uncached `labels(...).inc()` is
timed to show what the child cache saves. Prints one table; medians of --repeats runs.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Protocol

from prometheus_client import Counter

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STATUSES = ("FILLED", "PARTIAL", "SKIPPED", "FAILED", "CANCELLED", "OPEN", "EXPIRED", "REJECTED")
REASONS = tuple(f"reason_{i}" for i in range(12))
ERROR_CLASSES = ("429", "4xx", "5xx", "transport", "parse")


def old_module(rev: str | None) -> ModuleType | None:
    """The hand-written infra/metrics.py from git, imported from a temporary file (None if absent)."""
    try:
        if rev is None:
            revs = subprocess.run(["git", "log", "--format=%H", "--", "infra/metrics.py"], cwd=ROOT,
                                  capture_output=True, text=True, check=True).stdout.split()
        else:
            revs = [rev]
        for r in revs:
            src = subprocess.run(["git", "show", f"{r}:infra/metrics.py"], cwd=ROOT,
                                 capture_output=True, text=True, check=True).stdout
            if "import prometheus_client" not in src:
                break
        else:
            return None
    except (OSError, subprocess.CalledProcessError):
        return None
    path = Path(tempfile.mkdtemp()) / "old_metrics.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("old_metrics", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["old_metrics"] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    print(f"old module: infra/metrics.py at {r[:12]}")
    return mod


def ns_per_call(fn: Callable[[], object], calls: int, repeats: int) -> float:
    """Median over `repeats` runs of the mean ns per call of `fn`."""
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        for _ in range(calls):
            fn()
        runs.append((time.perf_counter_ns() - t0) / calls)
    return statistics.median(runs)


class Reg(Protocol):
    """What both implementations' `Registry` offer."""

    def inc(self, short: str, amount: float = 1, **labels: object) -> None: ...  # noqa: D102
    def set(self, short: str, value: float, **labels: object) -> None: ...  # noqa: D102
    def observe(self, short: str, value: float, **labels: object) -> None: ...  # noqa: D102
    def render(self) -> str: ...  # noqa: D102


def populate(reg: Reg) -> None:
    """~75 samples of the catalogue (~50 series + histogram buckets), as a busy executor and
    watcher would have them."""
    inc, observe, set_ = reg.inc, reg.observe, reg.set
    for s in STATUSES:
        inc("copies", 3, status=s)
    for r in REASONS:
        inc("copies_skipped", reason=r)
    for e in ERROR_CLASSES:
        inc("http_errors", error_class=e)
    inc("fills_detected", 10)
    inc("copies_queued", 10)
    for d in ("watcher", "executor"):
        set_("last_cycle_timestamp_seconds", time.time(), daemon=d)
    observe("cycle_seconds", 0.4, daemon="executor")
    observe("copy_overhead_seconds", 0.8)  # so both expose the same samples
    observe("detection_delay_seconds", 2.0)
    set_("open_copy_orders", 4)


def sample_count(text: str) -> int:
    """Sample lines in an exposition."""
    return sum(1 for line in text.splitlines() if line and not line.startswith("#"))


def scrape_us(module: ModuleType, reg: Reg, scrapes: int, repeats: int) -> float:
    """Median µs per GET /metrics against `module.start_server` on loopback."""
    server = module.start_server(0, registry=reg)
    url = f"http://127.0.0.1:{server.server_address[1]}/metrics"
    try:
        def get() -> None:
            with urllib.request.urlopen(url, timeout=5) as r:  # noqa: S310 - loopback
                r.read()
        get()
        return ns_per_call(get, scrapes, repeats) / 1000
    finally:
        server.shutdown()
        server.server_close()


def measure(module: ModuleType, make: Callable[[], Reg], args: argparse.Namespace) -> dict[str, float]:
    """The hot calls, the render and the HTTP scrape of one implementation."""
    reg = make()
    populate(reg)
    r = {"inc": ns_per_call(lambda: reg.inc("copies", status="FILLED"), args.calls, args.repeats),
         "observe": ns_per_call(lambda: reg.observe("copy_overhead_seconds", 0.8), args.calls, args.repeats),
         "observe_l": ns_per_call(lambda: reg.observe("cycle_seconds", 0.4, daemon="executor"),
                                  args.calls, args.repeats)}
    fresh = make()
    populate(fresh)
    r["samples"] = sample_count(fresh.render())
    r["render"] = ns_per_call(fresh.render, max(args.scrapes, 1000), args.repeats) / 1000
    r["scrape"] = scrape_us(module, fresh, args.scrapes, args.repeats)
    return r


def main() -> None:
    """Print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=200_000)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--scrapes", type=int, default=300)
    ap.add_argument("--old-rev", default=None)
    args = ap.parse_args()

    from infra import metrics as new

    rows: list[list[str]] = []
    impls: list[tuple[str, ModuleType, Callable[[], Reg]]] = [
        ("prometheus-client", new, lambda: new.Registry(standard_collectors=False))]
    old = old_module(args.old_rev)
    if old is not None:
        impls.insert(0, ("hand-written", old, old.Registry))
    else:
        print("old module not found in git: new numbers only")

    results = {label: measure(module, make, args) for label, module, make in impls}

    std = new.Registry(standard_collectors=True)
    populate(std)
    std_samples = sample_count(std.render())
    std_render = ns_per_call(std.render, max(args.scrapes, 1000), args.repeats) / 1000
    std_scrape = scrape_us(new, std, args.scrapes, args.repeats)
    raw = new.Registry(standard_collectors=False)._metrics["copies"]
    assert isinstance(raw, Counter)
    uncached = ns_per_call(lambda: raw.labels(status="FILLED").inc(), args.calls, args.repeats)

    def row(what: str, key: str, unit: str) -> None:
        rows.append([what, *(f"{results[label][key]:,.0f} {unit}".rstrip() for label, _, _ in impls)])

    row("inc(copies, status=…)", "inc", "ns")
    row("observe(copy_overhead_seconds)", "observe", "ns")
    row("observe(cycle_seconds, daemon=…)", "observe_l", "ns")
    row("samples in the exposition", "samples", "")
    row("render()", "render", "µs")
    row("HTTP scrape, loopback", "scrape", "µs")
    header = ["", *(label for label, _, _ in impls)]
    widths = [max(len(str(x[i])) for x in [header, *rows]) for i in range(len(header))]
    for line in [header, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)))
    print(f"prometheus-client, uncached labels(status=…).inc(): {uncached:,.0f} ns")
    print(f"prometheus-client with process/platform/gc collectors: {std_samples} samples, "
          f"render {std_render:,.0f} µs, HTTP scrape {std_scrape:,.0f} µs")


if __name__ == "__main__":
    main()
