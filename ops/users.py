"""Dashboard / HTTP API users: argon2 password hashes, bearer tokens, login lockout.

Invariants:
- a password exists only as an argon2id hash (argon2-cffi's PasswordHasher); it is never
  stored, logged or returned in clear;
- an API token is shown once, when it is created; only its SHA-256 digest is stored (the token
  is 256 random bits, so a fast digest is as strong as a slow one and a lookup is one index hit);
- a follower user is bound to exactly one follower: every view and action of it is limited to
  that follower's wallet (the checks live in webapp.auth; the binding is here);
- after MAX_FAILED_LOGINS wrong passwords in a row an account is locked for LOCKOUT; a locked
  account is refused without looking at the password.
Callers own the transaction (validation errors raise `InputError` before anything is written).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select
from sqlalchemy.orm import Session

from infra.db import utcnow
from infra.errors import InputError
from models import ApiToken, Follower, UserRole, WebUser
from ops.accounts import find_follower

USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{2,63}$")
MIN_PASSWORD = 12
MAX_PASSWORD = 1024
MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
TOKEN_PREFIX = "pmct_"  # noqa: S105 - a public prefix, not a secret

_hasher = PasswordHasher()
# Verified against unknown usernames so a login takes the same time whether the user exists.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    """An argon2id hash of `password` (salted, parameters embedded)."""
    return _hasher.hash(password)


def password_matches(password_hash: str, password: str) -> bool:
    """True when `password` matches the argon2 hash (False on any malformed hash)."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def token_digest(token: str) -> str:
    """Hex SHA-256 of a bearer token: what the database stores and looks up."""
    return hashlib.sha256(token.encode()).hexdigest()


def validate_username(raw: str) -> str:
    """The username, stripped; InputError unless 3-64 of letters, digits and `_.@-`."""
    name = raw.strip()
    if not USERNAME_RE.match(name):
        raise InputError("--username must be 3-64 characters: letters, digits and _ . @ - "
                         "(starting with a letter or digit)")
    return name


def validate_password(password: str) -> str:
    """The password (a trailing newline from stdin removed); InputError if too short/long."""
    pw = password.rstrip("\r\n")
    if len(pw) < MIN_PASSWORD:
        raise InputError(f"the password must have at least {MIN_PASSWORD} characters")
    if len(pw) > MAX_PASSWORD:
        raise InputError(f"the password must have at most {MAX_PASSWORD} characters")
    return pw


def as_role(raw: UserRole | str) -> UserRole:
    """A UserRole from 'admin' / 'follower'; InputError otherwise."""
    if isinstance(raw, UserRole):
        return raw
    try:
        return UserRole(str(raw).strip().lower())
    except ValueError:
        raise InputError(f"--role must be admin or follower, got {raw!r}") from None


def find_user(session: Session, username: str) -> WebUser:
    """The user with this username; InputError when there is none."""
    user = session.scalar(select(WebUser).where(WebUser.username == username.strip()))
    if user is None:
        raise InputError(f"no user {username.strip()!r}")
    return user


def add_user(session: Session, *, username: str, role: UserRole | str, password: str,
             wallet: str | None = None) -> WebUser:
    """Validate and store a user; a follower user needs the wallet of an existing follower."""
    name = validate_username(username)
    kind = as_role(role)
    pw = validate_password(password)
    follower: Follower | None = None
    if kind is UserRole.FOLLOWER:
        if wallet is None:
            raise InputError("--wallet is required for a follower user")
        follower = find_follower(session, wallet)
    elif wallet is not None:
        raise InputError("--wallet is only for follower users (an admin sees every wallet)")
    if session.scalar(select(WebUser.id).where(WebUser.username == name)) is not None:
        raise InputError(f"a user named {name!r} already exists")
    user = WebUser(username=name, password_hash=hash_password(pw), role=kind,
                   follower_id=follower.id if follower else None, failed_logins=0,
                   password_changed_at=utcnow())
    session.add(user)
    session.flush()
    return user


def create_api_token(session: Session, username: str) -> str:
    """A new bearer token for the user; returns it (the only time it exists in clear)."""
    user = find_user(session, username)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, token_hash=token_digest(token),
                         prefix=token[: len(TOKEN_PREFIX) + 6], created_at=utcnow()))
    session.flush()
    return token


def user_for_token(session: Session, token: str, now: datetime | None = None) -> WebUser | None:
    """The user a bearer token belongs to (None if unknown or revoked); records its last use."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == token_digest(token)))
    if row is None or row.revoked_at is not None:
        return None
    current = now or utcnow()
    if row.last_used_at is None or current - row.last_used_at > timedelta(minutes=1):
        row.last_used_at = current  # at most one write per token and minute
    return row.user


class LoginResult(Enum):
    """How a login attempt ended."""

    OK = "ok"
    BAD_CREDENTIALS = "bad_credentials"
    LOCKED = "locked"


@dataclass(frozen=True)
class LoginOutcome:
    """A login attempt's result; `user` only when OK, `locked_until` only when LOCKED."""

    result: LoginResult
    user: WebUser | None = None
    locked_until: datetime | None = None


def check_login(session: Session, username: str, password: str,
                now: datetime | None = None) -> LoginOutcome:
    """Verify a login; counts failures and locks the account after MAX_FAILED_LOGINS in a row.

    The caller commits (the failure count must be stored even when the login fails).
    """
    current = now or utcnow()
    user = session.scalar(select(WebUser).where(WebUser.username == username.strip()))
    if user is None:
        password_matches(_DUMMY_HASH, password)  # same work as for a real user
        return LoginOutcome(LoginResult.BAD_CREDENTIALS)
    if user.locked_until is not None and user.locked_until > current:
        return LoginOutcome(LoginResult.LOCKED, locked_until=user.locked_until)
    if not password_matches(user.password_hash, password):
        user.failed_logins = (user.failed_logins or 0) + 1
        if user.failed_logins >= MAX_FAILED_LOGINS:
            user.locked_until = current + LOCKOUT
            user.failed_logins = 0
            return LoginOutcome(LoginResult.LOCKED, locked_until=user.locked_until)
        return LoginOutcome(LoginResult.BAD_CREDENTIALS)
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = current
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return LoginOutcome(LoginResult.OK, user=user)


def session_stamp(user: WebUser) -> str:
    """A value kept in the session cookie that changes when the password changes (so a new
    password ends every older session)."""
    return hashlib.sha256(
        f"{user.id}:{user.password_changed_at.isoformat()}".encode()).hexdigest()[:16]


def user_row(user: WebUser) -> dict[str, object]:
    """A user as a JSON-safe dict without any secret."""
    return {
        "username": user.username,
        "role": user.role.value,
        "wallet": user.follower.funder_address if user.follower else None,
        "created_at": user.created_at.isoformat(timespec="seconds"),
        "last_login_at": (user.last_login_at.isoformat(timespec="seconds")
                          if user.last_login_at else None),
    }
