"""Throttling of wrong bearer tokens per client address.

Tokens are 256-bit random, so guessing one is hopeless; the throttle is there so that a client
hammering the API with wrong tokens is slowed, visible in the log, and cannot fill the log or
the database's connection pool with failed look-ups. After ``limit`` failures within ``window``
seconds, every authenticated call from that address is answered 429 until the oldest of those
failures leaves the window.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable

LOG = logging.getLogger("imageaudit.catalogue")
# Bound the memory an address-spraying client can make the throttle hold.
MAX_ADDRESSES = 10000


class AuthThrottle:
    """Failed authentications per address in a sliding window."""

    def __init__(self, limit: int, window: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window, self.clock = max(1, limit), window, clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, address: str, now: float) -> deque[float]:
        times = self._failures.get(address)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[address]
        return times

    def blocked(self, address: str) -> int:
        """Seconds ``address`` must wait (0: not throttled)."""
        now = self.clock()
        with self._lock:
            times = self._recent(address, now)
            if len(times) < self.limit:
                return 0
            return max(1, math.ceil(times[-self.limit] + self.window - now))

    def failed(self, address: str) -> int:
        """Record one failed authentication; the address's count within the window."""
        now = self.clock()
        with self._lock:
            times = self._recent(address, now)
            if address not in self._failures:
                if len(self._failures) >= MAX_ADDRESSES:
                    self._failures.clear()
                self._failures[address] = times
            times.append(now)
            count = len(times)
        LOG.warning("wrong bearer token from %s: %d failure(s) in the last %g s%s", address,
                    count, self.window, "; throttled (429)" if count >= self.limit else "")
        return count
