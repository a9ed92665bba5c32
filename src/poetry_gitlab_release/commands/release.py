"""`poetry gitlab-release`: configure, build, sign, verify and publish a release."""

from __future__ import annotations

from typing import ClassVar

from cleo.helpers import option
from cleo.io.inputs.option import Option
from cleo.io.outputs.output import Verbosity

from poetry_gitlab_release.commands.base import EXIT_CODES_HELP, GitlabCommand
from poetry_gitlab_release.errors import UsageError
from poetry_gitlab_release.settings import Settings

STEPS = ("configure",)


def parse_steps(text: str) -> list[str]:
    """`build,sign` -> ["build", "sign"], in the flow's order whatever order was given."""
    requested = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [step for step in requested if step not in STEPS]
    if unknown or not requested:
        raise UsageError(
            f"unknown step {unknown[0]!r}" if unknown else "no step given",
            hint=f"--steps takes a comma-separated subset of {','.join(STEPS)}",
        )
    return [step for step in STEPS if step in requested]


class ReleaseCommand(GitlabCommand):
    name = "gitlab-release"
    description = (
        "Configure GitLab's PyPI registry, then build, sign, verify and publish a release."
    )
    setting_options: ClassVar[dict[str, str]] = {
        "host": "host",
        "token": "token",
        "gitlab-project": "project",
        "repository": "repository",
        "ca-file": "ca-file",
        "allow-insecure-http": "allow-insecure-http",
    }
    options: ClassVar[list[Option]] = [
        option(
            "steps",
            None,
            f"Comma-separated steps to run, in this order: {','.join(STEPS)}.",
            flag=False,
            default=",".join(STEPS),
        ),
        option(
            "host",
            None,
            "GitLab URL [env: GITLAB_HOST; CI: CI_SERVER_URL; default https://gitlab.com].",
            flag=False,
        ),
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
        option(
            "ca-file",
            None,
            "CA bundle (PEM) for a GitLab with a private certificate authority.",
            flag=False,
        ),
        option("allow-insecure-http", None, "Allow plain http:// to a host other than localhost."),
    ]
    help = f"""\
Runs the secure release recipe for the current Poetry project against GitLab.

<b>Steps</b> (all by default; <comment>--steps</comment> runs any subset, reading earlier outputs from dist/):
  configure  make GitLab's PyPI registry a Poetry repository: repositories.<name>.url,
             http-basic credentials for the token kind, certificates.<name>.cert and
             virtualenvs.in-project = true. Idempotent; tokens are never printed.

Every setting also comes from the environment, from [tool.poetry-gitlab-release] in
pyproject.toml, or from GitLab CI's predefined variables, in that order after the option.
{EXIT_CODES_HELP}"""

    def run_command(self) -> int:
        steps = parse_steps(self.option("steps"))
        settings = self.resolve(use_project=True)
        if "configure" in steps:
            self._configure(settings)
        return 0

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
