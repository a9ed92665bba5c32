"""The generated reference pages match the code: commands, options, help and settings."""

from __future__ import annotations

from pathlib import Path

from scripts import generate_docs

ROOT = Path(__file__).resolve().parents[2]
FIX = "run `python scripts/generate_docs.py` and commit the result"


def test_generated_docs_are_current() -> None:
    stale = generate_docs.stale_files(ROOT)
    assert not stale, f"generated docs out of date: {', '.join(stale)}; {FIX}"


def test_every_command_has_a_page_in_the_nav() -> None:
    from poetry_gitlab_release.plugin import COMMANDS

    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for name in COMMANDS:
        assert (ROOT / "docs" / "reference" / f"{name}.md").is_file(), FIX
        assert f"reference/{name}.md" in nav, FIX


def test_every_setting_is_in_the_configuration_table() -> None:
    from poetry_gitlab_release.settings import _SPECS

    page = (ROOT / "docs" / "reference" / "configuration.md").read_text(encoding="utf-8")
    for spec in _SPECS:
        assert f"| `{spec.key}` |" in page, FIX
        for name in (*spec.env, *spec.ci):
            assert f"`{name}`" in page, FIX


def test_every_option_of_every_command_is_documented() -> None:
    for command in generate_docs.commands():
        page = (ROOT / "docs" / "reference" / f"{command.name}.md").read_text(encoding="utf-8")
        for option in command.definition.options:
            assert f"--{option.name}`" in page, FIX
        for argument in command.definition.arguments:
            assert f"`{argument.name}`" in page, FIX


def test_help_markup_is_removed() -> None:
    assert generate_docs.plain("<b>Steps</b> <comment>--steps</comment> <name>") == (
        "Steps --steps <name>"
    )
