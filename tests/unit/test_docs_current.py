"""The generated reference pages match the code: commands, options, help and settings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from scripts import generate_docs

ROOT = Path(__file__).resolve().parents[2]
FIX = "run `python scripts/generate_docs.py` and commit the result"


def test_generated_docs_are_current() -> None:
    # In a subprocess: rendering imports every command module, and this process must not
    # (test_lazy_activation checks that activating the plugin imports none of them).
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "generate_docs.py"), "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, (
        f"generated docs out of date:\n{result.stdout}{result.stderr}{FIX}"
    )


def test_every_command_has_a_page_in_the_nav() -> None:
    from poetry_gitlab_release.plugin import COMMANDS

    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for name in COMMANDS:
        assert (ROOT / "docs" / "reference" / f"{name}.md").is_file(), FIX
        assert f"reference/{name}.md" in nav, FIX


def test_every_setting_is_in_the_configuration_table() -> None:
    from poetry_gitlab_release.config.settings import _SPECS

    page = (ROOT / "docs" / "reference" / "configuration.md").read_text(encoding="utf-8")
    for spec in _SPECS:
        assert f"| `{spec.key}` |" in page, FIX
        for name in (*spec.env, *spec.ci):
            assert f"`{name}`" in page, FIX


def test_help_markup_is_removed() -> None:
    assert generate_docs.plain("<b>Steps</b> <comment>--steps</comment> <name>") == (
        "Steps --steps <name>"
    )
