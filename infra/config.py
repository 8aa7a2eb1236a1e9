"""One frozen settings object, read from the process environment and `.env`, validated at start.

The environment wins over `.env`. A bad value raises `ConfigError` whose message names the
variable and what is wrong in one line (never the value of a secret); entry points turn it into
exit code 2. `Settings.redacted()` is the only form of the settings that may be logged.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from decimal import Decimal, InvalidOperation
from pathlib import Path
from urllib.parse import urlsplit

from infra.errors import ConfigError

SECRET_VARIABLES = frozenset({"ENCRYPTION_KEY", "POLYMARKET_BUILDER_SECRET",
                              "POLYMARKET_BUILDER_PASSPHRASE"})
_SECRET_FIELDS = frozenset({"builder_secret", "builder_passphrase"})
AUTO_REDEEM_CHOICES = ("auto", "on", "off")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@dataclass(frozen=True)
class Settings:
    """Every PMCT setting (CONTRACT.md names), typed and validated."""

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
    log_level: str = "INFO"
    log_format: str = "text"
    position_snapshot_interval: float = 300.0
    order_manage_interval: float = 300.0
    watcher_overlap_seconds: int = 120
    claim_lease_seconds: float = 60.0
    paper_balance_usd: Decimal = Decimal("1000")
    default_max_slippage: Decimal = Decimal("0.05")
    metrics_port: int | None = None
    snapshot_retention_days: float = 7.0
    snapshot_exit_grace: float = 120.0
    resolution_check_interval: float = 300.0
    auto_redeem: str = "auto"
    relayer_url: str = "https://relayer-v2.polymarket.com"
    builder_api_key: str | None = None
    builder_secret: str | None = field(default=None, repr=False)
    builder_passphrase: str | None = field(default=None, repr=False)

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
            elif isinstance(value, Decimal):
                value = str(value)
            out[f.name] = value
        return out


# variable name -> (field name, parser)
def _parse_positive_float(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not value > 0 or value != value or value == float("inf"):
        raise ConfigError(f"{name} must be a positive number of seconds, got {raw!r}")
    return value


def _parse_positive_int(name: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{name} must be positive, got {raw!r}")
    return value


def _parse_port(name: str, raw: str) -> int | None:
    if raw.strip() == "":
        return None
    value = _parse_positive_int(name, raw)
    if value > 65535:
        raise ConfigError(f"{name} must be a TCP port (1-65535), got {raw!r}")
    return value


def _parse_decimal(name: str, raw: str, low: Decimal, high: Decimal | None) -> Decimal:
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ConfigError(f"{name} must be a decimal number, got {raw!r}") from None
    if not value.is_finite() or value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f">= {low}"
        raise ConfigError(f"{name} must be {bound}, got {raw!r}")
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


def _parse_choice(name: str, raw: str, choices: tuple[str, ...], upper: bool = False) -> str:
    value = raw.strip().upper() if upper else raw.strip().lower()
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return value


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

    return {k: v for k, v in dotenv_values(path).items() if v is not None}


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
        "WATCHER_POLL_INTERVAL": ("watcher_poll_interval", _parse_positive_float),
        "EXECUTOR_POLL_INTERVAL": ("executor_poll_interval", _parse_positive_float),
        "MAX_COPY_DELAY": ("max_copy_delay", _parse_positive_float),
        "POLYMARKET_DATA_API_URL": ("data_api_url", _parse_url),
        "POLYMARKET_GAMMA_API_URL": ("gamma_api_url", _parse_url),
        "POLYMARKET_CLOB_API_URL": ("clob_api_url", _parse_url),
        "POLYMARKET_CHAIN_ID": ("chain_id", _parse_positive_int),
        "POLYGON_RPC": ("polygon_rpc", _parse_url),
        "POSITION_SNAPSHOT_INTERVAL": ("position_snapshot_interval", _parse_positive_float),
        "ORDER_MANAGE_INTERVAL": ("order_manage_interval", _parse_positive_float),
        "WATCHER_OVERLAP_SECONDS": ("watcher_overlap_seconds", _parse_positive_int),
        "CLAIM_LEASE_SECONDS": ("claim_lease_seconds", _parse_positive_float),
        "METRICS_PORT": ("metrics_port", _parse_port),
        "SNAPSHOT_RETENTION_DAYS": ("snapshot_retention_days", _parse_positive_float),
        "SNAPSHOT_EXIT_GRACE": ("snapshot_exit_grace", _parse_positive_float),
        "RESOLUTION_CHECK_INTERVAL": ("resolution_check_interval", _parse_positive_float),
        "POLYMARKET_RELAYER_URL": ("relayer_url", _parse_url),
        "POLYMARKET_BUILDER_API_KEY": ("builder_api_key", _parse_optional_text),
        "POLYMARKET_BUILDER_SECRET": ("builder_secret", _parse_optional_text),
        "POLYMARKET_BUILDER_PASSPHRASE": ("builder_passphrase", _parse_optional_text),
    }
    for var, (field_name, parser) in simple.items():
        raw = get(var)
        if raw is not None:
            kwargs[field_name] = parser(var, raw)

    if (raw := get("EXECUTION_MODE")) is not None:
        kwargs["execution_mode"] = _parse_choice("EXECUTION_MODE", raw, ("paper", "live"))
    if (raw := get("AUTO_REDEEM")) is not None:
        kwargs["auto_redeem"] = _parse_choice("AUTO_REDEEM", raw, AUTO_REDEEM_CHOICES)
    if (raw := get("LOG_LEVEL")) is not None:
        kwargs["log_level"] = _parse_choice("LOG_LEVEL", raw, LOG_LEVELS, upper=True)
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
