"""The --lock flow with real Sigstore signatures (the stand-in, in process) and a registry double.

The double answers what GitLab and PyPI would (project facts, index pages, generic-registry
material, Integrity API provenance) from dictionaries, so every verdict can be provoked.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from poetry_gitlab_release.errors import ConfigError, NotFoundError
from poetry_gitlab_release.gitlab.simple_index import IndexFile
from poetry_gitlab_release.signing.claims import ClaimPolicy
from poetry_gitlab_release.signing.identity import ExpectedIdentity
from poetry_gitlab_release.signing.material import MaterialKind, SignatureMaterial
from poetry_gitlab_release.verify.expected import IdentityOptions, signer_from_options
from poetry_gitlab_release.verify.lock import LockOptions, verify_lock
from poetry_gitlab_release.verify.lock_report import RowStatus
from poetry_gitlab_release.verify.lockfile import (
    LockedFile,
    LockedPackage,
    SourceKind,
    classify,
    read_lock,
)
from poetry_gitlab_release.verify.pins import PinStore
from poetry_gitlab_release.verify.registry import ProjectFacts
from sandbox.sigstore import SigstoreStandIn

SERVER = "https://gitlab.com"
API = f"{SERVER}/api/v4"


class Signed:
    """Artifacts signed by the stand-in as a GitLab CI job of a given project."""

    def __init__(self, standin: SigstoreStandIn) -> None:
        from sigstore.models import ClientTrustConfig
        from sigstore.sign import SigningContext

        self.standin = standin
        self.trust = ClientTrustConfig.from_json(standin.trust_config_json())
        self.context = SigningContext.from_trust_config(self.trust)

    def bundle(self, data: bytes, *, project: str, project_id: int, version: str) -> bytes:
        from sigstore.oidc import IdentityToken

        token = self.standin.mint_token(
            project_path=project,
            project_id=project_id,
            namespace_id=10,
            ref=f"v{version}",
            server_url=SERVER,
        )
        with self.context.signer(IdentityToken(token), cache=True) as signer:
            return signer.sign_artifact(data).to_json().encode()

    def provenance(self, name: str, data: bytes, *, repository: str) -> dict[str, Any]:
        from pypi_attestations import Attestation, Distribution
        from sigstore.oidc import IdentityToken

        token = self.standin.mint_token(
            project_path=repository, project_id=900, ref="v1", server_url=SERVER
        )
        dist = Distribution(name=name, digest=hashlib.sha256(data).hexdigest())
        with self.context.signer(IdentityToken(token), cache=True) as signer:
            attestation = Attestation.sign(signer, dist)
        return {
            "version": 1,
            "attestation_bundles": [
                {
                    "publisher": {
                        "kind": "GitLab",
                        "repository": repository,
                        "workflow_filepath": ".gitlab-ci.yml",
                        "environment": None,
                    },
                    "attestations": [attestation.model_dump(mode="json")],
                }
            ],
        }


class Registry:
    """The LockBackend double; counts calls and can add latency."""

    def __init__(self) -> None:
        self.projects: dict[str, ProjectFacts] = {}
        self.files: dict[str, list[IndexFile]] = {}
        self.material_by_file: dict[str, bytes] = {}
        self.provenance_by_file: dict[str, Any] = {}
        self.calls: list[str] = []
        self.latency = 0.0
        self._lock = threading.Lock()

    def _call(self, what: str) -> None:
        with self._lock:
            self.calls.append(what)
        time.sleep(self.latency)

    def project(self, ref: str) -> ProjectFacts:
        self._call(f"project {ref}")
        if ref not in self.projects:
            raise NotFoundError(f"404 project {ref}", status=404)
        return self.projects[ref]

    def owning_project(self, group: str, name: str, version: str) -> str:
        self._call(f"owner {group}")
        return "100"

    def index(self, simple_url: str, name: str) -> list[IndexFile]:
        self._call(f"index {name}")
        return self.files.get(name, [])

    def material(
        self, project: str, name: str, version: str, filename: str
    ) -> SignatureMaterial | None:
        self._call(f"material {filename}")
        content = self.material_by_file.get(filename)
        return (
            None if content is None else SignatureMaterial(MaterialKind.BUNDLE, content, filename)
        )

    def provenance(self, name: str, version: str, filename: str) -> Any | None:
        self._call(f"provenance {filename}")
        return self.provenance_by_file.get(filename)


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Signed]:
    with SigstoreStandIn(issuer=SERVER, state_dir=tmp_path_factory.mktemp("sig")) as standin:
        yield Signed(standin)


@pytest.fixture(scope="module")
def verifier(signed: Signed) -> Any:
    from sigstore.verify import Verifier

    return Verifier(trusted_root=signed.trust.trusted_root)


def identity_for(package: LockedPackage, facts: ProjectFacts) -> ExpectedIdentity:
    return signer_from_options(
        IdentityOptions(), server_url=SERVER, project_path=facts.path, version=package.version
    )


def gitlab_package(
    registry: Registry,
    signed: Signed,
    name: str,
    *,
    project: str = "grp/a",
    project_id: int = 100,
    files: int = 2,
    sign: bool = True,
    lock_sha: str | None = None,
) -> LockedPackage:
    registry.projects[str(project_id)] = ProjectFacts(str(project_id), project, "10")
    locked = []
    for number in range(files):
        filename = f"{name.replace('-', '_')}-1.0.0-py3-none-any{number}.whl"
        data = f"{name} {number}".encode()
        sha = hashlib.sha256(data).hexdigest()
        registry.files.setdefault(name, []).append(
            IndexFile(filename, f"{API}/files/{filename}", sha)
        )
        if sign:
            registry.material_by_file[filename] = signed.bundle(
                data, project=project, project_id=project_id, version="1.0.0"
            )
        locked.append(LockedFile(filename, lock_sha or sha))
    return LockedPackage(
        name,
        "1.0.0",
        tuple(locked),
        "legacy",
        f"{API}/projects/{project_id}/packages/pypi/simple",
        "gitlab",
    )


def pypi_package(
    registry: Registry, signed: Signed, name: str, *, provenance: bool
) -> LockedPackage:
    filename = f"{name}-2.0.tar.gz"
    data = name.encode()
    if provenance:
        registry.provenance_by_file[filename] = signed.provenance(
            filename, data, repository=f"upstream/{name}"
        )
    return LockedPackage(name, "2.0", (LockedFile(filename, hashlib.sha256(data).hexdigest()),))


def run(
    registry: Registry,
    verifier: Any,
    packages: list[LockedPackage],
    pins: PinStore | None = None,
    **options: Any,
) -> Any:
    classified = [(p, classify(p, api_url=API)) for p in packages]
    return verify_lock(
        classified,
        backend=registry,
        verifier=verifier,
        options=LockOptions(identity_for=identity_for, **options),
        pins=pins,
    )


def test_three_gitlab_and_two_pypi_packages(signed: Signed, verifier: Any, tmp_path: Path) -> None:
    registry = Registry()
    packages = [
        gitlab_package(registry, signed, "alpha"),
        gitlab_package(registry, signed, "beta", project="grp/b", project_id=101, files=1),
        gitlab_package(registry, signed, "gamma", project="grp/c", project_id=102, files=1),
        pypi_package(registry, signed, "attested", provenance=True),
        pypi_package(registry, signed, "plain", provenance=False),
    ]
    pins = PinStore(tmp_path / "gitlab-verify.lock")
    report = run(registry, verifier, packages, pins)
    verdicts = {row.file: row.status for row in report.rows}
    assert list(verdicts.values()).count(RowStatus.VERIFIED) == 5
    assert verdicts["attested-2.0.tar.gz"] is RowStatus.VERIFIED
    assert verdicts["plain-2.0.tar.gz"] is RowStatus.NO_PROVENANCE
    assert report.ok and report.pins_written
    assert all(row.pin == "pinned" for row in report.rows)
    # one project and one index request per package, however many files it has
    assert registry.calls.count("index alpha") == 1 and registry.calls.count("project 100") == 1
    rows = {row.file: row for row in report.rows}
    alpha = rows["alpha-1.0.0-py3-none-any0.whl"]
    assert alpha.claims is not None and alpha.claims.project_id == "100"
    assert alpha.identity == "https://gitlab.com/grp/a//.gitlab-ci.yml@refs/tags/v1.0.0"

    again = run(registry, verifier, packages, PinStore.load(pins.path))
    assert again.ok and not again.pins_written
    assert {row.pin for row in again.rows} == {"matches pin"}


def test_a_lock_hash_that_differs_from_the_registry_is_rejected(
    signed: Signed, verifier: Any
) -> None:
    registry = Registry()
    package = gitlab_package(registry, signed, "alpha", files=1, lock_sha="0" * 64)
    (row,) = run(registry, verifier, [package]).rows
    assert row.status is RowStatus.FAILED
    assert "differs from the registry's" in (row.reason or "")
    # the registry's index agreeing with a tampered lock still fails on the signature
    registry.files["alpha"] = [IndexFile(row.file, "x", "0" * 64)]
    (row,) = run(registry, verifier, [package]).rows
    assert row.status is RowStatus.FAILED
    assert "does not match this file's content" in (row.reason or "")


def test_unsigned_gitlab_file_fails_and_names_where_it_looked(
    signed: Signed, verifier: Any
) -> None:
    registry = Registry()
    package = gitlab_package(registry, signed, "alpha", files=1, sign=False)
    report = run(registry, verifier, [package])
    (row,) = report.rows
    assert row.status is RowStatus.UNSIGNED and not report.ok
    assert "generic registry of project grp/a at alpha/1.0.0" in (row.reason or "")


def test_signed_by_another_project_id_is_rejected(signed: Signed, verifier: Any) -> None:
    """The path grp/a now belongs to project 105; the signature is from project 100."""
    registry = Registry()
    package = gitlab_package(registry, signed, "alpha", files=1, project_id=100)
    registry.projects["100"] = ProjectFacts("105", "grp/a", "10")
    (row,) = run(registry, verifier, [package]).rows
    assert row.status is RowStatus.FAILED
    assert "project id is 100, expected 105 (the id GitLab gives project grp/a)" in (
        row.reason or ""
    )


def test_signer_change_after_pinning_then_accepted(
    signed: Signed, verifier: Any, tmp_path: Path
) -> None:
    registry = Registry()
    package = gitlab_package(registry, signed, "alpha", files=1)
    pins_path = tmp_path / "gitlab-verify.lock"
    assert run(registry, verifier, [package], PinStore.load(pins_path)).ok

    # the path grp/a re-registered by project 105, which signs the same file name; the lock
    # now points at project 105's registry
    registry.files.clear()
    moved = gitlab_package(registry, signed, "alpha", files=1, project_id=105)
    report = run(registry, verifier, [moved], PinStore.load(pins_path))
    (row,) = report.rows
    assert row.status is RowStatus.FAILED
    assert "project id is 105, expected 100 (pinned in gitlab-verify.lock)" in (row.reason or "")
    assert not report.pins_written

    accepted = run(registry, verifier, [moved], PinStore.load(pins_path), accept_signer_change=True)
    assert accepted.ok and accepted.pins_written
    assert accepted.rows[0].pin == "change accepted"
    pinned = PinStore.load(pins_path).get("alpha")
    assert pinned is not None and pinned.signers[0].project_id == "105"
    assert run(registry, verifier, [moved], PinStore.load(pins_path)).ok


def test_claim_policy_applies_to_every_gitlab_file(signed: Signed, verifier: Any) -> None:
    registry = Registry()
    package = gitlab_package(registry, signed, "alpha", files=1)
    policy = ClaimPolicy(runner_environment="self-hosted", pipeline_sources=("schedule",))
    (row,) = run(registry, verifier, [package], claims=policy).rows
    assert row.status is RowStatus.FAILED
    assert "runner environment is gitlab-hosted, expected self-hosted" in (row.reason or "")
    assert "pipeline source is push, expected schedule" in (row.reason or "")


def test_tampered_provenance_fails(signed: Signed, verifier: Any) -> None:
    registry = Registry()
    package = pypi_package(registry, signed, "attested", provenance=True)
    provenance = registry.provenance_by_file["attested-2.0.tar.gz"]
    provenance["attestation_bundles"][0]["publisher"]["repository"] = "someone/else"
    (row,) = run(registry, verifier, [package]).rows
    assert row.status is RowStatus.FAILED
    assert "source repository is https://gitlab.com/upstream/attested" in (row.reason or "")


def test_other_sources_are_reported_not_checked(signed: Signed, verifier: Any) -> None:
    git = LockedPackage("tool", "1", (LockedFile("tool", None),), "git", "https://x/y.git")
    foreign = LockedPackage(
        "far",
        "1",
        (LockedFile("far-1.tar.gz", "a" * 64),),
        "legacy",
        "https://gitlab.other/api/v4/projects/7/packages/pypi/simple",
    )
    rows = run(Registry(), verifier, [git, foreign]).rows
    assert [row.status for row in rows] == [RowStatus.NOT_CHECKED, RowStatus.FAILED]
    assert "another host" in (rows[1].reason or "")


def test_a_package_locked_without_files_still_gets_its_row(signed: Signed, verifier: Any) -> None:
    """Poetry locks git, path and url dependencies with `files = []`."""
    git = LockedPackage("tool", "1", (), "git", "https://x/y.git", "main")
    path = LockedPackage("local", "0.1", (), "directory", "../local")
    hashless = LockedPackage("bare", "2.0", ())  # a pypi.org entry without files
    report = run(Registry(), verifier, [git, path, hashless])
    verdicts = {row.package: (row.status, row.file) for row in report.rows}
    assert verdicts == {
        "tool": (RowStatus.NOT_CHECKED, "-"),
        "local": (RowStatus.NOT_CHECKED, "-"),
        "bare": (RowStatus.FAILED, "-"),
    }
    assert not report.ok


def test_parallel_requests_are_bounded_and_faster(signed: Signed, verifier: Any) -> None:
    registry = Registry()
    packages = [
        gitlab_package(registry, signed, f"p{n}", project_id=200 + n, files=2) for n in range(4)
    ]
    registry.latency = 0.05
    started = time.perf_counter()
    report = run(registry, verifier, packages, concurrency=8)
    parallel = time.perf_counter() - started
    assert report.ok
    # 4 packages x (project + index) + 8 files x material = 16 calls of 50 ms: 0.8 s serially
    assert parallel < 0.6


def test_classify_sources() -> None:
    def kind(url: str | None, source_type: str | None = "legacy") -> SourceKind:
        package = LockedPackage("x", "1", (), source_type, url)
        return classify(package, api_url=API).kind

    assert kind(None, None) is SourceKind.PYPI
    assert kind("https://pypi.org/simple") is SourceKind.PYPI
    assert kind(f"{API}/projects/grp%2Fa/packages/pypi/simple") is SourceKind.GITLAB
    assert kind(f"{API}/groups/7/-/packages/pypi/simple/") is SourceKind.GITLAB
    assert kind("https://other/api/v4/projects/1/packages/pypi/simple") is SourceKind.OTHER_GITLAB
    assert kind("https://mirror.example/simple") is SourceKind.OTHER
    assert kind("../local", "directory") is SourceKind.OTHER
    source = classify(
        LockedPackage("x", "1", (), "legacy", f"{API}/projects/grp%2Fa/packages/pypi/simple"),
        api_url=API,
    )
    assert source.project == "grp/a"


def test_read_lock(tmp_path: Path) -> None:
    lock = tmp_path / "poetry.lock"
    sha = "A" * 64
    lock.write_text(
        f"""
[[package]]
name = "alpha"
version = "1.0.0"
description = ""
optional = false
python-versions = ">=3.9"
groups = ["main"]
files = [
    {{file = "alpha-1.0.0-py3-none-any.whl", hash = "sha256:{sha}"}},
    {{file = "alpha-1.0.0.tar.gz", hash = "md5:abc"}},
]

[package.source]
type = "legacy"
url = "{API}/projects/100/packages/pypi/simple"
reference = "gitlab"

[[package]]
name = "requests"
version = "2.0"
description = ""
optional = false
python-versions = "*"
groups = ["main"]
files = []

[metadata]
lock-version = "2.1"
python-versions = ">=3.9"
content-hash = "x"
"""
    )
    alpha, requests = read_lock(lock)
    assert alpha.files[0].sha256 == "a" * 64 and alpha.files[1].sha256 is None
    assert alpha.source_type == "legacy" and alpha.source_reference == "gitlab"
    assert requests.source_url is None
    lock.write_text('[metadata]\nlock-version = "9.0"\n')
    with pytest.raises(ConfigError, match=r"lock-version '9\.0'"):
        read_lock(lock)
    with pytest.raises(ConfigError, match="run `poetry lock` first"):
        read_lock(tmp_path / "missing" / "poetry.lock")


def test_provenance_uses_its_own_verifier_made_once_and_only_when_needed(
    signed: Signed, verifier: Any
) -> None:
    registry = Registry()
    packages = [
        gitlab_package(registry, signed, "alpha"),
        pypi_package(registry, signed, "attested", provenance=True),
        pypi_package(registry, signed, "other", provenance=True),
        pypi_package(registry, signed, "plain", provenance=False),
    ]
    made: list[str] = []

    def provenance_verifier() -> Any:
        made.append("made")
        return verifier

    classified = [(p, classify(p, api_url=API)) for p in packages]
    options = LockOptions(identity_for=identity_for)
    report = verify_lock(
        classified,
        backend=registry,
        verifier=verifier,
        options=options,
        provenance_verifier=provenance_verifier,
    )
    assert report.ok and made == ["made"]

    def unavailable() -> Any:
        raise ConfigError("cannot load the trust config for PyPI provenance")

    rows = verify_lock(
        classified,
        backend=registry,
        verifier=verifier,
        options=options,
        provenance_verifier=unavailable,
    ).rows
    verdicts = {row.package: row.status for row in rows}
    assert verdicts == {
        "alpha": RowStatus.VERIFIED,  # the GitLab signatures never need the PyPI root
        "attested": RowStatus.FAILED,
        "other": RowStatus.FAILED,
        "plain": RowStatus.NO_PROVENANCE,
    }
    assert all("trust config for PyPI" in (r.reason or "") for r in rows if not r.ok)

    without = [(p, s) for p, s in classified if p.name in ("alpha", "plain")]
    made.clear()
    verify_lock(
        without,
        backend=registry,
        verifier=verifier,
        options=options,
        provenance_verifier=provenance_verifier,
    )
    assert made == []
