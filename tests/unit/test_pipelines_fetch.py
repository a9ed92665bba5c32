"""The fetcher against an in-process fake GitLab (httpx.MockTransport): requests, paging, errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from poetry_gitlab_release.config.settings import resolve_settings
from poetry_gitlab_release.errors import (
    ApiError,
    AuthenticationError,
    ConfigError,
    NotFoundError,
)
from poetry_gitlab_release.gitlab.client import GitLabClient, RetryPolicy
from poetry_gitlab_release.pipelines.fetch import (
    FetchOptions,
    PipelineFetcher,
    composite_status,
    largest_page_size,
    log_tail,
    projects_query,
    query_complexity,
)
from poetry_gitlab_release.pipelines.filters import parse_ref

HOST = "https://gitlab.example"
Handler = Callable[[httpx.Request], httpx.Response]


def gql_project(index: int, *, status: str | None = "SUCCESS") -> dict[str, Any]:
    pipelines: list[dict[str, Any]] = []
    if status is not None:
        pipelines.append(
            {
                "id": f"gid://gitlab/Ci::Pipeline/{1000 + index}",
                "iid": str(index),
                "status": status,
                "ref": "main",
                "sha": "c" * 40,
                "source": "push",
                "createdAt": "2026-03-02T11:00:00Z",
                "updatedAt": "2026-03-02T11:05:00Z",
                "duration": 300,
                "path": f"/acme/p{index:04d}/-/pipelines/{1000 + index}",
                "stages": {
                    "nodes": [
                        {"name": "build", "status": "success"},
                        {"name": "test", "status": status.lower()},
                    ]
                },
                "jobs": {
                    "nodes": (
                        [
                            {
                                "id": f"gid://gitlab/Ci::Build/{5000 + index}",
                                "name": "pytest",
                                "allowFailure": False,
                                "stage": {"name": "test"},
                            }
                        ]
                        if status == "FAILED"
                        else []
                    )
                },
            }
        )
    return {
        "id": f"gid://gitlab/Project/{index}",
        "fullPath": f"acme/p{index:04d}",
        "name": f"p{index:04d}",
        "archived": False,
        "webUrl": f"{HOST}/acme/p{index:04d}",
        "pipelines": {"nodes": pipelines},
    }


class FakeGitLab:
    """GraphQL pages of `page` projects out of `count`; REST groups, pipelines, jobs, traces."""

    def __init__(self, count: int, *, failed: frozenset[int] = frozenset()) -> None:
        self.count = count
        self.failed = failed
        self.requests: list[httpx.Request] = []
        self.graphql_status = 200
        self.max_first: int | None = None
        self.override: Handler | None = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.override is not None:
            return self.override(request)
        path = request.url.path
        if path == "/api/graphql":
            return self.graphql(request)
        if path == "/api/v4/groups/10":
            return httpx.Response(200, json={"id": 10, "full_path": "acme"})
        if path in ("/api/v4/groups/10/projects", "/api/v4/groups/acme/projects"):
            return self.rest_projects(request)
        if path.endswith("/trace"):
            return httpx.Response(200, text="line 1\nsection_start:1:step\r\x1b[0Kline 2\nboom\n")
        if path.endswith("/jobs"):
            return self.rest_jobs(request)
        if "/pipelines/" in path:
            project = int(path.split("/")[4])
            return httpx.Response(200, json=self.rest_pipeline(project, full=True))
        if path.endswith("/pipelines"):
            project = int(path.split("/")[4])
            return httpx.Response(200, json=[self.rest_pipeline(project, full=False)])
        return httpx.Response(404, json={"message": "404 Not Found"})

    def graphql(self, request: httpx.Request) -> httpx.Response:
        if self.graphql_status != 200:
            return httpx.Response(self.graphql_status, json={"message": "404 Not Found"})
        body = json.loads(request.content)
        variables = body["variables"]
        if variables["fullPath"] != "acme":
            return httpx.Response(200, json={"data": {"group": None}})
        first = int(body["query"].split("first: ", 2)[1].split(",")[0])
        if self.max_first is not None and first > self.max_first:
            score = first * 250 / self.max_first + 1
            message = f"Query has complexity of {score:.0f}, which exceeds max complexity of 250"
            return httpx.Response(200, json={"errors": [{"message": message}]})
        start = int(variables["after"] or 0)
        end = min(self.count, start + first)
        nodes = [
            gql_project(i, status="FAILED" if i in self.failed else "SUCCESS")
            for i in range(start, end)
        ]
        page = {
            "pageInfo": {"hasNextPage": end < self.count, "endCursor": str(end)},
            "nodes": nodes,
        }
        data = {"group": {"id": "gid://gitlab/Group/10", "fullPath": "acme", "projects": page}}
        return httpx.Response(200, json={"data": data})

    def rest_projects(self, request: httpx.Request) -> httpx.Response:
        page = int(request.url.params.get("page", "1"))
        per_page = int(request.url.params.get("per_page", "20"))
        start = (page - 1) * per_page
        end = min(self.count, start + per_page)
        items = [
            {
                "id": i,
                "name": f"p{i:04d}",
                "path_with_namespace": f"acme/p{i:04d}",
                "web_url": f"{HOST}/acme/p{i:04d}",
                "namespace": {"id": 10, "full_path": "acme"},
            }
            for i in range(start, end)
        ]
        headers = {"x-next-page": str(page + 1) if end < self.count else ""}
        return httpx.Response(200, json=items, headers=headers)

    def rest_pipeline(self, project: int, *, full: bool) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": 1000 + project,
            "iid": project,
            "status": "failed" if project in self.failed else "success",
            "ref": "main",
            "sha": "c" * 40,
            "created_at": "2026-03-02T11:00:00.000Z",
            "updated_at": "2026-03-02T11:05:00.000Z",
            "web_url": f"{HOST}/acme/p{project:04d}/-/pipelines/{1000 + project}",
        }
        if full:
            data["duration"] = 300
        return data

    def rest_jobs(self, request: httpx.Request) -> httpx.Response:
        project = int(request.url.path.split("/")[4])
        failed = project in self.failed
        jobs = [  # GitLab sorts jobs by id, newest first
            {"id": 30, "name": "deploy", "stage": "deploy", "status": "skipped"},
            {"id": 21, "name": "lint", "stage": "test", "status": "failed", "allow_failure": True},
            {
                "id": 20,
                "name": "pytest",
                "stage": "test",
                "status": "failed" if failed else "success",
            },
            {"id": 10, "name": "wheel", "stage": "build", "status": "success"},
        ]
        return httpx.Response(200, json=jobs, headers={"x-next-page": ""})

    def paths(self) -> list[str]:
        return [request.url.path for request in self.requests]


def make_client(
    handler: Handler, *, token: str | None = "glpat-secret", env: dict[str, str] | None = None
) -> tuple[GitLabClient, list[float]]:
    options: dict[str, object] = {"host": HOST}
    if token is not None:
        options["token"] = token
    settings = resolve_settings(options, env or {})
    sleeps: list[float] = []
    client = GitLabClient(
        settings,
        transport=httpx.MockTransport(handler),
        retry=RetryPolicy(attempts=3, base_delay=0.01),
        sleep=sleeps.append,
    )
    return client, sleeps


def fetcher(fake: Handler, group: str = "acme", **options: Any) -> PipelineFetcher:
    client, _ = make_client(fake)
    return PipelineFetcher(client, FetchOptions(group=group, **options))


def test_query_stays_under_gitlabs_complexity_limit_at_100_projects_per_page() -> None:
    for ref in (None, "default", "main"):
        selector = parse_ref(ref)
        assert largest_page_size(selector) == 100
        assert query_complexity(projects_query(100, selector)) < 250
    text = projects_query(100, parse_ref("main")).text()
    assert "includeSubgroups: true" in text and "pipelines(first: 1, ref: $ref)" in text
    assert "jobs(statuses: [FAILED], retried: false" in text
    assert len(text) < 10_000  # GitLab's maximum query size
    assert "pipeline {" in projects_query(100, parse_ref("default")).text()


def test_graphql_fetch_pages_250_projects_in_3_requests() -> None:
    fake = FakeGitLab(250, failed=frozenset({7}))
    snapshot = fetcher(fake).fetch()
    assert fake.paths() == ["/api/graphql"] * 3
    assert snapshot.requests == 3 and snapshot.api == "graphql"
    assert len(snapshot.rows) == 250 and snapshot.group_id == 10
    failed = snapshot.rows[7]
    assert failed.full_path == "acme/p0007" and failed.id == 7
    assert failed.pipeline is not None and failed.pipeline.status == "failed"
    assert [s.name for s in failed.pipeline.stages] == ["build", "test"]
    assert failed.pipeline.failed_jobs[0].name == "pytest"
    assert failed.pipeline.failed_jobs[0].id == 5007
    assert failed.pipeline.web_url == f"{HOST}/acme/p0007/-/pipelines/1007"
    auth = fake.requests[0].headers["Authorization"]
    assert auth == "Bearer glpat-secret"


def test_numeric_group_is_resolved_once_with_rest() -> None:
    fake = FakeGitLab(3)
    f = fetcher(fake, group="10")
    first, second = f.fetch(), f.fetch()
    assert fake.paths() == ["/api/v4/groups/10", "/api/graphql", "/api/graphql"]
    assert (first.requests, second.requests) == (2, 1)
    assert first.group_path == "acme"


def test_unknown_group_is_a_clear_not_found() -> None:
    with pytest.raises(NotFoundError, match=r"group 'nope' not found on https://gitlab\.example"):
        fetcher(FakeGitLab(3), group="nope").fetch()
    with pytest.raises(NotFoundError, match="group '99' not found"):
        fetcher(FakeGitLab(3), group="99").fetch()


def test_complexity_error_shrinks_the_page_and_retries() -> None:
    fake = FakeGitLab(120)
    fake.max_first = 60
    f = fetcher(fake)
    snapshot = f.fetch()
    assert len(snapshot.rows) == 120
    assert f.page_size <= 60
    assert len(fake.requests) == 1 + 120 // f.page_size + (1 if 120 % f.page_size else 0)


def test_rest_fallback_when_graphql_is_unavailable() -> None:
    fake = FakeGitLab(5, failed=frozenset({2}))
    fake.graphql_status = 404
    notices: list[str] = []
    client, _ = make_client(fake)
    f = PipelineFetcher(client, FetchOptions(group="acme", concurrency=4), notice=notices.append)
    snapshot = f.fetch()
    assert snapshot.api == "rest" and f.api == "rest"
    assert "GraphQL is unavailable" in notices[0]
    # 1 GraphQL + 1 projects page + 5 x (list, detail, jobs)
    assert snapshot.requests == 1 + 1 + 5 * 3
    row = snapshot.rows[2]
    assert row.pipeline is not None and row.pipeline.duration == 300
    # stage order from the lowest job id; allowed failures do not fail a stage
    assert [(s.name, s.status) for s in row.pipeline.stages] == [
        ("build", "success"),
        ("test", "failed"),
        ("deploy", "skipped"),
    ]
    assert [(j.name, j.allow_failure) for j in row.pipeline.failed_jobs] == [
        ("pytest", False),
        ("lint", True),
    ]
    ok = snapshot.rows[0].pipeline
    assert ok is not None and ok.stages[1].status == "success"
    # the next refresh sticks to REST and reuses finished, unchanged pipelines
    fake.requests.clear()
    again = f.fetch()
    assert again.requests == 1 + 5 and "/api/graphql" not in fake.paths()
    assert again.rows == snapshot.rows


def test_forced_graphql_does_not_fall_back() -> None:
    fake = FakeGitLab(5)
    fake.graphql_status = 404
    with pytest.raises(ApiError, match="GraphQL is unavailable"):
        fetcher(fake, api="graphql").fetch()


def test_rest_default_ref_uses_latest_and_treats_403_as_no_pipeline() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/pipelines/latest"):
            if "/projects/1/" in path:
                return httpx.Response(403, json={"message": "403 Forbidden"})
            return httpx.Response(200, json=fake.rest_pipeline(0, full=True))
        return fake(request)

    fake = FakeGitLab(2)
    client, _ = make_client(handler)
    options = FetchOptions(group="acme", api="rest", ref=parse_ref("default"))
    snapshot = PipelineFetcher(client, options).fetch()
    assert snapshot.ref == "default"
    assert snapshot.rows[0].pipeline is not None and snapshot.rows[1].pipeline is None


def test_job_token_is_refused_before_any_request() -> None:
    fake = FakeGitLab(3)
    client, _ = make_client(fake, token=None, env={"CI_JOB_TOKEN": "glcbt-abc"})
    with pytest.raises(ConfigError, match=r"CI job token .*cannot list a group's projects"):
        PipelineFetcher(client, FetchOptions(group="acme")).fetch()
    assert fake.requests == []


def test_refused_token_names_the_read_api_scope_and_never_the_token() -> None:
    fake = FakeGitLab(3)
    fake.override = lambda request: httpx.Response(
        403, json={"errors": [{"message": "insufficient_scope"}]}
    )
    with pytest.raises(AuthenticationError) as caught:
        fetcher(fake).fetch()
    assert "read_api" in str(caught.value) and "glpat-secret" not in str(caught.value)


def test_429_is_retried_after_the_servers_retry_after() -> None:
    fake = FakeGitLab(3)
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] == 1:
            return httpx.Response(429, text="Retry later", headers={"Retry-After": "7"})
        return fake(request)

    client, sleeps = make_client(handler)
    snapshot = PipelineFetcher(client, FetchOptions(group="acme")).fetch()
    assert sleeps == [7.0] and len(snapshot.rows) == 3 and snapshot.requests == 2


def test_logs_fetch_the_tail_once_per_failed_job() -> None:
    fake = FakeGitLab(4, failed=frozenset({1, 3}))
    f = fetcher(fake, logs=2)
    snapshot = f.fetch()
    traces = [p for p in fake.paths() if p.endswith("/trace")]
    assert sorted(traces) == [
        "/api/v4/projects/1/jobs/5001/trace",
        "/api/v4/projects/3/jobs/5003/trace",
    ]
    pipeline = snapshot.rows[1].pipeline
    assert pipeline is not None and pipeline.failed_jobs[0].log_tail == ("line 2", "boom")
    fake.requests.clear()
    assert f.fetch().requests == 1  # logs of finished jobs are cached


def test_log_tail_applies_carriage_returns_and_strips_markers() -> None:
    trace = "a\nprogress 10%\rprogress 100%\n\x1b[32;1mok\x1b[0;m\nsection_end:1:x\r\x1b[0K\n\n"
    assert log_tail(trace, 3) == ("a", "progress 100%", "ok")
    assert log_tail(trace, 2) == ("progress 100%", "ok")
    assert log_tail(trace, 0) == ()


def test_composite_status_follows_gitlab() -> None:
    def jobs(*statuses: str) -> list[dict[str, Any]]:
        return [{"status": s} for s in statuses]

    assert composite_status(jobs("success", "skipped")) == "success"
    assert composite_status(jobs("success", "failed")) == "failed"
    assert composite_status(jobs("success", "running")) == "running"
    assert composite_status(jobs("pending", "created")) == "pending"
    assert composite_status(jobs("success", "manual")) == "manual"
    assert composite_status(jobs("canceled", "success")) == "canceled"
    assert composite_status([]) == "skipped"
    assert composite_status([{"status": "failed", "allow_failure": True}]) == "success"


def test_every_graphql_error_is_inspected_for_an_older_schema() -> None:
    from poetry_gitlab_release.gitlab.client import GraphQLResponseError
    from poetry_gitlab_release.pipelines.fetch import graphql_unavailable_reason

    def answer(*errors: dict[str, object]) -> GraphQLResponseError:
        return GraphQLResponseError.of(list(errors), 200)

    # graphql-ruby's words (GitLab), not graphql-js's; the telling error need not be first.
    older = answer(
        {"message": "Variable $includeArchived is declared by GroupLatestPipelines but not used"},
        {"message": "Field 'projects' doesn't accept argument 'includeArchived'"},
    )
    reason = graphql_unavailable_reason(older)
    assert reason is not None and "lacks what the query needs" in reason
    coded = answer({"message": "something new", "extensions": {"code": "undefinedField"}})
    assert graphql_unavailable_reason(coded) is not None
    # GitLab before `pipeline` took no arguments (--ref default): REST's /pipelines/latest.
    resolver = graphql_unavailable_reason(answer({"message": "Provide one of an IID or SHA"}))
    assert resolver is not None and "default branch's latest pipeline" in resolver
    # A real failure is not hidden behind a fallback.
    assert graphql_unavailable_reason(answer({"message": "Internal server error"})) is None
    assert str(older.message).endswith("(and 1 more)")


def test_a_failed_job_without_a_log_shows_empty_log() -> None:
    """GitLab answers the trace of a job that never wrote a log with 200 and an empty body."""
    from poetry_gitlab_release.config.settings import resolve_settings
    from poetry_gitlab_release.gitlab.client import GitLabClient
    from poetry_gitlab_release.pipelines.fetch import FetchOptions, PipelineFetcher
    from sandbox.gitlab import GitLabStandIn, Scenario

    with GitLabStandIn(Scenario.generate(projects=40, seed=1)) as standin:
        settings = resolve_settings({"host": standin.url, "token": standin.tokens.read_api}, {})
        with GitLabClient(settings) as client:
            snapshot = PipelineFetcher(client, FetchOptions(group="acme", logs=3)).fetch()
    jobs = {
        (row.full_path, job.name): job.log_tail
        for row in snapshot.rows
        if row.pipeline is not None
        for job in row.pipeline.failed_jobs
    }
    assert jobs[("acme/team-2/service-15", "test:unit 3.10")] == ("(empty log)",)
    assert any(tail and tail[-1].startswith("[job ") for tail in jobs.values())


def test_failed_jobs_are_in_run_order_as_rest_shows_them() -> None:
    """GitLab's GraphQL lists jobs newest first; the row shows them in run order, like REST."""
    from poetry_gitlab_release.pipelines.fetch import pipeline_from_graphql

    node = {
        "id": "gid://gitlab/Ci::Pipeline/9",
        "status": "FAILED",
        "jobs": {
            "nodes": [
                {"id": "gid://gitlab/Ci::Build/12", "name": "deploy", "stage": {"name": "d"}},
                {"id": "gid://gitlab/Ci::Build/11", "name": "test", "stage": {"name": "t"}},
            ]
        },
    }
    pipeline = pipeline_from_graphql(node, "https://gitlab.example.com")
    assert [job.name for job in pipeline.failed_jobs] == ["test", "deploy"]
