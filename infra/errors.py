"""The application's one error tree. Every error PMCT raises on purpose is a `PMCTError`.

    PMCTError
     ├── InputError            bad input from a person or a file: CLI flags, HTTP bodies,
     │    │                    settings; one line, exit code 2 / HTTP 400, nothing written
     │    ├── ConfigError          a setting is missing or invalid (infra.config)
     │    │    └── InsecureEnvFileError   `.env` readable by group or others (infra.startup)
     │    └── TierLimitError       the follower's tier does not allow this (copying.tiers)
     ├── CryptoError           a secret cannot be encrypted, decrypted or verified (crypto)
     │    └── MissingKeyError      ENCRYPTION_KEY is not configured
     ├── VenueError            talking to Polymarket or Polygon went wrong (wire.errors:
     │                         transport, HTTP status, unparseable answer)
     └── IllegalTransition     a copy order status move the state machine forbids: a bug,
                               never bad input (copying.states)

Messages are one line and never hold a secret. Outcomes that are part of normal trading
(a venue rejecting an order, a copy skipped by sizing) are values, not exceptions.
"""

from __future__ import annotations


class PMCTError(Exception):
    """Root of every error PMCT raises on purpose."""


class InputError(PMCTError, ValueError):
    """Invalid input from an admin, a follower, an HTTP body or a setting: exit 2 / HTTP 400."""


class ConfigError(InputError):
    """A configuration value is missing or invalid; the message is one line and secret-free."""


class CryptoError(PMCTError):
    """A secret could not be encrypted, decrypted or verified (the message never holds it)."""


class MissingKeyError(CryptoError):
    """ENCRYPTION_KEY is not configured but a secret must be stored or used."""


class VenueError(PMCTError):
    """Talking to an outside service (Polymarket, Polygon) failed; `wire.errors` refines it."""


class IllegalTransition(PMCTError, RuntimeError):
    """A copy order status move that the state machine does not allow (a bug, never bad input)."""
