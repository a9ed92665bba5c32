from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from poetry_gitlab_release.errors import UsageError
from poetry_gitlab_release.pipelines.filters import (
    RefKind,
    apply_filters,
    is_excluded,
    parse_excludes,
    parse_ref,
)
from poetry_gitlab_release.pipelines.model import (
    FailedJob,
    PipelineInfo,
    ProjectRow,
    Snapshot,
    StageStatus,
    Tone,
    gate_exit_code,
    normalize_status,
    tone_of,
)

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)


def pipeline(
    status: str, *, pid: int = 1, stages: tuple[tuple[str, str], ...] = ()
) -> PipelineInfo:
    return PipelineInfo(
        id=pid,
        iid=pid,
        status=status,
        ref="main",
        sha="a" * 40,
        created_at=NOW - timedelta(minutes=5),
        updated_at=NOW - timedelta(minutes=1),
        duration=192,
        web_url=None,
        stages=tuple(StageStatus(name, st) for name, st in stages),
        failed_jobs=(FailedJob("test:unit", "test", 7),) if status == "failed" else (),
    )


def row(path: str, status: str | None, *, archived: bool = False, pid: int = 1) -> ProjectRow:
    return ProjectRow(
        id=abs(hash(path)) % 10_000,
        full_path=path,
        name=path.rsplit("/", 1)[-1],
        archived=archived,
        web_url=None,
        pipeline=None if status is None else pipeline(status, pid=pid),
    )


def snapshot(*rows: ProjectRow) -> Snapshot:
    return Snapshot(
        host="https://gitlab.example",
        group_path="acme",
        group_id=10,
        fetched_at=NOW,
        ref=None,
        api="graphql",
        requests=1,
        rows=rows,
    )


def test_summary_counts_statuses_in_display_order_with_projects_without_pipeline_last() -> None:
    snap = snapshot(
        row("acme/a", "success"),
        row("acme/b", None),
        row("acme/c", "failed"),
        row("acme/d", "success"),
        row("acme/e", "running"),
    )
    assert snap.summary() == {"failed": 1, "running": 1, "success": 2, "none": 1}
    assert list(snap.summary()) == ["failed", "running", "success", "none"]


@pytest.mark.parametrize(
    ("statuses", "code"),
    [
        (["success", "success", None], 0),
        ([None], 0),
        ([], 0),
        (["success", "failed", "running"], 1),
        (["success", "running"], 3),
        (["success", "canceled"], 3),
        (["manual"], 3),
    ],
)
def test_gate_exit_code(statuses: list[str | None], code: int) -> None:
    rows = [row(f"acme/p{i}", status) for i, status in enumerate(statuses)]
    assert gate_exit_code(snapshot(*rows)) == code


def test_changed_since_reports_new_pipelines_status_changes_and_new_rows() -> None:
    before = snapshot(
        row("acme/a", "running", pid=1), row("acme/b", "success"), row("acme/c", None)
    )
    after = snapshot(
        row("acme/a", "success", pid=1),
        row("acme/b", "success"),
        row("acme/c", "pending", pid=9),
        row("acme/d", None),
    )
    assert after.changed_since(before) == {"acme/a", "acme/c", "acme/d"}
    assert after.changed_since(None) == frozenset()


def test_tones_follow_gitlab_colours() -> None:
    assert tone_of("success") is Tone.SUCCESS
    assert tone_of("failed") is Tone.FAILED
    assert tone_of("running") is Tone.RUNNING
    for waiting in ("pending", "created", "waiting_for_resource", "preparing"):
        assert tone_of(waiting) is Tone.WAITING
    assert tone_of("canceled") is tone_of("skipped") is Tone.INACTIVE
    assert tone_of("manual") is Tone.MANUAL
    assert tone_of(None) is Tone.NONE
    assert normalize_status("WAITING_FOR_RESOURCE") == "waiting_for_resource"


def test_parse_ref() -> None:
    assert parse_ref(None).kind is RefKind.ANY
    assert parse_ref("").label is None
    assert parse_ref("default").kind is RefKind.DEFAULT
    named = parse_ref("release/1.x")
    assert (named.kind, named.name, named.label) == (RefKind.NAMED, "release/1.x", "release/1.x")
    assert parse_ref("refs/heads/default").name == "default"
    with pytest.raises(UsageError, match="invalid --ref"):
        parse_ref("bad ref")


def test_parse_excludes_splits_commas_and_repeats() -> None:
    assert parse_excludes(["a, b", "", "c/*/", " "]) == ("a", "b", "c/*")


@pytest.mark.parametrize(
    ("pattern", "path", "excluded"),
    [
        ("service-a", "acme/api/service-a", True),  # name / last segment
        ("api/service-a", "acme/api/service-a", True),  # path inside the group
        ("acme/api/service-a", "acme/api/service-a", True),  # full path
        ("SERVICE-*", "acme/api/service-a", True),  # glob, case-insensitive
        ("api", "acme/api/service-a", True),  # a subgroup hides what is below
        ("acme/api", "acme/api/deep/service-b", True),
        ("service", "acme/api/service-a", False),
        ("web", "acme/api/service-a", False),
    ],
)
def test_is_excluded(pattern: str, path: str, excluded: bool) -> None:
    assert is_excluded(row(path, "success"), "acme", (pattern,)) is excluded


def test_apply_filters_archived_excluded_failed_only_and_sorting() -> None:
    snap = snapshot(
        row("acme/zeta", "failed"),
        row("acme/Alpha", "success"),
        row("acme/old", "failed", archived=True),
        row("acme/legacy-tool", "failed"),
    )
    shown = apply_filters(snap, excludes=("legacy-*",))
    assert [r.full_path for r in shown.rows] == ["acme/Alpha", "acme/zeta"]
    with_archived = apply_filters(snap, include_archived=True, failed_only=True)
    assert [r.full_path for r in with_archived.rows] == [
        "acme/legacy-tool",
        "acme/old",
        "acme/zeta",
    ]
