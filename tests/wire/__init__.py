"""Tests of wire/ and polymarket_client.py: protocol, parsing, signing, the client."""
