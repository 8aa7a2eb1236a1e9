"""Who is asking, and which wallets they may see and act on (pages and API alike).

Invariants:
- a request is authenticated by `Authorization: Bearer <token>` (API tokens, stored hashed)
  or by the signed session cookie (the browser); anything else is anonymous (401 / login);
- a session is valid only while its user exists and its password has not changed since login;
- a follower user resolves every `wallet` to its own follower or gets 403 (another follower's
  wallet, even an unknown one, is refused the same way, so wallets cannot be probed); an admin
  may name any wallet and must name one to act;
- a write authenticated by the session cookie needs the session's CSRF token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from infra.errors import InputError, PMCTError
from models import Follower, UserRole, WebUser
from ops.accounts import find_follower, normalize_address
from ops.users import session_stamp, user_for_token
from webapp.security import CSRF_HEADER, csrf_valid

SESSION_USER = "uid"
SESSION_STAMP = "stamp"


class Unauthorized(PMCTError):
    """No valid credentials (HTTP 401; pages redirect to the login form)."""


class Forbidden(PMCTError):
    """Authenticated, but not allowed to see or do this (HTTP 403)."""


class CsrfError(Forbidden):
    """A cookie-authenticated write without the session's CSRF token (HTTP 403)."""


@dataclass(frozen=True)
class Principal:
    """An authenticated user: who, with which role, bound to which follower, and how."""

    user_id: int
    username: str
    role: UserRole
    follower_id: int | None
    via: str  # "token" | "session"

    @property
    def is_admin(self) -> bool:
        """True for admin users."""
        return self.role is UserRole.ADMIN

    @classmethod
    def of(cls, user: WebUser, via: str) -> Principal:
        """A principal for a loaded user."""
        return cls(user.id, user.username, user.role, user.follower_id, via)


def bearer_token(headers: Any) -> str | None:
    """The token of an `Authorization: Bearer …` header, None without one."""
    value = headers.get("authorization")
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("malformed Authorization header (expected `Bearer <token>`)")
    return token.strip()


def principal_from_token(session: Session, token: str) -> Principal:
    """The principal of a bearer token; Unauthorized when it is unknown or revoked."""
    user = user_for_token(session, token)
    if user is None:
        raise Unauthorized("invalid or revoked API token")
    return Principal.of(user, "token")


def principal_from_session(session: Session, cookie: dict[str, Any]) -> Principal | None:
    """The principal of a browser session, or None when not logged in (or no longer valid)."""
    uid = cookie.get(SESSION_USER)
    if not isinstance(uid, int):
        return None
    user = session.get(WebUser, uid)
    if user is None or cookie.get(SESSION_STAMP) != session_stamp(user):
        cookie.pop(SESSION_USER, None)
        cookie.pop(SESSION_STAMP, None)
        return None
    return Principal.of(user, "session")


def authenticate(session: Session, headers: Any, cookie: dict[str, Any], *,
                 write: bool, csrf: str | None = None) -> Principal:
    """The principal of a request: its bearer token, else its session cookie (401 without
    either). A write authenticated by the cookie needs the session's CSRF token (`csrf`, else
    the X-CSRF-Token header), 403 otherwise."""
    token = bearer_token(headers)
    if token is not None:
        return principal_from_token(session, token)
    principal = principal_from_session(session, cookie)
    if principal is None:
        raise Unauthorized("authentication required: `Authorization: Bearer <token>` or log in")
    if write and not csrf_valid(cookie, csrf if csrf is not None else headers.get(CSRF_HEADER)):
        raise CsrfError("CSRF token missing or wrong; reload the page and try again")
    return principal


def own_follower(session: Session, principal: Principal) -> Follower:
    """The follower a follower user is bound to."""
    assert principal.follower_id is not None
    follower = session.get(Follower, principal.follower_id)
    if follower is None:  # the follower row is gone: nothing to show
        raise Forbidden("this user's follower no longer exists")
    return follower


def scoped_follower(session: Session, principal: Principal, wallet: str | None, *,
                    required: bool, what: str = "wallet") -> Follower | None:
    """The follower a request is about.

    Follower users: their own (403 when `wallet` names any other). Admins: the follower of
    `wallet` (400 when unknown), None without one unless `required` (then 400).
    """
    if not principal.is_admin:
        own = own_follower(session, principal)
        if wallet is not None and wallet.strip():
            addr = normalize_address(wallet, what)
            if addr not in (own.funder_address.lower(), own.signer_address.lower()):
                raise Forbidden("this wallet belongs to another follower")
        return own
    if wallet is None or not wallet.strip():
        if required:
            raise InputError(f"{what} is required (the follower's wallet)")
        return None
    normalize_address(wallet, what)
    return find_follower(session, wallet)


def require_admin(principal: Principal) -> None:
    """403 unless the principal is an admin."""
    if not principal.is_admin:
        raise Forbidden("this page is for admins")
