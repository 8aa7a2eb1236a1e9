"""Clocks for tests: wall and monotonic time that move only when code under test 'sleeps'."""

from __future__ import annotations


class FakeTime:
    """A wall clock and a monotonic clock; `sleep` records the delay and advances both."""

    def __init__(self, wall: float = 1795253614.0, mono: float = 500.0) -> None:
        self.wall = wall
        self.mono = mono
        self.sleeps: list[float] = []

    def clock(self) -> float:
        """Wall time (epoch seconds)."""
        return self.wall

    def monotonic(self) -> float:
        """Monotonic time."""
        return self.mono

    async def sleep(self, seconds: float) -> None:
        """Record the sleep and move time forward instead of waiting."""
        self.sleeps.append(seconds)
        self.wall += seconds
        self.mono += seconds
