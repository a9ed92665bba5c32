"""Immutable GitLab objects of a scenario: groups, projects, pipelines, jobs; GitLab's status rules."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

PIPELINE_STATUSES: tuple[str, ...] = (
    "created",
    "waiting_for_resource",
    "preparing",
    "waiting_for_callback",
    "pending",
    "running",
    "success",
    "failed",
    "canceling",
    "canceled",
    "skipped",
    "manual",
    "scheduled",
)
COMPLETED_STATUSES = frozenset({"success", "failed", "canceled", "skipped"})


def iso(moment: datetime | None) -> str | None:
    """GitLab's JSON timestamp format: ``2016-08-11T11:28:34.085Z``."""
    if moment is None:
        return None
    utc = moment.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class Group:
    id: int
    name: str
    path: str
    full_path: str
    parent_id: int | None
    visibility: str  # public | internal | private
    description: str = ""
    created_at: datetime = datetime(2024, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Project:
    id: int
    name: str
    path: str
    namespace_id: int
    path_with_namespace: str
    visibility: str  # public | internal | private
    archived: bool = False
    default_branch: str = "main"
    description: str = ""
    created_at: datetime = datetime(2024, 1, 1, tzinfo=timezone.utc)
    last_activity_at: datetime = datetime(2024, 1, 1, tzinfo=timezone.utc)
    shared_with_group_ids: tuple[int, ...] = ()
    topics: tuple[str, ...] = ()
    # The default branch's head commit; None: the commit of its newest pipeline.
    head_sha: str | None = None


@dataclass(frozen=True)
class Job:
    id: int
    name: str
    stage: str
    status: str
    allow_failure: bool = False
    retried: bool = False
    created_at: datetime = datetime(2024, 1, 1, tzinfo=timezone.utc)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration: float | None = None
    queued_duration: float | None = None
    failure_reason: str | None = None
    trace: str = ""

    @property
    def when_manual(self) -> bool:
        return self.status == "manual"


@dataclass(frozen=True)
class Pipeline:
    id: int
    iid: int
    project_id: int
    ref: str
    sha: str
    before_sha: str
    source: str
    tag: bool
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration: int | None
    queued_duration: int | None
    stage_names: tuple[str, ...]
    jobs: tuple[Job, ...]
    name: str | None = None
    status: str = field(default="")

    def current_jobs(self) -> list[Job]:
        return [job for job in self.jobs if not job.retried]

    def stage_statuses(self) -> list[tuple[str, str]]:
        """(name, status) of every stage in pipeline order, GitLab's composite rule per stage."""
        result = []
        for stage in self.stage_names:
            jobs = [job for job in self.current_jobs() if job.stage == stage]
            result.append((stage, composite_status(jobs)))
        return result

    def failed_job_names(self) -> list[str]:
        return [job.name for job in self.current_jobs() if job.status == "failed"]


def composite_status(jobs: Iterable[Job]) -> str:
    """``Gitlab::Ci::Status::Composite``: the status of a set of jobs (a stage or a pipeline).

    Failed or canceled jobs that are allowed to fail count as ``success_with_warnings``
    ("ignored"), which does not make the set fail.
    """
    statuses: set[str] = set()
    for job in jobs:
        if job.allow_failure and job.status in ("failed", "canceled"):
            statuses.add("success_with_warnings")
        else:
            statuses.add(job.status)
    return composite_of(statuses)


def composite_of(statuses: set[str]) -> str:
    def only_of(*allowed: str) -> bool:
        return statuses <= set(allowed)

    def any_of(*wanted: str) -> bool:
        return bool(statuses & set(wanted))

    if not statuses or only_of("skipped"):
        return "skipped"
    if only_of("success", "skipped", "success_with_warnings"):
        return "success"
    if only_of("created", "success_with_warnings"):
        return "created"
    if only_of("preparing", "success_with_warnings"):
        return "preparing"
    if only_of("canceled", "success", "skipped", "success_with_warnings"):
        return "canceled"
    if only_of("pending", "created", "skipped", "success_with_warnings"):
        return "pending"
    if any_of("running", "pending"):
        return "running"
    if any_of("waiting_for_resource"):
        return "waiting_for_resource"
    if any_of("waiting_for_callback"):
        return "waiting_for_callback"
    if any_of("manual"):
        return "manual"
    if any_of("scheduled"):
        return "scheduled"
    if any_of("preparing"):
        return "preparing"
    if any_of("created"):
        return "running"
    if any_of("canceling"):
        return "canceling"
    return "failed"


DETAILED_STATUS: dict[str, tuple[str, str]] = {
    # status -> (text, label); icon is "status_<status>", group is the status
    "created": ("Created", "created"),
    "waiting_for_resource": ("Waiting", "waiting for resource"),
    "preparing": ("Preparing", "preparing"),
    "waiting_for_callback": ("Waiting", "waiting for callback"),
    "pending": ("Pending", "pending"),
    "running": ("Running", "running"),
    "success": ("Passed", "passed"),
    "failed": ("Failed", "failed"),
    "canceling": ("Canceling", "canceling"),
    "canceled": ("Canceled", "canceled"),
    "skipped": ("Skipped", "skipped"),
    "manual": ("Blocked", "waiting for manual action"),
    "scheduled": ("Scheduled", "waiting for delayed job"),
}


def detailed_status(status: str, details_path: str) -> dict[str, object]:
    text, label = DETAILED_STATUS[status]
    icon = "status_" + ("created" if status == "created" else status)
    return {
        "icon": icon,
        "text": text,
        "label": label,
        "group": status,
        "tooltip": label,
        "has_details": True,
        "details_path": details_path,
        "illustration": None,
        "favicon": f"/assets/ci_favicons/favicon_{icon}.png",
    }


def sort_newest_first(pipelines: Sequence[Pipeline]) -> list[Pipeline]:
    return sorted(pipelines, key=lambda p: p.id, reverse=True)
