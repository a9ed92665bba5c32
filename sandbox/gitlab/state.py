"""Mutable package-registry state of one stand-in: packages and their files, changed atomically."""

from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone


def normalize_pypi_name(name: str) -> str:
    """PEP 503: runs of ``-``, ``_``, ``.`` become ``-``, lower-cased."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class PackageFile:
    id: int
    package_id: int
    file_name: str
    content: bytes
    sha256: str
    md5: str
    sha1: str
    created_at: datetime

    @property
    def size(self) -> int:
        return len(self.content)


@dataclass
class Package:
    id: int
    project_id: int
    name: str
    version: str
    package_type: str  # pypi | generic
    status: str
    created_at: datetime
    files: list[PackageFile] = field(default_factory=list)
    requires_python: str = ""
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredFile:
    """A flat view of one stored file, for tests."""

    project_id: int
    package_id: int
    package_type: str
    name: str
    version: str
    file_name: str
    sha256: str
    content: bytes


class DuplicateFileError(Exception):
    pass


class PackageState:
    """All packages of all projects. Every mutation happens under one lock, all or nothing."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.packages: dict[int, Package] = {}
        self._next_package = 1
        self._next_file = 1

    def _new_file(
        self, package_id: int, file_name: str, content: bytes, sha256: str | None = None
    ) -> PackageFile:
        record = PackageFile(
            id=self._next_file,
            package_id=package_id,
            file_name=file_name,
            content=content,
            sha256=sha256 if sha256 is not None else hashlib.sha256(content).hexdigest(),
            md5=hashlib.md5(content, usedforsecurity=False).hexdigest(),
            sha1=hashlib.sha1(content, usedforsecurity=False).hexdigest(),
            created_at=datetime.now(timezone.utc),
        )
        self._next_file += 1
        return record

    def _find(self, project_id: int, package_type: str, name: str, version: str) -> Package | None:
        for package in self.packages.values():
            if (
                package.project_id == project_id
                and package.package_type == package_type
                and package.version == version
                and (
                    normalize_pypi_name(package.name) == normalize_pypi_name(name)
                    if package_type == "pypi"
                    else package.name == name
                )
            ):
                return package
        return None

    def _create(
        self, project_id: int, package_type: str, name: str, version: str, status: str
    ) -> Package:
        package = Package(
            id=self._next_package,
            project_id=project_id,
            name=name,
            version=version,
            package_type=package_type,
            status=status,
            created_at=datetime.now(timezone.utc),
        )
        self._next_package += 1
        return package

    def add_pypi_file(
        self,
        project_id: int,
        name: str,
        version: str,
        file_name: str,
        content: bytes,
        *,
        requires_python: str,
        metadata: dict[str, str],
        sha256: str | None = None,
    ) -> PackageFile:
        """find_or_create the (normalized name, version) package and add the file to it.

        The package keeps the name as the first upload spelled it (GitLab stores PyPI names
        verbatim). ``sha256`` is the client's ``sha256_digest``, stored as given: GitLab's
        ``Packages::Pypi::CreatePackageService#file_params`` passes
        ``file_sha256: params[:sha256_digest]`` without comparing it with the file.
        """
        with self.lock:
            package = self._find(project_id, "pypi", name, version)
            if package is not None and any(f.file_name == file_name for f in package.files):
                raise DuplicateFileError(file_name)
            if package is None:
                package = self._create(project_id, "pypi", name, version, "default")
                self.packages[package.id] = package
            record = self._new_file(package.id, file_name, content, sha256)
            package.files.append(record)
            package.requires_python = requires_python
            package.metadata.update(metadata)
            return record

    def add_generic_file(
        self,
        project_id: int,
        name: str,
        version: str,
        file_name: str,
        content: bytes,
        *,
        status: str,
        duplicates_allowed: bool,
        status_given: bool = False,
    ) -> PackageFile:
        # Packages::Generic::CreatePackageFileService: with generic_duplicates_allowed off, only
        # a file of the same *name* in that package is refused (`package.package_files
        # .with_file_name(file_name).exists?` -> DuplicatePackageError); new files are added.
        with self.lock:
            package = self._find(project_id, "generic", name, version)
            if (
                package is not None
                and not duplicates_allowed
                and any(f.file_name == file_name for f in package.files)
            ):
                raise DuplicateFileError(file_name)
            if package is None:
                package = self._create(project_id, "generic", name, version, status)
                self.packages[package.id] = package
            elif status_given and package.status != status:
                # CreatePackageFileService: `package.update_column(:status, params[:status]) if
                # params[:status] && params[:status] != package.status`.
                package.status = status
            record = self._new_file(package.id, file_name, content)
            package.files.append(record)
            return record

    def generic_file(
        self, project_id: int, name: str, version: str, file_name: str
    ) -> PackageFile | None:
        with self.lock:
            package = self._find(project_id, "generic", name, version)
            if package is None:
                return None
            matching = [f for f in package.files if f.file_name == file_name]
            return matching[-1] if matching else None

    def pypi_packages(self, project_ids: set[int], normalized: str | None) -> list[Package]:
        with self.lock:
            return [
                p
                for p in sorted(self.packages.values(), key=lambda p: p.id)
                if p.package_type == "pypi"
                and p.project_id in project_ids
                and (normalized is None or normalize_pypi_name(p.name) == normalized)
            ]

    def pypi_file(self, project_ids: set[int], sha256: str, file_name: str) -> PackageFile | None:
        with self.lock:
            for package in self.packages.values():
                if package.package_type == "pypi" and package.project_id in project_ids:
                    for record in package.files:
                        if record.file_name == file_name and record.sha256 == sha256:
                            return record
            return None

    def project_packages(self, project_id: int) -> list[Package]:
        with self.lock:
            return [
                p
                for p in sorted(self.packages.values(), key=lambda p: p.id)
                if p.project_id == project_id
            ]

    def stored_files(self, project_id: int | None = None) -> list[StoredFile]:
        with self.lock:
            return [
                StoredFile(
                    project_id=p.project_id,
                    package_id=p.id,
                    package_type=p.package_type,
                    name=p.name,
                    version=p.version,
                    file_name=f.file_name,
                    sha256=f.sha256,
                    content=f.content,
                )
                for p in sorted(self.packages.values(), key=lambda p: p.id)
                if project_id is None or p.project_id == project_id
                for f in p.files
            ]

    def clear(self) -> None:
        with self.lock:
            self.packages.clear()
