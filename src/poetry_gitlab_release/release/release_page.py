"""The GitLab Release page of the tag: notes and asset links of what was published.

Links (all `link_type: package`, each with a direct asset path `/<file name>` when GitLab
accepts one, so the page has permanent links `.../-/releases/<tag>/downloads/<file name>`;
a name with `+` or over 127 characters gets a plain link): every package file in the PyPI
registry, every signature file and the SBOM in the generic registry, and release.json as an
artifact of the publishing job (when the job's URL is known: CI_JOB_URL).

Notes: the section of CHANGELOG.md for the version when there is one (a heading that names the
version, `## [1.2.3] - 2026-01-01`, `## v1.2.3`, ..., up to the next heading of the same or a
higher level), else a generated summary: the signer identity and issuer, the files with their
sha256, and the command that verifies the release.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from poetry_gitlab_release.gitlab.releases import AssetLink, direct_asset_path
from poetry_gitlab_release.release.artifacts import MANIFEST_NAME

if TYPE_CHECKING:
    from poetry_gitlab_release.gitlab.client import GitLabClient
    from poetry_gitlab_release.gitlab.releases import ReleasePageResult

CHANGELOG_NAMES = ("CHANGELOG.md", "CHANGES.md", "HISTORY.md")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


@dataclass(frozen=True)
class ReleaseNotes:
    text: str
    source: str  # "CHANGELOG.md" or "generated"


def changelog_section(text: str, version: str) -> str | None:
    """The body under the first heading that names `version` (as a whole word), or None."""
    lines = text.splitlines()
    pattern = re.compile(rf"(?<![\w.]){re.escape(version)}(?![\w.]|\.\d)")
    for index, line in enumerate(lines):
        match = HEADING.match(line)
        if not match or not pattern.search(match.group(2).replace("[v", "[").lstrip("v")):
            continue
        level = len(match.group(1))
        body: list[str] = []
        for following in lines[index + 1 :]:
            inner = HEADING.match(following)
            if inner and len(inner.group(1)) <= level:
                break
            body.append(following)
        section = "\n".join(body).strip()
        return section or None
    return None


def release_notes(
    project_dir: Path,
    package: str,
    version: str,
    *,
    identity: str | None,
    issuer: str | None,
    project: str | None,
    files: Sequence[tuple[str, str]],  # (file name, sha256)
) -> ReleaseNotes:
    for name in CHANGELOG_NAMES:
        path = project_dir / name
        if path.is_file():
            section = changelog_section(path.read_text(encoding="utf-8", errors="replace"), version)
            if section:
                return ReleaseNotes(section, name)
    lines = [
        f"{package} {version}, built, signed with Sigstore and published by poetry-gitlab-release."
    ]
    if identity:
        lines += ["", f"Signed by `{identity}`" + (f" (issuer `{issuer}`)." if issuer else ".")]
    if files:
        lines += ["", "| File | sha256 |", "|---|---|"]
        lines += [f"| `{name}` | `{digest}` |" for name, digest in files]
    command = f"poetry gitlab-verify {package}=={version}"
    if project:
        command += f" --gitlab-project {project}"
    lines += ["", "Verify before installing:", "", "```console", f"$ {command}", "```"]
    return ReleaseNotes("\n".join(lines), "generated")


def asset_links(
    manifest: Mapping[str, Any], *, job_url: str | None, manifest_path: str | None
) -> list[AssetLink]:
    """From release.json: each package file, its signature files and the SBOM, then
    release.json itself (an artifact of this job)."""
    links: list[AssetLink] = []
    for item in manifest.get("files", []):
        entries = [(item.get("file"), item.get("url"))]
        entries += [(s.get("file"), s.get("url")) for s in item.get("signatures", [])]
        for file_name, url in entries:
            if file_name and url:
                links.append(AssetLink(str(file_name), str(url), direct_asset_path(str(file_name))))
    if job_url and manifest_path:
        links.append(
            AssetLink(
                name=MANIFEST_NAME,
                url=f"{job_url.rstrip('/')}/artifacts/raw/{manifest_path}",
                direct_asset_path=f"/{MANIFEST_NAME}",
            )
        )
    return links


def publish_release_page(
    client: GitLabClient,
    project: str,
    tag: str,
    *,
    package: str,
    version: str,
    notes: ReleaseNotes,
    links: Sequence[AssetLink],
    ref: str | None,
) -> ReleasePageResult:
    from poetry_gitlab_release.gitlab.releases import upsert_release

    return upsert_release(
        client,
        project,
        tag,
        name=f"{package} {version}",
        description=notes.text,
        links=links,
        ref=ref,
    )
