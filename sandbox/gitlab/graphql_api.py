"""``POST /api/graphql`` served by graphql-core over ``schema.graphql``.

Objects are thin views over the scenario; graphql-core's default resolver reads their
attributes and calls their methods with the field arguments. Parsed and validated documents are
cached by query text, so a dashboard polling the same query pays only for execution.
"""

from __future__ import annotations

# ruff: noqa: N802 - resolver methods carry GitLab's camelCase field names
import base64
import json
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from graphql import (
    DocumentNode,
    ExecutionResult,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLObjectType,
    GraphQLSchema,
    OperationDefinitionNode,
    build_schema,
    execute,
    parse,
    validate,
)

from sandbox.gitlab.auth import Principal, can_see_group, can_see_project
from sandbox.gitlab.graphql_complexity import MAX_PAGE_SIZE, complexity, depth
from sandbox.gitlab.graphql_errors import parse_error, validation_errors
from sandbox.gitlab.http import ApiError, Request, Response
from sandbox.gitlab.models import COMPLETED_STATUSES, DETAILED_STATUS, Group, Job, Pipeline, Project

if TYPE_CHECKING:
    from sandbox.gitlab.app import App

SCHEMA: GraphQLSchema = build_schema((Path(__file__).parent / "schema.graphql").read_text())
MAX_COMPLEXITY_AUTHENTICATED = 250
MAX_COMPLEXITY_ANONYMOUS = 200
MAX_DEPTH_AUTHENTICATED = 20  # GitlabSchema::AUTHENTICATED_MAX_DEPTH
MAX_DEPTH_ANONYMOUS = 15  # GitlabSchema::DEFAULT_MAX_DEPTH
MAX_QUERY_SIZE = 10_000
T = TypeVar("T")


def register(app: App) -> None:
    schema_for(app)  # build a given SDL schema now (seconds), not on the first request
    app.router.add("POST", "/api/graphql", "graphql", lambda r: graphql_endpoint(app, r))
    app.router.add("GET", "/api/graphql", "graphql", lambda r: graphql_endpoint(app, r))


def _time(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _cursor(key: int) -> str:
    return base64.b64encode(json.dumps({"id": str(key)}).encode()).decode()


def _decode_cursor(cursor: str) -> int:
    try:
        return int(json.loads(base64.b64decode(cursor))["id"])
    except (ValueError, KeyError, TypeError):
        raise GraphQLError("Please provide a valid cursor") from None


class Connection(Generic[T]):
    """A Relay connection over an ordered list, keyed by each item's id (GitLab's keyset)."""

    def __init__(self, items: Sequence[T], key: Callable[[T], int], args: dict[str, Any]) -> None:
        self._key = key
        self.count = len(items)
        positions = {key(item): index for index, item in enumerate(items)}
        start, stop = 0, len(items)
        if args.get("after"):
            start = positions.get(_decode_cursor(args["after"]), -1) + 1
        if args.get("before"):
            stop = positions.get(_decode_cursor(args["before"]), stop)
        first, last = args.get("first"), args.get("last")
        for name, value in (("first", first), ("last", last)):
            if value is not None and value < 0:
                raise GraphQLError(f"Argument '{name}' on Field must be non-negative")
        if first is None and last is None:
            first = MAX_PAGE_SIZE
        window = list(items[start:stop])
        has_next = has_previous = False
        if first is not None:
            first = min(first, MAX_PAGE_SIZE)
            has_next = len(window) > first or stop < len(items)
            window = window[:first]
        if last is not None:
            last = min(last, MAX_PAGE_SIZE)
            has_previous = len(window) > last or start > 0
            window = window[-last:] if last else []
        self.nodes = window
        first_key = key(window[0]) if window else None
        last_key = key(window[-1]) if window else None
        self.pageInfo = {
            "hasNextPage": has_next,
            "hasPreviousPage": has_previous if last is not None else start > 0 and False,
            "startCursor": _cursor(first_key) if first_key is not None else None,
            "endCursor": _cursor(last_key) if last_key is not None else None,
        }

    def edges(self, _info: Any) -> list[dict[str, Any]]:
        return [{"cursor": _cursor(self._key(node)), "node": node} for node in self.nodes]


def _detailed(status: str, path: str, ident: str) -> dict[str, Any]:
    text, label = DETAILED_STATUS[status]
    return {
        "id": f"{status}-{ident}",
        "text": text,
        "label": label,
        "icon": f"status_{status}",
        "group": status,
        "tooltip": label,
        "hasDetails": True,
        "detailsPath": path,
        "favicon": f"/assets/ci_favicons/favicon_status_{status}.png",
    }


class Context:
    def __init__(
        self, app: App, principal: Principal, score: int, limit: int, schema: GraphQLSchema
    ) -> None:
        self.app = app
        self.principal = principal
        self.score = score
        self.limit = limit
        self.schema = schema


class GroupView:
    def __init__(self, ctx: Context, group: Group) -> None:
        self._ctx, self._group = ctx, group
        self.id = f"gid://gitlab/Group/{group.id}"
        self.name, self.path, self.fullPath = group.name, group.path, group.full_path
        self.description, self.visibility = group.description, group.visibility
        self.webUrl = f"{ctx.app.url}/groups/{group.full_path}"
        scenario = ctx.app.scenario
        self.fullName = " / ".join(g.name for g in reversed(scenario.ancestors(group)))

    def parent(self, _info: Any) -> GroupView | None:
        parent_id = self._group.parent_id
        if parent_id is None:
            return None
        parent = self._ctx.app.scenario.groups[parent_id]
        return GroupView(self._ctx, parent) if can_see_group(self._ctx.principal, parent) else None

    def projects(self, _info: Any, **args: Any) -> Connection[ProjectView]:
        scenario = self._ctx.app.scenario
        projects = scenario.group_projects(
            self._group, include_subgroups=bool(args.get("includeSubgroups")), with_shared=False
        )
        projects = [p for p in projects if can_see_project(self._ctx.principal, p)]
        if args.get("includeArchived") is False:
            projects = [p for p in projects if not p.archived]
        if args.get("ids"):
            wanted = {str(gid).rsplit("/", 1)[-1] for gid in args["ids"]}
            projects = [p for p in projects if str(p.id) in wanted]
        search = (args.get("search") or "").lower()
        if search:
            projects = [p for p in projects if search in p.name.lower() or search in p.path.lower()]
        sort = args.get("sort")
        if sort in ("PATH_ASC", "PATH_DESC", "FULL_PATH_ASC", "FULL_PATH_DESC"):
            projects.sort(key=lambda p: p.path_with_namespace, reverse=sort.endswith("DESC"))
        elif sort == "ACTIVITY_DESC":
            projects.sort(key=lambda p: (p.last_activity_at, p.id), reverse=True)
        views = [ProjectView(self._ctx, p) for p in projects]
        return Connection(views, lambda view: view.key, args)

    def descendantGroups(self, _info: Any, **args: Any) -> Connection[GroupView]:
        groups = self._ctx.app.scenario.subgroups(
            self._group, recursive=bool(args.get("includeParentDescendants", True))
        )
        visible = [GroupView(self._ctx, g) for g in groups if can_see_group(self._ctx.principal, g)]
        return Connection(visible, lambda view: view._group.id, args)


class ProjectView:
    def __init__(self, ctx: Context, project: Project) -> None:
        self._ctx, self._project = ctx, project
        self.key = project.id
        self.id = f"gid://gitlab/Project/{project.id}"
        self.name, self.path, self.fullPath = (
            project.name,
            project.path,
            project.path_with_namespace,
        )
        self.description, self.archived = project.description, project.archived
        self.visibility = project.visibility
        self.webUrl = f"{ctx.app.url}/{project.path_with_namespace}"
        self.createdAt = _time(project.created_at)
        self.lastActivityAt = _time(project.last_activity_at)
        self.topics = list(project.topics)
        self.repository = {"rootRef": project.default_branch, "empty": False, "exists": True}

    def nameWithNamespace(self, _info: Any) -> str:
        group = self._ctx.app.scenario.namespace_of(self._project)
        names = [g.name for g in reversed(self._ctx.app.scenario.ancestors(group))]
        return " / ".join([*names, self._project.name])

    def group(self, _info: Any) -> GroupView | None:
        group = self._ctx.app.scenario.namespace_of(self._project)
        return GroupView(self._ctx, group) if can_see_group(self._ctx.principal, group) else None

    def namespace(self, _info: Any) -> dict[str, Any]:
        view = GroupView(self._ctx, self._ctx.app.scenario.namespace_of(self._project))
        return {
            "id": view.id,
            "name": view.name,
            "path": view.path,
            "fullName": view.fullName,
            "fullPath": view.fullPath,
        }

    def pipeline(self, _info: Any, **args: Any) -> PipelineView | None:
        scenario = self._ctx.app.scenario
        pipelines = scenario.project_pipelines(self._project.id)
        if args.get("iid") is not None:
            found = [p for p in pipelines if str(p.iid) == str(args["iid"])]
        elif args.get("id") is not None:
            found = [p for p in pipelines if f"gid://gitlab/Ci::Pipeline/{p.id}" == args["id"]]
        elif args.get("sha") is not None:
            found = [p for p in pipelines if p.sha == args["sha"]]
        elif not _pipeline_takes_id(self._ctx.schema):
            # Before the `id` argument (GitLab < ~17.x), ProjectPipelineResolver#ready? refused a
            # call without arguments: `unless iid.present? ^ sha.present?` raise
            # Gitlab::Graphql::Errors::ArgumentError, 'Provide one of an IID or SHA'.
            raise GraphQLError("Provide one of an IID or SHA")
        else:
            # No arguments: "returns the latest pipeline for the head commit on the default
            # branch" (the field's description in GitLab 18.8's schema), i.e.
            # Project#latest_pipeline: null when that commit has no pipeline.
            latest = scenario.latest_pipeline(self._project.id)
            found = [latest] if latest else []
        return PipelineView(self._ctx, self._project, found[0]) if found else None

    def pipelines(self, _info: Any, **args: Any) -> Connection[PipelineView]:
        pipelines = list(self._ctx.app.scenario.project_pipelines(self._project.id))
        if args.get("ref"):
            pipelines = [p for p in pipelines if p.ref == args["ref"]]
        if args.get("sha"):
            pipelines = [p for p in pipelines if p.sha == args["sha"]]
        if args.get("source"):
            pipelines = [p for p in pipelines if p.source == args["source"]]
        if args.get("status"):
            pipelines = [p for p in pipelines if p.status == args["status"].lower()]
        if args.get("username") and args["username"] != "root":
            pipelines = []
        scope = args.get("scope")
        if scope in ("RUNNING", "PENDING"):
            pipelines = [p for p in pipelines if p.status == scope.lower()]
        elif scope == "FINISHED":
            pipelines = [p for p in pipelines if p.status in COMPLETED_STATUSES]
        elif scope in ("BRANCHES", "TAGS"):
            newest: dict[str, Pipeline] = {}
            for p in pipelines:
                if p.tag == (scope == "TAGS"):
                    newest.setdefault(p.ref, p)
            pipelines = [p for p in pipelines if newest.get(p.ref) is p]
        for name, after in (("updatedAfter", True), ("updatedBefore", False)):
            if args.get(name):
                moment = datetime.fromisoformat(str(args[name]).replace("Z", "+00:00"))
                pipelines = [p for p in pipelines if (p.updated_at > moment) == after]
        views = [PipelineView(self._ctx, self._project, p) for p in pipelines]
        return Connection(views, lambda view: view.key, args)


def _pipeline_takes_id(schema: GraphQLSchema) -> bool:
    project = schema.type_map.get("Project")
    field = project.fields.get("pipeline") if isinstance(project, GraphQLObjectType) else None
    return field is not None and "id" in field.args


class PipelineView:
    def __init__(self, ctx: Context, project: Project, pipeline: Pipeline) -> None:
        self._ctx, self._project, self._pipeline = ctx, project, pipeline
        self.key = pipeline.id
        self.id = f"gid://gitlab/Ci::Pipeline/{pipeline.id}"
        self.iid = str(pipeline.iid)
        self.status = pipeline.status.upper()
        self.ref, self.sha, self.beforeSha = pipeline.ref, pipeline.sha, pipeline.before_sha
        self.refPath = ("refs/tags/" if pipeline.tag else "refs/heads/") + pipeline.ref
        self.source, self.name, self.tag = pipeline.source, pipeline.name, pipeline.tag
        self.path = f"/{project.path_with_namespace}/-/pipelines/{pipeline.id}"
        self.createdAt, self.updatedAt = _time(pipeline.created_at), _time(pipeline.updated_at)
        self.startedAt, self.finishedAt = _time(pipeline.started_at), _time(pipeline.finished_at)
        self.committedAt = None
        self.duration, self.queuedDuration = pipeline.duration, pipeline.queued_duration
        self.coverage, self.failureReason, self.yamlErrors = None, None, False
        self.complete = pipeline.status in COMPLETED_STATUSES
        self.active = pipeline.status in (
            "preparing", "pending", "running", "waiting_for_resource", "waiting_for_callback"
        )  # fmt: skip
        self.cancelable = self.active or pipeline.status in ("created", "scheduled")
        self.retryable = pipeline.status in ("failed", "canceled")
        self.user = {"id": "gid://gitlab/User/1", "username": "root", "name": "Administrator"}

    def detailedStatus(self, _info: Any) -> dict[str, Any]:
        return _detailed(self._pipeline.status, self.path, str(self._pipeline.id))

    def totalJobs(self, _info: Any) -> int:
        return len(self._pipeline.jobs)

    def project(self, _info: Any) -> ProjectView:
        return ProjectView(self._ctx, self._project)

    def stages(self, _info: Any, **args: Any) -> Connection[StageView]:
        views = [
            StageView(self, index, name, status)
            for index, (name, status) in enumerate(
                self._ctx.app.scenario.stage_statuses(self._pipeline)
            )
        ]
        return Connection(views, lambda view: view.key, args)

    def jobs(self, _info: Any, **args: Any) -> Connection[JobView]:
        return Connection(self.job_views(args, None), lambda view: view.key, args)

    def job_views(self, args: dict[str, Any], stage: str | None) -> list[JobView]:
        jobs = list(self._pipeline.jobs)
        retried = args.get("retried")
        if retried is not None:
            jobs = [job for job in jobs if job.retried == retried]
        elif stage is not None:
            jobs = [job for job in jobs if not job.retried]
        if args.get("statuses"):
            wanted = {s.lower() for s in args["statuses"]}
            jobs = [job for job in jobs if job.status in wanted]
        if args.get("jobKind") == "BRIDGE":
            jobs = []
        if stage is not None:
            jobs = [job for job in jobs if job.stage == stage]
        # Newest first, as GitLab's jobs resolvers return them (Ci::JobsFinder orders by id
        # descending), not in stage order.
        jobs.sort(key=lambda job: job.id, reverse=True)
        return [JobView(self, job) for job in jobs]


class StageView:
    def __init__(self, pipeline: PipelineView, index: int, name: str, status: str) -> None:
        self._pipeline = pipeline
        self.key = pipeline.key * 100 + index
        self.id = f"gid://gitlab/Ci::Stage/{self.key}"
        self.name, self.status = name, status
        self.detailedStatus = _detailed(status, pipeline.path, str(self.key))

    def jobs(self, _info: Any, **args: Any) -> Connection[JobView]:
        views = self._pipeline.job_views({}, self.name)
        return Connection(views, lambda view: view.key, args)


class JobView:
    def __init__(self, pipeline: PipelineView, job: Job) -> None:
        self._pipeline_view, self._job = pipeline, job
        self.key = job.id
        self.id = f"gid://gitlab/Ci::Build/{job.id}"
        self.name, self.status = job.name, job.status.upper()
        self.allowFailure, self.retried = job.allow_failure, job.retried
        self.manualJob, self.kind = job.status == "manual", "BUILD"
        self.createdAt, self.startedAt = _time(job.created_at), _time(job.started_at)
        self.finishedAt = _time(job.finished_at)
        self.duration = int(job.duration) if job.duration is not None else None
        self.queuedDuration = job.queued_duration
        self.failureMessage = job.failure_reason
        project = pipeline._project
        self.webPath = f"/{project.path_with_namespace}/-/jobs/{job.id}"
        self.detailedStatus = _detailed(job.status, self.webPath, str(job.id))

    def stage(self, _info: Any) -> dict[str, Any]:
        return {"id": f"gid://gitlab/Ci::Stage/{self._job.stage}", "name": self._job.stage}

    def pipeline(self, _info: Any) -> PipelineView:
        return self._pipeline_view


class QueryRoot:
    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self.queryComplexity = {"score": ctx.score, "limit": ctx.limit}

    def group(self, _info: Any, fullPath: str) -> GroupView | None:  # noqa: N803
        group = self._ctx.app.scenario.group(fullPath)
        if group is None or fullPath.isdigit() or not can_see_group(self._ctx.principal, group):
            return None
        return GroupView(self._ctx, group)

    def groups(self, _info: Any, **args: Any) -> Connection[GroupView]:
        scenario = self._ctx.app.scenario
        groups = sorted(scenario.groups.values(), key=lambda g: g.id)
        if args.get("ids") is not None:
            wanted = set()
            for gid in args["ids"]:
                prefix, _, number = str(gid).rpartition("/")
                if prefix != "gid://gitlab/Group" or not number.isdigit():
                    raise GraphQLError(f'"{gid}" does not represent an instance of Group')
                wanted.add(int(number))
            groups = [g for g in groups if g.id in wanted]
        search = (args.get("search") or "").lower()
        if search:
            groups = [g for g in groups if search in g.full_path.lower()]
        views = [GroupView(self._ctx, g) for g in groups if can_see_group(self._ctx.principal, g)]
        return Connection(views, lambda view: view._group.id, args)

    def project(self, _info: Any, fullPath: str) -> ProjectView | None:  # noqa: N803
        project = self._ctx.app.scenario.project(fullPath)
        if project is None or fullPath.isdigit():
            return None
        return (
            ProjectView(self._ctx, project)
            if can_see_project(self._ctx.principal, project)
            else None
        )

    def currentUser(self, _info: Any) -> dict[str, Any] | None:
        if self._ctx.principal.kind == "anonymous" or self._ctx.principal.user != "member":
            return None
        return {"id": "gid://gitlab/User/1", "username": "root", "name": "Administrator"}


_cache: dict[tuple[int, str], tuple[DocumentNode | None, list[dict[str, Any]]]] = {}
_cache_lock = threading.Lock()
_schemas: dict[Path, GraphQLSchema] = {}


def schema_for(app: App) -> GraphQLSchema:
    """The stand-in's own schema, or the SDL file it was started with (e.g. GitLab 16.3's)."""
    path = app.graphql_schema
    if path is None:
        return SCHEMA
    with _cache_lock:
        schema = _schemas.get(path)
    if schema is None:
        schema = build_schema(path.read_text())
        with _cache_lock:
            _schemas[path] = schema
    return schema


def _document(
    schema: GraphQLSchema, query: str
) -> tuple[DocumentNode | None, list[dict[str, Any]]]:
    key = (id(schema), query)
    with _cache_lock:
        cached = _cache.get(key)
    if cached is not None:
        return cached
    errors: list[dict[str, Any]]
    try:
        document: DocumentNode | None = parse(query)
    except GraphQLError as error:
        document, errors = None, [parse_error(error)]
    else:
        assert document is not None
        errors = validation_errors(validate(schema, document))
    with _cache_lock:
        if len(_cache) > 512:
            _cache.clear()
        _cache[key] = (document, errors)
    return document, errors


def _error(message: str) -> dict[str, Any]:
    return {"errors": [{"message": message}]}


def run_query(app: App, principal: Principal, payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
        return _error("No query string was present")
    query: str = payload["query"]
    if len(query) > MAX_QUERY_SIZE:
        return _error("Query too large")
    variables = payload.get("variables") or {}
    if isinstance(variables, str):
        variables = json.loads(variables) if variables.strip() else {}
    schema = schema_for(app)
    document, errors = _document(schema, query)
    if errors or document is None:
        return {"errors": errors}
    operation_name = payload.get("operationName")
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    chosen = [
        o
        for o in operations
        if operation_name is None or (o.name and o.name.value == operation_name)
    ]
    if len(chosen) != 1:
        return _error("An operation name is required" if len(chosen) > 1 else "Unknown operation")
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    anonymous = principal.kind == "anonymous"
    limit = MAX_COMPLEXITY_ANONYMOUS if anonymous else MAX_COMPLEXITY_AUTHENTICATED
    max_depth = MAX_DEPTH_ANONYMOUS if anonymous else MAX_DEPTH_AUTHENTICATED
    # graphql-ruby's analyzers (GraphQL::Analysis::AST::MaxQueryComplexity / MaxQueryDepth)
    # word their refusals like this; both run before execution.
    refusals = []
    found_depth = depth(chosen[0], fragments)
    if found_depth > max_depth:
        refusals.append(
            {"message": f"Query has depth of {found_depth}, which exceeds max depth of {max_depth}"}
        )
    score = complexity(schema, chosen[0], fragments, variables)
    if score > limit:
        refusals.append(
            {"message": f"Query has complexity of {score}, which exceeds max complexity of {limit}"}
        )
    if refusals:
        return {"errors": refusals}
    ctx = Context(app, principal, score, limit, schema)
    result = execute(
        schema,
        document,
        root_value=QueryRoot(ctx),
        variable_values=variables,
        operation_name=operation_name,
    )
    if not isinstance(result, ExecutionResult):
        raise TypeError("async execution is not supported")
    response: dict[str, Any] = {}
    if result.errors:
        response["errors"] = [error.formatted for error in result.errors]
    response["data"] = result.data
    return response


def graphql_endpoint(app: App, request: Request) -> Response:
    principal = request.principal
    assert principal is not None
    if not app.graphql_enabled:
        raise ApiError.not_found()
    record = principal.record
    if principal.kind == "personal" and record and not record.scopes & {"api", "read_api"}:
        return Response.json(403, _error("insufficient_scope"))
    if request.method == "GET":
        payload: Any = {
            "query": request.param("query"),
            "variables": request.param("variables"),
            "operationName": request.param("operationName"),
        }
    else:
        try:
            payload = json.loads(request.body or b"null")
        except ValueError:
            return Response.json(400, _error("Invalid JSON in request body"))
    if isinstance(payload, list):
        return Response.json(200, [run_query(app, principal, item) for item in payload])
    return Response.json(200, run_query(app, principal, payload))
