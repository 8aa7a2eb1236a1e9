"""Settings: defaults from CONTRACT.md, env over .env, one-line errors naming the variable."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from infra.config import ConfigError, Settings, load_settings

NO_FILE = Path("/nonexistent/.env")


def test_defaults_match_the_contract() -> None:
    """With an empty environment every CONTRACT.md default applies and paper mode is on."""
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
        ("SNAPSHOT_RETENTION_DAYS", "-1"),
        ("SNAPSHOT_EXIT_GRACE", "0"),
        ("RESOLUTION_CHECK_INTERVAL", "soon"),
        ("AUTO_REDEEM", "sometimes"),
        ("POLYMARKET_RELAYER_URL", "ftp://x"),
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


def test_env_example_lists_every_variable_and_parses_to_defaults() -> None:
    """.env.example documents every setting and, as shipped, yields the defaults."""
    example = Path(__file__).resolve().parents[1] / ".env.example"
    text = example.read_text()
    for var in ("DATABASE_URL", "ENCRYPTION_KEY", "EXECUTION_MODE", "WATCHER_POLL_INTERVAL",
                "EXECUTOR_POLL_INTERVAL", "MAX_COPY_DELAY", "POLYMARKET_DATA_API_URL",
                "POLYMARKET_GAMMA_API_URL", "POLYMARKET_CLOB_API_URL", "POLYMARKET_CHAIN_ID",
                "POLYGON_RPC", "LOG_LEVEL", "LOG_FORMAT", "WATCHER_OVERLAP_SECONDS",
                "POSITION_SNAPSHOT_INTERVAL", "ORDER_MANAGE_INTERVAL", "CLAIM_LEASE_SECONDS",
                "PAPER_BALANCE_USD", "DEFAULT_MAX_SLIPPAGE", "METRICS_PORT"):
        assert f"\n{var}=" in text, var
    assert load_settings({}, env_file=example) == Settings()


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
