#!/usr/bin/env python3
"""PMCT dashboard and HTTP API: `python web.py` serves them on WEB_HOST:WEB_PORT (127.0.0.1:8080).

The application lives in the `webapp` package (FastAPI); this is its process: settings, the
database check, uvicorn, and systemd notifications (READY=1 once the socket listens, WATCHDOG=1
while the event loop runs, STOPPING=1 on the way out). SIGTERM/SIGINT finish the requests in
flight, then exit 0. Exit 2: bad settings; 1: any other failure to start.
Put a TLS reverse proxy in front of it for anything but loopback (README).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from typing import TYPE_CHECKING, Any

from infra.errors import InputError

if TYPE_CHECKING:
    from infra.config import Settings

log = logging.getLogger("pmct.web")


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    """--host / --port override WEB_HOST / WEB_PORT."""
    parser.add_argument("--host", default=None, help="listen address (default: WEB_HOST)")
    parser.add_argument("--port", type=int, default=None, help="TCP port (default: WEB_PORT)")


def watchdog_interval() -> float | None:
    """Half of systemd's WatchdogSec (from WATCHDOG_USEC), None when there is no watchdog."""
    raw = os.environ.get("WATCHDOG_USEC", "")
    try:
        usec = int(raw)
    except ValueError:
        return None
    return usec / 2_000_000 if usec > 0 else None


async def serve(app: Any, host: str, port: int) -> int:
    """Run uvicorn until a signal stops it; sd_notify READY once listening."""
    import uvicorn

    from infra import daemon
    from infra.daemon import SystemdNotifier

    notifier = SystemdNotifier()
    config = uvicorn.Config(app, host=host, port=port, proxy_headers=True,
                            forwarded_allow_ips="127.0.0.1", server_header=False,
                            log_config=None, access_log=True, timeout_graceful_shutdown=20)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())

    async def announce() -> None:
        while not server.started and not task.done():
            await asyncio.sleep(0.05)
        if daemon._early_signal:  # stopped while starting: uvicorn did not see that signal
            server.should_exit = True
        if server.started:
            notifier.ready(f"dashboard on http://{host}:{port}")
            log.info("dashboard and API listening on http://%s:%d", host, port)
            print(f"WEB_READY http://{host}:{port}", flush=True)
            every = watchdog_interval()
            while every and not task.done():
                notifier.watchdog()
                await asyncio.sleep(every)

    pinger = asyncio.create_task(announce())
    try:
        await task
    finally:
        pinger.cancel()
        notifier.stopping()
    return 0 if server.started else 1


async def _amain(args: argparse.Namespace, settings: Settings) -> int:
    """Check the schema, build the app on the settings (--host/--port applied) and serve it."""
    from dataclasses import replace

    from infra.daemon import require_migrated
    from infra.db import make_engine, make_sessionmaker
    from webapp.app import create_app

    host = args.host or settings.web_host
    port = args.port if args.port is not None else settings.web_port
    if not 0 < port < 65536:
        raise InputError(f"--port must be 1-65535, got {port}")
    require_migrated(settings.database_url)
    settings = replace(settings, web_host=host, web_port=port)  # --host decides Secure cookies too
    engine = make_engine(settings.database_url)
    app = create_app(settings, make_sessionmaker(engine))
    log.info("web starting: %s", settings.redacted())
    try:
        return await serve(app, host, port)
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    """Entry point (`infra.daemon.daemon_main`): exit 2 on bad flags or settings, 1 on failure.

    uvicorn restores the early signal handlers after its graceful shutdown and re-raises the
    signal it caught; with them in place that re-raise is harmless and the exit code stays 0.
    """
    from infra.daemon import daemon_main

    return daemon_main(argv, prog="web.py", description=(__doc__ or "").splitlines()[0],
                       add_arguments=_add_arguments, run=_amain, logger=log)


if __name__ == "__main__":
    sys.exit(main())
