"""The `admin` command line (click): parse, call the logic modules, print. Nothing else.

Exit codes: 0 success; 2 bad usage or invalid input (one line on stderr, nothing written);
1 any other failure. Heavy modules (SQLAlchemy, eth_account, httpx) are imported inside the
commands that need them so `admin --help` stays fast.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from config import Settings


class UserInputError(Exception):
    """Raised inside commands for bad input detected by the CLI itself."""


def _fail(message: str, code: int) -> NoReturn:
    from crypto import mask_secrets

    first = message.strip().splitlines()[0] if message.strip() else "failed"
    click.echo(f"error: {mask_secrets(first)}", err=True)
    sys.exit(code)


class AdminGroup(click.Group):
    """A click group that turns every error into one line and the contract's exit codes."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             **extra: Any) -> Any:
        """Run the CLI; map errors to exit 2 (input) or 1 (failure) with one line, no traceback."""
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.Abort:
            _fail("aborted", 1)
        except click.ClickException as exc:
            msg = exc.format_message().replace("\n", " ")
            if isinstance(exc, click.UsageError) and exc.ctx is not None:
                msg = f"{msg} (see `{exc.ctx.command_path} --help`)"
            _fail(msg, 2)
        except Exception as exc:  # noqa: BLE001 - the CLI's last line of defence
            _handle_exception(exc)
        sys.exit(rv if isinstance(rv, int) else 0)


def _handle_exception(exc: Exception) -> NoReturn:
    from accounts import InputError
    from config import ConfigError
    from crypto import CryptoError, MissingKeyError

    if isinstance(exc, (InputError, ConfigError, MissingKeyError, UserInputError)):
        _fail(str(exc), 2)
    if isinstance(exc, CryptoError):
        _fail(str(exc), 1)
    try:
        from polymarket_client import PolymarketError
    except ImportError:  # pragma: no cover - client not installed yet
        PolymarketError = ()  # type: ignore[assignment,misc]  # noqa: N806
    if isinstance(exc, PolymarketError):
        _fail(f"Polymarket request failed: {exc}", 1)
    from sqlalchemy.exc import OperationalError, ProgrammingError

    if isinstance(exc, (OperationalError, ProgrammingError)):
        _fail("database error: is the database reachable and migrated (`admin init-db`)? "
              f"({type(exc.orig).__name__ if exc.orig else type(exc).__name__})", 1)
    from sqlalchemy.exc import IntegrityError

    if isinstance(exc, IntegrityError):
        _fail("the database refused the change (a constraint failed); nothing was written", 1)
    _fail(f"unexpected failure: {type(exc).__name__}: {exc}", 1)


# --- shared helpers -------------------------------------------------------------------------

class _Context:
    """Lazily loaded settings and database for one CLI invocation."""

    def __init__(self) -> None:
        self._settings: Settings | None = None
        self._factory: sessionmaker[Session] | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from config import load_settings
            from logsetup import configure_logging

            self._settings = load_settings()
            configure_logging(self._settings.log_level if self._settings.log_level != "INFO"
                              else "WARNING", self._settings.log_format)
        return self._settings

    @property
    def factory(self) -> sessionmaker[Session]:
        if self._factory is None:
            from db import make_engine, make_sessionmaker

            self._factory = make_sessionmaker(make_engine(self.settings.database_url))
        return self._factory

    @contextmanager
    def session(self) -> Iterator[Session]:
        from db import session_scope

        with session_scope(self.factory) as s:
            yield s

    def keyring(self):  # type: ignore[no-untyped-def]
        from crypto import KeyRing

        return KeyRing(self.settings.encryption_key)


pass_ctx = click.make_pass_decorator(_Context, ensure=True)


def _decimal(what: str) -> Callable[[click.Context, click.Parameter, Any], Decimal | None]:
    def convert(_ctx: click.Context, _param: click.Parameter, value: Any) -> Decimal | None:
        if value is None:
            return None
        from accounts import parse_decimal

        return parse_decimal(value, what)

    return convert


def _print_table(rows: list[dict[str, object]], columns: list[str]) -> None:
    if not rows:
        click.echo("(none)")
        return
    cells = [[("" if r.get(c) is None else str(r.get(c))) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    click.echo("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for row in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def _emit(rows: list[dict[str, object]], columns: list[str], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
    else:
        _print_table(rows, columns)


json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON output.")


# --- commands -------------------------------------------------------------------------------

@click.group(cls=AdminGroup, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """PMCT admin: followers, follows, keys, reports. Settings come from the environment and .env."""


@cli.command("gen-key")
@click.option("--env-file", type=click.Path(dir_okay=False, path_type=Path), default=Path(".env"),
              show_default=True, help="File that receives ENCRYPTION_KEY (created with mode 600).")
@click.option("--rotate", is_flag=True,
              help="Put a new key in front of the existing ones (then run `admin rotate-keys`).")
def gen_key(env_file: Path, rotate: bool) -> None:
    """Generate a Fernet ENCRYPTION_KEY into the env file; the key itself is never printed."""
    from envfile import write_encryption_key

    count = write_encryption_key(env_file, rotate=rotate)
    click.echo(f"ENCRYPTION_KEY written to {env_file} ({count} key(s); the first one encrypts)")


@cli.command("init-db")
@pass_ctx
def init_db(ctx: _Context) -> None:
    """Create or upgrade the database schema (idempotent)."""
    from migrate import upgrade_to_head

    head = upgrade_to_head(ctx.settings.database_url)
    click.echo(f"database at schema revision {head}")


@cli.command("add-follower")
@click.option("--name", required=True, help="Display name.")
@click.option("--email", required=True, help="Contact email.")
@click.option("--private-key", "private_key", default=None,
              help="Signer key; omit (hidden prompt) or '-' (read stdin) to keep it out of shell history.")
@click.option("--signature-type", type=click.Choice(["eoa", "proxy", "safe", "deposit"]),
              default="eoa", show_default=True, help="Wallet kind (CLOB signatureType 0-3).")
@click.option("--funder", default=None,
              help="Wallet holding pUSD and positions (required for proxy/safe/deposit).")
@click.option("--tier", type=click.Choice(["free", "pro", "elite", "whale"]), default="pro",
              show_default=True, help="Subscription tier.")
@pass_ctx
def add_follower(ctx: _Context, name: str, email: str, private_key: str | None,
                 signature_type: str, funder: str | None, tier: str) -> None:
    """Add a follower; the private key is encrypted before it is stored. Prints the wallet."""
    from accounts import add_follower as do_add
    from models import Tier
    from pm_types import SignatureType

    keyring = ctx.keyring()  # fail on a missing key before asking for the private key
    if private_key is None:
        private_key = click.prompt("Private key", hide_input=True, err=True)
    elif private_key == "-":
        private_key = sys.stdin.readline()
    assert private_key is not None
    with ctx.session() as s:
        follower = do_add(s, keyring, name=name, email=email, private_key=private_key,
                          signature_type=SignatureType.from_name(signature_type),
                          funder=funder, tier=Tier(tier))
        wallet, signer = follower.funder_address, follower.signer_address
    private_key = None
    click.echo(f"follower added: wallet {wallet} (signer {signer}, {signature_type})")


@cli.command("add-follow")
@click.option("--wallet", required=True, help="The follower's wallet (funder or signer).")
@click.option("--follow", "trader", required=True, help="The trader's profile (proxy) wallet.")
@click.option("--copy-pct", required=True, callback=_decimal("--copy-pct"),
              help="Percent of the trader's shares to copy, in (0, 100].")
@click.option("--max-trade", required=True, callback=_decimal("--max-trade"),
              help="Maximum USD per copied trade.")
@click.option("--max-slippage", default=None, callback=_decimal("--max-slippage"),
              help="Max price slippage vs the trader, as a fraction (default: DEFAULT_MAX_SLIPPAGE).")
@click.option("--daily-cap", default=None, callback=_decimal("--daily-cap"),
              help="Max USD bought per UTC day through this follow.")
@click.option("--market-cap", default=None, callback=_decimal("--market-cap"),
              help="Max USD exposure per market through this follow.")
@click.option("--price-min", default=None, callback=_decimal("--price-min"),
              help="Skip trades priced below this.")
@click.option("--price-max", default=None, callback=_decimal("--price-max"),
              help="Skip trades priced above this.")
@click.option("--label", default=None, help="A name for the trader.")
@pass_ctx
def add_follow(ctx: _Context, wallet: str, trader: str, copy_pct: Decimal, max_trade: Decimal,
               max_slippage: Decimal | None, daily_cap: Decimal | None,
               market_cap: Decimal | None, price_min: Decimal | None,
               price_max: Decimal | None, label: str | None) -> None:
    """Make a follower copy a trader from now on."""
    from accounts import FollowLimits
    from accounts import add_follow as do_add

    limits = FollowLimits(max_slippage, daily_cap, market_cap, price_min, price_max)
    with ctx.session() as s:
        follow = do_add(s, follower_wallet=wallet, trader_wallet=trader, copy_pct=copy_pct,
                        max_usd_per_trade=max_trade, limits=limits, label=label)
        text = (f"follow added: {follow.follower.funder_address} copies {follow.trader.wallet} "
                f"at {follow.copy_pct}% (max ${follow.max_usd_per_trade} per trade)")
    click.echo(text)


@cli.command("remove-follow")
@click.option("--wallet", required=True, help="The follower's wallet.")
@click.option("--follow", "trader", required=True, help="The trader's wallet.")
@pass_ctx
def remove_follow(ctx: _Context, wallet: str, trader: str) -> None:
    """Stop a follow for good (history is kept)."""
    from accounts import remove_follow as do_remove

    with ctx.session() as s:
        follow = do_remove(s, wallet, trader)
        text = f"follow removed: {follow.follower.funder_address} no longer copies {follow.trader.wallet}"
    click.echo(text)


def _pause_command(paused: bool) -> click.Command:
    verb = "pause" if paused else "resume"

    @click.command(verb)
    @click.option("--wallet", required=True, help="The follower's wallet.")
    @click.option("--follow", "trader", default=None, help="Only this trader's follow.")
    @pass_ctx
    def command(ctx: _Context, wallet: str, trader: str | None) -> None:
        from accounts import set_pause

        with ctx.session() as s:
            text = set_pause(s, wallet, trader, paused)
        click.echo(text)

    command.help = (f"{verb.capitalize()} a follower (all its follows) or, with --follow, one follow.")
    return command


cli.add_command(_pause_command(True))
cli.add_command(_pause_command(False))


@cli.command("list-followers")
@json_option
@pass_ctx
def list_followers(ctx: _Context, as_json: bool) -> None:
    """List followers (never shows a secret)."""
    from sqlalchemy import select

    from accounts import follower_row
    from models import Follower

    with ctx.session() as s:
        rows = [follower_row(f) for f in s.scalars(select(Follower).order_by(Follower.id))]
    _emit(rows, ["id", "name", "wallet", "signature_type", "tier", "status", "l2_credentials"],
          as_json)


@cli.command("list-follows")
@click.option("--wallet", default=None, help="Only this follower's follows.")
@click.option("--all", "show_all", is_flag=True, help="Include removed follows.")
@json_option
@pass_ctx
def list_follows(ctx: _Context, wallet: str | None, show_all: bool, as_json: bool) -> None:
    """List follow relationships."""
    from sqlalchemy import select

    from accounts import find_follower, follow_row
    from models import Follow, FollowStatus

    with ctx.session() as s:
        q = select(Follow).order_by(Follow.id)
        if wallet is not None:
            q = q.where(Follow.follower_id == find_follower(s, wallet).id)
        if not show_all:
            q = q.where(Follow.status != FollowStatus.REMOVED)
        rows = [follow_row(f) for f in s.scalars(q)]
    _emit(rows, ["id", "follower", "trader", "copy_pct", "max_trade_usd", "status", "started_at"],
          as_json)


@cli.command("rotate-keys")
@pass_ctx
def rotate_keys(ctx: _Context) -> None:
    """Re-encrypt every stored secret under the first ENCRYPTION_KEY (safe to re-run)."""
    from accounts import rotate_keys as do_rotate

    keyring = ctx.keyring()
    rotated, current = do_rotate(ctx.factory, keyring)
    click.echo(f"rotated {rotated} follower(s); {current} already under the first key")


@cli.command("stats")
@json_option
@pass_ctx
def stats(ctx: _Context, as_json: bool) -> None:
    """Counts of followers, follows, trader fills and copy orders by status."""
    from stats import collect_stats

    with ctx.session() as s:
        data = collect_stats(s)
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
        return
    for key, value in data.items():
        if isinstance(value, dict):
            click.echo(f"{key}:")
            for k, v in value.items():
                click.echo(f"  {k}: {v}")
        else:
            click.echo(f"{key}: {value}")


def main() -> None:
    """Entry point for the `admin` script."""
    cli(prog_name="admin")
