"""Pipelines and jobs REST: list, latest, single, pipeline jobs, job, job trace."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sandbox.gitlab.auth import require_scope
from sandbox.gitlab.http import ApiError, Request, Response
from sandbox.gitlab.models import (
    COMPLETED_STATUSES,
    PIPELINE_STATUSES,
    Job,
    Pipeline,
    Project,
    detailed_status,
    iso,
)
from sandbox.gitlab.pagination import paginate

if TYPE_CHECKING:
    from sandbox.gitlab.app import App

SCOPES = ("running", "pending", "finished", "branches", "tags")
ORDER_BY = ("id", "status", "ref", "updated_at", "user_id")
SOURCES = [
    "push",
    "web",
    "trigger",
    "schedule",
    "api",
    "external",
    "pipeline",
    "chat",
    "webide",
    "merge_request_event",
    "external_pull_request_event",
    "parent_pipeline",
    "ondemand_dast_scan",
    "ondemand_dast_validation",
    "security_orchestration_policy",
    "container_registry_push",
    "duo_workflow",
]


def register(app: App) -> None:
    base = "/api/v4/projects/{id}"
    app.router.add("GET", base + "/pipelines", "api", lambda r: list_pipelines(app, r))
    app.router.add("GET", base + "/pipelines/latest", "api", lambda r: latest(app, r))
    app.router.add("GET", base + "/pipelines/{pipeline_id}", "api", lambda r: single(app, r))
    app.router.add(
        "GET", base + "/pipelines/{pipeline_id}/jobs", "jobs", lambda r: pipeline_jobs(app, r)
    )
    app.router.add("GET", base + "/jobs/{job_id}", "jobs", lambda r: get_job(app, r))
    app.router.add("GET", base + "/jobs/{job_id}/trace", "api", lambda r: trace(app, r))


def user_json(app: App) -> dict[str, object]:
    return {
        "id": 1,
        "username": "root",
        "name": "Administrator",
        "state": "active",
        "locked": False,
        "avatar_url": "https://www.gravatar.com/avatar/e64c7d89?s=80&d=identicon",
        "web_url": f"{app.url}/root",
    }


def pipeline_basic(app: App, project: Project, pipeline: Pipeline) -> dict[str, object]:
    return {
        "id": pipeline.id,
        "iid": pipeline.iid,
        "project_id": pipeline.project_id,
        "sha": pipeline.sha,
        "ref": pipeline.ref,
        "status": pipeline.status,
        "source": pipeline.source,
        "created_at": iso(pipeline.created_at),
        "updated_at": iso(pipeline.updated_at),
        "web_url": f"{app.url}/{project.path_with_namespace}/-/pipelines/{pipeline.id}",
        "name": pipeline.name,
    }


def pipeline_full(app: App, project: Project, pipeline: Pipeline) -> dict[str, object]:
    data = pipeline_basic(app, project, pipeline)
    data.update(
        {
            "before_sha": pipeline.before_sha,
            "tag": pipeline.tag,
            "yaml_errors": None,
            "user": user_json(app),
            "started_at": iso(pipeline.started_at),
            "finished_at": iso(pipeline.finished_at),
            "committed_at": None,
            "duration": pipeline.duration,
            "queued_duration": pipeline.queued_duration,
            "coverage": None,
            "detailed_status": detailed_status(
                pipeline.status, f"/{project.path_with_namespace}/-/pipelines/{pipeline.id}"
            ),
        }
    )
    return data


def job_json(app: App, project: Project, pipeline: Pipeline, job: Job) -> dict[str, object]:
    return {
        "commit": {
            "id": pipeline.sha,
            "short_id": pipeline.sha[:8],
            "created_at": iso(pipeline.created_at),
            "title": "Update the release pipeline",
            "message": "Update the release pipeline",
            "author_name": "Administrator",
            "author_email": "admin@example.com",
        },
        "coverage": None,
        "archived": False,
        "allow_failure": job.allow_failure,
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
        "erased_at": None,
        "duration": job.duration,
        "queued_duration": job.queued_duration,
        "artifacts_expire_at": None,
        "tag_list": ["docker"],
        "id": job.id,
        "name": job.name,
        "pipeline": {
            "id": pipeline.id,
            "iid": pipeline.iid,
            "project_id": pipeline.project_id,
            "ref": pipeline.ref,
            "sha": pipeline.sha,
            "status": pipeline.status,
            "source": pipeline.source,
            "created_at": iso(pipeline.created_at),
            "updated_at": iso(pipeline.updated_at),
            "web_url": f"{app.url}/{project.path_with_namespace}/-/pipelines/{pipeline.id}",
        },
        "ref": pipeline.ref,
        "artifacts": [],
        "runner": None,
        "stage": job.stage,
        "status": job.status,
        "failure_reason": job.failure_reason,
        "tag": pipeline.tag,
        "web_url": f"{app.url}/{project.path_with_namespace}/-/jobs/{job.id}",
        "project": {"ci_job_token_scope_enabled": False},
        "user": user_json(app),
    }


def _project(app: App, request: Request) -> Project:
    assert request.principal is not None
    project = app.project_for(request, request.path_params["id"])
    require_scope(request.principal, write=False)
    return project


def _time_param(request: Request, name: str) -> datetime | None:
    value = request.param(name)
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError.grape(f"{name} is invalid") from None


def list_pipelines(app: App, request: Request) -> Response:
    project = _project(app, request)
    pipelines = list(app.scenario.project_pipelines(project.id))
    scope = request.param("scope")
    if scope is not None:
        if scope not in SCOPES:
            raise ApiError.grape("scope does not have a valid value")
        if scope in ("running", "pending"):
            pipelines = [p for p in pipelines if p.status == scope]
        elif scope == "finished":
            pipelines = [p for p in pipelines if p.status in COMPLETED_STATUSES]
        else:
            tags = scope == "tags"
            newest: dict[str, Pipeline] = {}
            for pipeline in pipelines:
                if pipeline.tag == tags:
                    newest.setdefault(pipeline.ref, pipeline)
            pipelines = [p for p in pipelines if newest.get(p.ref) is p]
    status = request.param("status")
    if status is not None:
        if status not in PIPELINE_STATUSES:
            raise ApiError.grape("status does not have a valid value")
        pipelines = [p for p in pipelines if p.status == status]
    source = request.param("source")
    if source is not None:
        if source not in SOURCES:
            raise ApiError.grape("source does not have a valid value")
        pipelines = [p for p in pipelines if p.source == source]
    for name, attribute in (("ref", "ref"), ("sha", "sha"), ("name", "name")):
        value = request.param(name)
        if value:
            pipelines = [p for p in pipelines if getattr(p, attribute) == value]
    username = request.param("username")
    if username and username != "root":
        pipelines = []
    if request.bool_param("yaml_errors", False):
        pipelines = []
    for name, attribute, before in (
        ("updated_before", "updated_at", True),
        ("updated_after", "updated_at", False),
        ("created_before", "created_at", True),
        ("created_after", "created_at", False),
    ):
        moment = _time_param(request, name)
        if moment is not None:
            pipelines = [
                p
                for p in pipelines
                if (getattr(p, attribute) < moment if before else getattr(p, attribute) > moment)
            ]
    order_by = request.param("order_by") or "id"
    if order_by not in ORDER_BY:
        raise ApiError.grape("order_by does not have a valid value")
    sort = request.param("sort") or "desc"
    if sort not in ("asc", "desc"):
        raise ApiError.grape("sort does not have a valid value")
    keys = {
        "id": lambda p: (p.id,),
        "status": lambda p: (p.status, p.id),
        "ref": lambda p: (p.ref, p.id),
        "updated_at": lambda p: (p.updated_at, p.id),
        "user_id": lambda p: (1, p.id),
    }
    pipelines.sort(key=keys[order_by], reverse=sort == "desc")
    page, headers = paginate(request, pipelines)
    return Response.json(200, [pipeline_basic(app, project, p) for p in page], headers)


def latest(app: App, request: Request) -> Response:
    project = _project(app, request)
    pipeline = app.scenario.latest_pipeline(project.id, request.param("ref"))
    if pipeline is None:
        raise ApiError.forbidden()
    return Response.json(200, pipeline_full(app, project, pipeline))


def _pipeline(app: App, request: Request, project: Project) -> Pipeline:
    ident = request.path_params["pipeline_id"]
    if not ident.isdigit():
        raise ApiError.grape("pipeline_id is invalid")
    pipeline = app.scenario.pipelines.get(int(ident))
    if pipeline is None or pipeline.project_id != project.id:
        raise ApiError.message(404, "404 Not found")
    return pipeline


def single(app: App, request: Request) -> Response:
    project = _project(app, request)
    return Response.json(200, pipeline_full(app, project, _pipeline(app, request, project)))


def pipeline_jobs(app: App, request: Request) -> Response:
    project = _project(app, request)
    pipeline = _pipeline(app, request, project)
    scopes = request.params("scope")
    unknown = [s for s in scopes if s not in PIPELINE_STATUSES]
    if unknown:
        raise ApiError.grape("scope does not have a valid value")
    jobs = list(pipeline.jobs)
    if not request.bool_param("include_retried", False):
        jobs = [job for job in jobs if not job.retried]
    if scopes:
        jobs = [job for job in jobs if job.status in scopes]
    jobs.sort(key=lambda job: job.id, reverse=True)
    page, headers = paginate(request, jobs)
    return Response.json(200, [job_json(app, project, pipeline, job) for job in page], headers)


def _job(app: App, request: Request, project: Project) -> tuple[Job, Pipeline]:
    ident = request.path_params["job_id"]
    if not ident.isdigit():
        raise ApiError.grape("job_id is invalid")
    found = app.scenario.jobs.get(int(ident))
    if found is None or found[1].project_id != project.id:
        raise ApiError.message(404, "404 Not found")
    return found


def get_job(app: App, request: Request) -> Response:
    project = _project(app, request)
    job, pipeline = _job(app, request, project)
    return Response.json(200, job_json(app, project, pipeline, job))


def trace(app: App, request: Request) -> Response:
    # lib/api/ci/jobs.rb `get ':id/jobs/:job_id/trace'`: `trace = build.trace.raw || ''` then
    # `body trace` as text/plain: a job without a log is 200 with an empty body, not 404.
    project = _project(app, request)
    job, _ = _job(app, request, project)
    return Response(
        200,
        job.trace.encode(),
        [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Disposition", f'infile; filename="{job.id}.log"'),
        ],
    )
