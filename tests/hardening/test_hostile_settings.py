"""Property tests: whatever the options, environment and pyproject hold, settings resolve or fail
with one ConfigError that names where the bad value came from."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from poetry_gitlab_release.config.settings import (
    PYPROJECT_KEYS,
    SPECS,
    Settings,
    pyproject_table,
    resolve_settings,
    with_poetry_certificate,
)
from poetry_gitlab_release.errors import EXIT_USAGE, ConfigError
from tests.fixtures.figures import record

SECRET = "glpat-SETTINGS-secret-91f2"
ENV_NAMES = sorted(
    {name for spec in SPECS.values() for name in (*spec.env, *spec.ci)} | {"GITLAB_CI"}
)

_url_like = st.sampled_from(
    [
        "https://gitlab.example.com",
        "http://127.0.0.1:8080",
        "http://[::1]:80",
        "http://gitlab.example.com",
        "https://[::1",
        "https://host:99999",
        "https://host:abc",
        "https://user:pw@host",
        "gitlab.example.com",
        "ftp://x",
        "https://",
        "https://host/?q=1#f",
        "https://h\x00st",
        "~nonexistent-user-xyz/ca.pem",
        "/dev/null",
        "",
        " ",
    ]
)
_text = st.text(max_size=30) | _url_like
# Everything TOML can hold (tomllib gives str, int, float, bool, datetimes, lists, tables).
_toml_value = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | _text
    | st.datetimes()
    | st.dates()
    | st.times(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)
# The token option's "@FILE" form reads a file: keep hypothesis away from arbitrary paths.
_option_value = _toml_value.filter(lambda value: not (isinstance(value, str) and "@" in value))

_options = st.dictionaries(st.sampled_from(sorted(SPECS)), _option_value, max_size=6)
TOKEN_ENV = {"GITLAB_RELEASE_TOKEN", "GITLAB_TOKEN", "CI_JOB_TOKEN", "SIGSTORE_ID_TOKEN"}
_env = st.dictionaries(
    st.sampled_from(ENV_NAMES),
    (st.text(max_size=30) | _url_like | st.just(SECRET)).filter(lambda v: "@" not in v),
).map(  # the secret only where secrets go: it must then never show in the Settings' repr
    lambda env: {k: v for k, v in env.items() if v != SECRET or k in TOKEN_ENV}
)
_pyproject = st.dictionaries(
    st.sampled_from([*PYPROJECT_KEYS, "token", "unknown-key"]) | st.text(max_size=8),
    _toml_value,
    max_size=5,
)


def _check(error: ConfigError) -> None:
    text = str(error)
    assert "\n" not in text, text
    assert SECRET not in text
    assert error.exit_code == EXIT_USAGE


@settings(max_examples=400, deadline=None)
@given(options=_options, env=_env, pyproject=_pyproject)
def test_any_input_resolves_or_gives_one_config_error(
    options: dict[str, object], env: dict[str, str], pyproject: dict[str, object]
) -> None:
    record("hypothesis.settings")
    try:
        resolved = resolve_settings(options, env, pyproject)
    except ConfigError as error:
        _check(error)
        return
    assert isinstance(resolved, Settings)
    assert resolved.api_url.startswith(("http://", "https://"))
    assert SECRET not in repr(resolved)
    assert SECRET not in str(resolved)


@settings(max_examples=200, deadline=None)
@given(
    document=st.dictionaries(
        st.sampled_from(["tool", "project"]),
        st.dictionaries(st.sampled_from(["poetry-gitlab-release", "poetry"]), _toml_value)
        | _toml_value,
    )
)
def test_any_pyproject_document_gives_a_table_or_one_config_error(document: object) -> None:
    record("hypothesis.settings")
    try:
        table = pyproject_table(document)  # type: ignore[arg-type]
    except ConfigError as error:
        _check(error)
        return
    assert isinstance(table, dict)


@settings(max_examples=150, deadline=None)
@given(cert=st.none() | _text, verify=st.booleans())
def test_any_poetry_certificate_setting_applies_or_gives_one_config_error(
    cert: str | None, verify: bool
) -> None:
    record("hypothesis.settings")
    base = resolve_settings({}, {"GITLAB_HOST": "https://gitlab.example.com"})
    try:
        result = with_poetry_certificate(base, cert, verify=verify, where="Poetry's x")
    except ConfigError as error:
        _check(error)
        return
    assert verify, "a false verify never passes silently"
    assert result.ca_file is None or result.ca_file.is_file()


def test_secret_in_a_bad_value_is_not_echoed() -> None:
    """A token pasted into the wrong setting must not be printed back in full."""
    with pytest.raises(ConfigError) as caught:
        resolve_settings({"host": f"https://{SECRET}:x@gitlab.example.com"}, {})
    assert "credentials do not belong in the URL" in str(caught.value)
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"\xff\xfe not utf-8", "not UTF-8"),
        (b"   \n", "is empty"),
        (b"x" * 100_000, "too large"),
    ],
)
def test_token_file_problems_are_config_errors(
    tmp_path: Path, content: bytes, problem: str
) -> None:
    path = tmp_path / "token"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=problem):
        resolve_settings({"token": f"@{path}"}, {})


def test_token_file_that_is_a_directory_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read --token"):
        resolve_settings({"token": f"@{tmp_path}"}, {})


def test_datetime_in_pyproject_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="expected a non-empty string"):
        resolve_settings({}, {}, {"project": datetime.date(2024, 1, 1)})
