from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from poetry_gitlab_release.errors import AuthenticationError, NetworkError
from poetry_gitlab_release.pipelines.model import PipelineInfo, ProjectRow, Snapshot
from poetry_gitlab_release.pipelines.table import Painter
from poetry_gitlab_release.pipelines.watch import (
    CLEAR_BELOW,
    CLEAR_SCREEN,
    HIDE_CURSOR,
    HOME,
    SHOW_CURSOR,
    Screen,
    effective_interval,
    frame,
    watch,
)

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)


def snap(status: str, *, at: datetime = T0, rows: int = 2, requests: int = 1) -> Snapshot:
    pipeline = PipelineInfo(1, 1, status, "main", "a" * 40, at, at, 10, None)
    projects = tuple(
        ProjectRow(i, f"acme/p{i}", f"p{i}", False, None, pipeline if i == 0 else None)
        for i in range(rows)
    )
    return Snapshot("https://g", "acme", 1, at, None, "graphql", requests, projects)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def test_effective_interval_keeps_within_the_request_budget() -> None:
    assert effective_interval(10, 5) == 10  # 500 projects over GraphQL
    assert effective_interval(10, 50) == 15  # 5,000 projects: 200 requests a minute at most
    assert effective_interval(10, 1505) == 452  # the REST fallback for 500 projects
    assert effective_interval(0.5, 1) == 2  # never busier than every 2 s


def test_tty_screen_redraws_in_place_and_restores_the_cursor() -> None:
    written: list[str] = []
    screen = Screen(write=written.append, tty=True)
    screen.draw(["a", "b"])
    screen.draw(["c"])
    screen.close()
    assert written[0] == HIDE_CURSOR + HOME + CLEAR_SCREEN + "a\x1b[K\nb\x1b[K\n" + CLEAR_BELOW
    assert written[1] == HOME + "c\x1b[K\n" + CLEAR_BELOW
    assert written[2] == SHOW_CURSOR


def test_pipe_screen_prints_frames_one_after_another_without_escapes() -> None:
    written: list[str] = []
    screen = Screen(write=written.append, tty=False)
    screen.draw(["a"])
    screen.close()
    assert written == ["a\n\n"]


def test_watch_highlights_changes_and_stops_cleanly_on_ctrl_c() -> None:
    snapshots = iter([snap("running"), snap("success", at=T0 + timedelta(seconds=10))])
    written: list[str] = []
    sleeps: list[float] = []

    def fetch() -> Snapshot:
        try:
            return next(snapshots)
        except StopIteration:
            raise KeyboardInterrupt from None

    code = watch(
        fetch,
        Screen(write=written.append, tty=True),
        painter=Painter(colour=False),
        stages_width=5,
        interval=10,
        sleep=sleeps.append,
        clock=Clock(),
    )
    assert code == 0
    assert sleeps == [10, 10]
    first, second = written[0], written[1]
    assert "refreshed " in first and "every 10s" in first and "Ctrl-C quits" in first
    assert "▶" not in first
    changed = [line for line in second.split("\n") if line.startswith("▶ ")]
    assert len(changed) == 1 and "p0" in changed[0] and "success" in changed[0]
    assert written[-2:] == [SHOW_CURSOR, "Stopped.\n"]


def test_a_failed_refresh_keeps_the_last_data_and_says_so() -> None:
    calls: list[Snapshot | Exception] = [snap("running"), NetworkError("cannot connect to g")]

    def fetch() -> Snapshot:
        item = calls.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    written: list[str] = []
    watch(
        fetch,
        Screen(write=written.append, tty=False),
        painter=Painter(colour=False),
        stages_width=5,
        interval=10,
        sleep=lambda seconds: None,
        clock=Clock(),
        max_refreshes=2,
    )
    assert "refresh failed at" in written[1] and "cannot connect to g" in written[1]
    assert "p0" in written[1]


def test_auth_errors_end_the_watch() -> None:
    def fetch() -> Snapshot:
        raise AuthenticationError("refused", status=401)

    with pytest.raises(AuthenticationError):
        watch(
            fetch,
            Screen(write=lambda text: None, tty=False),
            painter=Painter(colour=False),
            stages_width=5,
            interval=10,
            sleep=lambda seconds: None,
            clock=Clock(),
        )


def test_frame_fits_the_terminal_height() -> None:
    big = snap("failed", rows=50)
    lines = frame(
        big,
        painter=Painter(colour=False),
        stages_width=5,
        changed=frozenset(),
        interval=10,
        height=12,
    )
    assert len(lines) <= 11
    assert lines[-1].startswith("50 projects")
    assert "more (narrow with --exclude or --failed-only)" in lines[-2]
