"""A 429 without Retry-After (GitLab's application limiter, e.g. 600 a minute on a group's
projects) is waited out across its one-minute window, saying so in one line per wait. The
clock and sleep are injected: the test takes no real minute."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from poetry_gitlab_release.config.settings import resolve_settings
from poetry_gitlab_release.errors import ApiError
from poetry_gitlab_release.gitlab.client import GitLabClient, RetryPolicy
from poetry_gitlab_release.pipelines.fetch import FetchOptions, PipelineFetcher
from poetry_gitlab_release.pipelines.model import Snapshot
from sandbox.gitlab import GitLabStandIn, Scenario


class Clock:
    def __init__(self) -> None:
        self.now = 60 * 30_000 + 1.0  # one second into a fixed window
        self.slept: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture(scope="module")
def standin() -> Iterator[GitLabStandIn]:
    with GitLabStandIn(Scenario.generate(projects=250, seed=5)) as running:
        yield running


def _fetch(standin: GitLabStandIn, clock: Clock, lines: list[str], **client: Any) -> Snapshot:
    settings = resolve_settings({"host": standin.url, "token": standin.tokens.read_api}, {})
    with GitLabClient(
        settings,
        sleep=clock.sleep,
        clock=clock.time,
        retry=RetryPolicy(attempts=4, base_delay=0.5, max_delay=60.0),
        **client,
    ) as gitlab:
        return PipelineFetcher(gitlab, FetchOptions(group="acme", api="rest")).fetch()


def test_a_window_of_a_minute_is_waited_out(standin: GitLabStandIn) -> None:
    clock = Clock()
    standin.set_application_limit("group_projects_api", 1, clock=clock.time)
    lines: list[str] = []
    try:
        snapshot = _fetch(
            standin, clock, lines, on_rate_limit=lambda message, _delay: lines.append(message)
        )
    finally:
        standin.set_application_limit("group_projects_api", None)
    truth = standin.scenario.expected_group_projects("acme")
    assert {row.full_path for row in snapshot.rows} == {t.full_path for t in truth}
    refused = [e for e in standin.request_log if e.status == 429]
    assert refused and len(lines) == len(refused)
    assert all("\n" not in line for line in lines)
    assert lines[0].startswith("GitLab is rate limiting GET ")
    assert "(HTTP 429 without Retry-After): waiting 5s before retrying" in lines[0]
    # Each page waited until a new minute began: more than the window, far less than two.
    assert 60 <= clock.now - (60 * 30_000 + 1.0) < 3 * 60


def test_quick_backoff_alone_would_give_up_inside_the_window(standin: GitLabStandIn) -> None:
    """What the client did before: exponential retries within seconds, all refused."""
    import poetry_gitlab_release.gitlab.client as client_module

    clock = Clock()
    standin.set_application_limit("group_projects_api", 1, clock=clock.time)
    original = client_module.RATE_LIMIT_WAITS
    client_module.RATE_LIMIT_WAITS = ()  # type: ignore[assignment]
    try:
        with pytest.raises(ApiError, match="429: This endpoint has been requested too many"):
            _fetch(standin, clock, [])
    finally:
        client_module.RATE_LIMIT_WAITS = original
        standin.set_application_limit("group_projects_api", None)
    assert sum(clock.slept) < 10
