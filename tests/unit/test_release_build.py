"""The build step: version resolution, stamping without touching pyproject.toml, reproducibility."""

from __future__ import annotations

import shutil
import tarfile
import zipfile
from pathlib import Path

import pytest
from cleo.io.null_io import NullIO
from poetry.factory import Factory

from poetry_gitlab_release.errors import BuildError, ConfigError
from poetry_gitlab_release.release.artifacts import artifact_paths, normalize_name
from poetry_gitlab_release.release.build import (
    ReleaseVersion,
    build_release,
    default_project_urls,
    resolve_version,
    stamp_pyproject,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "hello-package"
PROJECT_URL = "https://gitlab.example.com/demo-group/hello-package"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return Path(
        shutil.copytree(EXAMPLE, tmp_path / "hello-package", ignore=shutil.ignore_patterns("dist"))
    )


@pytest.mark.parametrize(
    ("explicit", "tag", "expected"),
    [
        ("2.0.0", "v1.2.3", ReleaseVersion("2.0.0", "--release-version")),
        (None, "v1.2.3", ReleaseVersion("1.2.3", "CI_COMMIT_TAG")),
        (None, "1.2.3rc1", ReleaseVersion("1.2.3rc1", "CI_COMMIT_TAG")),
        (None, "V1.0-RC.2", ReleaseVersion("1.0rc2", "CI_COMMIT_TAG")),
        (None, None, ReleaseVersion("0.1.0", "pyproject.toml")),
    ],
)
def test_resolve_version(explicit: str | None, tag: str | None, expected: ReleaseVersion) -> None:
    assert resolve_version(explicit, tag, "0.1.0") == expected


def test_a_tag_that_is_not_a_version_says_so() -> None:
    with pytest.raises(ConfigError, match=r"CI_COMMIT_TAG 'release-5' is not a PEP 440 version"):
        resolve_version(None, "release-5", "0.1.0")


def test_default_urls() -> None:
    assert default_project_urls(PROJECT_URL + "/") == {
        "Homepage": PROJECT_URL,
        "Source": PROJECT_URL,
        "Issues": PROJECT_URL + "/-/issues",
    }
    assert default_project_urls(None) == {}


def test_stamp_keeps_formatting_and_other_content() -> None:
    text = '[project]\nname = "x"  # the name\nversion = "0.1.0"\n\n[tool.poetry]\n'
    stamped = stamp_pyproject(text, "1.2.3", {"Homepage": PROJECT_URL})
    assert 'name = "x"  # the name' in stamped
    assert 'version = "1.2.3"' in stamped
    assert f'Homepage = "{PROJECT_URL}"' in stamped


def test_stamp_dynamic_version_goes_to_tool_poetry() -> None:
    text = '[project]\nname = "x"\ndynamic = ["version"]\n\n[tool.poetry]\nversion = "0.1.0"\n'
    stamped = stamp_pyproject(text, "2.0.0", {})
    assert 'version = "2.0.0"' in stamped.split("[tool.poetry]")[1]
    assert "version" not in stamped.split("[tool.poetry]")[0].replace('dynamic = ["version"]', "")


def _build(project: Path, version: str, url: str | None = PROJECT_URL) -> list[Path]:
    poetry = Factory().create_poetry(project)
    result = build_release(
        poetry,
        NullIO(),
        dist_dir=project / "dist",
        version=ReleaseVersion(version, "test"),
        project_url=url,
        create_venv=False,
    )
    return [artifact.path for artifact in result.artifacts]


def test_build_stamps_in_memory_and_leaves_pyproject_alone(project: Path) -> None:
    before = (project / "pyproject.toml").read_bytes()
    sdist, wheel = _build(project, "1.2.3")
    assert (project / "pyproject.toml").read_bytes() == before
    assert sdist.name == "hello_package-1.2.3.tar.gz"
    assert wheel.name == "hello_package-1.2.3-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        metadata = archive.read("hello_package-1.2.3.dist-info/METADATA").decode()
    assert "Version: 1.2.3" in metadata
    assert f"Project-URL: Homepage, {PROJECT_URL}" in metadata
    assert f"Project-URL: Issues, {PROJECT_URL}/-/issues" in metadata
    with tarfile.open(sdist) as archive:
        member = archive.extractfile("hello_package-1.2.3/pyproject.toml")
        assert member is not None
        inner = member.read().decode()
        pkg_info = archive.extractfile("hello_package-1.2.3/PKG-INFO")
        assert pkg_info is not None
        assert "Version: 1.2.3" in pkg_info.read().decode()
    assert 'version = "1.2.3"' in inner
    assert f'Source = "{PROJECT_URL}"' in inner


def test_declared_urls_are_never_overwritten(project: Path) -> None:
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            "[project.scripts]",
            '[project.urls]\nHomepage = "https://example.org"\n\n[project.scripts]',
        )
    )
    _, wheel = _build(project, "0.1.0")
    with zipfile.ZipFile(wheel) as archive:
        metadata = archive.read("hello_package-0.1.0.dist-info/METADATA").decode()
    assert "Project-URL: Homepage, https://example.org" in metadata
    assert PROJECT_URL not in metadata


def test_builds_are_reproducible_with_source_date_epoch(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib

    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")

    def digests() -> list[str]:
        return [hashlib.sha256(p.read_bytes()).hexdigest() for p in _build(project, "1.2.3")]

    first = digests()
    (project / "src" / "hello_package" / "__init__.py").touch()  # a newer mtime changes nothing
    assert digests() == first


def test_rebuild_removes_stale_signatures(project: Path) -> None:
    sdist, _ = _build(project, "1.2.3")
    stale = sdist.with_name(sdist.name + ".sigstore.json")
    stale.write_text("{}")
    _build(project, "1.2.3")
    assert not stale.exists()
    assert [p.name for p in artifact_paths(project / "dist", "hello-package", "1.2.3")] == [
        "hello_package-1.2.3.tar.gz",
        "hello_package-1.2.3-py3-none-any.whl",
    ]


def test_other_build_backends_are_refused_with_a_way_out(project: Path) -> None:
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            'requires = ["poetry-core>=2.0,<3"]', 'requires = ["poetry-core>=2.0,<3", "cython"]'
        )
    )
    with pytest.raises(BuildError, match="not poetry-core alone") as caught:
        _build(project, "1.2.3")
    assert caught.value.hint is not None and "--steps sign,verify,publish" in caught.value.hint


def test_normalize_name() -> None:
    assert normalize_name("Hello_Package.Extra") == "hello-package-extra"
