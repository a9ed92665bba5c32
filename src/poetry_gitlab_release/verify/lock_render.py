"""Render a `--lock` report: a table, JSON, or JUnit XML, one row per locked file."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from xml.etree import ElementTree as ET

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
    from poetry_gitlab_release.verify.render import aligned_table

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
    document = {
        "lock_file": report.lock_file,
        "ok": report.ok,
        "counts": report.counts,
        "pins_file": report.pins_file,
        "pins_written": report.pins_written,
        "installed": list(report.installed),
        "files": [row_dict(row) for row in report.rows],
    }
    return json.dumps(document, indent=2)


def render_junit(report: LockReport) -> str:
    """One testcase per locked file; failures are files that should verify and did not."""
    failures = sum(1 for row in report.rows if not row.ok)
    skipped = sum(1 for row in report.rows if row.ok and row.status.value != "verified")
    suite = ET.Element(
        "testsuite",
        {
            "name": f"gitlab-verify --lock {report.lock_file}",
            "tests": str(len(report.rows)),
            "failures": str(failures),
            "errors": "0",
            "skipped": str(skipped),
        },
    )
    for row in report.rows:
        case = ET.SubElement(
            suite,
            "testcase",
            {"classname": f"gitlab-verify.{row.package}", "name": row.file},
        )
        details = "\n".join(f"{k}: {v}" for k, v in row_dict(row).items() if v not in (None, []))
        if not row.ok:
            failure = ET.SubElement(
                case, "failure", {"type": row.status.value, "message": row.reason or ""}
            )
            failure.text = details
        elif row.status.value != "verified":
            ET.SubElement(case, "skipped", {"message": f"{row.status.value}: {row.reason}"})
        else:
            ET.SubElement(case, "system-out").text = details
    suites = ET.Element("testsuites", {"tests": str(len(report.rows)), "failures": str(failures)})
    suites.append(suite)
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"
