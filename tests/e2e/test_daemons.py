"""Both daemons as real processes: sd_notify READY/WATCHDOG/STOPPING, .env permissions, exit codes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from infra.migrate import upgrade_to_head
from sim import Simulator
from tests.e2e.test_watcher_e2e import quiet_scenario
from tests.support.paths import ROOT

pytestmark = pytest.mark.e2e


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def daemon_env(tmp_path: Path, simulator_factory: Callable[..., Simulator], fernet_key: str) -> dict[str, str]:
    """Environment for a daemon against the simulator and a migrated SQLite file."""
    sim: Simulator = simulator_factory(quiet_scenario())
    url = f"sqlite:///{tmp_path / 'd.db'}"
    upgrade_to_head(url)
    return {**os.environ, "DATABASE_URL": url, "ENCRYPTION_KEY": fernet_key,
            "PMCT_ENV_FILE": str(tmp_path / "none.env"), "POLYMARKET_DATA_API_URL": sim.data_url,
            "POLYMARKET_GAMMA_API_URL": sim.gamma_url, "POLYMARKET_CLOB_API_URL": sim.clob_url,
            "POLYGON_RPC": sim.rpc_url, "POLYGON_WS": sim.ws_url,
            "WATCHER_POLL_INTERVAL": "0.2", "EXECUTOR_POLL_INTERVAL": "0.2"}


def assert_daemon_metrics(body: str, daemon: str) -> None:
    """The daemon's /metrics parses, and its cycles show in the histogram and the timestamp gauge."""
    families = {f.name: f for f in text_string_to_metric_families(body)}
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in families.values() for s in f.samples}
    assert families["pmct_cycle_seconds"].type == "histogram"
    assert families["pmct_last_cycle_timestamp_seconds"].type == "gauge"
    assert families["pmct_rate_limit_waits"].type == "counter"
    assert samples[("pmct_cycle_seconds_count", (("daemon", daemon),))] >= 2  # two WATCHDOG cycles
    last = samples[("pmct_last_cycle_timestamp_seconds", (("daemon", daemon),))]
    assert time.time() - 60 < last <= time.time()
    assert samples[("pmct_kill_switch", ())] == 0
    assert samples[("process_resident_memory_bytes", ())] > 0


@pytest.mark.parametrize("script", ["watcher.py", "executor.py"])
def test_sd_notify_ready_watchdog_stopping(tmp_path: Path, daemon_env: dict[str, str], script: str) -> None:
    """Under a notify socket: READY=1 after start-up, WATCHDOG=1 after cycles, STOPPING=1 on SIGTERM."""
    sock_path = str(tmp_path / "notify.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(sock_path)
    listener.settimeout(0.2)
    port = free_port()
    proc = subprocess.Popen([sys.executable, script], cwd=ROOT,  # noqa: S603
                            env={**daemon_env, "NOTIFY_SOCKET": sock_path, "METRICS_PORT": str(port)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and seen.count("WATCHDOG=1") < 2:
            try:
                seen.extend(listener.recv(4096).decode().splitlines())
            except TimeoutError:
                pass
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()  # noqa: S310
        assert_daemon_metrics(body, script.removesuffix(".py"))
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
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
    assert "READY=1" in seen and seen.count("WATCHDOG=1") >= 2 and "STOPPING=1" in seen, seen
    assert seen.index("READY=1") < seen.index("WATCHDOG=1") < seen.index("STOPPING=1")


@pytest.mark.parametrize("script", ["watcher.py", "executor.py"])
def test_daemons_refuse_a_group_readable_env_file(tmp_path: Path, daemon_env: dict[str, str], script: str) -> None:
    """A .env readable by group/others stops the daemon at once with exit 2 and one clear line."""
    env_file = tmp_path / ".env"
    env_file.write_text("LOG_LEVEL=INFO\n")
    env_file.chmod(0o640)
    done = subprocess.run([sys.executable, script, "--once"], cwd=ROOT,  # noqa: S603
                          env={**daemon_env, "PMCT_ENV_FILE": str(env_file)},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "chmod 600" in done.stderr and len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("script", ["watcher.py", "executor.py"])
def test_bad_setting_is_exit_2(daemon_env: dict[str, str], script: str) -> None:
    """An invalid variable stops the daemon with exit 2 naming it."""
    done = subprocess.run([sys.executable, script, "--once"], cwd=ROOT,  # noqa: S603
                          env={**daemon_env, "EXECUTOR_POLL_INTERVAL": "-1", "WATCHER_POLL_INTERVAL": "-1"},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "POLL_INTERVAL" in done.stderr


def test_bad_shard_flag_is_exit_2(daemon_env: dict[str, str]) -> None:
    """`--shard 3/2` is refused with exit 2."""
    done = subprocess.run([sys.executable, "watcher.py", "--once", "--shard", "3/2"], cwd=ROOT,  # noqa: S603
                          env=daemon_env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--shard" in done.stderr


@pytest.mark.parametrize("script", ["watcher.py", "executor.py"])
def test_once_on_an_unmigrated_database_fails_clearly(tmp_path: Path, daemon_env: dict[str, str],
                                                      script: str) -> None:
    """A database that was never migrated: exit 1 telling to run `admin init-db`."""
    done = subprocess.run([sys.executable, script, "--once"], cwd=ROOT,  # noqa: S603
                          env={**daemon_env, "DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}"},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "init-db" in done.stderr
