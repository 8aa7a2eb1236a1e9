"""Throwaway keys for tests: public Hardhat/Anvil accounts and fresh Fernet keys (never funded)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from crypto import KeyRing

# Public Hardhat/Anvil test account #0 and #1: known to everyone, never funded.
TEST_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
TEST_ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
TEST_KEY_2 = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
TEST_ADDRESS_2 = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


@pytest.fixture
def fernet_key() -> str:
    """A throwaway Fernet key."""
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


@pytest.fixture
def keyring(fernet_key: str) -> KeyRing:
    """A KeyRing over a throwaway key."""
    from crypto import KeyRing

    return KeyRing(fernet_key)
