"""Snapshot, ProjectRow, PipelineInfo, StageStatus: one refresh of a group's latest pipelines.

Statuses are GitLab's lower-case names (`Ci::HasStatus`): GraphQL's upper-case enum values are
lowered by the fetcher, so every renderer sees the same vocabulary.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import Enum

# Every status GitLab gives a pipeline, a stage or a job, in a stable display order.
STATUSES: tuple[str, ...] = (
    "failed",
    "running",
    "canceling",
    "pending",
    "preparing",
    "waiting_for_resource",
    "waiting_for_callback",
    "created",
    "scheduled",
    "manual",
    "canceled",
    "skipped",
    "success",
)
NO_PIPELINE = "none"  # the summary's key for projects without a pipeline


class Tone(str, Enum):
    """What a status means, as GitLab colours it."""

    SUCCESS = "success"  # green
    FAILED = "failed"  # red
    RUNNING = "running"  # blue
    WAITING = "waiting"  # yellow: pending, created, waiting for a resource or a callback
    INACTIVE = "inactive"  # grey: canceled, skipped
    MANUAL = "manual"  # purple: manual, scheduled (blocked until someone acts, or a delay)
    NONE = "none"  # dim: no pipeline


_TONES: dict[str, Tone] = {
    "success": Tone.SUCCESS,
    "failed": Tone.FAILED,
    "running": Tone.RUNNING,
    "canceling": Tone.RUNNING,
    "pending": Tone.WAITING,
    "preparing": Tone.WAITING,
    "created": Tone.WAITING,
    "waiting_for_resource": Tone.WAITING,
    "waiting_for_callback": Tone.WAITING,
    "canceled": Tone.INACTIVE,
    "skipped": Tone.INACTIVE,
    "manual": Tone.MANUAL,
    "scheduled": Tone.MANUAL,
}


def tone_of(status: str | None) -> Tone:
    if status is None:
        return Tone.NONE
    return _TONES.get(status, Tone.WAITING)


def normalize_status(value: object) -> str:
    """GraphQL `FAILED` and REST `failed` -> `failed`."""
    return str(value or "").strip().lower() or "created"


@dataclass(frozen=True)
class StageStatus:
    name: str
    status: str


@dataclass(frozen=True)
class FailedJob:
    name: str
    stage: str
    id: int | None = None
    allow_failure: bool = False
    log_tail: tuple[str, ...] | None = None  # filled only with --logs


@dataclass(frozen=True)
class PipelineInfo:
    id: int
    iid: int | None
    status: str
    ref: str
    sha: str
    created_at: datetime | None
    updated_at: datetime | None
    duration: int | None  # seconds; None while running
    web_url: str | None
    stages: tuple[StageStatus, ...] = ()
    failed_jobs: tuple[FailedJob, ...] = ()
    source: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in {"success", "failed", "canceled", "skipped"}


@dataclass(frozen=True)
class ProjectRow:
    id: int
    full_path: str
    name: str
    archived: bool
    web_url: str | None
    pipeline: PipelineInfo | None = None

    @property
    def status(self) -> str | None:
        return None if self.pipeline is None else self.pipeline.status

    def relative_path(self, group_path: str) -> str:
        prefix = group_path.strip("/") + "/"
        if self.full_path.lower().startswith(prefix.lower()):
            return self.full_path[len(prefix) :]
        return self.full_path

    def fingerprint(self) -> tuple[object, ...]:
        """What a watcher compares between refreshes to highlight a change."""
        pipeline = self.pipeline
        if pipeline is None:
            return (None,)
        return (
            pipeline.id,
            pipeline.status,
            tuple((stage.name, stage.status) for stage in pipeline.stages),
        )


@dataclass(frozen=True)
class Snapshot:
    host: str
    group_path: str
    group_id: int | None
    fetched_at: datetime
    ref: str | None  # None: newest on any ref; "default"; or a branch/tag name
    api: str  # "graphql" or "rest"
    requests: int  # HTTP requests this refresh cost
    rows: tuple[ProjectRow, ...] = field(default_factory=tuple)

    def with_rows(self, rows: Iterable[ProjectRow]) -> Snapshot:
        return replace(self, rows=tuple(rows))

    def summary(self) -> dict[str, int]:
        """Counts per status in STATUSES order, then `none` for projects without a pipeline."""
        counts = Counter(row.status or NO_PIPELINE for row in self.rows)
        ordered = [status for status in STATUSES if counts[status]]
        ordered += sorted(key for key in counts if key not in STATUSES and key != NO_PIPELINE)
        if counts[NO_PIPELINE]:
            ordered.append(NO_PIPELINE)
        return {status: counts[status] for status in ordered}

    def changed_since(self, previous: Snapshot | None) -> frozenset[str]:
        """Full paths whose pipeline, status or stages differ from `previous` (new rows too)."""
        if previous is None:
            return frozenset()
        before: Mapping[str, tuple[object, ...]] = {
            row.full_path: row.fingerprint() for row in previous.rows
        }
        return frozenset(
            row.full_path for row in self.rows if before.get(row.full_path) != row.fingerprint()
        )


# One-shot exit codes: the gating rule documented in `poetry gitlab-pipelines --help`.
GATE_ALL_SUCCEEDED = 0
GATE_FAILED = 1
GATE_NOT_FINISHED = 3


def gate_exit_code(snapshot: Snapshot) -> int:
    """0: every shown pipeline succeeded; 1: any failed; 3: none failed, some not succeeded.

    Projects without a pipeline do not count. `skipped` counts as not succeeded.
    """
    statuses = {row.status for row in snapshot.rows if row.status is not None}
    if "failed" in statuses:
        return GATE_FAILED
    if statuses <= {"success"}:
        return GATE_ALL_SUCCEEDED
    return GATE_NOT_FINISHED
