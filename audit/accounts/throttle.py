"""Counting failed sign-ins (API keys, the login form) in fixed windows, in the cache.

With CACHE_URL pointing at Redis every web process shares the counts; past a limit the
caller is refused before any key or password is checked, so guessing costs the guesser
time and the database nothing.
"""

import time

from django.core.cache import cache

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _now() -> float:
    return time.time()  # one seam, for tests that move the clock


def failure_rate(rate: str) -> tuple[int, int]:
    """A rate setting such as "30/min" or "10/h" as (failures allowed, window seconds)."""
    count, _, period = rate.partition("/")
    return int(count), _PERIODS[period.strip()[0]]


class FailureWindow:
    """Failures of one kind by one identity (an address, a username) in the current window."""

    def __init__(self, *, kind: str, ident: str, rate: str):
        self.limit, self.window = failure_rate(rate)
        now = _now()
        self.retry_after = max(1, int(self.window - now % self.window))
        self.cache_key = f"lens:{kind}:{ident}:{int(now // self.window)}"

    @property
    def exhausted(self) -> bool:
        return cache.get(self.cache_key, 0) >= self.limit

    def record_failure(self) -> None:
        cache.add(self.cache_key, 0, timeout=self.window + 1)
        try:
            cache.incr(self.cache_key)
        except ValueError:  # expired between add and incr
            cache.set(self.cache_key, 1, timeout=self.window + 1)
