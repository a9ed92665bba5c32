"""`poetry.lock`: the locked packages, their files and hashes, and where each comes from.

Poetry 2.x writes (src/poetry/packages/locker.py `_dump_package`) one `[[package]]` per locked
package with `name`, `version`, `files = [{file, hash = "sha256:..."}]` and, for a package not
from PyPI, a `[package.source]` table `{type, url, reference}`; a package from a GitLab
PyPI registry is a `legacy` source whose url is the registry's simple index,
`{api}/projects/{id or path}/packages/pypi/simple` (or a group's
`{api}/groups/{id}/-/packages/pypi/simple`). A package without a source comes from PyPI.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from poetry_gitlab_release.errors import ConfigError

SUPPORTED_LOCK_VERSIONS = ("1.", "2.")  # Poetry 2.x reads >=1,<3 (locker._READ_VERSION_RANGE)
PYPI_URL = "https://pypi.org"

_GITLAB_REGISTRY = re.compile(
    r"^(?P<api>.*/api/v4)/(?:projects/(?P<project>[^/]+)/packages/pypi"
    r"|groups/(?P<group>[^/]+)/-/packages/pypi)/simple/?$"
)


@dataclass(frozen=True)
class LockedFile:
    name: str
    sha256: str | None  # None when the lock gives another algorithm only


@dataclass(frozen=True)
class LockedPackage:
    name: str
    version: str
    files: tuple[LockedFile, ...]
    source_type: str | None = None
    source_url: str | None = None
    source_reference: str | None = None


class SourceKind(str, Enum):
    GITLAB = "gitlab"  # a GitLab PyPI registry of the configured GitLab
    OTHER_GITLAB = "other gitlab"  # a GitLab registry URL on another host
    PYPI = "pypi"
    OTHER = "other"  # git, directory, file, url, or another index: no signature scheme


@dataclass(frozen=True)
class PackageSource:
    kind: SourceKind
    label: str  # for reports: "pypi.org", "GitLab project 100", the URL...
    project: str | None = None  # GitLab project id or path (decoded)
    group: str | None = None  # GitLab group id or path (group-level index)
    simple_url: str | None = None


def read_lock(path: Path) -> list[LockedPackage]:
    """The packages of a poetry.lock; ConfigError (naming the file) when it is not one."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib

    try:
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(
            f"no {path.name} in {path.parent}",
            hint="run `poetry lock` first, or run in the project directory (-C DIR)",
        ) from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    metadata = document.get("metadata")
    version = metadata.get("lock-version") if isinstance(metadata, dict) else None
    if not isinstance(version, str) or not version.startswith(SUPPORTED_LOCK_VERSIONS):
        raise ConfigError(f"{path}: lock-version {version!r} is not one Poetry 2 writes")
    packages = document.get("package", [])
    if not isinstance(packages, list):
        raise ConfigError(f"{path}: `package` must be an array of tables")
    return [_package(entry, path, number) for number, entry in enumerate(packages, start=1)]


def _package(entry: Any, path: Path, number: int) -> LockedPackage:
    where = f"{path}: package {number}"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} is not a table")
    name, version = entry.get("name"), entry.get("version")
    if not isinstance(name, str) or not isinstance(version, str):
        raise ConfigError(f"{where} has no name or version")
    files: list[LockedFile] = []
    for item in entry.get("files", []):
        if not isinstance(item, dict) or not isinstance(item.get("file"), str):
            raise ConfigError(f"{where} ({name}): a file entry has no `file`")
        digest = item.get("hash")
        sha256 = None
        if isinstance(digest, str) and digest.startswith("sha256:"):
            value = digest.removeprefix("sha256:").lower()
            if re.fullmatch(r"[0-9a-f]{64}", value):
                sha256 = value
        files.append(LockedFile(item["file"], sha256))
    source = entry.get("source")
    if not isinstance(source, dict):
        source = {}
    return LockedPackage(
        name=name,
        version=version,
        files=tuple(files),
        source_type=_text(source.get("type")),
        source_url=_text(source.get("url")),
        source_reference=_text(source.get("reference")),
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def classify(package: LockedPackage, *, api_url: str, pypi_url: str = PYPI_URL) -> PackageSource:
    """Where a locked package comes from, as far as signatures are concerned."""
    if package.source_url is None:
        if package.source_type in (None, "legacy"):
            return PackageSource(SourceKind.PYPI, urlsplit(pypi_url).netloc or pypi_url)
        return PackageSource(SourceKind.OTHER, package.source_type or "unknown")
    url = package.source_url
    if package.source_type != "legacy":
        return PackageSource(SourceKind.OTHER, f"{package.source_type} {url}")
    if url.rstrip("/") in (f"{pypi_url.rstrip('/')}/simple", "https://pypi.org/simple"):
        return PackageSource(SourceKind.PYPI, urlsplit(url).netloc)
    match = _GITLAB_REGISTRY.match(url)
    if match is None:
        return PackageSource(SourceKind.OTHER, url)
    same_host = match.group("api").rstrip("/") == api_url.rstrip("/")
    project = unquote(match.group("project")) if match.group("project") else None
    group = unquote(match.group("group")) if match.group("group") else None
    label = f"GitLab project {project}" if project else f"GitLab group {group}"
    return PackageSource(
        SourceKind.GITLAB if same_host else SourceKind.OTHER_GITLAB,
        label if same_host else f"{label} on {urlsplit(url).netloc}",
        project=project,
        group=group,
        simple_url=url.rstrip("/"),
    )
