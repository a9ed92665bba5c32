"""What every cleo command shares: one-line errors with documented exit codes, settings resolution.

The only cleo-facing module of the core: each feature's command.py subclasses GitlabCommand.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from cleo.exceptions import CleoError
from poetry.console.commands.command import Command

from poetry_gitlab_release.config.poetry_sources import (
    find_pyproject,
    pyproject_document,
    with_poetry_certificates,
)
from poetry_gitlab_release.config.settings import Settings, pyproject_table, resolve_settings
from poetry_gitlab_release.errors import EXIT_FAILURE, EXIT_USAGE, GitlabReleaseError, UsageError

if TYPE_CHECKING:
    from cleo.io.io import IO
    from poetry.poetry import Poetry


EXIT_CODES_HELP = """
<b>Exit codes</b>
  0  success
  1  operational failure (network or registry error, a signature that does not verify,
     an artifact that conflicts with what is already published)
  2  usage or configuration error (bad option, missing or malformed setting)
  130 interrupted (Ctrl-C)
"""


class GitlabCommand(Command):
    """Base for our commands: subclasses implement `run()` and raise GitlabReleaseError."""

    # Command-line options that feed Settings: option name -> settings key.
    setting_options: ClassVar[dict[str, str]] = {}

    def run(self, io: IO) -> int:
        try:
            return super().run(io)
        except CleoError as error:
            # Cleo reports bad usage with exit 1; ours is documented as 2.
            io.write_error_line(f"<error>Error: {error}</error>")
            io.write_error_line(f"Run 'poetry {self.name} --help' for the options.")
            return EXIT_USAGE

    def handle(self) -> int:
        try:
            return self.run_command()
        except GitlabReleaseError as error:
            if self.io.is_debug():
                self.line_error("".join(traceback.format_exception(error)).rstrip(), style="debug")
            self.line_error(f"<error>Error: {error}</error>")
            return error.exit_code
        except KeyboardInterrupt:
            self.line_error("<warning>Interrupted.</warning>")
            return 130

    def run_command(self) -> int:
        raise NotImplementedError

    @property
    def poetry(self) -> Poetry:
        """The current project; outside one, a usage error instead of Poetry's RuntimeError."""
        try:
            return super().poetry
        except RuntimeError as exc:
            raise UsageError(
                str(exc).rstrip("."),
                hint=f"poetry {self.name} runs in a Poetry project; use -C DIR to point at one",
            ) from None

    def project_directory(self) -> Path:
        """Where the project is looked for: the cwd, or what -C/--directory and -P/--project say."""
        application = self.application
        directory = getattr(application, "project_directory", None) if application else None
        return Path(directory) if directory is not None else Path.cwd()

    def option_values(self) -> dict[str, object]:
        """The settings-backed options the user actually gave."""
        given: dict[str, object] = {}
        for name, key in self.setting_options.items():
            value: Any = self.option(name)
            if value not in (None, False, []):
                given[key] = value
        return given

    def resolve(self, extra: Mapping[str, object] | None = None, *, use_project: bool) -> Settings:
        options = {**self.option_values(), **(extra or {})}
        document, name = self._pyproject_document() if use_project else ({}, "pyproject.toml")
        settings = resolve_settings(options, os.environ, pyproject_table(document), name)
        if "default" in (settings.source_of("ca-file"), settings.source_of("client-cert")):
            settings = self._with_poetry_certificates(settings, use_project=use_project)
        return settings

    def _with_poetry_certificates(self, settings: Settings, *, use_project: bool) -> Settings:
        from poetry.config.config import Config

        config = Config.create()
        pyproject = find_pyproject(self.project_directory()) if use_project else None
        if pyproject is not None and (pyproject.parent / "poetry.toml").is_file():
            config = self.poetry.config  # the global config with the project's poetry.toml
        return with_poetry_certificates(settings, config)

    def _pyproject_document(self) -> tuple[Mapping[str, Any], str]:
        return pyproject_document(self.project_directory())


__all__ = ["EXIT_CODES_HELP", "EXIT_FAILURE", "GitlabCommand", "find_pyproject"]
