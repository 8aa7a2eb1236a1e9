"""Pure request builders (`build_*`) and response parsers (`parse_*`) for Polymarket's HTTP APIs.

No I/O here: builders turn typed arguments into query params or exact body bytes, parsers turn
decoded JSON into the typed records of `pm_records` / `pm_types`. Invariants: wire numbers
become `Decimal` via `Decimal(str(x))` (never float arithmetic); timestamps become timezone-aware
UTC datetimes; a missing/null number stays None (never 0); a malformed body raises `ParseError`
without echoing secrets; order-submission answers are classified, never raised.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from email.utils import parsedate_to_datetime
from typing import Any, TypedDict

from wire.amounts import BASE_UNITS
from wire.errors import ApiError, HeartbeatRejected, ParseError, RateLimitError, RestrictedError
from wire.records import (
    Accepted,
    BalanceAllowance,
    BuilderTrade,
    CancelResult,
    ClobMarketParams,
    ClobTrade,
    Duplicate,
    GammaMarket,
    InDoubt,
    LeaderboardEntry,
    MakerOrderFill,
    OpenOrder,
    Page,
    Position,
    PostOutcome,
    RateLimited,
    Rejected,
    RejectedRow,
    RejectKind,
    Restricted,
    TokenInfo,
)
from wire.ticks import TICK_SIZES
from wire.types import (
    Activity,
    ApiCreds,
    BookLevel,
    MarketToken,
    MarketVersion,
    OrderBook,
    QueryValue,
    Side,
)

UNLABELLED_OUTCOME_INDEX = 999
DEFAULT_ACTIVITY_TYPES: tuple[str, ...] = ("TRADE", "SPLIT", "MERGE", "REDEEM", "CONVERSION")
ACCEPTED_ORDER_STATUSES = frozenset({"live", "matched", "delayed"})
CURSOR_START = "MA=="
CURSOR_END = "LTE="
MAX_BATCH_ORDERS = 15
CACHE_BUST_SECONDS = 86_400

_HEX_RE = re.compile(r"0x[0-9a-fA-F]+\Z")
_ORDER_ID_RE = re.compile(r"order (0x[0-9a-fA-F]{64})")
_V2_RESERVED_BITS = ((1 << 64) - 1) << 40


# ---------------------------------------------------------------------------------------------
# Scalars


def load_json(content: bytes | str, what: str) -> object:
    """Decode a JSON body or raise ParseError naming `what` (the body itself is not echoed)."""
    try:
        return json.loads(content)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ParseError(f"{what}: body is not JSON") from exc


def to_decimal(value: Any, what: str) -> Decimal:
    """A wire number (int, float or decimal string) as an exact Decimal; ParseError otherwise."""
    if isinstance(value, bool) or value is None:
        raise ParseError(f"{what}: expected a number, got {type(value).__name__}")
    if isinstance(value, (int, float, str)):
        text = str(value).strip()
        try:
            result = Decimal(text)
        except (InvalidOperation, ValueError) as exc:
            raise ParseError(f"{what}: not a number: {text[:40]!r}") from exc
        if not result.is_finite():
            raise ParseError(f"{what}: not a finite number")
        return result
    raise ParseError(f"{what}: expected a number, got {type(value).__name__}")


def to_optional_decimal(value: Any, what: str) -> Decimal | None:
    """Like to_decimal, but None/"" (the API's "unavailable") stay None."""
    if value is None or value == "":
        return None
    return to_decimal(value, what)


def epoch_seconds_to_utc(value: Any, what: str) -> datetime:
    """Epoch seconds (int or digit string) as an aware UTC datetime."""
    seconds = to_decimal(value, what)
    return datetime.fromtimestamp(int(seconds), tz=UTC)


def optional_epoch_to_utc(value: Any, what: str) -> datetime | None:
    """Epoch seconds, or None for null/""/"0"/0 (the API's "none")."""
    if value in (None, "", "0", 0):
        return None
    return epoch_seconds_to_utc(value, what)


def iso_to_utc(value: Any) -> datetime | None:
    """ISO-8601 text as an aware UTC datetime; None for null/empty/unparsable."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().replace(" ", "T", 1)
    if text.endswith("+00"):
        text += ":00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _str(value: Any) -> str:
    return "" if value is None else str(value)


def _bool(value: Any, default: bool = False) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


def _optional_int(value: Any) -> int | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _outcome_index(value: Any) -> int | None:
    index = _optional_int(value)
    return None if index == UNLABELLED_OUTCOME_INDEX else index


def _side(value: Any) -> Side | None:
    text = _str(value).strip().upper()
    return Side(text) if text in ("BUY", "SELL") else None


def normalise_status(value: Any) -> str:
    """Upper-case status with any ORDER_STATUS_ / TRADE_STATUS_ prefix removed."""
    text = _str(value).strip().upper()
    for prefix in ("ORDER_STATUS_", "TRADE_STATUS_"):
        if text.startswith(prefix):
            return text[len(prefix) :]
    return text


def base_units_to_decimal(value: Any, what: str) -> Decimal:
    """6-decimal base units (pUSD or shares) as a human-unit Decimal."""
    return to_decimal(value, what) / BASE_UNITS


# ---------------------------------------------------------------------------------------------
# Ids


def is_hex_id(value: str) -> bool:
    """True for a 0x-prefixed hex string."""
    return bool(_HEX_RE.match(value))


def is_combo_condition_id(condition_id: str) -> bool:
    """True for a 31-byte (62 hex digit) Protocol V2 combinatorial id (prefix 0x03)."""
    cid = condition_id.lower()
    return len(cid) == 64 and cid.startswith("0x03") and is_hex_id(cid)


def pad_condition_id(condition_id: str) -> str:
    """A condition id for CLOB market routes: 31-byte structural ids get a 00 byte appended."""
    cid = condition_id.strip()
    if not is_hex_id(cid) or len(cid) not in (64, 66):
        raise ValueError(f"not a 31- or 32-byte hex condition id: {cid[:80]!r}")
    return cid + "00" if len(cid) == 64 else cid


def is_v2_position_id(token_id: str) -> bool:
    """True when an asset id lies in the Protocol V2 positionId namespace (bits 40..103 zero)."""
    text = token_id.strip()
    if not text.isdigit():
        return False
    value = int(text)
    return 0 <= value < (1 << 256) and value & _V2_RESERVED_BITS == 0


# ---------------------------------------------------------------------------------------------
# Data API (/v2 envelope)


def parse_data_envelope(body: Any, route: str) -> tuple[list[object], str | None]:
    """Split a `{data, pagination}` envelope into rows and the next cursor (None at the end)."""
    if not isinstance(body, dict):
        raise ParseError(f"{route}: expected an object envelope")
    data = body.get("data")
    rows: list[object] = [] if data is None else data
    if not isinstance(rows, list):
        raise ParseError(f"{route}: 'data' is not a list")
    pagination = body.get("pagination")
    if pagination is None:
        return rows, None
    if not isinstance(pagination, dict):
        raise ParseError(f"{route}: 'pagination' is not an object")
    cursor = pagination.get("next_cursor")
    has_more = pagination.get("has_more")
    if cursor is not None and not isinstance(cursor, str):
        raise ParseError(f"{route}: 'next_cursor' is not a string")
    cursor = cursor or None
    if has_more is not None and bool(has_more) != (cursor is not None):
        raise ParseError(f"{route}: has_more={has_more!r} disagrees with next_cursor")
    return rows, cursor


def parse_activity(row: Any) -> Activity:
    """One `/v2/activity` or `/v2/trades` row as a typed Activity (ParseError if unusable)."""
    if not isinstance(row, dict):
        raise ParseError("activity row is not an object")
    kind = _str(row.get("type") or "TRADE").strip().upper()
    condition_id = _str(row.get("condition_id")).strip()
    usdc = to_optional_decimal(row.get("usdc_size"), "usdc_size")
    price = row.get("price")
    return Activity(
        proxy_wallet=_str(row.get("proxy_wallet")).lower(),
        timestamp=epoch_seconds_to_utc(row.get("timestamp"), "timestamp"),
        type=kind,
        condition_id=condition_id,
        token_id=_str(row.get("token_id")).strip(),
        side=_side(row.get("side")),
        size=to_decimal(row.get("size"), "size"),
        price=Decimal(0) if price in (None, "") and kind != "TRADE" else to_decimal(price, "price"),
        usdc_size=usdc,
        transaction_hash=_str(row.get("transaction_hash")),
        outcome=_str(row.get("outcome")),
        outcome_index=_outcome_index(row.get("outcome_index")),
        title=_str(row.get("title")),
        slug=_str(row.get("slug")),
        event_slug=_str(row.get("event_slug")),
        is_combo=_bool(row.get("is_combo")) or is_combo_condition_id(condition_id),
        raw=row,
    )


def parse_activity_page(body: Any, route: str = "/v2/activity") -> Page[Activity]:
    """A page of activity/trade rows; rows that cannot be typed go to `rejected`, not lost."""
    rows, cursor = parse_data_envelope(body, route)
    items: list[Activity] = []
    rejected: list[RejectedRow] = []
    for index, row in enumerate(rows):
        try:
            items.append(parse_activity(row))
        except ParseError as exc:
            rejected.append(RejectedRow(index=index, reason=str(exc), raw=row))
    return Page(items=tuple(items), next_cursor=cursor, rejected=tuple(rejected))


def _end_date(value: Any) -> date | None:
    text = _str(value).strip()
    if not text or text.startswith("1970-01-01"):
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        return None


def parse_position(row: Any) -> Position:
    """One `/v2/positions` row as a typed Position."""
    if not isinstance(row, dict):
        raise ParseError("position row is not an object")

    def opt(name: str) -> Decimal | None:
        return to_optional_decimal(row.get(name), name)

    return Position(
        proxy_wallet=_str(row.get("proxy_wallet")).lower(),
        token_id=_str(row.get("token_id")),
        condition_id=_str(row.get("condition_id")),
        current_size=to_decimal(row.get("current_size"), "current_size"),
        avg_price=opt("avg_price"),
        current_price=opt("current_price"),
        current_value=opt("current_value"),
        total_size=opt("total_size"),
        entry_cost_usdc=opt("entry_cost_usdc"),
        entry_fees_usdc=opt("entry_fees_usdc"),
        total_cost_usdc=opt("total_cost_usdc"),
        realized_pnl=opt("realized_pnl"),
        unrealized_pnl=opt("unrealized_pnl"),
        total_pnl=opt("total_pnl"),
        status=_str(row.get("status")).upper(),
        redeemable=_bool(row.get("redeemable")),
        mergeable=_bool(row.get("mergeable")),
        negative_risk=_bool(row.get("negative_risk")),
        archived=_bool(row.get("archived")),
        outcome=_str(row.get("outcome")),
        outcome_index=_outcome_index(row.get("outcome_index")),
        opposite_outcome=_str(row.get("opposite_outcome")),
        opposite_token_id=_str(row.get("opposite_token_id")),
        title=_str(row.get("title")),
        slug=_str(row.get("slug")),
        event_id=_str(row.get("event_id")),
        event_slug=_str(row.get("event_slug")),
        end_date=_end_date(row.get("end_date")),
        last_event_at=optional_epoch_to_utc(row.get("last_event_at"), "last_event_at"),
        raw=row,
    )


def parse_positions_page(body: Any) -> Page[Position]:
    """A `/v2/positions` page; untypeable rows go to `rejected`."""
    rows, cursor = parse_data_envelope(body, "/v2/positions")
    items: list[Position] = []
    rejected: list[RejectedRow] = []
    for index, row in enumerate(rows):
        try:
            items.append(parse_position(row))
        except ParseError as exc:
            rejected.append(RejectedRow(index=index, reason=str(exc), raw=row))
    return Page(items=tuple(items), next_cursor=cursor, rejected=tuple(rejected))


def parse_tokens(body: Any) -> list[TokenInfo]:
    """`/v2/tokens` rows as TokenInfo records."""
    rows, _ = parse_data_envelope(body, "/v2/tokens")
    result = []
    for row in rows:
        if not isinstance(row, dict):
            raise ParseError("/v2/tokens: row is not an object")
        result.append(
            TokenInfo(
                token_id=_str(row.get("token_id")),
                condition_id=_str(row.get("condition_id")),
                structural_condition_id=row.get("structural_condition_id") or None,
                module=_str(row.get("module")),
                outcome_index=_outcome_index(row.get("outcome_index")),
                clob_index=_optional_int(row.get("clob_index")),
                outcome=_str(row.get("outcome")),
                opposite_token_id=_str(row.get("opposite_token_id")),
                resolved=_bool(row.get("resolved")),
                final_price=to_optional_decimal(row.get("final_price"), "final_price"),
                title=_str(row.get("title")),
                market_slug=_str(row.get("market_slug")),
                closed=_bool(row.get("closed")),
                neg_risk=_bool(row.get("neg_risk")),
                event_slug=_str(row.get("event_slug")),
                raw=row,
            )
        )
    return result


@dataclass(frozen=True)
class ActivityQuery:
    """Filters of one `/v2/activity` walk; resent unchanged with every cursor of the walk."""

    user: str
    types: tuple[str, ...] = DEFAULT_ACTIVITY_TYPES
    start: int | None = None
    end: int | None = None
    limit: int = 100
    sort_direction: str | None = None
    condition_ids: tuple[str, ...] = ()


def poll_activity_query(
    user: str,
    *,
    start: int | None,
    now: float,
    limit: int = 100,
    types: tuple[str, ...] = DEFAULT_ACTIVITY_TYPES,
) -> ActivityQuery:
    """The watcher's poll; end = now + 1 day makes the URL change each second (CDN cache-bust)."""
    return ActivityQuery(
        user=user, types=types, start=start, end=int(now) + CACHE_BUST_SECONDS, limit=limit
    )


def build_activity_params(query: ActivityQuery, cursor: str | None) -> dict[str, QueryValue]:
    """Query params of one `/v2/activity` page: identical filters, plus the cursor if any."""
    if not 1 <= query.limit <= 1000:
        raise ValueError("activity limit must be in 1..1000")
    if len(query.condition_ids) > 20:
        raise ValueError("at most 20 condition ids per activity query")
    params: dict[str, QueryValue] = {"user": query.user, "limit": query.limit}
    if query.types:
        params["type"] = ",".join(query.types)
    if query.start is not None:
        params["start"] = query.start
    if query.end is not None:
        params["end"] = query.end
    if query.sort_direction:
        params["sort_direction"] = query.sort_direction
    if query.condition_ids:
        params["condition"] = ",".join(query.condition_ids)
    if cursor:
        params["cursor"] = cursor
    return params


@dataclass(frozen=True)
class TradesQuery:
    """Filters of one `/v2/trades?user=` walk (taker_only=false so maker fills are included)."""

    user: str
    start: int | None = None
    end: int | None = None
    limit: int = 100
    taker_only: bool = False
    side: Side | None = None
    condition_ids: tuple[str, ...] = ()


def build_trades_params(query: TradesQuery, cursor: str | None) -> dict[str, QueryValue]:
    """Query params of one `/v2/trades` page (identical filters on every page)."""
    if not 1 <= query.limit <= 1000:
        raise ValueError("trades limit must be in 1..1000")
    params: dict[str, QueryValue] = {
        "user": query.user,
        "limit": query.limit,
        "taker_only": "true" if query.taker_only else "false",
    }
    if query.start is not None:
        params["start"] = query.start
    if query.end is not None:
        params["end"] = query.end
    if query.side is not None:
        params["side"] = query.side.value
    if query.condition_ids:
        params["condition"] = ",".join(query.condition_ids)
    if cursor:
        params["cursor"] = cursor
    return params


def build_positions_params(
    user: str,
    *,
    condition_ids: Sequence[str] = (),
    status: str | None = None,
    limit: int = 500,
    cursor: str | None = None,
) -> dict[str, QueryValue]:
    """Query params of one `/v2/positions` page; `user` is resent with every cursor."""
    if not 1 <= limit <= 1000:
        raise ValueError("positions limit must be in 1..1000")
    params: dict[str, QueryValue] = {"user": user, "limit": limit}
    if condition_ids:
        params["condition"] = ",".join(condition_ids)
    if status:
        params["status"] = status
    if cursor:
        params["cursor"] = cursor
    return params


def build_tokens_params(
    token_ids: Sequence[str] = (), condition_ids: Sequence[str] = ()
) -> dict[str, str]:
    """Query params of `/v2/tokens`: exactly one selector (≤50 token ids or ≤10 condition ids)."""
    if bool(token_ids) == bool(condition_ids):
        raise ValueError("give token_ids or condition_ids, not both or neither")
    if token_ids:
        if len(token_ids) > 50:
            raise ValueError("at most 50 token ids per /v2/tokens call")
        return {"token_id": ",".join(token_ids)}
    if len(condition_ids) > 10:
        raise ValueError("at most 10 condition ids per /v2/tokens call")
    return {"condition": ",".join(condition_ids)}


LEADERBOARD_PERIODS = ("day", "week", "month", "all")
LEADERBOARD_SORTS = ("PNL", "VOLUME")
_CATEGORY_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
_WALLET_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")


def build_leaderboard_params(*, time_period: str = "day", category: str = "overall",
                             sort_by: str = "PNL", limit: int = 25,
                             cursor: str | None = None) -> dict[str, Any]:
    """Query params of one `/v2/leaderboard` page. A cursor pins the board it was minted on, so
    it is sent alone (restating different filters is a 400 upstream)."""
    if cursor:
        return {"cursor": cursor}
    period, sort, cat = time_period.strip().lower(), sort_by.strip().upper(), category.strip().lower()
    if period not in LEADERBOARD_PERIODS:
        raise ValueError(f"time_period must be one of {', '.join(LEADERBOARD_PERIODS)}")
    if sort not in LEADERBOARD_SORTS:
        raise ValueError(f"sort_by must be one of {', '.join(LEADERBOARD_SORTS)}")
    if not _CATEGORY_RE.match(cat):
        raise ValueError("category must be a lower-case category name such as overall or sports")
    if not 1 <= limit <= 1000:
        raise ValueError("leaderboard limit must be in 1..1000")
    return {"time_period": period, "category": cat, "sort_by": sort, "limit": limit}


def parse_leaderboard_entry(row: Any) -> LeaderboardEntry:
    """One `/v2/leaderboard` row (ParseError if the wallet, rank or numbers are unusable)."""
    if not isinstance(row, dict):
        raise ParseError("leaderboard row is not an object")
    wallet = _str(row.get("user_id")).strip()
    if not _WALLET_RE.match(wallet):
        raise ParseError(f"leaderboard user_id is not a wallet address: {wallet[:50]!r}")
    rank = _optional_int(row.get("rank"))
    if rank is None or rank < 0:
        raise ParseError("leaderboard rank is missing or negative")
    return LeaderboardEntry(
        rank=rank,
        wallet=wallet.lower(),
        user_name=_str(row.get("user_name")),
        x_username=_str(row.get("x_username")),
        verified=_bool(row.get("verified")),
        pnl=to_decimal(row.get("pnl"), "pnl"),
        volume=to_decimal(row.get("volume"), "volume"),
        profile_image=_str(row.get("profile_image")),
        raw=row,
    )


def parse_leaderboard_page(body: Any) -> Page[LeaderboardEntry]:
    """A `/v2/leaderboard` page; untypeable rows go to `rejected`."""
    rows, cursor = parse_data_envelope(body, "/v2/leaderboard")
    items: list[LeaderboardEntry] = []
    rejected: list[RejectedRow] = []
    for index, row in enumerate(rows):
        try:
            items.append(parse_leaderboard_entry(row))
        except ParseError as exc:
            rejected.append(RejectedRow(index=index, reason=str(exc), raw=row))
    return Page(items=tuple(items), next_cursor=cursor, rejected=tuple(rejected))


# ---------------------------------------------------------------------------------------------
# Errors and Retry-After


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """A header value by case-insensitive name (works for httpx.Headers and plain dicts)."""
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    return value


def parse_retry_after(headers: Mapping[str, str], body: Any, now: float) -> float | None:
    """Seconds to wait from Retry-After (seconds or HTTP date) or a body `retry_after_seconds`."""
    header = _header(headers, "retry-after")
    if header:
        text = header.strip()
        try:
            seconds = float(text)
        except ValueError:
            try:
                when = parsedate_to_datetime(text)
            except (TypeError, ValueError):
                when = None
            if when is not None:
                if when.tzinfo is None:
                    when = when.replace(tzinfo=UTC)
                return max(0.0, when.timestamp() - now)
        else:
            if seconds >= 0:
                return seconds
    if isinstance(body, dict):
        value = body.get("retry_after_seconds")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
            return float(value)
    return None


def error_message(body: Any, text: str) -> str:
    """The server's error text from a JSON error body, else a trimmed raw text."""
    if isinstance(body, dict):
        for key in ("error", "errorMsg", "error_msg", "message"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value
    return text.strip()[:300] or "no error text"


def restriction_kind(status: int, message: str, code: str | None) -> str | None:
    """restarting / halted / cancel_only / post_only for a 425 or a 503 trading restriction."""
    if status == 425:
        return "restarting"
    if status != 503:
        return None
    lowered = message.lower()
    if code == "post_only_mode" or "post-only mode" in lowered:
        return "post_only"
    if "cancel-only" in lowered or "cancel only" in lowered:
        return "cancel_only"
    if "trading is currently disabled" in lowered or "halted" in lowered:
        return "halted"
    return None


class _ErrorFields(TypedDict, total=False):
    """The optional ApiError fields an error body (or header) can give."""

    code: str | None
    retryable: bool | None
    trace_id: str | None
    parameter: str | None


def parse_error_response(
    status: int, content: bytes, headers: Mapping[str, str], *, now: float, route: str
) -> ApiError:
    """An error status as the right ApiError subclass (reads {error, code, retryable, trace_id})."""
    try:
        body: object = json.loads(content) if content else None
    except (ValueError, UnicodeDecodeError):
        body = None
    text = content.decode("utf-8", "replace") if body is None else ""
    message = error_message(body, text)
    fields = _ErrorFields()
    if isinstance(body, dict):
        code = body.get("code")
        fields["code"] = code if isinstance(code, str) else None
        retryable = body.get("retryable")
        fields["retryable"] = retryable if isinstance(retryable, bool) else None
        trace = body.get("trace_id")
        fields["trace_id"] = trace if isinstance(trace, str) else None
        parameter = body.get("parameter")
        fields["parameter"] = parameter if isinstance(parameter, str) else None
    if not fields.get("trace_id"):
        fields["trace_id"] = _header(headers, "x-trace-id")
    retry_after = parse_retry_after(headers, body, now)
    if status == 429:
        return RateLimitError(status, message, retry_after=retry_after, route=route, **fields)
    kind = restriction_kind(status, message, fields.get("code"))
    if kind is not None:
        return RestrictedError(
            status, message, kind=kind, retry_after=retry_after, route=route, **fields
        )
    return ApiError(status, message, retry_after=retry_after, route=route, **fields)


# ---------------------------------------------------------------------------------------------
# Gamma


def _json_list(value: object, what: str) -> list[object]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        value = load_json(value, what)
    if not isinstance(value, list):
        raise ParseError(f"{what}: expected a list")
    return value


def parse_gamma_market(obj: Any) -> GammaMarket:
    """A Gamma market: decodes JSON-encoded lists and picks trading ids by `version`."""
    if not isinstance(obj, dict):
        raise ParseError("gamma market is not an object")
    version_text = _str(obj.get("version")).strip().lower()
    try:
        version = MarketVersion(version_text)
    except ValueError as exc:
        raise ParseError(
            f"gamma market {obj.get('id')!r}: unknown version {version_text!r}"
        ) from exc
    outcomes = [_str(o) for o in _json_list(obj.get("outcomes"), "outcomes")]
    if version is MarketVersion.V1:
        ids = _json_list(obj.get("clobTokenIds"), "clobTokenIds")
    else:
        ids = _json_list(obj.get("positionIds"), "positionIds")
    if ids and len(ids) != len(outcomes):
        raise ParseError(
            f"gamma market {obj.get('id')!r}: {len(ids)} ids for {len(outcomes)} outcomes"
        )
    tokens = tuple(
        MarketToken(token_id=_str(tid), outcome=outcomes[i], outcome_index=i)
        for i, tid in enumerate(ids)
    )
    schedule_raw = obj.get("feeSchedule")
    schedule: dict[str, Any] = schedule_raw if isinstance(schedule_raw, dict) else {}
    end = iso_to_utc(obj.get("endDate"))
    if end is None and obj.get("endDateIso"):
        end = iso_to_utc(_str(obj.get("endDateIso"))[:10] + "T00:00:00+00:00")
    return GammaMarket(
        id=_str(obj.get("id")),
        condition_id=_str(obj.get("conditionId")).strip(),
        question=_str(obj.get("question")),
        slug=_str(obj.get("slug")),
        version=version,
        tokens=tokens,
        neg_risk=_bool(obj.get("negRisk")),
        active=_bool(obj.get("active")),
        closed=_bool(obj.get("closed")),
        archived=_bool(obj.get("archived")),
        accepting_orders=_bool(obj.get("acceptingOrders")),
        enable_order_book=_bool(obj.get("enableOrderBook")),
        tick_size=to_optional_decimal(obj.get("orderPriceMinTickSize"), "orderPriceMinTickSize"),
        min_size=to_optional_decimal(obj.get("orderMinSize"), "orderMinSize"),
        end_date=end,
        fees_enabled=_bool(obj.get("feesEnabled")),
        fee_rate=to_optional_decimal(schedule.get("rate"), "feeSchedule.rate"),
        fee_exponent=to_optional_decimal(schedule.get("exponent"), "feeSchedule.exponent"),
        fee_takers_only=_bool(schedule.get("takerOnly"), default=True),
        seconds_delay=_optional_int(obj.get("secondsDelay")) or 0,
        raw=obj,
        outcome_prices=_outcome_prices(obj.get("outcomePrices"), len(outcomes)),
        resolution_status=_str(obj.get("umaResolutionStatus")).strip().lower(),
        event_key=_gamma_event_key(obj),
        category=_str(obj.get("category")).strip()[:120],
    )


def _gamma_event_key(obj: dict[str, Any]) -> str:
    """The event a Gamma market belongs to: its neg-risk market id (the outcomes of one neg-risk
    event are mutually exclusive), else its first event's id, else "" (docs/POLYMARKET.md §2)."""
    if _bool(obj.get("negRisk")) and _str(obj.get("negRiskMarketID")).strip():
        return _str(obj.get("negRiskMarketID")).strip()[:80]
    events = obj.get("events")
    if isinstance(events, list) and events and isinstance(events[0], dict):
        ident = _str(events[0].get("id")).strip()
        return f"event:{ident}"[:80] if ident else ""
    return ""


def _outcome_prices(value: Any, count: int) -> tuple[Decimal, ...]:
    """Gamma `outcomePrices` (a JSON-encoded list of decimal strings); () when absent or odd."""
    try:
        prices = tuple(to_decimal(p, "outcomePrices") for p in _json_list(value, "outcomePrices"))
    except ParseError:
        return ()
    return prices if len(prices) == count else ()


def parse_gamma_markets(body: Any) -> list[GammaMarket]:
    """`GET /markets` (bare array) or `/markets/keyset` ({markets: [...]}) as GammaMarkets."""
    if isinstance(body, dict) and isinstance(body.get("markets"), list):
        body = body["markets"]
    if body is None:
        return []
    if not isinstance(body, list):
        raise ParseError("gamma /markets: expected a list")
    return [parse_gamma_market(m) for m in body]


def build_gamma_markets_params(
    *,
    condition_ids: Sequence[str] = (),
    clob_token_ids: Sequence[str] = (),
    position_ids: Sequence[str] = (),
    closed: bool | None = None,
) -> dict[str, str | list[str]]:
    """Gamma `/markets` filters as repeated query params (httpx expands lists into repeats)."""
    params: dict[str, str | list[str]] = {}
    if condition_ids:
        params["condition_ids"] = list(condition_ids)
    if clob_token_ids:
        params["clob_token_ids"] = list(clob_token_ids)
    if position_ids:
        params["position_ids"] = list(position_ids)
    if not params:
        raise ValueError("give at least one condition id, clob token id or position id")
    if closed is not None:
        params["closed"] = "true" if closed else "false"
    return params


# ---------------------------------------------------------------------------------------------
# CLOB public market data


def parse_tick(value: Any, what: str = "tick size") -> Decimal:
    """A tick size, which must be one of Polymarket's tick sizes."""
    tick = to_decimal(value, what)
    for known in TICK_SIZES:
        if tick == known:
            return known
    raise ParseError(f"{what}: unsupported tick size {tick}")


def parse_clob_market(body: Any) -> ClobMarketParams:
    """`/clob-markets/{condition_id}` compact params (t, mts, mos, nr, fd, itode, oas)."""
    if not isinstance(body, dict):
        raise ParseError("/clob-markets: expected an object")
    raw_tokens = body.get("t") or []
    if not isinstance(raw_tokens, list):
        raise ParseError("/clob-markets: 't' is not a list")
    tokens = []
    for index, token in enumerate(raw_tokens):
        if not token:
            continue
        if not isinstance(token, dict) or not _str(token.get("t")):
            raise ParseError(f"/clob-markets: bad token entry {index}")
        tokens.append(
            MarketToken(
                token_id=_str(token["t"]), outcome=_str(token.get("o")), outcome_index=index
            )
        )
    fee_raw = body.get("fd")
    fee: dict[str, Any] = fee_raw if isinstance(fee_raw, dict) else {}
    return ClobMarketParams(
        tokens=tuple(tokens),
        tick_size=parse_tick(body.get("mts"), "/clob-markets mts"),
        min_size=to_decimal(body.get("mos"), "/clob-markets mos"),
        neg_risk=_bool(body.get("nr")),
        fee_rate=to_optional_decimal(fee.get("r"), "fd.r") or Decimal(0),
        fee_exponent=to_optional_decimal(fee.get("e"), "fd.e") or Decimal(1),
        fee_takers_only=_bool(fee.get("to"), default=True),
        taker_delay=_bool(body.get("itode")),
        min_order_age_s=_optional_int(body.get("oas")),
        raw=body,
    )


def _levels(raw: Any, what: str) -> list[BookLevel]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ParseError(f"/book: '{what}' is not a list")
    levels = []
    for level in raw:
        if not isinstance(level, dict):
            raise ParseError(f"/book: '{what}' level is not an object")
        levels.append(
            BookLevel(
                price=to_decimal(level.get("price"), f"{what}.price"),
                size=to_decimal(level.get("size"), f"{what}.size"),
            )
        )
    return levels


def parse_book(body: Any) -> OrderBook:
    """`/book` as an OrderBook best-first (the wire sends both sides worst-first)."""
    if not isinstance(body, dict):
        raise ParseError("/book: expected an object")
    bids = sorted(_levels(body.get("bids"), "bids"), key=lambda lv: lv.price, reverse=True)
    asks = sorted(_levels(body.get("asks"), "asks"), key=lambda lv: lv.price)
    stamp = body.get("timestamp")
    timestamp = None
    if stamp not in (None, ""):
        millis = to_decimal(stamp, "timestamp")
        timestamp = datetime.fromtimestamp(int(millis) / 1000, tz=UTC)
    return OrderBook(
        token_id=_str(body.get("asset_id")),
        bids=tuple(bids),
        asks=tuple(asks),
        tick_size=parse_tick(body.get("tick_size"), "/book tick_size"),
        min_size=to_decimal(body.get("min_order_size"), "/book min_order_size"),
        neg_risk=_bool(body.get("neg_risk")),
        timestamp=timestamp,
    )


def parse_midpoint(body: Any) -> Decimal:
    """`/midpoint` → {"mid_price": "0.645"} (older: "mid")."""
    if not isinstance(body, dict):
        raise ParseError("/midpoint: expected an object")
    value = body.get("mid_price", body.get("mid"))
    return to_decimal(value, "/midpoint mid_price")


def parse_spread(body: Any) -> Decimal:
    """`/spread` → {"spread": "0.01"}."""
    if not isinstance(body, dict):
        raise ParseError("/spread: expected an object")
    return to_decimal(body.get("spread"), "/spread spread")


def parse_tick_size(body: Any) -> Decimal:
    """`/tick-size` → {"minimum_tick_size": 0.01} (number or string)."""
    if not isinstance(body, dict):
        raise ParseError("/tick-size: expected an object")
    return parse_tick(body.get("minimum_tick_size"), "/tick-size minimum_tick_size")


def parse_neg_risk(body: Any) -> bool:
    """`/neg-risk` → {"neg_risk": true}."""
    if not isinstance(body, dict) or not isinstance(body.get("neg_risk"), bool):
        raise ParseError("/neg-risk: expected {neg_risk: bool}")
    return bool(body["neg_risk"])


def parse_server_time(body: Any) -> int:
    """`/time` → plain integer seconds (also tolerates {"time": n} and digit strings)."""
    if isinstance(body, dict):
        body = body.get("time")
    if isinstance(body, bool) or body is None:
        raise ParseError("/time: expected an integer")
    return int(to_decimal(body, "/time"))


# ---------------------------------------------------------------------------------------------
# Auth


def parse_api_creds(body: Any) -> ApiCreds:
    """`{apiKey, secret, passphrase}` as ApiCreds (error text never includes the values)."""
    if not isinstance(body, dict):
        raise ParseError("api-key response is not an object")
    key, secret, passphrase = body.get("apiKey"), body.get("secret"), body.get("passphrase")
    if not all(isinstance(v, str) and v for v in (key, secret, passphrase)):
        raise ParseError("api-key response lacks apiKey/secret/passphrase")
    return ApiCreds(api_key=str(key), secret=str(secret), passphrase=str(passphrase))


def parse_closed_only(body: Any) -> bool:
    """`/auth/ban-status/closed-only` → {"closed_only": bool}."""
    if not isinstance(body, dict) or not isinstance(body.get("closed_only"), bool):
        raise ParseError("closed-only status: expected {closed_only: bool}")
    return bool(body["closed_only"])


# ---------------------------------------------------------------------------------------------
# Order submission outcomes


_REJECT_PATTERNS: tuple[tuple[RejectKind, tuple[str, ...]], ...] = (
    (RejectKind.TICK_SIZE, ("minimum tick size",)),
    (RejectKind.MIN_SIZE, ("lower than the minimum",)),
    (RejectKind.MIN_NOTIONAL, ("marketable buy order",)),
    (RejectKind.PRECISION, ("max accuracy", "lot size", "decimal places")),
    (RejectKind.BALANCE, ("not enough balance", "allowance")),
    (RejectKind.VERSION_MISMATCH, ("order_version_mismatch", "version mismatch")),
    (RejectKind.WALLET_NOT_ALLOWED, ("maker address not allowed",)),
    (RejectKind.SIGNER_MISMATCH, ("order signer address has to be",)),
    (RejectKind.OWNER_MISMATCH, ("order owner has to be",)),
    (RejectKind.AUTH, ("unauthorized", "invalid api key", "invalid l1")),
    (RejectKind.FOK_NOT_FILLED, ("fully filled or killed", "couldn't be fully filled")),
    (RejectKind.FAK_NO_MATCH, ("fak order",)),
    (RejectKind.POST_ONLY_CROSS, ("crosses book", "crosses the book")),
    (RejectKind.MARKET_NOT_READY, ("not yet ready",)),
    (RejectKind.CLOSED_ONLY, ("closed only mode",)),
    (RejectKind.BANNED, ("address banned",)),
    (RejectKind.EXPIRATION, ("invalid expiration",)),
    (RejectKind.TOO_MANY_ORDERS, ("too many orders",)),
    (RejectKind.NOT_FOUND, ("not found",)),
)


def classify_reject(message: str, http_status: int) -> RejectKind:
    """The RejectKind of a refusal message (OTHER when unrecognised)."""
    lowered = message.lower()
    for kind, needles in _REJECT_PATTERNS:
        if any(n in lowered for n in needles):
            return kind
    if http_status in (401, 403):
        return RejectKind.AUTH
    if http_status == 404:
        return RejectKind.NOT_FOUND
    return RejectKind.OTHER


def _refusal(message: str, http_status: int) -> PostOutcome:
    if "duplicated" in message.lower():
        match = _ORDER_ID_RE.search(message)
        return Duplicate(reason=message, order_id=match.group(1) if match else None)
    return Rejected(
        reason=message, kind=classify_reject(message, http_status), http_status=http_status
    )


def outcome_from_order_response(obj: Any, http_status: int = 200) -> PostOutcome:
    """One order's 200-level response object (POST /order, or an entry of POST /orders)."""
    if not isinstance(obj, dict):
        return InDoubt(reason="order response is not an object", http_status=http_status)
    success = obj.get("success")
    message = _str(obj.get("errorMsg") or obj.get("error") or "")
    order_id = _str(obj.get("orderID") or obj.get("orderId") or "")
    status = _str(obj.get("status")).strip().lower()
    if success is True:
        if order_id and status in ACCEPTED_ORDER_STATUSES:
            trade_ids = obj.get("tradeIDs") or []
            return Accepted(
                order_id=order_id,
                status=status,
                making_amount=to_optional_decimal(obj.get("makingAmount"), "makingAmount"),
                taking_amount=to_optional_decimal(obj.get("takingAmount"), "takingAmount"),
                trade_ids=tuple(str(t) for t in trade_ids) if isinstance(trade_ids, list) else (),
                message=message,
            )
        return InDoubt(
            reason=f"success without an accepted status ({status or 'none'}): {message}".rstrip(
                ": "
            ),
            http_status=http_status,
        )
    if message:
        return _refusal(message, http_status)
    return InDoubt(reason="order response without success flag or error", http_status=http_status)


def classify_post_order(
    status: int, content: bytes, headers: Mapping[str, str], *, now: float
) -> PostOutcome:
    """Classify a POST /order answer. Only a definite refusal becomes Rejected."""
    body: object
    try:
        body = json.loads(content) if content else None
    except (ValueError, UnicodeDecodeError):
        body = None
    if 200 <= status < 300:
        if body is None:
            return InDoubt(reason="unreadable 2xx body", http_status=status)
        try:
            return outcome_from_order_response(body, status)
        except ParseError as exc:
            return InDoubt(reason=f"unreadable accept body: {exc}", http_status=status)
    text = content.decode("utf-8", "replace") if body is None else ""
    message = error_message(body, text)
    code = body.get("code") if isinstance(body, dict) else None
    retry_after = parse_retry_after(headers, body, now)
    if status == 429:
        return RateLimited(retry_after=retry_after, reason=message)
    kind = restriction_kind(status, message, code if isinstance(code, str) else None)
    if kind is not None:
        return Restricted(kind=kind, reason=message, http_status=status, retry_after=retry_after)
    if status >= 500 or status == 408 or status < 200 or 300 <= status < 400:
        return InDoubt(reason=f"HTTP {status}: {message}", http_status=status)
    return _refusal(message, status)


def classify_post_orders(
    status: int, content: bytes, headers: Mapping[str, str], *, count: int, now: float
) -> list[PostOutcome]:
    """Classify a POST /orders answer: one outcome per submitted order, in order."""
    if 200 <= status < 300:
        try:
            body = json.loads(content)
        except (ValueError, UnicodeDecodeError):
            body = None
        if not isinstance(body, list) or len(body) != count:
            doubt = InDoubt(
                reason="batch answer missing or of the wrong length", http_status=status
            )
            return [doubt] * count
        results: list[PostOutcome] = []
        for entry in body:
            try:
                results.append(outcome_from_order_response(entry, status))
            except ParseError as exc:
                results.append(InDoubt(reason=f"unreadable entry: {exc}", http_status=status))
        return results
    outcome = classify_post_order(status, content, headers, now=now)
    return [outcome] * count


def build_batch_body(bodies: Sequence[bytes]) -> bytes:
    """POST /orders body: the given per-order bodies, byte for byte, inside a JSON array."""
    if not bodies:
        raise ValueError("no orders to post")
    if len(bodies) > MAX_BATCH_ORDERS:
        raise ValueError(f"at most {MAX_BATCH_ORDERS} orders per POST /orders, got {len(bodies)}")
    return b"[" + b",".join(bodies) + b"]"


def compact_json(value: object) -> bytes:
    """Compact JSON bytes (separators without spaces), as the SDKs send and sign."""
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


def build_cancel_body(order_id: str) -> bytes:
    """DELETE /order body."""
    return compact_json({"orderID": order_id})


def build_cancel_orders_body(order_ids: Sequence[str]) -> bytes:
    """DELETE /orders body (a JSON array of order ids)."""
    if not order_ids:
        raise ValueError("no order ids to cancel")
    return compact_json(list(order_ids))


def build_cancel_market_body(market: str | None, asset_id: str | None) -> bytes:
    """DELETE /cancel-market-orders body; both filters optional."""
    body: dict[str, str] = {}
    if market:
        body["market"] = market
    if asset_id:
        body["asset_id"] = asset_id
    return compact_json(body)


def parse_cancel_result(body: Any) -> CancelResult:
    """`{"canceled": [...], "not_canceled": {id: reason}}`."""
    if not isinstance(body, dict):
        raise ParseError("cancel response is not an object")
    canceled = body.get("canceled") or []
    not_canceled = body.get("not_canceled") or {}
    if not isinstance(canceled, list) or not isinstance(not_canceled, dict):
        raise ParseError("cancel response has the wrong shape")
    return CancelResult(
        canceled=tuple(str(c) for c in canceled),
        not_canceled={str(k): _str(v) for k, v in not_canceled.items()},
    )


# ---------------------------------------------------------------------------------------------
# CLOB ledger (orders, trades, balances)


def parse_share_amounts(values: Sequence[Any], what: str) -> tuple[list[Decimal], bool]:
    """Share sizes as Decimals; 6-decimal fixed strings (e.g. "100000000") are scaled to shares.

    Current API sends decimal share strings; older docs show base units. A value is taken as
    base units only when it is an integer string ≥ 1e6 that is a whole multiple of 1e4 (sizes
    have at most 2 decimals) — then every value of the record is scaled together.
    """
    decimals = [to_decimal(v, what) for v in values]
    first = values[0] if values else None
    looks_fixed6 = (
        isinstance(first, str)
        and first.strip().isdigit()
        and int(first) >= 10**6
        and int(first) % 10**4 == 0
    )
    if looks_fixed6:
        return [d / BASE_UNITS for d in decimals], True
    return decimals, False


def parse_open_order(obj: Any) -> OpenOrder:
    """A CLOB open-order object (`/data/order/{id}`, `/data/orders` rows)."""
    if not isinstance(obj, dict) or not obj.get("id"):
        raise ParseError("order object lacks an id")
    (original, matched), fixed6 = parse_share_amounts(
        [obj.get("original_size"), obj.get("size_matched") or "0"], "order size"
    )
    trades = obj.get("associate_trades") or []
    return OpenOrder(
        id=_str(obj["id"]),
        status=normalise_status(obj.get("status")),
        owner=_str(obj.get("owner")),
        maker_address=_str(obj.get("maker_address")),
        market=_str(obj.get("market")),
        asset_id=_str(obj.get("asset_id")),
        side=_side(obj.get("side")),
        original_size=original,
        size_matched=matched,
        price=to_decimal(obj.get("price"), "order price"),
        outcome=_str(obj.get("outcome")),
        expiration=optional_epoch_to_utc(obj.get("expiration"), "expiration"),
        order_type=_str(obj.get("order_type")).upper(),
        associate_trades=tuple(str(t) for t in trades) if isinstance(trades, list) else (),
        created_at=optional_epoch_to_utc(obj.get("created_at"), "created_at"),
        sizes_were_fixed6=fixed6,
        raw=obj,
    )


def parse_order_lookup(content: bytes) -> OpenOrder | None:
    """`GET /data/order/{id}` body: None for an empty body, null, {} or an order-less object."""
    if not content.strip():
        return None
    body = load_json(content, "/data/order")
    if not body or (isinstance(body, dict) and not body.get("id")):
        return None
    return parse_open_order(body)


def parse_ledger_page(body: Any, route: str) -> tuple[list[object], str | None]:
    """A CLOB `{limit, next_cursor, count, data}` page: rows and the next cursor (None at LTE=)."""
    if not isinstance(body, dict):
        raise ParseError(f"{route}: expected an object page")
    data = body.get("data") or []
    if not isinstance(data, list):
        raise ParseError(f"{route}: 'data' is not a list")
    cursor = body.get("next_cursor")
    if cursor in (None, "", CURSOR_END):
        return data, None
    return data, str(cursor)


def _maker_fill(obj: Any) -> MakerOrderFill:
    if not isinstance(obj, dict):
        raise ParseError("maker_orders entry is not an object")
    (matched,), _ = parse_share_amounts([obj.get("matched_amount")], "matched_amount")
    return MakerOrderFill(
        order_id=_str(obj.get("order_id")),
        owner=_str(obj.get("owner")),
        maker_address=_str(obj.get("maker_address")),
        matched_amount=matched,
        price=to_decimal(obj.get("price"), "maker price"),
        fee_rate_bps=to_optional_decimal(obj.get("fee_rate_bps"), "fee_rate_bps"),
        asset_id=_str(obj.get("asset_id")),
        outcome=_str(obj.get("outcome")),
        side=_side(obj.get("side")),
        outcome_index=_optional_int(obj.get("outcome_index")),
    )


def parse_clob_trade(obj: Any) -> ClobTrade:
    """A CLOB trade (`/data/trades` row) with its maker fills."""
    if not isinstance(obj, dict) or not obj.get("id"):
        raise ParseError("trade object lacks an id")
    (size,), _ = parse_share_amounts([obj.get("size")], "trade size")
    makers = obj.get("maker_orders") or []
    if not isinstance(makers, list):
        raise ParseError("trade maker_orders is not a list")
    return ClobTrade(
        id=_str(obj["id"]),
        taker_order_id=_str(obj.get("taker_order_id")),
        market=_str(obj.get("market")),
        asset_id=_str(obj.get("asset_id")),
        side=_side(obj.get("side")),
        size=size,
        price=to_decimal(obj.get("price"), "trade price"),
        fee_rate_bps=to_optional_decimal(obj.get("fee_rate_bps"), "fee_rate_bps"),
        status=normalise_status(obj.get("status")),
        match_time=optional_epoch_to_utc(obj.get("match_time"), "match_time"),
        last_update=optional_epoch_to_utc(obj.get("last_update"), "last_update"),
        outcome=_str(obj.get("outcome")),
        owner=_str(obj.get("owner")),
        maker_address=_str(obj.get("maker_address")),
        transaction_hash=_str(obj.get("transaction_hash")),
        trader_side=_str(obj.get("trader_side")).upper(),
        maker_orders=tuple(_maker_fill(m) for m in makers),
        raw=obj,
    )


def build_ledger_params(cursor: str, **filters: QueryValue | None) -> dict[str, QueryValue]:
    """Query params of a `/data/orders` or `/data/trades` page (None filters dropped)."""
    params: dict[str, QueryValue] = {k: v for k, v in filters.items() if v is not None and v != ""}
    params["next_cursor"] = cursor
    return params


ASSET_TYPES = ("COLLATERAL", "CONDITIONAL", "CONDITIONAL-V2")


def build_balance_params(
    asset_type: str, token_id: str | None, signature_type: int
) -> dict[str, QueryValue]:
    """`/balance-allowance[/update]` query params; conditional assets need a token id."""
    kind = asset_type.upper()
    if kind not in ASSET_TYPES:
        raise ValueError(f"asset_type must be one of {', '.join(ASSET_TYPES)}")
    params: dict[str, QueryValue] = {"asset_type": kind, "signature_type": int(signature_type)}
    if kind == "COLLATERAL":
        if token_id:
            raise ValueError("COLLATERAL takes no token_id")
    else:
        if not token_id:
            raise ValueError(f"{kind} needs a token_id")
        params["token_id"] = token_id
    return params


def parse_balance_allowance(body: Any) -> BalanceAllowance:
    """`{"balance": base units, "allowances": {spender: base units}}` in human units."""
    if not isinstance(body, dict) or "balance" not in body:
        raise ParseError("balance-allowance: expected {balance, allowances}")
    allowances_raw = body.get("allowances")
    if allowances_raw is None and "allowance" in body:
        allowances_raw = {"": body["allowance"]}
    if allowances_raw is None:
        allowances_raw = {}
    if not isinstance(allowances_raw, dict):
        raise ParseError("balance-allowance: 'allowances' is not an object")
    return BalanceAllowance(
        balance=base_units_to_decimal(body["balance"], "balance"),
        allowances={
            str(k): base_units_to_decimal(v, f"allowance {k}") for k, v in allowances_raw.items()
        },
        raw=body,
    )


def parse_builder_trade(obj: Any) -> BuilderTrade:
    """One `/builder/trades` row (camelCase, decimal strings)."""
    if not isinstance(obj, dict) or not obj.get("id"):
        raise ParseError("builder trade lacks an id")
    return BuilderTrade(
        id=_str(obj["id"]),
        builder=_str(obj.get("builder")).lower(),
        market=_str(obj.get("market")),
        asset_id=_str(obj.get("assetId")),
        side=_side(obj.get("side")),
        size=to_decimal(obj.get("size"), "builder trade size"),
        size_usdc=to_decimal(obj.get("sizeUsdc"), "builder trade sizeUsdc"),
        price=to_decimal(obj.get("price"), "builder trade price"),
        status=normalise_status(obj.get("status")),
        match_time=iso_or_epoch_to_utc(obj.get("matchTime")),
        fee_usdc=to_decimal(obj.get("feeUsdc") or "0", "builder trade feeUsdc"),
        owner=_str(obj.get("owner")),
        maker=_str(obj.get("maker")),
        transaction_hash=_str(obj.get("transactionHash")),
        raw=obj,
    )


def iso_or_epoch_to_utc(value: Any) -> datetime | None:
    """A time given as epoch seconds (number or digits) or as an ISO-8601 string."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) or (isinstance(value, str) and value.isdigit()):
        return epoch_seconds_to_utc(value, "time")
    return iso_to_utc(value)


def build_heartbeat_body(heartbeat_id: str) -> bytes:
    """`POST /v1/heartbeats` body: `{"heartbeat_id": ""}` first, then the id the venue returned."""
    return compact_json({"heartbeat_id": heartbeat_id})


def parse_heartbeat(status: int, content: bytes) -> str:
    """The id to send next; raises HeartbeatRejected (with the expected id) or ParseError."""
    body = load_json(content, "/v1/heartbeats") if content else {}
    if status == 400 and isinstance(body, dict) and isinstance(body.get("heartbeat_id"), str):
        raise HeartbeatRejected(body["heartbeat_id"])
    if not 200 <= status < 300 or not isinstance(body, dict):
        raise ParseError(f"/v1/heartbeats: unexpected answer HTTP {status}")
    hb = body.get("heartbeat_id")
    if not isinstance(hb, str):
        raise ParseError("/v1/heartbeats: no heartbeat_id in the answer")
    return hb
