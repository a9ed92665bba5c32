"""A Rack::Attack-like throttle: a request budget per period, then 429 ``Retry later``."""

from __future__ import annotations

import threading
import time
from email.utils import formatdate


class RateLimiter:
    def __init__(self, limit: int, period: float = 60.0, name: str = "throttle_authenticated_api"):
        if limit < 1:
            raise ValueError("rate limit must be at least 1")
        self.limit = limit
        self.period = period
        self.name = name
        self._lock = threading.Lock()
        self._window_start = time.time()
        self._observed = 0

    def reset(self) -> None:
        with self._lock:
            self._window_start = time.time()
            self._observed = 0

    def check(self) -> tuple[bool, list[tuple[str, str]]]:
        """Count one request; (allowed, headers to add to the response)."""
        with self._lock:
            now = time.time()
            if now - self._window_start >= self.period:
                self._window_start = now
                self._observed = 0
            self._observed += 1
            reset_at = self._window_start + self.period
            allowed = self._observed <= self.limit
            per_minute = max(1, round(self.limit * 60 / self.period))
            headers = [
                ("RateLimit-Name", self.name),
                ("RateLimit-Limit", str(per_minute)),
                ("RateLimit-Observed", str(self._observed)),
                ("RateLimit-Remaining", str(max(0, self.limit - self._observed))),
                ("RateLimit-Reset", str(int(reset_at))),
            ]
            if not allowed:
                headers += [
                    ("RateLimit-ResetTime", formatdate(reset_at, usegmt=True)),
                    ("Retry-After", str(max(1, int(reset_at - now + 0.999)))),
                ]
            return allowed, headers
