"""Tests of copying/ and smart_pricing.py: the engine (in-process, fake exchange where a venue is needed)."""
