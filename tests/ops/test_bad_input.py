"""Bad input never slips past validation: every command, every kind of option, both databases.

Each malformed invocation must exit 2 with exactly one `error:` line on stderr, no traceback,
and leave every table's row count as it was. The hypothesis tests feed random text to the
decimal and day options and accept only exit 0 or 2.
"""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from models import Follow
from ops.cli import cli
from tests.ops.test_admin import counts
from tests.support.dbfixtures import Database
from tests.support.keys import TEST_ADDRESS, TEST_KEY, TEST_KEY_2

TRADER = "0x7c3db723f1d4d8cb9c550095203b686cb11e5c6b"
TRADER_2 = "0x00000000000000000000000000000000000000aa"
NOWHERE = "http://127.0.0.1:9"  # nothing listens: a case that reached the network would fail

BAD_ADDRESSES = ["", "0x123", "0x" + "z" * 40, "0x" + "0" * 40, "x" * 1000, "\udcff", "0x" + "a" * 41]
BAD_NUMBERS = ["", "ten", "NaN", "sNaN", "Infinity", "-inf", "1e-400", "1e999999999",
               "1e999999999999999999999", "1" * 30, "0." + "0" * 18 + "1", "\udcff", "1,5", "0x10"]
BAD_DAYS = ["", "2024-02-30", "9999-12-31", "0001-01-01", "1999-12-31", "2100-01-01", "yesterday",
            "\udcff", "2024/01/01"]
BAD_TEXT = ["", "   ", "\x01bell", "nul\x00byte", "\udcff"]


def _follow(**over: str) -> list[str]:
    opts = {"--wallet": TEST_ADDRESS, "--follow": TRADER_2, "--copy-pct": "5", "--max-trade": "5"}
    opts.update(over)
    return ["add-follow", *[x for kv in opts.items() for x in kv]]


def _follower(**over: str) -> list[str]:
    opts = {"--name": "Bob", "--email": "bob@example.com", "--private-key": TEST_KEY_2}
    opts.update(over)
    return ["add-follower", *[x for kv in opts.items() for x in kv]]


def _cases(tmp: Path) -> list[tuple[str, list[str]]]:
    """(name, argv) of every malformed invocation; `tmp` holds the file-path cases."""
    binary_env = tmp / "binary.env"
    binary_env.write_bytes(b"\xff\xfe\x00not text")
    fifo = tmp / "fifo.csv"
    os.mkfifo(fifo)
    missing_dir = tmp / "missing" / "out.csv"
    report = ["report", "--wallet", TEST_ADDRESS, "--start", "2024-01-01", "--no-prices"]
    cases: list[tuple[str, list[str]]] = [
        # the three measured on main
        ("max-trade below the column's scale", _follow(**{"--max-trade": "1e-400"})),
        ("max-trade beyond the column", _follow(**{"--max-trade": "1e999999999"})),
        ("history end whose next day overflows", ["history", "--end", "9999-12-31"]),
    ]
    for flag in ("--copy-pct", "--max-trade", "--daily-cap", "--market-cap", "--price-min",
                 "--price-max", "--max-slippage"):
        cases += [(f"{flag} {v!r}", _follow(**{flag: v})) for v in BAD_NUMBERS]
    cases += [
        ("copy-pct 0", _follow(**{"--copy-pct": "0"})),
        ("copy-pct 100.000001", _follow(**{"--copy-pct": "100.000001"})),
        ("max-trade -0", _follow(**{"--max-trade": "-0"})),
        ("slippage 1", _follow(**{"--max-slippage": "1"})),
        ("slippage -0.01", _follow(**{"--max-slippage": "-0.01"})),
        ("price-min 0", _follow(**{"--price-min": "0"})),
        ("price-max 1", _follow(**{"--price-max": "1"})),
        ("daily-cap 0", _follow(**{"--daily-cap": "0"})),
        ("market-cap -5", _follow(**{"--market-cap": "-5"})),
        ("21 integer digits", _follow(**{"--max-trade": "1" * 21})),
        ("label too long", _follow(**{"--label": "x" * 201})),
    ]
    cases += [(f"label {v!r}", _follow(**{"--label": v})) for v in BAD_TEXT]
    cases += [(f"--wallet {v!r}", _follow(**{"--wallet": v})) for v in BAD_ADDRESSES]
    cases += [(f"--follow {v!r}", _follow(**{"--follow": v})) for v in BAD_ADDRESSES]
    cases += [(f"name {v!r}", _follower(**{"--name": v})) for v in [*BAD_TEXT, "x" * 201]]
    cases += [(f"email {v!r}", _follower(**{"--email": v})) for v in [*BAD_TEXT, "a@b", "x" * 321]]
    cases += [(f"private key {v!r}", _follower(**{"--private-key": v}))
              for v in ["", "0x123", "zz" * 32, "0" * 64, "f" * 64, "\udcff", TEST_KEY]]
    cases += [(f"funder {v!r}", _follower(**{"--signature-type": "proxy", "--funder": v}))
              for v in BAD_ADDRESSES]
    cases += [("signature type", _follower(**{"--signature-type": "multisig"})),
              ("tier gold", _follower(**{"--tier": "gold"}))]
    for command in ("remove-follow", "pause", "resume"):
        cases += [(f"{command} --wallet {v!r}", [command, "--wallet", v]) for v in BAD_ADDRESSES[:4]]
        cases.append((f"{command} --follow bad", [command, "--wallet", TEST_ADDRESS, "--follow", "0x1"]))
    cases += [(f"list-follows --wallet {v!r}", ["list-follows", "--wallet", v]) for v in BAD_ADDRESSES[:3]]
    for flag in ("--start", "--end"):
        cases += [(f"history {flag} {v!r}", ["history", flag, v]) for v in BAD_DAYS]
        cases += [(f"performance {flag} {v!r}", ["performance", "--no-prices", flag, v])
                  for v in BAD_DAYS[:4]]
        cases += [(f"report {flag} {v!r}", [*report, flag, v]) for v in BAD_DAYS[:4]]
    cases += [
        ("history end before start", ["history", "--start", "2024-02-01", "--end", "2024-01-01"]),
        ("report start in the future", ["report", "--wallet", TEST_ADDRESS, "--start", "2099-01-01",
                                        "--no-prices"]),
        ("history unknown trader", ["history", "--trader", TRADER_2]),
        ("history status", ["history", "--status", "bogus"]),
        ("history market too long", ["history", "--market", "x" * 501]),
        ("history limit 1e3", ["history", "--limit", "1e3"]),
        ("report unknown wallet", [*report[:2], "0x" + "1" * 40, *report[3:]]),
        ("report output in a missing directory", [*report, "--output", str(missing_dir)]),
        ("report output is a directory", [*report, "--output", str(tmp)]),
        ("report output is a fifo", [*report, "--output", str(fifo)]),
        ("report summary in a missing directory", [*report, "--summary-file", str(missing_dir)]),
        ("report chart not .png", [*report, "--chart", str(tmp / "chart.txt")]),
        ("gen-key env file in a missing directory", ["gen-key", "--env-file", str(tmp / "no" / ".env")]),
        ("gen-key env file is a directory", ["gen-key", "--env-file", str(tmp)]),
        ("gen-key env file is empty text", ["gen-key", "--env-file", ""]),
        ("gen-key env file is a fifo", ["gen-key", "--env-file", str(fifo)]),
        ("gen-key env file is binary", ["gen-key", "--env-file", str(binary_env)]),
        ("auth-follower nonce -1", ["auth-follower", "--wallet", TEST_ADDRESS, "--nonce", "-1"]),
        ("auth-follower nonce beyond uint256", ["auth-follower", "--wallet", TEST_ADDRESS,
                                                "--nonce", str(2**256)]),
        ("auth-follower wallet", ["auth-follower", "--wallet", "0x1"]),
        ("disable nothing", ["disable"]),
        ("disable both", ["disable", "--all", "--wallet", TEST_ADDRESS]),
        ("enable follow without wallet", ["enable", "--follow", TRADER]),
        ("disable reason too long", ["disable", "--all", "--reason", "x" * 201]),
        ("set-tier gold", ["set-tier", "--wallet", TEST_ADDRESS, "--tier", "gold"]),
        ("set-tier bad wallet", ["set-tier", "--wallet", "0x1", "--tier", "pro"]),
        ("set-tier free with a follow", ["set-tier", "--wallet", TEST_ADDRESS, "--tier", "free"]),
        ("doctor bad wallet", ["doctor", "--offline", "--wallet", "0x1"]),
        ("unknown command", ["frobnicate"]),
        ("missing value", ["history", "--limit"]),
    ]
    for verb in ("disable", "enable"):
        cases += [(f"{verb} --wallet {v!r}", [verb, "--wallet", v]) for v in BAD_ADDRESSES[:4]]
    cases += [(f"disable reason {v!r}", ["disable", "--all", "--reason", v]) for v in BAD_TEXT]
    cases += [(f"history --limit {v}", ["history", "--limit", v]) for v in ("0", "-1", "x", "100001")]
    cases += [(f"history --market {v!r}", ["history", "--market", v]) for v in BAD_TEXT]
    return cases


@pytest.fixture
def cli_env(database: Database, fernet_key: str, monkeypatch: pytest.MonkeyPatch) -> Database:
    """The CLI on the test database with one (whale) follower following TRADER; no network."""
    monkeypatch.setenv("DATABASE_URL", database.url)
    monkeypatch.setenv("ENCRYPTION_KEY", fernet_key)
    monkeypatch.setenv("PMCT_ENV_FILE", "/nonexistent/.env")
    for var in ("POLYMARKET_DATA_API_URL", "POLYMARKET_GAMMA_API_URL", "POLYMARKET_CLOB_API_URL",
                "POLYGON_RPC"):
        monkeypatch.setenv(var, NOWHERE)
    for var in ("EXECUTION_MODE", "LOG_LEVEL", "LOG_FORMAT"):
        monkeypatch.delenv(var, raising=False)
    assert invoke("add-follower", "--name", "Alice", "--email", "alice@example.com",
                  "--private-key", TEST_KEY, "--tier", "whale").exit_code == 0
    assert invoke(*_follow(**{"--follow": TRADER})).exit_code == 0
    return database


def invoke(*args: str) -> Result:
    """The admin CLI in-process (exceptions are the CLI's to handle, so none may escape)."""
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _verdict(result: Result) -> str | None:
    """None when `result` is a clean exit 2; else what is wrong with it."""
    lines = result.stderr.strip().splitlines()
    if result.exit_code != 2:
        return f"exit {result.exit_code}: {result.stderr.strip()[:200]!r}"
    if len(lines) != 1 or not lines[0].startswith("error:"):
        return f"stderr is not one error line: {result.stderr[:300]!r}"
    if "Traceback" in result.output or TEST_KEY[2:] in result.output:
        return "traceback or key in the output"
    return None


def test_malformed_invocations_exit_2_with_one_line_and_write_nothing(cli_env: Database,
                                                                     tmp_path: Path) -> None:
    """Every malformed invocation across all commands: exit 2, one `error:` line, no row changed."""
    cases = _cases(tmp_path)
    assert len(cases) >= 60
    problems = []
    for name, args in cases:
        before = counts(cli_env)
        result = invoke(*args)
        verdict = _verdict(result)
        if verdict is None and counts(cli_env) != before:
            verdict = "row counts changed"
        if verdict is not None:
            problems.append(f"{name}: {verdict}")
    assert problems == []
    assert not (tmp_path / "missing").exists()
    assert tmp_path.joinpath("fifo.csv").is_fifo()


def test_values_at_the_limits_are_accepted_and_stored_exactly(cli_env: Database) -> None:
    """The largest and finest values a column keeps round-trip; the last day of the window works."""
    biggest = "99999999999999999999.999999999999999999"
    result = invoke(*_follow(**{"--max-trade": biggest, "--copy-pct": "1E+1",
                                "--daily-cap": "0.000000000000000001", "--max-slippage": "0",
                                "--price-min": "0.000000000000000001",
                                "--price-max": "0.999999999999999999"}))
    assert result.exit_code == 0, result.output
    with cli_env.session() as s:
        follow = s.scalar(select(Follow).where(Follow.max_usd_per_trade != Decimal(5)))
        assert follow is not None
        assert follow.max_usd_per_trade == Decimal(biggest)
        assert follow.copy_pct == Decimal(10)
        assert follow.daily_usd_cap == Decimal("1E-18")
        assert follow.max_slippage == Decimal(0)
        assert follow.price_max == Decimal("0.999999999999999999")
    for args in (["history", "--end", "2099-12-31"], ["history", "--start", "2000-01-01"],
                 ["performance", "--no-prices", "--end", "2099-12-31"]):
        result = invoke(*args)
        assert result.exit_code == 0, (args, result.output)


# --- random text into the decimal and day options -------------------------------------------

ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
NUMBERISH = st.one_of(
    ANY_TEXT,
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.floats().map(repr),
    st.integers(min_value=-(10**60), max_value=10**60).map(str),
    st.from_regex(r"\A[-+]?[0-9]{0,25}(\.[0-9]{0,25})?([eE][-+]?[0-9]{1,12})?\Z"),
)
DAYISH = st.one_of(
    ANY_TEXT,
    st.dates().map(lambda d: d.isoformat()),
    st.from_regex(r"\A[0-9]{1,5}-[0-9]{1,2}-[0-9]{1,2}\Z"),
)
DECIMAL_FLAGS = st.sampled_from(["--copy-pct", "--max-trade", "--max-slippage", "--daily-cap",
                                 "--market-cap", "--price-min", "--price-max"])
FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _never_a_failure(result: Result) -> None:
    assert result.exit_code in (0, 2), (result.exit_code, result.stderr)
    assert "Traceback" not in result.output
    if result.exit_code == 2:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr


@FUZZ
@given(flag=DECIMAL_FLAGS, value=NUMBERISH, trader=st.integers(min_value=1, max_value=2**160 - 1))
@example(flag="--max-trade", value="1e-400", trader=1)
@example(flag="--max-trade", value="1e999999999", trader=1)
def test_add_follow_decimal_options_never_fail_with_exit_1(cli_env: Database, flag: str, value: str,
                                                           trader: int) -> None:
    """Random text in any decimal option of add-follow: exit 0 or 2, never 1, never a traceback."""
    _never_a_failure(invoke(*_follow(**{"--follow": f"0x{trader:040x}", flag: value})))


@FUZZ
@given(flag=st.sampled_from(["--start", "--end"]), value=DAYISH)
@example(flag="--end", value="9999-12-31")
@example(flag="--start", value="0001-01-01")
def test_history_day_options_never_fail_with_exit_1(cli_env: Database, flag: str, value: str) -> None:
    """Random text in history's --start/--end: exit 0 or 2, never 1, never a traceback."""
    _never_a_failure(invoke("history", f"{flag}={value}"))
