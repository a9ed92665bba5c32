"""A local GitLab stand-in: PyPI and generic registries, packages API, groups, pipelines, GraphQL.

``GitLabStandIn`` is the one public entry point::

    with GitLabStandIn(Scenario.default()) as gitlab:
        gitlab.api_url, gitlab.tokens.personal, gitlab.job_token(project_id)

It listens on 127.0.0.1 only. Scenario data (groups, projects, pipelines) is immutable; package
uploads are per stand-in and atomic.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path

from sandbox.gitlab.app import App, LoggedRequest
from sandbox.gitlab.auth import TokenRegistry, Tokens
from sandbox.gitlab.faults import FaultPlan
from sandbox.gitlab.object_storage import ObjectRequest, ObjectStorage
from sandbox.gitlab.routes import wire
from sandbox.gitlab.scenario import PipelineTruth, ProjectTruth, Scenario
from sandbox.gitlab.server import make_server
from sandbox.gitlab.state import StoredFile
from sandbox.lifecycle import ServedStandIn

__all__ = [
    "FaultPlan",
    "GitLabStandIn",
    "LoggedRequest",
    "ObjectRequest",
    "PipelineTruth",
    "ProjectTruth",
    "Scenario",
    "StoredFile",
    "Tokens",
]


class GitLabStandIn(ServedStandIn):
    """A running fake GitLab. Use as a context manager, or call ``start()``/``stop()``."""

    def __init__(
        self,
        scenario: Scenario | None = None,
        *,
        port: int = 0,
        object_storage: bool = False,
        faults: FaultPlan | None = None,
        latency: float = 0.0,
        rate_limit: int | None = None,
        generic_duplicates_allowed: bool = True,
        graphql_enabled: bool = True,
        graphql_schema: Path | None = None,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.scenario = scenario if scenario is not None else Scenario.default()
        self.tokens = Tokens.create()
        self._registry = TokenRegistry(self.tokens)
        self.object_storage = ObjectStorage() if object_storage else None
        self.app = wire(
            App(
                self.scenario,
                tokens=self._registry,
                object_storage=self.object_storage,
                faults=faults,
                latency=latency,
                rate_limit=rate_limit,
                generic_duplicates_allowed=generic_duplicates_allowed,
                graphql_enabled=graphql_enabled,
                graphql_schema=graphql_schema,
            )
        )
        # tls_context: serve HTTPS with this server-side context (e.g. from trustme); url,
        # api_url and graphql_url then start with https://.
        self._server = make_server(self.app, port, tls_context)
        self.url = self.app.url
        self.api_url = self.url + "/api/v4"
        self.graphql_url = self.url + "/api/graphql"
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"gitlab-standin-{self.port}", daemon=True
        )
        self._started = False

    # lifecycle ---------------------------------------------------------------------------------
    def start(self) -> GitLabStandIn:
        if not self._started:
            if self.object_storage is not None:
                self.object_storage.start()
            self._thread.start()
            self._started = True
        return self

    def close(self) -> None:
        self.stop()

    def stop(self) -> None:
        if self._started:
            self._server.shutdown()
            self._started = False
        self._server.server_close()
        if self.object_storage is not None:
            self.object_storage.stop()

    # credentials -------------------------------------------------------------------------------
    def job_token(self, project_id: int) -> str:
        """A CI job token (``CI_JOB_TOKEN``) of a running job in that project."""
        if project_id not in self.scenario.projects:
            raise KeyError(f"no project {project_id} in the scenario")
        return self._registry.job_token(project_id)

    def project_id(self, full_path: str) -> int:
        project = self.scenario.project(full_path)
        if project is None:
            raise KeyError(full_path)
        return project.id

    def ci_variables(self, project: int | str, *, tag: str | None = None) -> dict[str, str]:
        """Predefined CI variables of a job in that project (for tests of CI settings)."""
        found = self.scenario.project(project)
        if found is None:
            raise KeyError(project)
        namespace, _, name = found.path_with_namespace.rpartition("/")
        variables = {
            "CI_SERVER_URL": self.url,
            "CI_SERVER_HOST": "127.0.0.1",
            "CI_SERVER_FQDN": f"127.0.0.1:{self.port}",
            "CI_API_V4_URL": self.api_url,
            "CI_API_GRAPHQL_URL": self.graphql_url,
            "CI_PROJECT_ID": str(found.id),
            "CI_PROJECT_PATH": found.path_with_namespace,
            "CI_PROJECT_NAME": name,
            "CI_PROJECT_NAMESPACE": namespace,
            "CI_PROJECT_ROOT_NAMESPACE": namespace.split("/")[0],
            "CI_PROJECT_URL": f"{self.url}/{found.path_with_namespace}",
            "CI_DEFAULT_BRANCH": found.default_branch,
            "CI_COMMIT_REF_NAME": tag or found.default_branch,
            "CI_JOB_TOKEN": self.job_token(found.id),
        }
        if tag:
            variables["CI_COMMIT_TAG"] = tag
        return variables

    # observation -------------------------------------------------------------------------------
    @property
    def request_log(self) -> list[LoggedRequest]:
        with self.app._log_lock:
            return list(self.app.log)

    def reset_log(self) -> None:
        with self.app._log_lock:
            self.app.log.clear()
        if self.object_storage is not None:
            self.object_storage.requests.clear()
        if self.app.limiter is not None:
            self.app.limiter.reset()

    @property
    def object_storage_log(self) -> list[ObjectRequest]:
        if self.object_storage is None:
            return []
        return list(self.object_storage.requests)

    def stored_files(
        self, project: int | str | None = None, *, package_type: str | None = None
    ) -> list[StoredFile]:
        """Every stored file (name, version, file name, sha256, bytes), oldest first."""
        project_id = None
        if project is not None:
            project_id = project if isinstance(project, int) else self.project_id(project)
        return [
            f
            for f in self.app.state.stored_files(project_id)
            if package_type is None or f.package_type == package_type
        ]

    def clear_packages(self) -> None:
        self.app.state.clear()

    # run-time knobs --------------------------------------------------------------------------
    def set_faults(self, plan: FaultPlan | None) -> None:
        self.app.faults = plan

    def set_latency(self, seconds: float) -> None:
        self.app.latency = seconds

    def set_rate_limit(self, limit: int | None, period: float = 60.0) -> None:
        from sandbox.gitlab.ratelimit import RateLimiter

        self.app.limiter = RateLimiter(limit, period) if limit else None

    def set_application_limit(
        self,
        name: str,
        limit: int | None,
        period: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Enable (or, with None, disable) an application limit such as ``group_projects_api``
        (GitLab.com: 600 per minute on ``GET /groups/:id/projects``); ``clock`` lets a test run
        a one-minute window without waiting."""
        from sandbox.gitlab.ratelimit import ApplicationLimiter

        if limit:
            self.app.application_limits[name] = ApplicationLimiter(limit, period, clock)
        else:
            self.app.application_limits.pop(name, None)

    def set_generic_duplicates_allowed(self, allowed: bool) -> None:
        self.app.generic_duplicates_allowed = allowed

    def set_graphql_enabled(self, enabled: bool) -> None:
        self.app.graphql_enabled = enabled
