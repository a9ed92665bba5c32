"""Render a `--lock` report: a table, JSON, or JUnit XML, one row per locked file."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from poetry_gitlab_release.verify.render import (
    JUnitCase,
    aligned_table,
    json_document,
    junit_document,
)

if TYPE_CHECKING:
    from poetry_gitlab_release.verify.lock_report import LockReport, LockRow

TABLE_COLUMNS = ("package", "version", "file", "source", "check", "signer", "pin", "verdict")


def _row_cells(row: LockRow) -> tuple[str, ...]:
    signer = row.identity or (row.publishers[0].describe() if row.publishers else None)
    return (
        row.package,
        row.version,
        row.file,
        row.source,
        row.check,
        signer or "-",
        row.pin or "-",
        row.status.value,
    )


def render_table(report: LockReport, style: bool = True) -> list[str]:

    tags: list[str | None] = []
    for row in report.rows:
        if not style:
            tags.append(None)
        elif not row.ok:
            tags.append("error")
        else:
            tags.append("info" if row.status.value == "verified" else "comment")
    return aligned_table(TABLE_COLUMNS, [_row_cells(row) for row in report.rows], tags)


def row_dict(row: LockRow) -> dict[str, Any]:
    return {
        "package": row.package,
        "version": row.version,
        "file": row.file,
        "source": row.source,
        "check": row.check,
        "verdict": row.status.value,
        "ok": row.ok,
        "reason": row.reason,
        "sha256": row.sha256,
        "identity": row.identity,
        "project_id": row.project_id,
        "log_index": row.log_index,
        "pin": row.pin,
        "claims": None if row.claims is None else row.claims.as_dict(),
        "publishers": [publisher.to_table() for publisher in row.publishers],
    }


def render_json(report: LockReport) -> str:
    head = {
        "lock_file": report.lock_file,
        "pins_file": report.pins_file,
        "pins_written": report.pins_written,
        "installed": list(report.installed),
    }
    files = [row_dict(row) for row in report.rows]
    return json_document(head, ok=report.ok, counts=report.counts, files=files)


def render_junit(report: LockReport) -> str:
    """One testcase per locked file; failures are files that should verify and did not,
    skipped ones those with no provenance or no signature scheme to check."""
    cases = [
        JUnitCase(
            classname=f"gitlab-verify.{row.package}",
            name=row.file,
            details="\n".join(f"{k}: {v}" for k, v in row_dict(row).items() if v not in (None, [])),
            failure=not row.ok,
            skipped=row.ok and row.status.value != "verified",
            kind=row.status.value,
            message=(row.reason or "") if not row.ok else f"{row.status.value}: {row.reason}",
        )
        for row in report.rows
    ]
    return junit_document(f"gitlab-verify --lock {report.lock_file}", cases)
