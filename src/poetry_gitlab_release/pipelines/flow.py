"""The dashboard's flow without cleo: open one fetch session on a group (credential check,
client, fetcher, filters) and render a snapshot in the chosen format.

The command reads options into a `ViewOptions`, opens `dashboard(...)` and either renders one
snapshot or hands the session to `watch.py`; what happens on the way (retries, fallbacks from
GraphQL to REST) is told to a `Reporter`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from poetry_gitlab_release.config.settings import Settings
    from poetry_gitlab_release.pipelines.filters import RefSelector
    from poetry_gitlab_release.pipelines.model import Snapshot
    from poetry_gitlab_release.pipelines.table import Painter

FORMATS = ("table", "json", "openmetrics")


@dataclass(frozen=True)
class ViewOptions:
    """The command-line options that shape fetching and output (not Settings)."""

    format: str
    watch: bool
    interval: float
    stages_width: int
    excludes: tuple[str, ...]
    failed_only: bool
    include_archived: bool
    logs: int
    api: str
    concurrency: int
    output: Path | None


class Reporter(Protocol):
    def retry(self, what: str, delay: float) -> None:
        """A transient failure of `what`, retried after `delay` seconds."""

    def notice(self, message: str) -> None:
        """Something worth a -v line (GraphQL unavailable, falling back to REST, ...)."""

    def rate_limit(self, message: str, delay: float) -> None:
        """A wait for GitLab's rate limit (a 429 without Retry-After): may last minutes."""


@contextmanager
def dashboard(
    settings: Settings, group: str, ref: RefSelector, view: ViewOptions, reporter: Reporter
) -> Iterator[Callable[[], Snapshot]]:
    """A session on `group`: each call of the yielded function fetches a filtered snapshot."""
    from poetry_gitlab_release.gitlab.client import GitLabClient, RetryPolicy
    from poetry_gitlab_release.gitlab.connection import Connection
    from poetry_gitlab_release.pipelines.fetch import (
        FetchOptions,
        PipelineFetcher,
        check_credential,
    )
    from poetry_gitlab_release.pipelines.filters import apply_filters

    fetch_options = FetchOptions(
        group=group,
        ref=ref,
        include_archived=view.include_archived,
        api=view.api,
        concurrency=view.concurrency,
        logs=view.logs,
    )
    check_credential(settings.credential)
    retry = RetryPolicy(attempts=4, base_delay=0.5, max_delay=60.0)
    connection = Connection.from_settings(settings)
    with GitLabClient(
        connection, retry=retry, on_retry=reporter.retry, on_rate_limit=reporter.rate_limit
    ) as client:
        fetcher = PipelineFetcher(client, fetch_options, notice=reporter.notice)

        def fetch() -> Snapshot:
            return apply_filters(
                fetcher.fetch(),
                excludes=view.excludes,
                failed_only=view.failed_only,
                include_archived=view.include_archived,
            )

        yield fetch


def render(
    snapshot: Snapshot, view: ViewOptions, painter: Painter, *, compact: bool = False
) -> str:
    """The snapshot in `view.format`, newline-terminated (`compact`: JSON on one line)."""
    if view.format == "json":
        from poetry_gitlab_release.pipelines.json_output import render_json

        text = render_json(snapshot, with_logs=view.logs > 0, indent=None if compact else 2)
        return text + "\n"
    if view.format == "openmetrics":
        from poetry_gitlab_release.pipelines.openmetrics import render_openmetrics

        return render_openmetrics(snapshot)
    from poetry_gitlab_release.pipelines.table import render_table

    return "\n".join(render_table(snapshot, painter, stages_width=view.stages_width)) + "\n"
