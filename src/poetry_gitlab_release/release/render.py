"""How `gitlab-release` shows its work: step lines, upload progress bars, the final summary."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cleo.io.io import IO
    from cleo.io.outputs.output import Output
    from cleo.ui.progress_bar import ProgressBar

    from poetry_gitlab_release.gitlab.uploads import Progress
    from poetry_gitlab_release.release.publish import FileAction

STATUS_TEXT = {
    "uploaded": "<info>uploaded</info>",
    "present": "<comment>already published (same sha256), skipped</comment>",
    "signed-earlier": "<comment>already signed and published, skipped</comment>",
    "would-upload": "<comment>would upload (dry run)</comment>",
    "upload": "<comment>to upload</comment>",
    None: "<comment>not published by this run</comment>",
}


class CleoProgress:
    """An upload progress bar on stderr (constructed only when stderr is a terminal)."""

    def __init__(self, output: Output, label: str) -> None:
        self._output = output
        self._label = label
        self._bar: ProgressBar | None = None

    def start(self, total: int) -> None:
        from cleo.ui.progress_bar import ProgressBar

        if self._bar is not None:  # a retry streams the body again
            self._bar.finish()
            self._output.write_line("")
        self._bar = ProgressBar(self._output, max=total)
        self._bar.set_format(f" {self._label} %current%/%max% bytes [%bar%] %percent:3s%%")
        self._bar.start(max=total)

    def advance(self, count: int) -> None:
        if self._bar is not None:
            self._bar.advance(count)

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.finish()
            self._output.write_line("")
            self._bar = None


class CleoReporter:
    """The release flow's Reporter on cleo's IO: step lines on stdout, or on stderr when stdout
    carries JSON; details with -v; progress bars only when stderr is a terminal."""

    def __init__(self, io: IO, *, json_output: bool) -> None:
        self._io = io
        self._json = json_output

    def _write(self, text: str, verbose: bool = False) -> None:
        from cleo.io.outputs.output import Verbosity

        verbosity = Verbosity.VERBOSE if verbose else Verbosity.NORMAL
        if self._json:
            self._io.write_error_line(text, verbosity=verbosity)
        else:
            self._io.write_line(text, verbosity=verbosity)

    def step(self, text: str) -> None:
        self._write(text)

    def detail(self, text: str) -> None:
        self._write(text, verbose=True)

    def retry(self, what: str, delay: float) -> None:
        from cleo.io.outputs.output import Verbosity

        self._io.write_error_line(
            f"  {what}; retrying in {delay:.1f}s", verbosity=Verbosity.VERBOSE
        )

    def rate_limit(self, message: str, delay: float) -> None:
        self._io.write_error_line(f"  {message}")  # a wait of up to minutes: said by default

    def file_done(self, action: FileAction) -> None:
        self.step(f"  {action.file_name}  {STATUS_TEXT.get(action.status, action.status)}")

    def warning(self, text: str) -> None:
        self._io.write_error_line(text)

    def progress(self, label: str, size: int) -> Progress | None:
        import sys

        if not sys.stderr.isatty() or self._io.output.is_quiet():
            return None
        return CleoProgress(self._io.error_output, label)


def manifest_json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2)


def summary_lines(document: dict[str, Any]) -> list[str]:
    """The human summary: per file its sha256, registry URL and signature URL."""
    lines = [f"<b>{document['package']} {document['version']}</b> ({document['version_source']})"]
    if document.get("identity"):
        lines.append(f"  signed by  {document['identity']}")
        lines.append(f"  issuer     {document['issuer']}")
    for entry in document["files"]:
        lines.append("")
        lines.append(
            f"<c1>{entry['file']}</c1>  {STATUS_TEXT.get(entry['status'], entry['status'])}"
        )
        lines.append(f"  sha256     {entry['sha256']}")
        if entry.get("url"):
            lines.append(f"  package    {entry['url']}")
        if entry.get("signature_url"):
            lines.append(f"  signature  {entry['signature_url']}")
        if entry.get("rekor_log_index") is not None:
            index = f"  rekor      log index {entry['rekor_log_index']}"
            if entry.get("attestation_rekor_log_index") is not None:
                index += f" (attestation {entry['attestation_rekor_log_index']})"
            lines.append(index)
        for signature in entry["signatures"]:
            if signature.get("status") in {"uploaded", "would-upload"}:
                status = "uploaded" if signature["status"] == "uploaded" else "would upload"
                lines.append(f"  {status:10} {signature['file']}")
    pypi = (document.get("targets") or {}).get("pypi")
    if pypi:
        lines.append("")
        lines.append(f"<b>PyPI</b> {pypi['upload_url']} ({pypi['credential']})")
        for item in pypi["files"]:
            status = {"skipped": "present"}.get(item["status"], item["status"])
            lines.append(f"  <c1>{item['name']}</c1>  {STATUS_TEXT.get(status, status)}")
            if item.get("provenance_url") and item["status"] != "would-upload":
                lines.append(f"  provenance {item['provenance_url']}")
    return lines


def release_page_lines(page: Any) -> list[str]:
    """The Release page and its asset links (a gitlab.releases.ReleasePageResult)."""
    if page.created:
        what = "created"
    elif page.links_added or page.links_updated or page.description_updated:
        what = "updated"
    else:
        what = "up to date"
    lines = [f"Release page ({what}): {page.url or '(no URL in GitLab answer)'}"]
    for link in sorted(page.links, key=lambda item: item.get("id", 0)):
        lines.append(f"  {link.get('link_type', 'other'):<8} {link.get('name')}")
        lines.append(f"           {link.get('direct_asset_url') or link.get('url')}")
    return lines
