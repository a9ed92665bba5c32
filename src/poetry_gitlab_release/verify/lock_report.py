"""What `--lock` found: one row per locked file; plain values the renderers read."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from poetry_gitlab_release.verify.report import tally

if TYPE_CHECKING:
    from poetry_gitlab_release.signing.claims import GitLabClaims
    from poetry_gitlab_release.verify.pins import Signer


class RowStatus(str, Enum):
    VERIFIED = "verified"
    FAILED = "failed"
    UNSIGNED = "unsigned"
    NO_PROVENANCE = "no provenance"
    NOT_CHECKED = "not checked"


@dataclass(frozen=True)
class LockRow:
    package: str
    version: str
    file: str
    source: str
    status: RowStatus
    reason: str | None = None
    sha256: str | None = None
    check: str = "-"  # "signature" | "provenance" | "-"
    identity: str | None = None
    project_id: str | None = None
    log_index: int | None = None
    pin: str | None = None
    claims: GitLabClaims | None = None
    publishers: tuple[Signer, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status in (RowStatus.VERIFIED, RowStatus.NO_PROVENANCE, RowStatus.NOT_CHECKED)

    def message(self) -> str:
        return f"{self.file}: {self.status.value}: {self.reason or 'no reason given'}"


@dataclass(frozen=True)
class LockReport:
    lock_file: str
    rows: tuple[LockRow, ...]
    pins_file: str | None = None
    pins_written: bool = False
    installed: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return all(row.ok for row in self.rows)

    @property
    def counts(self) -> dict[str, int]:
        return tally(RowStatus, (row.status for row in self.rows))
