"""The release flow: build -> sign -> verify -> publish -> manifest, as plain functions.

The flow never imports the command: it reports through `Reporter` (step lines, verbose
details, retries, each published file, upload progress) and returns a `ReleaseOutcome` that
the command renders. The build is handed in as a callable (it needs Poetry and cleo's IO);
everything else is driven from `Settings` and a `ReleaseRequest`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from poetry_gitlab_release.errors import UsageError, VerificationError

if TYPE_CHECKING:
    from sigstore.verify import Verifier

    from poetry_gitlab_release.config.settings import Settings
    from poetry_gitlab_release.gitlab.releases import ReleasePageResult
    from poetry_gitlab_release.gitlab.uploads import Progress
    from poetry_gitlab_release.pypi.publish import IndexResult
    from poetry_gitlab_release.release.artifacts import Artifact
    from poetry_gitlab_release.release.build import BuildResult, ReleaseVersion
    from poetry_gitlab_release.release.manifest import ManifestResult
    from poetry_gitlab_release.release.publish import FileAction, PublishResult, Registry
    from poetry_gitlab_release.signing.identity import ExpectedIdentity

STEPS = (
    "configure",
    "build",
    "sign",
    "verify",
    "publish-signatures",
    "publish-packages",
    "publish-pypi",
)
# `publish` is every half, in their order: signatures, then packages to GitLab, then PyPI;
# each runs only for the targets given with --to (default: gitlab).
STEP_ALIASES = {"publish": ("publish-signatures", "publish-packages", "publish-pypi")}
DEFAULT_STEPS = ("build", "sign", "verify", "publish")
PUBLISH_STEPS: dict[str, Registry] = {"publish-signatures": "generic", "publish-packages": "pypi"}


def parse_steps(text: str) -> list[str]:
    """`build,sign` -> ["build", "sign"], in the flow's order whatever order was given."""
    requested: list[str] = []
    for part in (part.strip() for part in text.split(",")):
        if part:
            requested.extend(STEP_ALIASES.get(part, (part,)))
    unknown = [step for step in requested if step not in STEPS]
    if unknown or not requested:
        raise UsageError(
            f"unknown step {unknown[0]!r}" if unknown else "no step given",
            hint=f"--steps takes a comma-separated subset of {','.join(STEPS)} "
            "(publish = publish-signatures,publish-packages,publish-pypi)",
        )
    return [step for step in STEPS if step in requested]


class Reporter(Protocol):
    """What the flow tells whoever runs it; the command prints, a test records."""

    def step(self, text: str) -> None:
        """A line every run shows (`Signing 2 artifacts ...`, `  verified x.whl`)."""

    def detail(self, text: str) -> None:
        """A line shown with -v (the signer, the build environment)."""

    def retry(self, what: str, delay: float) -> None:
        """A transient failure of `what`, retried after `delay` seconds."""

    def rate_limit(self, message: str, delay: float) -> None:
        """A wait for GitLab's rate limit (a 429 without Retry-After): may last minutes."""

    def file_done(self, action: FileAction) -> None:
        """One file of the publish step: uploaded, skipped as identical, planned..."""

    def progress(self, label: str, size: int) -> Progress | None:
        """A progress display for one upload, or None for none."""

    def warning(self, text: str) -> None:
        """Something skipped that the user asked for, said at every verbosity (on stderr)."""


@dataclass(frozen=True)
class ReleaseRequest:
    name: str
    version: ReleaseVersion
    dist_dir: Path
    steps: tuple[str, ...]
    dry_run: bool = False
    attestations: bool = True
    cosign_compat: bool = False
    source_repository: str | None = None
    expected_ref: str | None = None
    release_page: bool = True
    # The Poetry project's directory: CHANGELOG.md for the Release notes, the manifest's path.
    project_dir: Path | None = None


@dataclass(frozen=True)
class ReleaseOutcome:
    manifest: ManifestResult
    expected: ExpectedIdentity | None
    publish: PublishResult | None
    pypi: IndexResult | None = None
    page: ReleasePageResult | None = None


def run_release(
    settings: Settings,
    request: ReleaseRequest,
    reporter: Reporter,
    *,
    build: Callable[[], BuildResult] | None = None,
    write_sbom: Callable[[list[Artifact]], Path] | None = None,
) -> ReleaseOutcome:
    """Run the requested steps (except configure) in order and write the manifest."""
    from poetry_gitlab_release.release.artifacts import load_artifacts

    steps = request.steps
    if "build" in steps:
        if build is None:
            raise UsageError("the build step needs the project to build")
        built = build_step(request, reporter, build)
        if write_sbom is not None:
            sbom = write_sbom(list(built.artifacts))
            reporter.step(f"  sbom   {sbom.name}  (CycloneDX)")
    artifacts = load_artifacts(request.dist_dir, request.name, request.version.value)
    if not artifacts:
        raise UsageError(
            f"no sdist or wheel of {request.name} {request.version.value} in {request.dist_dir}",
            hint="run the build step first, or pass the --release-version they were built with",
        )
    if "sign" in steps:
        sign_step(settings, request, artifacts, reporter)
    to_gitlab = "gitlab" in settings.targets
    registries = frozenset(
        PUBLISH_STEPS[step] for step in steps if step in PUBLISH_STEPS and to_gitlab
    )
    to_pypi = "publish-pypi" in steps and "pypi" in settings.targets
    if "publish-pypi" in steps and len(steps) == 1 and not to_pypi:
        raise UsageError(
            "--steps publish-pypi, but PyPI is not a target", hint="add --to gitlab,pypi"
        )
    expected = None
    if "verify" in steps or registries or to_pypi:
        expected = verify_step(settings, request, artifacts, reporter)
    publish = None
    if registries:
        assert expected is not None
        publish = publish_step(settings, request, artifacts, expected, registries, reporter)
    distributions = [a for a in artifacts if a.kind != "sbom"]  # PyPI takes distributions only
    pypi = pypi_step(settings, request, distributions, reporter) if to_pypi else None
    manifest = manifest_step(settings, request, artifacts, expected, publish, pypi)
    page = None
    if (
        publish is not None
        and not publish.dry_run
        and "pypi" in {f.registry for f in publish.files}
    ):
        page = release_page_step(settings, request, manifest, reporter)
    return ReleaseOutcome(
        manifest=manifest, expected=expected, publish=publish, pypi=pypi, page=page
    )


def build_step(
    request: ReleaseRequest, reporter: Reporter, build: Callable[[], BuildResult]
) -> BuildResult:
    version = request.version
    reporter.step(f"Building <c1>{request.name}</c1> <c2>{version.value}</c2> ({version.source})")
    built = build()
    for artifact in built.artifacts:
        reporter.step(f"  built  {artifact.name}  sha256 {artifact.sha256}")
    if built.stamped_urls:
        reporter.detail(f"  project URLs from GitLab: {', '.join(built.stamped_urls)}")
    if built.venv is not None:
        reporter.detail(f"  build environment: {built.venv}")
    return built


def sign_step(
    settings: Settings, request: ReleaseRequest, artifacts: list[Artifact], reporter: Reporter
) -> None:
    from poetry_gitlab_release.release.sign import sign_artifacts

    reporter.step(f"Signing {len(artifacts)} artifacts with one Sigstore certificate")
    to_pypi = "pypi" in settings.targets
    if to_pypi and not request.attestations:
        raise UsageError(
            "--no-attestations with a PyPI target: PyPI gets each file's PEP 740 attestation",
            hint="drop --no-attestations, or publish to --to gitlab only",
        )
    result = sign_artifacts(
        artifacts,
        settings.identity_token,
        trust_config=settings.trust_config,
        in_ci=settings.in_ci,
        attestations=request.attestations,
        cosign_compat=request.cosign_compat,
        rekor_v1=to_pypi,
        on_signed=lambda item: reporter.step(
            f"  signed {item.artifact.name}  rekor log index {item.log_index}"
        ),
        on_retry=reporter.retry,
    )
    reporter.detail(f"  signer {result.identity} (issuer {result.issuer})")


def verify_step(
    settings: Settings, request: ReleaseRequest, artifacts: list[Artifact], reporter: Reporter
) -> ExpectedIdentity:
    from poetry_gitlab_release.release.verify import signer_from_settings, verify_artifacts
    from poetry_gitlab_release.signing.trust import load_trust_config

    expected = signer_from_settings(
        settings, source_repository=request.source_repository, ref=request.expected_ref
    )
    reporter.step(f"Verifying against {expected.describe()}")
    result = verify_artifacts(
        artifacts, expected, trust_config=load_trust_config(settings.trust_config)
    )
    for item in result.verified:
        extra = " + PEP 740 attestation" if item.attestation is not None else ""
        reporter.step(f"  verified {item.artifact.name}{extra}")
    return expected


def publish_step(
    settings: Settings,
    request: ReleaseRequest,
    artifacts: list[Artifact],
    expected: ExpectedIdentity,
    registries: frozenset[Registry],
    reporter: Reporter,
) -> PublishResult:
    from poetry_gitlab_release.gitlab.client import GitLabClient
    from poetry_gitlab_release.gitlab.connection import Connection
    from poetry_gitlab_release.release.publish import PublishTarget, publish_release
    from poetry_gitlab_release.release.verify import verify_bundle_bytes
    from poetry_gitlab_release.signing.trust import load_trust_config

    project = settings.require_project()
    if not request.dry_run:
        settings.require_credential("publishing")
    target = PublishTarget(project=project, package=request.name, version=request.version.value)

    @functools.cache
    def verifier() -> Verifier:
        """Built on the first published signature to check: most publishes need none."""
        from sigstore.verify import Verifier

        return Verifier(trusted_root=load_trust_config(settings.trust_config).trusted_root)

    def check_signature(artifact: Artifact, file_name: str, data: bytes) -> None:
        verify_bundle_bytes(data, file_name, artifact, expected, verifier(), expected.to_policy())

    client: GitLabClient | None = None
    if settings.credential is not None or not request.dry_run:
        client = GitLabClient(
            Connection.from_settings(settings),
            on_retry=reporter.retry,
            on_rate_limit=reporter.rate_limit,
        )
    verb = "Checking what would be published" if request.dry_run else "Publishing"
    reporter.step(
        f"{verb}: signatures to the generic registry, then packages to GitLab's PyPI registry"
    )
    try:
        return publish_release(
            client,
            target,
            artifacts,
            api_url=settings.api_url,
            check_signature=check_signature,
            dry_run=request.dry_run,
            registries=registries,
            progress=reporter.progress,
            on_done=reporter.file_done,
        )
    finally:
        if client is not None:
            client.close()


def pypi_step(
    settings: Settings, request: ReleaseRequest, artifacts: list[Artifact], reporter: Reporter
) -> IndexResult:
    """Each file with its PEP 740 attestation to the PyPI index (Trusted Publishing or a token)."""
    from poetry_gitlab_release.pypi.index import IndexConnection, IndexURLs
    from poetry_gitlab_release.pypi.publish import publish_release
    from poetry_gitlab_release.release.render import STATUS_TEXT
    from poetry_gitlab_release.tls import ssl_context

    urls = IndexURLs.from_upload_url(settings.pypi_url, allow_http=True)  # checked in settings
    id_token, api_token = settings.pypi_id_token, settings.pypi_api_token
    how = "Trusted Publishing" if id_token else ("an API token" if api_token else "no token")
    verb = "Checking what would be published to" if request.dry_run else "Publishing to"
    reporter.step(f"{verb} the PyPI index {urls.upload} ({how})")
    statuses = {"skipped": "present"}
    with IndexConnection(urls, verify=ssl_context(None)) as connection:
        return publish_release(
            connection,
            name=request.name,
            version=request.version.value,
            files=[artifact.path for artifact in artifacts],
            id_token=None if id_token is None else id_token.reveal(),
            api_token=None if api_token is None else api_token.reveal(),
            in_ci=settings.in_ci,
            dry_run=request.dry_run,
            on_file=lambda item: reporter.step(
                f"  {item.name}  "
                f"{STATUS_TEXT.get(statuses.get(item.status, item.status), item.status)}"
                + (
                    " + PEP 740 attestation"
                    if item.attestation and item.status == "uploaded"
                    else ""
                )
            ),
        )


def manifest_step(
    settings: Settings,
    request: ReleaseRequest,
    artifacts: list[Artifact],
    expected: ExpectedIdentity | None,
    publish: PublishResult | None,
    pypi: IndexResult | None = None,
) -> ManifestResult:
    """Write dist/release.json, after checking no artifact changed during the release."""
    from poetry_gitlab_release.gitlab.urls import pypi_simple_url
    from poetry_gitlab_release.release.artifacts import load_artifacts
    from poetry_gitlab_release.release.manifest import ReleaseFacts, build_manifest, write_manifest

    project = settings.project_path or settings.project
    facts = ReleaseFacts(
        package=request.name,
        version=request.version.value,
        version_source=request.version.source,
        project=project,
        api_url=settings.api_url if project else None,
        pypi_simple_url=pypi_simple_url(settings.api_url, project=project) if project else None,
        steps=request.steps,
    )
    current = load_artifacts(request.dist_dir, request.name, request.version.value)
    if [a.sha256 for a in current] != [a.sha256 for a in artifacts]:
        raise VerificationError(f"the artifacts in {request.dist_dir} changed during the release")
    document: dict[str, Any] = build_manifest(
        facts,
        artifacts,
        expected=expected,
        publish=publish,
        targets=settings.targets,
        pypi=None if pypi is None else pypi.to_json(),
    )
    return write_manifest(request.dist_dir, document)


def release_page_step(
    settings: Settings, request: ReleaseRequest, manifest: ManifestResult, reporter: Reporter
) -> ReleasePageResult | None:
    """Create or update the tag's GitLab Release page (after the packages are published)."""
    from poetry_gitlab_release.config.credentials import TokenKind
    from poetry_gitlab_release.gitlab.client import GitLabClient
    from poetry_gitlab_release.gitlab.connection import Connection
    from poetry_gitlab_release.release.release_page import (
        asset_links,
        publish_release_page,
        release_notes,
    )

    if not (request.release_page and settings.release_page):
        return None
    if settings.commit_tag is None:
        reporter.detail("No Release page: not a tag pipeline (CI_COMMIT_TAG)")
        return None
    if settings.credential is not None and settings.credential.kind is TokenKind.DEPLOY:
        # Deploy tokens reach the package registries only, not the Releases API.
        reporter.warning(
            "No Release page: GitLab does not accept a deploy token on the Releases API "
            "(use the CI job token or a token with the api scope, or --no-release-page)"
        )
        return None
    project = settings.require_project()
    project_dir = request.project_dir or request.dist_dir.parent
    try:
        manifest_path: str | None = manifest.path.relative_to(project_dir).as_posix()
    except ValueError:
        manifest_path = None
    document = manifest.document
    notes = release_notes(
        project_dir,
        request.name,
        request.version.value,
        identity=document.get("identity"),
        issuer=document.get("issuer"),
        project=settings.project_path or project,
        files=[(item["file"], item["sha256"]) for item in document.get("files", [])],
    )
    links = asset_links(document, job_url=settings.job_url, manifest_path=manifest_path)
    with GitLabClient(Connection.from_settings(settings)) as client:
        return publish_release_page(
            client,
            project,
            settings.commit_tag,
            package=request.name,
            version=request.version.value,
            notes=notes,
            links=links,
            ref=settings.commit_sha,
        )
