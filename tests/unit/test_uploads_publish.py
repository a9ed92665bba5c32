"""Streamed uploads (exact Content-Length, re-streamed on retry) and the publish plan."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from poetry_gitlab_release.config.settings import Settings, resolve_settings
from poetry_gitlab_release.errors import ConflictError, VerificationError
from poetry_gitlab_release.gitlab.client import GitLabClient, RetryPolicy
from poetry_gitlab_release.gitlab.uploads import MultipartBody, pypi_fields, upload_pypi
from poetry_gitlab_release.release.artifacts import Artifact, load_artifacts
from poetry_gitlab_release.release.publish import PublishTarget, publish_release
from sandbox.gitlab import GitLabStandIn
from sandbox.gitlab.multipart import parse_multipart

WHEEL_METADATA = (
    "Metadata-Version: 2.4\nName: demo-pkg\nVersion: 1.0.0\nSummary: demo\n"
    "Requires-Dist: idna>=3\nRequires-Dist: httpx\nProject-URL: Source, https://x.example\n"
)


def make_wheel(directory: Path, payload: bytes = b"print('hi')\n") -> Path:
    import zipfile

    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "demo_pkg-1.0.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("demo_pkg/__init__.py", payload)
        archive.writestr("demo_pkg-1.0.0.dist-info/METADATA", WHEEL_METADATA)
    return path


def settings_for(api_url: str, token: str = "glpat-abcdefghijklmnop") -> Settings:
    return resolve_settings(
        {
            "host": api_url.removesuffix("/api/v4"),
            "token": token,
            "project": "demo-group/hello-package",
        },
        {},
    )


def test_pypi_fields_match_what_poetry_sends(tmp_path: Path) -> None:
    fields = pypi_fields(make_wheel(tmp_path))
    names = [name for name, _ in fields]
    assert names[:2] == [":action", "protocol_version"]
    for required in ("name", "version", "sha256_digest", "md5_digest", "filetype", "pyversion"):
        assert required in names
    assert [v for n, v in fields if n == "requires_dist"] == ["idna>=3", "httpx"]
    assert ("project_urls", "Source, https://x.example") in fields


def test_multipart_body_is_exact_and_parseable(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path)
    body = MultipartBody.create(
        [("name", "demo-pkg"), ("summary", 'a "quoted"\nvalue')], "content", wheel, wheel.name
    )
    content = b"".join(body.factory()())  # type: ignore[arg-type]
    assert len(content) == body.content_length()
    parts = {part.name: part for part in parse_multipart(body.content_type, content)}
    assert parts["name"].text == "demo-pkg"
    assert parts["content"].filename == wheel.name
    assert parts["content"].content == wheel.read_bytes()


def test_a_retried_upload_streams_the_whole_body_again(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path)
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        request.read()
        seen.append(request)
        if len(seen) == 1:
            return httpx.Response(503, headers={"Retry-After": "0"}, json={"message": "busy"})
        return httpx.Response(201, json={"message": "201 Created"})

    started: list[int] = []

    class Recorder:
        def start(self, total: int) -> None:
            started.append(total)

        def advance(self, count: int) -> None:
            pass

        def finish(self) -> None:
            pass

    api = "https://gitlab.example.com/api/v4"
    with GitLabClient(
        settings_for(api),
        transport=httpx.MockTransport(handler),
        sleep=lambda _: None,
        retry=RetryPolicy(attempts=3),
    ) as client:
        upload_pypi(
            client, f"{api}/projects/1/packages/pypi", wheel, pypi_fields(wheel), Recorder()
        )
    assert len(seen) == 2
    assert seen[0].content == seen[1].content
    for request in seen:
        assert request.headers["Content-Length"] == str(len(request.content))
        assert "Transfer-Encoding" not in request.headers
        assert request.headers["Authorization"].startswith("Basic ")
    assert len(started) == 2 and started[0] == started[1] == len(seen[0].content)


@pytest.fixture
def release_dist(tmp_path: Path) -> list[Artifact]:
    dist = tmp_path / "dist"
    wheel = make_wheel(dist)
    (dist / (wheel.name + ".sigstore.json")).write_text(json.dumps({"bundle": 1}))
    return load_artifacts(dist, "demo-pkg", "1.0.0")


def accept(artifact: Artifact, file_name: str, data: bytes) -> None:
    return None


def reject(artifact: Artifact, file_name: str, data: bytes) -> None:
    raise VerificationError(f"{file_name} is not ours")


def test_publish_is_ordered_idempotent_and_refuses_conflicts(
    gitlab_standin: GitLabStandIn, release_dist: list[Artifact]
) -> None:
    settings = settings_for(gitlab_standin.api_url, gitlab_standin.tokens.personal)
    target = PublishTarget("demo-group/hello-package", "demo-pkg", "1.0.0")
    with GitLabClient(settings) as client:
        first = publish_release(
            client, target, release_dist, api_url=settings.api_url, check_signature=reject
        )
        assert [(f.registry, f.status) for f in first.files] == [
            ("generic", "uploaded"),
            ("pypi", "uploaded"),
        ]
        stored = [(f.package_type, f.file_name) for f in gitlab_standin.stored_files()]
        assert stored == [
            ("generic", release_dist[0].name + ".sigstore.json"),
            ("pypi", release_dist[0].name),
        ]

        again = publish_release(
            client, target, release_dist, api_url=settings.api_url, check_signature=reject
        )
        assert {f.status for f in again.files} == {"present"}

        # A new signature of the same artifact: kept as published when the published one verifies.
        bundle = release_dist[0].sidecar(".sigstore.json")
        bundle.write_text(json.dumps({"bundle": 2}))
        rerun = publish_release(
            client, target, release_dist, api_url=settings.api_url, check_signature=accept
        )
        assert [f.status for f in rerun.files] == ["signed-earlier", "present"]
        assert json.loads(bundle.read_text()) == {"bundle": 1}  # dist/ follows the registry

        # ... refused when it does not; and a changed wheel is refused. Nothing is uploaded.
        bundle.write_text(json.dumps({"bundle": 3}))
        with pytest.raises(ConflictError, match="is not ours"):
            publish_release(
                client, target, release_dist, api_url=settings.api_url, check_signature=reject
            )
        changed = make_wheel(release_dist[0].path.parent, b"print('changed')\n")
        artifacts = load_artifacts(changed.parent, "demo-pkg", "1.0.0")
        with pytest.raises(ConflictError, match="already in the PyPI registry") as caught:
            publish_release(
                client, target, artifacts, api_url=settings.api_url, check_signature=accept
            )
        assert caught.value.hint is not None and "nothing was uploaded" in caught.value.hint
    assert len(gitlab_standin.stored_files()) == 2


def test_dry_run_without_a_token_plans_without_asking(release_dist: list[Artifact]) -> None:
    target = PublishTarget("7", "demo-pkg", "1.0.0")
    result = publish_release(
        None,
        target,
        release_dist,
        api_url="https://gitlab.example.com/api/v4",
        check_signature=reject,
        dry_run=True,
    )
    assert not result.checked
    assert [f.status for f in result.files] == ["would-upload", "would-upload"]
    assert result.files[0].url == (
        "https://gitlab.example.com/api/v4/projects/7/packages/generic/demo-pkg/1.0.0/"
        "demo_pkg-1.0.0-py3-none-any.whl.sigstore.json"
    )
