"""Poetry application plugin. Activation registers lazy command factories and imports nothing heavy.

Each command module is imported only when that command runs (or when `poetry list` needs
every command's definition); sigstore, httpx and rich are imported inside `handle()`.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import TYPE_CHECKING

from poetry.plugins.application_plugin import ApplicationPlugin

if TYPE_CHECKING:
    from cleo.commands.command import Command
    from poetry.console.application import Application


COMMANDS: dict[str, tuple[str, str]] = {
    "gitlab-release": ("poetry_gitlab_release.release.command", "ReleaseCommand"),
    "gitlab-verify": ("poetry_gitlab_release.verify.command", "VerifyCommand"),
    "gitlab-pipelines": ("poetry_gitlab_release.pipelines.command", "PipelinesCommand"),
}


def _factory(module: str, attribute: str) -> Callable[[], Command]:
    def load() -> Command:
        command: Command = getattr(import_module(module), attribute)()
        return command

    return load


class GitlabReleasePlugin(ApplicationPlugin):
    def activate(self, application: Application) -> None:
        for name, (module, attribute) in COMMANDS.items():
            application.command_loader.register_factory(name, _factory(module, attribute))
