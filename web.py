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
from typing import Any

log = logging.getLogger("pmct.web")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """--host / --port override WEB_HOST / WEB_PORT."""
    parser = argparse.ArgumentParser(prog="web.py", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=None, help="listen address (default: WEB_HOST)")
    parser.add_argument("--port", type=int, default=None, help="TCP port (default: WEB_PORT)")
    return parser.parse_args(argv)


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


def main(argv: list[str] | None = None) -> int:
    """Entry point: settings (exit 2 when invalid), schema check, then serve."""
    args = parse_args(argv)
    from infra.daemon import install_early_signal_handlers

    # uvicorn restores these handlers after its graceful shutdown and re-raises the signal it
    # caught; with them in place that re-raise is harmless and the exit code stays 0.
    install_early_signal_handlers()
    from infra.config import ConfigError, load_settings
    from infra.logs import configure_logging
    from infra.startup import check_env_file_permissions, env_file_path

    try:
        check_env_file_permissions(env_file_path())
        settings = load_settings()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    host = args.host or settings.web_host
    port = args.port if args.port is not None else settings.web_port
    if not 0 < port < 65536:
        print(f"error: --port must be 1-65535, got {port}", file=sys.stderr)
        return 2
    from infra.db import make_engine, make_sessionmaker
    from infra.migrate import current_revision, head_revision

    if current_revision(settings.database_url) != head_revision():
        print("error: the database is not migrated; run `./admin init-db`", file=sys.stderr)
        return 1
    from dataclasses import replace

    from webapp.app import create_app

    settings = replace(settings, web_host=host, web_port=port)  # --host decides Secure cookies too
    engine = make_engine(settings.database_url)
    app = create_app(settings, make_sessionmaker(engine))
    log.info("web starting: %s", settings.redacted())
    try:
        return asyncio.run(serve(app, host, port))
    finally:
        engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
