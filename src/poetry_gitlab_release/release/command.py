"""`poetry gitlab-release`: configure, build, sign, verify and publish a release."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from cleo.helpers import option
from cleo.io.inputs.option import Option
from cleo.io.outputs.output import Verbosity

from poetry_gitlab_release.cli.base import EXIT_CODES_HELP, GitlabCommand
from poetry_gitlab_release.cli.options import (
    TRANSPORT_SETTINGS,
    host_option,
    transport_options,
)
from poetry_gitlab_release.config.settings import Settings
from poetry_gitlab_release.errors import UsageError
from poetry_gitlab_release.release.flow import DEFAULT_STEPS, STEPS, parse_steps

if TYPE_CHECKING:
    from pathlib import Path

    from poetry_gitlab_release.release.artifacts import Artifact
    from poetry_gitlab_release.release.flow import ReleaseOutcome

FORMATS = ("text", "json")


class ReleaseCommand(GitlabCommand):
    name = "gitlab-release"
    description = "Build, sign (Sigstore), verify and publish a release to GitLab's registries."
    setting_options: ClassVar[dict[str, str]] = {
        "gitlab-project": "project",
        "repository": "repository",
        "dist-dir": "dist-dir",
        "ci-config": "ci-config",
        "identity-token": "identity-token",
        "trust-config": "trust-config",
        "identity": "identity",
        "issuer": "issuer",
        "to": "to",
        "pypi-url": "pypi-url",
        **TRANSPORT_SETTINGS,
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
        *transport_options(),
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
        self._render(self._release(settings, steps))
        return 0

    def _release(self, settings: Settings, steps: list[str]) -> ReleaseOutcome:
        from poetry_gitlab_release.release.build import build_release, release_identity
        from poetry_gitlab_release.release.flow import ReleaseRequest, run_release
        from poetry_gitlab_release.release.render import CleoReporter

        poetry = self.poetry
        dist_dir = poetry.pyproject_path.parent / settings.dist_dir  # an absolute one stays
        name, version = release_identity(
            poetry, self.option("release-version"), settings.commit_tag
        )
        request = ReleaseRequest(
            name=name,
            version=version,
            dist_dir=dist_dir,
            steps=tuple(steps),
            dry_run=bool(self.option("dry-run")),
            attestations=not self.option("no-attestations"),
            cosign_compat=bool(self.option("cosign-compat")),
            source_repository=self.option("source-repository"),
            expected_ref=self.option("expected-ref"),
            release_page=not self.option("no-release-page"),
            project_dir=poetry.pyproject_path.parent,
        )

        def write_sbom(artifacts: list[Artifact]) -> Path:
            from importlib.metadata import version as installed_version

            from poetry_gitlab_release.release.sbom import poetry_dependencies
            from poetry_gitlab_release.release.sbom import write_sbom as write_cyclonedx

            direct, locked = poetry_dependencies(poetry)
            return write_cyclonedx(
                dist_dir,
                name,
                version.value,
                artifacts,
                direct,
                locked,
                tool_version=installed_version("poetry-gitlab-release"),
            )

        return run_release(
            settings,
            request,
            CleoReporter(self.io, json_output=self._json),
            build=lambda: build_release(
                poetry,
                self.io,
                dist_dir=dist_dir,
                version=version,
                project_url=settings.project_url,
            ),
            write_sbom=None if self.option("no-sbom") else write_sbom,
        )

    def _render(self, outcome: ReleaseOutcome) -> None:
        from poetry_gitlab_release.release.render import manifest_json, summary_lines

        document = outcome.manifest.document
        if self._json:
            self.line(manifest_json(document))
            return
        self.line("")
        for line in summary_lines(document):
            self.line(line)
        self.line("")
        self.line(f"Manifest: {outcome.manifest.path}")
        if outcome.page is not None:
            from poetry_gitlab_release.release.render import release_page_lines

            for line in release_page_lines(outcome.page):
                self.line(line)
        publish = outcome.publish
        if publish is not None and publish.dry_run and not publish.checked:
            self.line(
                "<comment>Dry run without a GitLab token: the registries were not checked."
                "</comment>"
            )

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
