"""Settings: defaults the README lists, env over .env, one-line errors naming the variable."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from infra.config import ConfigError, Settings, load_settings
from tests.support.paths import ROOT

NO_FILE = Path("/nonexistent/.env")


def test_defaults_match_the_contract() -> None:
    """With an empty environment every documented default applies and paper mode is on."""
    s = load_settings({}, env_file=NO_FILE)
    assert s == Settings()
    assert s.database_url == "sqlite:///pmct.db"
    assert s.execution_mode == "paper" and not s.is_live
    assert (s.watcher_poll_interval, s.executor_poll_interval, s.max_copy_delay) == (10, 5, 120)
    assert s.data_api_url == "https://data-api.polymarket.com"
    assert s.gamma_api_url == "https://gamma-api.polymarket.com"
    assert s.clob_api_url == "https://clob.polymarket.com"
    assert s.chain_id == 137 and s.polygon_rpc == "https://polygon-rpc.com"
    assert (s.log_level, s.log_format) == ("INFO", "text")
    assert s.encryption_key is None


def test_env_file_is_read_and_environment_wins(tmp_path: Path) -> None:
    """Values in .env apply; the process environment overrides them."""
    env_file = tmp_path / ".env"
    env_file.write_text("EXECUTION_MODE=live\nWATCHER_POLL_INTERVAL=3\nLOG_FORMAT=json\n")
    s = load_settings({"WATCHER_POLL_INTERVAL": "7"}, env_file=env_file)
    assert s.is_live and s.watcher_poll_interval == 7 and s.log_format == "json"


def test_path_prefix_urls_are_kept() -> None:
    """Base URLs may carry a path prefix; a trailing slash is dropped."""
    s = load_settings({"POLYMARKET_CLOB_API_URL": "http://127.0.0.1:9/clob/"}, env_file=NO_FILE)
    assert s.clob_api_url == "http://127.0.0.1:9/clob"


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("EXECUTION_MODE", "yolo"),
        ("WATCHER_POLL_INTERVAL", "0"),
        ("WATCHER_POLL_INTERVAL", "ten"),
        ("EXECUTOR_POLL_INTERVAL", "-1"),
        ("MAX_COPY_DELAY", "nan"),
        ("POLYMARKET_DATA_API_URL", "ftp://x"),
        ("POLYMARKET_GAMMA_API_URL", "not a url"),
        ("POLYMARKET_CLOB_API_URL", "http://"),
        ("POLYMARKET_CHAIN_ID", "1"),
        ("POLYMARKET_CHAIN_ID", "abc"),
        ("LOG_LEVEL", "LOUD"),
        ("LOG_FORMAT", "xml"),
        ("DATABASE_URL", "mysql://x"),
        ("ENCRYPTION_KEY", "not-a-fernet-key"),
        ("PAPER_BALANCE_USD", "-5"),
        ("DEFAULT_MAX_SLIPPAGE", "2"),
        ("METRICS_PORT", "70000"),
        ("TELEGRAM_API_URL", "ftp://x"),
        ("DISCORD_API_URL", "discord.com"),
        ("TELEGRAM_POLL_TIMEOUT", "60"),
        ("NOTIFY_POLL_INTERVAL", "0"),
        ("NOTIFY_MAX_ATTEMPTS", "-1"),
        ("NOTIFY_DIGEST_HOUR", "24"),
        ("SNAPSHOT_EXIT_GRACE", "0"),
        ("RESOLUTION_CHECK_INTERVAL", "soon"),
        ("AUTO_REDEEM", "sometimes"),
        ("POLYMARKET_RELAYER_URL", "ftp://x"),
        ("POLYMARKET_BUILDER_CODE", "0x1234"),
        ("POLYMARKET_BUILDER_CODE", "0x" + "zz" * 32),
        ("CLOB_HEARTBEAT", "maybe"),
        ("ORDER_WAKE_INTERVAL", "0"),
        ("EXECUTOR_POST_CONCURRENCY", "0"),
        ("EXECUTOR_POST_CONCURRENCY", "257"),
        ("RETENTION_EVENT_DAYS", "-1"),
    ],
)
def test_bad_value_names_the_variable(var: str, value: str) -> None:
    """Each invalid value raises ConfigError with a one-line message naming the variable."""
    with pytest.raises(ConfigError) as err:
        load_settings({var: value}, env_file=NO_FILE)
    msg = str(err.value)
    assert var in msg and "\n" not in msg


def test_bad_encryption_key_is_not_echoed() -> None:
    """An invalid ENCRYPTION_KEY is reported without its value."""
    bogus = "secretsecretsecret-not-fernet"
    with pytest.raises(ConfigError) as err:
        load_settings({"ENCRYPTION_KEY": bogus}, env_file=NO_FILE)
    assert bogus not in str(err.value)


def test_redacted_hides_keys_and_passwords() -> None:
    """redacted() masks the Fernet keys and the database password but keeps the rest."""
    k1, k2 = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    s = load_settings({"ENCRYPTION_KEY": f"{k1},{k2}",
                       "DATABASE_URL": "postgresql://pmct:hunter2@db/pmct",
                       "PAPER_BALANCE_USD": "250.5"}, env_file=NO_FILE)
    red = s.redacted()
    text = repr(red)
    assert k1 not in text and k2 not in text and "hunter2" not in text
    assert red["encryption_key"] == "***(2 key(s))"
    assert red["database_url"] == "postgresql://pmct:***@db/pmct"
    assert red["paper_balance_usd"] == "250.5"
    assert s.paper_balance_usd == Decimal("250.5")


def read_variables() -> set[str]:
    """Every variable `load_settings` reads, taken from its source (so this list cannot drift)."""
    source = (ROOT / "infra" / "config.py").read_text()
    body = source[source.index("def load_settings("):]
    return (set(re.findall(r'^\s+"([A-Z][A-Z0-9_]+)": \(', body, re.M))
            | set(re.findall(r'get\("([A-Z][A-Z0-9_]+)"\)', body))) - {"PMCT_ENV_FILE"}


def test_env_example_lists_every_variable_and_parses_to_defaults() -> None:
    """.env.example documents every setting and, as shipped, yields the defaults."""
    example = ROOT / ".env.example"
    text = example.read_text()
    variables = read_variables()
    assert {"DATABASE_URL", "ENCRYPTION_KEY", "EXECUTION_MODE", "POLYGON_RPC"} <= variables
    for var in sorted(variables):
        assert f"\n{var}=" in text, var
    assert load_settings({}, env_file=example) == Settings()


SECONDS_FIELDS = {"WATCHER_POLL_INTERVAL": "watcher_poll_interval",
                  "EXECUTOR_POLL_INTERVAL": "executor_poll_interval",
                  "MAX_COPY_DELAY": "max_copy_delay",
                  "POSITION_SNAPSHOT_INTERVAL": "position_snapshot_interval",
                  "ORDER_MANAGE_INTERVAL": "order_manage_interval",
                  "CLAIM_LEASE_SECONDS": "claim_lease_seconds",
                  "WATCHER_OVERLAP_SECONDS": "watcher_overlap_seconds"}
SECONDS_VARIABLES = sorted(SECONDS_FIELDS)


@pytest.mark.parametrize("var", SECONDS_VARIABLES)
@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "-1", "0", "1e309", "1e20",
                                   "604801", "99999999999999999999999", "", "1 s"])
def test_intervals_are_finite_positive_and_at_most_a_week(var: str, value: str) -> None:
    """NaN, infinity, negative, zero and overflowing seconds are refused naming the variable.

    (A value timedelta or asyncio cannot take would otherwise crash a daemon mid-cycle.)
    """
    with pytest.raises(ConfigError) as err:
        load_settings({var: value}, env_file=NO_FILE)
    assert var in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("var", SECONDS_VARIABLES)
def test_a_week_of_seconds_is_the_longest_interval(var: str) -> None:
    """The bound is inclusive: 604800 s is accepted and usable as a timedelta."""
    from datetime import timedelta

    s = load_settings({var: "604800"}, env_file=NO_FILE)
    value = getattr(s, SECONDS_FIELDS[var])
    assert timedelta(seconds=value) == timedelta(days=7)


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("PAPER_BALANCE_USD", "NaN"),
        ("PAPER_BALANCE_USD", "Infinity"),
        ("PAPER_BALANCE_USD", "1e999999999"),
        ("PAPER_BALANCE_USD", "1e-400"),
        ("PAPER_BALANCE_USD", "1" * 21),
        ("DEFAULT_MAX_SLIPPAGE", "1"),
        ("DEFAULT_MAX_SLIPPAGE", "-0.01"),
        ("DEFAULT_MAX_SLIPPAGE", "sNaN"),
        ("DEFAULT_MAX_SLIPPAGE", "0." + "0" * 18 + "1"),
        ("POLYMARKET_CHAIN_ID", "9" * 5000),
        ("METRICS_PORT", "-1"),
    ],
)
def test_decimal_and_integer_settings_fit_their_use(var: str, value: str) -> None:
    """Money settings fit a DecimalType column exactly; slippage is in [0, 1) like a follow's."""
    with pytest.raises(ConfigError) as err:
        load_settings({var: value}, env_file=NO_FILE)
    assert var in str(err.value) and "\n" not in str(err.value)
    assert len(str(err.value)) < 200


def test_an_unreadable_env_file_is_a_config_error(tmp_path: Path) -> None:
    """A .env that is not UTF-8 text is a ConfigError naming the file, not a crash."""
    env_file = tmp_path / ".env"
    env_file.write_bytes(b"LOG_LEVEL=\xff\xfe\n")
    with pytest.raises(ConfigError) as err:
        load_settings({}, env_file=env_file)
    assert str(env_file) in str(err.value)


def test_bot_token_is_a_masked_secret() -> None:
    """TELEGRAM_BOT_TOKEN: a secret variable, masked by redacted() and repr, never echoed."""
    from infra.config import SECRET_VARIABLES

    token = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
    s = load_settings({"TELEGRAM_BOT_TOKEN": token}, env_file=NO_FILE)
    assert s.telegram_bot_token == token and "TELEGRAM_BOT_TOKEN" in SECRET_VARIABLES
    assert s.redacted()["telegram_bot_token"] == "***"
    assert token not in repr(s.redacted()) and token not in repr(s)
    bogus = "not-a-token-but-secret-anyway"
    with pytest.raises(ConfigError) as err:
        load_settings({"TELEGRAM_BOT_TOKEN": bogus}, env_file=NO_FILE)
    assert "TELEGRAM_BOT_TOKEN" in str(err.value) and bogus not in str(err.value)


def test_builder_credentials_all_or_none_and_never_shown() -> None:
    """The relayer's builder credentials are set together or not at all; secrets are redacted."""
    with pytest.raises(ConfigError) as err:
        load_settings({"POLYMARKET_BUILDER_API_KEY": "k"}, env_file=NO_FILE)
    assert "POLYMARKET_BUILDER" in str(err.value) and "\n" not in str(err.value)
    s = load_settings({"POLYMARKET_BUILDER_API_KEY": "k", "POLYMARKET_BUILDER_SECRET": "s3cr3t-b",
                       "POLYMARKET_BUILDER_PASSPHRASE": "p4ss-b"}, env_file=NO_FILE)
    assert s.has_relayer_credentials
    assert "s3cr3t-b" not in repr(s.redacted()) and "p4ss-b" not in repr(s.redacted())
    assert "s3cr3t-b" not in repr(s) and "p4ss-b" not in repr(s)


def test_builder_settings_are_validated_and_secrets_redacted() -> None:
    """The builder code is a lower-cased bytes32; the builder API secrets never appear in redacted()."""
    code = "0x" + "AB" * 32
    s = load_settings({"POLYMARKET_BUILDER_CODE": code, "POLYMARKET_BUILDER_API_KEY": "bk-1",
                       "POLYMARKET_BUILDER_SECRET": "c2VjcmV0LXNlY3JldA==",
                       "POLYMARKET_BUILDER_PASSPHRASE": "pass-word-9"}, env_file=NO_FILE)
    assert s.builder_code == code.lower()
    assert s.builder_credentials == ("bk-1", "c2VjcmV0LXNlY3JldA==", "pass-word-9")
    text = repr(s.redacted())
    assert "c2VjcmV0LXNlY3JldA==" not in text and "pass-word-9" not in text and "bk-1" not in text
    assert Settings().builder_code == "0x" + "00" * 32 and Settings().builder_credentials is None


def test_heartbeat_switch_and_retention_days() -> None:
    """CLOB_HEARTBEAT takes on/off; retention days take 0 (keep forever) or a positive number."""
    s = load_settings({"CLOB_HEARTBEAT": "on", "RETENTION_EVENT_DAYS": "0"}, env_file=NO_FILE)
    assert s.clob_heartbeat and s.retention_event_days == 0
    assert not load_settings({}, env_file=NO_FILE).clob_heartbeat


def test_requests_in_flight_reach_both_lanes_of_the_executor(fernet_key: str) -> None:
    """EXECUTOR_POST_CONCURRENCY sets how many requests the live lane and its paper lane keep in
    flight (32 when unset)."""
    from executor import build_context

    def lanes(env: dict[str, str]) -> tuple[int, int]:
        settings = load_settings({"EXECUTION_MODE": "live", "ENCRYPTION_KEY": fernet_key, **env}, env_file=NO_FILE)
        ctx = build_context(settings, None, None)  # type: ignore[arg-type]  # neither is touched here
        assert ctx.shadow is not None
        return ctx.post_concurrency, ctx.shadow.post_concurrency

    assert lanes({}) == (32, 32)
    assert lanes({"EXECUTOR_POST_CONCURRENCY": "8"}) == (8, 8)
