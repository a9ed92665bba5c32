"""A CycloneDX SBOM of the built release: `dist/<name>-<version>.cdx.json`.

Written by the build step with the CycloneDX Python library (cyclonedx-python-lib, imported
here only, when the build runs), CycloneDX 1.6 JSON:
- metadata.component: the project (pkg:pypi/<name>@<version>);
- components: each built file (type `file`, its SHA-256), and each locked runtime dependency
  (type `library`, pkg:pypi purl): the project's main-group requirements and what they require
  in turn, at the versions of poetry.lock;
- dependencies: the project depends on its direct requirements, each locked package on its own.

It is reproducible: the serial number derives from the content (name, version, file digests,
dependencies) and the timestamp is SOURCE_DATE_EPOCH, left out when that is not set. The sign step signs it with the
same certificate as the artifacts, publish-signatures puts it beside the signatures in the
generic registry, and the Release page links it.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from poetry_gitlab_release.files import write_atomic
from poetry_gitlab_release.release.artifacts import (
    SBOM_SUFFIX,
    Artifact,
    distribution_stem,
)

TOOL_NAME = "poetry-gitlab-release"


@dataclass(frozen=True)
class LockedPackage:
    name: str  # PEP 503
    version: str
    requires: tuple[str, ...]  # PEP 503 names


def sbom_path(dist_dir: Path, name: str, version: str) -> Path:
    return dist_dir / f"{distribution_stem(name)}-{version}{SBOM_SUFFIX}"


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_closure(
    direct: Iterable[str], locked: Sequence[LockedPackage]
) -> tuple[list[str], list[LockedPackage]]:
    """The direct requirements found in the lock, and every locked package they pull in."""
    by_name = {package.name: package for package in locked}
    roots = sorted({_canonical(name) for name in direct if _canonical(name) in by_name})
    seen: dict[str, LockedPackage] = {}
    stack = list(roots)
    while stack:
        name = stack.pop()
        if name in seen or name not in by_name:
            continue
        seen[name] = by_name[name]
        stack.extend(by_name[name].requires)
    return roots, [seen[name] for name in sorted(seen)]


def _timestamp() -> datetime | None:
    """SOURCE_DATE_EPOCH, else none (the field is optional): a rebuild writes the same bytes."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if epoch.isdecimal():
        return datetime.fromtimestamp(int(epoch), tz=timezone.utc)
    return None


def write_sbom(
    dist_dir: Path,
    name: str,
    version: str,
    artifacts: Sequence[Artifact],
    direct: Iterable[str],
    locked: Sequence[LockedPackage],
    tool_version: str,
) -> Path:
    """Write the SBOM of `name` `version` built as `artifacts`; return its path."""
    from cyclonedx.model import HashAlgorithm, HashType
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.output.json import JsonV1Dot6
    from packageurl import PackageURL

    roots, closure = runtime_closure(direct, locked)
    fingerprint = hashlib.sha256()
    for part in [name, version, *(a.sha256 for a in artifacts)]:
        fingerprint.update(part.encode() + b"\0")
    for package in closure:
        fingerprint.update(f"{package.name}=={package.version}".encode() + b"\0")

    project = Component(
        type=ComponentType.LIBRARY,
        name=_canonical(name),
        version=version,
        purl=PackageURL("pypi", None, _canonical(name), version),
        bom_ref=f"pkg:pypi/{_canonical(name)}@{version}",
    )
    bom = Bom(serial_number=uuid.UUID(bytes=fingerprint.digest()[:16], version=5))
    bom.metadata.timestamp = _timestamp()  # type: ignore[assignment]
    bom.metadata.component = project
    bom.metadata.tools.components.add(
        Component(type=ComponentType.APPLICATION, name=TOOL_NAME, version=tool_version)
    )
    files = []
    for artifact in artifacts:
        component = Component(
            type=ComponentType.FILE,
            name=artifact.name,
            bom_ref=f"file:{artifact.name}",
            hashes=[HashType(alg=HashAlgorithm.SHA_256, content=artifact.sha256)],
        )
        files.append(component)
        bom.components.add(component)
    libraries = {}
    for package in closure:
        library = Component(
            type=ComponentType.LIBRARY,
            name=package.name,
            version=package.version,
            purl=PackageURL("pypi", None, package.name, package.version),
            bom_ref=f"pkg:pypi/{package.name}@{package.version}",
        )
        libraries[package.name] = library
        bom.components.add(library)
    bom.register_dependency(project, [*files, *(libraries[name] for name in roots)])
    for package in closure:
        needed = [libraries[dep] for dep in package.requires if dep in libraries]
        bom.register_dependency(libraries[package.name], needed)
    text = JsonV1Dot6(bom).output_as_string(indent=2)
    path = sbom_path(dist_dir, name, version)
    write_atomic(path, text + "\n")
    return path


def poetry_dependencies(poetry: object) -> tuple[list[str], list[LockedPackage]]:
    """The main group's requirements and the lock's packages, from a Poetry instance."""
    from poetry.poetry import Poetry

    assert isinstance(poetry, Poetry)
    direct = [str(dependency.name) for dependency in poetry.package.requires]
    locked: list[LockedPackage] = []
    if poetry.locker.is_locked():
        for package in poetry.locker.locked_repository().packages:
            locked.append(
                LockedPackage(
                    name=_canonical(package.name),
                    version=package.version.text,
                    requires=tuple(
                        sorted(
                            {_canonical(d.name) for d in package.requires if not d.is_optional()}
                        )
                    ),
                )
            )
    return direct, locked
