"""`poetry gitlab-verify`: verify a release as a consumer (registry or local files)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from cleo.helpers import argument, option
from cleo.io.outputs.output import Verbosity

from poetry_gitlab_release.cli.base import EXIT_CODES_HELP, GitlabCommand
from poetry_gitlab_release.cli.options import (
    ca_file_option,
    client_cert_option,
    host_option,
    insecure_http_option,
)
from poetry_gitlab_release.errors import EXIT_FAILURE, EXIT_OK, ConfigError, UsageError

PINS_FILE = "gitlab-verify.lock"  # verify/pins.py's name, repeated: this module stays light

if TYPE_CHECKING:
    from collections.abc import Callable

    from cleo.io.inputs.argument import Argument
    from cleo.io.inputs.option import Option
    from sigstore.verify import Verifier

    from poetry_gitlab_release.config.settings import Settings
    from poetry_gitlab_release.signing.claims import ClaimPolicy
    from poetry_gitlab_release.signing.identity import ExpectedIdentity
    from poetry_gitlab_release.verify.flow import IdentityOptions, Requirement
    from poetry_gitlab_release.verify.lock import LockReport
    from poetry_gitlab_release.verify.pins import PinStore
    from poetry_gitlab_release.verify.report import Report

FORMATS = ("table", "json")


class VerifyCommand(GitlabCommand):
    name = "gitlab-verify"
    description = (
        "Verify every file of a release on GitLab (or local files) against its Sigstore "
        "signature and the expected GitLab CI signer."
    )
    setting_options: ClassVar[dict[str, str]] = {
        "host": "host",
        "token": "token",
        "gitlab-project": "project",
        "group": "group",
        "ca-file": "ca-file",
        "client-cert": "client-cert",
        "allow-insecure-http": "allow-insecure-http",
        "ci-config": "ci-config",
        "trust-config": "trust-config",
        "identity": "identity",
        "issuer": "issuer",
    }
    arguments: ClassVar[list[Argument]] = [
        argument(
            "targets",
            "`name==version` or `name` (latest release) from the registry, or paths of local "
            "files (wheels, sdists, any artifact); none with --lock.",
            optional=True,
            multiple=True,
        )
    ]
    options: ClassVar[list[Option]] = [
        option(
            "gitlab-project",
            None,
            "Project id or full path whose PyPI registry holds the release, and whose generic "
            "registry holds the signatures [env: GITLAB_RELEASE_PROJECT; CI: CI_PROJECT_ID].",
            flag=False,
        ),
        option(
            "group",
            None,
            "Use the group-level index of this group id or path; signatures come from the "
            "project that publishes the package (or --gitlab-project).",
            flag=False,
        ),
        host_option(),
        option(
            "token",
            None,
            "read_api or deploy token (read_package_registry), or @FILE to read it; not needed "
            "for public projects [env: GITLAB_TOKEN; CI: CI_JOB_TOKEN].",
            flag=False,
        ),
        option(
            "dest",
            None,
            "Directory to download the release into [default: a temporary directory, removed "
            "afterwards]. Files that fail verification are deleted from it.",
            flag=False,
        ),
        option(
            "bundle-dir",
            None,
            "Local files: look for <file>.sigstore.json / .publish.attestation / .sig+.crt "
            "here first, then beside each file.",
            flag=False,
        ),
        option(
            "bundle",
            None,
            "Local files: the signature material of the single file given (any name; "
            "*.publish.attestation is read as PEP 740).",
            flag=False,
        ),
        option(
            "identity",
            None,
            "Expected certificate identity (SAN), exactly; replaces the default identity.",
            flag=False,
        ),
        option(
            "issuer",
            None,
            "Expected OIDC issuer [default: the GitLab URL, e.g. https://gitlab.com].",
            flag=False,
        ),
        option(
            "ref",
            None,
            "Expected git ref of the signing pipeline: refs/heads/BRANCH, refs/tags/TAG, or a "
            "bare tag name [default: refs/tags/v{version}].",
            flag=False,
        ),
        option(
            "ref-regex",
            None,
            "Accept any ref fully matching this regular expression (e.g. 'refs/tags/v.*').",
            flag=False,
        ),
        option(
            "ci-config",
            None,
            "Path of the signing project's CI configuration [default: .gitlab-ci.yml].",
            flag=False,
        ),
        option(
            "trust-config",
            None,
            "Sigstore ClientTrustConfig JSON for a private Sigstore instance.",
            flag=False,
        ),
        option(
            "trusted-root",
            None,
            "Sigstore TrustedRoot JSON to verify against (instead of a trust config).",
            flag=False,
        ),
        option(
            "offline",
            None,
            "No TUF refresh: use the production trust root embedded in sigstore-python. "
            "Detached .sig/.crt cannot be verified offline.",
        ),
        option("format", None, "Output format: table or json.", flag=False, default="table"),
        option(
            "junit", None, "Also write a JUnit XML report to FILE (GitLab test report).", flag=False
        ),
        option(
            "install",
            None,
            "After every file verified, pip-install exactly the verified files from --dest "
            "(no index, no second download).",
        ),
        option(
            "python",
            None,
            "Interpreter for --install [default: $VIRTUAL_ENV's, else python3 on PATH].",
            flag=False,
        ),
        # --- immutable claims, pinned signers, the whole lock (#14) ---
        option(
            "project-id",
            None,
            "The signing project's numeric id, which the certificate must carry [default: the "
            "id GitLab gives the project being verified, or the pinned one].",
            flag=False,
        ),
        option(
            "namespace-id",
            None,
            "The signing project's group (namespace) numeric id [default: GitLab's answer, or "
            "the pinned one].",
            flag=False,
        ),
        option(
            "runner-environment",
            None,
            "Require this runner environment: gitlab-hosted or self-hosted.",
            flag=False,
        ),
        option(
            "pipeline-source",
            None,
            "Require a pipeline started this way (push, web, schedule, api, trigger, ...); "
            "repeat or comma-separate for several.",
            flag=False,
            multiple=True,
        ),
        option(
            "environment",
            None,
            "Require the signing job to deploy to this GitLab environment.",
            flag=False,
        ),
        option(
            "pins",
            None,
            f"Pinned signers file [default: {PINS_FILE} beside poetry.lock, in a Poetry project; "
            "outside one, no pinning].",
            flag=False,
        ),
        option(
            "accept-signer-change",
            None,
            "Accept, and pin, a signer (project id, namespace id, identity, issuer) or a presence "
            "of signatures that differs from the pinned one.",
        ),
        option(
            "lock",
            None,
            "Verify every file of poetry.lock: GitLab registry packages by their signatures, "
            "pypi.org packages by their PEP 740 provenance.",
        ),
        option(
            "pypi-url",
            None,
            "The PyPI whose Integrity API --lock asks for provenance [default: https://pypi.org].",
            flag=False,
        ),
        option(
            "concurrency",
            None,
            "With --lock, how many requests run at once [default: 8].",
            flag=False,
            default="8",
        ),
        ca_file_option(),
        client_cert_option(),
        insecure_http_option(),
    ]
    help = f"""\
Verifies a release published by <comment>poetry gitlab-release</comment>, as a consumer. Works outside any
Poetry project (pyproject.toml settings are not read).

<b>From the registry</b>
  <comment>poetry gitlab-verify hello-package==1.0.0 --gitlab-project group/hello-package</comment>
  <comment>poetry gitlab-verify hello-package --group group</comment>      (latest final release)
Resolves every file of the release (all wheels and the sdist) from the PyPI simple index,
downloads them into --dest checking the index sha256, fetches each file's signature from the
project's generic registry at <name>/<version>/<file>.sigstore.json (else
.publish.attestation; .sig/.crt only online) and verifies it.

<b>Local files</b>
  <comment>poetry gitlab-verify dist/*.whl dist/*.tar.gz --gitlab-project group/hello-package --ref v1.0.0</comment>
  <comment>poetry gitlab-verify a.txt --bundle a.sigstore.json --identity URI --issuer URL</comment>

<b>Expected signer</b> (the default identity)
  identity  https://HOST/PROJECT_PATH//.gitlab-ci.yml@refs/tags/vVERSION
  issuer    https://HOST (the GitLab URL)
plus the certificate's source repository (ISSUER/PROJECT_PATH) and ref extensions.
--ref, --ref-regex, --ci-config, --identity and --issuer override it. The GitLab project option
is --gitlab-project because Poetry reserves --project/-P for the project directory.

<b>Immutable claims</b>: the certificate's project id and namespace id (Fulcio OIDs
1.3.6.1.4.1.57264.1.15 and .17) must be the ones GitLab gives the project now, or
--project-id/--namespace-id, or the pinned ones; --runner-environment, --pipeline-source and
--environment add requirements. A renamed project whose path someone else took is refused.

<b>Pinned signers</b>: in a Poetry project, the first verification of a package records its
signer in {PINS_FILE} (commit it); later ones fail when the signer, the ids or the presence
of signatures change, until --accept-signer-change.

<b>The whole lock</b>
  <comment>poetry gitlab-verify --lock</comment>     (in a Poetry project; -C DIR elsewhere)
Every file of every poetry.lock package from a GitLab registry must be signed; pypi.org files
are checked against their PEP 740 provenance where PyPI has one ("no provenance" otherwise).
One row per file; exit 1 if a file that should be signed fails.

<b>Root of trust</b>: --trust-config or --trusted-root; else Sigstore production, refreshed over
TUF, or with --offline the copy embedded in sigstore-python.

<b>Output</b>: a table (file, sha256, signer identity, ref, commit, job URL, Rekor log index,
verdict), or --format json; --junit FILE for GitLab's test report. Each failure is also one
line on stderr naming the file and the reason.
{EXIT_CODES_HELP}
Exit 0 only when every file of the release verified: one unsigned or failing file gives 1.
"""

    def run_command(self) -> int:
        from poetry_gitlab_release.verify.flow import (
            IdentityOptions,
            expected_identity,
            parse_requirement,
        )

        targets: list[str] = self.argument("targets") or []
        if self.option("lock"):
            if targets:
                raise UsageError("--lock verifies poetry.lock: give no targets with it")
        elif not targets:
            raise UsageError("give `name==version`, `name`, paths of files to verify, or --lock")
        output_format = self.option("format")
        if output_format not in FORMATS:
            raise UsageError(f"--format {output_format!r}: expected one of {', '.join(FORMATS)}")
        if self.option("ref") and self.option("ref-regex"):
            raise UsageError("give --ref or --ref-regex, not both")
        settings = self.resolve(use_project=False)
        identity_options = IdentityOptions(
            identity=settings.identity,
            issuer=settings.issuer,
            ref=self.option("ref"),
            ref_regex=self.option("ref-regex"),
            ci_config=settings.ci_config_path,
        )
        trusted_root = self._existing_file("trusted-root")
        offline = bool(self.option("offline"))
        if self.option("lock"):
            return self._lock(settings, identity_options, trusted_root, offline)

        local = [Path(target) for target in targets if Path(target).exists()]
        if len(targets) == 1 and not local:
            requirement = parse_requirement(targets[0])
            report = self._registry(settings, requirement, identity_options, trusted_root, offline)
        else:
            missing = [target for target in targets if not Path(target).is_file()]
            if missing:
                raise UsageError(f"no such file: {missing[0]}")
            expected = expected_identity(
                identity_options,
                server_url=settings.server_url,
                project_path=settings.project_path,
                version=None,
            )
            report = self._local(local, expected, settings, trusted_root, offline)
        return self._finish(report)

    # --- the two sources ---------------------------------------------------------------------

    def _verifier_factory(
        self, settings: Settings, trusted_root: Path | None, offline: bool
    ) -> Callable[[], Verifier]:
        from poetry_gitlab_release.signing.trust import make_verifier

        return lambda: make_verifier(settings.trust_config, trusted_root, offline)

    def _registry(
        self,
        settings: Settings,
        requirement: Requirement,
        identity_options: IdentityOptions,
        trusted_root: Path | None,
        offline: bool,
    ) -> Report:
        from poetry_gitlab_release.verify.flow import verify_registry

        if self.option("group") is None and settings.project is None:
            raise ConfigError(
                "missing project: pass --gitlab-project ID|PATH or --group ID|PATH "
                "(in GitLab CI, CI_PROJECT_ID is the default)"
            )
        dest_option = self.option("dest")
        dest = Path(dest_option) if dest_option else Path(tempfile.mkdtemp(prefix="gitlab-verify-"))
        self._temporary = None if dest_option else dest
        pins = self._pins()
        report = verify_registry(
            settings,
            requirement,
            dest=dest,
            identity_options=identity_options,
            make_verifier=self._verifier_factory(settings, trusted_root, offline),
            online_log=not offline,
            group_index=self.option("group") is not None,
            progress=self._progress,
            claims=self._claim_policy(),
            pins=pins,
            accept_signer_change=bool(self.option("accept-signer-change")),
        )
        if pins is not None and pins.save():
            self.line_error(f"pinned the signer of {requirement.name} in {pins.path}")
        return _without_failed_downloads(report)

    # --- claims, pins and the lock (#14) ------------------------------------------------------

    def _claim_policy(self, *, with_ids: bool = True) -> ClaimPolicy:
        from poetry_gitlab_release.signing.claims import ClaimPolicy, pipeline_sources

        project_id, namespace_id = self.option("project-id"), self.option("namespace-id")
        if not with_ids and (project_id or namespace_id):
            raise UsageError(
                "--project-id/--namespace-id name one project; with --lock each package's ids "
                f"come from GitLab and {PINS_FILE}"
            )
        origins = {}
        if project_id:
            origins["project_id"] = "--project-id"
        if namespace_id:
            origins["namespace_id"] = "--namespace-id"
        return ClaimPolicy(
            project_id=project_id or None,
            namespace_id=namespace_id or None,
            runner_environment=self.option("runner-environment") or None,
            pipeline_sources=pipeline_sources(self.option("pipeline-source") or []),
            environment=self.option("environment") or None,
            origins=origins,
        )

    def _pins(self) -> PinStore | None:
        from poetry_gitlab_release.verify.pins import PinStore, default_pins_path

        given = self.option("pins")
        path = Path(given).expanduser() if given else default_pins_path(self.project_directory())
        return None if path is None else PinStore.load(path)

    def _lock(
        self,
        settings: Settings,
        identity_options: IdentityOptions,
        trusted_root: Path | None,
        offline: bool,
    ) -> int:
        from poetry_gitlab_release.gitlab.client import GitLabClient
        from poetry_gitlab_release.signing.trust import make_verifier
        from poetry_gitlab_release.verify.flow import ProjectFacts, expected_identity
        from poetry_gitlab_release.verify.lock import LockOptions, verify_lock
        from poetry_gitlab_release.verify.lock_backend import RegistryBackend
        from poetry_gitlab_release.verify.lockfile import (
            PYPI_URL,
            LockedPackage,
            classify,
            read_lock,
        )

        concurrency = self.option("concurrency")
        if not str(concurrency).isdigit() or not 1 <= int(concurrency) <= 64:
            raise UsageError(f"--concurrency {concurrency!r}: expected a number from 1 to 64")
        lock_path = self.project_directory() / "poetry.lock"
        pypi_url = self.option("pypi-url") or PYPI_URL
        packages = [
            (package, classify(package, api_url=settings.api_url, pypi_url=pypi_url))
            for package in read_lock(lock_path)
        ]

        def identity_for(package: LockedPackage, facts: ProjectFacts) -> ExpectedIdentity:
            return expected_identity(
                identity_options,
                server_url=settings.server_url,
                project_path=facts.path,
                version=package.version,
            )

        options = LockOptions(
            identity_for=identity_for,
            claims=self._claim_policy(with_ids=False),
            online_log=not offline,
            concurrency=int(concurrency),
            accept_signer_change=bool(self.option("accept-signer-change")),
        )
        pins = self._pins()
        verifier = make_verifier(settings.trust_config, trusted_root, offline)
        self._progress(f"verifying {sum(len(p.files) for p, _ in packages)} files of {lock_path}")
        with GitLabClient(settings) as client:
            backend = RegistryBackend(client, settings, pypi_url=pypi_url, online_log=not offline)
            report = verify_lock(
                packages,
                backend=backend,
                verifier=verifier,
                options=options,
                pins=pins,
                lock_file=str(lock_path),
            )
            if report.ok and self.option("install"):
                from dataclasses import replace

                from poetry_gitlab_release.verify.install import target_python
                from poetry_gitlab_release.verify.lock_install import install_lock

                python = target_python(self.option("python"), os.environ)
                installed = install_lock(
                    client,
                    report,
                    packages,
                    python=python,
                    pypi_url=pypi_url,
                    concurrency=int(concurrency),
                )
                report = replace(report, installed=tuple(installed))
                self.line_error(f"installed {len(installed)} locked package(s) into {python}")
        return self._finish_lock(report)

    def _finish_lock(self, report: LockReport) -> int:
        from poetry_gitlab_release.verify.lock_render import (
            render_json,
            render_junit,
            render_table,
        )

        if self.option("format") == "json":
            self.line(render_json(report))
        else:
            self.line(f"<b>{report.lock_file}</b>")
            for line in render_table(report):
                self.line(line)
        junit = self.option("junit")
        if junit:
            Path(junit).write_text(render_junit(report), encoding="utf-8")
        for row in report.rows:
            if not row.ok:
                self.line_error(f"<error>{row.message()}</error>")
        if report.pins_written:
            self.line_error(f"pinned signers written to {report.pins_file}")
        counts = report.counts
        summary = (
            f"{len(report.rows)} locked file(s): {counts['verified']} verified, "
            f"{counts['failed'] + counts['unsigned']} failed, "
            f"{counts['no provenance']} without provenance, {counts['not checked']} not checked"
        )
        if report.ok:
            self.line_error(f"<info>{summary}</info>")
            return EXIT_OK
        self.line_error(f"<error>{summary}</error>")
        return EXIT_FAILURE

    def _local(
        self,
        paths: list[Path],
        expected: ExpectedIdentity,
        settings: Settings,
        trusted_root: Path | None,
        offline: bool,
    ) -> Report:
        from poetry_gitlab_release.signing.trust import make_verifier
        from poetry_gitlab_release.verify.flow import verify_local

        self._temporary = None
        return verify_local(
            paths,
            verifier=make_verifier(settings.trust_config, trusted_root, offline),
            expected=expected,
            bundle_dir=self._existing_dir("bundle-dir"),
            bundle=self._existing_file("bundle"),
            online_log=not offline,
            progress=self._progress,
            claims=self._claim_policy(),
        )

    # --- output -------------------------------------------------------------------------------

    def _finish(self, report: Report) -> int:
        from dataclasses import replace

        from poetry_gitlab_release.verify.render import render_json, render_junit, render_table

        try:
            if report.ok and self.option("install"):
                report = replace(report, installed=self._install(report))
            if self.option("format") == "json":
                self.line(render_json(report))
            else:
                self.line(f"<b>{report.subject}</b> from {report.source}")
                self.line(f"expected signer: {report.expected}")
                if report.pin is not None:
                    self.line(f"pinned signer ({report.pins_file}): {report.pin}")
                for line in render_table(report):
                    self.line(line)
            junit = self.option("junit")
            if junit:
                Path(junit).write_text(render_junit(report), encoding="utf-8")
            for result in report.results:
                if not result.ok:
                    self.line_error(f"<error>{result.message()}</error>")
            counts = report.counts
            summary = (
                f"{counts['verified']} of {len(report.results)} file(s) verified"
                f", {counts['failed']} failed, {counts['unsigned']} unsigned"
            )
            if report.ok:
                self.line_error(f"<info>{summary}</info>")
                return EXIT_OK
            self.line_error(f"<error>{summary}</error>")
            return EXIT_FAILURE
        finally:
            temporary = getattr(self, "_temporary", None)
            if temporary is not None:
                shutil.rmtree(temporary, ignore_errors=True)

    def _install(self, report: Report) -> bool:
        from poetry_gitlab_release.verify.install import install_verified, target_python

        python = target_python(self.option("python"), os.environ)
        workdir = report.dest or Path(tempfile.gettempdir())
        installed = install_verified(report.results, python, workdir=workdir)
        self.line_error(f"installed {', '.join(installed)} into {python} (verified files only)")
        return True

    def _progress(self, message: str) -> None:
        self.line_error(message, verbosity=Verbosity.VERBOSE)

    def _existing_file(self, name: str) -> Path | None:
        value = self.option(name)
        if not value:
            return None
        path = Path(value).expanduser()
        if not path.is_file():
            raise ConfigError(f"--{name} {value!r}: no such file")
        return path

    def _existing_dir(self, name: str) -> Path | None:
        value = self.option(name)
        if not value:
            return None
        path = Path(value).expanduser()
        if not path.is_dir():
            raise ConfigError(f"--{name} {value!r}: no such directory")
        return path


def _without_failed_downloads(report: Report) -> Report:
    """Delete downloaded files that did not verify, so nobody installs them by mistake."""
    from dataclasses import replace

    results = []
    for result in report.results:
        if not result.ok and result.path is not None:
            result.path.unlink(missing_ok=True)
            result = replace(result, path=None)
        results.append(result)
    return replace(report, results=tuple(results))
