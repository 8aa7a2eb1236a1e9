"""Tests of sim/ and simulator.py: the local Polymarket simulator."""
