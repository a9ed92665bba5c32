from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import datetime, timedelta, timezone

from poetry_gitlab_release.pipelines.json_output import SCHEMA, snapshot_document
from poetry_gitlab_release.pipelines.model import (
    FailedJob,
    PipelineInfo,
    ProjectRow,
    Snapshot,
    StageStatus,
)
from poetry_gitlab_release.pipelines.openmetrics import render_openmetrics
from poetry_gitlab_release.pipelines.table import (
    Painter,
    clean,
    format_age,
    format_duration,
    render_table,
    supports_unicode,
)

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def make_snapshot() -> Snapshot:
    failed = PipelineInfo(
        id=501,
        iid=12,
        status="failed",
        ref="main",
        sha="b" * 40,
        created_at=NOW - timedelta(minutes=5),
        updated_at=NOW - timedelta(minutes=1),
        duration=192,
        web_url="https://gitlab.example/acme/api/service-a/-/pipelines/501",
        stages=(
            StageStatus("build", "success"),
            StageStatus("integration-tests", "failed"),
            StageStatus("deploy", "skipped"),
        ),
        failed_jobs=(
            FailedJob("test:unit", "integration-tests", 9001),
            FailedJob("lint", "integration-tests", 9002, allow_failure=True),
        ),
        source="push",
    )
    running = replace(
        failed,
        id=502,
        status="running",
        ref="feature/x",
        duration=None,
        created_at=NOW - timedelta(hours=3),
        stages=(StageStatus("build", "success"), StageStatus("test", "running")),
        failed_jobs=(),
    )
    return Snapshot(
        host="https://gitlab.example",
        group_path="acme",
        group_id=10,
        fetched_at=NOW,
        ref=None,
        api="graphql",
        requests=2,
        rows=(
            ProjectRow(1, "acme/api/service-a", "Service A", False, None, failed),
            ProjectRow(2, "acme/tools/empty", "empty", False, None, None),
            ProjectRow(3, "acme/web", "web", False, None, running),
        ),
    )


def test_plain_table_has_one_line_per_project_stage_cells_and_summary() -> None:
    lines = render_table(make_snapshot(), Painter(colour=False), stages_width=5)
    assert not any(ANSI.search(line) for line in lines)
    header, service, empty, web, summary = lines
    assert header.split() == ["PROJECT", "STATUS", "REF", "AGE", "DURATION", "STAGES"]
    assert service.split()[:5] == ["api/service-a", "failed", "main", "5m", "3m12s"]
    # stage cells in stage order, names cut to --stages-width, glyph first
    assert "✔ build ✘ integ » deplo" in service
    assert service.endswith("✘ test:unit  allowed to fail: lint")
    assert empty.split()[:2] == ["tools/empty", "-"] and "(no pipeline)" in empty
    assert web.split()[:5] == ["web", "running", "feature/x", "3h", "-"]
    assert summary == "3 projects: 1 failed, 1 running, 1 without pipeline"


def test_coloured_table_uses_gitlab_colours_and_dims_projects_without_pipeline() -> None:
    lines = render_table(make_snapshot(), Painter(colour=True), stages_width=8)
    service, empty = lines[1], lines[2]
    assert "\x1b[32m✔ build\x1b[0m   " in service  # success green
    assert "\x1b[31m✘ integrat\x1b[0m" in service  # failed red
    assert "\x1b[90m» deploy\x1b[0m  " in service  # skipped grey
    assert empty.startswith("\x1b[2m") and empty.endswith("\x1b[0m")  # dim
    assert "\x1b[34m● test" in lines[3]  # running blue
    assert [ANSI.sub("", line) for line in lines] == render_table(
        make_snapshot(), Painter(colour=False), stages_width=8
    )


def test_ascii_glyphs_when_the_terminal_cannot_encode_unicode() -> None:
    assert supports_unicode("utf-8") and not supports_unicode("ascii")
    service = render_table(make_snapshot(), Painter(colour=False, unicode=False), stages_width=5)[1]
    assert "+ build x integ - deplo" in service
    service.encode("ascii")


def test_watch_markers_highlight_changed_rows() -> None:
    lines = render_table(
        make_snapshot(), Painter(colour=True), stages_width=5, changed={"acme/web"}
    )
    assert lines[0].startswith("\x1b[1m  PROJECT")
    assert lines[1].startswith("  api/service-a")
    assert lines[3].startswith("\x1b[1m▶ \x1b[0m")
    assert "\x1b[34;1;7mrunning" in lines[3]  # status reversed and bold


def test_text_from_gitlab_cannot_drive_the_terminal() -> None:
    assert clean("evil\x1b[2J\x1b]0;title\x07name\r\n") == "evilname"
    snap = make_snapshot()
    first = snap.rows[0]
    assert first.pipeline is not None
    jobs = (FailedJob("x\x1b[31mjob", "t"),)
    hostile = replace(first, pipeline=replace(first.pipeline, failed_jobs=jobs))
    line = render_table(snap.with_rows([hostile]), Painter(colour=False), stages_width=5)[1]
    assert "\x1b" not in line and "xjob" in line


def test_age_and_duration_formats() -> None:
    assert format_age(NOW - timedelta(seconds=42), NOW) == "42s"
    assert format_age(NOW - timedelta(hours=47), NOW) == "47h"
    assert format_age(NOW - timedelta(days=3), NOW) == "3d"
    assert format_age(None, NOW) == "-"
    assert [format_duration(s) for s in (None, 5, 192, 3725)] == ["-", "5s", "3m12s", "1h02m"]


def test_logs_are_printed_under_the_table() -> None:
    snap = make_snapshot()
    first = snap.rows[0]
    assert first.pipeline is not None
    jobs = (replace(first.pipeline.failed_jobs[0], log_tail=("step 1", "\x1b[31mboom\x1b[0m")),)
    with_logs = replace(first, pipeline=replace(first.pipeline, failed_jobs=jobs))
    lines = render_table(snap.with_rows([with_logs]), Painter(colour=False), stages_width=5)
    assert lines[-3:] == [
        "── acme/api/service-a: test:unit (integration-tests), last lines of the log",
        "   step 1",
        "   boom",
    ]


def test_json_document_is_the_documented_schema() -> None:
    document = snapshot_document(make_snapshot())
    json.dumps(document)  # serializable
    assert document["schema"] == SCHEMA and document["schema_version"] == 1
    assert set(document) == {
        "schema",
        "schema_version",
        "host",
        "group",
        "ref",
        "fetched_at",
        "api",
        "requests",
        "summary",
        "projects",
    }
    assert document["fetched_at"] == "2026-03-02T12:00:00Z"
    assert document["group"] == {"id": 10, "full_path": "acme"}
    assert document["summary"] == {
        "projects": 3,
        "by_status": {"failed": 1, "running": 1, "none": 1},
        "exit_code": 1,
    }
    service = document["projects"][0]
    assert set(service) == {"id", "full_path", "name", "archived", "web_url", "pipeline"}
    pipeline = service["pipeline"]
    assert pipeline["duration_seconds"] == 192
    assert pipeline["created_at"] == "2026-03-02T11:55:00Z"
    assert pipeline["stages"][1] == {"name": "integration-tests", "status": "failed"}
    assert pipeline["failed_jobs"][1] == {
        "id": 9002,
        "name": "lint",
        "stage": "integration-tests",
        "allow_failure": True,
    }
    assert document["projects"][1]["pipeline"] is None
    with_logs = snapshot_document(make_snapshot(), with_logs=True)
    assert with_logs["projects"][0]["pipeline"]["failed_jobs"][0]["log_tail"] is None


def test_openmetrics_uses_the_exporters_names_and_ends_with_eof() -> None:
    text = render_openmetrics(make_snapshot())
    lines = text.splitlines()
    assert lines[-1] == "# EOF"
    assert "# TYPE gitlab_ci_pipeline_status gauge" in lines
    assert (
        'gitlab_ci_pipeline_status{project="acme/api/service-a",ref="main",status="failed"} 1'
        in lines
    )
    assert (
        'gitlab_ci_pipeline_status{project="acme/api/service-a",ref="main",status="success"} 0'
        in lines
    )
    assert (
        'gitlab_ci_pipeline_duration_seconds{project="acme/api/service-a",ref="main"} 192' in lines
    )
    assert 'gitlab_ci_pipeline_id{project="acme/web",ref="feature/x"} 502' in lines
    assert not any(
        line.startswith('gitlab_ci_pipeline_duration_seconds{project="acme/web"') for line in lines
    )
    assert (
        'gitlab_ci_pipeline_job_status{project="acme/api/service-a",ref="main",'
        'stage="integration-tests",job_name="test:unit",status="failed"} 1'
    ) in lines
    assert 'gitlab_pipelines_projects_without_pipeline{group="acme"} 1' in lines
    assert 'gitlab_pipelines_refresh_requests{group="acme",api="graphql"} 2' in lines
    # every sample belongs to a declared gauge; a status gauge per known status and project
    declared = {line.split()[2] for line in lines if line.startswith("# TYPE")}
    samples = [line for line in lines if not line.startswith("#")]
    assert all(sample.split("{")[0] in declared for sample in samples)
    assert sum(1 for s in samples if s.startswith("gitlab_ci_pipeline_status{")) == 2 * 13


def test_openmetrics_escapes_label_values() -> None:
    snap = make_snapshot()
    first = snap.rows[0]
    assert first.pipeline is not None
    odd = replace(first, pipeline=replace(first.pipeline, ref='a"b\\c\nd'))
    text = render_openmetrics(snap.with_rows([odd]))
    assert 'ref="a\\"b\\\\c\\nd"' in text
