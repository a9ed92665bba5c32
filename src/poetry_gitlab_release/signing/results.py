"""What verifying one file found: plain values the renderers read."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from poetry_gitlab_release.signing.claims import GitLabClaims


class Verdict(str, Enum):
    VERIFIED = "verified"
    FAILED = "failed"
    UNSIGNED = "unsigned"


@dataclass(frozen=True)
class FileResult:
    name: str
    verdict: Verdict
    reason: str | None = None
    sha256: str | None = None
    size: int | None = None
    path: Path | None = None
    material: str | None = None  # which signature material was used
    identity: str | None = None  # certificate SAN
    issuer: str | None = None
    ref: str | None = None
    commit: str | None = None
    job_url: str | None = None
    log_index: int | None = None
    claims: GitLabClaims | None = None  # every GitLab claim of the signing certificate

    @property
    def ok(self) -> bool:
        return self.verdict is Verdict.VERIFIED

    def message(self) -> str:
        """One line naming the file and the reason."""
        if self.ok:
            return f"{self.name}: verified"
        return f"{self.name}: {self.verdict.value}: {self.reason or 'no reason given'}"
