"""The compact dashboard: one line per project, one coloured cell per stage, a summary line.

    PROJECT          STATUS   REF    AGE  DURATION  STAGES
    api/service-a    failed   main   5m   3m12s     ✔ build   ✘ test    ○ deploy  ✘ test:unit
    web/site         success  main   2h   45s       ✔ build   ✔ test
    tools/old        -        (no pipeline)
    3 projects: 1 failed, 1 success, 1 without pipeline

Colours follow GitLab's meaning (see `Tone`); with colour off, the glyph in front of every
stage cell and the status column still say everything. Text that comes from GitLab (refs, job
names, log lines) is stripped of control characters before it reaches the terminal.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from poetry_gitlab_release.pipelines.model import (
    NO_PIPELINE,
    PipelineInfo,
    ProjectRow,
    Snapshot,
    StageStatus,
    Tone,
    tone_of,
)

_ANSI = {
    Tone.SUCCESS: "32",  # green
    Tone.FAILED: "31",  # red
    Tone.RUNNING: "34",  # blue
    Tone.WAITING: "33",  # yellow
    Tone.INACTIVE: "90",  # grey
    Tone.MANUAL: "35",  # purple
    Tone.NONE: "2",  # dim
}
BOLD = "1"
DIM = "2"
REVERSE = "7"

_UNICODE_GLYPHS = {
    "success": "✔",
    "failed": "✘",
    "running": "●",
    "canceling": "●",
    "canceled": "Ø",
    "skipped": "»",
    "manual": "■",
    "scheduled": "◷",
}
_ASCII_GLYPHS = {
    "success": "+",
    "failed": "x",
    "running": ">",
    "canceling": ">",
    "canceled": "/",
    "skipped": "-",
    "manual": "#",
    "scheduled": "@",
}
_SHORT_STATUS = {
    "waiting_for_resource": "waiting",
    "waiting_for_callback": "waiting",
}
_CONTROL = re.compile(
    r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC (window title, hyperlinks)
    r"|\x1b\[[0-9;?]*[ -/]*[@-~]"  # CSI (colours, cursor movement)
    r"|\x1b[@-_]"  # other escapes
    r"|[\x00-\x08\x0a-\x1f\x7f-\x9f]"  # C0/C1 controls, newlines included (tab kept)
)

MAX_PATH_WIDTH = 48
MAX_REF_WIDTH = 24


def clean(text: str) -> str:
    """Drop escape sequences and control characters (GitLab data must not drive the terminal)."""
    return _CONTROL.sub("", text).replace("\t", " ")


def supports_unicode(encoding: str | None) -> bool:
    try:
        "✔✘●Ø»■◷○…".encode(encoding or "ascii")
    except (LookupError, UnicodeEncodeError):
        return False
    return True


@dataclass(frozen=True)
class Painter:
    """Turns text plus a style into ANSI (or plain text when colour is off)."""

    colour: bool
    unicode: bool = True

    def paint(self, text: str, *codes: str) -> str:
        if not self.colour or not codes or not text:
            return text
        return f"\x1b[{';'.join(codes)}m{text}\x1b[0m"

    def status(self, status: str | None, text: str | None = None, *extra: str) -> str:
        shown = text if text is not None else status or "-"
        return self.paint(shown, _ANSI[tone_of(status)], *extra)

    def glyph(self, status: str) -> str:
        glyphs = _UNICODE_GLYPHS if self.unicode else _ASCII_GLYPHS
        default = "○" if self.unicode else "."
        return glyphs.get(status, default)

    @property
    def ellipsis(self) -> str:
        return "…" if self.unicode else "~"


def format_age(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "-"
    seconds = max(0, int((now - moment).total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 48 * 3600:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def format_duration(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"


def _fit(text: str, width: int, ellipsis: str) -> str:
    if len(text) <= width:
        return text
    return text[: max(0, width - len(ellipsis))] + ellipsis


def stage_cell(stage: StageStatus, width: int, painter: Painter) -> str:
    """`✔ build   `: glyph, name cut to `width`, padded so that cells line up."""
    name = clean(stage.name)[:width]
    cell = painter.status(stage.status, f"{painter.glyph(stage.status)} {name}")
    return cell + " " * (width - len(name))


def _failed_jobs_text(pipeline: PipelineInfo, painter: Painter) -> str:
    blocking = [clean(job.name) for job in pipeline.failed_jobs if not job.allow_failure]
    allowed = [clean(job.name) for job in pipeline.failed_jobs if job.allow_failure]
    parts = []
    if blocking:
        parts.append(painter.status("failed", f"{painter.glyph('failed')} " + ", ".join(blocking)))
    if allowed:
        parts.append(painter.status("pending", "allowed to fail: " + ", ".join(allowed)))
    return "  ".join(parts)


@dataclass(frozen=True)
class TableLayout:
    path_width: int
    status_width: int
    ref_width: int
    stages_width: int


def layout_for(rows: Sequence[ProjectRow], group_path: str, stages_width: int) -> TableLayout:
    paths = [len(row.relative_path(group_path)) for row in rows] or [7]
    statuses = [len(_short(row.status)) for row in rows if row.pipeline is not None] or [6]
    refs = [len(clean(row.pipeline.ref)) for row in rows if row.pipeline is not None] or [3]
    return TableLayout(
        path_width=min(MAX_PATH_WIDTH, max(7, *paths)),
        status_width=max(6, *statuses),
        ref_width=min(MAX_REF_WIDTH, max(3, *refs)),
        stages_width=stages_width,
    )


def _short(status: str | None) -> str:
    if status is None:
        return "-"
    return _SHORT_STATUS.get(status, status)


def render_header(layout: TableLayout, painter: Painter, marker: bool = False) -> str:
    cells = [
        "PROJECT".ljust(layout.path_width),
        "STATUS".ljust(layout.status_width),
        "REF".ljust(layout.ref_width),
        "AGE ",
        "DURATION",
        "STAGES",
    ]
    return painter.paint(("  " if marker else "") + "  ".join(cells), BOLD)


def render_row(
    row: ProjectRow,
    *,
    group_path: str,
    now: datetime,
    layout: TableLayout,
    painter: Painter,
    changed: bool | None = None,
) -> str:
    """One project's line. `changed` (watch mode only) adds a marker column and highlights."""
    path = _fit(row.relative_path(group_path), layout.path_width, painter.ellipsis)
    prefix = ""
    if changed is not None:
        prefix = painter.paint("▶ " if painter.unicode else "* ", BOLD) if changed else "  "
    pipeline = row.pipeline
    if pipeline is None:
        text = f"{path.ljust(layout.path_width)}  {'-'.ljust(layout.status_width)}  (no pipeline)"
        return prefix + painter.paint(text, DIM)
    extra = (BOLD, REVERSE) if changed else ()
    status = painter.status(
        pipeline.status, _short(pipeline.status).ljust(layout.status_width), *extra
    )
    ref = _fit(clean(pipeline.ref), layout.ref_width, painter.ellipsis).ljust(layout.ref_width)
    cells = [
        path.ljust(layout.path_width),
        status,
        ref,
        format_age(pipeline.created_at, now).ljust(4),
        format_duration(pipeline.duration).ljust(8),
    ]
    stages = " ".join(stage_cell(stage, layout.stages_width, painter) for stage in pipeline.stages)
    if stages:
        cells.append(stages)
    failed = _failed_jobs_text(pipeline, painter)
    if failed:
        cells.append(failed)
    return prefix + "  ".join(cells).rstrip()


def render_summary(snapshot: Snapshot, painter: Painter) -> str:
    total = len(snapshot.rows)
    parts = []
    for status, count in snapshot.summary().items():
        if status == NO_PIPELINE:
            parts.append(painter.paint(f"{count} without pipeline", DIM))
        else:
            parts.append(painter.status(status, f"{count} {status}"))
    noun = "project" if total == 1 else "projects"
    head = f"{total} {noun}" + (": " if parts else "")
    return head + ", ".join(parts)


def render_logs(snapshot: Snapshot, painter: Painter) -> list[str]:
    """The tail of each failed job's log (only rows whose jobs carry a `log_tail`)."""
    lines: list[str] = []
    for row in snapshot.rows:
        if row.pipeline is None:
            continue
        for job in row.pipeline.failed_jobs:
            if job.log_tail is None:
                continue
            title = (
                f"{row.full_path}: {clean(job.name)} ({clean(job.stage)}), last lines of the log"
            )
            rule = "──" if painter.unicode else "--"
            lines.append("")
            lines.append(painter.status("failed", f"{rule} {title}"))
            if not job.log_tail:
                lines.append(painter.paint("   (empty log)", DIM))
            lines.extend("   " + clean(line) for line in job.log_tail)
    return lines


def render_rows(
    snapshot: Snapshot,
    painter: Painter,
    *,
    stages_width: int,
    changed: Collection[str] | None = None,
    header: bool = True,
) -> list[str]:
    """The header and one line per project. `changed` switches on watch markers."""
    layout = layout_for(snapshot.rows, snapshot.group_path, stages_width)
    lines = []
    if header and snapshot.rows:
        lines.append(render_header(layout, painter, marker=changed is not None))
    for row in snapshot.rows:
        lines.append(
            render_row(
                row,
                group_path=snapshot.group_path,
                now=snapshot.fetched_at,
                layout=layout,
                painter=painter,
                changed=None if changed is None else row.full_path in changed,
            )
        )
    return lines


def render_table(
    snapshot: Snapshot,
    painter: Painter,
    *,
    stages_width: int,
    changed: Collection[str] | None = None,
    header: bool = True,
) -> list[str]:
    """The dashboard as lines (no trailing newlines). `changed` switches on watch markers."""
    lines = render_rows(
        snapshot, painter, stages_width=stages_width, changed=changed, header=header
    )
    lines.append(render_summary(snapshot, painter))
    lines.extend(render_logs(snapshot, painter))
    return lines
