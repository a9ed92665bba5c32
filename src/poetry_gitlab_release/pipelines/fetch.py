"""Fetch a group's projects and each one's latest pipeline: GraphQL first, REST as fallback.

Request cost of one refresh for a group of N projects (F = failed jobs whose log is wanted with
--logs and not yet cached; logs of finished jobs never change):

    GraphQL  ceil(N / 100) queries, each one page of 100 projects with the latest pipeline, its
             stages and its failed jobs (GitLab complexity ~105 of 250, see `projects_query`);
             + 1 REST `GET /groups/:id` on the first refresh when --group is numeric; + F.
    REST     ceil(N / 100) project pages, then per project 1 pipeline lookup, and for a pipeline
             not seen before (or changed) its details and jobs (2 more, more for > 100 jobs);
             + 1 `GET /groups/:id` on the first refresh; + F. Bounded concurrency.

So 500 projects cost 5 GraphQL requests (6 on a first numeric-id refresh); the same group over
REST costs ~1,505 on the first refresh and ~505 on later unchanged watch refreshes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from poetry_gitlab_release.config.credentials import Credential, TokenKind
from poetry_gitlab_release.errors import (
    ApiError,
    AuthenticationError,
    ConfigError,
    NotFoundError,
    UsageError,
)
from poetry_gitlab_release.gitlab.client import GitLabClient
from poetry_gitlab_release.gitlab.urls import encode_id
from poetry_gitlab_release.pipelines.filters import RefKind, RefSelector
from poetry_gitlab_release.pipelines.model import (
    PipelineInfo,
    ProjectRow,
    Snapshot,
    normalize_status,
)
from poetry_gitlab_release.pipelines.parse import (
    gid_number,
    int_or_none,
    log_tail,
    nodes,
    parse_time,
    pipeline_from_rest,
    row_from_graphql,
)
from poetry_gitlab_release.pipelines.query import (
    complexity_refusal,
    graphql_unavailable_reason,
    largest_page_size,
    projects_query,
)

APIS = ("auto", "graphql", "rest")
TOKEN_SCOPE_HINT = (
    "gitlab-pipelines needs a personal, project or group access token with the read_api scope"
)


# --- the fetcher --------------------------------------------------------------------------


@dataclass(frozen=True)
class FetchOptions:
    group: str
    ref: RefSelector = field(default_factory=lambda: RefSelector(RefKind.ANY))
    include_archived: bool = False
    api: str = "auto"  # auto | graphql | rest
    concurrency: int = 8
    logs: int = 0  # last N lines of each failed job's log; 0 = none

    def __post_init__(self) -> None:
        if self.api not in APIS:
            raise UsageError(f"invalid --api {self.api!r}", hint=f"use one of {', '.join(APIS)}")
        if not 1 <= self.concurrency <= 32:
            raise UsageError("--concurrency must be between 1 and 32")
        if self.logs < 0:
            raise UsageError("--logs must be 0 or more")


def check_credential(credential: Credential | None) -> None:
    """Refuse, before any request, what GitLab would refuse for listing groups and pipelines."""
    if credential is None:
        return  # anonymous: public groups and projects only
    if credential.kind is TokenKind.JOB:
        raise ConfigError(
            f"a CI job token ({credential.source}) cannot list a group's projects or pipelines",
            hint="GitLab does not allow it; pass --token or set GITLAB_TOKEN to a token with "
            "read_api (for example a masked CI/CD variable)",
        )
    if credential.kind is TokenKind.DEPLOY:
        raise ConfigError(
            f"a deploy token ({credential.source}) cannot read pipelines",
            hint=TOKEN_SCOPE_HINT,
        )


class GraphQLUnavailableError(Exception):
    """GraphQL cannot serve this query here (disabled, too old a schema): use REST."""


class PipelineFetcher:
    """Fetches snapshots; keeps what stays valid between watch refreshes (group, caches)."""

    def __init__(
        self,
        client: GitLabClient,
        options: FetchOptions,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
        notice: Callable[[str], None] | None = None,
    ) -> None:
        self.client = client
        self.options = options
        self._now = now
        self._notice = notice or (lambda message: None)
        self._group_path: str | None = None
        self._group_id: int | None = None
        self._api = "rest" if options.api == "rest" else "graphql"
        self._page_size = largest_page_size(options.ref)
        self._logs: dict[int, tuple[str, ...]] = {}
        self._rest_pipelines: dict[int, PipelineInfo] = {}
        self._lock = threading.Lock()
        group = options.group.strip().strip("/")
        if not group:
            raise UsageError("--group is empty")
        if group.isdigit():
            self._group_id = int(group)
        else:
            self._group_path = group

    @property
    def api(self) -> str:
        return self._api

    @property
    def page_size(self) -> int:
        return self._page_size

    def fetch(self) -> Snapshot:
        check_credential(self.client.credential)
        start = self.client.request_count
        try:
            rows = self._fetch_rows()
            if self.options.logs:
                rows = self._with_logs(rows)
        except AuthenticationError as error:
            raise AuthenticationError(
                f"GitLab refused the request: {error.message}",
                status=error.status,
                hint=f"{error.hint}; {TOKEN_SCOPE_HINT}" if error.hint else TOKEN_SCOPE_HINT,
            ) from None
        rows.sort(key=lambda row: row.full_path.lower())
        return Snapshot(
            host=self.client.connection.server_url,
            group_path=self._group_path or str(self._group_id),
            group_id=self._group_id,
            fetched_at=self._now(),
            ref=self.options.ref.label,
            api=self._api,
            requests=self.client.request_count - start,
            rows=tuple(rows),
        )

    # --- group ---------------------------------------------------------------------------

    def _unknown_group(self) -> NotFoundError:
        shown = self._group_path or str(self._group_id)
        who = "this token" if self.client.credential else "anonymous access"
        return NotFoundError(
            f"group {shown!r} not found on {self.client.connection.server_url}",
            status=404,
            hint=f"or not visible to {who}; --group takes a numeric id or a full path",
        )

    def _resolve_group_path(self) -> str:
        if self._group_path is None:
            try:
                data = self.client.get_json(f"groups/{self._group_id}", {"with_projects": "false"})
            except NotFoundError:
                raise self._unknown_group() from None
            path = data.get("full_path") if isinstance(data, Mapping) else None
            if not isinstance(path, str) or not path:
                raise ApiError(f"GET /groups/{self._group_id}: no full_path", status=200)
            self._group_path = path
        return self._group_path

    # --- rows ----------------------------------------------------------------------------

    def _fetch_rows(self) -> list[ProjectRow]:
        if self._api == "graphql":
            try:
                return self._graphql_rows()
            except GraphQLUnavailableError as reason:
                if self.options.api == "graphql":
                    raise ApiError(f"GraphQL is unavailable: {reason}", status=0) from None
                self._notice(f"GraphQL is unavailable ({reason}); using the REST API")
                self._api = "rest"
        return self._rest_rows()

    def _graphql_rows(self) -> list[ProjectRow]:
        full_path = self._resolve_group_path()
        rows: list[ProjectRow] = []
        after: str | None = None
        while True:
            data = self._graphql_page(full_path, after)
            group = data.get("group") if isinstance(data, Mapping) else None
            if not isinstance(group, Mapping):
                raise self._unknown_group()
            if self._group_id is None:
                self._group_id = gid_number(group.get("id"))
            if isinstance(group.get("fullPath"), str):
                self._group_path = group["fullPath"]
            projects = group.get("projects")
            server = self.client.connection.server_url
            rows.extend(row_from_graphql(node, server) for node in nodes(projects))
            info = projects.get("pageInfo") if isinstance(projects, Mapping) else None
            if not isinstance(info, Mapping) or not info.get("hasNextPage"):
                return rows
            cursor = info.get("endCursor")
            if not isinstance(cursor, str) or cursor == after:
                raise ApiError("GraphQL: pagination did not advance", status=200)
            after = cursor

    def _graphql_page(self, full_path: str, after: str | None) -> Any:
        variables: dict[str, Any] = {
            "fullPath": full_path,
            "after": after,
            "includeArchived": self.options.include_archived,
        }
        if self.options.ref.kind is RefKind.NAMED:
            variables["ref"] = self.options.ref.name
        for _ in range(8):
            query = projects_query(self._page_size, self.options.ref).text()
            try:
                return self.client.graphql(query, variables)
            except AuthenticationError:
                raise
            except ApiError as error:
                match = complexity_refusal(error)
                if match and self._page_size > 1:
                    score, limit = float(match.group(1)), float(match.group(2))
                    shrunk = int(self._page_size * limit / score * 0.9)
                    self._page_size = max(1, min(self._page_size - 1, shrunk))
                    continue
                reason = graphql_unavailable_reason(error)
                if reason is not None:
                    raise GraphQLUnavailableError(reason) from None
                raise
        raise ApiError("GraphQL: the query stays too complex for this server", status=200)

    def _rest_rows(self) -> list[ProjectRow]:
        group = encode_id(self._group_id if self._group_id is not None else self._group_path or "")
        params: dict[str, Any] = {
            "include_subgroups": "true",
            "with_shared": "false",
            "order_by": "path",
            "sort": "asc",
        }
        if self.options.include_archived:
            params["simple"] = "false"  # only the full entity says which projects are archived
        else:
            params.update(simple="true", archived="false")
        try:
            projects = list(self.client.paginate(f"groups/{group}/projects", params))
        except NotFoundError:
            raise self._unknown_group() from None
        if projects and (self._group_path is None or self._group_id is None):
            self._group_path, self._group_id = _group_of(projects, self._group_path, self._group_id)
        if self._group_path is None:
            self._resolve_group_path()
        with ThreadPoolExecutor(max_workers=self.options.concurrency) as pool:
            return list(pool.map(self._rest_row, projects))

    def _rest_row(self, project: Mapping[str, Any]) -> ProjectRow:
        project_id = int_or_none(project.get("id")) or 0
        return ProjectRow(
            id=project_id,
            full_path=str(project.get("path_with_namespace") or ""),
            name=str(project.get("name") or ""),
            archived=bool(project.get("archived", False)),
            web_url=project.get("web_url") if isinstance(project.get("web_url"), str) else None,
            pipeline=self._rest_pipeline(project_id),
        )

    def _rest_pipeline(self, project_id: int) -> PipelineInfo | None:
        base = f"projects/{project_id}/pipelines"
        ref = self.options.ref
        if ref.kind is RefKind.DEFAULT:
            response = self.client.request(
                "GET", self.client.api(base + "/latest"), expected=(200, 403)
            )
            if response.status_code == 403:
                return None  # GitLab's answer when the default branch has no pipeline
            detail = response.json()
        else:
            params: dict[str, Any] = {"per_page": 1}
            if ref.kind is RefKind.NAMED:
                params["ref"] = ref.name
            listed = self.client.get_json(base, params)
            if not isinstance(listed, list) or not listed:
                return None
            summary = listed[0]
            cached = self._cached_rest_pipeline(project_id, summary)
            if cached is not None:
                return cached
            detail = self.client.get_json(f"{base}/{summary['id']}")
        cached = self._cached_rest_pipeline(project_id, detail)
        if cached is not None:
            return cached
        jobs = list(self.client.paginate(f"{base}/{detail['id']}/jobs"))
        pipeline = pipeline_from_rest(detail, jobs)
        with self._lock:
            self._rest_pipelines[project_id] = pipeline
        return pipeline

    def _cached_rest_pipeline(
        self, project_id: int, data: Mapping[str, Any]
    ) -> PipelineInfo | None:
        with self._lock:
            cached = self._rest_pipelines.get(project_id)
        if (
            cached is not None
            and cached.finished
            and cached.id == int_or_none(data.get("id"))
            and cached.updated_at == parse_time(data.get("updated_at"))
            and cached.status == normalize_status(data.get("status"))
        ):
            return cached
        return None

    # --- logs ----------------------------------------------------------------------------

    def _with_logs(self, rows: list[ProjectRow]) -> list[ProjectRow]:
        wanted = [
            (row.id, job.id)
            for row in rows
            if row.pipeline is not None
            for job in row.pipeline.failed_jobs
            if job.id is not None and job.id not in self._logs
        ]
        if wanted:
            with ThreadPoolExecutor(max_workers=self.options.concurrency) as pool:
                for job_id, lines in pool.map(lambda pair: self._log(*pair), wanted):
                    self._logs[job_id] = lines
        result = []
        for row in rows:
            if row.pipeline is None or not row.pipeline.failed_jobs:
                result.append(row)
                continue
            jobs = tuple(
                replace(job, log_tail=self._logs.get(job.id) if job.id is not None else None)
                for job in row.pipeline.failed_jobs
            )
            result.append(replace(row, pipeline=replace(row.pipeline, failed_jobs=jobs)))
        return result

    def _log(self, project_id: int, job_id: int) -> tuple[int, tuple[str, ...]]:
        response = self.client.request(
            "GET",
            self.client.api(f"projects/{project_id}/jobs/{job_id}/trace"),
            expected=(200, 404),
        )
        if response.status_code == 404:
            return job_id, ("(log not available)",)
        # A job that never wrote a log (e.g. stuck, no runner took it): GitLab answers 200 with
        # an empty body (lib/api/ci/jobs.rb: `build.trace.raw || ''`).
        return job_id, log_tail(response.text, self.options.logs) or ("(empty log)",)


def _group_of(
    projects: Sequence[Mapping[str, Any]], path: str | None, group_id: int | None
) -> tuple[str | None, int | None]:
    """Fill the requested group's path or id from the namespace of a project directly in it."""
    for project in projects:
        namespace = project.get("namespace")
        if not isinstance(namespace, Mapping):
            continue
        ns_path, ns_id = namespace.get("full_path"), namespace.get("id")
        if group_id is not None and ns_id == group_id and isinstance(ns_path, str):
            return ns_path, group_id
        if path is not None and isinstance(ns_path, str) and ns_path.lower() == path.lower():
            return ns_path, ns_id if isinstance(ns_id, int) else None
    return path, group_id
