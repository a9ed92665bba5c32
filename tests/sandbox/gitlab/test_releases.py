"""The stand-in's Releases and release links API: GitLab's validation, the job token, a real client."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import gitlab
import pytest

from sandbox.gitlab import GitLabStandIn
from sandbox.gitlab.releases import store

HELLO = 100  # demo-group/hello-package
SHA = "a" * 40


def call(
    standin: GitLabStandIn,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any, dict[str, str]]:
    request = urllib.request.Request(
        f"{standin.api_url}{path}",
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Content-Type": "application/json", **(headers or {})},
    )

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=10) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None, dict(response.headers)
    except urllib.error.HTTPError as error:
        raw = error.read()
        return error.code, json.loads(raw) if raw else None, dict(error.headers)


def job(standin: GitLabStandIn) -> dict[str, str]:
    return {"JOB-TOKEN": standin.job_token(HELLO)}


def links(*names: str) -> list[dict[str, str]]:
    return [
        {
            "name": name,
            "url": f"https://example.com/{name}",
            "direct_asset_path": f"/{name}",
            "link_type": "package",
        }
        for name in names
    ]


def test_a_job_token_creates_the_release_with_package_links(gitlab_standin: GitLabStandIn) -> None:
    body = {
        "tag_name": "v1.0.0",
        "ref": SHA,
        "name": "hello-package 1.0.0",
        "description": "notes",
        "assets": {"links": links("a.whl", "a.whl.sigstore.json")},
    }
    status, release, _ = call(
        gitlab_standin, "POST", f"/projects/{HELLO}/releases", body, job(gitlab_standin)
    )
    assert status == 201, release
    assert release["tag_name"] == "v1.0.0"
    assert release["commit"]["id"] == SHA
    assert {link["name"] for link in release["assets"]["links"]} == {"a.whl", "a.whl.sigstore.json"}
    (wheel,) = [link for link in release["assets"]["links"] if link["name"] == "a.whl"]
    assert wheel["link_type"] == "package"
    assert wheel["direct_asset_url"].endswith(
        "/demo-group/hello-package/-/releases/v1.0.0/downloads/a.whl"
    )
    # The same tag again: 409, as Releases::CreateService answers.
    status, error, _ = call(
        gitlab_standin, "POST", f"/projects/{HELLO}/releases", body, job(gitlab_standin)
    )
    assert (status, error) == (409, {"message": "Release already exists"})
    # The permanent link redirects to the asset's URL.
    status, _, headers = call(
        gitlab_standin,
        "GET",
        f"/projects/{HELLO}/releases/v1.0.0/downloads/a.whl",
        None,
        job(gitlab_standin),
    )
    assert (status, headers["Location"]) == (302, "https://example.com/a.whl")


def test_a_tag_that_does_not_exist_needs_a_ref(gitlab_standin: GitLabStandIn) -> None:
    status, error, _ = call(
        gitlab_standin,
        "POST",
        f"/projects/{HELLO}/releases",
        {"tag_name": "v2"},
        job(gitlab_standin),
    )
    assert (status, error) == (422, {"message": "Ref is not specified"})


def test_link_names_urls_and_paths_are_unique_per_release(gitlab_standin: GitLabStandIn) -> None:
    base = f"/projects/{HELLO}/releases"
    status, _, _ = call(
        gitlab_standin, "POST", base, {"tag_name": "v1", "ref": SHA}, job(gitlab_standin)
    )
    assert status == 201
    (first,) = links("a.whl")
    status, created, _ = call(
        gitlab_standin, "POST", f"{base}/v1/assets/links", first, job(gitlab_standin)
    )
    assert status == 201, created
    status, error, _ = call(
        gitlab_standin, "POST", f"{base}/v1/assets/links", first, job(gitlab_standin)
    )
    assert status == 400
    assert error == {
        "message": [
            "Url has already been taken",
            "Name has already been taken",
            "Filepath has already been taken",
        ]
    }
    bad = {"name": "x", "url": "file:///etc/passwd", "direct_asset_path": "no-slash"}
    status, error, _ = call(
        gitlab_standin, "POST", f"{base}/v1/assets/links", bad, job(gitlab_standin)
    )
    assert status == 400
    assert "Filepath is in an invalid format" in error["message"]
    assert any(message.startswith("Url is blocked") for message in error["message"])
    wrong_type = {"name": "y", "url": "https://example.com/y", "link_type": "binary"}
    status, error, _ = call(
        gitlab_standin, "POST", f"{base}/v1/assets/links", wrong_type, job(gitlab_standin)
    )
    assert (status, error) == (400, {"error": "link_type does not have a valid value"})
    # Duplicates inside one create: the validator does not see unsaved siblings, the unique
    # index does; the release is not saved at all.
    twice = {"tag_name": "v3", "ref": SHA, "assets": {"links": links("b.whl", "b.whl")}}
    status, error, _ = call(gitlab_standin, "POST", base, twice, job(gitlab_standin))
    assert status == 400
    assert error["message"].startswith("PG::UniqueViolation: ERROR:  duplicate key value")
    assert store(gitlab_standin.app).release(HELLO, "v3") is None
    # An invalid link in a create: the model's message, prefixed as RecordInvalid is.
    bad_path = {"tag_name": "v4", "ref": SHA, "assets": {"links": links("b")}}
    status, error, _ = call(gitlab_standin, "POST", base, bad_path, job(gitlab_standin))
    assert (status, error) == (
        400,
        {"message": "Validation failed: Links filepath is in an invalid format"},
    )
    # POST /releases declares link_type without `values:`: Rails' enum refuses it.
    (typed,) = links("c.whl")
    typed["link_type"] = "binary"
    wrong = {"tag_name": "v5", "ref": SHA, "assets": {"links": [typed]}}
    status, error, _ = call(gitlab_standin, "POST", base, wrong, job(gitlab_standin))
    assert (status, error) == (400, {"message": "'binary' is not a valid link_type"})
    assert store(gitlab_standin.app).release(HELLO, "v5") is None


@pytest.mark.parametrize(
    ("path", "errors"),
    [
        ("/abc", []),
        ("/pkg-1.0-py3-none-any.whl.sigstore.json", []),
        ("/dir/sub/file.tar.gz", []),
        ("/ab", ["Filepath is in an invalid format"]),  # [^/], one or more, then an alnum
        ("/a//bc", ["Filepath is in an invalid format"]),
        ("/pkg-1.0+local.whl", ["Filepath is in an invalid format"]),
        ("/caf\u00e9.whl", ["Filepath is in an invalid format"]),  # Ruby's \w is ASCII
        ("/file.whl/", ["Filepath is in an invalid format"]),
        ("", ["Filepath is in an invalid format"]),  # given but blank: not nil
        ("/" + "a" * 128, ["Filepath is too long (maximum is 128 characters)"]),  # only that one
        ("/" + "a" * 127, []),
    ],
)
def test_direct_asset_path_rules(
    gitlab_standin: GitLabStandIn, path: str, errors: list[str]
) -> None:
    base = f"/projects/{HELLO}/releases"
    call(gitlab_standin, "POST", base, {"tag_name": "v1", "ref": SHA}, job(gitlab_standin))
    body = {"name": "x", "url": "https://example.com/x", "direct_asset_path": path}
    status, answer, _ = call(
        gitlab_standin, "POST", f"{base}/v1/assets/links", body, job(gitlab_standin)
    )
    if errors:
        assert (status, answer) == (400, {"message": errors})
    else:
        assert status == 201, answer
        assert answer["direct_asset_url"].endswith(f"/-/releases/v1/downloads{path}")


def test_link_entity_and_required_params(gitlab_standin: GitLabStandIn) -> None:
    base = f"/projects/{HELLO}/releases"
    call(gitlab_standin, "POST", base, {"tag_name": "v1", "ref": SHA}, job(gitlab_standin))
    status, error, _ = call(
        gitlab_standin, "POST", f"{base}/v1/assets/links", {}, job(gitlab_standin)
    )
    assert (status, error) == (400, {"error": "name is missing, url is missing"})
    inside = f"{gitlab_standin.url}/demo-group/hello-package/-/jobs/1/artifacts/raw/release.json"
    for name, url in (("outside", "https://example.com/o"), ("inside", inside)):
        status, link, _ = call(
            gitlab_standin,
            "POST",
            f"{base}/v1/assets/links",
            {"name": name, "url": url},
            job(gitlab_standin),
        )
        assert status == 201, link
        assert set(link) == {"id", "name", "url", "direct_asset_url", "external", "link_type"}
        assert link["external"] is (name == "outside")
        assert link["link_type"] == "other"


def test_updating_a_release(gitlab_standin: GitLabStandIn) -> None:
    base = f"/projects/{HELLO}/releases"
    # No release for the tag: `authorize! :update_release, nil` is 403, not 404.
    status, _, _ = call(gitlab_standin, "PUT", f"{base}/v7", {"name": "n"}, job(gitlab_standin))
    assert status == 403
    call(gitlab_standin, "POST", base, {"tag_name": "v7", "ref": SHA}, job(gitlab_standin))
    status, error, _ = call(gitlab_standin, "PUT", f"{base}/v7", {}, job(gitlab_standin))
    assert (status, error) == (400, {"message": "params is empty"})
    status, release, _ = call(
        gitlab_standin, "PUT", f"{base}/v7", {"name": "seven"}, job(gitlab_standin)
    )
    assert (status, release["name"]) == (200, "seven")


def test_who_may_write_releases(gitlab_standin: GitLabStandIn) -> None:
    base = f"/projects/{HELLO}/releases"
    body = {"tag_name": "v1", "ref": SHA}
    deploy = {"DEPLOY-TOKEN": gitlab_standin.tokens.deploy_token}
    assert (
        call(gitlab_standin, "POST", base, body, deploy)[0] == 404
    )  # ignored: anonymous, and the project is private
    read_only = {"PRIVATE-TOKEN": gitlab_standin.tokens.read_api}
    assert call(gitlab_standin, "POST", base, body, read_only)[0] == 403
    other_job = {
        "JOB-TOKEN": gitlab_standin.job_token(gitlab_standin.project_id("demo-group/web-app"))
    }
    assert call(gitlab_standin, "POST", base, body, other_job)[0] == 404
    status, _, _ = call(
        gitlab_standin, "POST", base, body, {"PRIVATE-TOKEN": gitlab_standin.tokens.personal}
    )
    assert status == 201
    status, release, _ = call(
        gitlab_standin, "PUT", f"{base}/v1", {"description": "new"}, job(gitlab_standin)
    )
    assert (status, release["description"]) == (200, "new")


def test_python_gitlab_creates_and_reads_a_release(gitlab_standin: GitLabStandIn) -> None:
    client = gitlab.Gitlab(gitlab_standin.url, private_token=gitlab_standin.tokens.personal)
    project = client.projects.get(HELLO, lazy=True)
    project.releases.create({"tag_name": "v9", "ref": SHA, "description": "from python-gitlab"})
    release = project.releases.get("v9")
    release.links.create({"name": "n", "url": "https://example.com/n", "link_type": "package"})
    listed = release.links.list(get_all=True)
    assert [(link.name, link.link_type) for link in listed] == [("n", "package")]
    with pytest.raises(gitlab.exceptions.GitlabCreateError) as caught:
        release.links.create({"name": "n", "url": "https://example.com/other"})
    assert caught.value.response_code == 400
