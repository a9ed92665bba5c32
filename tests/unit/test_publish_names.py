"""Publishing a package whose name GitLab stores with `_` or `.` (it keeps the METADATA `Name`
verbatim, and `package_name=` is an ILIKE substring match on that): a rerun after a partial
publish must find what is already there, not end in a false conflict."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from pathlib import Path

import pytest

from poetry_gitlab_release.gitlab.client import GitLabClient
from poetry_gitlab_release.gitlab.connection import Connection
from poetry_gitlab_release.gitlab.simple_index import name_search_term, normalize_name
from poetry_gitlab_release.release.artifacts import Artifact, load_artifacts
from poetry_gitlab_release.release.publish import PublishTarget, publish_release
from sandbox.gitlab import GitLabStandIn
from tests.unit.test_uploads_publish import accept, settings_for


def make_dists(dist: Path, name: str, version: str = "1.0.0") -> None:
    """A wheel and an sdist whose METADATA/PKG-INFO `Name` is `name` as written."""
    stem = f"{normalize_name(name).replace('-', '_')}-{version}"
    metadata = f"Metadata-Version: 2.4\nName: {name}\nVersion: {version}\nSummary: demo\n"
    dist.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(dist / f"{stem}-py3-none-any.whl", "w") as wheel:
        wheel.writestr("pkg/__init__.py", "")
        wheel.writestr(f"{stem}.dist-info/METADATA", metadata)
    with tarfile.open(dist / f"{stem}.tar.gz", "w:gz") as sdist:
        data = metadata.encode()
        info = tarfile.TarInfo(f"{stem}/PKG-INFO")
        info.size = len(data)
        sdist.addfile(info, io.BytesIO(data))
    for path in list(dist.iterdir()):
        (dist / (path.name + ".sigstore.json")).write_text(json.dumps({"for": path.name}))


def test_the_search_term_is_in_every_spelling() -> None:
    for name in ("My_Tool", "my.tool", "my-tool", "MY__TOOL", "my-tool_x"):
        term = name_search_term(name)
        assert term.lower() in name.lower()
    assert name_search_term("my-tool") == "tool"
    assert name_search_term("requests") == "requests"


@pytest.mark.parametrize("name", ["My_Tool", "my.tool", "my-tool"])
def test_rerun_after_partial_publish_finds_what_is_published(
    gitlab_standin: GitLabStandIn, tmp_path: Path, name: str
) -> None:
    dist = tmp_path / "dist"
    make_dists(dist, name)
    artifacts = load_artifacts(dist, normalize_name(name), "1.0.0")
    assert sorted(a.kind for a in artifacts) == ["sdist", "wheel"]
    wheel = [a for a in artifacts if a.kind == "wheel"]
    settings = settings_for(gitlab_standin.api_url, gitlab_standin.tokens.personal)
    target = PublishTarget("demo-group/hello-package", normalize_name(name), "1.0.0")

    def publish(selected: list[Artifact]) -> list[tuple[str, str]]:
        with GitLabClient(Connection.from_settings(settings)) as client:
            result = publish_release(
                client, target, selected, api_url=settings.api_url, check_signature=accept
            )
        return [(f.file_name, f.status) for f in result.files]

    # The first run stopped after the wheel (and its signature) ...
    assert [status for _, status in publish(wheel)] == ["uploaded", "uploaded"]
    stored = {f.name for f in gitlab_standin.stored_files(package_type="pypi")}
    assert stored == {name}  # GitLab keeps the spelling of METADATA's Name
    # ... the rerun finds them, under whatever name GitLab stored, and adds only the sdist.
    statuses = dict(publish(artifacts))
    assert statuses == {
        wheel[0].name + ".sigstore.json": "present",
        next(a.name for a in artifacts if a.kind == "sdist") + ".sigstore.json": "uploaded",
        wheel[0].name: "present",
        next(a.name for a in artifacts if a.kind == "sdist"): "uploaded",
    }
    # A third run changes nothing.
    assert {status for _, status in publish(artifacts)} == {"present"}
    assert len(gitlab_standin.stored_files()) == 4


@pytest.mark.parametrize("stored", ["My_Tool", "my.tool"])
def test_verify_group_finds_the_owner_of_any_spelling(
    gitlab_standin: GitLabStandIn, tmp_path: Path, stored: str
) -> None:
    from poetry_gitlab_release.verify.expected import Requirement
    from poetry_gitlab_release.verify.registry import owning_project

    make_dists(tmp_path, stored)
    wheel = next(tmp_path.glob("*.whl"))
    settings = settings_for(gitlab_standin.api_url, gitlab_standin.tokens.personal)
    with GitLabClient(Connection.from_settings(settings)) as client:
        from poetry_gitlab_release.gitlab.uploads import pypi_fields, upload_pypi
        from poetry_gitlab_release.gitlab.urls import pypi_upload_url

        upload_pypi(client, pypi_upload_url(settings.api_url, 100), wheel, pypi_fields(wheel))
        owner = owning_project(client, "demo-group", Requirement("my-tool", "1.0.0"))
    assert owner == ("100", "demo-group/hello-package")
