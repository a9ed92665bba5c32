"""The PyPI target's settings: --to, --pypi-url and the two credentials (#13)."""

from __future__ import annotations

import pytest

from poetry_gitlab_release.config.settings import resolve_settings
from poetry_gitlab_release.errors import ConfigError


def test_defaults_publish_to_gitlab_only() -> None:
    settings = resolve_settings({}, {})
    assert settings.targets == ("gitlab",)
    assert settings.pypi_url == "https://upload.pypi.org/legacy/"
    assert settings.pypi_id_token is None
    assert settings.pypi_api_token is None


@pytest.mark.parametrize(
    ("options", "env", "pyproject", "targets"),
    [
        ({"to": "pypi,gitlab"}, {}, {}, ("gitlab", "pypi")),
        ({}, {"GITLAB_RELEASE_TO": "PyPI"}, {}, ("pypi",)),
        ({}, {}, {"to": ["pypi", "gitlab"]}, ("gitlab", "pypi")),
        ({"to": "gitlab"}, {"GITLAB_RELEASE_TO": "pypi"}, {}, ("gitlab",)),
    ],
)
def test_targets_from_every_source_in_publishing_order(
    options: dict[str, object],
    env: dict[str, str],
    pyproject: dict[str, object],
    targets: tuple[str, ...],
) -> None:
    assert resolve_settings(options, env, pyproject).targets == targets


def test_bad_targets_and_urls_name_their_source() -> None:
    with pytest.raises(ConfigError, match="invalid target 'npm' from GITLAB_RELEASE_TO"):
        resolve_settings({}, {"GITLAB_RELEASE_TO": "gitlab,npm"})
    with pytest.raises(ConfigError, match="refusing plain http"):
        resolve_settings({"pypi-url": "http://pypi.example.com/legacy/"}, {})
    settings = resolve_settings({"pypi-url": "testpypi"}, {})
    assert settings.pypi_url == "https://test.pypi.org/legacy/"
    local = resolve_settings({"pypi-url": "http://127.0.0.1:8080/legacy"}, {})
    assert local.pypi_url == "http://127.0.0.1:8080/legacy/"


def test_tokens_come_from_the_environment_only_and_never_show() -> None:
    env = {"PYPI_ID_TOKEN": "header.payload.sig", "PYPI_API_TOKEN": "pypi-secret-value"}
    settings = resolve_settings({}, env)
    assert settings.pypi_id_token is not None and settings.pypi_api_token is not None
    assert settings.pypi_id_token.reveal() == "header.payload.sig"
    assert "pypi-secret-value" not in repr(settings)
    assert "header.payload.sig" not in repr(settings)
    with pytest.raises(ConfigError, match="unknown key 'pypi-api-token'"):
        resolve_settings({}, {}, {"pypi-api-token": "pypi-x"})
