"""Render a verification report: a text table, JSON, or JUnit XML (GitLab's test report).

Only report values are rendered; nothing here can see a token.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from xml.etree import ElementTree as ET

if TYPE_CHECKING:
    from poetry_gitlab_release.signing.results import FileResult
    from poetry_gitlab_release.verify.report import Report

TABLE_COLUMNS = (
    "file",
    "sha256",
    "signer identity",
    "ref",
    "commit",
    "job",
    "log index",
    "verdict",
)


def _short(value: str | None, length: int) -> str:
    if not value:
        return "-"
    return value if len(value) <= length else value[:length]


def table_rows(report: Report) -> list[tuple[str, ...]]:
    return [
        (
            result.name,
            _short(result.sha256, 12),
            result.identity or "-",
            result.ref or "-",
            _short(result.commit, 12),
            result.job_url or "-",
            "-" if result.log_index is None else str(result.log_index),
            result.verdict.value,
        )
        for result in report.results
    ]


def render_table(report: Report, style: bool = True) -> list[str]:
    """Aligned columns; with `style`, verdicts carry cleo tags (<info>/<error>)."""
    tags = [("info" if result.ok else "error") if style else None for result in report.results]
    return aligned_table(TABLE_COLUMNS, table_rows(report), tags)


def aligned_table(
    columns: tuple[str, ...], rows: list[tuple[str, ...]], tags: list[str | None]
) -> list[str]:
    """A header, a rule and the rows, padded to the widest cell; the last cell of a row
    wrapped in its cleo tag, if any."""
    widths = [len(column) for column in columns]
    for row in rows:
        widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=True)]

    def line(cells: tuple[str, ...], tag: str | None = None) -> str:
        padded = [cell.ljust(width) for cell, width in zip(cells, widths, strict=True)]
        if tag:
            padded[-1] = f"<{tag}>{cells[-1]}</{tag}>"
        return "  ".join(padded).rstrip()

    lines = [line(columns), "  ".join("-" * width for width in widths)]
    lines.extend(line(row, tag) for row, tag in zip(rows, tags, strict=True))
    return lines


def result_dict(result: FileResult) -> dict[str, Any]:
    return {
        "file": result.name,
        "verdict": result.verdict.value,
        "verified": result.ok,
        "reason": result.reason,
        "sha256": result.sha256,
        "size": result.size,
        "path": None if result.path is None else str(result.path),
        "material": result.material,
        "identity": result.identity,
        "issuer": result.issuer,
        "ref": result.ref,
        "commit": result.commit,
        "job_url": result.job_url,
        "log_index": result.log_index,
        "claims": None if result.claims is None else result.claims.as_dict(),
    }


def json_document(
    head: dict[str, Any], *, ok: bool, counts: dict[str, int], files: list[dict[str, Any]]
) -> str:
    """A report as JSON: what it is about, then its verdict, its counts and a row per file."""
    return json.dumps({**head, "ok": ok, "counts": counts, "files": files}, indent=2)


def render_json(report: Report) -> str:
    head = {
        "subject": report.subject,
        "source": report.source,
        "expected": report.expected,
        "dest": None if report.dest is None else str(report.dest),
        "installed": report.installed,
        "pin": report.pin,
        "pins_file": report.pins_file,
    }
    files = [result_dict(result) for result in report.results]
    return json_document(head, ok=report.ok, counts=report.counts, files=files)


@dataclass(frozen=True)
class JUnitCase:
    """One testcase: `failure` (with `kind`, `message`) or `skipped` (with `message`) or passed;
    `details` goes into the failure text or the passed case's system-out."""

    classname: str
    name: str
    details: str
    failure: bool = False
    skipped: bool = False
    kind: str = ""
    message: str = ""


def junit_document(suite_name: str, cases: list[JUnitCase]) -> str:
    """GitLab's test report format: one testsuite holding the cases."""
    failures = sum(1 for case in cases if case.failure)
    suite = ET.Element(
        "testsuite",
        {
            "name": suite_name,
            "tests": str(len(cases)),
            "failures": str(failures),
            "errors": "0",
            "skipped": str(sum(1 for case in cases if case.skipped)),
        },
    )
    for case in cases:
        element = ET.SubElement(suite, "testcase", {"classname": case.classname, "name": case.name})
        if case.failure:
            failure = ET.SubElement(
                element, "failure", {"type": case.kind, "message": case.message}
            )
            failure.text = case.details
        elif case.skipped:
            ET.SubElement(element, "skipped", {"message": case.message})
        else:
            ET.SubElement(element, "system-out").text = case.details
    suites = ET.Element("testsuites", {"tests": str(len(cases)), "failures": str(failures)})
    suites.append(suite)
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def render_junit(report: Report) -> str:
    """One testsuite, one testcase per file; failed and unsigned files are failures."""
    cases = [
        JUnitCase(
            classname="gitlab-verify",
            name=result.name,
            details="\n".join(
                f"{key}: {value}" for key, value in result_dict(result).items() if value
            ),
            failure=not result.ok,
            kind=result.verdict.value,
            message=result.reason or result.verdict.value,
        )
        for result in report.results
    ]
    return junit_document(f"gitlab-verify {report.subject}", cases)
