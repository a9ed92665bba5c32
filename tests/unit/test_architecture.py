"""The import direction of docs/architecture.md, checked on the source with ast.

A feature package (release/, verify/, pipelines/) imports the core, never another feature; the
core (everything else) never imports a feature. Every import counts: module level, inside a
function, under TYPE_CHECKING. plugin.py names the command modules as strings, which is the one
way the core may reach a feature (lazily, at run time).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = "poetry_gitlab_release"
SOURCE = Path(__file__).resolve().parents[2] / "src" / PACKAGE
FEATURES = frozenset({"release", "verify", "pipelines"})


def _owner(module: str) -> str:
    """'poetry_gitlab_release.release.flow' -> 'release'; 'poetry_gitlab_release.files' -> 'files'."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _imported(tree: ast.AST, module: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import of our package in `tree`."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = module.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            if target == PACKAGE:  # `from poetry_gitlab_release import release`
                found.extend((node.lineno, f"{PACKAGE}.{alias.name}") for alias in node.names)
            else:
                found.append((node.lineno, target))
    return [(line, name) for line, name in found if name.startswith(PACKAGE + ".")]


def violations(root: Path) -> list[str]:
    """Every import against the direction, as 'file:line: a -> b (why)'."""
    problems: list[str] = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        is_package = path.name == "__init__.py"
        parts = relative.with_suffix("").parts
        module = ".".join([root.name, *(parts[:-1] if is_package else parts)])
        owner = _owner(module)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for line, target in _imported(tree, module, is_package):
            imported = _owner(target)
            if imported not in FEATURES or imported == owner:
                continue
            why = (
                "a feature imports another feature"
                if owner in FEATURES
                else "the core imports a feature"
            )
            problems.append(f"{relative}:{line}: {owner or module} -> {target} ({why})")
    return problems


def test_features_import_only_the_core_and_the_core_no_feature() -> None:
    assert SOURCE.is_dir()
    assert violations(SOURCE) == []


def test_every_feature_has_a_command_module() -> None:
    for feature in FEATURES:
        assert (SOURCE / feature / "command.py").is_file(), feature


def _write(root: Path, files: dict[str, str]) -> Path:
    package = root / PACKAGE
    for name, text in files.items():
        target = package / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return package


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (
            {"release/flow.py": "from poetry_gitlab_release.verify.flow import verify_local\n"},
            "release/flow.py:1: release -> poetry_gitlab_release.verify.flow (a feature imports another feature)",
        ),
        (
            {"gitlab/client.py": "def f():\n    import poetry_gitlab_release.pipelines.model\n"},
            "gitlab/client.py:2: gitlab -> poetry_gitlab_release.pipelines.model (the core imports a feature)",
        ),
        (
            {
                "files.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from poetry_gitlab_release import release\n"
            },
            "files.py:3: files -> poetry_gitlab_release.release (the core imports a feature)",
        ),
        (
            {"verify/flow.py": "from ..pipelines import model\n"},
            "verify/flow.py:1: verify -> poetry_gitlab_release.pipelines (a feature imports another feature)",
        ),
    ],
)
def test_a_violation_is_reported(tmp_path: Path, files: dict[str, str], expected: str) -> None:
    assert violations(_write(tmp_path, files)) == [expected]


def test_allowed_imports_are_not_reported(tmp_path: Path) -> None:
    package = _write(
        tmp_path,
        {
            "release/flow.py": "from poetry_gitlab_release.release.sign import x\n"
            "from poetry_gitlab_release.signing.material import y\n",
            "verify/command.py": "from poetry_gitlab_release.cli.base import GitlabCommand\n",
            "plugin.py": 'COMMANDS = {"gitlab-release": ("poetry_gitlab_release.release.command", "C")}\n',
        },
    )
    assert violations(package) == []
