"""`--format openmetrics`: gauges for a Prometheus textfile collector (or any OpenMetrics scraper).

Where a metric overlaps with mvisonneau/gitlab-ci-pipelines-exporter it carries the exporter's
name and label names (`project` = full path, `ref`, `status`, `stage`, `job_name`), so dashboards
and alerts built for the exporter keep working. Metrics the exporter lacks use the prefix
`gitlab_pipelines_`. Like the exporter, `gitlab_ci_pipeline_status` has one sample per known
status, 1 for the current one and 0 for the others.
"""

from __future__ import annotations

from collections.abc import Iterable

from poetry_gitlab_release.pipelines.model import STATUSES, Snapshot

# name -> help; every metric is a gauge.
METRICS: dict[str, str] = {
    "gitlab_ci_pipeline_status": "Status of the latest pipeline (1 for the current status).",
    "gitlab_ci_pipeline_id": "ID of the latest pipeline.",
    "gitlab_ci_pipeline_duration_seconds": "Duration of the latest pipeline in seconds.",
    "gitlab_ci_pipeline_timestamp": "Last update of the latest pipeline, Unix seconds.",
    "gitlab_ci_pipeline_job_status": "Failed jobs of the latest pipeline (status=failed).",
    "gitlab_pipelines_stage_status": "Status of each stage of the latest pipeline (always 1).",
    "gitlab_pipelines_projects": "Projects shown, after --exclude and --failed-only.",
    "gitlab_pipelines_projects_without_pipeline": "Shown projects that have no pipeline.",
    "gitlab_pipelines_refresh_requests": "HTTP requests the last refresh cost.",
    "gitlab_pipelines_refresh_timestamp_seconds": "When the last refresh finished, Unix seconds.",
}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    inner = ",".join(f'{name}="{_escape(value)}"' for name, value in pairs)
    return "{" + inner + "}" if inner else ""


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def render_openmetrics(snapshot: Snapshot) -> str:
    samples: dict[str, list[str]] = {name: [] for name in METRICS}

    def add(name: str, labels: Iterable[tuple[str, str]], value: float) -> None:
        samples[name].append(f"{name}{_labels(labels)} {_number(value)}")

    group = ("group", snapshot.group_path)
    for row in snapshot.rows:
        pipeline = row.pipeline
        if pipeline is None:
            continue
        base = (("project", row.full_path), ("ref", pipeline.ref))
        known = list(STATUSES)
        if pipeline.status not in known:
            known.append(pipeline.status)
        for status in known:
            add(
                "gitlab_ci_pipeline_status",
                (*base, ("status", status)),
                1 if status == pipeline.status else 0,
            )
        add("gitlab_ci_pipeline_id", base, pipeline.id)
        if pipeline.duration is not None:
            add("gitlab_ci_pipeline_duration_seconds", base, pipeline.duration)
        if pipeline.updated_at is not None:
            add("gitlab_ci_pipeline_timestamp", base, pipeline.updated_at.timestamp())
        for job in pipeline.failed_jobs:
            add(
                "gitlab_ci_pipeline_job_status",
                (*base, ("stage", job.stage), ("job_name", job.name), ("status", "failed")),
                1,
            )
        for stage in pipeline.stages:
            add(
                "gitlab_pipelines_stage_status",
                (*base, ("stage", stage.name), ("status", stage.status)),
                1,
            )
    without = sum(1 for row in snapshot.rows if row.pipeline is None)
    add("gitlab_pipelines_projects", (group,), len(snapshot.rows))
    add("gitlab_pipelines_projects_without_pipeline", (group,), without)
    add("gitlab_pipelines_refresh_requests", (group, ("api", snapshot.api)), snapshot.requests)
    add(
        "gitlab_pipelines_refresh_timestamp_seconds",
        (group,),
        round(snapshot.fetched_at.timestamp(), 3),
    )

    lines: list[str] = []
    for name, help_text in METRICS.items():
        if not samples[name]:
            continue
        lines.append(f"# TYPE {name} gauge")
        lines.append(f"# HELP {name} {help_text}")
        lines.extend(samples[name])
    lines.append("# EOF")
    return "\n".join(lines) + "\n"
