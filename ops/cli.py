"""The `admin` command line (click): parse, call the logic modules, print. Nothing else.

Exit codes: 0 success; 2 bad usage or invalid input (one line on stderr, nothing written);
1 any other failure. Heavy modules (SQLAlchemy, eth_account, httpx) are imported inside the
commands that need them so `admin --help` stays fast.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from infra.errors import InputError
from ops import inputs

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from crypto import KeyRing
    from infra.config import Settings


log = logging.getLogger("pmct.admin")


def _fail(message: str, code: int) -> NoReturn:
    from infra.logs import error_line

    click.echo(error_line(message), err=True)
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
    """One line on stderr and the exit code the error tree gives (infra.errors.exit_code_for).

    InputError (ConfigError included) exits 2; every other error exits 1. The message is the
    error's own for the tree; outside it, a hint for database trouble or `unexpected failure`.
    The traceback goes to the log at DEBUG only.
    """
    from infra.errors import PMCTError, VenueError, exit_code_for
    from infra.logs import failure_message

    log.debug("admin failed", exc_info=exc)
    if isinstance(exc, VenueError):
        message = f"Polymarket request failed: {failure_message(exc)}"
    elif isinstance(exc, PMCTError):
        message = failure_message(exc)
    else:
        message = _database_hint(exc) or failure_message(exc)
    _fail(message, exit_code_for(exc))


def _database_hint(exc: Exception) -> str | None:
    """A one-line explanation for a database failure (outside the tree), else None."""
    from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

    if isinstance(exc, (OperationalError, ProgrammingError)):
        return ("database error: is the database reachable and migrated (`admin init-db`)? "
                f"({type(exc.orig).__name__ if exc.orig else type(exc).__name__})")
    if isinstance(exc, IntegrityError):
        return "the database refused the change (a constraint failed); nothing was written"
    return None


# --- shared helpers -------------------------------------------------------------------------

class _Context:
    """Lazily loaded settings and database for one CLI invocation."""

    def __init__(self) -> None:
        self._settings: Settings | None = None
        self._factory: sessionmaker[Session] | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from infra.config import load_settings
            from infra.logs import configure_logging

            self._settings = load_settings()
            configure_logging(self._settings.log_level if self._settings.log_level != "INFO"
                              else "WARNING", self._settings.log_format)
        return self._settings

    @property
    def factory(self) -> sessionmaker[Session]:
        if self._factory is None:
            from infra.db import make_engine, make_sessionmaker

            self._factory = make_sessionmaker(make_engine(self.settings.database_url))
        return self._factory

    @contextmanager
    def session(self) -> Iterator[Session]:
        from infra.db import session_scope

        with session_scope(self.factory) as s:
            yield s

    def keyring(self) -> KeyRing:
        from crypto import KeyRing

        return KeyRing(self.settings.encryption_key)


pass_ctx = click.make_pass_decorator(_Context, ensure=True)


def _decimal(what: str, allowed: inputs.DecimalRange) -> Callable[[click.Context, click.Parameter, Any],
                                                                  Decimal | None]:
    """A click callback: ops.inputs.parse_decimal within `allowed` (checked before any work)."""
    def convert(_ctx: click.Context, _param: click.Parameter, value: Any) -> Decimal | None:
        return None if value is None else inputs.parse_decimal(value, what, allowed)

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


def _stderr_is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


@contextmanager
def progress_bar(total: int, label: str) -> Iterator[Callable[[int], None] | None]:
    """A click progress bar on stderr when it is a terminal (else None: no output at all)."""
    if total <= 0 or not _stderr_is_tty():
        yield None
        return
    with click.progressbar(length=total, label=label, file=sys.stderr) as bar:
        yield bar.update


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
    from ops.envfile import write_encryption_key

    count = write_encryption_key(env_file, rotate=rotate)
    click.echo(f"ENCRYPTION_KEY written to {env_file} ({count} key(s); the first one encrypts)")


@cli.command("init-db")
@pass_ctx
def init_db(ctx: _Context) -> None:
    """Create or upgrade the database schema (idempotent)."""
    from infra.migrate import upgrade_to_head

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
    from models import Tier
    from ops.accounts import add_follower as do_add
    from wire.types import SignatureType

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
@click.option("--wallet", default=None, help="The follower's wallet (funder or signer).")
@click.option("--follow", "trader", default=None, help="The trader's profile (proxy) wallet.")
@click.option("--copy-pct", default=None, callback=_decimal("--copy-pct", inputs.PERCENT),
              help="Percent of the trader's shares to copy, in (0, 100].")
@click.option("--max-trade", default=None, callback=_decimal("--max-trade", inputs.POSITIVE),
              help="Maximum USD per copied trade.")
@click.option("--shadow-of", type=click.IntRange(min=1), default=None,
              help="Add a paper shadow twin of this follow id instead: same follower and trader, its "
                   "settings unless given here (no --wallet/--follow then).")
@click.option("--max-slippage", default=None, callback=_decimal("--max-slippage", inputs.SLIPPAGE),
              help="Max price slippage vs the trader, a fraction in [0, 1) (default: DEFAULT_MAX_SLIPPAGE).")
@click.option("--daily-cap", default=None, callback=_decimal("--daily-cap", inputs.POSITIVE),
              help="Max USD bought per UTC day through this follow.")
@click.option("--market-cap", default=None, callback=_decimal("--market-cap", inputs.POSITIVE),
              help="Max USD exposure per market through this follow.")
@click.option("--price-min", default=None, callback=_decimal("--price-min", inputs.PRICE),
              help="Skip trades priced below this.")
@click.option("--price-max", default=None, callback=_decimal("--price-max", inputs.PRICE),
              help="Skip trades priced above this.")
@click.option("--label", default=None, help="A name for the trader.")
@click.option("--no-late-exits", is_flag=True,
              help="Do not mirror a leader's exit first seen later than MAX_COPY_DELAY.")
@pass_ctx
def add_follow(ctx: _Context, wallet: str | None, trader: str | None, copy_pct: Decimal | None,
               max_trade: Decimal | None, shadow_of: int | None,
               max_slippage: Decimal | None, daily_cap: Decimal | None,
               market_cap: Decimal | None, price_min: Decimal | None,
               price_max: Decimal | None, label: str | None, no_late_exits: bool) -> None:
    """Make a follower copy a trader from now on (within the follower's tier limits), or with
    --shadow-of add a paper twin of a follow to try other settings beside it."""
    from ops.accounts import FollowLimits
    from ops.copytrading import add_follow_within_tier

    limits = FollowLimits(max_slippage, daily_cap, market_cap, price_min, price_max)
    if shadow_of is not None:
        if wallet is not None or trader is not None or label is not None or no_late_exits:
            raise InputError("--shadow-of takes the follower and trader of that follow: "
                             "no --wallet, --follow, --label or --no-late-exits with it")
        from ops.shadows import add_shadow

        with ctx.session() as s:
            twin = add_shadow(s, shadow_of, copy_pct=copy_pct, max_usd_per_trade=max_trade, limits=limits)
            text = (f"shadow follow #{twin.id} added (paper) beside follow #{shadow_of}: copies "
                    f"{twin.trader.wallet} at {twin.copy_pct}% (max ${twin.max_usd_per_trade} per trade); "
                    f"`admin compare --follow-id {shadow_of}` shows both")
        click.echo(text)
        return
    missing = [name for name, v in (("--wallet", wallet), ("--follow", trader), ("--copy-pct", copy_pct),
                                     ("--max-trade", max_trade)) if v is None]
    if missing:
        raise InputError(f"missing option(s): {', '.join(missing)} (or --shadow-of <follow id>)")
    assert wallet is not None and trader is not None and copy_pct is not None and max_trade is not None
    with ctx.session() as s:
        follow = add_follow_within_tier(s, follower_wallet=wallet, trader_wallet=trader,
                                        copy_pct=copy_pct, max_usd_per_trade=max_trade,
                                        limits=limits, label=label)
        follow.mirror_late_exits = not no_late_exits
        text = (f"follow added: {follow.follower.funder_address} copies {follow.trader.wallet} "
                f"at {follow.copy_pct}% (max ${follow.max_usd_per_trade} per trade)")
    click.echo(text)


close_option = click.option(
    "--close-positions", is_flag=True,
    help="Also sell the follow's copied holdings at market (within the slippage limit).")
yes_option = click.option("--yes", is_flag=True, help="Do not ask for confirmation.")


def _confirm_close(ctx: _Context, s: Any, follows: list[Any], yes: bool) -> int:
    """List what --close-positions sells and ask (unless --yes); the number of holdings."""
    from ops.positions import close_lines

    lines = close_lines(s, follows, paper=not ctx.settings.is_live)
    if not lines:
        click.echo("no copied holdings to close")
        return 0
    for ln in lines:
        click.echo(f"  sell {ln.shares} shares of {ln.market} (token {ln.token_id}, trader {ln.trader})")
    if not yes and not click.confirm(f"Sell these {len(lines)} holding(s) at market?", default=False,
                                     err=True):
        raise click.Abort()
    return len(lines)


def _close(ctx: _Context, s: Any, follows: list[Any]) -> str:
    from infra.db import utcnow
    from ops.positions import close_positions

    queued = close_positions(s, follows, paper=not ctx.settings.is_live, now=utcnow())
    return f"; {len(queued)} close sale(s) queued at market" if queued else ""


@cli.command("remove-follow")
@click.option("--wallet", required=True, help="The follower's wallet.")
@click.option("--follow", "trader", required=True, help="The trader's wallet.")
@close_option
@yes_option
@pass_ctx
def remove_follow(ctx: _Context, wallet: str, trader: str, close_positions: bool, yes: bool) -> None:
    """Stop a follow for good (history is kept). The leader's exits are still mirrored on what it
    holds, unless --close-positions sells it all at market now."""
    from ops.accounts import find_follow
    from ops.accounts import remove_follow as do_remove

    with ctx.session() as s:
        if close_positions and not _confirm_close(ctx, s, [find_follow(s, wallet, trader)], yes):
            close_positions = False
        follow = do_remove(s, wallet, trader)
        text = f"follow removed: {follow.follower.funder_address} no longer copies {follow.trader.wallet}"
        if close_positions:
            text += _close(ctx, s, [follow])
        else:
            text += " (its holdings still follow the leader's exits)"
    click.echo(text)


def _pause_command(paused: bool) -> click.Command:
    verb = "pause" if paused else "resume"

    @click.command(verb)
    @click.option("--wallet", required=True, help="The follower's wallet.")
    @click.option("--follow", "trader", default=None, help="Only this trader's follow.")
    @pass_ctx
    def command(ctx: _Context, wallet: str, trader: str | None) -> None:
        from ops.accounts import set_pause

        with ctx.session() as s:
            text = set_pause(s, wallet, trader, paused)
        click.echo(text)

    command.help = (f"{verb.capitalize()} a follower (all its follows) or, with --follow, one follow."
                    + (" Entries stop; the leader's exits are still mirrored." if paused else ""))
    return command


cli.add_command(_pause_command(True))
cli.add_command(_pause_command(False))


@cli.command("list-followers")
@json_option
@pass_ctx
def list_followers(ctx: _Context, as_json: bool) -> None:
    """List followers (never shows a secret)."""
    from sqlalchemy import select

    from models import Follower
    from ops.accounts import follower_row

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

    from models import Follow, FollowStatus
    from ops.accounts import find_follower, follow_row

    with ctx.session() as s:
        q = select(Follow).order_by(Follow.id)
        if wallet is not None:
            q = q.where(Follow.follower_id == find_follower(s, wallet).id)
        if not show_all:
            q = q.where(Follow.status != FollowStatus.REMOVED)
        rows = [follow_row(f) for f in s.scalars(q)]
    _emit(rows, ["id", "follower", "trader", "copy_pct", "max_trade_usd", "status", "mode", "shadow_of",
                 "started_at"], as_json)


@cli.command("rotate-keys")
@pass_ctx
def rotate_keys(ctx: _Context) -> None:
    """Re-encrypt every stored secret under the first ENCRYPTION_KEY (safe to re-run)."""
    from sqlalchemy import func, select

    from models import Follower
    from ops.accounts import rotate_keys as do_rotate

    keyring = ctx.keyring()
    with ctx.session() as s:
        total = int(s.scalar(select(func.count()).select_from(Follower)) or 0)
    with progress_bar(total, "re-encrypting") as step:
        rotated, current = do_rotate(ctx.factory, keyring, step)
    from notify.destinations import rotate_webhooks

    with ctx.session() as s:
        hooks, hooks_current = rotate_webhooks(s, keyring)
    click.echo(f"rotated {rotated} follower(s); {current} already under the first key")
    if hooks or hooks_current:
        click.echo(f"rotated {hooks} webhook URL(s); {hooks_current} already under the first key")


@cli.command("stats")
@click.option("--latency", is_flag=True,
              help="Per-stage latency of the copies (p50/p95/p99: detect, queue, claim, sign, post, "
                   "ack, first fill).")
@click.option("--hours", type=click.FloatRange(min=0, min_open=True), default=24.0, show_default=True,
              help="With --latency: the copies queued in the last HOURS.")
@json_option
@pass_ctx
def stats(ctx: _Context, latency: bool, hours: float, as_json: bool) -> None:
    """Counts of followers, follows, trader fills and copy orders by status; the builder's
    attributed volume when POLYMARKET_BUILDER_API_KEY is set; with --latency, the copy stages."""
    if latency:
        from infra.db import utcnow
        from ops.latency import latency_table

        with ctx.session() as s:
            rows = latency_table(s, utcnow(), hours)
        _emit(rows, ["stage", "copies", "p50_ms", "p95_ms", "p99_ms"], as_json)
        return
    from ops.stats import collect_stats

    with ctx.session() as s:
        data = collect_stats(s)
    if ctx.settings.builder_credentials is not None:
        data["builder"] = _builder_section(ctx)
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


def _builder_section(ctx: _Context) -> dict[str, object]:
    """The builder's attributed volume, or why it could not be read (stats still print)."""
    from ops.stats import builder_volume
    from polymarket_client import SyncPolymarketClient
    from wire.transport import RetryPolicy

    try:
        with SyncPolymarketClient.from_settings(ctx.settings, retry=RetryPolicy(max_attempts=2),
                                                read_timeout=10.0) as client:
            return builder_volume(ctx.settings, client)
    except Exception as exc:  # noqa: BLE001 - one line, never a secret
        from infra.logs import mask_secrets

        return {"error": mask_secrets(f"{type(exc).__name__}: {exc}")[:200]}


@cli.command("set-follower-limits")
@click.option("--wallet", required=True, help="The follower's wallet.")
@click.option("--daily-cap", default=None,
              help="Max USD bought per UTC day across all the follower's follows ('none' removes it).")
@click.option("--max-exposure", default=None,
              help="Max USD at risk: positions held + open BUY orders, all follows ('none' removes it).")
@click.option("--event-cap", default=None,
              help="Max USD at risk in one event (a neg-risk event's outcomes together) ('none' removes it).")
@click.option("--category-cap", default=None,
              help="Max USD at risk in one market category ('none' removes it).")
@click.option("--window-cap", default=None,
              help="Max USD at risk in markets resolving within RESOLUTION_WINDOW_HOURS of each other "
                   "('none' removes it).")
@click.option("--daily-loss-stop", default=None,
              help="No new BUYs once the day's realized loss reaches this many USD ('none' removes it).")
@pass_ctx
def set_follower_limits(ctx: _Context, wallet: str, daily_cap: str | None, max_exposure: str | None,
                        event_cap: str | None, category_cap: str | None, window_cap: str | None,
                        daily_loss_stop: str | None) -> None:
    """Set a follower's own limits; every copy skipped by one names it in its reason."""
    from ops.accounts import FOLLOWER_LIMITS, parse_decimal
    from ops.accounts import set_follower_limits as do_set

    raw = {"daily_usd_cap": daily_cap, "max_open_exposure": max_exposure, "event_cap": event_cap,
           "category_cap": category_cap, "window_cap": window_cap, "daily_loss_stop": daily_loss_stop}
    if all(v is None for v in raw.values()):
        raise InputError("give at least one of --daily-cap, --max-exposure, --event-cap, --category-cap, "
                         "--window-cap, --daily-loss-stop (a number of USD, or 'none')")

    def value(text: str | None, what: str) -> Decimal | None | str:
        if text is None:
            return "keep"
        return None if text.strip().lower() == "none" else parse_decimal(text, what)

    options = {attr: opt for attr, opt, _ in FOLLOWER_LIMITS}
    values = {attr: value(v, options[attr]) for attr, v in raw.items()}
    with ctx.session() as s:
        follower = do_set(s, wallet, daily_cap=values.pop("daily_usd_cap"),
                          max_exposure=values.pop("max_open_exposure"), **values)
        parts = []
        for attr, _, label in FOLLOWER_LIMITS:
            amount = getattr(follower, attr)
            parts.append(f"{label} {amount if amount is not None else 'none'}"
                         f"{' USD' if amount is not None else ''}")
        text = f"limits of {follower.funder_address}: " + ", ".join(parts)
    click.echo(text)


@cli.command("cancel-open")
@click.option("--live", "live", flag_value=True, default=None, help="Cancel live copies at the venue.")
@click.option("--paper", "live", flag_value=False, help="Close open paper copies.")
@click.option("--wallet", default=None, help="Only this follower's copies.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--timeout", type=click.FloatRange(min=1), default=60.0, show_default=True,
              help="Seconds to wait for the venue's confirmations.")
@pass_ctx
def cancel_open(ctx: _Context, live: bool | None, wallet: str | None, yes: bool, timeout: float) -> None:
    """Cancel every open copy order of one mode (before switching EXECUTION_MODE), confirmed by
    the venue and recorded; run it with the executor stopped."""
    from copying.modes import open_copies_of_mode
    from infra.db import utcnow
    from ops.accounts import find_follower
    from ops.cancels import cancel_live, close_paper, executor_alive, live_context

    if live is None:
        raise InputError("give exactly one of --live or --paper")
    with ctx.session() as s:
        follower_id = find_follower(s, wallet).id if wallet is not None else None
        lines = open_copies_of_mode(s, not live, wallet_follower_id=follower_id)
        alive = executor_alive(s, utcnow(), ctx.settings.executor_poll_interval)
    mode = "live" if live else "paper"
    if not lines:
        click.echo(f"no open {mode} copy order")
        return
    click.echo(f"{len(lines)} open {mode} copy order(s):")
    for line in lines[:20]:
        click.echo(f"  {line.line()}")
    if len(lines) > 20:
        click.echo(f"  … and {len(lines) - 20} more")
    if live and alive is not None:
        click.echo(f"warning: an executor looks alive (pid {alive.pid} on {alive.host}); stop it first "
                   "or it may post or reprice these while they are cancelled", err=True)
    if not yes:
        if not sys.stdin.isatty():
            raise InputError("not a terminal: pass --yes to confirm")
        click.confirm(f"cancel these {len(lines)} {mode} copy order(s)?", abort=True, err=True)
    if not live:
        result = close_paper(ctx.factory, follower_id)
    else:
        if not ctx.settings.encryption_key:
            raise InputError("ENCRYPTION_KEY is not set: the followers' credentials cannot be read")
        import asyncio

        from polymarket_client import PolymarketClient

        async def go() -> Any:
            client = PolymarketClient.from_settings(ctx.settings)
            try:
                return await cancel_live(live_context(ctx.settings, ctx.factory, client), follower_id,
                                         timeout)
            finally:
                await client.aclose()

        result = asyncio.run(go())
    click.echo(f"{mode}: {result.canceled} cancelled"
               + (f" (confirmed by the venue), {result.filled} filled before the cancel, "
                  f"{result.not_placed} never placed (closed NOT_PLACED)" if live else "")
               + f" in {result.seconds:.1f} s")
    if result.left:
        click.echo(f"still open after {timeout:.0f} s: {len(result.left)}", err=True)
        for line in result.left[:20]:
            click.echo(f"  {line.line()}", err=True)
        sys.exit(1)


# --- operations: credentials, reports, dashboard views, kill switch, tiers, doctor -----------

def _day(what: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    """A click callback: ops.inputs.parse_day (a YYYY-MM-DD day in the sane window)."""
    def convert(_ctx: click.Context, _param: click.Parameter, value: Any) -> Any:
        return None if value is None else inputs.parse_day(value, what)

    return convert


def _write_private(path: Path, text: str) -> None:
    """Write `text` atomically with mode 600 (reports hold financial data)."""
    import os

    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", newline="") as fh:
        fh.write(text)
    os.replace(tmp, path)


@contextmanager
def _price_source(ctx: _Context, enabled: bool) -> Iterator[Callable[[str], Decimal | None] | None]:
    """CLOB midpoints for unrealized P&L (None when disabled); errors become 'n/a'."""
    if not enabled:
        yield None
        return
    from polymarket_client import SyncPolymarketClient
    from wire.transport import RetryPolicy

    client = SyncPolymarketClient.from_settings(ctx.settings, retry=RetryPolicy(max_attempts=1),
                                                read_timeout=5.0)
    from wire.errors import TransportError

    unreachable = False

    def mid(token_id: str) -> Decimal | None:
        nonlocal unreachable
        if unreachable:  # the CLOB is down: do not wait once per token
            return None
        try:
            return client.get_midpoint(token_id)
        except TransportError:
            unreachable = True
            return None
        except Exception:  # noqa: BLE001 - a missing price is reported as n/a
            return None

    try:
        yield mid
    finally:
        client.close()


@cli.command("auth-follower")
@click.option("--wallet", required=True, help="The follower's wallet (funder or signer).")
@click.option("--nonce", type=click.IntRange(0, 2**256 - 1), default=0, show_default=True,
              help="L1 nonce of the API key to create or derive.")
@pass_ctx
def auth_follower(ctx: _Context, wallet: str, nonce: int) -> None:
    """Create or derive the follower's CLOB L2 credentials and store them encrypted.

    Prints only the API key id; the secret and passphrase never leave the encrypted column.
    """
    from crypto import signing_key
    from ops.accounts import find_follower, normalize_address
    from polymarket_client import SyncPolymarketClient

    normalize_address(wallet, "--wallet")
    keyring = ctx.keyring()
    with ctx.session() as s:
        follower = find_follower(s, wallet)
        token, signer, funder = (follower.encrypted_private_key, follower.signer_address,
                                 follower.funder_address)
    with SyncPolymarketClient.from_settings(ctx.settings) as client:
        with signing_key(keyring, token, signer) as key:
            creds = client.create_or_derive_api_key(key, nonce)
    encrypted = keyring.encrypt_api_creds(creds)
    with ctx.session() as s:
        follower = find_follower(s, funder)
        follower.encrypted_api_creds = encrypted
        follower.api_key_id = creds.api_key
    click.echo(f"CLOB credentials stored for {funder}: API key {creds.api_key}")


@cli.command("report")
@click.option("--wallet", required=True, help="The follower's wallet.")
@click.option("--start", required=True, callback=_day("--start"),
              help="First UTC day (YYYY-MM-DD), inclusive.")
@click.option("--end", default=None, callback=_day("--end"),
              help="Last UTC day (YYYY-MM-DD), inclusive; default: up to now.")
@click.option("--output", type=click.Path(path_type=Path), default=None,
              help="Write the CSV here (mode 600) instead of stdout.")
@click.option("--summary-file", type=click.Path(path_type=Path), default=None,
              help="Write the summary block to this CSV instead of after the fills.")
@click.option("--by-trader", is_flag=True, help="Add one summary row per trader (attribution).")
@click.option("--chart", type=click.Path(path_type=Path), default=None,
              help="Also draw cumulative realized P&L per trader into this PNG (needs matplotlib).")
@click.option("--no-prices", is_flag=True,
              help="Do not fetch CLOB midpoints (unrealized P&L shows n/a).")
@json_option
@pass_ctx
def report(ctx: _Context, wallet: str, start: Any, end: Any, output: Path | None,
           summary_file: Path | None, by_trader: bool, chart: Path | None, no_prices: bool,
           as_json: bool) -> None:
    """CSV P&L report of a follower: one row per fill, then totals (average-cost realized P&L)."""
    from infra.db import utcnow
    from ops.accounts import find_follower
    from ops.reports import (
        build_report,
        count_fills,
        cumulative_series,
        day_window,
        draw_chart,
        render_csv,
        report_json,
    )

    inputs.check_output_file(output, "--output")
    inputs.check_output_file(summary_file, "--summary-file")
    inputs.check_output_file(chart, "--chart", ".png")
    if chart is not None:
        import importlib.util

        if importlib.util.find_spec("matplotlib") is None:
            raise InputError("--chart needs matplotlib: pip install matplotlib")
    lo, hi = day_window(start, end, utcnow())
    with ctx.session() as s:
        follower = find_follower(s, wallet)
        total = count_fills(s, [follower.id], hi)
        with _price_source(ctx, not no_prices) as prices, \
                progress_bar(total, "replaying fills") as step:
            rep = build_report(s, follower, lo, hi, prices, by_trader=by_trader, progress=step)
    if as_json:
        text = json.dumps(report_json(rep), indent=2, default=str) + "\n"
    else:
        text = render_csv(rep, with_summary=summary_file is None)
    if summary_file is not None and not as_json:
        import io

        from ops.reports import write_summary_csv

        buf = io.StringIO()
        write_summary_csv(rep, buf)
        _write_private(summary_file, buf.getvalue())
    if chart is not None:
        draw_chart(cumulative_series(rep.lines), str(chart),
                   f"PMCT cumulative realized P&L: {rep.follower}")
    if output is not None:
        _write_private(output, text)
        click.echo(f"report written to {output} ({len(rep.lines)} fill(s))", err=True)
    else:
        click.echo(text, nl=False)


@cli.command("performance")
@click.option("--wallet", default=None, help="Only this follower (default: all).")
@click.option("--start", default=None, callback=_day("--start"), help="First UTC day, inclusive.")
@click.option("--end", default=None, callback=_day("--end"), help="Last UTC day, inclusive.")
@click.option("--no-prices", is_flag=True, help="Do not fetch CLOB midpoints (unrealized n/a).")
@click.option("--by-trader", is_flag=True,
              help="Copyability per trader from our own fills: copy rate and skip mix, slippage (bps), "
                   "detection and execution latency, tracking error, hold-to-resolution ratio.")
@click.option("--mode", type=click.Choice(["all", "live", "paper"]), default="all", show_default=True,
              help="With --by-trader: only live or only paper copies.")
@json_option
@pass_ctx
def performance(ctx: _Context, wallet: str | None, start: Any, end: Any, no_prices: bool,
                by_trader: bool, mode: str, as_json: bool) -> None:
    """Per follower and trader: win rate, average slippage, P&L attribution (--by-trader: how
    copyable each trader is)."""
    from infra.db import utcnow
    from ops.accounts import find_follower
    from ops.performance import COLUMNS, performance_rows
    from ops.reports import count_fills, day_window

    lo, hi = day_window(start, end, utcnow())
    if by_trader:
        from ops.copyability import COLUMNS as TRADER_COLUMNS
        from ops.copyability import copyability_rows

        with ctx.session() as s:
            fid = find_follower(s, wallet).id if wallet is not None else None
            trader_rows = copyability_rows(s, lo, hi, mode=mode, follower_id=fid)
        _emit(trader_rows, TRADER_COLUMNS, as_json)
        return
    if mode != "all":
        raise InputError("--mode goes with --by-trader")
    with ctx.session() as s:
        followers = [find_follower(s, wallet)] if wallet is not None else None
        total = count_fills(s, [f.id for f in followers] if followers else None, hi)
        with _price_source(ctx, not no_prices) as prices, \
                progress_bar(total, "replaying fills") as step:
            rows = performance_rows(s, followers, lo, hi, prices, step)
    if as_json:
        _emit(rows, COLUMNS, True)
        return
    _print_table([{k: v for k, v in r.items() if k != "attribution"} for r in rows],
                 [c for c in COLUMNS if c != "attribution"])
    for r in rows:
        if r.get("attribution"):
            click.echo(f"{r['follower']}: {r['attribution']}")


@cli.command("compare")
@click.option("--follow-id", type=click.IntRange(min=1), required=True,
              help="A live follow with a shadow twin (or the shadow's own id).")
@click.option("--start", default=None, callback=_day("--start"), help="First UTC day, inclusive.")
@click.option("--end", default=None, callback=_day("--end"), help="Last UTC day, inclusive.")
@json_option
@pass_ctx
def compare(ctx: _Context, follow_id: int, start: Any, end: Any, as_json: bool) -> None:
    """A follow and its shadow twins side by side: copies, expected vs realized slippage, P&L."""
    from infra.db import utcnow
    from ops.reports import day_window
    from ops.shadows import compare as do_compare

    lo, hi = day_window(start, end, utcnow())
    with ctx.session() as s:
        rows = [side.row() for side in do_compare(s, follow_id, lo, hi)]
    _emit(rows, ["follow", "mode", "settings", "copies", "filled", "skipped", "expected_slippage_bps",
                 "realized_slippage_bps", "volume_usd", "realized_pnl_usd", "open_cost_usd"], as_json)


@cli.command("status")
@json_option
@pass_ctx
def status(ctx: _Context, as_json: bool) -> None:
    """Traders followed, open and pending copies, daemons, shard leases, fill sources, kill switch."""
    from infra.db import utcnow
    from ops.views import Intervals, status_data

    intervals = Intervals(ctx.settings.watcher_poll_interval, ctx.settings.executor_poll_interval)
    with ctx.session() as s:
        data = status_data(s, utcnow(), intervals, sources=ctx.settings.fill_sources,
                           chain_stale=ctx.settings.chain_stale_seconds)
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
        return
    ks = data["kill_switch"]
    line = f"kill switch: {ks['global'].upper()}"
    if ks["global"] == "on":
        line += f" since {ks['since']} ({ks['reason']})"
    click.echo(line)
    for row in ks["disabled_followers"]:
        click.echo(f"  disabled follower {row['follower']}: {row['reason']}")
    for row in ks["disabled_follows"]:
        click.echo(f"  disabled follow {row['follower']} -> {row['trader']}: {row['reason']}")
    sections = [
        ("traders followed", "traders", ["trader", "label", "active_follows", "last_polled_at"]),
        ("open orders", "open_orders", ["id", "follower", "trader", "market", "side", "status",
                                        "age", "trader_price", "initial_price", "current_price",
                                        "size", "filled"]),
        ("pending orders", "pending_orders", ["id", "follower", "trader", "market", "side",
                                              "status", "age", "trader_price", "size"]),
        ("daemons", "daemons", ["name", "host", "pid", "last_cycle_at", "last_cycle_age",
                                "last_cycle_ms", "stale"]),
        ("shard leases", "shard_leases", ["shard", "owner", "expires_at", "expired"]),
        ("fill sources", "fill_sources", ["shard", "source", "mode", "healthy", "block",
                                          "lag_blocks", "last_seen", "data_api", "last_error"]),
        ("redemptions (resolved markets not redeemed yet)", "redemptions",
         ["follower", "market", "shares", "amount", "method", "status", "tx_hash"]),
    ]
    for title, key, columns in sections:
        click.echo(f"\n{title}:")
        _print_table(data[key], columns)


@cli.command("history")
@click.option("--wallet", default=None, help="Only this follower's copies.")
@click.option("--trader", default=None, help="Only copies of this trader.")
@click.option("--start", default=None, callback=_day("--start"),
              help="Queued on/after this UTC day.")
@click.option("--end", default=None, callback=_day("--end"), help="Queued on/before this UTC day.")
@click.option("--market", default=None, help="Condition id, or words of the market's title.")
@click.option("--status", "statuses", multiple=True,
              type=click.Choice([s.lower() for s in (
                  "QUEUED", "CLAIMED", "SIGNED", "LIVE", "PARTIAL", "CANCELING", "FILLED",
                  "REJECTED", "IN_DOUBT", "NOT_PLACED", "CANCELED", "EXPIRED", "SKIPPED")],
                  case_sensitive=False),
              help="Only these statuses (repeatable).")
@click.option("--limit", type=click.IntRange(1, 100000), default=100, show_default=True,
              help="At most this many rows, newest first.")
@json_option
@pass_ctx
def history(ctx: _Context, wallet: str | None, trader: str | None, start: Any, end: Any,
            market: str | None, statuses: tuple[str, ...], limit: int, as_json: bool) -> None:
    """Copy orders, newest first, with why each was skipped, rejected or cancelled."""
    from ops.accounts import find_follower
    from ops.copytrading import history_filter
    from ops.views import history_rows

    with ctx.session() as s:
        follower_id = find_follower(s, wallet).id if wallet is not None else None
        filt = history_filter(s, follower_id=follower_id, trader=trader, start=start, end=end,
                              market=market, statuses=statuses, limit=limit)
        rows = history_rows(s, filt)
    _emit(rows, ["id", "queued_at", "trader", "market", "side", "trader_price", "price", "size",
                 "filled", "status", "reason"], as_json)


def _switch_command(disable: bool) -> click.Command:
    verb = "disable" if disable else "enable"

    @click.command(verb)
    @click.option("--all", "everything", is_flag=True,
                  help="The global kill switch (every follower).")
    @click.option("--wallet", default=None, help="One follower.")
    @click.option("--follow", "trader", default=None, help="With --wallet: one follow only.")
    @pass_ctx
    def command(ctx: _Context, everything: bool, wallet: str | None, trader: str | None,
                **kw: Any) -> None:
        from copying import killswitch as ks
        from ops.accounts import find_follow, find_follower
        from ops.positions import active_follows, follows_of

        reason = kw.get("reason")
        close, yes = bool(kw.get("close_positions")), bool(kw.get("yes"))
        if close and everything:
            raise InputError("--close-positions needs --wallet (one follower or one follow)")
        if everything == (wallet is not None):
            raise InputError(
                f"give exactly one of --all or --wallet (see `admin {verb} --help`)")
        if trader is not None and wallet is None:
            raise InputError("--follow needs --wallet")
        if reason is not None:
            reason = inputs.parse_text(reason, "--reason", 200)  # system_flags.value
        from ops.cancels import still_open

        scope: dict[str, Any] = {}
        open_before = 0
        with ctx.session() as s:
            if everything:
                if disable:
                    open_before = len(still_open(s))
                    ks.disable_all(s, reason)
                    text = ("kill switch ON: no new copies anywhere; the executor cancels every "
                            "open order")
                else:
                    was = ks.enable_all(s)
                    text = ("kill switch OFF: copying resumes" if was
                            else "kill switch was already off")
            elif trader is not None:
                assert wallet is not None
                follow = find_follow(s, wallet, trader)
                if disable:
                    from ops.copytrading import disable_copying

                    # exits keep being mirrored: only the follow's entries are cancelled
                    scope = {"follow_id": follow.id, "side": "BUY"}
                    open_before = len(still_open(s, **scope))
                    close = close and bool(_confirm_close(ctx, s, [follow], yes))
                    disable_copying(s, follower_wallet=wallet, trader_wallet=trader, reason=reason)
                    label = f"{follow.follower.funder_address} -> {follow.trader.wallet}"
                    text = (f"follow {label} disabled: no new copies; its open BUY orders get "
                            "cancelled; the leader's exits are still mirrored")
                    if close:
                        text += _close(ctx, s, [follow])
                else:
                    follow = find_follow(s, wallet, trader)
                    label = f"{follow.follower.funder_address} -> {follow.trader.wallet}"
                    was = ks.enable_follow(s, follow)
                    text = (f"follow {label} enabled" if was
                            else f"follow {label} was not disabled "
                                 "(use `admin resume` for a pause)")
            else:
                follower = find_follower(s, wallet)  # type: ignore[arg-type]
                if disable:
                    scope = {"follower_id": follower.id, "side": "BUY"}
                    open_before = len(still_open(s, **scope))
                    follows = active_follows(follows_of(s, follower, None))
                    close = close and bool(_confirm_close(ctx, s, follows, yes))
                    ks.disable_follower(s, follower, reason)
                    text = (f"follower {follower.funder_address} disabled: no new copies; its open "
                            "BUY orders get cancelled; the leader's exits are still mirrored")
                    if close:
                        text += _close(ctx, s, follows)
                else:
                    was = ks.enable_follower(s, follower)
                    text = (f"follower {follower.funder_address} enabled" if was else
                            f"follower {follower.funder_address} was not disabled")
        click.echo(text)
        wait = kw.get("wait")
        if disable and wait:
            _wait_for_cancels(ctx, float(wait), scope, open_before)

    if disable:
        command = click.option("--reason", default=None,
                               help="Why (shown by `admin status`).")(command)
        command = close_option(command)
        command = yes_option(command)
        command = click.option("--wait", type=click.FloatRange(min=0), default=30.0, show_default=True,
                               help="Seconds to wait for the executor's confirmed cancels (0: do "
                                    "not wait).")(command)
    command.help = (
        "Kill switch: stop new copies and cancel open orders (--all, a follower, or one follow). "
        "With --all every order stops, exits included; for a follower or a follow the leader's "
        "exits are still mirrored (--close-positions also sells the holdings at market)."
        if disable else
        "Lift a kill switch set by `admin disable` (--all, a follower, or one follow).")
    return command


def _wait_for_cancels(ctx: _Context, timeout: float, scope: dict[str, Any], open_before: int) -> None:
    """After a disable: wait until the executor confirmed every cancel of the scope; say what is
    still pending (exit 1) when the timeout passes."""
    from infra.db import utcnow
    from ops.cancels import executor_alive, wait_for_cancels

    if not open_before:
        click.echo("no open order to cancel")
        return
    click.echo(f"waiting for the executor to cancel {open_before} open order(s) (up to {timeout:.0f} s)…")
    waited, left = wait_for_cancels(ctx.factory, timeout, **scope)
    if not left:
        click.echo(f"all {open_before} open order(s) cancelled and confirmed in {waited:.1f} s")
        return
    click.echo(f"still pending after {waited:.0f} s: {len(left)} order(s)", err=True)
    for line in left[:20]:
        click.echo(f"  {line.line()}", err=True)
    with ctx.session() as s:
        alive = executor_alive(s, utcnow(), ctx.settings.executor_poll_interval)
    if alive is None:
        click.echo("no executor seems to be running: start it, or cancel them with "
                   "`./admin cancel-open --live`", err=True)
    else:
        click.echo(f"the executor (pid {alive.pid} on {alive.host}) has not confirmed them yet; if it "
                   "is stopped, cancel them with `./admin cancel-open --live`", err=True)
    sys.exit(1)


cli.add_command(_switch_command(True))
cli.add_command(_switch_command(False))


@cli.command("set-notify")
@click.option("--wallet", default=None, help="The follower's wallet.")
@click.option("--admin", "for_admin", is_flag=True,
              help="An admins' destination (daemon alerts, and every follower's events it asks for).")
@click.option("--telegram-chat", "chat", default=None,
              help="Telegram chat id (the bot's answer to /start shows it).")
@click.option("--discord-webhook", "webhook", default=None,
              help="Discord webhook URL, or '-' to read it from stdin (keeps it out of shell history).")
@click.option("--events", default=None,
              help="Comma-separated events (copy_filled, copy_skipped, copy_rejected, copy_in_doubt, "
                   "kill_switch_on, kill_switch_off, daemon_stale, daemon_recovered, "
                   "resolution_payout, daily_digest), 'all' or 'default'.")
@click.option("--remove", is_flag=True, help="Stop sending to this destination.")
@click.option("--test", "send_test", is_flag=True,
              help="Send a test message now (to this destination, or to all of --wallet/--admin).")
@pass_ctx
def set_notify(ctx: _Context, wallet: str | None, for_admin: bool, chat: str | None,
               webhook: str | None, events: str | None, remove: bool, send_test: bool) -> None:
    """Where a follower's (or the admins') notifications go; webhook URLs are stored encrypted."""
    from infra.logs import register_secret
    from notify import destinations as nd
    from ops.accounts import find_follower

    if for_admin == (wallet is not None):
        raise InputError("give exactly one of --wallet or --admin")
    if chat is not None and webhook is not None:
        raise InputError("give one of --telegram-chat or --discord-webhook, not both")
    if chat is None and webhook is None and not send_test:
        raise InputError("give --telegram-chat or --discord-webhook (or --test alone to test "
                             "the existing destinations)")
    if remove and (events is not None or send_test):
        raise InputError("--remove takes no --events or --test")
    if events is not None and chat is None and webhook is None:
        raise InputError("--events needs --telegram-chat or --discord-webhook")
    if webhook == "-":
        webhook = sys.stdin.readline().strip()
    if webhook:
        register_secret(webhook)
    chat_id = nd.parse_chat_id(chat) if chat is not None else None
    hook = nd.parse_webhook_url(webhook) if webhook is not None else None
    chosen = nd.parse_events(events, admin=for_admin)
    keyring = ctx.keyring() if hook is not None and not remove else None
    with ctx.session() as s:
        follower = find_follower(s, wallet) if wallet is not None else None
        who = "the admins" if follower is None else follower.funder_address
        if chat_id is None and hook is None:
            dests = nd.destinations(s, follower, enabled_only=True)
            if not dests:
                raise InputError(f"no notification destination for {who}")
            text = None
        elif remove:
            dest = nd.remove_destination(s, follower=follower, chat_id=chat_id, webhook=hook)
            if dest is None:
                raise InputError(f"{who} has no such destination")
            dests, text = [], f"notifications for {who} no longer go to {dest.label}"
        else:
            dest = nd.set_destination(s, keyring, follower=follower, chat_id=chat_id, webhook=hook,
                                      events=chosen)
            dests = [dest]
            text = (f"notifications for {who} go to {dest.label} (events: "
                    f"{','.join(sorted(k.value for k in nd.events_of(dest)))})")
        for d in dests:
            s.expunge(d)
    if text:
        click.echo(text)
    if chat_id is not None and not remove and not ctx.settings.telegram_bot_token:
        click.echo("note: TELEGRAM_BOT_TOKEN is not set; the notifier cannot reach Telegram until it is",
                   err=True)
    if send_test:
        from crypto import KeyRing
        from notify.testsend import send_tests

        ring = KeyRing(ctx.settings.encryption_key) if ctx.settings.encryption_key else None
        results = send_tests(ctx.settings, ring, dests, who)
        for r in results:
            click.echo(f"test message to {r.label}: {r.detail}")
        if not all(r.ok for r in results):
            sys.exit(1)


@cli.command("list-notify")
@click.option("--wallet", default=None, help="Only this follower's destinations.")
@click.option("--admin", "for_admin", is_flag=True, help="Only the admins' destinations.")
@json_option
@pass_ctx
def list_notify(ctx: _Context, wallet: str | None, for_admin: bool, as_json: bool) -> None:
    """Notification destinations (a webhook shows as its label, never its URL)."""
    from sqlalchemy import select

    from models import Follower
    from notify import destinations as nd
    from ops.accounts import find_follower

    with ctx.session() as s:
        if wallet is not None:
            dests = nd.destinations(s, find_follower(s, wallet))
        else:
            dests = nd.destinations(s, None, everything=not for_admin)
        wallets = dict(s.execute(select(Follower.id, Follower.funder_address)).all())
        rows = [nd.destination_row(d, wallets.get(d.follower_id or 0)) for d in dests]
    _emit(rows, ["id", "scope", "channel", "target", "events", "enabled", "disabled_reason"],
          as_json)


@cli.command("set-tier")
@click.option("--wallet", required=True, help="The follower's wallet.")
@click.option("--tier", required=True, type=click.Choice(["free", "pro", "elite", "whale"]),
              help="New tier. A downgrade that current follows would violate is refused.")
@pass_ctx
def set_tier(ctx: _Context, wallet: str, tier: str) -> None:
    """Change a follower's subscription tier (free, pro, elite, whale)."""
    from copying.tiers import set_tier as do_set
    from ops.accounts import find_follower

    with ctx.session() as s:
        addr, old, new = do_set(s, find_follower(s, wallet), tier)
    click.echo(f"tier of {addr}: {old} -> {new}")


@cli.command("add-user")
@click.option("--username", required=True, help="Login name (3-64 of letters, digits, _ . @ -).")
@click.option("--role", required=True, type=click.Choice(["admin", "follower"]),
              help="admin: every wallet; follower: only --wallet.")
@click.option("--wallet", default=None, help="Follower users: the follower's wallet.")
@click.option("--password", "password", default=None,
              help="Omit (hidden prompt, asked twice) or '-' (read one line from stdin).")
@pass_ctx
def add_user(ctx: _Context, username: str, role: str, wallet: str | None,
             password: str | None) -> None:
    """Add a dashboard / HTTP API user (the password is stored only as an argon2 hash)."""
    from ops.users import add_user as do_add
    from ops.users import validate_password, validate_username

    validate_username(username)  # refuse a bad name before asking for a password
    if role == "follower" and wallet is None:
        raise InputError("--wallet is required for a follower user")
    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
    elif password == "-":  # noqa: S105 - the stdin marker, not a password
        password = sys.stdin.readline()
    else:
        raise InputError("--password takes only '-' (stdin); omit it for a hidden prompt")
    assert password is not None
    password = validate_password(password)
    with ctx.session() as s:
        user = do_add(s, username=username, role=role, password=password, wallet=wallet)
        text = f"user {user.username} added ({user.role.value}" + (
            f", wallet {user.follower.funder_address})" if user.follower else ")")
    password = None
    click.echo(text)


@cli.command("create-api-token")
@click.option("--username", required=True, help="The user the token acts as.")
@pass_ctx
def create_api_token(ctx: _Context, username: str) -> None:
    """Create a bearer token for the HTTP API; printed once, stored only as a SHA-256 digest."""
    from ops.users import create_api_token as do_create

    with ctx.session() as s:
        token = do_create(s, username)
    click.echo(token)
    click.echo(f"API token for {username.strip()} (shown once; send it as "
               "`Authorization: Bearer <token>`)", err=True)


@cli.command("set-follow")
@click.option("--wallet", required=True, help="The follower's wallet.")
@click.option("--follow", "trader", required=True, help="The trader's wallet.")
@click.option("--late-exits", type=click.Choice(["on", "off"]), required=True,
              help="Mirror a leader's exit first seen later than MAX_COPY_DELAY (on, the default).")
@pass_ctx
def set_follow(ctx: _Context, wallet: str, trader: str, late_exits: str) -> None:
    """Change a follow's settings (late exits)."""
    from ops.accounts import find_follow

    with ctx.session() as s:
        follow = find_follow(s, wallet, trader)
        follow.mirror_late_exits = late_exits == "on"
        text = (f"follow {follow.follower.funder_address} -> {follow.trader.wallet}: late exits "
                f"{late_exits}")
    click.echo(text)


@cli.command("redeem")
@click.option("--wallet", required=True, help="The follower's wallet.")
@click.option("--dry-run", is_flag=True, help="Only show what would be redeemed and how.")
@json_option
@pass_ctx
def redeem(ctx: _Context, wallet: str, dry_run: bool, as_json: bool) -> None:
    """Redeem the follower's resolved winning positions for pUSD (exactly once each).

    Settles the follower's resolved markets first; EOA wallets send a transaction through
    POLYGON_RPC; Safe, proxy and deposit wallets go through the relayer when
    POLYMARKET_BUILDER_* is set, else they are listed as "redeem by hand". Paper mode settles at
    the payout.
    """
    from ops.accounts import find_follower
    from ops.positions import redeem as do_redeem

    with ctx.session() as s:
        follower_id = find_follower(s, wallet).id
    if not dry_run and ctx.settings.is_live and not ctx.settings.encryption_key:
        raise InputError("ENCRYPTION_KEY is not set: cannot sign a redemption")
    result = do_redeem(ctx.settings, ctx.factory, follower_id, dry_run=dry_run)
    if as_json:
        click.echo(json.dumps(result, indent=2, default=str))
        return
    if result["paper"]:
        click.echo("paper mode: resolved positions are settled at the payout (no transaction)")
    for cond in result["markets_settled"]:
        click.echo(f"market {cond} resolved: positions settled")
    if not result["redemptions"]:
        click.echo("nothing to redeem")
    for r in result["redemptions"]:
        line = f"{r['condition_id']}: {r['shares']} shares -> {r['amount']} pUSD via {r['method']}"
        if r["why_manual"]:
            line += f" (redeem by hand: {r['why_manual']})"
        if dry_run:
            line += "; calls: " + ", ".join(f"{c['to']} {c['data'][:10]}…" for c in r["calls"])
        click.echo(line)
    for outcome, n in sorted(result["outcome"].items()):
        click.echo(f"{outcome.lower()}: {n}")


@cli.command("doctor")
@click.option("--wallet", default=None, help="Also check this follower.")
@click.option("--offline", is_flag=True, help="Skip every network check.")
@json_option
@pass_ctx
def doctor(ctx: _Context, wallet: str | None, offline: bool, as_json: bool) -> None:
    """Pre-flight checks (OK / WARN / FAIL, one line each); exit 1 on any FAIL."""
    from infra.errors import ConfigError
    from infra.startup import env_file_path
    from ops.accounts import find_follower, normalize_address
    from ops.doctor import Doctor, fail, rpc_checks, rpc_get_code

    if wallet is not None:
        normalize_address(wallet, "--wallet")
    try:
        settings = ctx.settings
    except ConfigError as exc:
        checks = [fail("settings", str(exc), "fix the variable in .env or the environment")]
        _print_checks(checks, as_json)
        sys.exit(1)
    if wallet is not None:
        try:
            with ctx.session() as s:
                find_follower(s, wallet)
        except InputError:
            raise
        except Exception:  # noqa: BLE001, S110 - the database check below reports it
            pass
    client = None
    if not offline:
        from polymarket_client import SyncPolymarketClient
        from wire.transport import RetryPolicy

        client = SyncPolymarketClient.from_settings(settings, retry=RetryPolicy(max_attempts=1),
                                                    read_timeout=5.0)
    doc = Doctor(settings=settings, factory=ctx.factory, client=client,
                 get_code=None if offline else rpc_get_code(settings.polygon_rpc),
                 rpc_check=None if offline else (lambda: rpc_checks(settings)),
                 env_file=env_file_path())
    try:
        doc.check_deployment()
        schema_ok = all(c.status.value == "OK" for c in doc.results
                        if c.name in ("database", "schema"))
        if wallet is not None and schema_ok:
            doc.check_follower(wallet)
    finally:
        if client is not None:
            client.close()
    _print_checks(doc.results, as_json)
    if doc.failed:
        sys.exit(1)


def _print_checks(checks: Sequence[Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps([c.as_dict() for c in checks], indent=2))
        return
    for c in checks:
        click.echo(c.line())
    fails = sum(1 for c in checks if c.status.value == "FAIL")
    warns = sum(1 for c in checks if c.status.value == "WARN")
    click.echo(f"{len(checks)} check(s): {fails} FAIL, {warns} WARN")


def main() -> None:
    """Entry point for the `admin` script."""
    cli(prog_name="admin")
