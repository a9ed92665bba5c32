"""The dashboard flow without cleo: a fetch session over the GitLab stand-in, and rendering."""

from __future__ import annotations

import dataclasses
import json

import pytest

from poetry_gitlab_release.config.settings import Settings, resolve_settings
from poetry_gitlab_release.errors import ConfigError
from poetry_gitlab_release.pipelines.filters import parse_ref
from poetry_gitlab_release.pipelines.flow import Reporter, ViewOptions, dashboard, render
from poetry_gitlab_release.pipelines.table import Painter
from sandbox.gitlab import GitLabStandIn

VIEW = ViewOptions(
    format="table",
    watch=False,
    interval=10.0,
    stages_width=10,
    excludes=(),
    failed_only=False,
    include_archived=False,
    logs=0,
    api="auto",
    concurrency=2,
    output=None,
)


class RecordingReporter:
    def __init__(self) -> None:
        self.heard: list[str] = []

    def retry(self, what: str, delay: float) -> None:
        self.heard.append(f"retry {what}")

    def notice(self, message: str) -> None:
        self.heard.append(message)

    def rate_limit(self, message: str, delay: float) -> None:
        self.heard.append(message)


def _reporter() -> Reporter:
    return RecordingReporter()  # mypy checks the recorder implements the Protocol


def settings_for(gitlab: GitLabStandIn, token: str | None = None) -> Settings:
    options: dict[str, object] = {"host": gitlab.url, "allow-insecure-http": True}
    options["token"] = token or gitlab.tokens.personal
    return resolve_settings(options, {})


def test_a_session_fetches_snapshots_and_each_format_renders_them(
    gitlab_standin_shared: GitLabStandIn,
) -> None:
    settings = settings_for(gitlab_standin_shared)
    with dashboard(settings, "demo-group", parse_ref(None), VIEW, _reporter()) as fetch:
        snapshot = fetch()
        again = fetch()
    assert snapshot.group_path == "demo-group" and snapshot.rows
    assert [row.full_path for row in again.rows] == [row.full_path for row in snapshot.rows]
    painter = Painter(colour=False)
    table = render(snapshot, VIEW, painter)
    assert table.endswith("\n") and snapshot.rows[0].name in table
    document = json.loads(render(snapshot, dataclasses.replace(VIEW, format="json"), painter))
    assert len(document["projects"]) == len(snapshot.rows)
    compact = render(snapshot, dataclasses.replace(VIEW, format="json"), painter, compact=True)
    assert compact.count("\n") == 1
    metrics = render(snapshot, dataclasses.replace(VIEW, format="openmetrics"), painter)
    assert "gitlab_ci_pipeline_status" in metrics


def test_filters_apply_to_every_snapshot_of_the_session(
    gitlab_standin_shared: GitLabStandIn,
) -> None:
    settings = settings_for(gitlab_standin_shared)
    failed_only = dataclasses.replace(VIEW, failed_only=True)
    with dashboard(settings, "demo-group", parse_ref(None), failed_only, _reporter()) as fetch:
        snapshot = fetch()
    assert all(row.status == "failed" for row in snapshot.rows)


def test_a_token_gitlab_would_refuse_is_refused_before_any_request(
    gitlab_standin_shared: GitLabStandIn,
) -> None:
    settings = settings_for(gitlab_standin_shared, token="glcbt-a-job-token")
    session = dashboard(settings, "demo-group", parse_ref(None), VIEW, _reporter())
    with pytest.raises(ConfigError, match="job token"), session:
        raise AssertionError("no session may open")
