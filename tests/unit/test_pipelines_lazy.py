"""`poetry gitlab-pipelines --help` must not pay for httpx, rich or sigstore."""

from __future__ import annotations

from tests.unit.test_lazy_activation import modules_after


def test_help_of_gitlab_pipelines_imports_nothing_heavy() -> None:
    loaded = modules_after("gitlab-pipelines", "--help")
    baseline = modules_after("--no-plugins", "--version")
    assert "poetry_gitlab_release.pipelines.command" in loaded["ours"]
    assert "poetry_gitlab_release.pipelines.fetch" not in loaded["ours"]
    assert set(loaded["heavy"]) <= set(baseline["heavy"])
