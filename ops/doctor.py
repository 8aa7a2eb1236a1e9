"""`admin doctor`: pre-flight checks of the deployment and of a follower, one line each.

Every check ends OK, WARN or FAIL with what to do; the command exits 1 when any check FAILs.
Deployment: settings, .env permissions, database reachable and migrated, encryption key
present and decrypting every stored secret, Polymarket endpoints reachable, clock skew vs
the CLOB's /time, daemon heartbeats, kill switch, and the Polygon RPC the chain fill source
reads (chain id, head age, eth_getLogs on the three exchanges, the block-range cap it meets,
the websocket when POLYGON_WS is set). Follower: status, wallet type consistent
with the funder (structure, and contract code on chain via POLYGON_RPC), private key, CLOB L2
credentials valid (GET closed-only), closed-only status, pUSD balance and allowance for each
exchange the follower trades on (E1111… standard, e2222… neg-risk, e3333… ExchangeV3).

Invariant: no secret is ever printed; a check that cannot run (network down) is reported,
never raised. Balance and allowance problems FAIL in live mode and WARN in paper mode (paper
never spends them); missing L2 credentials likewise.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

SKEW_WARN_SECONDS = 2.0
SKEW_FAIL_SECONDS = 10.0
PLACEHOLDER_CONDITION = "0x" + "0" * 64
PROBE_WALLET = "0x" + "0" * 39 + "1"
EIP7702_PREFIX = "0xef0100"


class Status(enum.StrEnum):
    """Outcome of one check."""

    OK = "OK"
    WARN = "WARN"
    FAIL = "FAIL"


@dataclass(frozen=True)
class Check:
    """One check's result: status, what was seen, what to do."""

    name: str
    status: Status
    detail: str
    hint: str = ""

    def line(self) -> str:
        """`OK   name: detail` (+ ` -> hint`)."""
        text = f"{self.status.value:<4} {self.name}: {self.detail}"
        return text + (f" -> {self.hint}" if self.hint else "")

    def as_dict(self) -> dict[str, str]:
        """JSON-safe form."""
        return {"name": self.name, "status": self.status.value, "detail": self.detail,
                "hint": self.hint}


def ok(name: str, detail: str) -> Check:
    """An OK result."""
    return Check(name, Status.OK, detail)


def warn(name: str, detail: str, hint: str = "") -> Check:
    """A WARN result."""
    return Check(name, Status.WARN, detail, hint)


def fail(name: str, detail: str, hint: str = "") -> Check:
    """A FAIL result."""
    return Check(name, Status.FAIL, detail, hint)


def _err(exc: BaseException) -> str:
    from infra.logs import mask_secrets

    text = str(exc).splitlines()[0] if str(exc) else ""
    return mask_secrets(f"{type(exc).__name__}: {text}"[:300])


@dataclass
class Doctor:
    """What the checks need; the network parts are None when running offline."""

    settings: Any
    factory: Any = None
    client: Any = None  # SyncPolymarketClient-like
    get_code: Callable[[str], str] | None = None
    rpc_check: Callable[[], list[Check]] | None = None
    clock: Callable[[], float] = time.time
    env_file: Path = field(default_factory=lambda: Path(".env"))
    results: list[Check] = field(default_factory=list)

    @property
    def live(self) -> bool:
        """True in live mode (money problems FAIL instead of WARN)."""
        return bool(self.settings.is_live)

    def _money_problem(self, name: str, detail: str, hint: str) -> Check:
        return fail(name, detail, hint) if self.live else warn(
            name, detail + " (paper mode: only blocks live trading)", hint)

    def add(self, check: Check) -> Check:
        """Record a result."""
        self.results.append(check)
        return check

    @property
    def failed(self) -> bool:
        """True when any check FAILed."""
        return any(c.status is Status.FAIL for c in self.results)

    # -- deployment ----------------------------------------------------------------------------

    def check_deployment(self) -> None:
        """Run every deployment-wide check."""
        s = self.settings
        kind = "sqlite" if s.database_url.startswith("sqlite") else "postgresql"
        self.add(ok("settings", f"EXECUTION_MODE={s.execution_mode}, database {kind}, "
                                f"chain {s.chain_id}"))
        self.add(self._env_file())
        db_ok = self.add(self._database()).status is Status.OK
        schema_ok = db_ok and self.add(self._schema()).status is Status.OK
        self.add(self._encryption_key(schema_ok))
        if schema_ok:
            self.add(self._secrets())
            self.add(self._kill_switch())
            self.add(self._heartbeats())
        if self.client is not None:
            self.add(self._endpoint("data_api", lambda: self.client.get_positions_page(
                PROBE_WALLET, limit=1)))
            self.add(self._endpoint("gamma_api", lambda: self.client.get_gamma_markets(
                condition_ids=[PLACEHOLDER_CONDITION])))
            self.add(self._clock_skew())
        if self.rpc_check is not None:
            for check in self.rpc_check():
                self.add(check)

    def _env_file(self) -> Check:
        from infra.startup import InsecureEnvFileError, check_env_file_permissions

        try:
            check_env_file_permissions(self.env_file)
        except InsecureEnvFileError as exc:
            return fail("env_file", str(exc))
        if not self.env_file.exists():
            return ok("env_file", f"{self.env_file} absent (settings from the environment)")
        return ok("env_file", f"{self.env_file} is private (owner-only)")

    def _database(self) -> Check:
        from sqlalchemy import text

        try:
            with self.factory() as s:
                s.execute(text("SELECT 1"))
        except Exception as exc:  # noqa: BLE001
            return fail("database", f"unreachable ({type(exc).__name__})",
                        "check DATABASE_URL and that the server runs")
        return ok("database", "reachable")

    def _schema(self) -> Check:
        from infra.migrate import current_revision, head_revision

        try:
            cur, head = current_revision(self.settings.database_url), head_revision()
        except Exception as exc:  # noqa: BLE001
            return fail("schema", f"cannot read the revision ({_err(exc)})", "run `admin init-db`")
        if cur is None:
            return fail("schema", "database has never been migrated", "run `admin init-db`")
        if cur != head:
            return fail("schema", f"at revision {cur}, code expects {head}", "run `admin init-db`")
        return ok("schema", f"at head revision {head}")

    def _encryption_key(self, can_count: bool) -> Check:
        from crypto import CryptoError, KeyRing

        n_followers = self._count_followers() if can_count else 0
        if not self.settings.encryption_key:
            if n_followers:
                return fail("encryption_key", f"ENCRYPTION_KEY is not set and {n_followers} "
                            "follower secret(s) are stored", "restore the key into .env")
            return warn("encryption_key", "ENCRYPTION_KEY is not set",
                        "run `admin gen-key` before adding followers")
        try:
            KeyRing(self.settings.encryption_key)
        except CryptoError as exc:
            return fail("encryption_key", str(exc), "fix ENCRYPTION_KEY")
        n = len(self.settings.encryption_key.split(","))
        return ok("encryption_key", f"{n} key(s) configured")

    def _count_followers(self) -> int:
        from sqlalchemy import func, select

        from models import Follower

        with self.factory() as s:
            return int(s.scalar(select(func.count()).select_from(Follower)) or 0)

    def _secrets(self) -> Check:
        from sqlalchemy import select

        from crypto import CryptoError, KeyRing, MissingKeyError, signing_key
        from models import Follower

        with self.factory() as s:
            followers = list(s.scalars(select(Follower).order_by(Follower.id)))
        if not followers:
            return ok("secrets", "no stored secrets yet")
        try:
            ring = KeyRing(self.settings.encryption_key)
        except (MissingKeyError, CryptoError):
            return fail("secrets", f"{len(followers)} follower(s) but no usable ENCRYPTION_KEY",
                        "restore the key that encrypted them")
        bad: list[str] = []
        stale = 0
        total = 0
        for f in followers:
            tokens = [f.encrypted_private_key] + (
                [f.encrypted_api_creds] if f.encrypted_api_creds else [])
            total += len(tokens)
            try:
                with signing_key(ring, f.encrypted_private_key, f.signer_address):
                    pass
                if f.encrypted_api_creds:
                    creds = ring.decrypt_api_creds(f.encrypted_api_creds)
                    if f.api_key_id and creds.api_key != f.api_key_id:
                        raise CryptoError("stored API key id does not match the credentials")
            except (CryptoError, ValueError, KeyError) as exc:
                bad.append(f"{f.funder_address} ({_err(exc)})")
                continue
            stale += sum(0 if ring.is_current(t) else 1 for t in tokens)
        if bad:
            return fail("secrets", f"{len(bad)} follower(s) with undecryptable or mismatched "
                        f"secrets: {', '.join(bad[:3])}",
                        "put the old key back in ENCRYPTION_KEY (after the new one)")
        if stale:
            return warn("secrets", f"all {total} secret(s) decrypt; {stale} not yet under the "
                        "first key", "run `admin rotate-keys`")
        return ok("secrets", f"all {total} secret(s) of {len(followers)} follower(s) decrypt")

    def _kill_switch(self) -> Check:
        from copying.killswitch import KillSwitchState

        with self.factory() as s:
            state = KillSwitchState.load(s)
        if state.global_on:
            return warn("kill_switch", f"ON since {state.global_since}: {state.global_reason}",
                        "`admin enable --all` when it is safe to copy again")
        return ok("kill_switch", "off")

    def _heartbeats(self) -> Check:
        from infra.db import utcnow
        from ops.views import Intervals, daemon_rows

        intervals = Intervals(self.settings.watcher_poll_interval,
                              self.settings.executor_poll_interval)
        with self.factory() as s:
            rows = daemon_rows(s, utcnow(), intervals)
        if not rows:
            return warn("daemons", "no daemon heartbeat recorded yet",
                        "start pmct-watcher and pmct-executor")
        stale = [str(r["name"]) for r in rows if r["stale"]]
        if stale:
            return warn("daemons", f"stale heartbeat: {', '.join(stale)}",
                        "`systemctl status` / `journalctl -u` the unit")
        return ok("daemons", ", ".join(f"{r['name']} {r['last_cycle_age']} ago" for r in rows))

    def _endpoint(self, name: str, call: Callable[[], Any]) -> Check:
        from wire.errors import ApiError, PolymarketError

        try:
            call()
        except ApiError as exc:
            if exc.status >= 500:
                return fail(name, f"answers HTTP {exc.status}", "Polymarket side; retry later")
            return warn(name, f"reachable, but the probe got HTTP {exc.status}")
        except PolymarketError as exc:
            return fail(name, f"unreachable ({_err(exc)})", "check network, DNS, proxy, the URL")
        return ok(name, "reachable")

    def _clock_skew(self) -> Check:
        from wire.errors import PolymarketError

        t0 = self.clock()
        try:
            server = self.client.get_server_time()
        except PolymarketError as exc:
            return fail("clob_api", f"unreachable ({_err(exc)})", "check POLYMARKET_CLOB_API_URL")
        t1 = self.clock()
        skew = server - (t0 + t1) / 2
        self.add(ok("clob_api", "reachable"))
        text = f"local clock is {abs(skew):.1f}s {'behind' if skew > 0 else 'ahead of'} the CLOB"
        if abs(skew) >= SKEW_FAIL_SECONDS:
            return fail("clock_skew", text, "enable NTP (timedatectl set-ntp true); signed "
                        "requests and order timestamps need an accurate clock")
        if abs(skew) >= SKEW_WARN_SECONDS:
            return warn("clock_skew", text, "enable NTP (timedatectl set-ntp true)")
        return ok("clock_skew", text)

    # -- follower ------------------------------------------------------------------------------

    def check_follower(self, wallet: str) -> None:
        """Run every check of one follower (InputError when the wallet is unknown)."""
        from ops.accounts import find_follower

        with self.factory() as s:
            follower = find_follower(s, wallet)
            follows = [(fo.trader.wallet, fo.copy_pct, fo.status.value) for fo in follower.follows]
            exchanges = self._exchanges_used(s, follower.id)
        self.add(self._follower_status(follower))
        self.add(self._tier(follower, follows))
        self.add(self._wallet_structure(follower))
        if self.get_code is not None:
            self.add(self._wallet_on_chain(follower))
        key_ok = self.add(self._private_key(follower)).status is Status.OK
        creds = self._creds(follower)
        if creds is None or not key_ok or self.client is None:
            return
        if self._l2(follower, creds):
            self._balance_and_allowances(follower, creds, exchanges)

    def _follower_status(self, f: Any) -> Check:
        from models import FollowerStatus

        if f.status == FollowerStatus.ACTIVE:
            return ok("follower", f"{f.funder_address} active, tier {f.tier.value}")
        hint = ("`admin enable --wallet W`" if f.status == FollowerStatus.DISABLED
                else "`admin resume --wallet W`")
        return warn("follower", f"{f.funder_address} is {f.status.value}: no copies", hint)

    def _tier(self, f: Any, follows: list[tuple[str, Decimal, str]]) -> Check:
        from copying.tiers import tier_violations

        live = [(t, pct) for t, pct, st in follows if st != "removed"]
        problems = tier_violations(f.tier, live)
        if problems:
            return warn("tier", "; ".join(problems), "`admin set-tier` or remove follows")
        return ok("tier", f"{len(live)} follow(s) within tier {f.tier.value}")

    def _wallet_structure(self, f: Any) -> Check:
        from wire.types import SignatureType

        st = SignatureType(f.signature_type)
        same = f.funder_address.lower() == f.signer_address.lower()
        if st is SignatureType.EOA and not same:
            return fail("wallet_type", "signature type eoa but the funder differs from the signer",
                        "re-add the follower with the right --signature-type/--funder")
        if st is not SignatureType.EOA and same:
            return fail("wallet_type", f"signature type {st.cli_name} but the funder is the "
                        "signer itself", "re-add with --funder set to the Polymarket wallet")
        return ok("wallet_type", f"{st.cli_name}: signer {f.signer_address}, funder "
                                 f"{f.funder_address}")

    def _wallet_on_chain(self, f: Any) -> Check:
        from wire.types import SignatureType

        assert self.get_code is not None
        st = SignatureType(f.signature_type)
        try:
            code = (self.get_code(f.funder_address) or "0x").lower()
        except Exception as exc:  # noqa: BLE001
            return warn("wallet_chain", f"could not read the funder's code ({_err(exc)})",
                        "check POLYGON_RPC")
        has_code = code not in ("0x", "0x0", "") and not code.startswith(EIP7702_PREFIX)
        if st is SignatureType.EOA:
            if has_code:
                return fail("wallet_chain", "funder is a contract but signature type is eoa",
                            "re-add with --signature-type proxy|safe|deposit")
            return ok("wallet_chain", "funder is a plain account (eoa)")
        if has_code:
            return ok("wallet_chain", f"funder is a deployed contract ({st.cli_name})")
        if st is SignatureType.POLY_1271:
            return warn("wallet_chain", "deposit wallet not deployed yet (counterfactual)",
                        "place one small order from polymarket.com to deploy it")
        return fail("wallet_chain", f"no contract at the funder for signature type {st.cli_name}",
                    "check --funder: it must be the Polymarket proxy/Safe address")

    def _private_key(self, f: Any) -> Check:
        from crypto import CryptoError, KeyRing, signing_key

        try:
            ring = KeyRing(self.settings.encryption_key)
            with signing_key(ring, f.encrypted_private_key, f.signer_address):
                pass
        except CryptoError as exc:
            return fail("private_key", _err(exc), "restore the ENCRYPTION_KEY that encrypted it")
        return ok("private_key", "decrypts and matches the signer address")

    def _creds(self, f: Any) -> Any:
        from crypto import CryptoError, KeyRing

        if not f.encrypted_api_creds:
            hint = "run `admin auth-follower --wallet W`"
            self.add(self._money_problem("clob_credentials", "no CLOB L2 credentials stored", hint))
            return None
        try:
            creds = KeyRing(self.settings.encryption_key).decrypt_api_creds(f.encrypted_api_creds)
        except (CryptoError, ValueError, KeyError) as exc:
            self.add(fail("clob_credentials", f"cannot decrypt ({_err(exc)})",
                          "run `admin auth-follower --wallet W` again"))
            return None
        self.add(ok("clob_credentials", f"stored (API key {creds.api_key})"))
        return creds

    def _l2(self, f: Any, creds: Any) -> bool:
        """L2 credentials accepted (recorded), then the closed-only status; True when auth works."""
        from wire.errors import ApiError, PolymarketError

        try:
            closed_only = self.client.get_closed_only(creds, f.signer_address)
        except ApiError as exc:
            if exc.status in (401, 403):
                self.add(fail("clob_auth", f"credentials rejected (HTTP {exc.status})",
                              "run `admin auth-follower --wallet W` again"))
            else:
                self.add(fail("clob_auth", f"L2 call failed ({_err(exc)})",
                              "retry; check POLYMARKET_CLOB_API_URL"))
            return False
        except PolymarketError as exc:
            self.add(fail("clob_auth", f"L2 call failed ({_err(exc)})", "check network"))
            return False
        self.add(ok("clob_auth", "L2 credentials accepted"))
        if closed_only:
            self.add(fail("closed_only", "the account is in closed-only mode: it may only reduce "
                          "positions", "new copies will be rejected; contact Polymarket support"))
        else:
            self.add(ok("closed_only", "account may open positions"))
        return True

    def _exchanges_used(self, s: Any, follower_id: int) -> list[tuple[str, str]]:
        from sqlalchemy import select

        from models import CopyOrder, Market
        from wire.signing import exchange_for
        from wire.types import MarketVersion

        chain = self.settings.chain_id
        every = [("standard", exchange_for(MarketVersion.V1, False, chain).address),
                 ("neg_risk", exchange_for(MarketVersion.V1, True, chain).address),
                 ("v3", exchange_for(MarketVersion.V2, False, chain).address)]
        rows = s.execute(select(Market.version, Market.neg_risk).join(
            CopyOrder, CopyOrder.condition_id == Market.condition_id)
            .where(CopyOrder.follower_id == follower_id).distinct()).all()
        if not rows:
            return every
        used = set()
        for version, neg in rows:
            ex = exchange_for(MarketVersion(version), bool(neg), chain).address
            used.add(ex)
        return [(n, a) for n, a in every if a in used]

    def _balance_and_allowances(self, f: Any, creds: Any, exchanges: list[tuple[str, str]]) -> None:
        from wire.errors import PolymarketError

        kw = {"signature_type": f.signature_type}
        try:
            self.client.update_balance_allowance(creds, f.signer_address, "COLLATERAL", **kw)
        except PolymarketError:
            pass  # only a cache refresh; the read below says what matters
        try:
            ba = self.client.get_balance_allowance(creds, f.signer_address, "COLLATERAL", **kw)
        except PolymarketError as exc:
            self.add(fail("balance", f"cannot read balance/allowance ({_err(exc)})", "retry"))
            return
        if ba.balance <= 0:
            self.add(self._money_problem("balance", "pUSD balance is 0",
                                         f"deposit pUSD to {f.funder_address}"))
        else:
            self.add(ok("balance", f"pUSD balance {ba.balance}"))
        allow = {k.lower(): v for k, v in ba.allowances.items()}
        for name, address in exchanges:
            value = allow.get(address.lower(), Decimal(0))
            check = f"allowance_{name}"
            if value <= 0:
                self.add(self._money_problem(
                    check, f"no pUSD allowance for exchange {address}",
                    "approve pUSD for this exchange from the funder wallet (polymarket.com does "
                    "it on first trade)"))
            elif value < ba.balance:
                self.add(warn(check, f"allowance {value} is below the balance {ba.balance}",
                              "raise the approval"))
            else:
                self.add(ok(check, f"allowance {_fmt_allowance(value)} for {address}"))


def _fmt_allowance(value: Decimal) -> str:
    return "unlimited" if value > Decimal(10) ** 30 else str(value)


def rpc_get_code(rpc_url: str, timeout: float = 5.0) -> Callable[[str], str]:
    """A function reading an address's contract code with eth_getCode over JSON-RPC."""
    def get_code(address: str) -> str:
        import httpx

        body = {"jsonrpc": "2.0", "id": 1, "method": "eth_getCode", "params": [address, "latest"]}
        resp = httpx.post(rpc_url, json=body, timeout=timeout)
        resp.raise_for_status()
        data = resp.json()
        if "error" in data or not isinstance(data.get("result"), str):
            raise ValueError(f"eth_getCode answered {str(data.get('error'))[:100]}")
        return str(data["result"])

    return get_code



# -- Polygon RPC (the chain fill source) ------------------------------------------------------

HEAD_WARN_SECONDS = 30
HEAD_FAIL_SECONDS = 120
RANGE_PROBES = (10_000, 5_000, 2_000, 1_000, 500, 100, 10)


def rpc_checks(settings: Any, clock: Callable[[], float] = time.time,
               ws_timeout: float = 10.0) -> list[Check]:
    """The RPC checks, run on a private event loop (admin commands are synchronous)."""
    import asyncio

    return asyncio.run(_rpc_checks(settings, clock, ws_timeout))


async def _rpc_checks(settings: Any, clock: Callable[[], float], ws_timeout: float) -> list[Check]:
    from infra.config import mask_url_path
    from wire.chain import ORDER_FILLED_TOPIC, topic_for_address
    from wire.rpc import JsonRpcClient, RpcError, RpcErrorKind
    from wire.signing import exchange_addresses

    where = mask_url_path(settings.polygon_rpc)
    needed = settings.chain_enabled and not settings.data_api_enabled
    unreachable = fail if needed else warn
    consequence = ("no fill source left" if needed else
                   "the chain source will be down and the Data API poll at full speed"
                   if settings.chain_enabled else "only on-chain wallet checks use it")
    out: list[Check] = []
    rpc = JsonRpcClient(settings.polygon_rpc, max_rps=settings.chain_rpc_max_rps)
    try:
        try:
            chain_id = await rpc.chain_id()
        except RpcError as exc:
            return [unreachable("rpc", f"{where} unusable ({_err(exc)}): {consequence}",
                                "check POLYGON_RPC (a paid endpoint for production)")]
        if chain_id != settings.chain_id:
            return [fail("rpc", f"{where} is chain {chain_id}, POLYMARKET_CHAIN_ID is "
                                f"{settings.chain_id}", "point POLYGON_RPC at the right network")]
        out.append(ok("rpc", f"{where} answers, chain {chain_id}"))
        head = await rpc.block("latest")
        if head is None:
            out.append(fail("rpc_head", "the node has no latest block", "check the node"))
            return out
        age = clock() - head.timestamp
        text = f"head {head.number}, {age:.0f}s old"
        if age > HEAD_FAIL_SECONDS:
            out.append(fail("rpc_head", text, "the node is not synced; use another endpoint"))
        elif age > HEAD_WARN_SECONDS:
            out.append(warn("rpc_head", text, "the node lags; fills will be detected late"))
        else:
            out.append(ok("rpc_head", text))
        exchanges = list(exchange_addresses(settings.chain_id))
        try:
            logs = await rpc.get_logs({"fromBlock": hex(max(0, head.number - 9)),
                                       "toBlock": hex(head.number), "address": exchanges,
                                       "topics": [ORDER_FILLED_TOPIC]})
        except RpcError as exc:
            out.append(unreachable("rpc_logs", f"eth_getLogs on the exchanges failed ({_err(exc)})",
                                   "use an endpoint that serves eth_getLogs"))
            return out
        out.append(ok("rpc_logs", f"eth_getLogs works: {len(logs)} OrderFilled log(s) on the "
                                  "three exchanges in the last 10 blocks"))
        probe = [ORDER_FILLED_TOPIC, None, [topic_for_address(PROBE_WALLET)]]
        accepted: int | None = None
        for size in RANGE_PROBES:
            if size > settings.chain_max_block_range and size != RANGE_PROBES[-1]:
                continue
            try:
                await rpc.get_logs({"fromBlock": hex(max(0, head.number - size + 1)),
                                    "toBlock": hex(head.number), "address": exchanges,
                                    "topics": probe})
            except RpcError as exc:
                if exc.kind is RpcErrorKind.RATE_LIMITED:
                    out.append(warn("rpc_range", f"rate limited while probing ({_err(exc)})",
                                    "lower POLYGON_RPC_MAX_RPS"))
                    break
                if exc.kind is RpcErrorKind.RANGE_TOO_LARGE and exc.limit:
                    accepted = exc.limit
                    break
                continue
            accepted = size
            break
        if accepted is None and not any(c.name == "rpc_range" for c in out):
            out.append(warn("rpc_range", "no eth_getLogs range was accepted",
                            "use another endpoint"))
        elif accepted is not None and accepted < settings.chain_max_block_range:
            out.append(warn("rpc_range", f"the provider caps eth_getLogs at about {accepted} "
                                         f"blocks (CHAIN_MAX_BLOCK_RANGE="
                                         f"{settings.chain_max_block_range})",
                            f"set CHAIN_MAX_BLOCK_RANGE={accepted} (the watcher also learns it)"))
        elif accepted is not None:
            out.append(ok("rpc_range", f"{accepted}-block eth_getLogs ranges accepted"))
    finally:
        await rpc.aclose()
    if settings.polygon_ws:
        out.append(await _ws_check(settings.polygon_ws, ws_timeout))
    return out


async def _ws_check(url: str, timeout: float) -> Check:
    import asyncio

    from infra.config import mask_url_path
    from wire.rpc import BlockHeader
    from wire.rpc_ws import Subscriber

    got: list[BlockHeader] = []
    stop = asyncio.Event()

    async def on_head(header: BlockHeader) -> None:
        got.append(header)
        stop.set()

    sub = Subscriber(url, on_head=on_head, max_delay=1.0, open_timeout=timeout)
    task = asyncio.create_task(sub.run(stop))
    try:
        await asyncio.wait_for(stop.wait(), timeout)
    except TimeoutError:
        pass
    stop.set()
    await task
    where = mask_url_path(url)
    if got:
        return ok("rpc_ws", f"{where}: newHeads subscription delivered block {got[0].number}")
    return warn("rpc_ws", f"{where}: no new head within {timeout:.0f}s"
                + (f" ({sub.last_error})" if sub.last_error else ""),
                "check POLYGON_WS; without it the watcher polls POLYGON_RPC")
