"""`poetry gitlab-release`: configure, build, sign, verify and publish a release."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from cleo.helpers import option
from cleo.io.inputs.option import Option
from cleo.io.outputs.output import Verbosity

from poetry_gitlab_release.cli.base import EXIT_CODES_HELP, GitlabCommand
from poetry_gitlab_release.cli.options import (
    ca_file_option,
    client_cert_option,
    host_option,
    insecure_http_option,
)
from poetry_gitlab_release.config.settings import Settings
from poetry_gitlab_release.errors import UsageError

if TYPE_CHECKING:
    from sigstore.verify import Verifier

    from poetry_gitlab_release.gitlab.client import GitLabClient
    from poetry_gitlab_release.gitlab.releases import ReleasePageResult
    from poetry_gitlab_release.gitlab.uploads import Progress
    from poetry_gitlab_release.pypi.publish import IndexResult
    from poetry_gitlab_release.release.artifacts import Artifact
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
FORMATS = ("text", "json")


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


class ReleaseCommand(GitlabCommand):
    name = "gitlab-release"
    description = "Build, sign (Sigstore), verify and publish a release to GitLab's registries."
    setting_options: ClassVar[dict[str, str]] = {
        "host": "host",
        "token": "token",
        "gitlab-project": "project",
        "repository": "repository",
        "ca-file": "ca-file",
        "client-cert": "client-cert",
        "allow-insecure-http": "allow-insecure-http",
        "dist-dir": "dist-dir",
        "ci-config": "ci-config",
        "identity-token": "identity-token",
        "trust-config": "trust-config",
        "identity": "identity",
        "issuer": "issuer",
        "to": "to",
        "pypi-url": "pypi-url",
    }
    options: ClassVar[list[Option]] = [
        option(
            "steps",
            None,
            f"Comma-separated steps to run, in this order: {','.join(STEPS)} "
            f"[default: {','.join(DEFAULT_STEPS)}].",
            flag=False,
        ),
        option(
            "release-version",
            None,
            "Version to release [default: from CI_COMMIT_TAG (v1.2.3 -> 1.2.3), else "
            "pyproject.toml]. (Poetry keeps --version for itself.)",
            flag=False,
        ),
        option(
            "dist-dir",
            None,
            "Directory for artifacts and signatures, relative to the project "
            "[env: GITLAB_RELEASE_DIST_DIR; default: dist].",
            flag=False,
        ),
        option(
            "identity-token",
            None,
            "Sigstore OIDC identity token, or @FILE to read it [CI: SIGSTORE_ID_TOKEN].",
            flag=False,
        ),
        option(
            "trust-config",
            None,
            "Sigstore ClientTrustConfig JSON for a private Sigstore "
            "[env: GITLAB_RELEASE_TRUST_CONFIG; default: the public instance].",
            flag=False,
        ),
        option(
            "cosign-compat",
            None,
            "Also write <file>.sig and <file>.crt as `cosign sign-blob` does, and publish them.",
        ),
        option(
            "no-release-page",
            None,
            "Do not create or update the tag's GitLab Release page after publishing the "
            "packages [env: GITLAB_RELEASE_RELEASE_PAGE=false].",
        ),
        option(
            "no-sbom",
            None,
            "Do not write the CycloneDX SBOM <name>-<version>.cdx.json in the build step.",
        ),
        option(
            "no-attestations",
            None,
            "Do not write PEP 740 <file>.publish.attestation files.",
        ),
        option(
            "identity",
            None,
            "Expected signer identity (certificate SAN) [env: GITLAB_RELEASE_IDENTITY; "
            "default: https://SERVER/PROJECT//CI_CONFIG@REF].",
            flag=False,
        ),
        option(
            "issuer",
            None,
            "Expected OIDC issuer [env: GITLAB_RELEASE_ISSUER; default: CI_SERVER_URL].",
            flag=False,
        ),
        option(
            "source-repository",
            None,
            "Expected source repository URI extension [default: ISSUER/PROJECT_PATH].",
            flag=False,
        ),
        option(
            "expected-ref",
            None,
            "Expected git ref, e.g. refs/tags/v1.2.3 [default: refs/tags/CI_COMMIT_TAG or "
            "refs/heads/CI_COMMIT_REF_NAME].",
            flag=False,
        ),
        option(
            "ci-config",
            None,
            "CI configuration path in the expected identity [CI: CI_CONFIG_PATH; "
            "default: .gitlab-ci.yml].",
            flag=False,
        ),
        option(
            "format",
            None,
            "Output format: text (a summary) or json (the release manifest).",
            flag=False,
            default="text",
        ),
        option("dry-run", None, "Do everything except upload; list what would be uploaded."),
        option(
            "to",
            None,
            "Where to publish: gitlab, pypi, or gitlab,pypi [env: GITLAB_RELEASE_TO; "
            "default: gitlab].",
            flag=False,
        ),
        option(
            "pypi-url",
            None,
            "Upload URL of the PyPI index, or pypi / testpypi [env: GITLAB_RELEASE_PYPI_URL; "
            "default: https://upload.pypi.org/legacy/]. Credential: PYPI_ID_TOKEN (Trusted "
            "Publishing, from id_tokens with aud pypi) or PYPI_API_TOKEN.",
            flag=False,
        ),
        host_option(),
        option(
            "token",
            None,
            "GitLab token, or @FILE to read it [env: GITLAB_TOKEN; CI: CI_JOB_TOKEN].",
            flag=False,
        ),
        option(
            "gitlab-project",
            None,
            "GitLab project id or full path [env: GITLAB_RELEASE_PROJECT; CI: CI_PROJECT_ID].",
            flag=False,
        ),
        option(
            "repository",
            None,
            "Name of the Poetry repository to configure [default: gitlab].",
            flag=False,
        ),
        ca_file_option(),
        client_cert_option(),
        insecure_http_option(),
    ]
    help = f"""\
Runs the secure release recipe for the current Poetry project against GitLab.

<b>Steps</b> (<comment>--steps</comment> runs any subset; each reads what earlier ones left in dist/,
so a pipeline can split them across jobs that pass dist/ as an artifact):
  configure  make GitLab's PyPI registry a Poetry repository: repositories.<name>.url,
             http-basic credentials for the token kind, certificates.<name>.cert and
             virtualenvs.in-project = true. Idempotent; tokens are never printed. Not run
             by default.
  build      create or reuse the in-project .venv, build sdist and wheel with Poetry's
             builder. Version: --release-version, else CI_COMMIT_TAG, else pyproject.toml.
             Project URLs come from CI_PROJECT_URL when the project declares none. Stamped in
             memory: pyproject.toml is never modified. SOURCE_DATE_EPOCH makes it reproducible.
  sign       one Sigstore certificate for all artifacts; writes <file>.sigstore.json (bundle
             v0.3), <file>.publish.attestation (PEP 740) and, with --cosign-compat, <file>.sig
             and <file>.crt. Token: SIGSTORE_ID_TOKEN or --identity-token.
  verify     every artifact against the expected GitLab signer: identity
             https://SERVER/PROJECT_PATH//CI_CONFIG_PATH@REF, issuer CI_SERVER_URL, source
             repository and ref. Any mismatch stops the release (exit 1) naming file and field.
  publish    verifies again, then uploads the signature files to the generic registry
             (<name>/<version>/) and then wheel and sdist to the project's PyPI registry.
             Files already published with the same sha256 are skipped; a file published with
             other content stops the release before anything is uploaded. The two halves run
             alone as publish-signatures and publish-packages; packages alone are refused
             until every artifact's signature is in the generic registry.
             With --to gitlab,pypi (or pypi), then to the PyPI index (publish-pypi): each
             file with its PEP 740 attestation, through Trusted Publishing (PYPI_ID_TOKEN,
             exchanged once) or PYPI_API_TOKEN; the same file already there is skipped, a
             different one stops before any upload.

Writes dist/release.json (package, version, files and sha256, signer identity and issuer,
Rekor log indexes, URLs); <comment>--format json</comment> prints it.

Every setting also comes from the environment, from [tool.poetry-gitlab-release] in
pyproject.toml, or from GitLab CI's predefined variables, in that order after the option.
{EXIT_CODES_HELP}"""

    def run_command(self) -> int:
        steps = parse_steps(self.option("steps") or ",".join(DEFAULT_STEPS))
        output_format = self.option("format")
        if output_format not in FORMATS:
            raise UsageError(
                f"unknown format {output_format!r}", hint=f"--format takes {' or '.join(FORMATS)}"
            )
        self._json = output_format == "json"
        settings = self.resolve(use_project=True)
        if "configure" in steps:
            self._configure(settings)
        if steps == ["configure"]:
            return 0
        self._release(settings, steps)
        return 0

    # --- the flow ----------------------------------------------------------------------------

    def _release(self, settings: Settings, steps: list[str]) -> None:
        from poetry_gitlab_release.release.artifacts import load_artifacts
        from poetry_gitlab_release.release.build import build_release, release_identity

        poetry = self.poetry
        project_dir = poetry.pyproject_path.parent
        dist_dir = (
            settings.dist_dir
            if settings.dist_dir.is_absolute()
            else (project_dir / settings.dist_dir)
        )
        name, version = release_identity(
            poetry, self.option("release-version"), settings.commit_tag
        )
        dry_run = bool(self.option("dry-run"))
        if "build" in steps:
            self._say(f"Building <c1>{name}</c1> <c2>{version.value}</c2> ({version.source})")
            built = build_release(
                poetry,
                self.io,
                dist_dir=dist_dir,
                version=version,
                project_url=settings.project_url,
            )
            for artifact in built.artifacts:
                self._say(f"  built  {artifact.name}  sha256 {artifact.sha256}")
            if built.stamped_urls:
                urls = ", ".join(built.stamped_urls)
                self._say(f"  project URLs from GitLab: {urls}", Verbosity.VERBOSE)
            if built.venv is not None:
                self._say(f"  build environment: {built.venv}", Verbosity.VERBOSE)
            if not self.option("no-sbom"):
                self._write_sbom(dist_dir, name, version.value, list(built.artifacts))
        artifacts = load_artifacts(dist_dir, name, version.value)
        if not artifacts:
            raise UsageError(
                f"no sdist or wheel of {name} {version.value} in {dist_dir}",
                hint="run the build step first, or pass the --release-version they were built with",
            )
        expected = None
        if "sign" in steps:
            self._sign(settings, artifacts)
        to_gitlab = "gitlab" in settings.targets
        registries = frozenset(
            PUBLISH_STEPS[step] for step in steps if step in PUBLISH_STEPS and to_gitlab
        )
        to_pypi = "publish-pypi" in steps and "pypi" in settings.targets
        if "publish-pypi" in steps and len(steps) == 1 and not to_pypi:
            raise UsageError(
                "--steps publish-pypi, but PyPI is not a target", hint="add --to gitlab,pypi"
            )
        if "verify" in steps or registries or to_pypi:
            expected = self._verify(settings, artifacts)
        publish = None
        if registries:
            assert expected is not None
            publish = self._publish(
                settings, name, version.value, artifacts, expected, dry_run, registries
            )
        pypi = (
            self._publish_pypi(
                settings,
                name,
                version.value,
                [a for a in artifacts if a.kind != "sbom"],  # PyPI takes distributions only
                dry_run,
            )
            if to_pypi
            else None
        )
        self._finish(settings, name, version, steps, artifacts, expected, publish, dist_dir, pypi)

    def _write_sbom(
        self, dist_dir: Path, name: str, version: str, artifacts: list[Artifact]
    ) -> None:
        from importlib.metadata import version as installed_version

        from poetry_gitlab_release.release.sbom import poetry_dependencies, write_sbom

        direct, locked = poetry_dependencies(self.poetry)
        path = write_sbom(
            dist_dir,
            name,
            version,
            artifacts,
            direct,
            locked,
            tool_version=installed_version("poetry-gitlab-release"),
        )
        self._say(f"  sbom   {path.name}  (CycloneDX)")

    def _sign(self, settings: Settings, artifacts: list[Artifact]) -> None:
        from poetry_gitlab_release.release.sign import sign_artifacts

        self._say(f"Signing {len(artifacts)} artifacts with one Sigstore certificate")
        to_pypi = "pypi" in settings.targets
        if to_pypi and self.option("no-attestations"):
            raise UsageError(
                "--no-attestations with a PyPI target: PyPI gets each file's PEP 740 attestation",
                hint="drop --no-attestations, or publish to --to gitlab only",
            )
        result = sign_artifacts(
            artifacts,
            settings.identity_token,
            trust_config=settings.trust_config,
            in_ci=settings.in_ci,
            attestations=not self.option("no-attestations"),
            cosign_compat=bool(self.option("cosign-compat")),
            rekor_v1=to_pypi,
            on_signed=lambda item: self._say(
                f"  signed {item.artifact.name}  rekor log index {item.log_index}"
            ),
            on_retry=lambda what, delay: self.line_error(
                f"  {what}; retrying in {delay:.1f}s", verbosity=Verbosity.VERBOSE
            ),
        )
        self._say(f"  signer {result.identity} (issuer {result.issuer})", Verbosity.VERBOSE)

    def _expected(self, settings: Settings) -> ExpectedIdentity:
        from poetry_gitlab_release.release.verify import expected_identity

        return expected_identity(
            settings,
            source_repository=self.option("source-repository"),
            ref=self.option("expected-ref"),
        )

    def _verify(self, settings: Settings, artifacts: list[Artifact]) -> ExpectedIdentity:
        from poetry_gitlab_release.release.sign import load_trust_config
        from poetry_gitlab_release.release.verify import verify_artifacts

        expected = self._expected(settings)
        self._say(f"Verifying against {expected.describe()}")
        result = verify_artifacts(
            artifacts, expected, trust_config=load_trust_config(settings.trust_config)
        )
        for item in result.verified:
            extra = " + PEP 740 attestation" if item.attestation is not None else ""
            self._say(f"  verified {item.artifact.name}{extra}")
        return expected

    def _publish(
        self,
        settings: Settings,
        name: str,
        version: str,
        artifacts: list[Artifact],
        expected: ExpectedIdentity,
        dry_run: bool,
        registries: frozenset[Registry],
    ) -> PublishResult:
        from poetry_gitlab_release.gitlab.client import GitLabClient
        from poetry_gitlab_release.release.publish import PublishTarget, publish_release
        from poetry_gitlab_release.release.sign import load_trust_config
        from poetry_gitlab_release.release.verify import verify_bundle_bytes

        project = settings.require_project()
        if not dry_run:
            settings.require_credential("publishing")
        target = PublishTarget(project=project, package=name, version=version)

        @functools.cache
        def verifier() -> Verifier:
            """Built on the first published signature to check: most publishes need none."""
            from sigstore.verify import Verifier

            return Verifier(trusted_root=load_trust_config(settings.trust_config).trusted_root)

        def check_signature(artifact: Artifact, file_name: str, data: bytes) -> None:
            verify_bundle_bytes(
                data, file_name, artifact, expected, verifier(), expected.to_policy()
            )

        def on_retry(what: str, delay: float) -> None:
            self.line_error(f"  {what}; retrying in {delay:.1f}s", verbosity=Verbosity.VERBOSE)

        client: GitLabClient | None = None
        if settings.credential is not None or not dry_run:
            client = GitLabClient(
                settings,
                on_retry=on_retry,
                on_rate_limit=lambda message, _delay: self.line_error(f"  {message}"),
            )
        verb = "Checking what would be published" if dry_run else "Publishing"
        self._say(
            f"{verb}: signatures to the generic registry, then packages to GitLab's PyPI registry"
        )
        try:
            return publish_release(
                client,
                target,
                artifacts,
                api_url=settings.api_url,
                check_signature=check_signature,
                dry_run=dry_run,
                registries=registries,
                progress=self._progress_factory(),
                on_done=self._report_file,
            )
        finally:
            if client is not None:
                client.close()

    def _publish_pypi(
        self,
        settings: Settings,
        name: str,
        version: str,
        artifacts: list[Artifact],
        dry_run: bool,
    ) -> IndexResult:
        from poetry_gitlab_release.pypi.index import IndexConnection, IndexURLs
        from poetry_gitlab_release.pypi.publish import publish_release
        from poetry_gitlab_release.release.render import STATUS_TEXT
        from poetry_gitlab_release.tls import ssl_context

        urls = IndexURLs.from_upload_url(settings.pypi_url, allow_http=True)  # checked in settings
        id_token, api_token = settings.pypi_id_token, settings.pypi_api_token
        how = "Trusted Publishing" if id_token else ("an API token" if api_token else "no token")
        verb = "Checking what would be published to" if dry_run else "Publishing to"
        self._say(f"{verb} the PyPI index {urls.upload} ({how})")
        statuses = {"skipped": "present"}
        with IndexConnection(urls, verify=ssl_context(None)) as connection:
            return publish_release(
                connection,
                name=name,
                version=version,
                files=[artifact.path for artifact in artifacts],
                id_token=None if id_token is None else id_token.reveal(),
                api_token=None if api_token is None else api_token.reveal(),
                in_ci=settings.in_ci,
                dry_run=dry_run,
                on_file=lambda item: self._say(
                    f"  {item.name}  "
                    f"{STATUS_TEXT.get(statuses.get(item.status, item.status), item.status)}"
                    + (
                        " + PEP 740 attestation"
                        if item.attestation and item.status == "uploaded"
                        else ""
                    )
                ),
            )

    def _finish(
        self,
        settings: Settings,
        name: str,
        version: object,
        steps: list[str],
        artifacts: list[Artifact],
        expected: ExpectedIdentity | None,
        publish: PublishResult | None,
        dist_dir: Path,
        pypi: IndexResult | None = None,
    ) -> None:
        from poetry_gitlab_release.gitlab.urls import pypi_simple_url
        from poetry_gitlab_release.release.artifacts import load_artifacts
        from poetry_gitlab_release.release.build import ReleaseVersion
        from poetry_gitlab_release.release.manifest import (
            ReleaseFacts,
            build_manifest,
            write_manifest,
        )
        from poetry_gitlab_release.release.render import manifest_json, summary_lines

        assert isinstance(version, ReleaseVersion)
        project = settings.project_path or settings.project
        facts = ReleaseFacts(
            package=name,
            version=version.value,
            version_source=version.source,
            project=project,
            api_url=settings.api_url if project else None,
            pypi_simple_url=pypi_simple_url(settings.api_url, project=project) if project else None,
            steps=tuple(steps),
        )
        current = load_artifacts(dist_dir, name, version.value)
        if [a.sha256 for a in current] != [a.sha256 for a in artifacts]:
            from poetry_gitlab_release.errors import VerificationError

            raise VerificationError(f"the artifacts in {dist_dir} changed during the release")
        document = build_manifest(
            facts,
            artifacts,
            expected=expected,
            publish=publish,
            targets=settings.targets,
            pypi=None if pypi is None else pypi.to_json(),
        )
        manifest = write_manifest(dist_dir, document)
        page = None
        if (
            publish is not None
            and not publish.dry_run
            and "pypi" in {f.registry for f in publish.files}
        ):
            page = self._release_page(settings, name, version.value, document, manifest.path)
        if self._json:
            self.line(manifest_json(document))
            return
        self.line("")
        for line in summary_lines(document):
            self.line(line)
        self.line("")
        self.line(f"Manifest: {manifest.path}")
        if page is not None:
            from poetry_gitlab_release.release.render import release_page_lines

            for line in release_page_lines(page):
                self.line(line)
        if publish is not None and publish.dry_run and not publish.checked:
            self.line(
                "<comment>Dry run without a GitLab token: the registries were not checked."
                "</comment>"
            )

    def _release_page(
        self,
        settings: Settings,
        name: str,
        version: str,
        document: dict[str, Any],
        manifest: Path,
    ) -> ReleasePageResult | None:
        """Create or update the tag's GitLab Release page (after the packages are published)."""
        from poetry_gitlab_release.gitlab.client import GitLabClient
        from poetry_gitlab_release.release.release_page import (
            asset_links,
            publish_release_page,
            release_notes,
        )

        if self.option("no-release-page") or not settings.release_page:
            return None
        if settings.commit_tag is None:
            self._say("No Release page: not a tag pipeline (CI_COMMIT_TAG)", Verbosity.VERBOSE)
            return None
        from poetry_gitlab_release.config.settings import TokenKind

        if settings.credential is not None and settings.credential.kind is TokenKind.DEPLOY:
            # Deploy tokens reach the package registries only, not the Releases API.
            self.line_error(
                "No Release page: GitLab does not accept a deploy token on the Releases API "
                "(use the CI job token or a token with the api scope, or --no-release-page)"
            )
            return None
        project = settings.require_project()
        try:
            manifest_path = manifest.relative_to(self.poetry.pyproject_path.parent).as_posix()
        except ValueError:
            manifest_path = None
        notes = release_notes(
            self.poetry.pyproject_path.parent,
            name,
            version,
            identity=document.get("identity"),
            issuer=document.get("issuer"),
            project=settings.project_path or project,
            files=[(item["file"], item["sha256"]) for item in document.get("files", [])],
        )
        links = asset_links(document, job_url=settings.job_url, manifest_path=manifest_path)
        with GitLabClient(settings) as client:
            return publish_release_page(
                client,
                project,
                settings.commit_tag,
                package=name,
                version=version,
                notes=notes,
                links=links,
                ref=settings.commit_sha,
            )

    # --- output helpers ----------------------------------------------------------------------

    def _say(self, text: str, verbosity: Verbosity = Verbosity.NORMAL) -> None:
        """Step lines: stdout for text output, stderr when stdout carries JSON."""
        if self._json:
            self.line_error(text, verbosity=verbosity)
        else:
            self.line(text, verbosity=verbosity)

    def _report_file(self, action: FileAction) -> None:
        from poetry_gitlab_release.release.render import STATUS_TEXT

        self._say(f"  {action.file_name}  {STATUS_TEXT.get(action.status, action.status)}")

    def _progress_factory(self) -> Callable[[str, int], Progress | None] | None:
        import sys

        from poetry_gitlab_release.release.render import CleoProgress

        if not sys.stderr.isatty() or self.io.output.is_quiet():
            return None
        output = self.io.error_output
        return lambda label, size: CleoProgress(output, label)

    def _configure(self, settings: Settings) -> None:
        from poetry_gitlab_release.release.configure import configure_poetry, source_hint

        poetry = self.poetry
        changes = configure_poetry(settings, poetry.config, poetry.pyproject_path.parent)
        for change in changes:
            state = "<info>set</info>      " if change.changed else "<comment>unchanged</comment>"
            self.line(f"  {state} {change.key} = {change.shown_value} ({change.location})")
        hint = source_hint(settings, dict(poetry.pyproject.data))
        if hint:
            self.line(hint, verbosity=Verbosity.VERBOSE)
