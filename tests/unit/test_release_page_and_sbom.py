"""Release page (create, then idempotent update against the stand-in) and the CycloneDX SBOM."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from poetry_gitlab_release.config.settings import resolve_settings
from poetry_gitlab_release.gitlab.client import GitLabClient
from poetry_gitlab_release.gitlab.connection import Connection
from poetry_gitlab_release.gitlab.releases import AssetLink, upsert_release
from poetry_gitlab_release.release.artifacts import load_artifacts
from poetry_gitlab_release.release.release_page import (
    asset_links,
    changelog_section,
    release_notes,
)
from poetry_gitlab_release.release.sbom import LockedPackage, runtime_closure, write_sbom
from sandbox.gitlab import GitLabStandIn
from sandbox.gitlab.releases import store

PROJECT = "demo-group/hello-package"
SHA = "b" * 40


def client_for(standin: GitLabStandIn) -> GitLabClient:
    project_id = standin.project_id(PROJECT)
    settings = resolve_settings(
        {"host": standin.url, "project": PROJECT},
        {"CI_SERVER_URL": standin.url, "CI_JOB_TOKEN": standin.job_token(project_id)},
    )
    return GitLabClient(Connection.from_settings(settings))


def test_upsert_creates_then_changes_nothing_then_updates_in_place(
    gitlab_standin: GitLabStandIn,
) -> None:
    links = [
        AssetLink("a.whl", "https://example.com/a.whl", "/a.whl"),
        AssetLink(
            "a.whl.sigstore.json", "https://example.com/a.whl.sigstore.json", "/a.whl.sigstore.json"
        ),
    ]
    with client_for(gitlab_standin) as client:
        first = upsert_release(
            client, PROJECT, "v1.0.0", name="n 1.0.0", description="d", links=links, ref=SHA
        )
        assert first.created and first.links_added == ("a.whl", "a.whl.sigstore.json")
        assert first.url is not None and first.url.endswith(
            "/demo-group/hello-package/-/releases/v1.0.0"
        )
        again = upsert_release(
            client, PROJECT, "v1.0.0", name="n 1.0.0", description="d", links=links, ref=SHA
        )
        assert (
            again.created,
            again.description_updated,
            again.links_added,
            again.links_updated,
        ) == (
            False,
            False,
            (),
            (),
        )
        moved = [AssetLink("a.whl", "https://example.com/new/a.whl", "/a.whl"), links[1]]
        third = upsert_release(
            client, PROJECT, "v1.0.0", name="n 1.0.0", description="new notes", links=moved, ref=SHA
        )
        assert third.description_updated and third.links_updated == ("a.whl",)
    release = store(gitlab_standin.app).release(gitlab_standin.project_id(PROJECT), "v1.0.0")
    assert release is not None
    assert release.description == "new notes"
    assert sorted((link.name, link.url) for link in release.links) == [
        ("a.whl", "https://example.com/new/a.whl"),
        ("a.whl.sigstore.json", "https://example.com/a.whl.sigstore.json"),
    ]


def test_changelog_section_for_the_version() -> None:
    changelog = (
        "# Changelog\n\n## [0.2.0] - 2026-02-01\n\n- newer\n\n"
        "## [0.1.0] - 2026-01-01\n\n### Added\n\n- first\n\n## [0.1.0rc1]\n\n- rc\n"
    )
    assert changelog_section(changelog, "0.1.0") == "### Added\n\n- first"
    assert changelog_section(changelog, "0.2.0") == "- newer"
    assert changelog_section("## v1.2.3\n\ntext\n", "1.2.3") == "text"
    assert changelog_section(changelog, "0.1") is None
    assert changelog_section(changelog, "9.9.9") is None


def test_notes_come_from_the_changelog_or_are_generated(tmp_path: Path) -> None:
    generated = release_notes(
        tmp_path,
        "hello-package",
        "0.1.0",
        identity="https://gitlab.com/g/p//.gitlab-ci.yml@refs/tags/v0.1.0",
        issuer="https://gitlab.com",
        project="g/p",
        files=[("hello_package-0.1.0.tar.gz", "ab" * 32)],
    )
    assert generated.source == "generated"
    assert "Signed by `https://gitlab.com/g/p//.gitlab-ci.yml@refs/tags/v0.1.0`" in generated.text
    assert "$ poetry gitlab-verify hello-package==0.1.0 --gitlab-project g/p" in generated.text
    assert f"| `hello_package-0.1.0.tar.gz` | `{'ab' * 32}` |" in generated.text
    (tmp_path / "CHANGELOG.md").write_text("## 0.1.0\n\nFixed it.\n", encoding="utf-8")
    notes = release_notes(
        tmp_path, "hello-package", "0.1.0", identity=None, issuer=None, project=None, files=[]
    )
    assert (notes.source, notes.text) == ("CHANGELOG.md", "Fixed it.")


def test_asset_links_cover_files_signatures_and_the_manifest() -> None:
    manifest = {
        "files": [
            {
                "file": "a.whl",
                "url": "https://h/a.whl",
                "signatures": [
                    {"file": "a.whl.sigstore.json", "url": "https://h/a.whl.sigstore.json"}
                ],
            }
        ]
    }
    links = asset_links(
        manifest, job_url="https://h/g/p/-/jobs/7", manifest_path="dist/release.json"
    )
    assert [(link.name, link.url, link.direct_asset_path, link.link_type) for link in links] == [
        ("a.whl", "https://h/a.whl", "/a.whl", "package"),
        ("a.whl.sigstore.json", "https://h/a.whl.sigstore.json", "/a.whl.sigstore.json", "package"),
        (
            "release.json",
            "https://h/g/p/-/jobs/7/artifacts/raw/dist/release.json",
            "/release.json",
            "package",
        ),
    ]
    assert [link.name for link in asset_links(manifest, job_url=None, manifest_path=None)] == [
        "a.whl",
        "a.whl.sigstore.json",
    ]


def test_runtime_closure_follows_the_lock_from_the_main_requirements() -> None:
    locked = [
        LockedPackage("requests", "2.32.0", ("certifi", "idna")),
        LockedPackage("certifi", "2026.1.1", ()),
        LockedPackage("idna", "3.10", ()),
        LockedPackage("pytest", "8.0.0", ("pluggy",)),  # dev group: not required by main
        LockedPackage("pluggy", "1.5.0", ()),
    ]
    roots, closure = runtime_closure(["Requests"], locked)
    assert roots == ["requests"]
    assert [package.name for package in closure] == ["certifi", "idna", "requests"]


def test_sbom_is_cyclonedx_with_file_hashes_and_reproducible(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "hello_package-0.1.0-py3-none-any.whl").write_bytes(b"wheel")
    (dist / "hello_package-0.1.0.tar.gz").write_bytes(b"sdist")
    artifacts = load_artifacts(dist, "hello-package", "0.1.0")
    locked = [LockedPackage("idna", "3.10", ())]
    path = write_sbom(dist, "hello-package", "0.1.0", artifacts, ["idna"], locked, "0.1.0")
    first = path.read_bytes()
    document = json.loads(first)
    assert document["bomFormat"] == "CycloneDX" and document["specVersion"] == "1.6"
    assert document["metadata"]["timestamp"].startswith("2023-11-14T22:13:20")
    assert document["metadata"]["component"]["purl"] == "pkg:pypi/hello-package@0.1.0"
    by_name = {component["name"]: component for component in document["components"]}
    wheel = by_name["hello_package-0.1.0-py3-none-any.whl"]
    assert wheel["type"] == "file"
    assert wheel["hashes"] == [{"alg": "SHA-256", "content": artifacts[1].sha256}]
    assert by_name["idna"]["purl"] == "pkg:pypi/idna@3.10"
    # The SBOM is an artifact of the release now (signed and published with the rest).
    assert [a.kind for a in load_artifacts(dist, "hello-package", "0.1.0")] == [
        "sdist",
        "wheel",
        "sbom",
    ]
    write_sbom(dist, "hello-package", "0.1.0", artifacts, ["idna"], locked, "0.1.0")
    assert path.read_bytes() == first


def test_a_file_name_gitlab_refuses_as_direct_asset_path_still_gets_its_link(
    gitlab_standin: GitLabStandIn,
) -> None:
    # app/models/releases/link.rb: FILEPATH_REGEX allows neither `+` (a local version) nor
    # more than 128 characters. Such a file keeps a plain link; the release is still created.
    local = "hello_package-0.1.0+cpu-py3-none-any.whl"
    long = "hello_package-0.1.0-" + "x" * 120 + ".whl"
    manifest = {
        "files": [
            {"file": name, "url": f"https://example.com/{name}", "signatures": []}
            for name in (local, long, "hello_package-0.1.0.tar.gz")
        ]
    }
    links = asset_links(manifest, job_url=None, manifest_path=None)
    assert [link.direct_asset_path for link in links] == [
        None,
        None,
        "/hello_package-0.1.0.tar.gz",
    ]
    with client_for(gitlab_standin) as client:
        result = upsert_release(
            client, PROJECT, "v0.1.0", name="n", description="d", links=links, ref=SHA
        )
        assert result.created and len(result.links) == 3
        again = upsert_release(
            client, PROJECT, "v0.1.0", name="n", description="d", links=links, ref=SHA
        )
        assert (again.links_added, again.links_updated) == ((), ())
