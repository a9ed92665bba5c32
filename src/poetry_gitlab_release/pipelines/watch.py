"""`--watch`: refresh, diff, redraw in place until Ctrl-C.

On a terminal every frame is drawn from the top-left corner over the previous one (each line
cleared to its end, the rest of the screen cleared below), with the cursor hidden while
watching; the last frame stays on screen when the watch ends. The first line shows the time
of the last refresh, the effective interval and the request cost; rows whose pipeline, status
or stages changed since the previous refresh carry a marker and a highlighted status. When
the output is not a terminal, frames are printed one after another without escape sequences.

Rate budget: a refresh never starts sooner than `requests * 60 / MAX_REQUESTS_PER_MINUTE`
seconds after the previous one (200 per minute: a tenth of GitLab.com's 2,000 authenticated
requests per minute), whatever `--interval` says. With GraphQL, 500 projects cost 5 requests,
so the 10 s default is far inside the budget; 5,000 projects (50 requests) wait 15 s.

Ctrl-C ends the watch cleanly: the cursor comes back, the exit code is 0 (stopping is how a
watch is meant to end). Failures of a single refresh (network, 5xx after retries) are shown on
the screen and the watch goes on with the last good data; refused tokens and unknown groups end
it with their usual exit code.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from poetry_gitlab_release.errors import ApiError as _ApiError
from poetry_gitlab_release.errors import AuthenticationError, NetworkError, NotFoundError
from poetry_gitlab_release.pipelines.model import Snapshot
from poetry_gitlab_release.pipelines.table import (
    BOLD,
    DIM,
    Painter,
    render_logs,
    render_rows,
    render_summary,
)

MAX_REQUESTS_PER_MINUTE = 200
MIN_INTERVAL = 2.0

HIDE_CURSOR = "\x1b[?25l"
SHOW_CURSOR = "\x1b[?25h"
HOME = "\x1b[H"
CLEAR_SCREEN = "\x1b[2J"
CLEAR_LINE_END = "\x1b[K"
CLEAR_BELOW = "\x1b[J"


def effective_interval(interval: float, requests: int) -> float:
    """`interval`, stretched so that watching stays within MAX_REQUESTS_PER_MINUTE."""
    floor = requests * 60.0 / MAX_REQUESTS_PER_MINUTE
    return max(interval, MIN_INTERVAL, math.ceil(floor))


@dataclass
class Screen:
    """Writes frames; on a terminal, over the previous one."""

    write: Callable[[str], None]
    tty: bool
    _drawn: bool = False

    def draw(self, lines: Sequence[str]) -> None:
        if not self.tty:
            self.write("\n".join(lines) + "\n\n")
            return
        start = HOME if self._drawn else HIDE_CURSOR + HOME + CLEAR_SCREEN
        self._drawn = True
        self.write(start + "".join(line + CLEAR_LINE_END + "\n" for line in lines) + CLEAR_BELOW)

    def close(self) -> None:
        if self.tty and self._drawn:
            self.write(SHOW_CURSOR)


def frame(
    snapshot: Snapshot,
    *,
    painter: Painter,
    stages_width: int,
    changed: frozenset[str],
    interval: float,
    height: int | None,
    error: str | None = None,
    failed_at: datetime | None = None,
) -> list[str]:
    """One screen: status line, table with change markers, summary, logs; cut to `height`."""
    ref = snapshot.ref or "any ref"
    refreshed = snapshot.fetched_at.astimezone().strftime("%H:%M:%S")
    status = (
        f"{snapshot.group_path} ({ref})  refreshed {refreshed}  every {interval:g}s  "
        f"{snapshot.requests} requests via {snapshot.api}  Ctrl-C quits"
    )
    lines = [painter.paint(status, BOLD)]
    if error:
        when = f" at {failed_at.astimezone().strftime('%H:%M:%S')}" if failed_at else ""
        lines.append(
            painter.status("failed", f"refresh failed{when}, showing the last data: {error}")
        )
    body = render_rows(snapshot, painter, stages_width=stages_width, changed=changed)
    tail = [render_summary(snapshot, painter)]
    logs = render_logs(snapshot, painter)
    if height is not None:
        room = max(1, height - 1 - len(lines) - len(tail))  # keep the cursor's line free
        if len(body) > room:
            hidden = len(body) - (room - 1)
            body = [
                *body[: room - 1],
                painter.paint(f"... {hidden} more (narrow with --exclude or --failed-only)", DIM),
            ]
        logs = logs[: max(0, room - len(body))]
    return lines + body + tail + logs


def watch(
    fetch: Callable[[], Snapshot],
    screen: Screen,
    *,
    painter: Painter,
    stages_width: int,
    interval: float,
    sleep: Callable[[float], None],
    clock: Callable[[], datetime],
    height: Callable[[], int | None] = lambda: None,
    on_snapshot: Callable[[Snapshot], None] | None = None,
    max_refreshes: int | None = None,
) -> int:
    """Loop until Ctrl-C (or `max_refreshes`, for tests); returns the exit code (0)."""
    previous: Snapshot | None = None
    refreshes = 0
    try:
        while max_refreshes is None or refreshes < max_refreshes:
            error = None
            try:
                snapshot = fetch()
            except (AuthenticationError, NotFoundError):
                raise
            except (NetworkError, _ApiError) as exc:
                if previous is None:
                    raise
                snapshot, error = previous, str(exc)
            refreshes += 1
            changed = snapshot.changed_since(previous) if error is None else frozenset()
            wait = effective_interval(interval, snapshot.requests)
            if on_snapshot is not None and error is None:
                on_snapshot(snapshot)
            screen.draw(
                frame(
                    snapshot,
                    painter=painter,
                    stages_width=stages_width,
                    changed=changed,
                    interval=wait,
                    height=height(),
                    error=error,
                    failed_at=clock() if error else None,
                )
            )
            previous = snapshot
            if max_refreshes is None or refreshes < max_refreshes:
                sleep(wait)
    except KeyboardInterrupt:
        screen.close()
        screen.write("Stopped.\n")
        return 0
    screen.close()
    return 0
