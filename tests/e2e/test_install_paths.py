"""The three ways users install a Poetry plugin, each into a fresh Poetry of its own.

This machine's PyPI mirror serves the simple index but not PyPI's JSON API, which Poetry's
default source needs; the tests therefore declare https://pypi.org/simple/ as a source where
Poetry resolves. Real users need nothing of the kind.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import venv
from importlib.metadata import version
from pathlib import Path

import pytest

from tests.fixtures.poetry import PoetryCli

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.xdist_group("fresh-poetry")]

ROOT = Path(__file__).resolve().parents[2]
SIMPLE_SOURCE = textwrap.dedent(
    """
    [[tool.poetry.source]]
    name = "pypi-simple"
    url = "https://pypi.org/simple/"
    priority = "primary"
    """
)


@pytest.fixture(scope="session")
def plugin_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("poetry_gitlab_release-*.whl")
    return wheel


def fresh_poetry(where: Path, *extra: str) -> Path:
    """A new virtual environment with the same Poetry version as ours (and `extra` packages)."""
    venv.EnvBuilder(with_pip=True).create(where)
    subprocess.run(
        [
            str(where / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-compile",  # a third less time; Python compiles what it imports anyway
            f"poetry=={version('poetry')}",
            *extra,
        ],
        check=True,
        capture_output=True,
    )
    return where / "bin" / "poetry"


def run(poetry: Path, cli: PoetryCli, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(poetry), "--no-interaction", *args],
        cwd=cwd,
        env=cli.environment(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def assert_plugin_works(poetry: Path, cli: PoetryCli, cwd: Path) -> None:
    listed = run(poetry, cli, "list", cwd=cwd)
    assert listed.returncode == 0, listed.stderr
    assert "gitlab-release" in listed.stdout
    helped = run(poetry, cli, "gitlab-release", "--help", cwd=cwd)
    assert helped.returncode == 0, helped.stderr
    assert "--steps" in helped.stdout
    bad = run(poetry, cli, "gitlab-release", "--steps", "nonsense", cwd=cwd)
    assert bad.returncode == 2
    assert "unknown step 'nonsense'" in bad.stderr


@pytest.fixture(scope="module")
def shared_poetry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One fresh Poetry for the three paths, used in order: project plugin, self add, pip.

    Creating a Poetry environment is most of the cost, so the tests share one and each
    starts from the state the previous one left, which is also what a user's machine sees.
    """
    return fresh_poetry(tmp_path_factory.mktemp("fresh-poetry") / "env")


def test_requires_plugins_in_a_project(
    shared_poetry: Path, tmp_path: Path, plugin_wheel: Path, module_poetry_cli: PoetryCli
) -> None:
    poetry = shared_poetry
    assert "gitlab-release" not in run(poetry, module_poetry_cli, "list", cwd=tmp_path).stdout
    project = tmp_path / "consumer"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""\
            [project]
            name = "consumer"
            version = "0.1.0"
            requires-python = ">=3.10"

            [tool.poetry]
            package-mode = false

            [tool.poetry.requires-plugins]
            poetry-gitlab-release = {{ path = "{plugin_wheel}" }}
            """
        )
        + SIMPLE_SOURCE
    )
    installed = run(poetry, module_poetry_cli, "install", cwd=project)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert (project / ".poetry" / "plugins").is_dir()
    assert_plugin_works(poetry, module_poetry_cli, project)
    hidden = run(poetry, module_poetry_cli, "--no-plugins", "list", cwd=project)
    assert "gitlab-release" not in hidden.stdout
    elsewhere = run(poetry, module_poetry_cli, "list", cwd=tmp_path)
    assert "gitlab-release" not in elsewhere.stdout  # a project plugin stays in its project


def test_poetry_self_add(
    shared_poetry: Path, tmp_path: Path, plugin_wheel: Path, module_poetry_cli: PoetryCli
) -> None:
    poetry = shared_poetry
    assert "gitlab-release" not in run(poetry, module_poetry_cli, "list", cwd=tmp_path).stdout
    run(
        poetry, module_poetry_cli, "self", "show", cwd=tmp_path
    )  # writes Poetry's self project (no lock yet)
    assert (module_poetry_cli.config_dir / "pyproject.toml").is_file()
    with (module_poetry_cli.config_dir / "pyproject.toml").open("a") as handle:
        handle.write(SIMPLE_SOURCE)
    added = run(poetry, module_poetry_cli, "self", "add", str(plugin_wheel), cwd=tmp_path)
    assert added.returncode == 0, added.stdout + added.stderr
    assert_plugin_works(poetry, module_poetry_cli, tmp_path)


def test_pip_install_into_the_environment_that_runs_poetry(
    shared_poetry: Path, tmp_path: Path, plugin_wheel: Path, module_poetry_cli: PoetryCli
) -> None:
    pip = [str(shared_poetry.with_name("python")), "-m", "pip", "--quiet"]
    subprocess.run(
        [*pip, "uninstall", "--yes", "poetry-gitlab-release"], check=True, capture_output=True
    )
    assert (
        "gitlab-release" not in run(shared_poetry, module_poetry_cli, "list", cwd=tmp_path).stdout
    )
    subprocess.run(
        [*pip, "install", "--no-deps", str(plugin_wheel)], check=True, capture_output=True
    )
    assert_plugin_works(shared_poetry, module_poetry_cli, tmp_path)
