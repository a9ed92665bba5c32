"""GitLab's answers (GraphQL nodes, REST pipelines and jobs, job logs) as the dashboard's model."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from poetry_gitlab_release.pipelines.model import (
    FailedJob,
    PipelineInfo,
    ProjectRow,
    StageStatus,
    normalize_status,
)

# --- parsing ------------------------------------------------------------------------------


def parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    text = value.replace("Z", "+00:00")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def gid_number(value: object) -> int | None:
    """`gid://gitlab/Ci::Pipeline/123` -> 123 (also plain ints and digit strings)."""
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        tail = value.rsplit("/", 1)[-1]
        if tail.isdigit():
            return int(tail)
    return None


def int_or_none(value: object) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def nodes(connection: object) -> list[Mapping[str, Any]]:
    if not isinstance(connection, Mapping):
        return []
    nodes = connection.get("nodes") or []
    return [node for node in nodes if isinstance(node, Mapping)]


def pipeline_from_graphql(node: Mapping[str, Any], server_url: str) -> PipelineInfo:
    path = node.get("path")
    jobs = []
    for job in nodes(node.get("jobs")):
        stage = job.get("stage")
        jobs.append(
            FailedJob(
                name=str(job.get("name") or ""),
                stage=str(stage.get("name") or "") if isinstance(stage, Mapping) else "",
                id=gid_number(job.get("id")),
                allow_failure=bool(job.get("allowFailure")),
            )
        )
    # GitLab returns jobs newest first; show them in run order, as the REST path does.
    jobs.sort(key=lambda job: job.id or 0)
    stages = tuple(
        StageStatus(str(stage.get("name") or ""), normalize_status(stage.get("status")))
        for stage in nodes(node.get("stages"))
    )
    web_url = server_url + path if isinstance(path, str) and path.startswith("/") else None
    pipeline_id = gid_number(node.get("id")) or 0
    return _pipeline(node, pipeline_id, ("createdAt", "updatedAt"), web_url, stages, tuple(jobs))


def _pipeline(
    data: Mapping[str, Any],
    pipeline_id: int,
    times: tuple[str, str],
    web_url: object,
    stages: tuple[StageStatus, ...],
    failed: tuple[FailedJob, ...],
) -> PipelineInfo:
    """The fields GraphQL and REST name alike; `times` names the created and updated keys."""
    created, updated = times
    source = data.get("source")
    return PipelineInfo(
        id=pipeline_id,
        iid=int_or_none(data.get("iid")),
        status=normalize_status(data.get("status")),
        ref=str(data.get("ref") or ""),
        sha=str(data.get("sha") or ""),
        created_at=parse_time(data.get(created)),
        updated_at=parse_time(data.get(updated)),
        duration=int_or_none(data.get("duration")),
        web_url=web_url if isinstance(web_url, str) else None,
        stages=stages,
        failed_jobs=failed,
        source=source if isinstance(source, str) else None,
    )


def row_from_graphql(node: Mapping[str, Any], server_url: str) -> ProjectRow:
    pipeline_node: object = node.get("pipeline")
    if "pipelines" in node:
        found = nodes(node.get("pipelines"))
        pipeline_node = found[0] if found else None
    return ProjectRow(
        id=gid_number(node.get("id")) or 0,
        full_path=str(node.get("fullPath") or ""),
        name=str(node.get("name") or ""),
        archived=bool(node.get("archived")),
        web_url=node.get("webUrl") if isinstance(node.get("webUrl"), str) else None,
        pipeline=(
            pipeline_from_graphql(pipeline_node, server_url)
            if isinstance(pipeline_node, Mapping)
            else None
        ),
    )


def composite_status(jobs: Iterable[Mapping[str, Any]]) -> str:
    """GitLab's `Gitlab::Ci::Status::Composite` for a stage built from REST jobs."""
    statuses: set[str] = set()
    for job in jobs:
        status = normalize_status(job.get("status"))
        if job.get("allow_failure") and status in {"failed", "canceled"}:
            statuses.add("success_with_warnings")
        else:
            statuses.add(status)

    def only(*allowed: str) -> bool:
        return statuses <= set(allowed)

    def any_of(*wanted: str) -> bool:
        return bool(statuses & set(wanted))

    ordered: Sequence[tuple[bool, str]] = (
        (not statuses or only("skipped"), "skipped"),
        (only("success", "skipped", "success_with_warnings"), "success"),
        (only("created", "success_with_warnings"), "created"),
        (only("preparing", "success_with_warnings"), "preparing"),
        (only("canceled", "success", "skipped", "success_with_warnings"), "canceled"),
        (only("pending", "created", "skipped", "success_with_warnings"), "pending"),
        (any_of("running", "pending"), "running"),
        (any_of("waiting_for_resource"), "waiting_for_resource"),
        (any_of("waiting_for_callback"), "waiting_for_callback"),
        (any_of("manual"), "manual"),
        (any_of("scheduled"), "scheduled"),
        (any_of("preparing"), "preparing"),
        (any_of("created"), "running"),
        (any_of("canceling"), "canceling"),
    )
    for matches, status in ordered:
        if matches:
            return status
    return "failed"


def stages_from_rest_jobs(
    jobs: Sequence[Mapping[str, Any]],
) -> tuple[tuple[StageStatus, ...], tuple[FailedJob, ...]]:
    """REST has no stage order: a stage's position is that of its lowest job id."""
    by_stage: dict[str, list[Mapping[str, Any]]] = {}
    first_id: dict[str, int] = {}
    for job in jobs:
        stage = str(job.get("stage") or "")
        by_stage.setdefault(stage, []).append(job)
        job_id = int_or_none(job.get("id")) or 0
        first_id[stage] = min(first_id.get(stage, job_id), job_id)
    stages = tuple(
        StageStatus(name, composite_status(by_stage[name]))
        for name in sorted(by_stage, key=lambda name: first_id[name])
    )
    failed = tuple(
        FailedJob(
            name=str(job.get("name") or ""),
            stage=str(job.get("stage") or ""),
            id=int_or_none(job.get("id")),
            allow_failure=bool(job.get("allow_failure")),
        )
        for job in sorted(jobs, key=lambda job: int_or_none(job.get("id")) or 0)
        if normalize_status(job.get("status")) == "failed"
    )
    return stages, failed


def pipeline_from_rest(data: Mapping[str, Any], jobs: Sequence[Mapping[str, Any]]) -> PipelineInfo:
    stages, failed = stages_from_rest_jobs(jobs)
    pipeline_id = int_or_none(data.get("id")) or 0
    times = ("created_at", "updated_at")
    return _pipeline(data, pipeline_id, times, data.get("web_url"), stages, failed)


_LOG_CONTROL = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-_]|[\x00-\x08\x0b-\x1f\x7f]")
_SECTION_MARKER = re.compile(r"section_(?:start|end):\d+:[A-Za-z0-9_.-]+(?:\[[^\]]*\])?")


def log_tail(trace: str, lines: int) -> tuple[str, ...]:
    """The last `lines` visible lines of a job log: carriage-return overwrites applied,
    GitLab's section markers and terminal escapes removed, blank trailing lines dropped."""
    visible = []
    for raw in trace.split("\n"):
        line = raw.rstrip("\r").rsplit("\r", 1)[-1]
        line = _LOG_CONTROL.sub("", _SECTION_MARKER.sub("", line)).rstrip()
        visible.append(line)
    while visible and not visible[-1]:
        visible.pop()
    return tuple(visible[-lines:]) if lines > 0 else ()
