"""The application's one error tree. Every error PMCT raises on purpose is a `PMCTError`.

    PMCTError                                                          (infra.errors)
     ├── InputError              bad input from a person or a file: CLI flags, HTTP bodies,
     │    │                      settings. Also a ValueError. Exit 2 / HTTP 400, one line,
     │    │                      nothing written                       (infra.errors)
     │    ├── ConfigError            a setting is missing or invalid   (infra.errors)
     │    │    ├── InsecureEnvFileError  `.env` readable by group/others (infra.startup)
     │    │    └── MissingKeyError       ENCRYPTION_KEY is not set; also a CryptoError
     │    │                              (infra.errors)
     │    ├── TierLimitError         the follower's tier does not allow this (copying.tiers)
     │    └── InvalidPrivateKey      a private key that cannot be parsed  (wire.auth)
     ├── CryptoError             a secret cannot be encrypted, decrypted or verified
     │    │                      (infra.errors; raised by crypto)
     │    └── MissingKeyError        (above: it is both)
     ├── VenueError              talking to Polymarket or Polygon went wrong (infra.errors)
     │    ├── RpcError               a Polygon JSON-RPC call failed; .kind says how (wire.rpc)
     │    ├── LogDecodeError         an OrderFilled log not in the V2 layout (wire.chain)
     │    └── PolymarketError        the client's own tree              (wire.errors)
     │         ├── TransportError        no usable HTTP response
     │         ├── ApiError              an HTTP error status
     │         │    ├── RateLimitError       429
     │         │    └── RestrictedError      425 / 503 trading restrictions
     │         ├── ParseError            an answer that is not the documented shape
     │         └── HeartbeatRejected     the venue wants another heartbeat id (resent with it)
     ├── OrderError              an order cannot be built or signed as asked; the engine
     │    │                      skips that copy. Also a ValueError   (infra.errors)
     │    ├── OrderMathError         amounts, ticks, sizes               (wire.amounts)
     │    └── OrderSigningError      inconsistent order or wallet fields (wire.signing)
     ├── DatabaseNotMigrated     the schema is older than the code; run `admin init-db`
     │                           (infra.errors; raised by infra.daemon.require_migrated)
     └── IllegalTransition       a copy order status move the state machine forbids: a bug,
                                 never bad input. Also a RuntimeError   (copying.states)

Exit codes (the CLI's `_handle_exception` and both daemons' `main()`, via `exit_code_for`):
InputError and its subclasses 2; every other exception 1. Always one line on stderr,
`error: ...`, secrets masked (`infra.logs.mask_secrets`); the traceback goes to the log at DEBUG.

Outside the tree, on purpose:
- `copying.orders.SkipCopy` / `copying.context.RetryLater`: control flow inside the engine (this copy ends
  SKIPPED / give the claim back and retry next cycle), raised and caught inside copying/. They
  are outcomes of normal trading, not failures; as PMCTErrors an `except PMCTError` at an entry
  point would report them as errors.
- `copying.chain_source.ReorgInFlight` / `_Shrink`: control flow inside the chain source (a
  block hash changed mid-step: read again; a provider cap: split the query), raised and caught
  inside it.
- `sim/`: the simulator is a separate program with its own errors.
- builtin ValueError/TypeError for a caller breaking a function's contract (a bug, exit 1).

Messages are one line and never hold a secret. Outcomes that are part of normal trading
(a venue rejecting an order, a copy skipped by sizing) are values, not exceptions.
"""

from __future__ import annotations

EXIT_FAILURE = 1
EXIT_INPUT = 2


class PMCTError(Exception):
    """Root of every error PMCT raises on purpose."""


class InputError(PMCTError, ValueError):
    """Invalid input from an admin, a follower, an HTTP body or a setting: exit 2 / HTTP 400."""


class ConfigError(InputError):
    """A configuration value is missing or invalid; the message is one line and secret-free."""


class CryptoError(PMCTError):
    """A secret could not be encrypted, decrypted or verified (the message never holds it)."""


class MissingKeyError(CryptoError, ConfigError):
    """ENCRYPTION_KEY is not configured but a secret must be stored or used (a setting: exit 2)."""


class VenueError(PMCTError):
    """Talking to an outside service (Polymarket, Polygon) failed; `wire.errors` refines it."""


class OrderError(PMCTError, ValueError):
    """An order cannot be expressed or signed as asked (`wire.amounts`, `wire.signing`)."""


class DatabaseNotMigrated(PMCTError):
    """The database schema is not at the newest migration (a program refuses to start)."""


class IllegalTransition(PMCTError, RuntimeError):
    """A copy order status move that the state machine does not allow (a bug, never bad input)."""


def exit_code_for(exc: BaseException) -> int:
    """The process exit code for an error: 2 for bad input (InputError), 1 for anything else."""
    return EXIT_INPUT if isinstance(exc, InputError) else EXIT_FAILURE


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an error's message, or its class name when it has none."""
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip()
    return type(exc).__name__
