"""One frozen settings object, read from the process environment and `.env`, validated at start.

The environment wins over `.env`. A bad value raises `ConfigError` whose message names the
variable and what is wrong in one line (never the value of a secret); entry points turn it into
exit code 2. `Settings.redacted()` is the only form of the settings that may be logged.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from decimal import Decimal, InvalidOperation
from pathlib import Path
from urllib.parse import urlsplit

from infra.decimals import decimal_column_problem
from infra.errors import ConfigError as ConfigError  # re-exported: callers import it from here

SECRET_VARIABLES = frozenset({"ENCRYPTION_KEY", "WEB_SESSION_SECRET", "TELEGRAM_BOT_TOKEN",
                              "POLYMARKET_BUILDER_API_KEY", "POLYMARKET_BUILDER_SECRET",
                              "POLYMARKET_BUILDER_PASSPHRASE"})
_SECRET_FIELDS = frozenset({"web_session_secret", "telegram_bot_token", "builder_api_key",
                            "builder_secret", "builder_passphrase"})
FILL_SOURCE_NAMES = ("chain", "data_api")
AUTO_REDEEM_CHOICES = ("auto", "on", "off")
ZERO_BUILDER_CODE = "0x" + "00" * 32
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@dataclass(frozen=True)
class Settings:
    """Every PMCT setting (the README's names), typed and validated."""

    database_url: str = "sqlite:///pmct.db"
    encryption_key: str | None = None
    execution_mode: str = "paper"
    watcher_poll_interval: float = 10.0
    executor_poll_interval: float = 5.0
    max_copy_delay: float = 120.0
    data_api_url: str = "https://data-api.polymarket.com"
    gamma_api_url: str = "https://gamma-api.polymarket.com"
    clob_api_url: str = "https://clob.polymarket.com"
    chain_id: int = 137
    polygon_rpc: str = "https://polygon-rpc.com"
    polygon_ws: str | None = None
    fill_sources: tuple[str, ...] = FILL_SOURCE_NAMES
    chain_poll_interval: float = 2.0
    chain_wallet_chunk: int = 500
    chain_max_block_range: int = 1000
    chain_rpc_max_rps: float = 10.0
    chain_rpc_batch: int = 20
    chain_confirmations: int = 0
    chain_stale_seconds: float = 30.0
    chain_reorg_depth: int = 64
    data_api_slow_interval: float = 120.0
    fill_source_grace: float = 600.0
    log_level: str = "INFO"
    log_format: str = "text"
    position_snapshot_interval: float = 300.0
    order_manage_interval: float = 300.0
    watcher_overlap_seconds: int = 120
    claim_lease_seconds: float = 60.0
    paper_balance_usd: Decimal = Decimal("1000")
    default_max_slippage: Decimal = Decimal("0.05")
    metrics_port: int | None = None
    web_host: str = "127.0.0.1"
    web_port: int = 8080
    web_session_secret: str | None = None
    web_cookie_secure: str = "auto"

    @property
    def secure_cookies(self) -> bool:
        """Whether the dashboard's session cookie is `Secure` (auto: unless bound to loopback)."""
        if self.web_cookie_secure == "auto":
            return self.web_host not in ("127.0.0.1", "localhost", "::1")
        return self.web_cookie_secure == "true"

    @property
    def chain_enabled(self) -> bool:
        """True when the watcher reads fills from the chain (`FILL_SOURCES` has `chain`)."""
        return "chain" in self.fill_sources

    @property
    def data_api_enabled(self) -> bool:
        """True when the watcher polls the Data API (`FILL_SOURCES` has `data_api`)."""
        return "data_api" in self.fill_sources

    # notifications (notify/, notifier.py)
    telegram_bot_token: str | None = field(default=None, repr=False)
    telegram_api_url: str = "https://api.telegram.org"
    discord_api_url: str = "https://discord.com/api"
    telegram_poll_timeout: int = 25
    notify_poll_interval: float = 2.0
    notify_max_attempts: int = 8
    notify_lease_seconds: float = 120.0
    notify_skip_digest_seconds: float = 900.0
    notify_digest_hour: int = 0
    notify_retention_days: int = 30

    # copy fidelity: snapshots, resolution, redemption
    snapshot_exit_grace: float = 120.0
    resolution_check_interval: float = 300.0
    auto_redeem: str = "auto"
    relayer_url: str = "https://relayer-v2.polymarket.com"
    # builder attribution (docs/POLYMARKET.md §8.2): the code goes into every signed order; the
    # API key, secret and passphrase (secrets) let `admin stats` read the attributed volume and
    # the relayer redeem for Safe, proxy and deposit wallets
    builder_code: str = ZERO_BUILDER_CODE
    builder_api_key: str | None = None
    builder_secret: str | None = field(default=None, repr=False)
    builder_passphrase: str | None = field(default=None, repr=False)
    # requests to the venue one executor keeps in flight (a batch's POSTs, its reads, the passes)
    executor_post_concurrency: int = 32
    # open-order work: how often the executor looks for copies to cancel (kill switch, exits...),
    # how often each follower's fills are read, how old a follower's balance may get
    order_wake_interval: float = 1.0
    fill_refresh_interval: float = 2.0
    balance_refresh_interval: float = 60.0
    market_refresh_interval: float = 30.0
    clob_heartbeat: bool = False  # the venue's dead-man switch (docs/POLYMARKET.md §5.8); see README
    # data retention, in days (0 = keep forever)
    retention_snapshot_days: float = 7
    retention_event_days: float = 180
    retention_raw_days: float = 30
    retention_payload_days: float = 7
    # copy quality (README "Copy quality"): many followers of one fill share the book's depth
    # within their slippage limit pro rata; a follow whose copied edge stays negative over this
    # many closed trades is paused (0 = off); the resolution-date window of the per-follower cap
    crowding_control: bool = True
    auto_pause_trades: int = 0
    resolution_window_hours: int = 24

    @property
    def builder_credentials(self) -> tuple[str, str, str] | None:
        """(api key, secret, passphrase) of the builder account, or None when not all are set."""
        if self.builder_api_key and self.builder_secret and self.builder_passphrase:
            return self.builder_api_key, self.builder_secret, self.builder_passphrase
        return None

    @property
    def is_live(self) -> bool:
        """True only when real orders may be posted (`EXECUTION_MODE=live`)."""
        return self.execution_mode == "live"

    @property
    def redeems_automatically(self) -> bool:
        """Whether the executor redeems resolved winning positions itself (AUTO_REDEEM; auto = live)."""
        return self.auto_redeem == "on" or (self.auto_redeem == "auto" and self.is_live)

    @property
    def has_relayer_credentials(self) -> bool:
        """True when Polymarket's relayer can be used (all three builder credentials set)."""
        return bool(self.builder_api_key and self.builder_secret and self.builder_passphrase)

    def redacted(self) -> dict[str, object]:
        """The settings as a dict safe to log: secrets masked, database password hidden."""
        out: dict[str, object] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "encryption_key":
                value = None if value is None else f"***({len(value.split(','))} key(s))"
            elif f.name in _SECRET_FIELDS:
                value = None if value is None else "***"
            elif f.name == "database_url":
                value = _mask_url_password(str(value))
            elif f.name in ("polygon_rpc", "polygon_ws") and value:
                value = mask_url_path(str(value))
            elif isinstance(value, Decimal):
                value = str(value)
            out[f.name] = value
        return out


MAX_SECONDS = 7 * 86400  # no interval, delay, overlap or lease is longer than a week


def _shown(raw: str) -> str:
    return repr(raw if len(raw) <= 40 else raw[:40] + "...")


def _parse_float_in(name: str, raw: str, what: str, low: float, high: float, *,
                    low_included: bool, range_text: str) -> float:
    """A finite number in [low, high] (or (low, high]); one line naming `name` otherwise."""
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be {what}, got {_shown(raw)}") from None
    above = low <= value if low_included else low < value
    if not (math.isfinite(value) and above and value <= high):
        raise ConfigError(f"{name} must be {range_text}, got {_shown(raw)}")
    return value


def _parse_seconds(name: str, raw: str) -> float:
    """A number of seconds in (0, MAX_SECONDS]: finite, so timedelta and asyncio can use it."""
    return _parse_float_in(name, raw, "a number of seconds", 0, MAX_SECONDS, low_included=False,
                           range_text=f"a number of seconds in (0, {MAX_SECONDS}]")


def _parse_positive_int(name: str, raw: str, high: int | None = None) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {_shown(raw)}") from None
    if value <= 0 or (high is not None and value > high):
        bound = "positive" if high is None else f"in 1..{high}"
        raise ConfigError(f"{name} must be {bound}, got {_shown(raw)}")
    return value


def _parse_whole_seconds(name: str, raw: str) -> int:
    return _parse_positive_int(name, raw, MAX_SECONDS)


def _parse_port(name: str, raw: str) -> int | None:
    if raw.strip() == "":
        return None
    value = _parse_positive_int(name, raw)
    if value > 65535:
        raise ConfigError(f"{name} must be a TCP port (1-65535), got {raw!r}")
    return value


def _parse_port_required(name: str, raw: str) -> int:
    value = _parse_port(name, raw)
    if value is None:
        raise ConfigError(f"{name} must be a TCP port (1-65535), got {raw!r}")
    return value


def _parse_host(name: str, raw: str) -> str:
    text = raw.strip()
    if not text or any(c.isspace() for c in text) or "/" in text:
        raise ConfigError(f"{name} must be a host name or IP address, got {raw!r}")
    return text


def _parse_session_secret(name: str, raw: str) -> str | None:
    if raw.strip() == "":
        return None
    if len(raw.strip()) < 32:
        raise ConfigError(f"{name} must be at least 32 characters (e.g. `python -c "
                          "'import secrets; print(secrets.token_urlsafe(48))'`)")
    return raw.strip()


def _parse_decimal(name: str, raw: str, low: Decimal, high: Decimal | None) -> Decimal:
    """A Decimal in [low, high) (or >= low) that a DecimalType column holds exactly."""
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ConfigError(f"{name} must be a decimal number, got {_shown(raw)}") from None
    problem = decimal_column_problem(value)
    if problem is not None:
        raise ConfigError(f"{name} {problem}, got {_shown(raw)}")
    if value < low or (high is not None and value >= high):
        bound = f"in [{low}, {high})" if high is not None else f">= {low}"
        raise ConfigError(f"{name} must be {bound}, got {_shown(raw)}")
    return value


def _parse_optional_text(name: str, raw: str) -> str | None:
    return raw.strip() or None


def _parse_url(name: str, raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{name} must be an http(s) URL, got {raw!r}")
    return raw.rstrip("/")


def _parse_database_url(name: str, raw: str) -> str:
    scheme = raw.split("://", 1)[0] if "://" in raw else ""
    if not (scheme.startswith("sqlite") or scheme.startswith("postgresql")):
        raise ConfigError(f"{name} must be a sqlite:/// or postgresql:// URL")
    return raw


def _parse_retention_days(name: str, raw: str) -> float:
    """Days of retention: 0 (keep forever) or a finite number of days up to 36500."""
    return _parse_float_in(name, raw, "a number of days (0 = keep forever)", 0, 36500, low_included=True,
                           range_text="0 (keep forever) or a number of days up to 36500")


def _parse_builder_code(name: str, raw: str) -> str:
    value = raw.strip()
    if value == "":
        return ZERO_BUILDER_CODE
    if len(value) != 66 or not value.startswith("0x") or any(
            c not in "0123456789abcdefABCDEF" for c in value[2:]):
        raise ConfigError(f"{name} must be a bytes32 hex string (0x + 64 hex digits), got {raw!r}")
    return value.lower()


def _parse_secret(name: str, raw: str) -> str | None:
    value = raw.strip()
    return value or None


def _parse_switch(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("on", "true", "1", "yes"):
        return True
    if value in ("off", "false", "0", "no", ""):
        return False
    raise ConfigError(f"{name} must be on or off, got {raw!r}")


def _parse_encryption_key(name: str, raw: str) -> str | None:
    if raw.strip() == "":
        return None
    from cryptography.fernet import Fernet  # local: keeps `admin --help` fast

    keys = [k.strip() for k in raw.split(",")]
    for i, key in enumerate(keys, start=1):
        try:
            Fernet(key.encode())
        except (ValueError, TypeError):
            raise ConfigError(
                f"{name}: key #{i} is not a valid Fernet key (32 url-safe base64 bytes); "
                "generate one with `admin gen-key`"
            ) from None
    return ",".join(keys)


_BOT_TOKEN_RE = re.compile(r"^[0-9]{3,20}:[A-Za-z0-9_-]{20,80}$")


def _parse_bot_token(name: str, raw: str) -> str | None:
    if raw.strip() == "":
        return None
    if not _BOT_TOKEN_RE.match(raw.strip()):
        raise ConfigError(f"{name} is not a Telegram bot token (digits, ':', then the secret "
                          "part, as @BotFather gives it)")
    return raw.strip()


def _parse_int_range(name: str, raw: str, low: int, high: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {_shown(raw)}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {_shown(raw)}")
    return value


def _parse_choice(name: str, raw: str, choices: tuple[str, ...], upper: bool = False) -> str:
    value = raw.strip().upper() if upper else raw.strip().lower()
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return value


def _parse_ws_url(name: str, raw: str) -> str | None:
    if raw.strip() == "":
        return None
    parts = urlsplit(raw.strip())
    if parts.scheme not in ("ws", "wss") or not parts.netloc:
        raise ConfigError(f"{name} must be a ws:// or wss:// URL (or empty), got {mask_url_path(raw)!r}")
    return raw.strip()


def _parse_fill_sources(name: str, raw: str) -> tuple[str, ...]:
    items = [x.strip().lower() for x in raw.split(",") if x.strip()]
    if not items:
        raise ConfigError(f"{name} must name at least one of {', '.join(FILL_SOURCE_NAMES)}")
    unknown = [x for x in items if x not in FILL_SOURCE_NAMES]
    if unknown:
        raise ConfigError(f"{name}: unknown source(s) {', '.join(unknown)}; "
                          f"use {', '.join(FILL_SOURCE_NAMES)}")
    return tuple(x for x in FILL_SOURCE_NAMES if x in items)


def _parse_nonnegative_int(name: str, raw: str, high: int = 10_000) -> int:
    return _parse_int_range(name, raw, 0, high)


def _parse_rate(name: str, raw: str) -> float:
    """Requests per second: a finite number in (0, 100000]."""
    return _parse_float_in(name, raw, "a number of requests per second", 0, 100_000, low_included=False,
                           range_text="in (0, 100000] requests per second")


def mask_url_path(url: str) -> str:
    """A URL fit for logs: scheme and host only (RPC providers put API keys in the path)."""
    parts = urlsplit(url)
    if not parts.netloc:
        return "***"
    host = parts.netloc.rsplit("@", 1)[-1]
    tail = "/…" if parts.path.strip("/") or parts.query else ""
    return f"{parts.scheme}://{host}{tail}"


def _mask_url_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@", 1)
    return url


def read_env_file(path: Path) -> dict[str, str]:
    """Values from a `.env` file (python-dotenv syntax); empty when the file does not exist."""
    if not path.is_file():
        return {}
    from dotenv import dotenv_values

    try:
        values = dotenv_values(path, encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not a UTF-8 text file") from None
    except OSError as exc:
        raise ConfigError(f"{path} cannot be read ({exc.strerror or type(exc).__name__})") from None
    return {k: v for k, v in values.items() if v is not None}


def load_settings(environ: Mapping[str, str] | None = None, env_file: Path | None = None) -> Settings:
    """Build and validate `Settings` from `environ` (default os.environ) over `.env`."""
    env = dict(os.environ if environ is None else environ)
    if env_file is None:
        env_file = Path(env.get("PMCT_ENV_FILE", ".env"))
    merged = {**read_env_file(env_file), **env}

    def get(name: str) -> str | None:
        value = merged.get(name)
        return None if value is None else value.strip()

    kwargs: dict[str, object] = {}
    simple = {
        "DATABASE_URL": ("database_url", _parse_database_url),
        "ENCRYPTION_KEY": ("encryption_key", _parse_encryption_key),
        "WATCHER_POLL_INTERVAL": ("watcher_poll_interval", _parse_seconds),
        "EXECUTOR_POLL_INTERVAL": ("executor_poll_interval", _parse_seconds),
        "MAX_COPY_DELAY": ("max_copy_delay", _parse_seconds),
        "POLYMARKET_DATA_API_URL": ("data_api_url", _parse_url),
        "POLYMARKET_GAMMA_API_URL": ("gamma_api_url", _parse_url),
        "POLYMARKET_CLOB_API_URL": ("clob_api_url", _parse_url),
        "POLYMARKET_CHAIN_ID": ("chain_id", _parse_positive_int),
        "POLYGON_RPC": ("polygon_rpc", _parse_url),
        "POLYGON_WS": ("polygon_ws", _parse_ws_url),
        "FILL_SOURCES": ("fill_sources", _parse_fill_sources),
        "CHAIN_POLL_INTERVAL": ("chain_poll_interval", _parse_seconds),
        "CHAIN_WALLET_CHUNK": ("chain_wallet_chunk", lambda n, r: _parse_positive_int(n, r, 100_000)),
        "CHAIN_MAX_BLOCK_RANGE": ("chain_max_block_range", lambda n, r: _parse_positive_int(n, r, 1_000_000)),
        "POLYGON_RPC_MAX_RPS": ("chain_rpc_max_rps", _parse_rate),
        "POLYGON_RPC_BATCH": ("chain_rpc_batch", lambda n, r: _parse_positive_int(n, r, 10_000)),
        "CHAIN_CONFIRMATIONS": ("chain_confirmations", _parse_nonnegative_int),
        "CHAIN_STALE_SECONDS": ("chain_stale_seconds", _parse_seconds),
        "CHAIN_REORG_DEPTH": ("chain_reorg_depth", lambda n, r: _parse_positive_int(n, r, 10_000)),
        "DATA_API_SLOW_INTERVAL": ("data_api_slow_interval", _parse_seconds),
        "FILL_SOURCE_GRACE": ("fill_source_grace", _parse_seconds),
        "POSITION_SNAPSHOT_INTERVAL": ("position_snapshot_interval", _parse_seconds),
        "ORDER_MANAGE_INTERVAL": ("order_manage_interval", _parse_seconds),
        "WATCHER_OVERLAP_SECONDS": ("watcher_overlap_seconds", _parse_whole_seconds),
        "CLAIM_LEASE_SECONDS": ("claim_lease_seconds", _parse_seconds),
        "METRICS_PORT": ("metrics_port", _parse_port),
        "WEB_HOST": ("web_host", _parse_host),
        "WEB_PORT": ("web_port", _parse_port_required),
        "WEB_SESSION_SECRET": ("web_session_secret", _parse_session_secret),
        "TELEGRAM_BOT_TOKEN": ("telegram_bot_token", _parse_bot_token),
        "TELEGRAM_API_URL": ("telegram_api_url", _parse_url),
        "DISCORD_API_URL": ("discord_api_url", _parse_url),
        "NOTIFY_POLL_INTERVAL": ("notify_poll_interval", _parse_seconds),
        "NOTIFY_MAX_ATTEMPTS": ("notify_max_attempts", lambda n, r: _parse_positive_int(n, r, 1000)),
        "NOTIFY_LEASE_SECONDS": ("notify_lease_seconds", _parse_seconds),
        "NOTIFY_SKIP_DIGEST_SECONDS": ("notify_skip_digest_seconds", _parse_seconds),
        "NOTIFY_RETENTION_DAYS": ("notify_retention_days", lambda n, r: _parse_positive_int(n, r, 3650)),
        "SNAPSHOT_EXIT_GRACE": ("snapshot_exit_grace", _parse_seconds),
        "RESOLUTION_CHECK_INTERVAL": ("resolution_check_interval", _parse_seconds),
        "POLYMARKET_RELAYER_URL": ("relayer_url", _parse_url),
        "POLYMARKET_BUILDER_CODE": ("builder_code", _parse_builder_code),
        "POLYMARKET_BUILDER_API_KEY": ("builder_api_key", _parse_secret),
        "POLYMARKET_BUILDER_SECRET": ("builder_secret", _parse_secret),
        "POLYMARKET_BUILDER_PASSPHRASE": ("builder_passphrase", _parse_secret),
        "ORDER_WAKE_INTERVAL": ("order_wake_interval", _parse_seconds),
        "EXECUTOR_POST_CONCURRENCY": ("executor_post_concurrency", lambda n, r: _parse_positive_int(n, r, 256)),
        "FILL_REFRESH_INTERVAL": ("fill_refresh_interval", _parse_seconds),
        "BALANCE_REFRESH_INTERVAL": ("balance_refresh_interval", _parse_seconds),
        "MARKET_REFRESH_INTERVAL": ("market_refresh_interval", _parse_seconds),
        "CLOB_HEARTBEAT": ("clob_heartbeat", _parse_switch),
        "RETENTION_SNAPSHOT_DAYS": ("retention_snapshot_days", _parse_retention_days),
        "RETENTION_EVENT_DAYS": ("retention_event_days", _parse_retention_days),
        "RETENTION_RAW_DAYS": ("retention_raw_days", _parse_retention_days),
        "RETENTION_PAYLOAD_DAYS": ("retention_payload_days", _parse_retention_days),
        "CROWDING_CONTROL": ("crowding_control", _parse_switch),
    }
    for var, (field_name, parser) in simple.items():
        raw = get(var)
        if raw is not None:
            kwargs[field_name] = parser(var, raw)

    if (raw := get("TELEGRAM_POLL_TIMEOUT")) is not None:
        kwargs["telegram_poll_timeout"] = _parse_int_range("TELEGRAM_POLL_TIMEOUT", raw, 0, 50)
    if (raw := get("NOTIFY_DIGEST_HOUR")) is not None:
        kwargs["notify_digest_hour"] = _parse_int_range("NOTIFY_DIGEST_HOUR", raw, 0, 23)
    if (raw := get("AUTO_PAUSE_TRADES")) is not None:
        kwargs["auto_pause_trades"] = _parse_int_range("AUTO_PAUSE_TRADES", raw, 0, 10_000)
    if (raw := get("RESOLUTION_WINDOW_HOURS")) is not None:
        kwargs["resolution_window_hours"] = _parse_int_range("RESOLUTION_WINDOW_HOURS", raw, 1, 24 * 366)
    if (raw := get("EXECUTION_MODE")) is not None:
        kwargs["execution_mode"] = _parse_choice("EXECUTION_MODE", raw, ("paper", "live"))
    if (raw := get("AUTO_REDEEM")) is not None:
        kwargs["auto_redeem"] = _parse_choice("AUTO_REDEEM", raw, AUTO_REDEEM_CHOICES)
    if (raw := get("LOG_LEVEL")) is not None:
        kwargs["log_level"] = _parse_choice("LOG_LEVEL", raw, LOG_LEVELS, upper=True)
    if (raw := get("WEB_COOKIE_SECURE")) is not None:
        kwargs["web_cookie_secure"] = _parse_choice("WEB_COOKIE_SECURE", raw,
                                                    ("auto", "true", "false"))
    if (raw := get("LOG_FORMAT")) is not None:
        kwargs["log_format"] = _parse_choice("LOG_FORMAT", raw, ("text", "json"))
    if (raw := get("PAPER_BALANCE_USD")) is not None:
        kwargs["paper_balance_usd"] = _parse_decimal("PAPER_BALANCE_USD", raw, Decimal(0), None)
    if (raw := get("DEFAULT_MAX_SLIPPAGE")) is not None:
        kwargs["default_max_slippage"] = _parse_decimal(
            "DEFAULT_MAX_SLIPPAGE", raw, Decimal(0), Decimal(1)
        )
    builder = [kwargs.get(k) for k in ("builder_api_key", "builder_secret", "builder_passphrase")]
    if any(builder) and not all(builder):
        raise ConfigError("POLYMARKET_BUILDER_API_KEY, POLYMARKET_BUILDER_SECRET and "
                          "POLYMARKET_BUILDER_PASSPHRASE go together: set all three or none")
    if kwargs.get("chain_id", 137) not in (137, 80002):
        raise ConfigError(f"POLYMARKET_CHAIN_ID must be 137 (Polygon) or 80002 (Amoy), got {kwargs['chain_id']}")
    return Settings(**kwargs)  # type: ignore[arg-type]
