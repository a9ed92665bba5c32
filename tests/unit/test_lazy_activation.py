"""Activation must cost nothing: no heavy import because of us on unrelated poetry commands."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from poetry_gitlab_release.plugin import COMMANDS

HEAVY = ("sigstore", "httpx", "rich", "cryptography", "pydantic")
# Each feature's command module (release/command.py, ...): imported only when that command runs.
COMMAND_MODULES = {module for module, _ in COMMANDS.values()}

PROBE = textwrap.dedent(
    """
    import json, sys
    from poetry.console.application import main
    args, heavy = json.loads(sys.argv[1]), set(json.loads(sys.argv[2]))
    sys.argv = ["poetry", *args]
    try:
        main()
    except SystemExit:
        pass
    print(json.dumps({
        "heavy": sorted({m.split(".")[0] for m in sys.modules if m.split(".")[0] in heavy}),
        "ours": sorted(m for m in sys.modules if m.startswith("poetry_gitlab_release")),
    }))
    """
)


def modules_after(*args: str) -> dict[str, list[str]]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(list(args)), json.dumps(HEAVY)],
        capture_output=True,
        text=True,
        check=True,
        env={"POETRY_KEYRING_ENABLED": "false", "PATH": "/usr/bin:/bin"},
    )
    loaded: dict[str, list[str]] = json.loads(result.stdout.strip().splitlines()[-1])
    return loaded


@pytest.mark.parametrize("args", [("--version",), ("about",)])
def test_unrelated_commands_import_nothing_heavy_because_of_us(args: tuple[str, ...]) -> None:
    with_plugin = modules_after(*args)
    without_plugin = modules_after("--no-plugins", *args)
    assert "poetry_gitlab_release.plugin" in with_plugin["ours"]  # the plugin really was activated
    assert not set(with_plugin["ours"]) & COMMAND_MODULES
    assert set(with_plugin["heavy"]) == set(without_plugin["heavy"])


def test_help_of_our_command_imports_nothing_heavy() -> None:
    loaded = modules_after("gitlab-release", "--help")
    baseline = modules_after("--no-plugins", "--version")
    assert "poetry_gitlab_release.release.command" in loaded["ours"]
    assert set(loaded["heavy"]) <= set(baseline["heavy"])


ACTIVATE = textwrap.dedent(
    """
    import json, sys
    from poetry.console.application import Application
    from poetry_gitlab_release.plugin import COMMANDS, GitlabReleasePlugin
    application = Application()
    GitlabReleasePlugin().activate(application)
    registered = [name for name in COMMANDS if application.command_loader.has(name)]
    modules = {module for module, _ in COMMANDS.values()}
    imported_after_activation = sorted(m for m in sys.modules if m in modules)
    command = application.command_loader.get("gitlab-release")
    print(json.dumps([registered, imported_after_activation, command.name]))
    """
)


def test_every_command_is_registered_lazily() -> None:
    result = subprocess.run(
        [sys.executable, "-c", ACTIVATE], capture_output=True, text=True, check=True
    )
    registered, imported, loaded_name = json.loads(result.stdout.strip().splitlines()[-1])
    assert registered == list(COMMANDS)
    assert imported == []
    assert loaded_name == "gitlab-release"
