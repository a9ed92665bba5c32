"""What the steps share about the dist directory: which files a release consists of, the
names of their signature files, and streaming sha256.

Every step after `build` finds its inputs here, so a pipeline can run the steps in separate
jobs and pass `dist/` along as an artifact.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from poetry_gitlab_release.files import sha256_file

BUNDLE_SUFFIX = ".sigstore.json"
ATTESTATION_SUFFIX = ".publish.attestation"
COSIGN_SIGNATURE_SUFFIX = ".sig"
COSIGN_CERTIFICATE_SUFFIX = ".crt"
SIGNATURE_SUFFIXES = (
    BUNDLE_SUFFIX,
    ATTESTATION_SUFFIX,
    COSIGN_SIGNATURE_SUFFIX,
    COSIGN_CERTIFICATE_SUFFIX,
)
MANIFEST_NAME = "release.json"
SBOM_SUFFIX = ".cdx.json"  # the CycloneDX SBOM of the release (release/sbom.py)


def normalize_name(name: str) -> str:
    """PEP 503: `Hello_Package` -> `hello-package` (the generic registry's package name)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def distribution_stem(name: str) -> str:
    """The file-name form of a distribution name: `hello-package` -> `hello_package`."""
    return re.sub(r"[-_.]+", "_", name).lower()


@dataclass(frozen=True)
class Artifact:
    """A wheel, sdist or the SBOM of the release, with its digest."""

    path: Path
    kind: Literal["sdist", "wheel", "sbom"]
    sha256: str
    size: int

    @property
    def name(self) -> str:
        return self.path.name

    def sidecar(self, suffix: str) -> Path:
        return self.path.with_name(self.path.name + suffix)

    def signature_files(self) -> list[Path]:
        """The signature files present next to the artifact, in upload order."""
        return [path for s in SIGNATURE_SUFFIXES if (path := self.sidecar(s)).is_file()]


def artifact_paths(dist_dir: Path, name: str, version: str) -> list[Path]:
    """The sdist, wheels and SBOM of `name` `version` in `dist_dir`, in that order."""
    stem = f"{distribution_stem(name)}-{version}"
    if not dist_dir.is_dir():
        return []
    sdists = [p for p in dist_dir.glob(f"{stem}.tar.gz") if p.is_file()]
    wheels = [p for p in dist_dir.glob(f"{stem}-*.whl") if p.is_file()]
    sboms = [p for p in (dist_dir / f"{stem}{SBOM_SUFFIX}",) if p.is_file()]
    return sorted(sdists) + sorted(wheels) + sboms


def _kind(path: Path) -> Literal["sdist", "wheel", "sbom"]:
    if path.name.endswith(SBOM_SUFFIX):
        return "sbom"
    return "wheel" if path.suffix == ".whl" else "sdist"


def load_artifacts(dist_dir: Path, name: str, version: str) -> list[Artifact]:
    return [
        Artifact(
            path=path,
            kind=_kind(path),
            sha256=digest.sha256,
            size=digest.size,
        )
        for path in artifact_paths(dist_dir, name, version)
        for digest in (sha256_file(path),)
    ]
