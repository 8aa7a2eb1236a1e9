"""The loop both daemons share: start-up, cycles, throttling, signals, systemd notifications.

Invariant: SIGTERM/SIGINT only set a stop event; running code is never interrupted. Cycles
check `stop.is_set()` between safe steps, so a copy order is never left half-submitted.
systemd: READY=1 after start-up, WATCHDOG=1 only after a completed cycle, STOPPING=1 on exit.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from infra.errors import DatabaseNotMigrated

if TYPE_CHECKING:
    from infra.config import Settings

log = logging.getLogger("pmct.daemon")


class SystemdNotifier:
    """sd_notify over $NOTIFY_SOCKET (a no-op when not run by systemd)."""

    def __init__(self, address: str | None = None) -> None:
        self.address = address if address is not None else os.environ.get("NOTIFY_SOCKET")

    def notify(self, state: str) -> bool:
        """Send one state line; returns False when there is no socket or sending failed."""
        if not self.address:
            return False
        addr = self.address
        if addr.startswith("@"):
            addr = "\0" + addr[1:]
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.connect(addr)
                sock.sendall(state.encode())
            return True
        except OSError as exc:
            log.warning("sd_notify failed: %s", exc)
            return False

    def ready(self, status: str = "") -> bool:
        """READY=1 (start-up finished)."""
        return self.notify("READY=1" + (f"\nSTATUS={status}" if status else ""))

    def watchdog(self) -> bool:
        """WATCHDOG=1 (a cycle completed)."""
        return self.notify("WATCHDOG=1")

    def stopping(self) -> bool:
        """STOPPING=1 (clean shutdown started)."""
        return self.notify("STOPPING=1")

    def status(self, text: str) -> bool:
        """STATUS=<text> (shown by systemctl status)."""
        return self.notify(f"STATUS={text}")


@dataclass
class CycleStats:
    """What one cycle did, for the log line and the heartbeat."""

    counts: dict[str, int] = field(default_factory=dict)
    elapsed_ms: int = 0

    def summary(self) -> str:
        """`k=v` pairs for the per-cycle log line."""
        parts = [f"{k}={v}" for k, v in self.counts.items()]
        return " ".join(parts + [f"cycle_ms={self.elapsed_ms}"])


_early_signal: list[signal.Signals] = []


def install_early_signal_handlers() -> None:
    """From process start until the loop runs, remember SIGTERM/SIGINT instead of dying."""
    def remember(signum: int, _frame: object) -> None:
        _early_signal.append(signal.Signals(signum))

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, remember)


def install_signal_handlers(stop: asyncio.Event) -> None:
    """SIGTERM and SIGINT set `stop` (nothing is raised inside running code)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _on_signal, stop, sig)
    if _early_signal:
        _on_signal(stop, _early_signal[0])


def _on_signal(stop: asyncio.Event, sig: signal.Signals) -> None:
    log.info("received %s: stopping after the current step", sig.name)
    stop.set()


async def run_loop(
    name: str,
    cycle: Callable[[asyncio.Event], Awaitable[CycleStats]],
    *,
    interval: float,
    stop: asyncio.Event,
    notifier: SystemdNotifier,
    startup: Callable[[asyncio.Event], Awaitable[None]] | None = None,
    wait_for_work: Callable[[float, asyncio.Event], Awaitable[object]] | None = None,
    on_cycle: Callable[[CycleStats], None] | None = None,
    once: bool = False,
) -> int:
    """Run start-up, then cycles every `interval` s until `stop`; returns the exit code.

    With `once`, one cycle runs and its failure gives exit code 1. In the long-running form a
    failing cycle is logged and retried after the interval (no WATCHDOG for it, so systemd
    restarts a daemon that keeps failing).
    """
    if startup is not None:
        await startup(stop)
    notifier.ready(f"{name} running")
    exit_code = 0
    try:
        while not stop.is_set():
            started = time.monotonic()
            try:
                stats = await cycle(stop)
            except Exception:
                log.exception("%s cycle failed", name)
                if once:
                    exit_code = 1
                    break
            else:
                stats.elapsed_ms = int((time.monotonic() - started) * 1000)
                log.info("%s cycle: %s", name, stats.summary())
                if on_cycle is not None:
                    on_cycle(stats)
                notifier.watchdog()
            if once:
                break
            remaining = max(0.0, interval - (time.monotonic() - started))
            if wait_for_work is not None:
                await wait_for_work(remaining, stop)
            else:
                await _sleep_or_stop(remaining, stop)
    finally:
        notifier.stopping()
    log.info("%s stopped", name)
    return exit_code


async def _sleep_or_stop(seconds: float, stop: asyncio.Event) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        pass



def daemon_main(argv: list[str] | None, *, prog: str, description: str,
                add_arguments: Callable[[argparse.ArgumentParser], None],
                run: Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]],
                logger: logging.Logger) -> int:
    """The start-up every PMCT program shares, then `run(args, settings)` in an event loop.

    Signals are caught from the first instruction (a SIGTERM during start-up is remembered);
    flags, the `.env` file's permissions and the settings are checked before anything else;
    logging is configured with secret masking. Any error ends the program with one `error:`
    line on stderr and the exit code the error tree gives (2 for bad input, 1 otherwise).
    """
    from infra.config import load_settings
    from infra.logs import configure_logging, report_fatal
    from infra.startup import check_env_file_permissions, env_file_path

    install_early_signal_handlers()
    parser = argparse.ArgumentParser(prog=prog, description=description)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        check_env_file_permissions(env_file_path())
        settings = load_settings()
        configure_logging(settings.log_level, settings.log_format)
        return asyncio.run(run(args, settings))
    except Exception as exc:  # noqa: BLE001 - the program's last line of defence
        return report_fatal(exc, logger)


def require_migrated(database_url: str) -> None:
    """Raise DatabaseNotMigrated unless the schema is at the newest migration."""
    from infra.migrate import current_revision, head_revision

    if current_revision(database_url) != head_revision():
        raise DatabaseNotMigrated("the database is not migrated; run `./admin init-db`")
