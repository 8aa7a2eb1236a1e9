"""The offline demo end to end, at DEBUG: copies happen, everything stops cleanly, no secret leaks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from tests.support.paths import ROOT

pytestmark = pytest.mark.e2e
DEMO_KEY_HEX = "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"


def test_demo_copies_trades_and_logs_no_secret(tmp_path: Path) -> None:
    """`demo.py` exits 0, prints the copies and the report; stdout and DEBUG logs hold no secret."""
    fernet = Fernet.generate_key().decode()
    bot_token = "555000111:AAdemoTokenUsedOnlyByThisTest_xyz0123"
    out = tmp_path / "demo"
    env = {**os.environ, "ENCRYPTION_KEY": fernet, "TELEGRAM_BOT_TOKEN": bot_token}
    done = subprocess.run([sys.executable, "demo.py", "--log-level", "DEBUG", "--out", str(out)],  # noqa: S603
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "FILLED" in done.stdout and "demo finished" in done.stdout
    assert "copying 0x" in done.stdout  # the report's attribution rows
    # the notifications the local Telegram and Discord fakes received are shown
    assert "telegram chat 424242" in done.stdout and "Copy filled: BUY" in done.stdout
    assert "Status" in done.stdout and "Kill switch OFF: everything" in done.stdout
    assert "discord webhook" in done.stdout
    assert "dashboard: http://127.0.0.1:" in done.stdout and "login: demo / " in done.stdout
    assert "chain (block " in done.stdout  # the watcher learned the fills from the chain
    logs = {p.name: p.read_text(errors="replace") for p in out.glob("*.log")}
    assert {"watcher.log", "executor.log", "notifier.log", "simulator.log", "web.log"} <= set(logs)
    assert "DEBUG" in logs["executor.log"]
    # the follower's L2 credentials, as stored (encrypted) in the demo database
    from sqlalchemy import create_engine, text

    from crypto import KeyRing
    engine = create_engine(f"sqlite:///{out / 'pmct.db'}")
    with engine.connect() as conn:
        token = conn.execute(text("SELECT encrypted_api_creds FROM followers")).scalar_one()
        hook = conn.execute(text("SELECT encrypted_webhook_url FROM notify_destinations "
                                 "WHERE encrypted_webhook_url IS NOT NULL")).scalar_one()
    engine.dispose()
    creds = KeyRing(fernet).decrypt_api_creds(token)
    webhook_url = KeyRing(fernet).decrypt(hook).reveal()
    secrets = [DEMO_KEY_HEX, DEMO_KEY_HEX.upper(), fernet, creds.secret, creds.passphrase,
               bot_token, bot_token.split(":")[1], webhook_url, webhook_url.rsplit("/", 1)[1]]
    for name, body in [("stdout", done.stdout), ("stderr", done.stderr), *logs.items()]:
        for secret in secrets:
            assert secret not in body, f"a secret leaked into {name}"


def test_demo_serve_keeps_the_dashboard_up_until_interrupted(tmp_path: Path) -> None:
    """`demo.py --serve`: after the demo the dashboard stays up and its printed login works;
    SIGINT stops the simulator, the daemons and the dashboard, exit 0."""
    import re
    import signal
    import time

    import httpx

    env = {**os.environ, "ENCRYPTION_KEY": Fernet.generate_key().decode()}
    proc = subprocess.Popen([sys.executable, "demo.py", "--serve", "--web-port", "0",  # noqa: S603
                             "--out", str(tmp_path / "demo")], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if "serving:" in line or (not line and proc.poll() is not None):
                break
        found = re.search(r"open (http://127\.0\.0\.1:\d+) and log in as demo / (\S+);",
                          "".join(lines))
        assert found, "".join(lines)[-3000:]
        url, password = found.groups()
        with httpx.Client(base_url=url, timeout=10, follow_redirects=True) as web:
            token = re.search(r'name="csrf_token" value="([^"]+)"', web.get("/login").text)
            assert token is not None
            r = web.post("/login", data={"csrf_token": token.group(1), "username": "demo",
                                         "password": password})
            assert r.status_code == 200 and "Active follows" in r.text, r.text[:500]
            orders = web.get("/orders")
            assert orders.status_code == 200 and "Pending orders" in orders.text
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, "".join(lines)[-2000:] + rest[-2000:]
    assert "stopping" in rest and "web exit 0" in rest and "demo finished" in rest, rest[-2000:]
