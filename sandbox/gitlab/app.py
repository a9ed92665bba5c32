"""The application object of one stand-in: its state, its knobs, GitLab's visibility lookups and
request dispatch. The HTTP layer is sandbox.gitlab.server; the routes are wired by
sandbox.gitlab.routes."""

from __future__ import annotations

import sys
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path

from sandbox.gitlab.auth import TokenRegistry, can_see_group, can_see_project
from sandbox.gitlab.faults import FaultPlan
from sandbox.gitlab.http import ApiError, Request, Response, Router
from sandbox.gitlab.models import Group, Project
from sandbox.gitlab.object_storage import ObjectStorage
from sandbox.gitlab.principal import ANONYMOUS
from sandbox.gitlab.ratelimit import ApplicationLimiter, RateLimiter
from sandbox.gitlab.scenario import Scenario
from sandbox.gitlab.state import PackageState


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str
    query: str
    status: int  # 0 when the connection was reset
    credentials: tuple[str, ...]  # transports presented: private-token, bearer, basic, ...
    principal: str  # anonymous | personal | deploy | job | "" (not resolved)
    seconds: float  # server time from first byte of the headers to the response
    fault: str | None


class App:
    """Everything one stand-in serves: scenario, package state, knobs, the router and dispatch.

    Route modules register their handlers on ``router`` through ``sandbox.gitlab.routes.wire``;
    this module imports none of them, so they can import ``App`` without an import cycle.
    """

    def __init__(
        self,
        scenario: Scenario,
        *,
        tokens: TokenRegistry,
        object_storage: ObjectStorage | None,
        faults: FaultPlan | None,
        latency: float,
        rate_limit: int | None,
        generic_duplicates_allowed: bool,
        graphql_enabled: bool,
        graphql_schema: Path | None = None,
    ) -> None:
        self.scenario = scenario
        self.tokens = tokens
        self.state = PackageState()
        self.object_storage = object_storage
        self.faults = faults
        self.latency = latency
        self.limiter = RateLimiter(rate_limit) if rate_limit else None
        # Application limits by name (e.g. "group_projects_api"), see ApplicationLimiter.
        self.application_limits: dict[str, ApplicationLimiter] = {}
        self.generic_duplicates_allowed = generic_duplicates_allowed
        self.graphql_enabled = graphql_enabled
        # None: the stand-in's own schema.graphql; else a GitLab SDL file (e.g. 16.3's) to
        # validate and execute against, to play an older GitLab.
        self.graphql_schema = graphql_schema
        self.url = ""
        self.log: list[LoggedRequest] = []
        self._log_lock = threading.Lock()
        # Empty until sandbox.gitlab.routes.wire(app) registers every route module's routes.
        self.router = Router()

    # lookups with GitLab's visibility rules ------------------------------------------------
    def project_for(self, request: Request, ident: str, *, package_route: bool = False) -> Project:
        principal = request.principal or ANONYMOUS
        project = self.scenario.project(ident)
        if project is None:
            raise ApiError.not_found("Project")
        if not can_see_project(principal, project):
            if package_route and principal.kind == "anonymous":
                raise ApiError.unauthorized()
            raise ApiError.not_found("Project")
        return project

    def group_for(self, request: Request, ident: str) -> Group:
        principal = request.principal or ANONYMOUS
        group = self.scenario.group(ident)
        if group is None or not can_see_group(principal, group):
            raise ApiError.not_found("Group")
        return group

    def check_application_limit(self, name: str, request: Request) -> None:
        """429 as ``check_rate_limit!`` answers when the named application limit is spent."""
        limiter = self.application_limits.get(name)
        if limiter is None:
            return
        principal = request.principal or ANONYMOUS
        scope = principal.user or principal.kind
        if not limiter.allow(scope):
            raise ApiError(429, ApplicationLimiter.BODY)

    def record(self, entry: LoggedRequest) -> None:
        with self._log_lock:
            self.log.append(entry)

    # dispatch ----------------------------------------------------------------------------------
    def handle(self, request: Request) -> tuple[Response, str]:
        try:
            if not request.path.startswith(("/api/v4/", "/api/graphql")):
                return Response.text(404, "Not Found"), ""
            matched = self.router.match(request.method, request.path)
            if matched is None:
                return ApiError.not_found().response(), ""
            route, params = matched
            request.path_params = params
            request.principal = self.tokens.resolve(request, route.auth)
            return route.handler(request), request.principal.kind
        except ApiError as error:
            kind = request.principal.kind if request.principal else ""
            if request.path.startswith("/api/graphql") and error.status == 401:
                return Response.json(401, {"errors": [{"message": "Invalid token"}]}), kind
            return error.response(), kind
        except Exception:  # noqa: BLE001 - a bug in the stand-in: answer like GitLab, report loudly
            traceback.print_exc(file=sys.stderr)
            return Response.json(500, {"message": "500 Internal Server Error"}), ""
