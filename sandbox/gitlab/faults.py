"""Seeded fault injection: 502, 503, connection reset before or in the middle of a request body.

A fault is decided before the request touches any state, so a faulted request never leaves
anything stored. ``FaultPlan(rate=0.2, seed=1)`` draws per request from its own seeded
generator; ``FaultPlan.script("reset_mid_body")`` fails exactly the next requests in order.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from dataclasses import dataclass, field

FAULT_KINDS: tuple[str, ...] = ("502", "503", "reset", "reset_mid_body")

BAD_GATEWAY_HTML = (
    "<!DOCTYPE html>\n<html>\n<head><title>GitLab is not responding (502)</title></head>\n"
    "<body><h1>502</h1><h3>Whoops, GitLab is taking too much time to respond.</h3></body>\n"
    "</html>\n"
)
UNAVAILABLE_HTML = (
    "<!DOCTYPE html>\n<html>\n<head><title>The server is temporarily unavailable (503)</title>"
    "</head>\n<body><h1>503</h1><h3>The server is temporarily unavailable.</h3></body>\n</html>\n"
)


@dataclass
class FaultPlan:
    rate: float = 0.0
    seed: int = 0
    kinds: tuple[str, ...] = FAULT_KINDS
    methods: tuple[str, ...] | None = None  # e.g. ("POST", "PUT") to fault only uploads
    path_contains: str | None = None
    _scripted: deque[str] = field(default_factory=deque, repr=False)
    _rng: random.Random = field(init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    injected: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, method, path)

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}")
        self._rng = random.Random(self.seed)

    @classmethod
    def script(cls, *kinds: str, methods: tuple[str, ...] | None = None) -> FaultPlan:
        plan = cls(rate=0.0, methods=methods)
        for kind in kinds:
            if kind not in FAULT_KINDS:
                raise ValueError(f"unknown fault kind {kind!r}")
            plan._scripted.append(kind)
        return plan

    def decide(self, method: str, path: str, has_body: bool) -> str | None:
        if self.methods is not None and method not in self.methods:
            return None
        if self.path_contains is not None and self.path_contains not in path:
            return None
        with self._lock:
            if self._scripted:
                kind: str | None = self._scripted.popleft()
            elif self.rate > 0 and self._rng.random() < self.rate:
                kind = self._rng.choice(self.kinds)
            else:
                kind = None
            if kind == "reset_mid_body" and not has_body:
                kind = "reset"
            if kind is not None:
                self.injected.append((kind, method, path))
            return kind
