"""The V2 exchanges' `OrderFilled` event: its topic, its layout, and a pure decoder.

`OrderFilled(bytes32 indexed orderHash, address indexed maker, address indexed taker, uint8 side,
uint256 tokenId, uint256 makerAmountFilled, uint256 takerAmountFilled, uint256 fee,
bytes32 builder, bytes32 metadata)`: topics = [topic0, orderHash, maker, taker], data = 7 words.
One event per order filled; `maker` is that order's funder, so a wallet's fills, as maker or as
taker, are exactly the events whose maker topic is the wallet. The taker order's own event has
`taker` = the exchange contract. `side` is the side of the `maker` order: BUY (0) pays pUSD
(makerAmountFilled) for shares (takerAmountFilled), SELL (1) the reverse; amounts have 6 decimals.

Invariant: decoding never guesses. A log that is not a well-formed V2 OrderFilled raises
`LogDecodeError`; amounts become exact Decimals; the (transaction hash, log index) pair is the
event's identity. Nothing here does I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from infra.errors import VenueError
from wire.types import Side

ORDER_FILLED_SIGNATURE = (
    "OrderFilled(bytes32,address,address,uint8,uint256,uint256,uint256,uint256,bytes32,bytes32)"
)
ORDER_FILLED_TOPIC = "0xd543adfd945773f1a62f74f0ee55a5e3b9b1a28262980ba90b1a89f2ea84d8ee"
ORDERS_MATCHED_SIGNATURE = "OrdersMatched(bytes32,address,uint8,uint256,uint256,uint256)"
AMOUNT_SCALE = Decimal(1).scaleb(-6)
PRICE_QUANTUM = Decimal(1).scaleb(-10)
_DATA_WORDS = 7
_HEX32 = re.compile(r"^0x[0-9a-fA-F]{64}$")
_HEX_DATA = re.compile(r"^0x(?:[0-9a-fA-F]{2})*$")


class LogDecodeError(VenueError):
    """A log that is not a well-formed V2 `OrderFilled` event."""


def topic_for_address(address: str) -> str:
    """An address as a 32-byte topic (left-padded, lowercase)."""
    text = address.lower().removeprefix("0x")
    if len(text) != 40 or not all(c in "0123456789abcdef" for c in text):
        raise ValueError(f"not an address: {address!r}")
    return "0x" + "0" * 24 + text


def address_from_topic(topic: str) -> str:
    """The lowercase address in a 32-byte topic (its upper 12 bytes must be zero)."""
    if not _HEX32.match(topic):
        raise LogDecodeError(f"topic is not 32 bytes of hex: {topic!r}")
    body = topic[2:].lower()
    if body[:24] != "0" * 24:
        raise LogDecodeError(f"topic is not an address: {topic!r}")
    return "0x" + body[24:]


def _quantity(value: Any, name: str) -> int:
    """A JSON-RPC quantity (0x-hex string) as an int."""
    if not isinstance(value, str) or not value.startswith("0x") or len(value) < 3:
        raise LogDecodeError(f"{name} is not a hex quantity: {value!r}")
    try:
        return int(value, 16)
    except ValueError:
        raise LogDecodeError(f"{name} is not a hex quantity: {value!r}") from None


def _hash(value: Any, name: str) -> str:
    if not isinstance(value, str) or not _HEX32.match(value):
        raise LogDecodeError(f"{name} is not a 32-byte hash: {value!r}")
    return value.lower()


@dataclass(frozen=True)
class OrderFilled:
    """One decoded `OrderFilled` log (amounts in base units, 6 decimals)."""

    exchange: str  # lowercase contract address that emitted it
    block_number: int
    block_hash: str
    transaction_hash: str
    transaction_index: int
    log_index: int
    order_hash: str
    maker: str  # lowercase funder of the order this event fills
    taker: str  # lowercase: the taker order's funder, or the exchange for the taker's own event
    side: Side  # side of the maker order
    token_id: str  # decimal string (CTF tokenId or Protocol-V2 positionId)
    maker_amount: int
    taker_amount: int
    fee: int
    builder: str
    metadata: str
    removed: bool = False

    @property
    def identity(self) -> tuple[str, int]:
        """(transaction hash, log index): unique per event on one chain history."""
        return self.transaction_hash, self.log_index

    @property
    def is_taker_order(self) -> bool:
        """True for the taker order's own event (taker topic = the exchange)."""
        return self.taker == self.exchange

    @property
    def share_units(self) -> int:
        """Shares filled, base units, as the layout defines them (BUY: taker amount)."""
        return self.taker_amount if self.side is Side.BUY else self.maker_amount

    @property
    def usdc_units(self) -> int:
        """pUSD exchanged before the fee, base units (BUY: maker amount)."""
        return self.maker_amount if self.side is Side.BUY else self.taker_amount

    @property
    def shares(self) -> Decimal:
        """Shares filled."""
        return Decimal(self.share_units) * AMOUNT_SCALE

    @property
    def usdc(self) -> Decimal:
        """pUSD exchanged (without the fee)."""
        return Decimal(self.usdc_units) * AMOUNT_SCALE

    @property
    def fee_usdc(self) -> Decimal:
        """The fee in pUSD (added to a BUY's cost, deducted from a SELL's proceeds)."""
        return Decimal(self.fee) * AMOUNT_SCALE

    @property
    def price(self) -> Decimal:
        """pUSD per share (10 decimals); ZeroDivision is refused at decode time."""
        return price_of(self.usdc_units, self.share_units)


def price_of(usdc_units: int, share_units: int) -> Decimal:
    """pUSD per share from base-unit amounts, rounded half-even to 10 decimals."""
    if share_units <= 0:
        raise LogDecodeError("a fill of zero shares has no price")
    return (Decimal(usdc_units) / Decimal(share_units)).quantize(PRICE_QUANTUM, ROUND_HALF_EVEN)


def decode_order_filled(log: Mapping[str, Any], exchanges: Sequence[str] | None = None) -> OrderFilled:
    """Decode one JSON-RPC log object; `exchanges` (if given) must contain its address."""
    if not isinstance(log, Mapping):
        raise LogDecodeError("a log must be a JSON object")
    address = log.get("address")
    if not isinstance(address, str) or not re.fullmatch(r"0x[0-9a-fA-F]{40}", address):
        raise LogDecodeError(f"log address is not an address: {address!r}")
    exchange = address.lower()
    if exchanges is not None and exchange not in {e.lower() for e in exchanges}:
        raise LogDecodeError(f"log from {exchange}, not a V2 exchange")
    topics = log.get("topics")
    if not isinstance(topics, list) or len(topics) != 4:
        raise LogDecodeError("OrderFilled has exactly 4 topics")
    if not isinstance(topics[0], str) or topics[0].lower() != ORDER_FILLED_TOPIC:
        raise LogDecodeError(f"topic0 {topics[0]!r} is not OrderFilled")
    data = log.get("data")
    if not isinstance(data, str) or not _HEX_DATA.match(data):
        raise LogDecodeError("log data is not hex bytes")
    body = data[2:]
    if len(body) != 64 * _DATA_WORDS:
        raise LogDecodeError(f"OrderFilled data has {len(body) // 64} words, expected {_DATA_WORDS}")
    words = [body[i * 64:(i + 1) * 64] for i in range(_DATA_WORDS)]
    side_code = int(words[0], 16)
    if side_code not in (0, 1):
        raise LogDecodeError(f"side {side_code} is neither 0 (BUY) nor 1 (SELL)")
    maker_amount, taker_amount, fee = (int(w, 16) for w in words[2:5])
    decoded = OrderFilled(
        exchange=exchange,
        block_number=_quantity(log.get("blockNumber"), "blockNumber"),
        block_hash=_hash(log.get("blockHash"), "blockHash"),
        transaction_hash=_hash(log.get("transactionHash"), "transactionHash"),
        transaction_index=_quantity(log.get("transactionIndex", "0x0"), "transactionIndex"),
        log_index=_quantity(log.get("logIndex"), "logIndex"),
        order_hash=_hash(topics[1], "orderHash"),
        maker=address_from_topic(topics[2]),
        taker=address_from_topic(topics[3]),
        side=Side.BUY if side_code == 0 else Side.SELL,
        token_id=str(int(words[1], 16)),
        maker_amount=maker_amount,
        taker_amount=taker_amount,
        fee=fee,
        builder="0x" + words[5].lower(),
        metadata="0x" + words[6].lower(),
        removed=bool(log.get("removed", False)),
    )
    if decoded.share_units == 0 or decoded.usdc_units == 0:
        raise LogDecodeError("OrderFilled with a zero amount")
    return decoded


def encode_order_filled_data(side: Side, token_id: str | int, maker_amount: int, taker_amount: int,
                             fee: int = 0, builder: str = "0x" + "0" * 64,
                             metadata: str = "0x" + "0" * 64) -> str:
    """The 7-word data field of an OrderFilled log (for simulators and tests)."""
    def word(value: int) -> str:
        if value < 0 or value >= 2**256:
            raise ValueError("uint256 out of range")
        return format(value, "064x")

    return "0x" + "".join([
        word(0 if side is Side.BUY else 1), word(int(token_id)), word(maker_amount),
        word(taker_amount), word(fee), builder.removeprefix("0x").lower().rjust(64, "0"),
        metadata.removeprefix("0x").lower().rjust(64, "0"),
    ])
