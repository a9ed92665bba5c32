"""`--format json`: the stable, versioned schema documented in docs/pipelines.md.

Compatibility promise: within `schema_version` 1, fields are only ever added, never renamed,
removed or retyped. Timestamps are UTC ISO 8601 with a `Z`; durations are whole seconds.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from poetry_gitlab_release.pipelines.model import (
    FailedJob,
    PipelineInfo,
    ProjectRow,
    Snapshot,
    gate_exit_code,
)

SCHEMA = "poetry-gitlab-release/pipelines"
SCHEMA_VERSION = 1


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _job(job: FailedJob, with_logs: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": job.id,
        "name": job.name,
        "stage": job.stage,
        "allow_failure": job.allow_failure,
    }
    if with_logs:
        data["log_tail"] = None if job.log_tail is None else list(job.log_tail)
    return data


def _pipeline(pipeline: PipelineInfo, with_logs: bool) -> dict[str, Any]:
    return {
        "id": pipeline.id,
        "iid": pipeline.iid,
        "status": pipeline.status,
        "ref": pipeline.ref,
        "sha": pipeline.sha,
        "source": pipeline.source,
        "created_at": iso(pipeline.created_at),
        "updated_at": iso(pipeline.updated_at),
        "duration_seconds": pipeline.duration,
        "web_url": pipeline.web_url,
        "stages": [{"name": stage.name, "status": stage.status} for stage in pipeline.stages],
        "failed_jobs": [_job(job, with_logs) for job in pipeline.failed_jobs],
    }


def _project(row: ProjectRow, with_logs: bool) -> dict[str, Any]:
    return {
        "id": row.id,
        "full_path": row.full_path,
        "name": row.name,
        "archived": row.archived,
        "web_url": row.web_url,
        "pipeline": None if row.pipeline is None else _pipeline(row.pipeline, with_logs),
    }


def snapshot_document(snapshot: Snapshot, *, with_logs: bool = False) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "host": snapshot.host,
        "group": {"id": snapshot.group_id, "full_path": snapshot.group_path},
        "ref": snapshot.ref,
        "fetched_at": iso(snapshot.fetched_at),
        "api": snapshot.api,
        "requests": snapshot.requests,
        "summary": {
            "projects": len(snapshot.rows),
            "by_status": snapshot.summary(),
            "exit_code": gate_exit_code(snapshot),
        },
        "projects": [_project(row, with_logs) for row in snapshot.rows],
    }


def render_json(snapshot: Snapshot, *, with_logs: bool = False, indent: int | None = 2) -> str:
    return json.dumps(snapshot_document(snapshot, with_logs=with_logs), indent=indent)
