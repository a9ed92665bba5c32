"""What verification found for a release: plain values the renderers read."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from poetry_gitlab_release.signing.results import FileResult, Verdict


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
        counts = {verdict.value: 0 for verdict in Verdict}
        for result in self.results:
            counts[result.verdict.value] += 1
        return counts
