"""What verification found for a release: plain values the renderers read."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from poetry_gitlab_release.signing.results import FileResult, Verdict

Progress = Callable[[str], None]


def tally(kinds: type[Enum], seen: Iterable[Enum]) -> dict[str, int]:
    """How many of each kind (every kind listed, zero included), by the kinds' values."""
    counts = {str(kind.value): 0 for kind in kinds}
    for kind in seen:
        counts[str(kind.value)] += 1
    return counts


@dataclass(frozen=True)
class Report:
    subject: str  # `name==version`, or "local files"
    expected: str  # the identity policy, described
    source: str  # the index URL or "local files"
    results: tuple[FileResult, ...] = field(default_factory=tuple)
    dest: Path | None = None
    installed: bool = False
    pin: str | None = None  # pinned / matches pin / change accepted / signer changed
    pins_file: str | None = None

    @property
    def ok(self) -> bool:
        return bool(self.results) and all(result.ok for result in self.results)

    @property
    def counts(self) -> dict[str, int]:
        return tally(Verdict, (result.verdict for result in self.results))
