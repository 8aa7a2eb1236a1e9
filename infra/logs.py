"""Logging for daemons and the CLI: text or one JSON object per line, secrets always masked.

Invariant: every secret this process handles is registered here by hash (never as plaintext),
by `crypto` when it encrypts or decrypts one; `SecretMaskingFilter` (installed on the one root
handler) and `mask_secrets` (for one-line error messages) replace each of them, and any
`secret=...`-style value, with ***.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import sys
import threading
from datetime import UTC, datetime
from typing import IO

from infra.errors import PMCTError, exit_code_for, first_line

MASK = "***"

# --- the registry of secrets to mask (hashes only) -------------------------------------------

_seen_secret_hashes: set[str] = set()
_seen_lock = threading.Lock()
_CANDIDATE_RE = re.compile(r"(?:0x)?[0-9a-fA-F]{64}|[A-Za-z0-9_\-=+/]{16,}")
_KV_RE = re.compile(
    r"(?i)(private[_ ]?key|secret|passphrase|poly_signature|poly_passphrase|encryption_key)"
    r"(\s*[=:]\s*|\"\s*:\s*\")([^\s,\"'}]+)"
)

# Secrets that travel inside URLs and are masked by shape, seen or not: a Discord webhook's token
# (…/webhooks/<id>/<token>) and a Telegram bot token (<bot id>:<secret>, also inside
# https://api.telegram.org/bot<token>/sendMessage). The ids before them stay readable.
_SHAPED_SECRET_RES = (
    re.compile(r"(/webhooks/[0-9]+/)[A-Za-z0-9_.\-]+"),
    re.compile(r"(\b(?:bot)?[0-9]{3,20}:)[A-Za-z0-9_\-]{20,80}"),
)


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def register_secret(value: str) -> None:
    """Remember (by hash only) a secret this process has handled, so logs can mask it."""
    if len(value) < 8:
        return
    with _seen_lock:
        _seen_secret_hashes.add(_digest(value))
        if value.startswith("0x"):
            _seen_secret_hashes.add(_digest(value[2:]))
        else:
            _seen_secret_hashes.add(_digest("0x" + value))


def mask_secrets(text: str) -> str:
    """`text` with every known secret and every `secret=...`-style value replaced by ***."""
    for pattern in _SHAPED_SECRET_RES:
        text = pattern.sub(lambda m: m.group(1) + MASK, text)
    text = _KV_RE.sub(lambda m: m.group(1) + m.group(2) + MASK, text)
    if not _seen_secret_hashes:
        return text

    def repl(m: re.Match[str]) -> str:
        token = m.group(0)
        return MASK if _digest(token) in _seen_secret_hashes else token

    return _CANDIDATE_RE.sub(repl, text)


class SecretMaskingFilter(logging.Filter):
    """Logging filter that masks secrets in the formatted message and exception text."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's message with secrets masked; never drops a record."""
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string must not kill logging
            message = str(record.msg)
        record.msg = mask_secrets(message)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            record.exc_text = mask_secrets(
                logging.Formatter().formatException(record.exc_info)
            ) if not record.exc_text else mask_secrets(record.exc_text)
            del exc
        return True


# --- handlers ----------------------------------------------------------------------------------


class JsonFormatter(logging.Formatter):
    """One JSON object per line (journald-friendly)."""

    def format(self, record: logging.LogRecord) -> str:
        """Serialise the record with time, level, logger, message and extra `fields`."""
        out = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            out.update({k: v if isinstance(v, (int, float, bool, type(None))) else str(v)
                        for k, v in extra.items()})
        if record.exc_text:
            out["exc"] = record.exc_text
        elif record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def configure_logging(level: str = "INFO", fmt: str = "text", stream: IO[str] | None = None) -> logging.Handler:
    """Install one root handler with the secret-masking filter; returns the handler."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(SecretMaskingFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "hpack", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    return handler


# --- fatal errors at an entry point ------------------------------------------------------------

def error_line(message: str) -> str:
    """`error: <first line of message>` with secrets masked: what stderr gets on a failure."""
    text = message.strip()
    first = text.splitlines()[0].strip() if text else "failed"
    return f"error: {mask_secrets(first)}"


def failure_message(exc: BaseException) -> str:
    """One line for an error: its own message for a PMCT error, `unexpected failure: ...` else."""
    if isinstance(exc, PMCTError):
        return first_line(exc)
    return f"unexpected failure: {type(exc).__name__}: {first_line(exc)}"


def report_fatal(exc: BaseException, logger: logging.Logger, message: str | None = None) -> int:
    """Print one `error:` line on stderr, log the traceback at DEBUG; the tree's exit code.

    The line is `message` when given, else `failure_message(exc)`; the code is
    `infra.errors.exit_code_for(exc)` (2 for bad input, 1 otherwise). No traceback reaches
    stderr unless the log itself is at DEBUG.
    """
    logger.debug("fatal error", exc_info=exc)
    print(error_line(message if message is not None else failure_message(exc)), file=sys.stderr)
    return exit_code_for(exc)
