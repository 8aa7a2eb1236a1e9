"""`python web.py` as a real process: sd_notify READY/WATCHDOG/STOPPING, pages served on the
port, SIGTERM exits 0, exit 2 on bad settings, 1 on an unmigrated database."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from infra.migrate import upgrade_to_head
from tests.support.paths import ROOT
from tests.support.rig import free_port


def _env(tmp_path: Path, *, migrate: bool = True, extra: dict[str, str] | None = None
         ) -> dict[str, str]:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    if migrate:
        upgrade_to_head(url)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WEB_", "NOTIFY_", "WATCHDOG_"))}
    return {**env, "DATABASE_URL": url, "PMCT_ENV_FILE": str(tmp_path / "none.env"),
            "POLYMARKET_DATA_API_URL": "http://127.0.0.1:9", "POLYMARKET_CLOB_API_URL":
            "http://127.0.0.1:9", **(extra or {})}


def test_web_process_notifies_systemd_serves_and_stops_cleanly(tmp_path: Path) -> None:
    """READY=1 once listening, WATCHDOG=1 at half WatchdogSec, /healthz and /login answer,
    SIGTERM → STOPPING=1 and exit 0."""
    sock_path = str(tmp_path / "notify.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(sock_path)
    listener.settimeout(0.2)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "web.py", "--port", str(port)], cwd=ROOT,  # noqa: S603
                            env=_env(tmp_path, extra={"NOTIFY_SOCKET": sock_path,
                                                         "WATCHDOG_USEC": "1000000"}),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and seen.count("WATCHDOG=1") < 2:
            try:
                seen.extend(listener.recv(4096).decode().splitlines())
            except TimeoutError:
                pass
        base = f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(base + "/healthz", timeout=5) as r:  # noqa: S310
            assert r.status == 200
        with urllib.request.urlopen(base + "/login", timeout=5) as r:  # noqa: S310
            assert "Log in" in r.read().decode() and "default-src 'none'" in r.headers["content-security-policy"]
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(base + "/api/copy-trading/status", timeout=5)  # noqa: S310
        assert info.value.code == 401
        info.value.close()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        try:
            while True:
                seen.extend(listener.recv(4096).decode().splitlines())
        except TimeoutError:
            pass
    finally:
        if proc.poll() is None:
            proc.kill()
        listener.close()
    assert proc.returncode == 0, err
    assert f"WEB_READY http://127.0.0.1:{port}" in out
    assert "READY=1" in seen and seen.count("WATCHDOG=1") >= 2 and "STOPPING=1" in seen, seen
    assert seen.index("READY=1") < seen.index("WATCHDOG=1") < seen.index("STOPPING=1")


@pytest.mark.parametrize(("extra", "message"), [
    ({"WEB_PORT": "99999"}, "WEB_PORT"), ({"WEB_HOST": "a b"}, "WEB_HOST"),
    ({"WEB_SESSION_SECRET": "short"}, "WEB_SESSION_SECRET"),
    ({"WEB_COOKIE_SECURE": "maybe"}, "WEB_COOKIE_SECURE")])
def test_bad_web_settings_exit_2_with_one_line(tmp_path: Path, extra: dict[str, str],
                                               message: str) -> None:
    """A bad WEB_* setting: exit 2, one `error:` line naming it, the value of a secret not shown."""
    done = subprocess.run([sys.executable, "web.py"], cwd=ROOT, env=_env(tmp_path, extra=extra),  # noqa: S603
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]


def test_unmigrated_database_exits_1(tmp_path: Path) -> None:
    """No schema: exit 1 telling to run `admin init-db`, nothing served."""
    done = subprocess.run([sys.executable, "web.py", "--port", str(free_port())], cwd=ROOT,  # noqa: S603
                          env=_env(tmp_path, migrate=False), capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1 and "admin init-db" in done.stderr
