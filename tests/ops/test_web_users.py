"""`admin add-user` / `admin create-api-token` and the user logic behind them: argon2 hashes,
tokens stored as SHA-256 digests, one-line exit-2 errors that write nothing."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from infra.db import session_scope
from models import ApiToken, UserRole, WebUser
from ops.users import (
    LoginResult,
    check_login,
    password_matches,
    token_digest,
    user_for_token,
)
from tests.ops.test_admin import add_alice, counts, env, run  # noqa: F401 - fixture
from tests.support.dbfixtures import Database
from tests.support.keys import TEST_ADDRESS

PW = "a long enough password"


def test_add_user_stores_an_argon2_hash_and_binds_the_follower(env: Database) -> None:  # noqa: F811
    """Password from stdin (`--password -`) and from the hidden prompt (asked twice); only an
    argon2id hash is stored; a follower user is bound to its follower."""
    assert add_alice().exit_code == 0
    r = run("add-user", "--username", "ops", "--role", "admin", "--password", "-", input=PW + "\n")
    assert r.exit_code == 0 and "user ops added (admin)" in r.stdout, r.output
    r = run("add-user", "--username", "alice", "--role", "follower", "--wallet",
            TEST_ADDRESS.lower(), input=f"{PW}\n{PW}\n")
    assert r.exit_code == 0, r.output
    assert PW not in r.output and f"wallet {TEST_ADDRESS}" in r.stdout
    with env.session() as s:
        users = {u.username: u for u in s.scalars(select(WebUser))}
        assert users["ops"].role is UserRole.ADMIN and users["ops"].follower_id is None
        assert users["alice"].role is UserRole.FOLLOWER and users["alice"].follower is not None
        for u in users.values():
            assert u.password_hash.startswith("$argon2id$") and PW not in u.password_hash
            assert password_matches(u.password_hash, PW)
            assert not password_matches(u.password_hash, PW + "x")


def test_create_api_token_prints_it_once_and_stores_its_digest(env: Database) -> None:  # noqa: F811
    """The token goes to stdout once; the database holds its SHA-256 only; it authenticates."""
    run("add-user", "--username", "ops", "--role", "admin", "--password", "-", input=PW + "\n")
    r = run("create-api-token", "--username", "ops")
    assert r.exit_code == 0, r.output
    token = r.stdout.strip()
    assert token.startswith("pmct_") and len(token) > 40 and "shown once" in r.stderr
    with env.session() as s:
        row = s.scalars(select(ApiToken)).one()
        assert row.token_hash == hashlib.sha256(token.encode()).hexdigest() == token_digest(token)
        assert token not in (row.token_hash, row.prefix) and token.startswith(row.prefix)
        user = user_for_token(s, token)
        assert user is not None and user.username == "ops"
        assert user_for_token(s, token + "x") is None and user_for_token(s, "nope") is None
    second = run("create-api-token", "--username", "ops").stdout.strip()
    assert second != token


BAD = [
    ("short password", ["add-user", "--username", "ops", "--role", "admin", "--password", "-"],
     "short\n"),
    ("password on the command line", ["add-user", "--username", "ops", "--role", "admin",
                                      "--password", PW], None),
    ("bad role", ["add-user", "--username", "ops", "--role", "root", "--password", "-"], PW),
    ("bad username", ["add-user", "--username", "a b", "--role", "admin", "--password", "-"], PW),
    ("short username", ["add-user", "--username", "ab", "--role", "admin", "--password", "-"], PW),
    ("follower without wallet", ["add-user", "--username", "ops", "--role", "follower",
                                 "--password", "-"], PW),
    ("follower unknown wallet", ["add-user", "--username", "ops", "--role", "follower",
                                 "--wallet", "0x" + "e" * 40, "--password", "-"], PW),
    ("admin with wallet", ["add-user", "--username", "ops", "--role", "admin", "--wallet",
                           TEST_ADDRESS, "--password", "-"], PW),
    ("duplicate", ["add-user", "--username", "taken", "--role", "admin", "--password", "-"], PW),
    ("token unknown user", ["create-api-token", "--username", "ghost"], None),
    ("prompt mismatch", ["add-user", "--username", "ops", "--role", "admin"],
     f"{PW}\n{PW}x\n{PW}\n{PW}y\n{PW}\n{PW}z\n"),
]


@pytest.mark.parametrize(("case", "args", "stdin"), BAD, ids=[c for c, _, _ in BAD])
def test_bad_user_commands_exit_2_and_write_nothing(env: Database, case: str,  # noqa: F811
                                                    args: list[str], stdin: str | None) -> None:
    """Each: exit 2 (prompt mismatch: click gives up → 1), one error line, no row changed, the
    password never printed."""
    assert add_alice().exit_code == 0
    run("add-user", "--username", "taken", "--role", "admin", "--password", "-", input=PW + "\n")
    before = counts(env)
    r = run(*args, input=stdin if stdin is None or stdin.endswith("\n") else stdin + "\n")
    assert r.exit_code in (1, 2) if case == "prompt mismatch" else r.exit_code == 2, (case, r.output)
    assert r.stderr.strip().splitlines()[-1].startswith("error: "), (case, r.stderr)
    assert PW not in r.stderr and "Traceback" not in r.output
    assert counts(env) == before, case


def test_check_login_counts_failures_and_locks(database: Database) -> None:
    """Four misses leave it open; the fifth locks; a locked account refuses the right password."""
    from ops.users import MAX_FAILED_LOGINS, add_user

    with session_scope(database.factory) as s:
        add_user(s, username="ops", role="admin", password=PW)
    for i in range(1, MAX_FAILED_LOGINS):
        with session_scope(database.factory) as s:
            assert check_login(s, "ops", "nope nope nope").result is LoginResult.BAD_CREDENTIALS
            assert s.scalars(select(WebUser)).one().failed_logins == i
    with session_scope(database.factory) as s:
        out = check_login(s, "ops", "nope nope nope")
        assert out.result is LoginResult.LOCKED and out.locked_until is not None
    with session_scope(database.factory) as s:
        assert check_login(s, "ops", PW).result is LoginResult.LOCKED
        assert check_login(s, "ghost", PW).result is LoginResult.BAD_CREDENTIALS
