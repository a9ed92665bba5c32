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

if TYPE_CHECKING:
    from collections.abc import Callable

    from cleo.io.inputs.argument import Argument
    from cleo.io.inputs.option import Option
    from sigstore.verify import Verifier

    from poetry_gitlab_release.config.settings import Settings
    from poetry_gitlab_release.signing.identity import ExpectedIdentity
    from poetry_gitlab_release.verify.flow import IdentityOptions, Requirement
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
            "files (wheels, sdists, any artifact).",
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
        if not targets:
            raise UsageError("give `name==version`, `name`, or paths of files to verify")
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
        report = verify_registry(
            settings,
            requirement,
            dest=dest,
            identity_options=identity_options,
            make_verifier=self._verifier_factory(settings, trusted_root, offline),
            online_log=not offline,
            group_index=self.option("group") is not None,
            progress=self._progress,
        )
        return _without_failed_downloads(report)

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
