"""Rate limits: a Rack::Attack-like throttle (429 ``Retry later`` with ``Retry-After``) and
GitLab's application limiter (429 JSON without ``Retry-After``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
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


class ApplicationLimiter:
    """``Gitlab::ApplicationRateLimiter``: a per-endpoint budget in fixed windows.

    GitLab counts each request in a cache key for the window ``floor(now / interval)``, so a
    window is a fixed clock minute, not a sliding one. Over the threshold, the endpoint answers
    via ``check_rate_limit!`` (lib/api/helpers/rate_limiter.rb): ``render_api_error!({ error:
    'This endpoint has been requested too many times. Try again later.' }, 429)``, with no
    ``Retry-After`` and no ``RateLimit-*`` headers (only Rack::Attack throttles send those).
    E.g. ``group_projects_api``: 600 per minute per user on ``GET /groups/:id/projects``.
    """

    BODY = {
        "message": {"error": "This endpoint has been requested too many times. Try again later."}
    }

    def __init__(
        self, limit: int, period: float = 60.0, clock: Callable[[], float] = time.time
    ) -> None:
        if limit < 1:
            raise ValueError("rate limit must be at least 1")
        self.limit = limit
        self.period = period
        self.clock = clock
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, int], int] = {}
        self.refused = 0

    def allow(self, scope: str) -> bool:
        with self._lock:
            window = int(self.clock() // self.period)
            key = (scope, window)
            self._counts = {k: v for k, v in self._counts.items() if k[1] >= window}
            self._counts[key] = self._counts.get(key, 0) + 1
            allowed = self._counts[key] <= self.limit
            if not allowed:
                self.refused += 1
            return allowed
