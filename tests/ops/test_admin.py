"""The admin CLI: success paths, one-line exit-2 errors that write nothing, no key on disk."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select, text

from models import Base, Follow, Follower, FollowStatus
from ops.cli import cli
from tests.support.dbfixtures import Database
from tests.support.keys import TEST_ADDRESS, TEST_ADDRESS_2, TEST_KEY, TEST_KEY_2
from tests.support.paths import ROOT

REPO = ROOT
TRADER = "0x7c3db723f1d4d8cb9c550095203b686cb11e5c6b"
TRADER_2 = "0x00000000000000000000000000000000000000aa"
PROXY = "0x365f0CA36Ae1f641E02fE3B7743673da42A13A70"


@pytest.fixture
def env(database: Database, fernet_key: str, monkeypatch: pytest.MonkeyPatch) -> Database:
    """Point the CLI at the test database with a throwaway encryption key and no .env."""
    monkeypatch.setenv("DATABASE_URL", database.url)
    monkeypatch.setenv("ENCRYPTION_KEY", fernet_key)
    monkeypatch.setenv("PMCT_ENV_FILE", "/nonexistent/.env")
    for var in ("EXECUTION_MODE", "LOG_LEVEL", "LOG_FORMAT"):
        monkeypatch.delenv(var, raising=False)
    return database


def run(*args: str, input: str | None = None) -> Result:
    """Invoke the admin CLI in-process."""
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def counts(db: Database) -> dict[str, int]:
    """Row count of every table."""
    with db.engine.connect() as conn:
        return {t.name: conn.execute(text(f'SELECT COUNT(*) FROM "{t.name}"')).scalar_one()
                for t in Base.metadata.sorted_tables}


def add_alice(**extra: str) -> Result:
    args = ["add-follower", "--name", "Alice", "--email", "alice@example.com",
            "--private-key", TEST_KEY]
    for k, v in extra.items():
        args += [f"--{k.replace('_', '-')}", v]
    return run(*args)


def test_add_follower_then_follow_then_list(env: Database) -> None:
    """The seed README walkthrough works and lists show the result as table and JSON."""
    r = add_alice()
    assert r.exit_code == 0, r.output
    assert TEST_ADDRESS in r.stdout
    r = run("add-follow", "--wallet", TEST_ADDRESS.lower(), "--follow", TRADER.upper().replace("0X", "0x"),
            "--copy-pct", "10", "--max-trade", "50")
    assert r.exit_code == 0, r.output
    r = run("list-followers", "--json")
    rows = json.loads(r.stdout)
    assert [(x["wallet"], x["signature_type"], x["tier"], x["status"]) for x in rows] == [
        (TEST_ADDRESS, "eoa", "pro", "active")]
    assert "Alice" in run("list-followers").stdout
    follows = json.loads(run("list-follows", "--json").stdout)
    assert [(x["follower"], x["trader"], x["copy_pct"], x["max_trade_usd"]) for x in follows] == [
        (TEST_ADDRESS, TRADER, "10", "50")]
    assert TRADER in run("list-follows").stdout
    stats = json.loads(run("stats", "--json").stdout)
    assert stats["followers"] == 1 and stats["follows_active"] == 1 and stats["traders"] == 1


def test_private_key_from_stdin_and_prompt(env: Database) -> None:
    """`--private-key -` reads stdin; no flag asks with a hidden prompt; the key is not echoed."""
    r = run("add-follower", "--name", "A", "--email", "a@x.io", "--private-key", "-",
            input=TEST_KEY + "\n")
    assert r.exit_code == 0, r.output
    r = run("add-follower", "--name", "B", "--email", "b@x.io", "--signature-type", "proxy",
            "--funder", PROXY, input=TEST_KEY_2 + "\n")
    assert r.exit_code == 0, r.output
    assert TEST_KEY_2[2:] not in r.output
    with env.session() as s:
        b = s.scalar(select(Follower).where(Follower.name == "B"))
        assert b is not None
        assert (b.signer_address, b.funder_address, b.signature_type) == (TEST_ADDRESS_2, PROXY, 1)


def test_no_trace_of_the_private_key_in_any_table(env: Database) -> None:
    """After add-follower, no table holds the key in any spelling."""
    assert add_alice().exit_code == 0
    hexkey = TEST_KEY[2:]
    needles = {hexkey, hexkey.upper()}
    with env.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            for row in conn.execute(table.select()):
                for value in row:
                    blob = value.hex() if isinstance(value, bytes) else str(value)
                    assert not any(n in blob or n in blob.lower() for n in needles), table.name
    with env.session() as s:
        f = s.scalar(select(Follower))
        assert f is not None and f.encrypted_private_key.startswith("gAAAA")


def test_pause_resume_remove(env: Database) -> None:
    """pause/resume a follower or a single follow; remove-follow keeps history."""
    add_alice()
    run("add-follow", "--wallet", TEST_ADDRESS, "--follow", TRADER, "--copy-pct", "5", "--max-trade", "20")
    r = run("pause", "--wallet", TEST_ADDRESS, "--follow", TRADER)
    assert r.exit_code == 0, r.output
    with env.session() as s:
        assert s.scalar(select(Follow.status)) == FollowStatus.PAUSED
    assert run("resume", "--wallet", TEST_ADDRESS, "--follow", TRADER).exit_code == 0
    assert run("pause", "--wallet", TEST_ADDRESS).exit_code == 0
    with env.session() as s:
        assert s.scalar(select(Follower.status)).value == "paused"  # type: ignore[union-attr]
        assert s.scalar(select(Follow.status)) == FollowStatus.ACTIVE
    assert run("resume", "--wallet", TEST_ADDRESS).exit_code == 0
    assert run("remove-follow", "--wallet", TEST_ADDRESS, "--follow", TRADER).exit_code == 0
    assert json.loads(run("list-follows", "--json").stdout) == []
    assert len(json.loads(run("list-follows", "--all", "--json").stdout)) == 1
    # re-following after a removal reuses the row with a fresh start
    r = run("add-follow", "--wallet", TEST_ADDRESS, "--follow", TRADER, "--copy-pct", "7", "--max-trade", "9")
    assert r.exit_code == 0, r.output
    assert json.loads(run("list-follows", "--json").stdout)[0]["copy_pct"] == "7"


def test_rotate_keys_reencrypts_and_is_rerunnable(env: Database, fernet_key: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """After adding a new first key, rotate-keys moves every token to it; a re-run changes nothing."""
    from cryptography.fernet import Fernet

    from crypto import KeyRing
    add_alice()
    new = Fernet.generate_key().decode()
    monkeypatch.setenv("ENCRYPTION_KEY", f"{new},{fernet_key}")
    r = run("rotate-keys")
    assert r.exit_code == 0 and "rotated 1" in r.stdout
    assert "rotated 0" in run("rotate-keys").stdout
    with env.session() as s:
        token = s.scalar(select(Follower.encrypted_private_key))
    assert token is not None and KeyRing(new).decrypt(token).reveal() == TEST_KEY


def test_init_db_is_idempotent(env: Database) -> None:
    """init-db on an up-to-date database succeeds again."""
    assert run("init-db").exit_code == 0
    assert run("init-db").exit_code == 0


def test_gen_key_writes_env_file_without_printing(tmp_path: Path) -> None:
    """gen-key creates a mode-600 .env with a Fernet key it never prints; --rotate prepends."""
    env_file = tmp_path / ".env"
    r = run("gen-key", "--env-file", str(env_file))
    assert r.exit_code == 0
    key = env_file.read_text().strip().split("=", 1)[1]
    assert key not in r.output and oct(env_file.stat().st_mode)[-3:] == "600"
    r = run("gen-key", "--env-file", str(env_file))
    assert r.exit_code == 2 and "--rotate" in r.stderr
    assert run("gen-key", "--env-file", str(env_file), "--rotate").exit_code == 0
    keys = env_file.read_text().strip().split("=", 1)[1].split(",")
    assert len(keys) == 2 and keys[1] == key


INVALID = [
    ("missing --name", ["add-follower", "--email", "a@b.co", "--private-key", TEST_KEY]),
    ("bad email", ["add-follower", "--name", "A", "--email", "nope", "--private-key", TEST_KEY]),
    ("empty name", ["add-follower", "--name", "  ", "--email", "a@b.co", "--private-key", TEST_KEY]),
    ("short key", ["add-follower", "--name", "A", "--email", "a@b.co", "--private-key", "0x1234"]),
    ("non-hex key", ["add-follower", "--name", "A", "--email", "a@b.co", "--private-key", "0x" + "zz" * 32]),
    ("zero key", ["add-follower", "--name", "A", "--email", "a@b.co", "--private-key", "0x" + "0" * 64]),
    ("bad sig type", ["add-follower", "--name", "A", "--email", "a@b.co", "--private-key", TEST_KEY,
                      "--signature-type", "multisig"]),
    ("proxy without funder", ["add-follower", "--name", "A", "--email", "a@b.co", "--private-key",
                              TEST_KEY, "--signature-type", "proxy"]),
    ("eoa with other funder", ["add-follower", "--name", "A", "--email", "a@b.co", "--private-key",
                               TEST_KEY, "--funder", PROXY]),
    ("bad funder", ["add-follower", "--name", "A", "--email", "a@b.co", "--private-key", TEST_KEY,
                    "--signature-type", "safe", "--funder", "0x123"]),
    ("bad tier", ["add-follower", "--name", "A", "--email", "a@b.co", "--private-key", TEST_KEY,
                  "--tier", "gold"]),
    ("duplicate follower", ["add-follower", "--name", "Again", "--email", "a@b.co", "--private-key", TEST_KEY]),
    ("unknown follower", ["add-follow", "--wallet", TEST_ADDRESS_2, "--follow", TRADER_2,
                          "--copy-pct", "10", "--max-trade", "5"]),
    ("copy-pct 0", ["add-follow", "--wallet", TEST_ADDRESS, "--follow", TRADER_2, "--copy-pct", "0", "--max-trade", "5"]),
    ("copy-pct 101", ["add-follow", "--wallet", TEST_ADDRESS, "--follow", TRADER_2, "--copy-pct", "101", "--max-trade", "5"]),
    ("copy-pct text", ["add-follow", "--wallet", TEST_ADDRESS, "--follow", TRADER_2, "--copy-pct", "ten", "--max-trade", "5"]),
    ("copy-pct nan", ["add-follow", "--wallet", TEST_ADDRESS, "--follow", TRADER_2, "--copy-pct", "NaN", "--max-trade", "5"]),
    ("max-trade negative", ["add-follow", "--wallet", TEST_ADDRESS, "--follow", TRADER_2, "--copy-pct", "5", "--max-trade", "-5"]),
    ("bad trader address", ["add-follow", "--wallet", TEST_ADDRESS, "--follow", "trader", "--copy-pct", "5", "--max-trade", "5"]),
    ("duplicate follow", ["add-follow", "--wallet", TEST_ADDRESS, "--follow", TRADER, "--copy-pct", "5", "--max-trade", "5"]),
    ("self follow", ["add-follow", "--wallet", TEST_ADDRESS, "--follow", TEST_ADDRESS, "--copy-pct", "5", "--max-trade", "5"]),
    ("price band inverted", ["add-follow", "--wallet", TEST_ADDRESS, "--follow", TRADER_2, "--copy-pct", "5",
                             "--max-trade", "5", "--price-min", "0.8", "--price-max", "0.2"]),
    ("slippage > 1", ["add-follow", "--wallet", TEST_ADDRESS, "--follow", TRADER_2, "--copy-pct", "5",
                      "--max-trade", "5", "--max-slippage", "2"]),
    ("daily cap zero", ["add-follow", "--wallet", TEST_ADDRESS, "--follow", TRADER_2, "--copy-pct", "5",
                        "--max-trade", "5", "--daily-cap", "0"]),
    ("remove unknown follow", ["remove-follow", "--wallet", TEST_ADDRESS, "--follow", TRADER_2]),
    ("pause unknown wallet", ["pause", "--wallet", TEST_ADDRESS_2]),
    ("resume unknown follow", ["resume", "--wallet", TEST_ADDRESS, "--follow", TRADER_2]),
    ("list-follows bad wallet", ["list-follows", "--wallet", "nope"]),
    ("unknown command", ["frobnicate"]),
    ("unknown option", ["list-followers", "--colour"]),
]


@pytest.mark.parametrize(("case", "args"), INVALID, ids=[c for c, _ in INVALID])
def test_invalid_invocations_exit_2_with_one_line_and_write_nothing(env: Database, case: str,
                                                                     args: list[str]) -> None:
    """Each bad invocation: exit 2, one 'error:' line on stderr, no traceback, no row changed."""
    assert add_alice().exit_code == 0
    assert run("add-follow", "--wallet", TEST_ADDRESS, "--follow", TRADER, "--copy-pct", "10",
               "--max-trade", "50").exit_code == 0
    before = counts(env)
    r = run(*args)
    assert r.exit_code == 2, (case, r.output)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), (case, r.stderr)
    assert "Traceback" not in r.output
    assert TEST_KEY[2:] not in r.output
    assert counts(env) == before, case


def test_missing_encryption_key_is_exit_2(env: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """add-follower without ENCRYPTION_KEY: exit 2 telling how to make one, nothing written."""
    monkeypatch.delenv("ENCRYPTION_KEY")
    before = counts(env)
    r = add_alice()
    assert r.exit_code == 2 and "gen-key" in r.stderr
    assert counts(env) == before


def test_bad_setting_is_exit_2(env: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """An invalid environment variable stops any command with exit 2 naming it."""
    monkeypatch.setenv("EXECUTION_MODE", "yolo")
    r = run("list-followers")
    assert r.exit_code == 2 and "EXECUTION_MODE" in r.stderr


def test_help_does_not_import_heavy_modules() -> None:
    """`admin --help` loads neither SQLAlchemy, eth_account nor httpx (fast start-up)."""
    code = (
        "import sys, runpy\n"
        "sys.argv = ['admin', '--help']\n"
        "try:\n    runpy.run_path('admin', run_name='__main__')\n"
        "except SystemExit as e:\n    assert e.code in (0, None), e.code\n"
        "heavy = {'sqlalchemy', 'eth_account', 'httpx', 'cryptography'} & set(sys.modules)\n"
        "print('HEAVY', sorted(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         check=True, timeout=60)
    assert "HEAVY []" in out.stdout, out.stdout + out.stderr
    assert "add-follower" in out.stdout
