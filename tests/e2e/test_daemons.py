"""Both daemons as real processes (the shared rig): sd_notify READY/WATCHDOG/STOPPING, .env
permissions, exit codes."""

from __future__ import annotations

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

from tests.support.dbfixtures import Database
from tests.support.paths import ROOT
from tests.support.rig import Rig, free_port

pytestmark = pytest.mark.e2e


# both fill sources (the chain through the simulator's node) and quick wakes
DAEMON = {"FILL_SOURCES": "chain,data_api", "WATCHER_POLL_INTERVAL": "0.2", "EXECUTOR_POLL_INTERVAL": "0.2"}


@pytest.fixture
def rig(sqlite_database: Database, make_rig: Callable[..., Rig]) -> Rig:
    """The daemons' rig: the simulator and a migrated SQLite file; the default (paper) mode."""
    return make_rig(sqlite_database, mode="paper")


@pytest.fixture
def daemon_env(rig: Rig) -> dict[str, str]:
    """Environment for a daemon against the simulator (its chain node too) and the SQLite file."""
    return rig.env(POLYGON_WS=rig.sim.ws_url, **DAEMON)


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
def test_sd_notify_ready_watchdog_stopping(tmp_path: Path, rig: Rig, script: str) -> None:
    """Under a notify socket: READY=1 after start-up, WATCHDOG=1 after cycles, STOPPING=1 on SIGTERM."""
    sock_path = str(tmp_path / "notify.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(sock_path)
    listener.settimeout(0.2)
    port = free_port()
    proc = rig.start(script, POLYGON_WS=rig.sim.ws_url, NOTIFY_SOCKET=sock_path, METRICS_PORT=str(port),
                     FILL_SOURCES=DAEMON["FILL_SOURCES"], WATCHER_POLL_INTERVAL=DAEMON["WATCHER_POLL_INTERVAL"],
                     EXECUTOR_POLL_INTERVAL=DAEMON["EXECUTOR_POLL_INTERVAL"])
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
