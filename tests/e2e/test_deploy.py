"""systemd units (keys, hardening, shard template mapping, `systemd-analyze verify` when present),
the MemoryDenyWriteExecute claim, and the .env permission check both daemons run at start."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from infra.config import ConfigError
from infra.startup import InsecureEnvFileError, check_env_file_permissions
from tests.support.paths import ROOT

REPO = ROOT
DEPLOY = REPO / "deploy"
UNITS = ["pmct-watcher.service", "pmct-executor.service", "pmct-watcher@.service",
         "pmct-executor@.service", "pmct-web.service", "pmct-notifier.service"]


def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """systemd unit syntax: [Section] / Key=Value, repeated keys kept in order, # comments."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"{path.name}: key outside a section: {line}"
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: not Key=Value: {line}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def one(unit: dict[str, dict[str, list[str]]], section: str, key: str) -> str:
    """The single value of a key."""
    values = unit[section].get(key)
    assert values is not None and len(values) == 1, (section, key, values)
    return values[0]


REQUIRED_SERVICE = {
    "Type": "notify", "NotifyAccess": "main", "Restart": "on-failure", "User": "pmct",
    "WorkingDirectory": "/opt/pmct",
    "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ReadWritePaths": "/var/lib/pmct",
    "ProtectHome": "yes", "PrivateTmp": "yes", "PrivateDevices": "yes",
    "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6", "CapabilityBoundingSet": "",
    "UMask": "0077", "LimitCORE": "0", "ProtectKernelTunables": "yes",
    "ProtectControlGroups": "yes", "RestrictNamespaces": "yes", "LockPersonality": "yes",
    "MemoryDenyWriteExecute": "yes", "SystemCallArchitectures": "native",
    "RestartPreventExitStatus": "2", "KillMode": "mixed",
}


@pytest.mark.parametrize("name", UNITS)
def test_unit_has_the_required_keys(name: str) -> None:
    """Each unit: notify + watchdog, restart limits, unprivileged user, env file, hardening."""
    unit = parse_unit(DEPLOY / name)
    assert set(unit) == {"Unit", "Service", "Install"}
    for key, expected in REQUIRED_SERVICE.items():
        assert one(unit, "Service", key) == expected, (name, key)
    env_files = unit["Service"]["EnvironmentFile"]  # the root-only settings, then optional overrides
    assert env_files[0] == "/etc/pmct/pmct.env" and all(f.startswith("-/etc/pmct/") for f in env_files[1:])
    assert 60 <= int(one(unit, "Service", "WatchdogSec")) <= 600
    assert int(one(unit, "Unit", "StartLimitBurst")) >= 3
    assert int(one(unit, "Unit", "StartLimitIntervalSec")) >= 60
    assert one(unit, "Install", "WantedBy") == "multi-user.target"
    assert unit["Service"]["SystemCallFilter"] == ["@system-service", "~@privileged"]
    exec_start = one(unit, "Service", "ExecStart").split()
    assert exec_start[0] == "/opt/pmct/.venv/bin/python"
    script = Path(exec_start[1]).name
    assert (REPO / script).is_file() and script in ("watcher.py", "executor.py", "web.py", "notifier.py")


def test_shard_template_maps_instance_to_shard() -> None:
    """pmct-watcher@0-4 runs `watcher.py --shard 0/4`: %I unescapes '-' to '/'."""
    unit = parse_unit(DEPLOY / "pmct-watcher@.service")
    args = one(unit, "Service", "ExecStart").split()
    assert args[-2:] == ["--shard", "%I"]
    assert one(unit, "Unit", "Conflicts") == "pmct-watcher.service"
    instance = "0-4"
    unescaped = instance.replace("-", "/")  # systemd path unescaping of a plain instance
    if shutil.which("systemd-escape"):
        out = subprocess.run(["systemd-escape", "--unescape", instance], capture_output=True,
                             text=True, check=True)
        assert out.stdout.strip() == unescaped
        assert subprocess.run(["systemd-escape", "3/4"], capture_output=True, text=True,
                              check=True).stdout.strip() == "3-4"
    from watcher import Shard

    assert Shard.parse(unescaped) == Shard(0, 4)


def test_executor_template_names_each_instance() -> None:
    """pmct-executor@2 runs `executor.py --instance 2` (its own heartbeat row) with an optional
    per-instance settings file, and the executor accepts that flag."""
    unit = parse_unit(DEPLOY / "pmct-executor@.service")
    assert one(unit, "Service", "ExecStart").split()[-2:] == ["--instance", "%i"]
    assert unit["Service"]["EnvironmentFile"] == ["/etc/pmct/pmct.env", "-/etc/pmct/pmct-executor-%i.env"]
    import argparse

    from executor import _add_arguments, daemon_name

    def parse_args(argv: list[str]) -> argparse.Namespace:
        parser = argparse.ArgumentParser()
        _add_arguments(parser)
        return parser.parse_args(argv)

    assert daemon_name(parse_args(["--instance", "2"])) == "executor-2"
    assert daemon_name(parse_args([])) == "executor"
    with pytest.raises(SystemExit):
        parse_args(["--instance", "../x"])


def test_systemd_analyze_verify_accepts_the_units(tmp_path: Path) -> None:
    """`systemd-analyze verify` (paths pointed at this checkout) reports no problem."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not installed")
    names = []
    for name in UNITS:
        text = (DEPLOY / name).read_text()
        text = text.replace("/opt/pmct/.venv/bin/python", sys.executable)
        text = text.replace("WorkingDirectory=/opt/pmct", f"WorkingDirectory={REPO}")
        text = text.replace("EnvironmentFile=/etc/pmct/", "EnvironmentFile=-/etc/pmct/")
        target = tmp_path / (name.replace("@.", "@0-4.") if "@." in name else name)
        target.write_text(text)
        names.append(str(target))
    out = subprocess.run(["systemd-analyze", "verify", *names], capture_output=True, text=True,
                         timeout=60)
    problems = [ln for ln in (out.stdout + out.stderr).splitlines() if ln.strip()]
    assert out.returncode == 0 and problems == [], problems


MDWE_PROBE = """
import ctypes, sys
if ctypes.CDLL(None, use_errno=True).prctl(65, 1, 0, 0, 0) != 0:  # PR_SET_MDWE
    print("UNSUPPORTED"); sys.exit(0)
import mmap
try:
    mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    print("NOT ENFORCED"); sys.exit(0)
except OSError:
    pass
from cryptography.fernet import Fernet
k = Fernet.generate_key(); assert Fernet(k).decrypt(Fernet(k).encrypt(b"x")) == b"x"
import coincurve, sqlite3, httpx, h2, psycopg2, sqlalchemy
from eth_account import Account
from eth_account.messages import encode_defunct
acct = Account.from_key("0x" + "11" * 32)
assert acct.sign_message(encode_defunct(text="pmct")).signature
sqlite3.connect(":memory:").execute("select 1")
import watcher, executor, notifier, polymarket_client
import notify.sender, notify.commands
from wire import signing, auth
import web, fastapi, uvicorn, jinja2, multipart, itsdangerous
from ops.users import hash_password, password_matches
assert password_matches(hash_password("pmct password"), "pmct password")
from infra.config import Settings
from infra.db import make_engine, make_sessionmaker
from webapp.app import create_app
from fastapi.testclient import TestClient
app = create_app(Settings(web_session_secret="s" * 40), make_sessionmaker(make_engine("sqlite://")),
                 prices=lambda t: None, leaderboard=object(), market_data=False)
with TestClient(app) as c:
    assert c.get("/login").status_code == 200
print("OK")
"""


def test_memory_deny_write_execute_is_safe_for_the_daemons_imports() -> None:
    """With W^X enforced (PR_SET_MDWE, what MemoryDenyWriteExecute does), crypto/signing/db work,
    and so does the web process (FastAPI, uvicorn, Jinja2, argon2 hashing, a page served)."""
    out = subprocess.run([sys.executable, "-c", MDWE_PROBE], cwd=REPO, capture_output=True,
                         text=True, timeout=120)
    if out.stdout.strip() in ("UNSUPPORTED", "NOT ENFORCED"):
        pytest.skip("kernel without PR_SET_MDWE")
    assert out.returncode == 0 and out.stdout.strip() == "OK", out.stdout + out.stderr


# --- startup_checks -------------------------------------------------------------------------

@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_private_env_file_passes(tmp_path: Path, mode: int) -> None:
    """An owner-only .env passes; a missing one passes too (settings from the environment)."""
    env = tmp_path / ".env"
    env.write_text("ENCRYPTION_KEY=x\n")
    env.chmod(mode)
    check_env_file_permissions(env)
    check_env_file_permissions(tmp_path / "missing.env")


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o620, 0o660, 0o666])
def test_env_file_accessible_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    """Group/other bits → InsecureEnvFileError (a ConfigError: exit 2) telling to chmod 600."""
    env = tmp_path / ".env"
    env.write_text("ENCRYPTION_KEY=x\n")
    env.chmod(mode)
    with pytest.raises(InsecureEnvFileError, match="chmod 600") as info:
        check_env_file_permissions(str(env))
    assert isinstance(info.value, ConfigError)
    assert f"{mode:04o}" in str(info.value) and "ENCRYPTION_KEY=x" not in str(info.value)


def test_env_path_that_is_a_directory_is_refused(tmp_path: Path) -> None:
    """A directory where the env file should be is an error, not silently skipped."""
    with pytest.raises(InsecureEnvFileError, match="not a regular file"):
        check_env_file_permissions(tmp_path)
