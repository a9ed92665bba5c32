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

import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from poetry_gitlab_release.config.settings import Settings, TokenKind
from poetry_gitlab_release.errors import (
    ApiError,
    AuthenticationError,
    ConfigError,
    NotFoundError,
    UsageError,
)
from poetry_gitlab_release.gitlab.client import GitLabClient, GraphQLProblem, GraphQLResponseError
from poetry_gitlab_release.gitlab.urls import encode_id
from poetry_gitlab_release.pipelines.filters import RefKind, RefSelector
from poetry_gitlab_release.pipelines.model import (
    FailedJob,
    PipelineInfo,
    ProjectRow,
    Snapshot,
    StageStatus,
    normalize_status,
)

GRAPHQL_PAGE_SIZE = 100  # GitLab's max_page_size for every connection
GRAPHQL_MAX_COMPLEXITY = 250  # authenticated; 200 without a token
FAILED_JOBS_PAGE = 50
APIS = ("auto", "graphql", "rest")
TOKEN_SCOPE_HINT = (
    "gitlab-pipelines needs a personal, project or group access token with the read_api scope"
)


# --- GraphQL query and its complexity -------------------------------------------------------


@dataclass(frozen=True)
class GqlField:
    """One selected field. Renders itself and computes GitLab's complexity score.

    GitLab (`Types::BaseField`): a plain field costs 1 plus its selections; a field with a
    resolver costs its selections + 1 (+ the resolver's extras, e.g. 10 for
    `includeSubgroups`), and when it is a connection that sum grows by 1 % per requested node
    (`complexity_multiplier` 0.01 x `first`, page size 100 when `first` is absent).
    """

    name: str
    selections: tuple[GqlField, ...] = ()
    args: str = ""
    resolver: bool = False
    connection_size: int | None = None  # `first`, for connections with a resolver
    extra: int = 0

    def text(self) -> str:
        head = f"{self.name}({self.args})" if self.args else self.name
        if not self.selections:
            return head
        return head + " { " + " ".join(child.text() for child in self.selections) + " }"

    def complexity(self) -> float:
        children = sum(child.complexity() for child in self.selections)
        if not self.resolver:
            return 1 + children
        score = children + 1 + self.extra
        if self.connection_size is not None:
            score += score * self.connection_size * 0.01
        return score


def _leaves(*names: str) -> tuple[GqlField, ...]:
    return tuple(GqlField(name) for name in names)


def _pipeline_selections() -> tuple[GqlField, ...]:
    return (
        *_leaves("id", "iid", "status", "ref", "sha", "source"),
        *_leaves("createdAt", "updatedAt", "duration", "path"),
        GqlField(
            "stages",
            (GqlField("nodes", _leaves("name", "status")),),
            resolver=True,
            connection_size=GRAPHQL_PAGE_SIZE,
        ),
        GqlField(
            "jobs",
            (
                GqlField(
                    "nodes",
                    (
                        *_leaves("id", "name", "allowFailure"),
                        GqlField("stage", _leaves("name")),
                    ),
                ),
            ),
            args=f"statuses: [FAILED], retried: false, first: {FAILED_JOBS_PAGE}",
            resolver=True,
            connection_size=FAILED_JOBS_PAGE,
        ),
    )


def projects_query(page_size: int, ref: RefSelector) -> GqlField:
    """The whole query as a field tree (root `query`), for one page of `page_size` projects."""
    if ref.kind is RefKind.DEFAULT:
        # Like REST /pipelines/latest: the latest pipeline of the default branch's head commit.
        pipeline = GqlField("pipeline", _pipeline_selections(), resolver=True)
    else:
        ref_arg = ", ref: $ref" if ref.kind is RefKind.NAMED else ""
        pipeline = GqlField(
            "pipelines",
            (GqlField("nodes", _pipeline_selections()),),
            args=f"first: 1{ref_arg}",
            resolver=True,
            connection_size=1,
            extra=2 if ref_arg else 0,  # ResolvesPipelines.resolver_complexity: +2 for `ref`
        )
    projects = GqlField(
        "projects",
        (
            GqlField("pageInfo", _leaves("hasNextPage", "endCursor")),
            GqlField("nodes", (*_leaves("id", "fullPath", "name", "archived", "webUrl"), pipeline)),
        ),
        args=(
            "includeSubgroups: true, includeArchived: $includeArchived, "
            f"first: {page_size}, after: $after"
        ),
        resolver=True,
        connection_size=page_size,
        extra=10,
    )
    group = GqlField(
        "group",
        (*_leaves("id", "fullPath"), projects),
        args="fullPath: $fullPath",
        resolver=True,
    )
    variables = "$fullPath: ID!, $after: String, $includeArchived: Boolean!"
    if ref.kind is RefKind.NAMED:
        variables += ", $ref: String!"
    return GqlField(f"query GroupLatestPipelines({variables})", (group,))


def query_complexity(query: GqlField) -> float:
    """The score GitLab computes for `query` (the root operation itself costs nothing)."""
    return sum(child.complexity() for child in query.selections)


def largest_page_size(ref: RefSelector, limit: int = GRAPHQL_MAX_COMPLEXITY) -> int:
    for size in range(GRAPHQL_PAGE_SIZE, 0, -1):
        if query_complexity(projects_query(size, ref)) <= limit:
            return size
    raise AssertionError("even one project per page exceeds the complexity limit")


_COMPLEXITY_ERROR = re.compile(
    r"complexity of (\d+(?:\.\d+)?),? which exceeds max complexity of (\d+)"
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


def _int_or_none(value: object) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _nodes(connection: object) -> list[Mapping[str, Any]]:
    if not isinstance(connection, Mapping):
        return []
    nodes = connection.get("nodes") or []
    return [node for node in nodes if isinstance(node, Mapping)]


def pipeline_from_graphql(node: Mapping[str, Any], server_url: str) -> PipelineInfo:
    path = node.get("path")
    jobs = []
    for job in _nodes(node.get("jobs")):
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
    return PipelineInfo(
        id=gid_number(node.get("id")) or 0,
        iid=_int_or_none(node.get("iid")),
        status=normalize_status(node.get("status")),
        ref=str(node.get("ref") or ""),
        sha=str(node.get("sha") or ""),
        created_at=parse_time(node.get("createdAt")),
        updated_at=parse_time(node.get("updatedAt")),
        duration=_int_or_none(node.get("duration")),
        web_url=server_url + path if isinstance(path, str) and path.startswith("/") else None,
        stages=tuple(
            StageStatus(str(stage.get("name") or ""), normalize_status(stage.get("status")))
            for stage in _nodes(node.get("stages"))
        ),
        failed_jobs=tuple(jobs),
        source=node.get("source") if isinstance(node.get("source"), str) else None,
    )


def row_from_graphql(node: Mapping[str, Any], server_url: str) -> ProjectRow:
    pipeline_node: object = node.get("pipeline")
    if "pipelines" in node:
        found = _nodes(node.get("pipelines"))
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
        job_id = _int_or_none(job.get("id")) or 0
        first_id[stage] = min(first_id.get(stage, job_id), job_id)
    stages = tuple(
        StageStatus(name, composite_status(by_stage[name]))
        for name in sorted(by_stage, key=lambda name: first_id[name])
    )
    failed = tuple(
        FailedJob(
            name=str(job.get("name") or ""),
            stage=str(job.get("stage") or ""),
            id=_int_or_none(job.get("id")),
            allow_failure=bool(job.get("allow_failure")),
        )
        for job in sorted(jobs, key=lambda job: _int_or_none(job.get("id")) or 0)
        if normalize_status(job.get("status")) == "failed"
    )
    return stages, failed


def pipeline_from_rest(data: Mapping[str, Any], jobs: Sequence[Mapping[str, Any]]) -> PipelineInfo:
    stages, failed = stages_from_rest_jobs(jobs)
    return PipelineInfo(
        id=_int_or_none(data.get("id")) or 0,
        iid=_int_or_none(data.get("iid")),
        status=normalize_status(data.get("status")),
        ref=str(data.get("ref") or ""),
        sha=str(data.get("sha") or ""),
        created_at=parse_time(data.get("created_at")),
        updated_at=parse_time(data.get("updated_at")),
        duration=_int_or_none(data.get("duration")),
        web_url=data.get("web_url") if isinstance(data.get("web_url"), str) else None,
        stages=stages,
        failed_jobs=failed,
        source=data.get("source") if isinstance(data.get("source"), str) else None,
    )


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


def check_credential(settings: Settings) -> None:
    """Refuse, before any request, what GitLab would refuse for listing groups and pipelines."""
    credential = settings.credential
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
        check_credential(self.client.settings)
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
            host=self.client.settings.server_url,
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
        who = "this token" if self.client.settings.credential else "anonymous access"
        return NotFoundError(
            f"group {shown!r} not found on {self.client.settings.server_url}",
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
            server = self.client.settings.server_url
            rows.extend(row_from_graphql(node, server) for node in _nodes(projects))
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
                match = _complexity_refusal(error)
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
        project_id = _int_or_none(project.get("id")) or 0
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
            and cached.id == _int_or_none(data.get("id"))
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


# graphql-ruby's static validation (GitLab's engine) tags each error with one of these codes
# (lib/graphql/static_validation/rules/*.rb); its messages read as in the markers below, e.g.
# "Field 'projects' doesn't accept argument 'includeArchived'", "Field 'source' doesn't exist
# on type 'Pipeline'". Any of them means this GitLab's schema is not the one the query is for.
SCHEMA_VALIDATION_CODES = frozenset(
    {
        "undefinedField",
        "argumentNotAccepted",
        "missingRequiredArguments",
        "argumentLiteralsIncompatible",
        "variableNotUsed",
        "variableNotDefined",
        "variableMismatch",
        "variableRequiresValidType",
        "undefinedType",
        "selectionMismatch",
        "undefinedDirective",
        "directiveCannotBeApplied",
    }
)
SCHEMA_VALIDATION_MARKERS = (
    "doesn't exist on type",
    "doesn't accept argument",
    "is missing required arguments",
    "but not used",
    "but not declared",
    "isn't a defined input type",
    "so it can't be a fragment condition",
    "has an invalid value",
    "nullability mismatch on variable",
    "type mismatch on variable",
    "cannot query field",  # other engines' words, e.g. graphql-js
    "unknown argument",
)
# Project.pipeline without arguments is refused before GitLab ~17.x (ProjectPipelineResolver
# required one of iid/sha): --ref default then needs REST's /pipelines/latest.
OLD_RESOLVER_MARKERS = ("provide one of an iid or sha",)


def _problems(error: ApiError) -> list[GraphQLProblem]:
    if isinstance(error, GraphQLResponseError):
        return list(error.problems)
    return [GraphQLProblem(error.message)]


def _complexity_refusal(error: ApiError) -> re.Match[str] | None:
    for problem in _problems(error):
        match = _COMPLEXITY_ERROR.search(problem.message)
        if match:
            return match
    return None


def graphql_unavailable_reason(error: ApiError) -> str | None:
    """Why REST must serve instead, or None when the error is a real failure.

    Every error of the answer is inspected: GraphQL disabled or absent (404, 405, 501, 5xx),
    a schema-validation error of any kind (this GitLab's schema lacks a field or argument the
    query uses), or a resolver older GitLab has (`pipeline` without arguments).
    """
    if not isinstance(error, GraphQLResponseError):
        if error.status in {404, 405, 501} or error.status >= 500:
            return f"the GraphQL endpoint answered {error.status}"
        return None
    for problem in error.problems:
        text = problem.message.lower()
        if problem.code in SCHEMA_VALIDATION_CODES or any(
            marker in text for marker in SCHEMA_VALIDATION_MARKERS
        ):
            return "this GitLab's GraphQL schema lacks what the query needs: " + _shorten(
                problem.message
            )
        if any(marker in text for marker in OLD_RESOLVER_MARKERS):
            return "this GitLab cannot give the default branch's latest pipeline over GraphQL: " + (
                _shorten(problem.message)
            )
    return None


def _shorten(text: str) -> str:
    return text if len(text) <= 120 else text[:117] + "..."


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
