"""`poetry gitlab-verify`: verify a release as a consumer (registry or local files)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from cleo.io.outputs.output import Verbosity

from poetry_gitlab_release.cli.base import GitlabCommand
from poetry_gitlab_release.cli.options import TRANSPORT_SETTINGS
from poetry_gitlab_release.errors import EXIT_FAILURE, EXIT_OK, ConfigError, UsageError
from poetry_gitlab_release.files import write_atomic
from poetry_gitlab_release.verify.options import (
    ARGUMENTS,
    DEFAULT_CONCURRENCY,
    FORMATS,
    HELP,
    LOCK_ONLY,
    OPTIONS,
    PINS_FILE,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from cleo.io.inputs.argument import Argument
    from cleo.io.inputs.option import Option
    from sigstore.verify import Verifier

    from poetry_gitlab_release.config.settings import Settings
    from poetry_gitlab_release.signing.claims import ClaimPolicy
    from poetry_gitlab_release.signing.identity import ExpectedIdentity
    from poetry_gitlab_release.verify.expected import IdentityOptions, Requirement
    from poetry_gitlab_release.verify.lock_report import LockReport
    from poetry_gitlab_release.verify.pins import PinStore
    from poetry_gitlab_release.verify.report import Report


class VerifyCommand(GitlabCommand):
    name = "gitlab-verify"
    description = (
        "Verify every file of a release on GitLab (or local files) against its Sigstore "
        "signature and the expected GitLab CI signer."
    )
    setting_options: ClassVar[dict[str, str]] = {
        **TRANSPORT_SETTINGS,
        "gitlab-project": "project",
        "group": "group",
        "ci-config": "ci-config",
        "trust-config": "trust-config",
        "identity": "identity",
        "issuer": "issuer",
    }
    arguments: ClassVar[list[Argument]] = ARGUMENTS
    options: ClassVar[list[Option]] = OPTIONS
    help = HELP

    def run_command(self) -> int:
        from poetry_gitlab_release.verify.expected import (
            IdentityOptions,
            parse_requirement,
            signer_from_options,
        )

        targets: list[str] = self.argument("targets") or []
        if self.option("lock"):
            if targets:
                raise UsageError("--lock verifies poetry.lock: give no targets with it")
        elif not targets:
            raise UsageError("give `name==version`, `name`, paths of files to verify, or --lock")
        else:
            given = [f"--{name}" for name in LOCK_ONLY if self.option(name) is not None]
            if given:
                raise UsageError(f"{', '.join(given)} only apply with --lock")
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
            expected = signer_from_options(
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
        from poetry_gitlab_release.verify.flow import verify_registry, without_failed_downloads

        if settings.group is None and settings.project is None:
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
            group_index=settings.group is not None,  # --group or GITLAB_RELEASE_GROUP
            progress=self._progress,
            claims=self._claim_policy(),
            pins=pins,
            accept_signer_change=bool(self.option("accept-signer-change")),
        )
        if pins is not None and pins.save():
            self.line_error(f"pinned the signer of {requirement.name} in {pins.path}")
        return without_failed_downloads(report)

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
        from poetry_gitlab_release.verify.install import target_python
        from poetry_gitlab_release.verify.lock_flow import LockRequest, run_lock

        concurrency = self.option("concurrency") or str(DEFAULT_CONCURRENCY)
        if not str(concurrency).isdigit() or not 1 <= int(concurrency) <= 64:
            raise UsageError(f"--concurrency {concurrency!r}: expected a number from 1 to 64")
        install = bool(self.option("install"))
        request = LockRequest(
            lock_path=self.project_directory() / "poetry.lock",
            identity_options=identity_options,
            claims=self._claim_policy(with_ids=False),
            pins=self._pins(),
            pypi_url=self._pypi_url(settings),
            trusted_root=trusted_root,
            pypi_trust_config=self._existing_file("pypi-trust-config"),
            offline=offline,
            concurrency=int(concurrency),
            accept_signer_change=bool(self.option("accept-signer-change")),
            install_into=target_python(self.option("python"), os.environ) if install else None,
        )
        report = run_lock(
            settings,
            request,
            progress=self._progress,
            on_installed=lambda installed: self.line_error(
                f"installed {len(installed)} locked package(s) into {request.install_into}"
            ),
        )
        return self._finish_lock(report)

    def _finish_lock(self, report: LockReport) -> int:
        from poetry_gitlab_release.verify.lock_render import (
            render_json,
            render_junit,
            render_table,
        )

        self._output(
            as_json=lambda: render_json(report),
            table=lambda: [f"<b>{report.lock_file}</b>", *render_table(report)],
            junit=lambda: render_junit(report),
            problems=[row.message() for row in report.rows if not row.ok],
        )
        if report.pins_written:
            self.line_error(f"pinned signers written to {report.pins_file}")
        counts = report.counts
        return self._conclude(
            f"{len(report.rows)} locked file(s): {counts['verified']} verified, "
            f"{counts['failed'] + counts['unsigned']} failed, "
            f"{counts['no provenance']} without provenance, {counts['not checked']} not checked",
            ok=report.ok,
        )

    def _local(
        self,
        paths: list[Path],
        expected: ExpectedIdentity,
        settings: Settings,
        trusted_root: Path | None,
        offline: bool,
    ) -> Report:
        from poetry_gitlab_release.signing.trust import make_verifier
        from poetry_gitlab_release.verify.local import verify_local

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
            self._output(
                as_json=lambda: render_json(report),
                table=lambda: [*_report_header(report), *render_table(report)],
                junit=lambda: render_junit(report),
                problems=[result.message() for result in report.results if not result.ok],
            )
            counts = report.counts
            return self._conclude(
                f"{counts['verified']} of {len(report.results)} file(s) verified"
                f", {counts['failed']} failed, {counts['unsigned']} unsigned",
                ok=report.ok,
            )
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

    def _output(
        self,
        *,
        as_json: Callable[[], str],
        table: Callable[[], list[str]],
        junit: Callable[[], str],
        problems: list[str],
    ) -> None:
        """The report on stdout (--format), --junit to its file, each problem on stderr."""
        if self.option("format") == "json":
            self.line(as_json())
        else:
            for line in table():
                self.line(line)
        junit_path = self.option("junit")
        if junit_path:
            write_atomic(Path(junit_path), junit())
        for problem in problems:
            self.line_error(f"<error>{problem}</error>")

    def _pypi_url(self, settings: Settings) -> str:
        """--pypi-url, checked like every server URL: a plain-http index could drop provenance
        unseen (a downgrade to "no provenance"), so http needs --allow-insecure-http."""
        from poetry_gitlab_release.config.values import as_url, check_transport
        from poetry_gitlab_release.verify.lockfile import PYPI_URL

        given = self.option("pypi-url")
        if given is None:
            return PYPI_URL
        url = as_url(given, "--pypi-url")
        risk = "whoever sits on the path could hide provenance"
        check_transport(url, "--pypi-url", settings.allow_insecure_http, risk)
        return url

    def _conclude(self, summary: str, *, ok: bool) -> int:
        """The verdict line on stderr, and the exit code it stands for."""
        self.line_error(f"<info>{summary}</info>" if ok else f"<error>{summary}</error>")
        return EXIT_OK if ok else EXIT_FAILURE

    def _progress(self, message: str) -> None:
        self.line_error(message, verbosity=Verbosity.VERBOSE)

    def _existing_file(self, name: str) -> Path | None:
        return self._existing(name, "file", Path.is_file)

    def _existing_dir(self, name: str) -> Path | None:
        return self._existing(name, "directory", Path.is_dir)

    def _existing(self, name: str, kind: str, exists: Callable[[Path], bool]) -> Path | None:
        value = self.option(name)
        if not value:
            return None
        path = Path(value).expanduser()
        if not exists(path):
            raise ConfigError(f"--{name} {value!r}: no such {kind}")
        return path


def _report_header(report: Report) -> list[str]:
    lines = [f"<b>{report.subject}</b> from {report.source}", f"expected signer: {report.expected}"]
    if report.pin is not None:
        lines.append(f"pinned signer ({report.pins_file}): {report.pin}")
    return lines
